"""Bytes to lines: encoding sniffing and vectorised line framing with exact byte offsets.

Every text parser reads through `frame_lines`, so line numbers, byte offsets, CRLF handling,
huge lines and undecodable bytes are handled once, the same way, for every format.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import polars as pl

from .base import RAW_CUT, ParseContext

HEAD_BYTES = 64 * 1024
#: Below this many bytes, line framing is done in Python (cheaper than a polars reader call).
SMALL_BODY = 1 << 20
#: A line longer than this is rejected ("line_too_long") instead of being parsed.
MAX_LINE_BYTES = 1 << 20
#: Most lines in one block. Every row costs a few hundred bytes on its way through a parser, so
#: a block of 8 MB of empty lines (8M rows) would take gigabytes; normal logs (about 140 bytes a
#: line) stay under this row count at the default batch size and keep their block boundaries.
MAX_BLOCK_ROWS = 100_000

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


def looks_binary(head: bytes, encoding: str) -> bool:
    """True for content that is not text in the sniffed encoding (NULs, control bytes)."""
    if encoding.startswith("utf-16"):
        return False
    sample = head[:8192]
    if not sample:
        return False
    if b"\x00" in sample:
        return True
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls > 0.1 * len(sample)


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
        line = pl.select(pl.when(too_long).then(line.str.slice(0, RAW_CUT)).otherwise(line)).to_series()
    frame = pl.DataFrame(
        {
            "line_no": pl.int_range(first_line, first_line + len(parts), eager=True, dtype=pl.Int64),
            "byte_offset": ends - step + first_offset,
            "line": line,
            "too_long": too_long,
        }
    )
    return frame, total


def _frame_utf8_fast(body: bytes, first_line: int, first_offset: int) -> tuple[pl.DataFrame, int] | None:
    """Rust-side framing for the common case: valid UTF-8 with one line-ending style.

    About 3x faster than splitting in Python; returns None (use the general path) for invalid
    UTF-8 or mixed CRLF/LF endings, where byte sizes could not be derived from the lines.
    """
    try:
        s = pl.read_lines(body)["line"]
    except pl.exceptions.ComputeError:
        return None
    n = len(s)
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
        line = pl.select(pl.when(too_long).then(s.str.slice(0, RAW_CUT)).otherwise(s)).to_series()
    frame = pl.DataFrame({
        "line_no": pl.int_range(first_line, first_line + len(s), eager=True, dtype=pl.Int64),
        "byte_offset": ends - step + first_offset,
        "line": line,
        "too_long": too_long,
    })
    return frame, len(body)


def _row_cut(body: bytes, start: int, max_rows: int) -> int:
    """The end of the max_rows-th line of body from `start` on (there are more lines than that).

    A bisection over C-speed newline counts: a block of empty lines is cut in a few dozen scans.
    """
    lo, hi = start, len(body)  # lines(lo) < max_rows <= lines(hi), lines(x): newlines in body[start:x]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if body.count(b"\n", start, mid) >= max_rows:
            hi = mid
        else:
            lo = mid
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


def _long_line_frame(line_no: int, offset: int, prefix: bytes) -> pl.DataFrame:
    text = prefix[:RAW_CUT * 4].decode("utf-8", errors="replace")[:RAW_CUT]
    return pl.DataFrame(
        {"line_no": [line_no], "byte_offset": [offset], "line": [text], "too_long": [True]},
        schema={"line_no": pl.Int64, "byte_offset": pl.Int64, "line": pl.String, "too_long": pl.Boolean},
    )


def frame_lines(
    stream: BinaryIO,
    encoding: str,
    *,
    batch_bytes: int = 8 << 20,
    start_line: int = 1,
    start_offset: int = 0,
    final: bool = True,
    fast: bool = True,
    max_rows: int = MAX_BLOCK_ROWS,
) -> Iterator[LineBlock]:
    """Yield blocks of whole lines from a byte stream, in order, with bounded memory.

    A block holds at most `batch_bytes` bytes and at most `max_rows` lines.
    The stream must be positioned after any BOM (the caller passes `start_offset` to keep
    offsets true to the file). A last line without a newline is emitted when `final`;
    otherwise it is left unread so a tailer can pick it up once it is complete.
    Lines longer than MAX_LINE_BYTES come out once, cut, with `too_long` set.
    `encoding` is a sniffed codec name; "auto" and "utf-8-sig" mean UTF-8, else cp1252.
    """
    if encoding.startswith("utf-16"):
        yield from _frame_utf16(stream, encoding, batch_bytes, start_line, start_offset, final)
        return
    line_no, offset = start_line, start_offset
    carry = b""
    skipping_long = False  # inside a line already reported as too long
    failed: list[BaseException] = []
    while True:
        chunk, at_end = _fill(stream, batch_bytes, failed)
        eof = not chunk
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
        if cut:  # one copy: the carried partial line and the whole lines of this chunk
            body, carry = b"".join((carry, memoryview(chunk)[:cut])), chunk[cut:]
        else:
            body, carry = b"", carry + chunk
        consumed = len(body)
        if at_end and final and carry and len(carry) <= MAX_LINE_BYTES:  # the last line has no newline
            body, consumed, carry = b"".join((body, carry, b"\n")), consumed + len(carry), b""
        if body:
            pieces, base = _row_bounded(body, max_rows), offset
            for k, piece in enumerate(pieces):
                # polars' reader pays a fixed cost per call; small bodies split faster in Python
                quick = _frame_utf8_fast(piece, line_no, offset) if fast and len(piece) > SMALL_BODY else None
                if quick is not None:
                    frame, _ = quick
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
    return frame_lines(stream, ctx.encoding, batch_bytes=ctx.batch_bytes, start_line=ctx.start_line,
                       start_offset=ctx.start_offset, final=ctx.final, fast=ctx.fast)


def _frame_utf16(
    stream: BinaryIO, encoding: str, batch_bytes: int, line_no: int, offset: int, final: bool
) -> Iterator[LineBlock]:
    """UTF-16 framing: decode incrementally, split on decoded newlines, count 2-byte units."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    carry = ""
    while True:
        chunk = stream.read(max(2, batch_bytes & ~1))
        eof = not chunk
        text = carry + decoder.decode(chunk, final=eof)
        cut = text.rfind("\n") + 1
        body, carry = text[:cut], text[cut:]
        missing_nl = False
        if eof and final and carry:
            body, carry, missing_nl = text + "\n", "", True
        if body:
            frame, size = _frame_text(body, "utf-16", line_no, offset)
            for k in range(0, frame.height, MAX_BLOCK_ROWS):  # bounded by rows like the other path
                yield LineBlock(frame.slice(k, MAX_BLOCK_ROWS), min(MAX_BLOCK_ROWS, frame.height - k))
            line_no += frame.height
            offset += size - (2 if missing_nl else 0)
        if len(carry) > MAX_LINE_BYTES:
            yield LineBlock(_long_line_frame(line_no, offset, carry.encode("utf-8", "replace")), 1)
            line_no += 1
            offset += len(carry.encode("utf-16-le"))
            carry = ""
        if eof:
            break
