"""Local time to UTC, for logs that write wall-clock time without a zone.

`--assume-tz` takes "UTC", a fixed offset ("+0530", "-07:00") or an IANA name
("Europe/Stockholm"); offsets written in the log itself (classic `tz:` banners, ISO suffixes)
always win over the assumption.
"""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2}):?(\d{2})?$", re.IGNORECASE)


def parse_offset_minutes(text: str) -> int | None:
    """Minutes east of UTC for "+0530", "-07:00", "UTC+2"; None if `text` is not an offset."""
    m = _OFFSET.match(text.strip())
    if not m:
        return None
    sign = 1 if m.group(1) == "+" else -1
    hours, minutes = int(m.group(2)), int(m.group(3) or 0)
    if hours > 14 or minutes > 59:
        return None
    return sign * (hours * 60 + minutes)


def validate_tz(assume_tz: str) -> str:
    """Return `assume_tz` if usable, else raise ValueError with a message for the user."""
    if assume_tz.upper() in ("UTC", "Z", "GMT") or parse_offset_minutes(assume_tz) is not None:
        return assume_tz
    try:
        ZoneInfo(assume_tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {assume_tz!r}: use UTC, an offset like +0530, or an IANA name") from exc
    return assume_tz


def naive_to_utc(expr: pl.Expr, assume_tz: str) -> pl.Expr:
    """Turn a naive local Datetime expression into Datetime(us, UTC) under `assume_tz`."""
    expr = expr.cast(pl.Datetime("us"))
    if assume_tz.upper() in ("UTC", "Z", "GMT"):
        return expr.dt.replace_time_zone("UTC")
    minutes = parse_offset_minutes(assume_tz)
    if minutes is not None:
        return (expr - timedelta(minutes=minutes)).dt.replace_time_zone("UTC")
    return expr.dt.replace_time_zone(assume_tz, ambiguous="earliest", non_existent="null").dt.convert_time_zone(
        "UTC"
    )


def shift_by_offset(expr: pl.Expr, offset_minutes: pl.Expr) -> pl.Expr:
    """Naive local Datetime minus a per-row offset in minutes, as Datetime(us, UTC)."""
    return (expr.cast(pl.Datetime("us")) - pl.duration(minutes=offset_minutes)).dt.replace_time_zone("UTC")
