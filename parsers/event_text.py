"""Event Viewer "Copy details as text" blocks, pasted into a file one after another.

Each event is a block of `Label: value` lines (`Log Name:`, `Source:`, `Date:`, `Event ID:`,
`Task Category:`, `Level:`, `Keywords:`, `User:`, `Computer:`), then `Description:` and the
free text, which runs until the next `Log Name:`. Event Viewer may append `Event Xml:` and
the event's XML: when it is there, its UTC time and record ID are used (the `Date:` line is
local time in the UI's culture), and its lines stay inside the record.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from .base import RAW_CUT, Batch, Head, ParseContext, ParserSpec, framed_reject_reason
from .event_common import (
    EVENT_ERRORS,
    as_int,
    as_text,
    clean_message,
    event_error_reason,
    event_error_text,
    level_from_name,
    make_batch,
    parse_event_time,
)
from .event_xml import EventXmlError, row_from_xml
from .textio import context_lines

NAME = "event-text"

#: Labels as Event Viewer writes them, English first, then German and French UIs.
_LABELS = {
    "log name": "log", "protokollname": "log", "nom du journal": "log",
    "source": "source", "quelle": "source",
    "date": "date", "datum": "date",
    "event id": "event_id", "ereignis-id": "event_id", "id de l'événement": "event_id",
    "task category": "task", "aufgabenkategorie": "task", "catégorie de la tâche": "task",
    "level": "level", "ebene": "level", "niveau": "level",
    "keywords": "keywords", "schlüsselwörter": "keywords", "mots-clés": "keywords",
    "user": "user", "benutzer": "user", "utilisateur": "user",
    "computer": "computer", "ordinateur": "computer",
    "opcode": "opcode",
    "description": "description", "beschreibung": "description",
    "event xml": "xml", "ereignis-xml": "xml", "xml de l'événement": "xml",
}  # fmt: skip
_LABEL = re.compile(r"^\s*([^:\t]{2,40}?)\s*:\s*(.*)$")
#: Description text kept per event; longer text is cut (the lines still count).
MAX_MESSAGE_CHARS = 4 << 20
BATCH_UNITS = 2000


def _label(line: str) -> tuple[str, str] | None:
    m = _LABEL.match(line)
    if not m:
        return None
    key = _LABELS.get(m.group(1).strip().lower())
    return None if key is None else (key, m.group(2).strip())


def detect(head: Head) -> bool:
    """Copy-details text: a `Log Name:` line among the first lines, then `Source:` and `Event ID: <n>`."""
    if head.is_binary:
        return False
    lines = [ln for ln in head.text.splitlines()[:40] if ln.strip()]
    for i, line in enumerate(lines[:5]):
        found = _label(line)
        if found is not None and found[0] == "log":
            labels = dict(reversed(list(filter(None, map(_label, lines[i + 1 : i + 12])))))  # the first block's
            event_id = labels.get("event_id", "")
            return "source" in labels and event_id.isdigit() and len(event_id) < 20
    return False


class _Block:
    """One event being read: its header values, description lines and XML lines."""

    def __init__(self, line_no: int, offset: int) -> None:
        self.line_no = line_no
        self.offset = offset
        self.last_line = line_no
        self.values: dict[str, str] = {}
        self.section = "header"  # header, description, xml
        self.description: list[str] = []
        self.desc_chars = 0
        self.xml: list[str] = []
        self.xml_chars = 0
        self.raw: list[str] = []
        self.raw_chars = 0

    def add(self, line_no: int, text: str) -> None:
        self.last_line = line_no
        if self.raw_chars < RAW_CUT:
            self.raw.append(text)
            self.raw_chars += len(text) + 1
        if self.section == "header":
            found = _label(text)
            if found is None:
                return
            key, value = found
            if key == "description":
                self.section = "description"
                if value:
                    self._describe(value)
            elif key == "xml":
                self.section = "xml"
            else:
                self.values.setdefault(key, value)
        elif self.section == "description":
            found = _label(text)
            if found is not None and found[0] == "xml" and not found[1]:
                self.section = "xml"
            else:
                self._describe(text)
        elif self.xml_chars < MAX_MESSAGE_CHARS:
            self.xml.append(text)
            self.xml_chars += len(text) + 1

    def _describe(self, text: str) -> None:
        if self.desc_chars < MAX_MESSAGE_CHARS:
            self.description.append(text)
            self.desc_chars += len(text) + 1

    def row(self) -> dict[str, Any]:
        v = self.values
        ts_utc, ts_local = parse_event_time(v.get("date"))
        row = {
            "line_no": self.line_no,
            "line_count": self.last_line - self.line_no + 1,
            "byte_offset": self.offset,
            "ts_utc": ts_utc,
            "ts_local": ts_local,
            "component": as_text(v.get("log")),
            "provider": as_text(v.get("source")),
            "event_id": as_int(v.get("event_id")),
            "level": level_from_name(v.get("level")),
            "computer": as_text(v.get("computer")),
            "message": clean_message("\n".join(self.description)),
            "raw": "\n".join(self.raw),
        }
        if self.xml:
            try:
                from_xml = row_from_xml("\n".join(self.xml).strip())
            except EventXmlError:
                return row
            if from_xml.get("ts_utc") is not None:
                row["ts_utc"], row["ts_local"] = from_xml["ts_utc"], None
            for key in ("record_id", "pid", "tid"):
                row[key] = from_xml.get(key)
        return row


def _close(block: _Block, rows: list[dict[str, Any]], rejects: list[dict[str, Any]]) -> None:
    """The finished block as a record, or as a reject when one of its values cannot be held."""
    try:
        rows.append(block.row())
    except EVENT_ERRORS as exc:  # a 5,000-digit event id, a time out of range
        rejects.append({"line_no": block.line_no, "byte_offset": block.offset, "reason": event_error_reason(exc),
                        "raw": event_error_text(exc, "\n".join(block.raw))})


def parse(stream: BinaryIO, ctx: ParseContext) -> Iterator[Batch]:
    """Yield batches of event records, one per `Log Name:` block."""
    rows: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    block: _Block | None = None
    lines = 0
    for lb in context_lines(stream, ctx):
        cols = [lb.frame[c].to_list() for c in ("line_no", "byte_offset", "line", "too_long")]
        for line_no, offset, text, too_long in zip(*cols, strict=True):
            lines += 1
            if too_long:
                rejects.append({"line_no": line_no, "byte_offset": offset, "reason": framed_reject_reason(text),
                                "raw": text})
                continue
            found = _label(text)
            if found is not None and found[0] == "log":
                if block is not None:
                    _close(block, rows, rejects)
                block = _Block(line_no, offset)
                block.add(line_no, text)
            elif block is not None:
                block.add(line_no, text)
            elif text.strip():
                rejects.append({"line_no": line_no, "byte_offset": offset, "reason": "no_header", "raw": text})
        if len(rows) + len(rejects) >= BATCH_UNITS:
            yield make_batch(rows, rejects, lines, ctx, NAME)
            rows, rejects, lines = [], [], 0
    if block is not None:
        _close(block, rows, rejects)
    yield make_batch(rows, rejects, lines, ctx, NAME)


PARSER = ParserSpec(
    name=NAME,
    description="Windows events as Event Viewer 'Copy details' text blocks (Log Name:, Source:, Description:)",
    detect=detect,
    parse=parse,
    priority=30,
)
