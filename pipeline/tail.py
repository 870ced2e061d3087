"""Following one growing file exactly: who it is, where its lines end, and resumable parsing.

A checkpoint is (fingerprint of the first bytes, byte offset, line number). The bytes before the
offset are *committed*: their parquet parts never change while the file keeps those bytes. The
bytes after it are *provisional*: parsed again from the offset whenever the file changes, so a
record that may still grow (a continuation line, a last line without its newline) is never
frozen too early and never counted twice.

Where the offset goes after a pass depends on the format:
- WindowsUpdate.log: every line is its own record, so the offset moves to the last newline. The
  classic form's time zone comes from `Logging initialized (..., tz: +0530)` banners; the zone in
  force at the offset is kept and handed to the next pass as parser state
  (`ParseContext.state["tz_min"]`), so times stay what a whole-file scan gives.
- Formats that fold continuation lines (worker.log, omsupdatemgmt.log, the Azure Update Manager,
  waagent and Arc logs, generic text): their parsers emit the last, possibly unfinished record
  as the last batch of a stream. That batch is held back: it becomes the provisional part, and
  the offset moves to its first line (a record start), so the next pass parses that record
  again with whatever lines followed.

Documents (event XML/CSV/JSON exports, EVTX, the patch extensions' .status JSON) are not tailed;
watch parses them as a whole, and a rewrite replaces everything the earlier content gave.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from umtriage.parsers.base import Batch, Head, ParseContext, ParserSpec
from umtriage.parsers.detect import Detection
from umtriage.parsers.windowsupdate import CLASSIC_LINE, ETW_LINE, TZ_BANNER

from .hosts import normalise_host
from .process import FileStat, ScanOptions, SourceScanner
from .streams import RangeStream

#: Bytes hashed to recognise a file (all of them while it is shorter).
FP_BYTES = 256
#: Bytes before the checkpoint hashed to confirm that a file still holds what was read.
CHECK_BYTES = 256
#: Of the line formats, those whose records may take continuation lines that are still to come
#: (Azure Update Manager core/ext logs, the Windows patch extension's, waagent.log, Arc's logrus,
#: CBS.log/DISM.log).
FOLDING = frozenset({"omsupdatemgmt", "workerlog", "text", "linuxpatchext", "windowspatchext", "waagent", "arc",
                     "cbs"})
#: Line formats read incrementally; any other format (documents such as the patch extensions'
#: JSON .status files, which are rewritten whole) is parsed again as a whole when it changes.
TAILABLE = frozenset({"windowsupdate", "reportingevents"}) | FOLDING

_BANNER_TEXT = "Logging initialized"
_CLASSIC = re.compile(CLASSIC_LINE)
_ETW = re.compile(ETW_LINE.replace(r"\x{FEFF}", "\ufeff"))
_TZ = re.compile(TZ_BANNER)


def digest(data: bytes) -> str:
    """A short content hash (identity, not security)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def pread(fd: int, n: int, offset: int) -> bytes:
    """Up to `n` bytes at `offset` (fewer only at end of file)."""
    chunks, got = [], 0
    while got < n:
        b = os.pread(fd, min(n - got, 1 << 20), offset + got)
        if not b:
            break
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def head_print(fd: int, size: int) -> tuple[int, str]:
    """(length, hash) of the first FP_BYTES bytes, or of all of them for a shorter file."""
    n = min(size, FP_BYTES)
    return n, digest(pread(fd, n, 0))


def tail_print(fd: int, offset: int) -> str:
    """Hash of the CHECK_BYTES bytes before `offset`."""
    lo = max(0, offset - CHECK_BYTES)
    return digest(pread(fd, offset - lo, lo))


def same_file(fd: int, size: int, fp_len: int, fp: str, offset: int, check: str) -> bool:
    """True when the open file still starts with the fingerprinted bytes and holds, unchanged,
    the bytes just before the checkpoint: it is the file that was read, grown or renamed.

    Anything else (smaller than the checkpoint, other first bytes, other bytes before the
    checkpoint) is a truncation or a rewrite, whatever its name and inode.
    """
    if size < offset or size < fp_len:
        return False
    if digest(pread(fd, fp_len, 0)) != fp:
        return False
    return tail_print(fd, offset) == check


#: The running sums of no bytes at all (CRC-32 starts at 0, Adler-32 at 1).
EMPTY_PREFIX = "00000000:00000001"


def prefix_sum(fd: int, start: int, end: int, prev: str = EMPTY_PREFIX) -> str:
    """`prev` (the sums of the bytes before `start`) extended over [start, end).

    CRC-32 and Adler-32 carry their running value between calls, so the sums of a file's whole
    committed part grow as it is committed, each byte hashed once, and the state can store them.
    """
    crc, adler = (int(x, 16) for x in (prev or EMPTY_PREFIX).split(":"))
    pos = start
    while pos < end:
        b = os.pread(fd, min(1 << 20, end - pos), pos)
        if not b:
            break
        crc, adler = zlib.crc32(b, crc), zlib.adler32(b, adler)
        pos += len(b)
    return f"{crc:08x}:{adler:08x}"


def prefix_holds(fd: int, offset: int, want: str) -> bool:
    """True when the file's first `offset` bytes still give the committed sums `want`.

    The first bytes and the bytes before the checkpoint can be the same while the middle is
    not (a file replaced by one of the same size and head); this reads the whole prefix, so it
    runs only when the file's inode changed or it changed without growing.
    """
    return bool(want) and prefix_sum(fd, 0, offset) == want


def _newline(encoding: str) -> bytes:
    if encoding == "utf-16-le":
        return b"\n\x00"
    if encoding == "utf-16-be":
        return b"\x00\n"
    return b"\n"


def line_end(fd: int, start: int, end: int, encoding: str) -> int:
    """Offset just past the last newline in [start, end), or `start` when there is none."""
    nl = _newline(encoding)
    step = 1 << 16
    hi = end
    while hi > start:
        lo = max(start, hi - step)
        if len(nl) == 2 and (lo - start) % 2:
            lo -= 1  # UTF-16 code units are aligned on the text start
        buf = pread(fd, hi - lo, lo)
        pos = len(buf)
        while True:
            i = buf.rfind(nl, 0, pos)
            if i < 0:
                break
            if len(nl) == 1 or (lo + i - start) % 2 == 0:
                at = lo + i + len(nl)
                if len(nl) == 1 and at < end and pread(fd, 1, at) == b"\x00":  # LF NUL: a UTF-16 part's
                    at += 1  # newline in an 8-bit file, ended where the framer ends it (parsers/textio.py)
                return at
            pos = i + 1
        hi = lo + (len(nl) - 1)  # a two-byte newline may straddle the chunk border
        if hi <= start + len(nl) - 1:
            break
    return start


def count_lines(fd: int, start: int, end: int, encoding: str) -> int:
    """Newlines in [start, end) (used by --from-end to number the lines that follow)."""
    nl, total, pos = _newline(encoding), 0, start
    if len(nl) == 1:
        while pos < end:
            b = pread(fd, min(1 << 20, end - pos), pos)
            if not b:
                break
            total += b.count(nl)
            pos += len(b)
        return total
    dec = codecs.getincrementaldecoder(encoding)(errors="replace")
    while pos < end:
        b = pread(fd, min(1 << 20, end - pos), pos)
        if not b:
            break
        total += dec.decode(b).count("\n")
        pos += len(b)
    return total


def last_banner_tz(fd: int, start: int, end: int, encoding: str) -> int | None:
    """Zone (minutes east of UTC) of the last classic `Logging initialized` banner in [start, end).

    Mirrors the WindowsUpdate.log parser: a banner counts when its line has the classic prefix
    (and not the Windows 10 one) and carries `tz: +hhmm`. `start` must be a line start.
    """
    codec = "utf-8" if not encoding.startswith("utf-16") else encoding
    needle = _BANNER_TEXT.encode(codec)
    nl = _newline(encoding)
    found: int | None = None
    step, pos = 1 << 20, start
    while pos < end:
        hi = min(end, pos + step)
        buf = pread(fd, hi - pos, pos)
        at = buf.find(needle)
        while at >= 0:
            tz = _banner_tz(_whole_line(fd, pos + at, start, end, nl), codec)
            if tz is not None:
                found = tz
            at = buf.find(needle, at + len(needle))
        if hi >= end:
            break
        pos = hi - len(needle)  # overlap: a needle cut by the chunk border
    return found


def _whole_line(fd: int, at: int, start: int, end: int, nl: bytes) -> bytes:
    """The line holding byte `at` (without its newline), within [start, end)."""
    lo = max(start, at - (1 << 16))
    before = pread(fd, at - lo, lo)
    i = before.rfind(nl)
    while i >= 0 and len(nl) == 2 and (lo + i - start) % 2:
        i = before.rfind(nl, 0, i + 1)
    first = lo + i + len(nl) if i >= 0 else lo
    after = pread(fd, min(end, at + (1 << 16)) - at, at)
    j = after.find(nl)
    while j >= 0 and len(nl) == 2 and (at + j - start) % 2:
        j = after.find(nl, j + 1)
    last = at + j if j >= 0 else at + len(after)
    return pread(fd, last - first, first)


def _banner_tz(line_bytes: bytes, codec: str) -> int | None:
    line = line_bytes.decode(codec, errors="replace").removesuffix("\r")
    if _ETW.match(line) or not _CLASSIC.match(line):
        return None
    m = _TZ.search(line)
    if m is None:
        return None
    raw = m.group(1)
    sign = -1 if raw.startswith("-") else 1
    return sign * (int(raw[1:3]) * 60 + int(raw[3:5]))


@dataclass
class PassResult:
    """What one parse pass produced: parts (in the staging folder), counts, and the held batch."""

    stat: FileStat
    parts: dict[str, list[str]]
    ok: bool = True
    held: Batch | None = None
    problem: str | None = None


def resumable(spec: ParserSpec, *, tz: int | None, hold_last: bool, result: PassResult) -> ParserSpec:
    """The same parser, able to resume mid-file exactly and to hold its last batch back."""

    def parse(stream: BinaryIO, ctx: ParseContext) -> Iterator[Batch]:
        if spec.name == "windowsupdate" and tz is not None and ctx.start_line > 1:
            ctx = replace(ctx, state={**ctx.state, "tz_min": tz})  # the zone in force where we resume
        held: Batch | None = None
        for b in spec.parse(stream, ctx):
            if hold_last:
                if held is not None:
                    yield held
                held = b
            else:
                yield b
        result.held = held

    return replace(spec, parse=parse)


def replaying(spec: ParserSpec, batch: Batch) -> ParserSpec:
    """A parser that yields one batch already parsed (the held-back open record)."""

    def parse(_stream: BinaryIO, _ctx: ParseContext) -> Iterator[Batch]:
        yield batch

    return replace(spec, parse=parse)


@dataclass
class Source:
    """The fixed facts about a followed file that a pass needs."""

    source: str  # logical path, as a batch scan names it
    host: str
    spec: ParserSpec
    encoding: str


class PassRunner:
    """Parses byte ranges of files into parquet parts in a staging folder."""

    def __init__(self, staging: Path, options: ScanOptions):
        self.staging, self.options = staging, options
        self.count = 0

    def _scanner(self) -> SourceScanner:
        self.count += 1
        return SourceScanner(self.staging, f"p{os.getpid()}-{self.count:06d}", self.options)

    def _detection(self, src: Source, spec: ParserSpec) -> Detection:
        head = Head(name=src.source, raw=b"", text="", encoding=src.encoding, is_binary=False)
        return Detection(spec, head, 0)

    def parse_range(self, src: Source, fd: int, start: int, end: int, line: int, *, tz: int | None,
                    hold_last: bool, final: bool) -> PassResult:
        """Parse bytes [start, end) of the file as lines numbered from `line`."""
        scanner = self._scanner()
        result = PassResult(FileStat(src.source, normalise_host(src.host) or src.host, src.spec.name), {})
        spec = resumable(src.spec, tz=tz, hold_last=hold_last, result=result)
        stream = RangeStream(fd, start, end)
        overrides = {"start_line": line, "start_offset": start, "final": final}
        result.stat = scanner.scan_stream(src.source, stream, src.host, ctx_overrides=overrides,
                                          detection=self._detection(src, spec))
        result.parts = scanner.close()
        failed = [e for e in result.stat.errors if e.startswith(("reading stopped", "parser "))]
        if stream.short or failed:
            result.ok = False
            result.problem = failed[0] if failed else "the file became shorter while it was read"
        return result

    def replay(self, src: Source, batch: Batch) -> PassResult:
        """Match and write a batch held back by an earlier pass."""
        scanner = self._scanner()
        result = PassResult(FileStat(src.source, normalise_host(src.host) or src.host, src.spec.name), {})
        result.stat = scanner.scan_stream(src.source, io.BytesIO(b""), src.host,
                                          detection=self._detection(src, replaying(src.spec, batch)))
        result.parts = scanner.close()
        return result


def back_lines(fd: int, start: int, end: int, n: int, encoding: str) -> int:
    """Start of the last `n` lines of [start, end), a range that ends with a newline."""
    pos = end
    for _ in range(n):
        if pos <= start:
            return start
        pos = line_end(fd, start, pos - len(_newline(encoding)), encoding)
    return pos


def held_records(batch: Batch) -> int:
    """Records in a batch, counting those a parser left uncut (`quiet`)."""
    return batch.records.height + getattr(batch, "quiet", 0)
