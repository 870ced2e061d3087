"""omsupdatemgmt.log: the Linux Update Management runbook's own run log.

No real copy of this file was ever seen; its shape is inferred from the runbook's public successor
(see OMS_LINE). So the grammar lives in one constant and is lenient, and every line is kept: what
does not carry a timestamp continues the record before it.
"""

from __future__ import annotations

import re

import polars as pl

from .linefold import folding_parser, prefix_detector

NAME = "omsupdatemgmt"

#: One timestamped line. Inferred, not seen: /work/shared/reference/log-formats.md §3.3 derives
#: `"\n" + utcnow().strftime("%Y-%m-%d %H:%M:%S") + "> " + message` from Azure/LinuxPatchExtension,
#: the runbook's successor. Lenient on purpose: `T` separator, fractional seconds, a `Z`, spaces
#: around `>`, trailing spaces. Untimestamped lines (`\tDEBUG: `, `\tVERBOSE: `, `\t...`, and
#: package-manager output `|\t...`) continue the record before them.
OMS_LINE = (
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?)Z?"
    r"[ \t]*>[ \t]?(?P<message>.*?)\s*$"
)

#: The logger's start-up write: a timestamped line of 128 dashes (matched from 40 on).
BANNER = r"^-{40,}$"

#: Appended without newline or timestamp when the logger closes, so it ends the last line.
CLOSED_SUFFIX = r"<Log file was closed\.>\s*$"

#: Message prefixes that carry a level (`log_error` / `log_warning`, and the core's `[ERROR]`).
ERROR_PREFIX = r"(?i)^\s*(?:ERROR:|\[ERROR\])"
WARNING_PREFIX = r"(?i)^\s*(?:WARNING:|\[WARNING\])"

#: True when one of the first non-blank lines has this format's prefix.
detect = prefix_detector(re.compile(OMS_LINE))


def classify(frame: pl.DataFrame) -> pl.DataFrame:
    """Mark timestamped lines as record starts and parse their fields, vectorised."""
    closed = pl.col("line").str.contains(CLOSED_SUFFIX)
    body = pl.col("line").str.replace(CLOSED_SUFFIX, "")
    df = frame.with_columns(closed=closed, parts=body.str.extract_groups(OMS_LINE), body=body)
    message = pl.col("parts").struct.field("message")
    stamp = pl.concat_str(
        pl.col("parts").struct.field("date"),
        pl.lit(" "),
        pl.col("parts").struct.field("time").str.replace(",", ".", literal=True),
    )
    is_start = pl.col("parts").struct.field("date").is_not_null()
    return df.select(
        "line_no",
        "byte_offset",
        "line",
        "too_long",
        is_start=is_start,
        text=pl.when(is_start).then(message).otherwise(pl.col("body").str.strip_chars_end()),
        kind=pl.when(message.str.contains(BANNER)).then(pl.lit("banner")).otherwise(pl.lit("line")),
        # The writer uses datetime.utcnow(): UTC whatever --assume-tz says.
        ts=stamp.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f", strict=False).dt.replace_time_zone("UTC"),
        level=pl.when(message.str.contains(ERROR_PREFIX))
        .then(pl.lit("ERROR"))
        .when(message.str.contains(WARNING_PREFIX))
        .then(pl.lit("WARNING"))
        .when(is_start)
        .then(pl.lit("INFO")),
        note=pl.when(pl.col("closed")).then(
            pl.format(
                "line {}: '<Log file was closed.>' removed from the message (the run's log ended here)",
                pl.col("line_no"),
            )
        ),
    )


PARSER = folding_parser(
    NAME,
    "Linux Update Management runbook log (omsupdatemgmt.log): 'YYYY-MM-DD HH:MM:SS> message', UTC",
    detect,
    classify,
    40,
)
