"""worker.log: the Linux hybrid runbook worker's log (also worker.log.1..5 and sandbox<id>.log).

It tells whether the Update Management job (runbook PatchMicrosoftOMSLinuxComputer) ever ran and
how it ended, even when omsupdatemgmt.log is missing. The writer logs every record at INFO, so the
level is read from the message itself (LEVEL_RULES).
"""

from __future__ import annotations

import re

import polars as pl

from .linefold import folding_parser, prefix_detector

NAME = "workerlog"

#: One prefixed line, exact from the writer (log-formats.md §3.2, nxOMSAutomationWorker
#: `locallogger.py`): format '%(asctime)s (<pid>)<component> : %(message)s', datefmt
#: '%Y-%m-%d %H:%M:%S', converter time.gmtime (UTC). No space between `)` and the component.
#: Unprefixed lines (traceback bodies, sandbox stdout copied verbatim) continue the record above.
WORKER_LINE = r"^(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) \((?P<pid>\d+)\)(?P<component>\w+) :(?: (?P<message>.*))?$"

WORKER_TS_FORMAT = "%Y-%m-%d %H:%M:%S"

#: Level from the message, first match wins (the writer only marks `[WARNING] `, `[DEBUG] ` and
#: `Exception encountered.`; the rest are the failure texts of the worker's message catalogue).
LEVEL_RULES: tuple[tuple[str, str], ...] = (
    (r"^\[WARNING\] ", "WARNING"),
    (r"^\[DEBUG\] ", "INFO"),
    (r"^(?:Exception encountered\.|Traceback\b)", "ERROR"),
    (r"(?i)\bnon[ -]terminal exception", "WARNING"),  # transient, e.g. JRDS unreachable
    (
        r"(?i)^Job state changed to failed|^Job state changed to suspended after an exception"
        r"|^Sandbox process crashed|terminal exception|^Job (?:stream handler )?unhandled exception"
        r"|^Unsupported runbook type|^Failed to create sandbox|Certificate rotation failed"
        r"|^Runbook signature validation (?:failed|is invalid)",
        "ERROR",
    ),
)

#: An unprefixed line that opens a Python traceback makes its record an ERROR.
TRACEBACK_LINE = r"^Traceback \(most recent call last\)"

#: True when one of the first non-blank lines has this format's prefix.
detect = prefix_detector(re.compile(WORKER_LINE))


def _level(message: pl.Expr) -> pl.Expr:
    expr = pl.when(message.str.contains(LEVEL_RULES[0][0])).then(pl.lit(LEVEL_RULES[0][1]))
    for pattern, level in LEVEL_RULES[1:]:
        expr = expr.when(message.str.contains(pattern)).then(pl.lit(level))
    return expr.otherwise(pl.lit("INFO"))


def classify(frame: pl.DataFrame) -> pl.DataFrame:
    """Mark prefixed lines as record starts and parse ts, pid, component and level, vectorised."""
    df = frame.with_columns(parts=pl.col("line").str.extract_groups(WORKER_LINE))
    field = pl.col("parts").struct.field
    is_start = field("ts").is_not_null()
    message = field("message").fill_null("").str.strip_chars_end()
    return df.select(
        "line_no",
        "byte_offset",
        "line",
        "too_long",
        is_start=is_start,
        text=pl.when(is_start).then(message).otherwise(pl.col("line").str.strip_chars_end()),
        kind=pl.lit("line"),
        # time.gmtime in the writer: UTC whatever --assume-tz says.
        ts=field("ts").str.strptime(pl.Datetime("us", "UTC"), WORKER_TS_FORMAT, strict=False),
        pid=field("pid"),
        component=field("component"),
        level=pl.when(is_start)
        .then(_level(message))
        .when(pl.col("line").str.contains(TRACEBACK_LINE))
        .then(pl.lit("ERROR")),
    )


PARSER = folding_parser(
    NAME,
    "Linux hybrid worker log (worker.log, sandbox*.log): "
    "'YYYY-MM-DD HH:MM:SS (pid)component : message', UTC",
    detect,
    classify,
    40,
)
