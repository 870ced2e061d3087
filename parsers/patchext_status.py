"""Azure Update Manager status files: the patch extensions' `<seq>.status` (and `.complete.status`).

What the guest agent reports to Azure after a patch run, so the most direct record of how it
ended. The shape is the extension handler status (from Azure/LinuxPatchExtension's
`StatusHandler.py`; the Windows extension reports the same handler schema): a JSON array of one
object, `{"timestampUTC", "status": {"name", "operation", "status", "code", "formattedMessage":
{"message"}, "substatus": [...]}}`, where each substatus' `formattedMessage.message` is a JSON
document inside a string (PatchInstallationSummary: rebootStatus, maintenanceWindowExceeded,
patch counts, `patches` with a `patchInstallationState`, `errors.details` with codes such as
PACKAGE_MANAGER_FAILURE; PatchAssessmentSummary; ConfigurePatchingSummary ...).

One record per thing worth matching or counting: the operation's status, each substatus, an
exceeded maintenance window, a failed or required reboot, each error detail, each failed or
pending patch (`kind` status, substatus, mw, reboot, error, patch; `component` the substatus
name; `raw` the item's own JSON, e.g. a patch's patchId, name, version, classifications and
state, for tables that need more than the message).

The text is untrusted: the file is read up to MAX_STATUS_CHARS, a document that does not parse,
nests too deep or has the wrong shape becomes a counted reject, items are bounded in number and
length, and the file is always accounted for as one document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO

from .base import RAW_CUT, Batch, Head, ParseContext, ParserSpec
from .event_common import make_batch, open_text

NAME = "patchext-status"

#: Largest status file parsed; real ones are a few KB (an assessment lists a few hundred patches).
MAX_STATUS_CHARS = 8 << 20
#: Records one file may give; past that a note says how many items were left out.
MAX_RECORDS = 5000
#: Longest message kept for one item (a line parser would reject a longer line; here the item
#: still counts, cut, and a note says so).
MAX_MESSAGE_CHARS = 1 << 16

_KEYS = re.compile(r'"(status|formattedMessage|substatus|timestampUTC|operation)"\s*:')
_FRACTION = re.compile(r"(\.\d{6})\d+")

_LEVELS = {"success": "INFO", "transitioning": "INFO", "warning": "WARNING", "error": "ERROR", "failed": "ERROR"}
#: Patch states worth a record of their own, with the level they carry.
PATCH_STATES = {"Failed": "ERROR", "Pending": "WARNING"}
#: Summary fields quoted in a substatus record, in this order.
SUMMARY_FIELDS = (
    "rebootStatus", "maintenanceWindowExceeded", "rebootPending", "installedPatchCount", "failedPatchCount",
    "pendingPatchCount", "excludedPatchCount", "notSelectedPatchCount", "criticalAndSecurityPatchCount",
    "otherPatchCount", "automaticOSPatchState", "startedBy",
)


def detect(head: Head) -> bool:
    """JSON with the handler status keys: status, formattedMessage and substatus or timestampUTC."""
    if head.is_binary:
        return False
    text = head.text.lstrip()
    if not text or text[0] not in "[{":
        return False
    keys = set(_KEYS.findall(text))
    return {"status", "formattedMessage"} <= keys and bool(keys & {"substatus", "timestampUTC", "operation"})


def _read(stream: BinaryIO, ctx: ParseContext) -> tuple[str | None, int, int]:
    """(text, or None when longer than MAX_STATUS_CHARS; physical lines; characters) of the stream.

    A longer stream is still read to its end, one block at a time, to count its lines.
    """
    reader = open_text(stream, ctx.encoding)
    try:
        text = reader.read(MAX_STATUS_CHARS + 1)
        size, lines, last = len(text), text.count("\n"), text[-1:]
        if size <= MAX_STATUS_CHARS:
            return text, lines + (1 if text and last != "\n" else 0), size
        while chunk := reader.read(1 << 20):
            size, lines, last = size + len(chunk), lines + chunk.count("\n"), chunk[-1]
        return None, lines + (1 if last != "\n" else 0), size
    finally:
        reader.detach()


def _ts(value: Any) -> datetime | None:
    """An aware UTC time from `2024-06-11T23:52:10Z` (any fraction); None when not a time."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()))
    except ValueError:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else json.dumps(value)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


class _Items:
    """Rows and rejects of one status document, all placed at the document's start."""

    def __init__(self, ctx: ParseContext) -> None:
        self.ctx = ctx
        self.rows: list[dict[str, Any]] = []
        self.rejects: list[dict[str, Any]] = []
        self.dropped = 0
        self.cut = 0

    def add(self, kind: str, ts: datetime | None, component: str, level: str, message: str, raw: Any) -> None:
        if len(self.rows) >= MAX_RECORDS:
            self.dropped += 1
            return
        if len(message) > MAX_MESSAGE_CHARS:
            message, self.cut = message[:MAX_MESSAGE_CHARS], self.cut + 1
        self.rows.append({
            "kind": kind, "line_no": self.ctx.start_line, "line_count": 1, "byte_offset": self.ctx.start_offset,
            "ts_utc": ts, "component": component, "level": level, "message": message,
            "raw": raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)[:RAW_CUT],
        })

    def reject(self, reason: str, raw: str) -> None:
        self.rejects.append({"line_no": self.ctx.start_line, "byte_offset": self.ctx.start_offset,
                             "reason": reason, "raw": raw[:RAW_CUT]})


def _summary(message: str, items: _Items) -> dict | None:
    """The JSON document inside a formattedMessage.message, or None (plain text, or a reject)."""
    if not message.lstrip().startswith("{"):
        return None
    try:
        doc = json.loads(message)
    except RecursionError:
        items.reject("json_too_deep", message)
        return None
    except ValueError:
        items.reject("malformed_json", message)
        return None
    if not isinstance(doc, dict):
        items.reject("unexpected_json", message)
        return None
    return doc


def _errors(errors: Any) -> list[dict]:
    return [d for d in _list(_dict(errors).get("details")) if isinstance(d, dict)]


def _substatus(sub: dict, ts: datetime | None, items: _Items) -> None:
    name = _text(sub.get("name")) or "substatus"
    status = _text(sub.get("status")).lower()
    message = _text(_dict(sub.get("formattedMessage")).get("message"))
    summary = _summary(message, items)
    when = _ts((summary or {}).get("lastModifiedTime")) or ts
    level = _LEVELS.get(status, "INFO")
    if summary is None:
        text = f"{name} {status or 'unknown'}, code {_text(sub.get('code'))}" + (f": {message}" if message else "")
        items.add("substatus", when, name, level, text, sub)
        return
    facts = [f"{k} {_text(summary[k])}" for k in SUMMARY_FIELDS if k in summary]
    errors_text = _text(_dict(summary.get("errors")).get("message"))
    text = f"{name} {status or 'unknown'}, code {_text(sub.get('code'))}" + "".join(f"; {f}" for f in facts)
    items.add("substatus", when, name, level, text + (f"; {errors_text}" if errors_text else ""),
              {k: v for k, v in summary.items() if k != "patches"})
    if summary.get("maintenanceWindowExceeded") is True:
        items.add("mw", when, name, "ERROR", f"{name}: maintenance window exceeded before the operation "
                  "finished (maintenanceWindowExceeded = true)", {"maintenanceWindowExceeded": True})
    reboot = _text(summary.get("rebootStatus"))
    if reboot in ("Failed", "Required"):
        items.add("reboot", when, name, "ERROR" if reboot == "Failed" else "WARNING",
                  f"{name}: reboot {'failed' if reboot == 'Failed' else 'required'} after patching "
                  f"(rebootStatus = {reboot})", {"rebootStatus": reboot})
    auto = _dict(summary.get("autoAssessmentStatus"))
    for detail in _errors(summary.get("errors")) + _errors(auto.get("errors")):
        code = _text(detail.get("code"))
        items.add("error", when, name, "INFO" if code == "INFO" else "ERROR",
                  f"{code}: {_text(detail.get('message'))}", detail)
    for patch in _list(summary.get("patches")):
        state = _text(_dict(patch).get("patchInstallationState"))
        if state in PATCH_STATES:
            classes = ", ".join(_text(c) for c in _list(patch.get("classifications")))
            items.add("patch", when, name, PATCH_STATES[state],
                      f"Patch {state}: {_text(patch.get('name'))} {_text(patch.get('version'))}"
                      + (f" ({classes})" if classes else ""), patch)


def _entry(entry: Any, items: _Items) -> None:
    if not isinstance(entry, dict) or not isinstance(entry.get("status"), dict):
        items.reject("unexpected_json", _text(entry))
        return
    ts = _ts(entry.get("timestampUTC"))
    top = entry["status"]
    status = _text(top.get("status")).lower()
    message = _text(_dict(top.get("formattedMessage")).get("message"))
    summary = _summary(message, items)
    head = f"{_text(top.get('name')) or 'status'}: {_text(top.get('operation')) or 'operation'} " \
           f"{status or 'unknown'}, code {_text(top.get('code'))}"
    if message and summary is None:
        head += f": {message}"
    items.add("status", ts, "status", _LEVELS.get(status, "INFO"), head,
              {k: v for k, v in top.items() if k != "substatus"})
    if summary is not None:  # a summary written at the top level instead of in a substatus
        _substatus({"name": _text(top.get("operation")) or "status", "status": status, "code": top.get("code"),
                    "formattedMessage": {"message": message}}, ts, items)
    for sub in _list(top.get("substatus")):
        if isinstance(sub, dict):
            _substatus(sub, ts, items)
        else:
            items.reject("unexpected_json", _text(sub))


def parse(stream: BinaryIO, ctx: ParseContext) -> Iterator[Batch]:
    """One batch for the whole document (status files are small; bigger ones are one reject)."""
    text, lines, size = _read(stream, ctx)
    items = _Items(ctx)
    if text is None:
        items.reject("too_large", f"status file of {size} characters, over the {MAX_STATUS_CHARS} read")
    elif text.strip():
        try:
            doc = json.loads(text)
        except RecursionError:
            items.reject("json_too_deep", text)
        except ValueError as exc:
            items.reject("malformed_json", f"{exc}: {text}")
        else:
            for entry in doc if isinstance(doc, list) else [doc]:
                _entry(entry, items)
    batch = make_batch(items.rows, items.rejects, lines, ctx, NAME)
    if items.dropped:
        batch.notes.append(f"{items.dropped} status item(s) past the first {MAX_RECORDS} were not kept")
    if items.cut:
        batch.notes.append(f"{items.cut} status message(s) cut at {MAX_MESSAGE_CHARS} characters")
    yield batch


PARSER = ParserSpec(
    name=NAME,
    description="Azure Update Manager patch extension status (<seq>.status JSON): operation, summaries, "
    "errors, failed and pending patches",
    detect=detect,
    parse=parse,
    priority=25,
)
