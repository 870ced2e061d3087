"""Shared pieces of the Windows event-export parsers (EVTX, XML, CSV, text, JSON).

Every export form carries the same few facts (event ID, provider, level, time, computer,
record ID, description) under different names, encodings and time formats. Mapping them
here keeps the five parsers agreeing on what a record of one event looks like.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, BinaryIO

import polars as pl

from .base import RAW_CUT, RECORD_SCHEMA, UTC_TS, Batch, ParseContext, conform, rejects_from_rows
from .timeutil import naive_to_utc

# --- levels -------------------------------------------------------------------------------

#: Windows event levels (winmeta.xml): 1 Critical, 2 Error, 3 Warning, 4 Information, 5 Verbose;
#: classic providers write 0, which Event Viewer shows as Information.
_LEVEL_BY_NUMBER = {0: "INFO", 1: "FATAL", 2: "ERROR", 3: "WARNING", 4: "INFO", 5: "INFO"}

#: Level words as Event Viewer and PowerShell show them, English first, then common UI languages.
_LEVEL_BY_NAME = {
    "critical": "FATAL", "kritisch": "FATAL", "critique": "FATAL", "crítico": "FATAL", "kritisk": "FATAL",
    "error": "ERROR", "fehler": "ERROR", "erreur": "ERROR", "fel": "ERROR",
    "warning": "WARNING", "warnung": "WARNING", "avertissement": "WARNING", "advertencia": "WARNING",
    "varning": "WARNING",
    "information": "INFO", "informationen": "INFO", "información": "INFO", "informational": "INFO",
    "verbose": "INFO", "ausführlich": "INFO", "détaillé": "INFO",
    "audit success": "INFO", "successaudit": "INFO", "überwachung erfolgreich": "INFO",
    "audit failure": "FAILED", "failureaudit": "FAILED", "überwachung gescheitert": "FAILED",
}  # fmt: skip

#: System.Diagnostics.EventLogEntryType, which Get-EventLog | ConvertTo-Json writes as a number.
_ENTRY_TYPE = {1: "ERROR", 2: "WARNING", 4: "INFO", 8: "INFO", 16: "FAILED"}


def level_from_name(text: str | None) -> str | None:
    """INFO/WARNING/ERROR/FATAL/FAILED for a level word ("Error", "Warnung") or number ("2")."""
    if text is None:
        return None
    word = " ".join(str(text).split()).lower()
    if word.isdigit():
        return _LEVEL_BY_NUMBER.get(int(word))
    return _LEVEL_BY_NAME.get(word)


def level_from_number(value: Any) -> str | None:
    """Level for the numeric System/Level of an event (Critical=1 … Verbose=5, 0=classic)."""
    try:
        return _LEVEL_BY_NUMBER.get(int(value))
    except (TypeError, ValueError):
        return level_from_name(value) if isinstance(value, str) else None


def level_from_entry_type(value: Any) -> str | None:
    """Level for a Get-EventLog EntryType, written as a number (JSON) or a word (CSV)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _ENTRY_TYPE.get(value)
    if isinstance(value, str):
        return _ENTRY_TYPE.get(int(value)) if value.strip().isdigit() else level_from_name(value)
    return None


# --- times --------------------------------------------------------------------------------

_MS_DATE = re.compile(r"^\\?/Date\((-?\d+)([+-]\d{4})?\)\\?/$")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(Z|[+-]\d{2}:?\d{2})?$")
_SLASH = re.compile(r"^(\d{1,4})[/.-](\d{1,2})[/.-](\d{1,4})\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(.*)$")
_AMPM = {"am": 0, "a.m.": 0, "a": 0, "pm": 12, "p.m.": 12, "p": 12}
#: Invisible direction marks Event Viewer puts in dates, and the odd spaces .NET on ICU writes.
_TIME_MARKS = re.compile("[\u200e\u200f\u202a-\u202e]")
_TIME_SPACES = re.compile("[\u00a0\u202f\u2009]")


def _micros(frac: str | None) -> int:
    return int((frac or "0")[:6].ljust(6, "0"))


def parse_event_time(text: Any) -> tuple[datetime | None, datetime | None]:
    """Return (UTC-aware, naive-local) for an event time; exactly one is set, or neither.

    Understands `/Date(ms)/` (Windows PowerShell JSON, always UTC), ISO 8601 with or without
    an offset (wevtutil, PowerShell 7), and culture dates such as `10/7/2016 6:38:24 PM`,
    `07.10.2016 18:38:24` and `2016/10/07 18:38:24` (Event Viewer, Export-Csv), which are local.
    Slash dates are read month first unless the first number cannot be a month.
    """
    if text is None:
        return None, None
    if isinstance(text, Mapping):  # PS 5.1 wraps some dates: {"value": "/Date(...)/", "DateTime": ...}
        return parse_event_time(text.get("value") or text.get("DateTime"))
    s = " ".join(_TIME_SPACES.sub(" ", _TIME_MARKS.sub("", str(text))).split())
    if not s:
        return None, None
    m = _MS_DATE.match(s)
    if m:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(m.group(1))), None
    try:
        m = _ISO.match(s)
        if m:
            y, mo, d, h, mi, sec, frac, tz = m.groups()
            value = datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec or 0), _micros(frac))
            if not tz:
                return None, value
            if tz == "Z":
                return value.replace(tzinfo=UTC), None
            sign = 1 if tz[0] == "+" else -1
            digits = tz[1:].replace(":", "")
            offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            return value.replace(tzinfo=timezone(sign * offset)).astimezone(UTC), None
        m = _SLASH.match(s)
        if m:
            return None, _culture_date(m)
    except ValueError:  # impossible calendar values such as 2/30/2016
        return None, None
    return None, None


def _culture_date(m: re.Match[str]) -> datetime | None:
    a, b, c, h, mi, sec, frac, rest = m.groups()
    if len(a) == 4:  # 2016/10/07
        year, month, day = int(a), int(b), int(c)
    elif len(c) == 4:
        first, second = int(a), int(b)
        dotted = "." in m.group(0).split()[0]
        year = int(c)
        month, day = (second, first) if dotted or first > 12 else (first, second)
    else:
        return None
    hour = int(h)
    marker = rest.strip().lower()
    if marker:
        if marker not in _AMPM:
            return None
        hour = hour % 12 + _AMPM[marker]
    return datetime(year, month, day, hour, int(mi), int(sec or 0), _micros(frac))


# --- small value helpers ---------------------------------------------------------------------


def as_int(value: Any) -> int | None:
    """An int from a JSON number or a decimal string; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        s = value.strip()
        if s.lstrip("-").isdigit():
            return int(s)
    return None


def as_text(value: Any) -> str | None:
    """Strip a value to text; empty strings become None."""
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def clean_message(text: str | None) -> str | None:
    """Normalise line ends to "\\n" and drop blank lines around the description."""
    if text is None:
        return None
    s = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    return s if s.strip() else None


def cut_raw(text: str | None) -> str | None:
    """Raw evidence text, cut at RAW_CUT characters."""
    return None if text is None else text[:RAW_CUT]


# --- PowerShell objects (Export-Csv columns and ConvertTo-Json keys) -------------------------

_FIRST_KEY = {
    "message": ("Message", "Description"),
    "event_id": ("Id", "EventID", "EventId", "Event ID"),
    "provider": ("ProviderName", "Source"),
    "record_id": ("RecordId", "Index", "EventRecordID"),
    "computer": ("MachineName", "Computer"),
    "component": ("LogName", "Channel", "Log Name"),
    "pid": ("ProcessId",),
    "tid": ("ThreadId",),
    "time": ("TimeCreated", "TimeGenerated", "TimeWritten", "Date and Time", "Date"),
}

#: Names PowerShell gives event objects' properties; a header needs some of them to be ours.
POWERSHELL_KEYS = frozenset(k for keys in _FIRST_KEY.values() for k in keys) | {
    "LevelDisplayName", "Level", "EntryType", "Properties", "ReplacementStrings", "InstanceId",
}  # fmt: skip


def _pick(obj: Mapping[str, Any], names: Iterable[str]) -> Any:
    for name in names:
        value = obj.get(name)
        if value is not None and value != "":
            return value
    return None


def _insertion_strings(value: Any) -> list[str]:
    """Values of `Properties` ([{"Value": ...}]) or `ReplacementStrings` ([...]) as text."""
    if not isinstance(value, list):
        return []
    out = []
    for item in value:
        if isinstance(item, Mapping):
            item = item.get("Value")
        if item is None or isinstance(item, Mapping | list):
            continue
        text = str(item).strip()
        if text:
            out.append(text)
    return out


def row_from_powershell(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Record fields from a Get-WinEvent or Get-EventLog object (CSV row or JSON object).

    When no message was rendered (the provider's message DLL was missing), the insertion
    strings stand in, so exception text stays searchable.
    """
    row: dict[str, Any] = {}
    message = _pick(obj, _FIRST_KEY["message"])
    if message is None or not str(message).strip():
        parts = _insertion_strings(obj.get("Properties")) or _insertion_strings(obj.get("ReplacementStrings"))
        message = "\n".join(parts) if parts else None
    row["message"] = clean_message(None if message is None else str(message))
    row["event_id"] = as_int(_pick(obj, _FIRST_KEY["event_id"]))
    row["provider"] = as_text(_pick(obj, _FIRST_KEY["provider"]))
    row["record_id"] = as_int(_pick(obj, _FIRST_KEY["record_id"]))
    row["computer"] = as_text(_pick(obj, _FIRST_KEY["computer"]))
    row["component"] = as_text(_pick(obj, _FIRST_KEY["component"]))
    row["pid"] = as_text(_pick(obj, _FIRST_KEY["pid"]))
    row["tid"] = as_text(_pick(obj, _FIRST_KEY["tid"]))
    level = level_from_number(obj.get("Level")) if as_int(obj.get("Level")) is not None else None
    level = level or level_from_name(as_text(obj.get("LevelDisplayName")))
    level = level or level_from_name(as_text(obj.get("Level")))
    level = level or level_from_entry_type(obj.get("EntryType"))
    row["level"] = level
    row["ts_utc"], row["ts_local"] = parse_event_time(_pick(obj, _FIRST_KEY["time"]))
    return row


# --- one damaged event -----------------------------------------------------------------------

#: What turning one event into a row can raise on hostile values: nesting deeper than the
#: interpreter's stack (RecursionError), a number past Python's int-string limit (ValueError),
#: a time past datetime's range (OverflowError). Caught per event, so only that event is lost.
EVENT_ERRORS: tuple[type[BaseException], ...] = (RecursionError, ValueError, OverflowError, ArithmeticError,
                                                 TypeError, IndexError, KeyError)


def event_error_reason(exc: BaseException) -> str:
    """The reject reason for an event that raised one of EVENT_ERRORS."""
    if isinstance(exc, RecursionError):
        return "nesting_too_deep"
    if isinstance(exc, OverflowError):
        return "value_out_of_range"
    if isinstance(exc, ValueError) and "digits" in str(exc):
        return "number_too_long"
    return "bad_value"


def event_error_text(exc: BaseException, raw: str) -> str:
    """Raw text of such a reject: what went wrong, then the start of the event."""
    return f"{type(exc).__name__}: {str(exc)[:200]}: {raw[:RAW_CUT]}"


# --- building batches ------------------------------------------------------------------------

_ROW_SCHEMA: dict[str, pl.DataType] = {
    **{k: v for k, v in RECORD_SCHEMA.items() if k not in ("source", "format", "ts")},
    "ts_utc": UTC_TS,
    "ts_local": pl.Datetime("us"),
}


_INT_COLUMNS = tuple(k for k, v in _ROW_SCHEMA.items() if v.is_integer())
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def build_records(rows: list[dict[str, Any]], ctx: ParseContext, fmt: str) -> pl.DataFrame:
    """Turn event row dicts into a RECORD_SCHEMA frame.

    Rows carry `ts_utc` (an aware time, from the data) or `ts_local` (a naive wall-clock
    time); local times are moved to UTC here, vectorised, under `ctx.assume_tz`.
    """
    for r in rows:
        r.setdefault("kind", "event")
        r["raw"] = cut_raw(r.get("raw"))
        for k in _INT_COLUMNS:  # a damaged record can carry a number no 64-bit column holds
            v = r.get(k)
            if isinstance(v, int) and not _INT64_MIN <= v <= _INT64_MAX:
                r[k] = None
    df = pl.DataFrame(rows, schema=_ROW_SCHEMA, strict=False)
    df = df.with_columns(
        pl.coalesce(pl.col("ts_utc"), naive_to_utc(pl.col("ts_local"), ctx.assume_tz)).alias("ts"),
        pl.lit(ctx.source, dtype=pl.String).alias("source"),
        pl.lit(fmt, dtype=pl.String).alias("format"),
    )
    return conform(df, RECORD_SCHEMA)


def make_batch(
    rows: list[dict[str, Any]], rejects: list[dict[str, Any]], lines: int, ctx: ParseContext, fmt: str
) -> Batch:
    """A Batch from row dicts; says so in a note when events shared physical lines.

    XML and JSON exports can hold several events on one line (wevtutil, ConvertTo-Json
    -Compress); `lines` is then raised to the unit count so folded lines never go negative.
    """
    for r in rejects:
        r.setdefault("source", ctx.source)
    notes = []
    units = len(rows) + len(rejects)
    if units > lines:
        notes.append(f"{units - lines} event(s) shared a physical line with another")
        lines = units
    return Batch(build_records(rows, ctx, fmt), rejects_from_rows(rejects), lines, notes)


# --- text decoding for the XML and JSON readers ---------------------------------------------


def _cp1252_fallback(exc: UnicodeError) -> tuple[str, int]:
    """Decode bytes that are not UTF-8 as cp1252, so reading never fails."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start : exc.end].decode("cp1252", errors="replace"), exc.end


codecs.register_error("umtriage-cp1252", _cp1252_fallback)


def open_text(stream: BinaryIO, encoding: str) -> io.TextIOWrapper:
    """A text view of `stream` in the sniffed encoding that never raises on bad bytes.

    "auto" and UTF-8 decode as UTF-8 with cp1252 for stray bytes. No newline translation,
    so byte offsets can be counted from the text. Call `.detach()` when done so the
    caller's stream stays open.
    """
    enc = encoding.lower()
    if enc in ("auto", "utf-8", "utf8", "utf-8-sig"):
        return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="umtriage-cp1252", newline="")
    return io.TextIOWrapper(stream, encoding=enc, errors="replace", newline="")


class CharReader:
    """A sliding text buffer over a stream that knows the line and byte offset of its cursor.

    Parsers look at `buf` from `pos`, `fill()` to read more, and `advance(to)` past what
    they consumed; memory holds only the unconsumed tail plus one read.
    """

    def __init__(self, stream: BinaryIO, ctx: ParseContext, read_chars: int = 1 << 20) -> None:
        self._text = open_text(stream, ctx.encoding)
        self._read_chars = read_chars
        self._utf16 = ctx.encoding.lower().startswith("utf-16")
        self.buf = ""
        self.pos = 0
        self.line = ctx.start_line  # line of buf[pos]
        self.offset = ctx.start_offset  # byte offset of buf[pos]
        self.eof = False
        self.last_char = ""

    def close(self) -> None:
        """Let go of the stream without closing it."""
        self._text.detach()

    def fill(self) -> bool:
        """Read more text; False at end of stream. Drops the consumed part of the buffer."""
        if self.eof:
            return False
        chunk = self._text.read(self._read_chars)
        if not chunk:
            self.eof = True
            return False
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return True

    def byte_len(self, text: str) -> int:
        """Bytes `text` took in the stream (exact for UTF-8 and UTF-16, close for cp1252)."""
        if self._utf16:
            return len(text.encode("utf-16-le", "surrogatepass"))
        return len(text.encode("utf-8", "surrogatepass"))

    def where(self, index: int) -> tuple[int, int]:
        """(line, byte offset) of buf[index], for index >= pos."""
        part = self.buf[self.pos : index]
        return self.line + part.count("\n"), self.offset + self.byte_len(part)

    def advance(self, index: int) -> None:
        """Consume buf[pos:index]."""
        if index <= self.pos:
            return
        self.line, self.offset = self.where(index)
        self.last_char = self.buf[index - 1]
        self.pos = index

    def lines_done(self) -> int:
        """Physical lines consumed so far, counting a last line without a newline."""
        extra = 1 if self.eof and self.last_char not in ("", "\n") and self.pos >= len(self.buf) else 0
        return self.line + extra


class DocumentScan:
    """State of one pass over a structured export (JSON, XML): rows, rejects, the line reached."""

    #: The parser name written in each record's `format` (set by the subclass).
    NAME = ""

    def __init__(self, reader: CharReader, ctx: ParseContext) -> None:
        self.r = reader
        self.ctx = ctx
        self.rows: list[dict[str, Any]] = []
        self.rejects: list[dict[str, Any]] = []
        self.mark = ctx.start_line

    def reject(self, reason: str, index: int, raw: str) -> None:
        line, offset = self.r.where(index)
        self.rejects.append({"line_no": line, "byte_offset": offset, "reason": reason, "raw": raw.strip()})

    def batch(self) -> Batch:
        """The rows and rejects gathered since the last batch, with the lines they consumed."""
        done = self.r.lines_done()
        b = make_batch(self.rows, self.rejects, done - self.mark, self.ctx, self.NAME)
        self.rows, self.rejects, self.mark = [], [], done
        return b
