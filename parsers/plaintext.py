"""Generic text: whatever no other parser claims (job output saved from the portal, copied error
dialogs, Activity Log exports). One record per non-blank line, so the pipeline can still match
signatures in it; a leading timestamp, when there is one, becomes the record's time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import polars as pl

from .base import Batch, GroupResult, Head, ParseContext, ParserSpec
from .linefold import Classifier, fold_group, fold_lines
from .textio import context_lines
from .timeutil import naive_to_utc, shift_by_offset

NAME = "text"

#: A leading ISO-like stamp: `2024-05-01 10:00:00`, `2024-05-01T10:00:00.123Z`, `2024/05/01 10:00:00 +02:00`,
#: optionally in brackets. An offset or `Z` written on the line wins over --assume-tz.
ISO_STAMP = (
    r"^\s*\[?(?P<y>\d{4})[-/.](?P<mo>\d{1,2})[-/.](?P<d>\d{1,2})(?:[T ]|,\s*)(?P<h>\d{1,2}):(?P<mi>\d{2})"
    r"(?::(?P<s>\d{2}))?(?:[.,](?P<f>\d{1,9}))?\s*(?P<z>Z|UTC|GMT|[+-]\d{2}:?\d{2})?\]?(?P<rest>\s.*|)$"
)

#: A leading US-style stamp as the Azure portal and Windows dialogs write it: `5/1/2024 10:00:00 AM`,
#: `5/1/2024, 10:00 PM`, or 24-hour. Month first unless the first number cannot be a month.
US_STAMP = (
    r"^\s*\[?(?P<mo>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4}),?\s+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?"
    r"(?:[.,](?P<f>\d{1,9}))?(?:\s*(?P<ampm>[AaPp][Mm])\b)?\s*(?P<z>Z|UTC|GMT|[+-]\d{2}:?\d{2})?\]?"
    r"(?P<rest>\s.*|)$"
)

#: What is left between the stamp and the message: spaces and one separator such as ` - `.
STAMP_TAIL = r"^\s*(?:[-|:]\s+)?"

#: Level words at the start of the message (after any stamp), strongest first; else `Error:` or
#: `error details:` anywhere makes an ERROR.
LEVEL_START = (
    (r"(?i)^\W*fatal\b", "FATAL"),
    (r"(?i)^\W*failed\b", "FAILED"),
    (r"(?i)^\W*(?:error|exception)\b", "ERROR"),
    (r"(?i)^\W*warn(?:ing)?\b", "WARNING"),
)
ERROR_ANYWHERE = r"(?i)\berror(?: details)?:"

#: Share of U+FFFD in the decoded head above which the bytes are not taken for text.
MAX_REPLACEMENT_SHARE = 0.02


def detect(head: Head) -> bool:
    """True for any text that decodes (the last resort, tried after every other parser)."""
    if head.is_binary:
        return False
    text = head.text
    return not text or text.count("\ufffd") <= MAX_REPLACEMENT_SHARE * len(text)


def _int(parts: str, name: str) -> pl.Expr:
    return pl.col(parts).struct.field(name).cast(pl.Int64, strict=False)


def _naive(parts: str, us_order: bool) -> pl.Expr:
    """A naive Datetime from extracted stamp parts; null when the parts are not a real time."""
    year, month, day, hour = _int(parts, "y"), _int(parts, "mo"), _int(parts, "d"), _int(parts, "h")
    if us_order:
        day_first = (month > 12) & (day <= 12)
        month, day = (
            pl.when(day_first).then(day).otherwise(month),
            pl.when(day_first).then(month).otherwise(day),
        )
        ampm = pl.col(parts).struct.field("ampm").str.to_uppercase()
        hour = (
            pl.when(ampm.is_null())
            .then(hour)
            .when(hour > 12)
            .then(None)
            .otherwise(hour % 12 + pl.when(ampm == "PM").then(12).otherwise(0))
        )
    field = pl.col(parts).struct.field
    text = pl.format(
        "{}-{}-{} {}:{}:{}.{}",
        year,
        month.cast(pl.String).str.zfill(2),
        day.cast(pl.String).str.zfill(2),
        hour.cast(pl.String).str.zfill(2),
        field("mi"),
        field("s").fill_null("00"),
        field("f").fill_null("0"),
    )
    return text.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f", strict=False)


def _offset_minutes(zone: pl.Expr) -> pl.Expr:
    """Minutes east of UTC for `Z`, `UTC`, `+02:00`, `-0530`; null when no zone was written."""
    digits = zone.str.replace(":", "", literal=True)
    sign = pl.when(digits.str.starts_with("-")).then(-1).otherwise(1)
    hours = digits.str.slice(1, 2).cast(pl.Int64, strict=False)
    minutes = digits.str.slice(3, 2).cast(pl.Int64, strict=False)
    return pl.when(zone.is_in(["Z", "UTC", "GMT"])).then(0).otherwise(sign * (hours * 60 + minutes))


def _stamped_ts(parts: str, us_order: bool, assume_tz: str) -> pl.Expr:
    naive = _naive(parts, us_order)
    minutes = _offset_minutes(pl.col(parts).struct.field("z"))
    local = naive_to_utc(naive, assume_tz)
    return pl.when(minutes.is_not_null()).then(shift_by_offset(naive, minutes)).otherwise(local)


def _level(message: pl.Expr) -> pl.Expr:
    expr = pl.when(message.str.contains(LEVEL_START[0][0])).then(pl.lit(LEVEL_START[0][1]))
    for pattern, level in LEVEL_START[1:]:
        expr = expr.when(message.str.contains(pattern)).then(pl.lit(level))
    return expr.when(message.str.contains(ERROR_ANYWHERE)).then(pl.lit("ERROR")).otherwise(pl.lit("INFO"))


def make_classifier(assume_tz: str) -> Classifier:
    """A classifier for fold_lines: every non-blank line starts its own record."""

    iso_ts = _stamped_ts("iso", False, assume_tz)
    us_ts = _stamped_ts("us", True, assume_tz)
    rest = (
        pl.when(pl.col("iso_ts").is_not_null())
        .then(pl.col("iso").struct.field("rest"))
        .otherwise(pl.col("us").struct.field("rest"))
    )
    message = (
        pl.when(pl.col("ts").is_not_null())
        .then(pl.col("rest").str.replace(STAMP_TAIL, ""))
        .otherwise(pl.col("line"))
        .str.strip_chars_end()
    )

    def classify(frame: pl.DataFrame) -> pl.DataFrame:
        # in steps, each reading the columns of the one before: written as one expression, the
        # stamp parsing was repeated wherever its result was used (3x slower, measured)
        df = frame.with_columns(
            iso=pl.col("line").str.extract_groups(ISO_STAMP),
            us=pl.col("line").str.extract_groups(US_STAMP),
        ).with_columns(iso_ts=iso_ts, us_ts=us_ts)
        df = df.with_columns(ts=pl.coalesce("iso_ts", "us_ts"), rest=rest)
        return df.with_columns(message=message).select(
            "line_no",
            "byte_offset",
            "line",
            "too_long",
            "ts",
            is_start=pl.col("line").str.strip_chars() != "",
            text=pl.col("message"),
            kind=pl.lit("line"),
            level=_level(pl.col("message")),
        )

    return classify


def parse(stream: BinaryIO, ctx: ParseContext) -> Iterator[Batch]:
    """Stream one record per non-blank line; blank lines are folded, overlong lines rejected."""
    blocks = context_lines(stream, ctx)
    yield from fold_lines(blocks, make_classifier(ctx.assume_tz), ctx, NAME)


def parse_group(frame: pl.DataFrame, sources: list[str], ctx: ParseContext) -> GroupResult:
    """Several whole small files at once (ParserSpec.parse_group)."""
    return fold_group(frame, sources, make_classifier(ctx.assume_tz), NAME)


PARSER = ParserSpec(
    name=NAME,
    description="Any other text: one record per non-blank line, leading timestamp and level words read",
    detect=detect,
    parse=parse,
    priority=99,
    parse_group=parse_group,
)
