"""Binary Windows event logs (.evtx), read with the Rust-backed `evtx` package.

An EVTX stores an event's insertion strings, not its rendered description (that needs the
provider's message DLL), so the message of a record is its `<Data>` strings joined by
newlines: the HybridAgent exception text of an Operations Manager 4502 is one of them.
Records go through the same XML-to-fields mapping as wevtutil exports (`event_xml`).

Damaged chunks are skipped by the reader and reported here as `bad_chunk` rejects, found by
our own walk over the chunk headers, which also gives each record its byte offset.
"""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import evtx

from .base import Batch, Head, ParseContext, ParserSpec
from .event_common import make_batch
from .event_xml import EventXmlError, row_from_xml

NAME = "evtx"

FILE_MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
RECORD_MAGIC = 0x00002A2A
FILE_HEADER_SIZE = 4096
CHUNK_SIZE = 65536
#: Records pulled from the reader per batch; warnings are caught per pull, never across a yield.
BATCH_RECORDS = 2000

_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>\s*")
_BETWEEN_TAGS = re.compile(r">\s+<")


@dataclass(frozen=True)
class Chunk:
    """One 64 KiB chunk as its header describes it."""

    index: int
    offset: int
    ok: bool
    first_id: int = 0
    last_id: int = 0
    signature: bytes = b""
    empty: bool = False  # all zero bytes: unused space, not damage


#: An EVTX that is not a plain file (an archive member) is read into memory up to this size;
#: nothing from an untrusted bundle is ever spooled to disk outside the output folder.
MAX_IN_MEMORY = 256 << 20


def _open(src: str | bytes) -> BinaryIO:
    """A fresh handle on the source: a file path or the bytes of an archive member."""
    return open(src, "rb") if isinstance(src, str) else io.BytesIO(src)


def _size(src: str | bytes) -> int:
    return os.path.getsize(src) if isinstance(src, str) else len(src)


class ZeroPadded(io.RawIOBase):
    """A file cut inside a chunk, seen with zeros up to the chunk's end.

    The reader skips a chunk it cannot read whole; padded, the records before the cut parse
    (a record cut in two then fails on its own, at the end), without copying the file.
    """

    def __init__(self, src: str | bytes, size: int, padded: int) -> None:
        self._f = _open(src)
        self._size, self._padded, self._pos = size, padded, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._padded}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, b) -> int:  # type: ignore[override]
        want = min(len(b), max(0, self._padded - self._pos))
        real = b""
        if self._pos < self._size:
            self._f.seek(self._pos)
            real = self._f.read(min(want, self._size - self._pos))
        data = real + bytes(want - len(real))
        b[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        self._f.close()
        super().close()


def truncation(size: int) -> int:
    """Bytes of the last chunk present when the file ends inside a chunk, else 0."""
    return 0 if size < FILE_HEADER_SIZE else (size - FILE_HEADER_SIZE) % CHUNK_SIZE


def scan_chunks(path: str | bytes) -> list[Chunk]:
    """Read every chunk header of an EVTX file (128 bytes per 64 KiB chunk)."""
    chunks = []
    with _open(path) as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(0)
        for index in range(max(0, -(-(size - FILE_HEADER_SIZE) // CHUNK_SIZE))):  # a cut last chunk too
            offset = FILE_HEADER_SIZE + index * CHUNK_SIZE
            f.seek(offset)
            header = f.read(40)
            if len(header) < 40:  # too little of the cut chunk to tell: the truncation reject says it
                break
            if header[:8] == CHUNK_MAGIC:
                first_id, last_id = struct.unpack_from("<QQ", header, 24)
                chunks.append(Chunk(index, offset, True, first_id, last_id))
            else:
                f.seek(offset)
                empty = not f.read(CHUNK_SIZE).strip(b"\x00")
                chunks.append(Chunk(index, offset, False, signature=header[:8], empty=empty))
    return chunks


class RecordOffsets:
    """Map record IDs to byte offsets by walking record headers, one chunk at a time."""

    def __init__(self, path: str | bytes, chunks: list[Chunk]) -> None:
        self._path = path
        self._good = [c for c in chunks if c.ok]
        self._current: int | None = None  # index into _good
        self._map: dict[int, int] = {}
        self.ends: dict[int, int] = {}  # where each record found so far ends, by its header

    def _load(self, i: int) -> None:
        chunk = self._good[i]
        with _open(self._path) as f:
            f.seek(chunk.offset)
            data = f.read(CHUNK_SIZE)
        found, pos = {}, 512
        self.ends = {}
        while pos + 16 <= len(data):
            magic, size, record_id = struct.unpack_from("<IIQ", data, pos)
            if magic != RECORD_MAGIC or size < 24:
                break
            found[record_id] = chunk.offset + pos
            self.ends[record_id] = chunk.offset + pos + size
            pos += size
        self._current, self._map = i, found

    def offset(self, record_id: int | None) -> int:
        """Byte offset of the record, or 0 when no chunk holds it."""
        if record_id is None or not self._good:
            return 0
        if record_id in self._map:
            return self._map[record_id]
        candidates = []
        if self._current is not None and self._current + 1 < len(self._good):
            candidates.append(self._current + 1)
        candidates += [i for i, c in enumerate(self._good) if c.first_id <= record_id <= c.last_id]
        for i in candidates:
            if i != self._current:
                self._load(i)
                if record_id in self._map:
                    return self._map[record_id]
        return 0


def detect(head: Head) -> bool:
    """An EVTX file starts with the `ElfFile\\0` signature."""
    return head.raw.startswith(FILE_MAGIC)


def _as_source(stream: BinaryIO) -> str | bytes | None:
    """The file's path when the stream is a plain file, else its bytes (None when too large).

    The Rust reader and our chunk walk each need their own handle, and archive members are
    not files, so a member is held in memory (bounded by MAX_IN_MEMORY) rather than spooled.
    """
    name = getattr(stream, "name", None)
    try:
        if isinstance(name, str) and os.path.samestat(os.fstat(stream.fileno()), os.stat(name)):
            return name
    except (OSError, AttributeError, ValueError):
        pass
    parts, got = [], 0
    while got <= MAX_IN_MEMORY:  # streams may return short reads (decoder steps)
        try:
            b = stream.read(MAX_IN_MEMORY + 1 - got)
        except Exception:  # a member damaged part way: what came before is read as a cut EVTX
            if not parts:
                raise
            break
        if not b:
            break
        parts.append(b)
        got += len(b)
    return None if got > MAX_IN_MEMORY else b"".join(parts)


def compact_xml(xml: str) -> str:
    """The reader's pretty XML without declaration and indentation, for the raw column."""
    return _BETWEEN_TAGS.sub("><", _DECLARATION.sub("", xml)).strip()


def row_from_record(xml: str, index: int, byte_offset: int) -> dict[str, Any]:
    """Record fields for one EVTX record given as the reader's XML; `index` is 1-based."""
    row = row_from_xml(xml)
    row.update(line_no=index, line_count=1, byte_offset=byte_offset, raw=compact_xml(xml))
    return row


def parse(stream: BinaryIO, ctx: ParseContext) -> Iterator[Batch]:
    """Yield batches of event records from an EVTX stream; damaged chunks become rejects."""
    src = _as_source(stream)
    if src is None:
        reject = {"line_no": 1, "byte_offset": 0, "reason": "too_large",
                  "raw": f"EVTX archive member over {MAX_IN_MEMORY >> 20} MiB: extract it and scan the file"}
        yield make_batch([], [reject], 1, ctx, NAME)
        return
    yield from _parse_path(src, ctx)


def declared_chunks(path: str | bytes) -> int:
    """The chunk count the file header declares (a whole file holds at least that many)."""
    with _open(path) as f:
        header = f.read(44)
    return struct.unpack_from("<H", header, 42)[0] if len(header) == 44 else 0


def _truncated(size: int, index: int) -> dict[str, Any]:
    cut = truncation(size)
    if size < FILE_HEADER_SIZE:
        where = f"inside its file header ({size} of {FILE_HEADER_SIZE} bytes)"
    elif cut:
        where = f"inside chunk {(size - FILE_HEADER_SIZE) // CHUNK_SIZE} ({cut} of {CHUNK_SIZE} bytes)"
    else:
        where = f"after chunk {(size - FILE_HEADER_SIZE) // CHUNK_SIZE - 1}, before chunks its header declares"
    return {"line_no": index + 1, "byte_offset": size, "reason": "truncated",
            "raw": f"EVTX cut short at byte {size}, {where}: the records before the cut were read"}


def _parse_path(path: str | bytes, ctx: ParseContext) -> Iterator[Batch]:
    size = _size(path)
    if size < FILE_HEADER_SIZE:
        batch = make_batch([], [_truncated(size, 0)], 1, ctx, NAME)
        batch.notes.append(f"EVTX cut short at byte {size}, inside its file header: nothing to read")
        yield batch
        return
    chunks = scan_chunks(path)
    offsets = RecordOffsets(path, chunks)
    rejects = _bad_chunk_rejects(chunks)
    notes = []
    if rejects:
        notes.append(f"{len(rejects)} damaged EVTX chunk(s) skipped, the rest was read")
    cut = truncation(size)
    short = bool(cut) or declared_chunks(path) > (size - FILE_HEADER_SIZE) // CHUNK_SIZE
    if short:
        notes.append(f"EVTX cut short at byte {size}: the records before the cut were read")
    if cut:
        source: Any = ZeroPadded(path, size, size + CHUNK_SIZE - cut)
    else:
        source = path if isinstance(path, str) else io.BytesIO(path)
    try:
        yield from _read_records(source, short, size, offsets, rejects, notes, ctx)
    finally:
        if isinstance(source, ZeroPadded):
            source.close()


def _read_records(source: Any, cut: bool, size: int, offsets: RecordOffsets, rejects: list[dict[str, Any]],
                  notes: list[str], ctx: ParseContext) -> Iterator[Batch]:
    try:
        records = evtx.PyEvtxParser(source, number_of_threads=1, skip_errors=True).records()
    except (RuntimeError, OSError, ValueError) as exc:  # a file header the reader refuses (damaged, not EVTX)
        reject = {"line_no": 1, "byte_offset": 0, "reason": "bad_file", "raw": str(exc)}
        batch = make_batch([], [*rejects, reject], len(rejects) + 1, ctx, NAME)
        batch.notes.extend([*notes, f"EVTX not readable: {exc}"])
        yield batch
        return
    truncated_told = False
    index, done = 0, False
    while not done:
        rows: list[dict[str, Any]] = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            while len(rows) + len(rejects) < BATCH_RECORDS:
                try:
                    record = next(records)
                except StopIteration:
                    done = True
                    break
                except RuntimeError as exc:  # not recoverable: a broken file header, or the record cut in two
                    if cut:
                        rejects.append(_truncated(size, index))
                        truncated_told = True
                    else:
                        rejects.append({"line_no": index + 1, "byte_offset": 0, "reason": "bad_file",
                                        "raw": str(exc)})
                        notes.append(f"EVTX reading stopped early: {exc}")
                    done = True
                    break
                index += 1
                rows_or_reject = _record(record, index, offsets, size if cut else None)
                truncated_told = truncated_told or rows_or_reject.get("reason") == "truncated"
                (rows if "reason" not in rows_or_reject else rejects).append(rows_or_reject)
        for w in caught:
            text = str(w.message)
            if issubclass(w.category, RuntimeWarning) and "chunk header magic" not in text:
                reason = "bad_chunk" if "chunk" in text else "bad_record"
                rejects.append({"line_no": index + 1, "byte_offset": 0, "reason": reason, "raw": text})
        if done and cut and not truncated_told:  # the cut fell between records: still say so
            rejects.append(_truncated(size, index))
        batch = make_batch(rows, rejects, len(rows) + len(rejects), ctx, NAME)
        batch.notes.extend(notes)
        yield batch
        rejects, notes = [], []


def _record(record: dict[str, Any], index: int, offsets: RecordOffsets, file_end: int | None = None
            ) -> dict[str, Any]:
    xml = record.get("data") or ""
    offset = offsets.offset(record.get("event_record_id"))
    if file_end is not None and offsets.ends.get(record.get("event_record_id"), 0) > file_end:
        # the record the cut went through: what the reader made of it is partly padding
        return {"line_no": index, "byte_offset": offset, "reason": "truncated",
                "raw": f"record cut at byte {file_end} of the file: {compact_xml(xml)}"}
    try:
        row = row_from_record(xml, index, offset)
    except EventXmlError as exc:  # a hostile value keeps its own reason (number_too_long, ...)
        reason = "bad_record" if exc.reason in ("malformed_xml", "dtd_refused") else exc.reason
        return {"line_no": index, "byte_offset": offset, "reason": reason, "raw": f"{exc}: {xml}"}
    if row["record_id"] is None:  # the XML lost it; the record header still has one
        row["record_id"] = record.get("event_record_id")
    return row


def _bad_chunk_rejects(chunks: list[Chunk]) -> list[dict[str, Any]]:
    """One reject per chunk whose signature is wrong and whose bytes are not all zero."""
    return [
        {"line_no": None, "byte_offset": c.offset, "reason": "bad_chunk",
         "raw": f"chunk {c.index} at byte {c.offset}: signature {c.signature.hex()}, expected {CHUNK_MAGIC.hex()}"}
        for c in chunks
        if not c.ok and not c.empty
    ]  # fmt: skip


PARSER = ParserSpec(
    name=NAME,
    description="Windows binary event log (.evtx); message = the event's insertion strings",
    detect=detect,
    parse=parse,
    priority=10,
    binary=True,
)
