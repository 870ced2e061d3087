"""Windows events as delimited text: Event Viewer "Save as CSV/TXT" and PowerShell Export-Csv.

Two families, told apart by the header line:

* Event Viewer: `Level,Date and Time,Source,Event ID,Task Category` (TAB-delimited in the
  .txt form; words localised); each row carries the description as an extra sixth field.
  Columns are taken by position, so a localised header still works.
* `Get-WinEvent | Export-Csv` (or Get-EventLog): an optional `#TYPE …` line, then quoted
  property names ("Message","Id",…), comma- or, with -UseCulture, semicolon-delimited.
  Columns are taken by name.

Lines come from `frame_lines` (exact line numbers, byte offsets and encodings) and feed the
stdlib csv reader, so quoted multi-line descriptions are one record spanning several lines.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from .base import Batch, Head, ParseContext, ParserSpec, framed_reject_reason
from .event_common import (
    EVENT_ERRORS,
    POWERSHELL_KEYS,
    as_int,
    as_text,
    clean_message,
    event_error_reason,
    level_from_name,
    make_batch,
    parse_event_time,
    row_from_powershell,
)
from .textio import context_lines

NAME = "event-csv"

_VIEWER_HEADER = ("level", "date and time", "source", "event id", "task category")
_TYPE_LINE = re.compile(r"^#TYPE\s+\S+")
#: Biggest single field accepted; a runaway quote fails here instead of eating the file.
MAX_FIELD = 4 << 20
BATCH_UNITS = 2000


@dataclass(frozen=True)
class Layout:
    """What the header says: which family, the delimiter, and the column names."""

    viewer: bool
    delimiter: str
    columns: tuple[str, ...]


def _split(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return []


def _powershell_delimiter(line: str) -> str:
    if line.startswith('"'):
        close = line.find('"', 1)
        if 0 < close < len(line) - 1:
            return line[close + 1]
    return max((",", ";", "\t"), key=line.count)


def layout_of(header: str, next_line: str | None = None) -> Layout | None:
    """Recognise an event export header line; `next_line` confirms a localised viewer header."""
    header = header.lstrip("\ufeff").rstrip("\r\n")
    delimiter = "\t" if header.count("\t") > header.count(",") else ","
    fields = [f.strip() for f in _split(header, delimiter)]
    while fields and not fields[-1]:
        fields.pop()
    if len(fields) == 5:
        if tuple(f.lower() for f in fields) == _VIEWER_HEADER:
            return Layout(True, delimiter, tuple(fields))
        if "id" in fields[3].lower() and next_line is not None:
            first = _split(next_line, delimiter)
            if len(first) >= 5 and level_from_name(first[0]) and as_int(first[3]) is not None:
                return Layout(True, delimiter, tuple(fields))
    delimiter = _powershell_delimiter(header)
    names = tuple(f.strip() for f in _split(header, delimiter))
    known = set(names) & POWERSHELL_KEYS
    has_id = bool(known & {"Id", "EventID", "InstanceId"})
    if "Message" in known and has_id and len(known) >= 3:
        return Layout(False, delimiter, names)
    return None


def detect(head: Head) -> bool:
    """An event export in CSV/TXT form: the first lines are a known header."""
    if head.is_binary:
        return False
    lines = [ln for ln in head.text.splitlines()[:4] if ln.strip()]
    if lines and _TYPE_LINE.match(lines[0]):
        lines = lines[1:]
    if not lines:
        return False
    return layout_of(lines[0], lines[1] if len(lines) > 1 else None) is not None


class _LineFeed:
    """Feeds framed lines to the csv reader and remembers which lines each row used."""

    def __init__(self, stream: BinaryIO, ctx: ParseContext) -> None:
        self._blocks = context_lines(stream, ctx)
        self._lines: list[tuple[int, int, str, bool]] = []
        self._i = 0
        self.consumed = 0
        self.pending: list[tuple[int, int, str]] = []  # (line_no, byte_offset, text) of the row being read
        self.rejects: list[dict[str, Any]] = []

    def take(self) -> tuple[int, int, str, bool] | None:
        """The next physical line, or None at the end."""
        while self._i >= len(self._lines):
            block = next(self._blocks, None)
            if block is None:
                return None
            cols = [block.frame[c].to_list() for c in ("line_no", "byte_offset", "line", "too_long")]
            self._lines = list(zip(*cols, strict=True))
            self._i = 0
        item = self._lines[self._i]
        self._i += 1
        self.consumed += 1
        return item

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        while True:
            item = self.take()
            if item is None:
                raise StopIteration
            line_no, offset, text, too_long = item
            if too_long:
                self.rejects.append({"line_no": line_no, "byte_offset": offset,
                                     "reason": framed_reject_reason(text), "raw": text})
                continue
            self.pending.append((line_no, offset, text))
            return text + "\n"


def _viewer_row(fields: list[str], layout: Layout) -> dict[str, Any] | None:
    """Fields of an Event Viewer row, or None when the row does not start an event."""
    if len(fields) < 5:
        return None
    level = level_from_name(fields[0])
    event_id = as_int(fields[3])
    if level is None and event_id is None:
        return None
    ts_utc, ts_local = parse_event_time(fields[1])
    return {
        "level": level,
        "ts_utc": ts_utc,
        "ts_local": ts_local,
        "provider": as_text(fields[2]),
        "event_id": event_id,
        "message": clean_message(layout.delimiter.join(fields[5:])) if len(fields) > 5 else None,
    }


class _Rows:
    """Collects records and rejects; holds the last viewer record open for continuation rows."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.rejects: list[dict[str, Any]] = []
        self.open: dict[str, Any] | None = None

    def close(self) -> None:
        if self.open is not None:
            self.records.append(self.open)
            self.open = None

    def add(self, row: dict[str, Any], lines: list[tuple[int, int, str]], hold: bool) -> None:
        self.close()
        row.update(
            line_no=lines[0][0], byte_offset=lines[0][1], line_count=lines[-1][0] - lines[0][0] + 1,
            raw="\n".join(t for _, _, t in lines),
        )  # fmt: skip
        if hold:
            self.open = row
        else:
            self.records.append(row)

    def extend(self, fields: list[str], lines: list[tuple[int, int, str]], delimiter: str) -> bool:
        """Fold an unquoted continuation line into the open viewer record."""
        if self.open is None:
            return False
        extra = delimiter.join(fields)
        self.open["message"] = clean_message("\n".join(filter(None, (self.open.get("message"), extra))))
        self.open["line_count"] = lines[-1][0] - self.open["line_no"] + 1
        if len(self.open["raw"]) < 4000:
            self.open["raw"] += "\n" + "\n".join(t for _, _, t in lines)
        return True

    def reject(self, reason: str, lines: list[tuple[int, int, str]]) -> None:
        self.rejects.append(
            {"line_no": lines[0][0], "byte_offset": lines[0][1], "reason": reason,
             "raw": "\n".join(t for _, _, t in lines)}
        )  # fmt: skip


def _read_layout(feed: _LineFeed) -> tuple[Layout | None, list[tuple[int, int, str]]]:
    """Consume the structural lines up to and including the header; return the layout."""
    seen: list[tuple[int, int, str]] = []
    while True:
        item = feed.take()
        if item is None:
            return None, seen
        line_no, offset, text, _ = item
        seen.append((line_no, offset, text))
        if not text.strip() or (len(seen) == 1 and _TYPE_LINE.match(text.lstrip("\ufeff"))):
            continue
        peek = feed._lines[feed._i][2] if feed._i < len(feed._lines) else None
        return layout_of(text, peek), seen


def _take_row(out: _Rows, fields: list[str], lines: list[tuple[int, int, str]], layout: Layout) -> None:
    """One parsed CSV row into a record, a continuation of the open one, or a reject."""
    if layout.viewer:
        row = _viewer_row(fields, layout)
        if row is not None:
            out.add(row, lines, hold=True)
        elif not out.extend(fields, lines, layout.delimiter):
            out.reject("bad_row", lines)
    elif len(fields) != len(layout.columns):
        out.reject("bad_row", lines)
    else:
        out.add(row_from_powershell(dict(zip(layout.columns, fields, strict=True))), lines, hold=False)


def parse(stream: BinaryIO, ctx: ParseContext) -> Iterator[Batch]:
    """Yield batches of event records from an Event Viewer or Export-Csv file."""
    if csv.field_size_limit() < MAX_FIELD:
        csv.field_size_limit(MAX_FIELD)
    feed = _LineFeed(stream, ctx)
    layout, seen = _read_layout(feed)
    out = _Rows()
    if layout is None:
        if seen and seen[-1][2].strip():
            out.reject("no_header", seen[-1:])
        yield make_batch([], out.rejects, feed.consumed, ctx, NAME)
        return
    reader = csv.reader(feed, delimiter=layout.delimiter)
    mark = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error:
            if feed.pending:
                out.reject("malformed_csv", feed.pending)
            feed.pending = []
            continue
        lines, feed.pending = feed.pending, []
        if not fields or not any(f.strip() for f in fields):
            continue  # blank line between rows
        try:
            _take_row(out, fields, lines, layout)
        except EVENT_ERRORS as exc:  # a 5,000-digit id, a time out of range: only this row is lost
            out.reject(event_error_reason(exc), lines)
        if len(out.records) + len(out.rejects) >= BATCH_UNITS:
            yield make_batch(out.records, out.rejects + feed.rejects, feed.consumed - mark, ctx, NAME)
            out.records, out.rejects, feed.rejects, mark = [], [], [], feed.consumed
    out.close()
    yield make_batch(out.records, out.rejects + feed.rejects, feed.consumed - mark, ctx, NAME)


PARSER = ParserSpec(
    name=NAME,
    description="Windows events as CSV/TXT (Event Viewer Save as CSV or TXT, Get-WinEvent | Export-Csv)",
    detect=detect,
    parse=parse,
    priority=30,
)
