"""Windows events as XML: `wevtutil qe … /f:xml` and `/f:RenderedXml`, Event Viewer "Save as XML".

wevtutil writes a bare run of `<Event xmlns=…>` elements with no root and no declaration, so
the file is not one XML document. We cut the text into one fragment per event and parse each
on its own with defusedxml: a broken event becomes a `malformed_xml` reject and the next one
is read. A DOCTYPE is never handed to a parser (it is refused as a reject), so entity
expansion cannot happen. The event-to-fields mapping here is shared by the EVTX parser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from .base import Batch, Head, ParseContext, ParserSpec
from .event_common import (
    EVENT_ERRORS,
    CharReader,
    DocumentScan,
    as_int,
    as_text,
    clean_message,
    event_error_reason,
    event_error_text,
    level_from_name,
    parse_event_time,
)

NAME = "event-xml"

_EVENT_NS = "http://schemas.microsoft.com/win/2004/08/events/event"
_START = re.compile(r"<Event(?=[\s>/])")
_END = re.compile(r"</Event\s*>")
_DOCTYPE = re.compile(r"<!DOCTYPE|<!ENTITY")
#: Text allowed between events: declaration, comments, the `<Events>` wrapper of "Save as XML".
_STRUCTURAL = re.compile(r"<\?xml[^>]*\?>|<!--.*?-->|</?Events\b[^>]*>|\s+", re.S)
_DETECT = re.compile(r"<Event\s+xmlns\s*=\s*['\"]" + re.escape(_EVENT_NS) + r"['\"]")
_FIRST_TAG = re.compile(r"^\s*<(?:\?xml|!--|!DOCTYPE|Events\b|Event\b)")

#: One event larger than this is rejected rather than buffered further.
MAX_EVENT_CHARS = 8 << 20
#: Records or rejects gathered before a batch is handed on.
BATCH_UNITS = 2000
_AUDIT_FAILURE = 0x10000000000000


class EventXmlError(ValueError):
    """An event fragment that cannot become a record; `reason` names the reject."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(parent: Element | None, name: str) -> Element | None:
    if parent is None:
        return None
    for el in parent:
        if _local(el.tag) == name:
            return el
    return None


def _text(el: Element | None) -> str | None:
    return None if el is None else as_text("".join(el.itertext()))


def insertion_strings(event: Element) -> list[str]:
    """The event's `<Data>` values (EventData) or leaf texts (UserData), blanks dropped.

    These are what an EVTX stores instead of the description: exception texts live here.
    """
    out: list[str] = []
    event_data = _child(event, "EventData")
    if event_data is not None:
        for el in event_data:
            if _local(el.tag) in ("Data", "ComplexData"):
                value = "".join(el.itertext()).strip()
                if value:
                    out.append(value)
    user_data = _child(event, "UserData")
    if user_data is not None:
        for el in user_data.iter():
            if len(el) == 0 and el.text and el.text.strip():
                out.append(el.text.strip())
    return out


def _level(system: Element | None, rendering: Element | None) -> str | None:
    keywords = _text(_child(system, "Keywords"))
    try:
        if keywords and int(keywords, 16) & _AUDIT_FAILURE:
            return "FAILED"
    except ValueError:
        pass
    number = as_int(_text(_child(system, "Level")))
    if number is not None:
        return level_from_name(str(number))
    return level_from_name(_text(_child(rendering, "Level")))


def row_from_element(event: Element) -> dict[str, Any]:
    """Record fields of one parsed `<Event>` element (wevtutil, RenderedXml or EVTX XML).

    The rendered `<RenderingInfo><Message>` is the message when present; otherwise the
    insertion strings joined by newlines stand in for it.
    """
    system = _child(event, "System")
    rendering = _child(event, "RenderingInfo")
    provider = _child(system, "Provider")
    execution = _child(system, "Execution")
    created = _child(system, "TimeCreated")
    message = _text(_child(rendering, "Message"))
    if message is None:
        message = "\n".join(insertion_strings(event)) or None
    ts_utc, ts_local = parse_event_time(None if created is None else created.get("SystemTime"))
    return {
        "event_id": as_int(_text(_child(system, "EventID"))),
        "provider": None if provider is None else as_text(provider.get("Name") or provider.get("EventSourceName")),
        "level": _level(system, rendering),
        "computer": _text(_child(system, "Computer")),
        "record_id": as_int(_text(_child(system, "EventRecordID"))),
        "component": _text(_child(system, "Channel")),
        "pid": None if execution is None else as_text(execution.get("ProcessID")),
        "tid": None if execution is None else as_text(execution.get("ThreadID")),
        "ts_utc": ts_utc,
        "ts_local": ts_local,
        "message": clean_message(message),
    }


def row_from_xml(text: str) -> dict[str, Any]:
    """Parse one event's XML text safely and return its record fields.

    Raises EventXmlError with reason `dtd_refused` (DTD, entity declaration or external
    reference), `malformed_xml` (not well-formed, or not an Event element), or one of
    `event_error_reason`'s (a value no record can hold).
    """
    try:
        root = SafeET.fromstring(text, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise EventXmlError("dtd_refused", str(exc)) from exc
    except ParseError as exc:
        raise EventXmlError("malformed_xml", str(exc)) from exc
    except EVENT_ERRORS as exc:  # nesting deeper than the stack
        raise EventXmlError(event_error_reason(exc), event_error_text(exc, "")) from exc
    if _local(root.tag) != "Event":
        raise EventXmlError("malformed_xml", f"root element is {_local(root.tag)}, not Event")
    try:
        return row_from_element(root)
    except EVENT_ERRORS as exc:  # a 5,000-digit record id, a time out of range
        raise EventXmlError(event_error_reason(exc), event_error_text(exc, "")) from exc


def detect(head: Head) -> bool:
    """An XML event export: starts with markup and holds an Event in the events namespace."""
    if head.is_binary or not _FIRST_TAG.match(head.text):
        return False
    return _DETECT.search(head.text) is not None


class _Scan(DocumentScan):
    """State of one pass over an XML export: collected rows and rejects, and where we are."""

    NAME = NAME

    def outside(self, end: int) -> None:
        """Consume text between events up to buf[end]; anything but wrappers is a reject."""
        r = self.r
        seg = r.buf[r.pos : end]
        leftover = _STRUCTURAL.sub("", seg)
        if leftover:
            first = len(seg) - len(seg.lstrip())
            self.reject("stray_text", r.pos + first, seg)
        r.advance(end)

    def event(self, end: int) -> None:
        """Consume one complete event fragment buf[pos:end]."""
        r = self.r
        fragment = r.buf[r.pos : end]
        line, offset = r.line, r.offset
        last_line = r.where(end - 1)[0]
        try:
            row = row_from_xml(fragment)
        except EventXmlError as exc:
            self.reject(exc.reason, r.pos, fragment)
        else:
            row.update(line_no=line, line_count=last_line - line + 1, byte_offset=offset, raw=fragment)
            self.rows.append(row)
        r.advance(end)


def _doctype_end(buf: str, start: int) -> int:
    """End of a DOCTYPE starting at `start` (after `]>` when it has an internal subset); -1 if unseen."""
    gt = buf.find(">", start)
    bracket = buf.find("[", start)
    if bracket != -1 and (gt == -1 or bracket < gt):
        close = buf.find("]>", bracket)
        return -1 if close == -1 else close + 2
    return -1 if gt == -1 else gt + 1


def parse(stream: BinaryIO, ctx: ParseContext) -> Iterator[Batch]:
    """Yield batches of event records, one fragment per `<Event>` element, in file order."""
    reader = CharReader(stream, ctx)
    try:
        yield from _parse(reader, ctx)
    finally:
        reader.close()


def _parse(r: CharReader, ctx: ParseContext) -> Iterator[Batch]:
    scan = _Scan(r, ctx)
    r.fill()
    skipping = False  # inside an event already rejected as too large
    while True:
        if len(scan.rows) + len(scan.rejects) >= BATCH_UNITS:
            yield scan.batch()
        buf, pos = r.buf, r.pos
        if skipping:
            end, nxt = _END.search(buf, pos), _START.search(buf, pos + 1)
            if end and (not nxt or end.start() < nxt.start()):
                r.advance(end.end())
                skipping = False
            elif nxt:
                r.advance(nxt.start())
                skipping = False
            else:
                r.advance(max(pos, len(buf) - 16))
                if not r.fill():
                    r.advance(len(r.buf))
                    break
            continue
        start = _START.search(buf, pos)
        dtd = _DOCTYPE.search(buf, pos, len(buf) if start is None else start.start())
        if dtd:
            scan.outside(dtd.start())
            end = _doctype_end(r.buf, r.pos)
            if end == -1 and r.fill():
                continue
            end = len(r.buf) if end == -1 else end
            scan.reject("dtd_refused", r.pos, r.buf[r.pos : end])
            r.advance(end)
            continue
        if start is None:
            if r.eof:
                scan.outside(len(buf))
                break
            cut = buf.rfind(">", pos) + 1  # keep a tag cut by the read for the next pass
            if cut == 0 and len(buf) - pos > MAX_EVENT_CHARS:
                cut = len(buf)
            if cut > pos:
                scan.outside(cut)
            if not r.fill():
                scan.outside(len(r.buf))
                break
            continue
        scan.outside(start.start())
        end, nxt = _END.search(buf, r.pos + 6), _START.search(buf, r.pos + 6)
        if end and (not nxt or end.start() < nxt.start()):
            scan.event(end.end())
        elif nxt:  # an event that never closed before the next one began
            scan.reject("malformed_xml", r.pos, buf[r.pos : nxt.start()])
            r.advance(nxt.start())
        elif len(buf) - r.pos > MAX_EVENT_CHARS:
            scan.reject("event_too_large", r.pos, buf[r.pos : r.pos + 2000])
            skipping = True
            r.advance(r.pos + 6)
        elif not r.fill():
            scan.reject("malformed_xml", r.pos, buf[r.pos :])
            r.advance(len(buf))
            break
    yield scan.batch()


PARSER = ParserSpec(
    name=NAME,
    description="Windows events as XML (wevtutil /f:xml or /f:RenderedXml, Event Viewer Save as XML)",
    detect=detect,
    parse=parse,
    priority=30,
)
