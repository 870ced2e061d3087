"""Bytes to lines: encoding sniffing and vectorised line framing with exact byte offsets.

Every text parser reads through `frame_lines`, so line numbers, byte offsets, CRLF handling,
huge lines and undecodable bytes are handled once, the same way, for every format.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import polars as pl

from .base import RAW_CUT, ParseContext, nul_run_text

HEAD_BYTES = 64 * 1024
#: Below this many bytes, line framing is done in Python (cheaper than a polars reader call).
SMALL_BODY = 1 << 20
#: A line longer than this is rejected ("line_too_long") instead of being parsed. Its reject
#: keeps the first characters and names the error codes found in the part that was read, so they
#: are still counted (summary.json `codes_in_rejected_lines`).
MAX_LINE_BYTES = 1 << 20
#: Most lines in one block. Every row costs a few hundred bytes on its way through a parser, so
#: a block of 8 MB of empty lines (8M rows) would take gigabytes; normal logs (about 140 bytes a
#: line) stay under this row count at the default batch size and keep their block boundaries.
MAX_BLOCK_ROWS = 100_000
#: The columns of a framed block of lines.
FRAME_SCHEMA = {"line_no": pl.Int64, "byte_offset": pl.Int64, "line": pl.String, "too_long": pl.Boolean}
_CODE_IN_LONG = re.compile(r"(?i)(?<![0-9a-z])(?:0x|\[)([89a-f][0-9a-f]{7})(?![0-9a-z])")
LONG_LINE_CODES = 8


def cut_long_line(text: str) -> str:
    """A too-long line for its reject: its start, then the codes it holds (at most LONG_LINE_CODES)."""
    codes = list(dict.fromkeys(f"0x{m.upper()}" for m in _CODE_IN_LONG.findall(text)))[:LONG_LINE_CODES]
    if not codes:
        return text[:RAW_CUT]
    note = f" ... [line cut; codes in it: {' '.join(codes)}]"
    return text[: RAW_CUT - len(note)] + note


def _cut_long(line: pl.Series, too_long: pl.Series) -> pl.Series:
    cut = [cut_long_line(t) if long else t for t, long in zip(line.to_list(), too_long.to_list(), strict=True)]
    return pl.Series(line.name, cut, dtype=pl.String)

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def sniff_encoding(head: bytes) -> tuple[str, int]:
    """Return (codec, BOM length) for the start of a stream.

    BOMs decide first. Without one, a NUL in every other byte means UTF-16 (admins re-save
    logs with PowerShell's Out-File); otherwise "auto": UTF-8 where it decodes, else cp1252.
    """
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec, len(bom)
    sample = head[:4096]
    if len(sample) >= 4:
        even, odd = sample[0::2], sample[1::2]
        nul_even, nul_odd = even.count(0), odd.count(0)
        if nul_odd > 0.4 * len(odd) and nul_even < 0.05 * len(even):
            return "utf-16-le", 0
        if nul_even > 0.4 * len(even) and nul_odd < 0.05 * len(odd):
            return "utf-16-be", 0
    return "auto", 0


#: Control bytes that do not occur in text (TAB, LF, VT, FF, CR and ESC do).
_CONTROL_BYTES = bytes(b for b in range(32) if b < 9 or (13 < b < 32 and b != 27))


#: UTF-16LE/BE text of the Latin range: a character byte beside a NUL byte, at least 4 in a row.
_UTF16_RUN = re.compile(rb"(?:[\x01-\xff]\x00){4,}|(?:\x00[\x01-\xff]){4,}")
_NUL_RUN = re.compile(rb"\x00+")
#: A text head may hold this many NUL runs (a crash leaves one or two); binaries hold hundreds.
MAX_TEXT_NUL_RUNS = 16
_PRINTABLE = bytes(range(32, 127)) + b"\t\n\r"


def looks_binary(head: bytes, encoding: str) -> bool:
    """True for content that is not text in the sniffed encoding (NULs, control bytes).

    A few NUL runs (a crash leaves them where the file was preallocated) or a UTF-16 part in a
    UTF-8 log do not make a log binary: only what lies outside them is judged, so one NUL at
    byte 300 does not lose a WindowsUpdate.log. Executables, images and ETL traces scatter
    NULs everywhere and stay binary.
    """
    if encoding.startswith("utf-16"):
        return False
    sample = head[:8192]
    if not sample:
        return False
    if b"\x00" in sample:
        return _binary_with_nuls(head[:HEAD_BYTES])
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls > 0.1 * len(sample)


def _binary_with_nuls(sample: bytes) -> bool:
    """Judge a head holding NULs by the bytes outside its UTF-16 parts and NUL runs."""
    rest = _UTF16_RUN.sub(b"", sample)
    if len(_NUL_RUN.findall(rest)) > MAX_TEXT_NUL_RUNS:
        return True
    rest = rest.replace(b"\x00", b"")
    if not rest:
        return len(_UTF16_RUN.findall(sample)) == 0  # all NULs: nothing to read
    controls = len(rest) - len(rest.translate(None, _CONTROL_BYTES))
    try:
        rest.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(rest) - 4:  # not UTF-8 (an end cut by the head limit is): cp1252 or binary
            printable = len(rest) - len(rest.translate(None, _PRINTABLE))
            return controls > 0.01 * len(rest) or printable < 0.7 * len(rest)
    return controls > 0.01 * len(rest)


def decode_head(head: bytes, encoding: str, bom_len: int) -> str:
    """Decode the head for detection; never raises."""
    body = head[bom_len:]
    if encoding == "auto":
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start >= len(body) - 4:  # a character cut by the head limit
                return body[: exc.start].decode("utf-8", errors="replace")
            return body.decode("cp1252", errors="replace")
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    return body.decode(codec, errors="replace")


@dataclass
class LineBlock:
    """A block of whole lines: a frame with columns line_no, byte_offset, line, too_long."""

    frame: pl.DataFrame
    lines: int
    #: True on the block that ends the stream (known when the read that filled it hit the end):
    #: a parser that carries an open record to the next block can close it now instead.
    last: bool = False


def _decode_chunk(chunk: bytes) -> tuple[str, str]:
    """Decode a chunk of whole lines: UTF-8 when valid, else cp1252 (never fails)."""
    try:
        return chunk.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return chunk.decode("cp1252", errors="replace"), "cp1252"


def _frame_text(text: str, unit: str, first_line: int, first_offset: int) -> tuple[pl.DataFrame, int]:
    """Split decoded text (ending in a newline) into a frame of lines; return it and its byte size.

    `unit` says how to count bytes: "utf-8" (UTF-8 length), "cp1252" (one byte per
    character) or "utf-16" (two bytes per UTF-16 code unit).
    """
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    if len(parts) <= FEW_LINES:
        return _frame_few(parts, unit, first_line, first_offset)
    return _frame_many(parts, unit, first_line, first_offset)


def _frame_many(parts: list[str], unit: str, first_line: int, first_offset: int) -> tuple[pl.DataFrame, int]:
    """_frame_text's lines framed with polars (vectorised: for many lines)."""
    s = pl.Series("line", parts, dtype=pl.String)
    if unit == "utf-8":
        size, nl = s.str.len_bytes().cast(pl.Int64), 1
    elif unit == "cp1252":
        size, nl = s.str.len_chars().cast(pl.Int64), 1
    else:
        astral = s.str.count_matches(r"[\x{10000}-\x{10FFFF}]").cast(pl.Int64)
        size, nl = (s.str.len_chars().cast(pl.Int64) + astral) * 2, 2
    step = size + nl
    ends = step.cum_sum()
    total = int(ends[-1]) if len(ends) else 0
    too_long = size > MAX_LINE_BYTES
    line = s.str.strip_suffix("\r")
    if too_long.any():
        line = _cut_long(line, too_long)
    frame = pl.DataFrame(
        {
            "line_no": pl.int_range(first_line, first_line + len(parts), eager=True, dtype=pl.Int64),
            "byte_offset": ends - step + first_offset,
            "line": line,
            "too_long": too_long,
        }
    )
    return frame, total


#: Up to this many lines a frame is built in Python: a dozen polars calls cost about 0.7 ms, which
#: is what a bundle of 100k one-line files would otherwise pay per file.
FEW_LINES = 64
_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")


def _byte_size(part: str, unit: str) -> int:
    if unit == "utf-8":
        return len(part.encode("utf-8", "surrogatepass"))
    if unit == "cp1252":
        return len(part)
    return (len(part) + len(_ASTRAL.findall(part))) * 2


def _frame_few(parts: list[str], unit: str, first_line: int, first_offset: int) -> tuple[pl.DataFrame, int]:
    """_frame_text for a few lines: the same frame, from Python lists."""
    nl = 2 if unit == "utf-16" else 1
    offsets, lines, too_long, at = [], [], [], first_offset
    for part in parts:
        size = _byte_size(part, unit)
        offsets.append(at)
        at += size + nl
        long = size > MAX_LINE_BYTES
        text = part.removesuffix("\r")
        lines.append(cut_long_line(text) if long else text)
        too_long.append(long)
    frame = pl.DataFrame({"line_no": range(first_line, first_line + len(parts)), "byte_offset": offsets,
                          "line": lines, "too_long": too_long}, schema=FRAME_SCHEMA)
    return frame, at - first_offset


def _frame_utf8_fast(body: bytes, first_line: int, first_offset: int,
                     max_rows: int | None = None) -> tuple[pl.DataFrame, int] | None:
    """Rust-side framing for the common case: valid UTF-8 with one line-ending style.

    About 3x faster than splitting in Python; returns None (use the general path) for invalid
    UTF-8 or mixed CRLF/LF endings, where byte sizes could not be derived from the lines, and
    for a body of more than `max_rows` lines (the reader stops soon after that many).
    """
    try:
        s = pl.read_lines(body, n_rows=None if max_rows is None else max_rows + 1)["line"]
    except pl.exceptions.ComputeError:
        return None
    n = len(s)
    if max_rows is not None and n > max_rows:
        return None
    size = s.str.len_bytes().cast(pl.Int64)
    # read_lines strips one terminator per line, "\r\n" or "\n": the bytes it stripped tell the
    # style. All CRLF or all LF gives exact offsets; a mix takes the general path.
    stripped = len(body) - int(size.sum())
    if stripped == 2 * n:
        eol = 2
    elif stripped == n:
        eol = 1
    else:
        return None
    step = size + eol
    ends = step.cum_sum()
    too_long = size > MAX_LINE_BYTES
    line = s
    if too_long.any():
        line = _cut_long(s, too_long)
    frame = pl.DataFrame({
        "line_no": pl.int_range(first_line, first_line + len(s), eager=True, dtype=pl.Int64),
        "byte_offset": ends - step + first_offset,
        "line": line,
        "too_long": too_long,
    })
    return frame, len(body)


def _row_cut(body: bytes, start: int, max_rows: int) -> int:
    """The end of the max_rows-th line of body from `start` on (there are more lines than that).

    Newlines are counted at C speed in windows that double while they hold too few, and the
    window that holds the cut is bisected with counts relative to its start: each byte is
    counted about twice, whatever the line lengths (a block of empty lines or 8 MiB of 60-byte
    lines alike).
    """
    lo, need, width = start, max_rows, 1 << 12
    while True:  # lines in body[start:lo] < max_rows; `need` more end at or after lo
        hi = min(len(body), lo + width)
        got = body.count(b"\n", lo, hi)
        if got >= need:
            break
        lo, need, width = hi, need - got, width * 2
    while hi - lo > 1:  # lines(lo..x) < need <= lines(lo..hi)
        mid = (lo + hi) // 2
        got = body.count(b"\n", lo, mid)
        if got >= need:
            hi = mid
        else:
            lo, need = mid, need - got
    return hi


def _row_bounded(body: bytes, max_rows: int) -> list[bytes]:
    """body (whole lines) as pieces of at most max_rows lines each."""
    if len(body) <= max_rows:
        return [body]
    left = body.count(b"\n")
    pieces, start = [], 0
    while left > max_rows:
        cut = _row_cut(body, start, max_rows)
        pieces.append(body[start:cut])
        start, left = cut, left - max_rows
    pieces.append(body[start:] if start else body)
    return pieces


#: What a damaged 8-bit body can hold besides text: UTF-16LE runs (Latin range) and NUL runs.
_REGION = re.compile(rb"(?P<u16>(?:[\x01-\xff]\x00){4,})|(?P<nul>\x00+)")


class _Pieces:
    """The lines of a damaged body, built from its regions: [text, bytes, too_long, has_nul].

    A line is what ends at a newline of whichever encoding its part is in, so the lines counted
    are the file's physical lines whatever it holds; a line holding a NUL run is one reject.
    """

    def __init__(self) -> None:
        self.items: list[list] = []
        self.open = False  # the last line has no newline yet (a NUL run or UTF-16 part follows it)

    def _append(self, text: str, size: int, nul: bool, ends_line: bool) -> None:
        if self.open:  # the rest of the line begun before
            item = self.items[-1]
            if len(item[0]) < RAW_CUT:
                item[0] += text
            item[1] += size
            item[3] = item[3] or nul
        else:
            self.items.append([text, size, False, nul])
        self.open = not ends_line

    def lines(self, text: str, nl: int, size_of) -> None:
        """Add the lines of decoded `text`; `nl` bytes per newline, `size_of(part)` bytes per part."""
        parts = text.split("\n")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last and not part:
                break
            self._append(part, size_of(part) + (0 if last else nl), False, not last)

    def nul_run(self, n: int) -> None:
        self._append(nul_run_text(n), n, True, False)

    def rows(self) -> tuple[tuple, tuple, tuple]:
        """(texts, sizes, too_long flags); a line with a NUL run is flagged, so parsers reject it."""
        texts, sizes, longs = [], [], []
        for text, size, _, nul in self.items:
            long = nul or size > MAX_LINE_BYTES
            text = text.removesuffix("\r")
            texts.append(text[:RAW_CUT] if long else text)
            sizes.append(size)
            longs.append(long)
        return tuple(texts), tuple(sizes), tuple(longs)


def _utf16_size(part: str) -> int:
    return len(part.encode("utf-16-le", "surrogatepass"))


def _frame_regions(body: bytes, first_line: int, first_offset: int) -> pl.DataFrame:
    """Frame a body holding NULs region by region: 8-bit text, UTF-16LE parts (re-detected
    where the encoding changes) and NUL runs; a line holding a NUL run is one `nul_run` reject."""
    pieces = _Pieces()
    pos = 0
    if body[:1] == b"\x00" and _UTF16_RUN.match(body, 1):  # the NUL of a UTF-16 LF a read stopped before
        first_offset += 1
        body = body[1:]
    for m in [*_REGION.finditer(body), None]:
        start = len(body) if m is None else m.start()
        if start > pos:
            text, unit = _decode_chunk(body[pos:start])
            size = (lambda t: len(t.encode("utf-8", "surrogatepass"))) if unit == "utf-8" else len
            pieces.lines(text, 1, size)
        if m is None:
            break
        if m.lastgroup == "nul":
            pieces.nul_run(m.end() - m.start())
        else:
            pieces.lines(m.group().decode("utf-16-le", "replace"), 2, _utf16_size)
        pos = m.end()
    texts, sizes, longs = pieces.rows()
    size = pl.Series(sizes, dtype=pl.Int64)
    ends = size.cum_sum()
    return pl.DataFrame({
        "line_no": pl.int_range(first_line, first_line + len(texts), eager=True, dtype=pl.Int64),
        "byte_offset": ends - size + first_offset,
        "line": pl.Series(texts, dtype=pl.String),
        "too_long": pl.Series(longs, dtype=pl.Boolean),
    })


class _Rest:
    """The stream from a point: bytes already read, then the rest (for a change of encoding)."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head, self._stream = head, stream

    def read(self, n: int = -1) -> bytes:
        if self._head:
            out = self._head if n < 0 else self._head[:n]
            self._head = self._head[len(out):]
            return out
        return self._stream.read(n)


def _long_line_frame(line_no: int, offset: int, prefix: bytes) -> pl.DataFrame:
    text = cut_long_line(prefix.decode("utf-8", errors="replace"))
    return pl.DataFrame(
        {"line_no": [line_no], "byte_offset": [offset], "line": [text], "too_long": [True]},
        schema=FRAME_SCHEMA,
    )


def frame_lines(
    stream: BinaryIO,
    encoding: str,
    *,
    batch_bytes: int | Callable[[], int] = 8 << 20,
    start_line: int = 1,
    start_offset: int = 0,
    final: bool = True,
    fast: bool = True,
    max_rows: int = MAX_BLOCK_ROWS,
) -> Iterator[LineBlock]:
    """Yield blocks of whole lines from a byte stream, in order, with bounded memory.

    A block holds at most `batch_bytes` bytes and at most `max_rows` lines; `batch_bytes` may
    be a function, asked before each read, so a consumer can shrink blocks whose every line it
    keeps (see ParseContext.block_bytes).
    The stream must be positioned after any BOM (the caller passes `start_offset` to keep
    offsets true to the file). A last line without a newline is emitted when `final`;
    otherwise it is left unread so a tailer can pick it up once it is complete.
    Lines longer than MAX_LINE_BYTES come out once, cut, with `too_long` set.
    `encoding` is a sniffed codec name; "auto" and "utf-8-sig" mean UTF-8, else cp1252.
    """
    budget = batch_bytes if callable(batch_bytes) else (lambda: batch_bytes)
    if encoding.startswith("utf-16"):
        yield from _frame_utf16(stream, encoding, budget(), start_line, start_offset, final)
        return
    line_no, offset = start_line, start_offset
    carry = b""
    skipping_long = False  # inside a line already reported as too long
    failed: list[BaseException] = []
    cr_only: bool | None = None  # decided on the first read: no LF but CRs means old Mac line ends
    while True:
        chunk, at_end = _fill(stream, budget(), failed)
        eof = not chunk
        if cr_only is None and chunk:
            cr_only = b"\n" not in chunk and b"\r" in chunk
        if cr_only:  # same length, so every byte offset stays true
            chunk = chunk.replace(b"\r", b"\n")
        if skipping_long:  # carry is empty here
            nl = chunk.find(b"\n")
            if nl < 0:
                offset += len(chunk)
                if eof:
                    break
                continue
            offset += nl + 1
            chunk = chunk[nl + 1 :]
            skipping_long = False
        cut = chunk.rfind(b"\n") + 1
        if 0 < cut < len(chunk) and chunk[cut] == 0:  # the LF of a UTF-16 part: keep its NUL with it
            cut += 1
        if cut:  # one copy: the carried partial line and the whole lines of this chunk
            body, carry = b"".join((carry, memoryview(chunk)[:cut])), chunk[cut:]
        else:
            body, carry = b"", carry + chunk
        consumed = len(body)
        if at_end and final and carry and len(carry) <= MAX_LINE_BYTES:  # the last line has no newline
            # ended as the lines before it, so a CRLF file cut mid-line keeps one line-end style
            # (and the fast path); a carry ending in CR gets LF, which the general path reads alike
            eol = b"\r\n" if body.endswith(b"\r\n") and not carry.endswith(b"\r") else b"\n"
            body, consumed, carry = b"".join((body, carry, eol)), consumed + len(carry), b""
        damaged = b"\x00" in body  # NUL runs or UTF-16 parts: framed region by region, in one piece
        # polars' reader pays a fixed cost per call; small bodies split faster in Python
        try_fast = fast and not damaged and len(body) > SMALL_BODY
        # The usual body: valid UTF-8 within the row bound, framed in one call with no newline
        # count first; more lines than that (or other bytes) take the row-bounded path below.
        whole = _frame_utf8_fast(body, line_no, offset, max_rows) if try_fast else None
        if whole is not None:
            frame = whole[0]
            yield LineBlock(frame, frame.height, last=at_end and final and not carry)
            line_no += frame.height
            offset += consumed
        elif body:
            pieces, base = ([body] if damaged else _row_bounded(body, max_rows)), offset
            try_fast = try_fast and len(pieces) > 1  # one piece failed above for its bytes, not its rows
            for k, piece in enumerate(pieces):
                quick = _frame_utf8_fast(piece, line_no, offset) if try_fast and len(piece) > SMALL_BODY else None
                if quick is not None:
                    frame, _ = quick
                elif damaged:
                    frame = _frame_regions(piece, line_no, offset)
                else:
                    text, unit = _decode_chunk(piece)
                    frame, _ = _frame_text(text, unit, line_no, offset)
                yield LineBlock(frame, frame.height, last=at_end and final and not carry and k == len(pieces) - 1)
                line_no += frame.height
                offset += len(piece)
            offset = base + consumed  # a last line without newline got one added that is not in the file
        if len(carry) > MAX_LINE_BYTES:
            yield LineBlock(_long_line_frame(line_no, offset, carry), 1)
            line_no += 1
            offset += len(carry)
            carry = b""
            skipping_long = True
        if eof:
            break


def _fill(stream: BinaryIO, n: int, failed: list[BaseException]) -> tuple[bytes, bool]:
    """Up to `n` bytes, reading again after short reads (archive members give them), and whether
    the stream ended: a small file then is one block, with its last line, not two.

    A read that fails after some bytes came is held in `failed` (raised on the next call), so
    the lines before it are still parsed, as with single reads.
    """
    if failed:
        raise failed.pop()
    first = stream.read(n)
    if not first or len(first) >= n:
        return first, not first
    parts, got = [first], len(first)
    while got < n:
        try:
            more = stream.read(n - got)
        except Exception as exc:
            failed.append(exc)
            return b"".join(parts), False
        if not more:
            return b"".join(parts), True
        parts.append(more)
        got += len(more)
    return b"".join(parts), False


def context_lines(stream: BinaryIO, ctx: ParseContext) -> Iterator[LineBlock]:
    """frame_lines with everything taken from the parse context (what every text parser wants)."""
    return frame_lines(stream, ctx.encoding, batch_bytes=ctx.block_bytes, start_line=ctx.start_line,
                       start_offset=ctx.start_offset, final=ctx.final, fast=ctx.fast)


#: An LF byte that is not followed by a NUL: in UTF-16 (LE or BE) text of the Latin range every LF is.
_LONE_LF = re.compile(rb"\n[^\x00]")


def _eight_bit_start(chunk: bytes) -> int | None:
    """Where a UTF-16 stream turns into UTF-8/ASCII text (an appended tail), or None.

    UTF-16 text of any script has a NUL byte in every few, and its line ends are LF NUL: a run
    of 64 bytes without a NUL, holding 2 LFs, free of control bytes and valid as UTF-8 cannot
    be UTF-16. The caller first compares LF counts (bytes and decoded), which rules the
    question out at C speed for plain UTF-16.
    """
    pos = 0
    while (m := _LONE_LF.search(chunk, pos)) is not None:
        start = chunk.rfind(b"\x00", 0, m.start()) + 1
        end = chunk.find(b"\x00", m.start())
        end = len(chunk) if end < 0 else end
        run = chunk[start:end]
        if len(run) >= 64 and run.count(b"\n") >= 2 and run.translate(None, _CONTROL_BYTES) == run:
            try:
                run.decode("utf-8")
                return start
            except UnicodeDecodeError as exc:
                if exc.start >= len(run) - 4:  # a character cut by the end of the read
                    return start
        pos = end
    return None


def _frame_utf16_text(body: str, first_line: int, first_offset: int) -> tuple[pl.DataFrame, int]:
    """_frame_text for decoded UTF-16; a line holding a NUL run (U+0000) is one `nul_run` reject."""
    if "\x00" not in body:
        return _frame_text(body, "utf-16", first_line, first_offset)
    pieces = _Pieces()
    for k, seg in enumerate(re.split("(\x00+)", body)):
        if k % 2:
            pieces.nul_run(2 * len(seg))
        elif seg:
            pieces.lines(seg, 2, _utf16_size)
    texts, sizes, longs = pieces.rows()
    size = pl.Series(sizes, dtype=pl.Int64)
    ends = size.cum_sum()
    frame = pl.DataFrame({
        "line_no": pl.int_range(first_line, first_line + len(texts), eager=True, dtype=pl.Int64),
        "byte_offset": ends - size + first_offset,
        "line": pl.Series(texts, dtype=pl.String),
        "too_long": pl.Series(longs, dtype=pl.Boolean),
    })
    return frame, int(ends[-1])


def _frame_utf16(
    stream: BinaryIO, encoding: str, batch_bytes: int, line_no: int, offset: int, final: bool
) -> Iterator[LineBlock]:
    """UTF-16 framing: decode incrementally, split on decoded newlines, count 2-byte units.

    A UTF-8 part appended to the file (a script that wrote to a PowerShell-made log) is seen
    where it starts, and the rest of the stream is framed as 8-bit text from there.
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    carry = ""
    cr_only: bool | None = None
    while True:
        chunk = stream.read(max(2, batch_bytes & ~1))
        state = decoder.getstate()
        new = decoder.decode(chunk, final=not chunk)
        # every 0x0A byte of UTF-16 text is an LF code unit, but for a rare CJK character: more
        # 0x0A bytes than decoded LFs is where an 8-bit part may be
        switch = _eight_bit_start(chunk) if chunk.count(b"\n") > new.count("\n") else None
        rest = b""
        if switch is not None:
            chunk, rest = chunk[:switch], chunk[switch:]
            decoder.setstate(state)
            new = decoder.decode(chunk, final=True)
        eof = not chunk or switch is not None
        text = carry + new
        if cr_only is None and text:
            cr_only = "\n" not in text and "\r" in text
        if cr_only:
            text = text.replace("\r", "\n")
        cut = text.rfind("\n") + 1
        body, carry = text[:cut], text[cut:]
        missing_nl = False
        if eof and (final or switch is not None) and carry:
            body, carry, missing_nl = text + "\n", "", True
        if body:
            frame, size = _frame_utf16_text(body, line_no, offset)
            for k in range(0, frame.height, MAX_BLOCK_ROWS):  # bounded by rows like the other path
                yield LineBlock(frame.slice(k, MAX_BLOCK_ROWS), min(MAX_BLOCK_ROWS, frame.height - k))
            line_no += frame.height
            offset += size - (2 if missing_nl else 0)
        if len(carry) > MAX_LINE_BYTES:
            yield LineBlock(_long_line_frame(line_no, offset, carry.encode("utf-8", "replace")), 1)
            line_no += 1
            offset += len(carry.encode("utf-16-le"))
            carry = ""
        if switch is not None:
            if len(chunk) % 2:  # a half code unit before the switch was decoded as U+FFFD: 1 byte, not 2
                offset -= 1
            yield from frame_lines(_Rest(rest, stream), "auto", batch_bytes=batch_bytes, start_line=line_no,
                                   start_offset=offset, final=final)
            return
        if eof:
            break
