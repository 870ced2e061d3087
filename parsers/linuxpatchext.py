"""Azure Update Manager on Linux: the LinuxPatchExtension's `<seq>.core.log` and `<seq>.ext.log`.

Both live in /var/log/azure/Microsoft.CPlat.Core.LinuxPatchExtension/. The shapes come from the
extension's public source (Azure/LinuxPatchExtension, `src/core/src/local_loggers` and
`src/extension/src/local_loggers`); no real file was available, so tests use files written the
way those writers write:
- core.log: every stdout write becomes `"\\n" + utcnow("%Y-%m-%dT%H:%M:%SZ") + "> " + text`;
  `log_error`/`log_warning` prefix `ERROR:`/`WARNING:` (no space after the colon);
  `log_debug`/`log_verbose` write `\\tDEBUG: ...`/`\\tVERBOSE: ...` lines with no time, which
  continue the record above, as do the start-up splash (an ASCII-art title between lines of 128
  dashes) and package-manager output. `<Log file was closed.>` is glued to the last line.
- ext.log: `"\\n" + utcnow("%Y-%m-%d %H:%M:%S") + "> " + repr(text)`, so the message is a Python
  string literal, and the logger appends the plain text (and debug text) to the same line right
  after it. The literal is decoded and the duplicate dropped.

The ext.log stamp is the one omsupdatemgmt.log has, so an ext.log is told apart by its quoted
messages, and a core.log by its `T...Z> ` stamp; a file with neither goes to the other parsers.
"""

from __future__ import annotations

import re

import polars as pl

from .base import Head
from .linefold import first_nonblank_lines, folding_parser

NAME = "linuxpatchext"

#: One timestamped line of either log: `T` and `Z` in core.log, a space and no zone in ext.log.
LINE = (
    r"^(?P<date>\d{4}-\d{2}-\d{2})(?P<sep>[T ])(?P<time>\d{2}:\d{2}:\d{2})Z?>"
    r"(?: (?P<message>.*?))?\s*$"
)

#: Detection: the core's exact stamp, or the extension's stamp followed by a string literal.
CORE_START = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z>(?: |$)")
EXT_START = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}> (?:'|\")")

#: An ext.log message: a Python literal, then whatever the logger glued after it.
SINGLE_QUOTED = r"^'(?P<body>(?:[^'\\]|\\.)*)'(?P<rest>.*)$"
DOUBLE_QUOTED = r"^\"(?P<body>(?:[^\"\\]|\\.)*)\"(?P<rest>.*)$"

CLOSED_SUFFIX = r"<Log file was closed\.>\s*$"
ERROR_PREFIX = r"(?i)^\s*(?:ERROR:|\[ERROR\])"
WARNING_PREFIX = r"(?i)^\s*(?:WARNING:|\[WARNING\])"
#: The start-up write: a stamp with nothing after it (the splash follows on untimed lines).
BANNER = r"^(?:-{40,})?$"


def detect(head: Head) -> bool:
    """True when one of the first lines has the core's stamp or the extension's quoted message."""
    if head.is_binary:
        return False
    return any(CORE_START.match(line) or EXT_START.match(line) for line in first_nonblank_lines(head.text, 50))


def _unquote(literal: pl.Expr) -> pl.Expr:
    """Undo the escapes repr() adds (line breaks become spaces, as the core's error logger does)."""
    return (
        literal.str.replace_all(r"\\[nrt]", " ")
        .str.replace_all("\\'", "'", literal=True)
        .str.replace_all('\\"', '"', literal=True)
        .str.replace_all("\\\\", "\\", literal=True)
        .str.strip_chars()
    )


def _ext_message(message: pl.Expr) -> pl.Expr:
    """The text of an ext.log message: the decoded literal, plus glued text that is not a repeat."""
    single = message.str.extract_groups(SINGLE_QUOTED)
    double = message.str.extract_groups(DOUBLE_QUOTED)
    body = pl.coalesce(single.struct.field("body"), double.struct.field("body"))
    rest = pl.coalesce(single.struct.field("rest"), double.struct.field("rest"))
    text = _unquote(body)
    extra = (
        pl.when(rest.str.starts_with(text)).then(rest.str.slice(text.str.len_chars())).otherwise(rest)
        .str.strip_chars()
    )
    decoded = pl.when(extra == "").then(text).otherwise(pl.concat_str(text, pl.lit(" "), extra))
    return pl.when(body.is_null()).then(message).otherwise(decoded)


def classify(frame: pl.DataFrame) -> pl.DataFrame:
    """Mark timestamped lines as record starts and parse their fields, vectorised."""
    closed = pl.col("line").str.contains(CLOSED_SUFFIX)
    body = pl.col("line").str.replace(CLOSED_SUFFIX, "")
    df = frame.with_columns(closed=closed, parts=body.str.extract_groups(LINE), body=body)
    field = pl.col("parts").struct.field
    is_core = field("sep") == "T"
    raw_message = field("message").fill_null("")
    df = df.with_columns(
        is_start=field("date").is_not_null(),
        message=pl.when(is_core).then(raw_message).otherwise(_ext_message(raw_message)),
    )
    message = pl.col("message")
    is_start = pl.col("is_start")
    return df.select(
        "line_no",
        "byte_offset",
        "line",
        "too_long",
        is_start=is_start,
        text=pl.when(is_start).then(message).otherwise(pl.col("body").str.strip_chars_end()),
        kind=pl.when(message.str.contains(BANNER)).then(pl.lit("banner")).otherwise(pl.lit("line")),
        # both writers use utcnow(): UTC whatever --assume-tz says
        ts=pl.concat_str(field("date"), pl.lit(" "), field("time"))
        .str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
        .dt.replace_time_zone("UTC"),
        component=pl.when(is_start).then(pl.when(is_core).then(pl.lit("core")).otherwise(pl.lit("ext"))),
        level=pl.when(message.str.contains(ERROR_PREFIX))
        .then(pl.lit("ERROR"))
        .when(message.str.contains(WARNING_PREFIX))
        .then(pl.lit("WARNING"))
        .when(is_start)
        .then(pl.lit("INFO")),
        note=pl.when(pl.col("closed")).then(
            pl.format("line {}: '<Log file was closed.>' removed from the message", pl.col("line_no"))
        ),
    )


PARSER = folding_parser(
    NAME,
    "Azure Update Manager LinuxPatchExtension logs (<seq>.core.log 'YYYY-MM-DDTHH:MM:SSZ> ', "
    "<seq>.ext.log 'YYYY-MM-DD HH:MM:SS> ' + quoted text), UTC",
    detect,
    classify,
    35,
)
