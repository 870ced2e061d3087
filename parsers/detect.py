"""Choose a parser for a stream from its first bytes, never from its name alone.

Cheap checks first (binary magic, BOM), then each parser's own `detect` by priority,
as plaso's text parsers verify literals before running a grammar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from . import PARSERS
from .base import Head, ParserSpec
from .textio import HEAD_BYTES, decode_head, looks_binary, sniff_encoding


@dataclass(frozen=True)
class Detection:
    parser: ParserSpec | None
    head: Head
    bom_len: int
    skip_reason: str | None = None  # why no parser applies: empty, binary, unknown_format


def read_head(stream: BinaryIO) -> bytes:
    """Read up to HEAD_BYTES without assuming the stream can seek.

    A read that fails after some bytes came (a damaged archive member) ends the head there;
    the failure comes again on the next read, once what came before it can be parsed.
    """
    chunks, need = [], HEAD_BYTES
    while need > 0:
        try:
            b = stream.read(need)
        except Exception:
            if not chunks:
                raise
            break
        if not b:
            break
        chunks.append(b)
        need -= len(b)
    return b"".join(chunks)


def _claims(spec: ParserSpec, head: Head) -> bool:
    """spec.detect(head), False when a hostile head makes the detector raise (a 5,000-digit id)."""
    try:
        return bool(spec.detect(head))
    except (RecursionError, ValueError, OverflowError, ArithmeticError, TypeError, IndexError, KeyError):
        return False


def detect(name: str, head_bytes: bytes, forced: str | None = None) -> Detection:
    """Pick the parser for a source whose first bytes are `head_bytes`."""
    encoding, bom_len = sniff_encoding(head_bytes)
    binary = looks_binary(head_bytes[bom_len:], encoding)
    text = "" if binary else decode_head(head_bytes, encoding, bom_len)
    head = Head(name=name, raw=head_bytes, text=text, encoding=encoding, is_binary=binary)
    if forced is not None:
        return Detection(PARSERS[forced], head, 0 if PARSERS[forced].binary else bom_len)
    if not head_bytes:
        return Detection(None, head, bom_len, "empty")
    for spec in PARSERS.values():
        if spec.binary and _claims(spec, head):
            return Detection(spec, head, 0)
    if binary:
        return Detection(None, head, bom_len, "binary")
    for spec in PARSERS.values():
        if not spec.binary and _claims(spec, head):
            return Detection(spec, head, bom_len)
    return Detection(None, head, bom_len, "unknown_format")
