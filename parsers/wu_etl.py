"""Raw Windows Update ETL files (`WindowsUpdate.*.etl`, Windows 10 1709+ / Server 2019+ / 11).

These are what `Get-WindowsUpdateLog` turns into the Windows 10 WindowsUpdate.log on a Windows
machine. The agent logs through the TraceLogging provider WUTraceLogging
({196f7a0b-c447-4e45-8c5c-e868d637e4d8}): every event carries its own schema, the event name is
the component (Agent, ComApi, DownloadManager, ...) and its `Info` field the message. Records get
the fields the text form gives (ts, pid, tid, component, message, level, and as raw the line
Get-WindowsUpdateLog would write, in UTC), so the same signatures match the same way.

The file is read one WMI buffer at a time (fixed size, named by the first buffer's header; at
most MAX_BUFFER, a larger size is a `bad_buffer` and the file is not read), so memory stays
bounded by one buffer whatever the file size, and archive members need no seeking. From
`etl-parser` come the buffer header (WmiBufferHeader), the logfile header event
(SystemTraceRecord) and the TraceLogging schema and field readers; the few fixed fields of each
record header are cut with `struct` in its layouts (see _record_size for why).

Timestamps are in the session's clock (TRACE_LOGFILE_HEADER.ReservedFlags: 1 QPC, 2 system time,
3 CPU cycles). The logfile header holds the session start as a FILETIME (StartTime) and the
header event itself is stamped in the session clock at that same moment, so an event's UTC time
is StartTime + (ts - header ts) * 10^7 / frequency (PerfFreq for QPC, CpuSpeedInMHz * 10^6 for
cycles; system-time stamps are FILETIMEs already, as fine as TimerResolution). Reading a stamp
as a FILETIME lands in the 17th century, and anchoring on BootTime drifts from the wall clock
the session start was taken from. etl-parser's EventTraceHeader structure leaves out
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
from functools import lru_cache
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, BinaryIO

import polars as pl

from .base import RECORD_SCHEMA, Batch, Head, ParseContext, ParserSpec, conform, rejects_from_rows
from .windowsupdate import FAILED_MARK, LEVEL_PREFIX

if TYPE_CHECKING:
    from etl.parsers.tracelogging import BytesIORaise

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
    # every buffer of a file is the session's buffer size long, so a buffer whose header is
    # damaged is skipped by that size and reading goes on at the next one
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
    lib = _etl()
    try:
        header = lib.WmiBufferHeader.parse(buf[:BUFFER_HEADER])
        saved, flags = header.wnode.saved_offset, header.buffer_flag
    except lib.ConstructError as exc:
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
    pos = BUFFER_HEADER
    while pos + 4 <= end:
        rsize, kind = _record_size(buf, pos)
        if kind is None or pos + rsize > len(buf):
            reason = "truncated" if saved > len(buf) and kind is not None else "bad_event"
            yield Unit(offset + pos, len(buf) - pos, reason=reason,
                       raw=f"record at byte {offset + pos} cannot be cut (header {buf[pos:pos + 8].hex()}); "
                           f"the rest of its buffer ({len(buf) - pos} bytes) is skipped")
            return
        used = min(rsize + (-rsize % 8), len(buf) - pos)
        yield _unit(kind, buf, pos, rsize, offset, used, state)
        pos += used
    if saved > len(buf):  # the file ends inside this buffer
        yield Unit(offset + pos, len(buf) - pos, reason="truncated",
                   raw=f"file ends inside the buffer at byte {offset} ({len(buf)} of {size} bytes)")
    elif pos < len(buf):
        yield Unit(offset + pos, len(buf) - pos, counted=False)  # the unused end of the buffer


#: Record kinds by the header type byte (offset 2) of a record whose marker byte is 0xC0; the
#: value says where the record's size is and the least size its header needs.
_KINDS = {1: ("system", 4, 32), 2: ("system", 4, 32), 3: ("system", 4, 24), 4: ("system", 4, 24),
          0x10: ("perfinfo", 4, 16), 0x11: ("perfinfo", 4, 16), 0x12: ("event", 0, 80), 0x13: ("event", 0, 80),
          0x0A: ("trace", 0, 48), 0x14: ("trace", 0, 48)}
#: TraceMessage records (WPP) carry this in the high half of their first 32 bits.
WPP_MARKER = 0x9000


def _record_size(buf: bytes, pos: int) -> tuple[int, str | None]:
    """(size, kind) of the record at `pos`, kind None when its header is not one ETW writes.

    The layouts are the ones etl-parser's record structures define (SystemTraceRecord,
    PerfInfoTraceRecord, EventRecord, TraceRecord, WinTraceRecord); they are cut here with
    `struct` because etl-parser's EventRecord module imports its ~800 generated ETW provider
    parsers, seconds of start-up for every run, and a record is a few fixed fields anyway.
    """
    kind_byte, marker = buf[pos + 2], buf[pos + 3]
    if marker == 0xC0 and kind_byte in _KINDS:
        kind, at, least = _KINDS[kind_byte]
        if pos + at + 2 > len(buf):
            return 0, None
        size = struct.unpack_from("<H", buf, pos + at)[0]
        return (size, kind) if size >= least else (0, None)
    if struct.unpack_from("<H", buf, pos + 2)[0] == WPP_MARKER:
        size = struct.unpack_from("<H", buf, pos)[0]
        return (size, "wpp") if size >= 32 else (0, None)
    return 0, None


def _unit(kind: str, buf: bytes, pos: int, size: int, offset: int, used: int, state: dict[str, Any]) -> Unit:
    at = offset + pos
    if kind == "event":
        return _event(buf, pos, size, at, used, state)
    if kind == "system":
        hook_type, group = buf[pos + 6], buf[pos + 7]
        if group == 0 and hook_type == 0 and state["clock"] is None:  # the logfile header event
            state["clock"] = _header(buf[pos:pos + size])
        return Unit(at, used)
    if kind == "perfinfo":
        return Unit(at, used)
    if kind == "wpp":
        number = struct.unpack_from("<H", buf, pos + 4)[0]
        guid = uuid.UUID(bytes_le=bytes(buf[pos + 8:pos + 24]))
        tid, pid = struct.unpack_from("<II", buf, pos + 24)
        return Unit(at, used, reason="etl_needs_symbols",
                    raw=f"WPP message {number} of {guid} (pid {pid}, tid {tid}): decoding it needs the TMF symbols "
                        "(Get-WindowsUpdateLog on Windows)")
    tid, pid = struct.unpack_from("<II", buf, pos + 8)
    guid = uuid.UUID(bytes_le=bytes(buf[pos + 24:pos + 40]))
    return Unit(at, used, reason="etl_needs_symbols",
                raw=f"classic trace event of {guid} (pid {pid}, tid {tid}): decoding it needs its MOF class "
                    "or TMF symbols")


def _header(record: bytes) -> Clock | None:
    """The clock of the logfile header event, read with etl-parser's SystemTraceRecord."""
    lib = _etl()
    try:
        parsed = lib.SystemTraceRecord.parse(record)
    except lib.ConstructError:
        return None
    mof = bytes(parsed.mof_data)
    pointer64 = len(mof) >= 48 and struct.unpack_from("<I", mof, 44)[0] == 8
    return header_clock(mof, pointer64, parsed.system_header.system_time)


def _extended(buf: bytes, q: int, limit: int) -> tuple[dict[int, bytes], int] | None:
    """EVENT_HEADER_EXTENDED_DATA_ITEMs from `q` (8-byte aligned, chained by bit 0 of the third
    field): {type: data}, and where the payload starts; None when they run past the record."""
    items: dict[int, bytes] = {}
    while True:
        if q + 8 > limit:
            return None
        _, ext_type, linkage, dsize = struct.unpack_from("<HHHH", buf, q)
        if q + 8 + dsize > limit:
            return None
        items.setdefault(ext_type, bytes(buf[q + 8:q + 8 + dsize]))
        q += 8 + dsize
        q += -q % 8
        if not linkage & 1:
            return items, q


#: Parsed TraceLogging schemas by their bytes: a file repeats a few dozen event shapes.
_SCHEMAS: dict[bytes, Any] = {}
_MAX_SCHEMAS = 4096


def _tracelogging(meta: bytes, payload: bytes) -> tuple[str, dict[str, Any]]:
    """Event name and field values, with etl-parser's TraceLogging schema and field readers.

    Strings are read here: nul-terminated UTF-16 (the `Info` message) in one slice instead of
    two bytes per call (the bulk of the time on a WindowsUpdate ETL), nul-terminated and counted
    8-bit strings as UTF-8 or cp1252 (etl-parser reads them as ASCII), and counted UTF-16 ones,
    which etl-parser does not read. Should a later field be of a type no reader knows, the fields
    read before it (the message among them) are kept.
    """
    lib = _etl()
    scheme = _SCHEMAS.get(meta)
    if scheme is None:
        if len(_SCHEMAS) >= _MAX_SCHEMAS:
            _SCHEMAS.clear()
        scheme = _SCHEMAS[meta] = lib.TlMetaData.parse(meta)
    stream = lib.BytesIORaise(payload)
    values: dict[str, Any] = {}
    for f in scheme.fields:
        tag = f.tag_in
        try:
            if tag & lib.counted_tags:
                values[f.name] = lib.read_array_field(stream, tag)
            else:
                reader = lib.string_readers.get(tag & 0x1F)
                values[f.name] = reader(stream) if reader else lib.read_field(stream, tag)
        except lib.EtlException:
            if not values:
                raise
            break
    return scheme.name, values


def _utf16z(stream: io.BytesIO) -> str:
    """A nul-terminated UTF-16LE string at the stream's position; the stream moves past it."""
    data, start = stream.getvalue(), stream.tell()
    i = start
    while True:
        i = data.find(b"\0\0", i)
        if i < 0:
            raise EOFError("unterminated UTF-16 string")
        if (i - start) % 2 == 0:
            break
        i += 1
    stream.seek(i + 2)
    return data[start:i].decode("utf-16-le", errors="replace")


def _bytes_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _ansiz(stream: io.BytesIO) -> str:
    data, start = stream.getvalue(), stream.tell()
    end = data.find(b"\0", start)
    if end < 0:
        raise EOFError("unterminated string")
    stream.seek(end + 1)
    return _bytes_text(data[start:end])


def _counted(stream: BytesIORaise, wide: bool) -> str:
    """A counted string: a 16-bit length in bytes, then that many bytes."""
    size = struct.unpack("<H", stream.read_exact(2))[0]
    raw = stream.read(size)
    if len(raw) < size:
        raise EOFError("counted string runs past the payload")
    return raw.decode("utf-16-le", errors="replace") if wide else _bytes_text(raw)


@lru_cache(maxsize=1)
def _etl() -> SimpleNamespace:
    """etl-parser and construct, imported when the first ETL file is read: a scan without one
    does not pay their import (about 10 ms in every process)."""
    from construct import ConstructError
    from etl.error import EtlException
    from etl.parsers.tracelogging import BytesIORaise, TagIn, TlMetaData, read_array_field, read_field
    from etl.system import SystemTraceRecord
    from etl.wmi import WmiBufferHeader

    return SimpleNamespace(
        ConstructError=ConstructError, EtlException=EtlException, BytesIORaise=BytesIORaise,
        TlMetaData=TlMetaData, read_array_field=read_array_field, read_field=read_field,
        SystemTraceRecord=SystemTraceRecord, WmiBufferHeader=WmiBufferHeader,
        counted_tags=TagIn.CCOUNT.value | TagIn.VCCOUNT.value,
        string_readers={
            TagIn.UNICODESTRING.value: _utf16z,
            TagIn.ANSISTRING.value: _ansiz,
            TagIn.COUNTEDSTRING.value: lambda st: _counted(st, True),
            TagIn.COUNTEDANSISTRING.value: lambda st: _counted(st, False),
        },
        #: what reading one event can raise when its bytes are damaged
        event_errors=(EtlException, ConstructError, EOFError, ValueError, UnicodeDecodeError, struct.error),
    )


def _event(buf: bytes, pos: int, size: int, at: int, used: int, state: dict[str, Any]) -> Unit:
    flags, _prop, tid, pid, stamp_ticks = struct.unpack_from("<HHIIq", buf, pos + 4)
    provider = uuid.UUID(bytes_le=bytes(buf[pos + 24:pos + 40]))
    event_id = struct.unpack_from("<H", buf, pos + 40)[0]
    items: dict[int, bytes] = {}
    payload_at = pos + 80
    if flags & 0x0001:  # EVENT_HEADER_FLAG_EXTENDED_INFO
        got = _extended(buf, payload_at, pos + size)
        if got is None:
            return Unit(at, used, reason="bad_event",
                        raw=f"event of {provider} at byte {at}: its extended data runs past its end")
        items, payload_at = got
    if EXT_SCHEMA_TL not in items:
        return Unit(at, used, reason="etl_needs_symbols",
                    raw=f"event {event_id} of {provider} has no embedded schema: decoding it needs the "
                        "provider manifest or TMF symbols")
    try:
        component, fields = _tracelogging(items[EXT_SCHEMA_TL], bytes(buf[payload_at:pos + size]))
    except _etl().event_errors as exc:
        return Unit(at, used, reason="bad_event",
                    raw=f"TraceLogging event of {provider} at byte {at}: {type(exc).__name__}: {exc}")
    info = fields.get("Info")
    message = info if isinstance(info, str) else " ".join(f"{k}={v}" for k, v in fields.items())
    clock: Clock | None = state["clock"]
    ts = clock.utc(stamp_ticks) if clock is not None else None
    text_stamp = _text_stamp(clock.filetime(stamp_ticks)) if ts is not None else "????/??/?? ??:??:??"
    pid_s, tid_s = str(pid), str(tid)
    row = {
        "line_count": 1, "byte_offset": at, "kind": "line", "ts": ts,
        "pid": pid_s, "tid": tid_s, "component": component, "message": message,
        "provider": _provider_name(items.get(EXT_PROV_TRAITS))
        or ("WUTraceLogging" if provider == WU_PROVIDER else str(provider)),
        # the line Get-WindowsUpdateLog writes for this event (here in UTC)
        "raw": f"{text_stamp} {pid_s:<5} {tid_s:<5} {component:<15} {message}",
    }
    return Unit(at, used, row=row)


def _provider_name(traits: bytes | None) -> str | None:
    """The provider name from its traits item: a 2-byte size, then the nul-terminated name."""
    if not traits or len(traits) < 3:
        return None
    return traits[2:].split(b"\0", 1)[0].decode("utf-8", errors="replace") or None


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
    """Stream records from an ETL file, one WMI buffer in memory at a time.

    Should reading fail (an archive member found damaged), the units read so far are yielded
    first and the error is raised after them, so the scanner keeps them and reports the error.
    """
    rows: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    units = seen = symbols = 0
    try:
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
    except Exception:
        yield Batch(_records(rows, ctx.source), rejects_from_rows(rejects), units)
        raise
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
