"""Raw Windows Update ETL files (`WindowsUpdate.*.etl`, Windows 10 1709+ / Server 2019+ / 11).

These are what `Get-WindowsUpdateLog` turns into the Windows 10 WindowsUpdate.log on a Windows
machine. The agent logs through the TraceLogging provider WUTraceLogging
({196f7a0b-c447-4e45-8c5c-e868d637e4d8}): every event carries its own schema, the event name is
the component (Agent, ComApi, DownloadManager, ...) and its `Info` field the message. Records get
the fields the text form gives (ts, pid, tid, component, message, level, and as raw the line
Get-WindowsUpdateLog would write, in UTC), so the same signatures match the same way.

The file is read one WMI buffer at a time (fixed size, named by the first buffer's header), so
memory stays bounded by one buffer and archive members need no seeking. Records inside a buffer
are cut with the `etl-parser` structures; TraceLogging payloads are decoded by its reader.

Timestamps are in the session's clock (TRACE_LOGFILE_HEADER.ReservedFlags: 1 QPC, 2 system time,
3 CPU cycles). The logfile header holds the session start as a FILETIME (StartTime) and the
header event itself is stamped in the session clock at that same moment, so an event's UTC time
is StartTime + (ts - header ts) * 10^7 / frequency (PerfFreq for QPC, CpuSpeedInMHz * 10^6 for
cycles; system-time stamps are FILETIMEs already, as fine as TimerResolution). Adding ts /
PerfFreq to BootTime instead is seconds off. etl-parser's EventTraceHeader structure leaves out
the 4 alignment bytes after TimeZoneInformation, so BootTime, PerfFreq, StartTime and
ReservedFlags are read here at their real offsets.

Pre-1709 files (Server 2016) hold WPP messages that only the TMF symbols can decode: each is a
counted reject `etl_needs_symbols`, as are manifest events without embedded schema. Damage keeps
what came before: a buffer with a bad header is a `bad_buffer` reject, a record that cannot be
cut ends its buffer as `bad_event`, a file cut short ends with `truncated`.
"""

from __future__ import annotations

import io
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import polars as pl
from construct import ConstructError
from etl.error import EtlException, TlMetaDataNotFound
from etl.etl import Chunk
from etl.event import Event
from etl.wmi import WmiBufferHeader

from .base import RECORD_SCHEMA, Batch, Head, ParseContext, ParserSpec, conform, rejects_from_rows
from .windowsupdate import FAILED_MARK, LEVEL_PREFIX

NAME = "windowsupdate-etl"
WU_PROVIDER = uuid.UUID("196f7a0b-c447-4e45-8c5c-e868d637e4d8")

BUFFER_HEADER = 0x48  # WMI_BUFFER_HEADER; the first record of a buffer starts here
#: Largest buffer accepted (ETW allows up to 16 MiB buffers); a header naming more is damage.
MAX_BUFFER = 16 << 20
#: Units (records, folded records, rejects) per yielded batch.
BATCH_UNITS = 5000
#: Extended data item types (EVENT_HEADER_EXT_TYPE_*): TraceLogging schema, provider traits.
EXT_SCHEMA_TL, EXT_PROV_TRAITS = 11, 12
#: FILETIME of 1970-01-01.
_EPOCH_FT = 116_444_736_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def detect(head: Head) -> bool:
    """A WMI buffer whose first record is the logfile header event (hook 0x0000, system marker)."""
    raw = head.raw
    if len(raw) < BUFFER_HEADER + 8:
        return False
    size, saved = struct.unpack_from("<II", raw, 0)
    version, marker, flags = struct.unpack_from("<HBB", raw, BUFFER_HEADER)
    hook = struct.unpack_from("<H", raw, BUFFER_HEADER + 6)[0]
    return (BUFFER_HEADER < saved <= size <= MAX_BUFFER and flags == 0xC0 and marker in (1, 2)
            and version <= 2 and hook == 0)


@dataclass(frozen=True)
class Clock:
    """How a session's timestamps map to FILETIME: start FILETIME, the header's own stamp, and
    100 ns per tick as a fraction (None: the stamps are FILETIMEs)."""

    start_ft: int
    start_ticks: int
    ticks_per_second: int | None

    def filetime(self, ticks: int) -> int:
        if self.ticks_per_second is None:
            return ticks
        return self.start_ft + (ticks - self.start_ticks) * 10_000_000 // self.ticks_per_second

    def utc(self, ticks: int) -> datetime | None:
        """The stamp as UTC, to the microsecond (truncated, as the text form's 7 digits are)."""
        ft = self.filetime(ticks)
        if ft <= 0:
            return None
        try:
            return _EPOCH + timedelta(microseconds=(ft - _EPOCH_FT) // 10)
        except OverflowError:
            return None


def header_clock(mof: bytes, pointer64: bool, header_ticks: int) -> Clock | None:
    """The clock from the logfile header event's data (TRACE_LOGFILE_HEADER), or None if unusable."""
    base = 72 if pointer64 else 64  # TimeZoneInformation follows the two name pointers
    at = base + 172 + 4  # 172 bytes of time zone, then padding to align the 8-byte BootTime
    if len(mof) < at + 28:
        return None
    cpu_mhz = struct.unpack_from("<I", mof, 52)[0]
    _boot, perf_freq, start_ft, clock_type = struct.unpack_from("<qqqI", mof, at)
    if start_ft <= 0:
        return None
    if clock_type == 2:
        return Clock(start_ft, header_ticks, None)
    if clock_type == 3:
        return Clock(start_ft, header_ticks, cpu_mhz * 1_000_000) if cpu_mhz else None
    return Clock(start_ft, header_ticks, perf_freq) if perf_freq > 0 else None


@dataclass
class Unit:
    """One counted piece of the file: a record, a folded record, or a reject (`reason` set)."""

    offset: int
    size: int
    row: dict[str, Any] | None = None
    reason: str | None = None
    raw: str = ""
    #: False for the bytes around records (buffer headers, unused buffer ends): spanned, not counted.
    counted: bool = True


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    """Up to n bytes, reading again after short reads (archive members give them)."""
    parts, got = [], 0
    while got < n:
        b = stream.read(n - got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def walk(stream: BinaryIO) -> Iterator[Unit]:
    """Every unit of an ETL stream in file order; their spans tile the stream exactly."""
    first = _read_exact(stream, BUFFER_HEADER)
    if len(first) < BUFFER_HEADER:
        if first:
            yield Unit(0, len(first), reason="truncated", raw=f"{len(first)} bytes, shorter than a buffer header")
        return
    size = struct.unpack_from("<I", first, 0)[0]
    if not BUFFER_HEADER < size <= MAX_BUFFER:
        rest = len(first) + _drain(stream)
        yield Unit(0, rest, reason="bad_buffer", raw=f"first buffer size {size} is not usable; file not read")
        return
    state: dict[str, Any] = {"clock": None}
    offset, buf = 0, first + _read_exact(stream, size - BUFFER_HEADER)
    while buf:
        yield from _buffer(buf, offset, size, state)
        offset += len(buf)
        buf = _read_exact(stream, size)


def _drain(stream: BinaryIO) -> int:
    return sum(len(b) for b in iter(lambda: stream.read(1 << 20), b""))


def _buffer(buf: bytes, offset: int, size: int, state: dict[str, Any]) -> Iterator[Unit]:
    """The units of one buffer (or of the short piece that ends a truncated file)."""
    if len(buf) < BUFFER_HEADER:
        yield Unit(offset, len(buf), reason="truncated", raw=f"file ends {len(buf)} bytes into a buffer header")
        return
    try:
        header = WmiBufferHeader.parse(buf[:BUFFER_HEADER])
        saved, flags = header.wnode.saved_offset, header.buffer_flag
    except ConstructError as exc:
        yield Unit(offset, len(buf), reason="bad_buffer", raw=f"buffer at byte {offset}: {exc}")
        return
    if header.wnode.buffer_size != size or not BUFFER_HEADER <= saved <= size:
        yield Unit(offset, len(buf), reason="bad_buffer",
                   raw=f"buffer at byte {offset}: size {header.wnode.buffer_size}, used {saved}, expected size {size}")
        return
    if flags.ETW_BUFFER_FLAG_COMPRESSED:
        yield Unit(offset, len(buf), reason="etl_compressed", raw=f"buffer at byte {offset} is compressed; not decoded")
        return
    yield Unit(offset, BUFFER_HEADER, counted=False)
    end = min(saved, len(buf))
    body = io.BytesIO(buf)
    body.seek(BUFFER_HEADER)
    pos = BUFFER_HEADER
    while pos < end:
        try:
            chunk = Chunk.parse_stream(body)
        except (ConstructError, EtlException, ValueError) as exc:
            reason = "truncated" if saved > len(buf) else "bad_event"
            yield Unit(offset + pos, len(buf) - pos, reason=reason,
                       raw=f"record at byte {offset + pos} cannot be read ({type(exc).__name__}); "
                           f"the rest of its buffer ({len(buf) - pos} bytes) is skipped")
            return
        used = body.tell() - pos
        yield _unit(chunk, offset + pos, used, state)
        pos += used
    if saved > len(buf):  # the file ends inside this buffer
        yield Unit(offset + pos, len(buf) - pos, reason="truncated",
                   raw=f"file ends inside the buffer at byte {offset} ({len(buf)} of {size} bytes)")
    elif pos < len(buf):
        yield Unit(offset + pos, len(buf) - pos, counted=False)  # the unused end of the buffer


def _unit(chunk: Any, offset: int, size: int, state: dict[str, Any]) -> Unit:
    kind, value = chunk.type, chunk.value
    if kind == "SystemTraceRecord":
        sh = value.system_header
        if sh.header.group == "EVENT_TRACE_GROUP_HEADER" and sh.header.type == 0 and state["clock"] is None:
            pointer64 = int(sh.marker.type.enum) == 2
            state["clock"] = header_clock(bytes(value.mof_data), pointer64, sh.system_time)
        return Unit(offset, size)
    if kind == "PerfInfoTraceRecord":
        return Unit(offset, size)
    if kind == "EventRecord":
        return _event(value, offset, size, state)
    if kind == "WinTraceRecord":
        h = value.event_header
        return Unit(offset, size, reason="etl_needs_symbols",
                    raw=f"WPP message {h.event_id} of {_guid(h.provider_id)} (pid {h.process_id}, tid {h.thread_id}):"
                        " decoding it needs the TMF symbols (Get-WindowsUpdateLog on Windows)")
    h = value.event_header
    return Unit(offset, size, reason="etl_needs_symbols",
                raw=f"classic trace event of {_guid(h.guid)} (pid {h.process_id}, tid {h.thread_id}):"
                    " decoding it needs its MOF class or TMF symbols")


def _guid(g: Any) -> uuid.UUID:
    inner = g.inner
    return uuid.UUID(fields=(inner.data1, inner.data2, inner.data3, inner.data4[0], inner.data4[1],
                             int.from_bytes(bytes(inner.data4[2:]), "big")))


def _provider_name(record: Any) -> str | None:
    for item in record.extended_data or ():
        if item.ext_type == EXT_PROV_TRAITS:
            data = bytes(item.data_item)
            name = data[2:].split(b"\x00", 1)[0]
            return name.decode("utf-8", errors="replace") or None
    return None


def _event(record: Any, offset: int, size: int, state: dict[str, Any]) -> Unit:
    h = record.event_header
    provider = _guid(h.provider_id)
    try:
        fields = Event(record).parse_tracelogging()
    except TlMetaDataNotFound:
        return Unit(offset, size, reason="etl_needs_symbols",
                    raw=f"event {h.event_descriptor.Id} of {provider} has no embedded schema: decoding it needs the "
                        "provider manifest or TMF symbols")
    except (EtlException, ConstructError, EOFError, ValueError, UnicodeDecodeError, struct.error) as exc:
        return Unit(offset, size, reason="bad_event",
                    raw=f"TraceLogging event of {provider} at byte {offset}: {type(exc).__name__}: {exc}")
    component = fields.get_name() or ""
    info = fields.get("Info")
    message = info if isinstance(info, str) else " ".join(f"{k}={v}" for k, v in fields.items())
    clock: Clock | None = state["clock"]
    ts = clock.utc(h.timestamp) if clock is not None else None
    pid, tid = str(h.process_id), str(h.thread_id)
    stamp = _text_stamp(clock.filetime(h.timestamp)) if clock is not None and ts is not None else "????/??/?? ??:??:??"
    row = {
        "line_count": 1, "byte_offset": offset, "kind": "line", "ts": ts,
        "pid": pid, "tid": tid, "component": component, "message": message,
        "provider": _provider_name(record) or ("WUTraceLogging" if provider == WU_PROVIDER else str(provider)),
        # the line Get-WindowsUpdateLog writes for this event (here in UTC)
        "raw": f"{stamp} {pid:<5} {tid:<5} {component:<15} {message}",
    }
    return Unit(offset, size, row=row)


def _text_stamp(ft: int) -> str:
    """`yyyy/MM/dd HH:mm:ss.fffffff` for a FILETIME, the cmdlet's own layout."""
    whole, ticks = divmod(ft - _EPOCH_FT, 10_000_000)
    t = _EPOCH + timedelta(seconds=whole)
    return f"{t:%Y/%m/%d %H:%M:%S}.{ticks:07d}"


def _records(rows: list[dict[str, Any]], source: str) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=RECORD_SCHEMA)
    df = pl.DataFrame(rows, schema={k: RECORD_SCHEMA[k] for k in rows[0]}, strict=False)
    msg = pl.col("message")
    return conform(df.with_columns(
        source=pl.lit(source), format=pl.lit(NAME),
        level=pl.when(msg.str.contains(FAILED_MARK)).then(pl.lit("FAILED"))
        .otherwise(msg.str.extract(LEVEL_PREFIX, 1).fill_null("INFO")),
    ), RECORD_SCHEMA)


def parse(stream: BinaryIO, ctx: ParseContext) -> Iterator[Batch]:
    """Stream records from an ETL file, one WMI buffer in memory at a time."""
    rows: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    units = seen = symbols = 0
    for unit in walk(stream):
        if not unit.counted:
            continue
        units += 1
        seen += 1  # a unit's "line" number: its place among the counted units of the file
        if unit.row is not None:
            rows.append({**unit.row, "line_no": seen})
        elif unit.reason is not None:
            symbols += unit.reason == "etl_needs_symbols"
            rejects.append({"source": ctx.source, "line_no": seen, "byte_offset": unit.offset + ctx.start_offset,
                            "reason": unit.reason, "raw": unit.raw})
        if units >= BATCH_UNITS:
            yield Batch(_records(rows, ctx.source), rejects_from_rows(rejects), units)
            rows, rejects, units = [], [], 0
    notes = []
    if symbols:
        notes.append(f"{symbols} ETL event(s) need symbols (WPP/TMF, pre-1709 Windows Update): decode them with "
                     "Get-WindowsUpdateLog on a Windows machine and scan the text")
    yield Batch(_records(rows, ctx.source), rejects_from_rows(rejects), units, notes)


PARSER = ParserSpec(
    name=NAME,
    description="Raw Windows Update ETL (WindowsUpdate.*.etl, TraceLogging, 1709+); WPP files need symbols",
    detect=detect,
    parse=parse,
    priority=10,
    binary=True,
)
