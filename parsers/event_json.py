"""Windows events as JSON: `Get-WinEvent | ConvertTo-Json` (also Get-EventLog objects).

The file is an array of objects, or one object when a single event was converted. Exports
can be large, so the text is never loaded whole: a tokenizer that only knows strings and
brackets finds where each top-level object ends, across reads, and each object is decoded
on its own. A broken object becomes a `malformed_json` reject and reading goes on.
Windows PowerShell 5.1 writes times as `"\\/Date(ms)\\/"` (UTC), PowerShell 7 as ISO 8601.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import BinaryIO

from .base import Batch, Head, ParseContext, ParserSpec
from .event_common import (
    EVENT_ERRORS,
    CharReader,
    DocumentScan,
    event_error_reason,
    event_error_text,
    row_from_powershell,
)

NAME = "event-json"

#: A whole JSON string, a bracket, or a lone quote (a string the read cut in two).
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]]|"', re.S)
_SPACE_COMMA = re.compile(r"[\s,]*")
_KEY = re.compile(r'"(Message|Id|EventID|InstanceId|ProviderName|Source|LogName|TimeCreated|TimeGenerated)"\s*:')
#: One object larger than this is rejected rather than buffered further.
MAX_OBJECT_CHARS = 16 << 20
BATCH_UNITS = 2000


def detect(head: Head) -> bool:
    """JSON whose first object has event properties: Message, an ID and a provider or time."""
    if head.is_binary:
        return False
    text = head.text.lstrip()
    if not text or text[0] not in "[{":
        return False
    keys = set(_KEY.findall(text))
    has_id = bool(keys & {"Id", "EventID", "InstanceId"})
    return (
        "Message" in keys
        and has_id
        and bool(keys & {"ProviderName", "Source", "LogName", "TimeCreated", "TimeGenerated"})
    )


def _object_end(buf: str, resume: int, depth: int) -> tuple[int | None, int, int]:
    """Scan for the end of an object: (end or None, where to resume, depth there)."""
    for m in _TOKEN.finditer(buf, resume):
        c = m.group()
        if c[0] == '"':
            if len(c) == 1:  # unterminated string: wait for more text
                return None, m.start(), depth
            continue
        depth += 1 if c in "{[" else -1
        if depth == 0:
            return m.end(), m.end(), 0
    return None, len(buf), depth


class _Reader(DocumentScan):
    """Walks the top level of the JSON text and hands out one object text at a time."""

    NAME = NAME

    def skip_space(self) -> bool:
        """Move past whitespace and commas; False when the text is exhausted."""
        r = self.r
        while True:
            r.advance(_SPACE_COMMA.match(r.buf, r.pos).end())
            if r.pos < len(r.buf):
                return True
            if not r.fill():
                return False

    def take_object(self) -> None:
        """Read the object starting at the cursor into a row or a reject."""
        r = self.r
        resume, depth, too_large = r.pos, 0, False
        while True:
            end, resume, depth = _object_end(r.buf, resume, depth)
            if end is not None:
                break
            if not too_large and resume - r.pos > MAX_OBJECT_CHARS:
                self.reject("object_too_large", r.pos, r.buf[r.pos : r.pos + 2000])
                too_large = True
            if too_large:  # keep the scan state, drop the text
                r.advance(resume)
                resume = r.pos
            before = r.pos
            if not r.fill():
                if not too_large:
                    self.reject("malformed_json", r.pos, r.buf[r.pos :])
                r.advance(len(r.buf))
                return
            resume -= before
        if too_large:
            r.advance(end)
            return
        text = r.buf[r.pos : end]
        line, offset = r.line, r.offset
        last_line = r.where(end - 1)[0]
        try:
            obj = json.loads(text)
            row = row_from_powershell(obj) if isinstance(obj, dict) else None
        except json.JSONDecodeError as exc:
            self.reject("malformed_json", r.pos, f"{exc}: {text}")
        except EVENT_ERRORS as exc:  # deep nesting, a 5,000-digit number, a time out of range
            self.reject(event_error_reason(exc), r.pos, event_error_text(exc, text))
        else:
            if row is not None:
                row.update(line_no=line, line_count=last_line - line + 1, byte_offset=offset, raw=text)
                self.rows.append(row)
            else:
                self.reject("malformed_json", r.pos, text)
        r.advance(end)


def parse(stream: BinaryIO, ctx: ParseContext) -> Iterator[Batch]:
    """Yield batches of event records, one per top-level object (or array element)."""
    r = CharReader(stream, ctx)
    try:
        yield from _parse(_Reader(r, ctx))
    finally:
        r.close()


def _parse(rd: _Reader) -> Iterator[Batch]:
    r = rd.r
    r.fill()
    while rd.skip_space():
        if len(rd.rows) + len(rd.rejects) >= BATCH_UNITS:
            yield rd.batch()
        c = r.buf[r.pos]
        if c in "[]":  # the array wrapper (PowerShell writes one, or none for a single event)
            r.advance(r.pos + 1)
        elif c == "{":
            rd.take_object()
        else:  # stray text: report it and resynchronise on the next object
            nxt = r.buf.find("{", r.pos)
            stop = nxt if nxt != -1 else len(r.buf)
            rd.reject("malformed_json", r.pos, r.buf[r.pos : min(stop, r.pos + 2000)])
            r.advance(stop)
    r.advance(len(r.buf))
    yield rd.batch()


PARSER = ParserSpec(
    name=NAME,
    description="Windows events as JSON (Get-WinEvent or Get-EventLog | ConvertTo-Json)",
    detect=detect,
    parse=parse,
    priority=30,
)
