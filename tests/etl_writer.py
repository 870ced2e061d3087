"""A small writer of ETL files, for tests: no public WindowsUpdate ETL can be fetched here.

It lays out what the ETW logger writes to a file: fixed-size WMI buffers (72-byte
WMI_BUFFER_HEADER built with etl-parser's own `WmiBufferHeader` structure), the logfile header
event first (SYSTEM_TRACE_HEADER + TRACE_LOGFILE_HEADER, 64-bit layout with the 4 alignment bytes
before BootTime), then EVENT_HEADER records with their extended data items: the provider traits
(name) and the TraceLogging event schema (event name, fields and their in-types), followed by the
payload. Records are 8-byte aligned. `wpp` records are TraceMessage records (WPP, pre-1709).
The tests read every file back with etl-parser's reader, which shows the layout is the one that
library (and so the parser) expects.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from etl.wmi import WmiBufferHeader

WU_PROVIDER = uuid.UUID("196f7a0b-c447-4e45-8c5c-e868d637e4d8")
_EPOCH_FT = 116_444_736_000_000_000


def filetime(dt: datetime) -> int:
    """100 ns ticks since 1601 for an aware datetime (exact to the microsecond)."""
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return _EPOCH_FT + (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


@dataclass
class WuEvent:
    """One Windows Update event: what Get-WindowsUpdateLog prints of it."""

    when: datetime  # UTC
    pid: int
    tid: int
    component: str
    message: str
    extra_ticks: int = 0  # 100 ns ticks below the microsecond (the text form shows 7 digits)

    def text_line(self) -> str:
        """The line the cmdlet writes (`yyyy/MM/dd HH:mm:ss.fffffff`, PID/TID padded to 5, component to 15)."""
        ticks = self.when.microsecond * 10 + self.extra_ticks
        return (f"{self.when:%Y/%m/%d %H:%M:%S}.{ticks:07d} {self.pid!s:<5} {self.tid!s:<5} "
                f"{self.component:<15} {self.message}")


@dataclass
class EtlWriter:
    start: datetime  # session start, UTC
    perf_freq: int = 10_000_000  # QPC frequency; 10 MHz on current Windows
    header_ticks: int = 987_654_321_000  # the session clock when the file was started
    clock_type: int = 1  # 1 QPC, 2 system time, 3 CPU cycles
    buffer_size: int = 4096
    cpu_mhz: int = 2400
    boot_time: datetime | None = None
    records: list[bytes] = field(default_factory=list)

    # -- clock -------------------------------------------------------------------------------
    def ticks(self, ft: int) -> int:
        """Session-clock value for a FILETIME (what the logger stamps an event with)."""
        if self.clock_type == 2:
            return ft
        freq = self.perf_freq if self.clock_type == 1 else self.cpu_mhz * 1_000_000
        return self.header_ticks + (ft - filetime(self.start)) * freq // 10_000_000

    # -- records -----------------------------------------------------------------------------
    def header_record(self) -> bytes:
        tz = struct.pack("<i", 0) + "UTC".encode("utf-16-le").ljust(64, b"\0") + bytes(16) + struct.pack("<i", 0)
        tz += "UTC".encode("utf-16-le").ljust(64, b"\0") + bytes(16) + struct.pack("<i", 0)
        assert len(tz) == 172
        boot = filetime(self.boot_time) if self.boot_time else filetime(self.start) - 3 * 86_400 * 10_000_000
        mof = struct.pack("<IIIIqIIIIIIII", self.buffer_size, 0x0A00_0002, 19041, 4, 0, 156_250, 64, 0x4000001,
                          0, 0, 8, 0, self.cpu_mhz)
        mof += struct.pack("<QQ", 0, 0) + tz + bytes(4)
        mof += struct.pack("<qqqII", boot, self.perf_freq, filetime(self.start), self.clock_type, 0)
        assert len(mof) == 280
        mof += "WindowsUpdate".encode("utf-16-le") + b"\0\0"
        mof += r"C:\Windows\Logs\WindowsUpdate\WindowsUpdate.etl".encode("utf-16-le") + b"\0\0"
        size = 32 + len(mof)
        head = struct.pack("<HBB", 2, 2, 0xC0) + struct.pack("<HBB", size, 0, 0)
        head += struct.pack("<IIqII", 0, 4, self.header_ticks, 0, 0)
        return _align(head + mof)

    def event(self, ev: WuEvent, provider: uuid.UUID = WU_PROVIDER, provider_name: str = "WUTraceLogging",
              fields: list[tuple[str, int, bytes]] | None = None, schema: bool = True) -> bytes:
        """An EVENT_HEADER record; by default one `Info` UNICODESTRING field holding the message."""
        if fields is None:
            fields = [("Info", 1, ev.message.encode("utf-16-le") + b"\0\0")]
        meta = b"\0" + ev.component.encode("ascii") + b"\0"
        meta += b"".join(name.encode("ascii") + b"\0" + bytes([tag]) for name, tag, _ in fields)
        meta = struct.pack("<H", len(meta) + 2) + meta
        traits = provider_name.encode("ascii") + b"\0"
        traits = struct.pack("<H", len(traits) + 2) + traits
        items = [(EXT_PROV_TRAITS, traits)] + ([(EXT_SCHEMA_TL, meta)] if schema else [])
        ext = b""
        for i, (kind, data) in enumerate(items):
            more = 1 if i + 1 < len(items) else 0
            ext += _align(struct.pack("<HHHH", 0, kind, more, len(data)) + data)
        payload = b"".join(value for _, _, value in fields)
        ft = filetime(ev.when) + ev.extra_ticks
        header_rest = struct.pack("<HHIIq", 0x0001 | 0x0040, 0x0008, ev.tid, ev.pid, self.ticks(ft))
        header_rest += provider.bytes_le + struct.pack("<HBBBBHQ", 0, 0, 0, 4, 0, 0, 0x8000_0000_0000)
        header_rest += struct.pack("<Q", 0) + bytes(16)
        size = 4 + len(header_rest) + len(ext) + len(payload)
        return _align(struct.pack("<HBB", size, 0x13, 0xC0) + header_rest + ext + payload)

    def wpp(self, message_number: int, pid: int, tid: int, data: bytes = b"\x01\x02\x03\x04") -> bytes:
        """A TraceMessage (WPP) record, as pre-1709 Windows Update wrote: undecodable without TMF."""
        guid = uuid.UUID("1f9e54c8-9e31-3e53-867d-d9f39756ad7f")
        head = struct.pack("<HHHH", 32 + len(data), 0x9000, message_number, 0x2B) + guid.bytes_le
        head += struct.pack("<II", tid, pid)
        return _align(head + data)

    # -- file --------------------------------------------------------------------------------
    def build(self, records: list[bytes]) -> bytes:
        """The file: the header record alone in the first buffer (as the logger flushes it), then
        the records packed into fixed-size buffers."""
        buffers, current = [[self.header_record()]], []
        room = self.buffer_size - 72
        for rec in records:
            assert len(rec) <= room, "record larger than a buffer"
            if sum(map(len, current)) + len(rec) > room:
                buffers.append(current)
                current = []
            current.append(rec)
        if current:
            buffers.append(current)
        return b"".join(self._buffer(i, recs) for i, recs in enumerate(buffers))

    def _buffer(self, index: int, recs: list[bytes]) -> bytes:
        body = b"".join(recs)
        saved = 72 + len(body)
        header = WmiBufferHeader.build({
            "wnode": {
                "buffer_size": self.buffer_size, "saved_offset": saved, "current_offset": saved,
                "reference_count": 0, "timestamp": self.header_ticks + index, "sequence_number": index,
                "clock": {"type": self.clock_type, "frequency": 0},
                "client_context": {"processor_index": 0, "logger_id": 33}, "state": 0,
            },
            "offset": saved,
            "buffer_flag": 0,
            "buffer_type": 4 if index == 0 else 0,
            "padding": bytes(16),
        })
        return header + body + b"\xff" * (self.buffer_size - saved)


EXT_SCHEMA_TL, EXT_PROV_TRAITS = 11, 12


def _align(b: bytes) -> bytes:
    return b + bytes(-len(b) % 8)
