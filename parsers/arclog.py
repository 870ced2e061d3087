"""Azure Arc Connected Machine agent logs: `himds.log`, `azcmagent.log` (and the extension and
guest-configuration services' logs written the same way).

On an Arc-enabled server the agent is what Azure Update Manager reaches the machine through:
when onboarding, the identity endpoint (HIMDS) or the extension service fails, no patch
operation runs. The agent is written in Go and logs with logrus' text formatter:
`time="2023-01-01T10:00:00Z" level=error msg="quoted, escaped text" key=value key2="quoted"`
(time in RFC 3339 with the machine's offset or Z; time, level and msg first, then the fields).
Where they are: /var/opt/azcmagent/log/ on Linux, %ProgramData%\\AzureConnectedMachineAgent\\Log\\
on Windows.

Any Go program may log that way, so a file is taken for an Arc log only when its name or its
first lines say Arc (himds, azcmagent, the agent's folder or service names); other logrus files
stay generic text. Lines without the prefix (a Go panic's stack) continue the record above.
"""

from __future__ import annotations

import re

import polars as pl

from .base import Head
from .linefold import first_nonblank_lines, folding_parser

NAME = "arc"

LINE = (
    r'^time="(?P<time>[^"]*)" level=(?P<level>[A-Za-z]+)'
    r'(?: msg=(?:"(?P<qmsg>(?:[^"\\]|\\.)*)"|(?P<bmsg>[^ "]\S*)))?(?P<fields>.*?)\s*$'
)
_START = re.compile(r'^time="\d{4}-\d{2}-\d{2}T[^"]*" level=[A-Za-z]+')

#: Words that say a logrus file is the Connected Machine agent's.
ARC_MARKERS = re.compile(
    r"(?i)himds|azcmagent|AzureConnectedMachineAgent|Connected ?Machine|hybridcompute|arcproxy"
    r"|extensionservice|gc_service|GCArcService"
)

#: A `component=...` or `source=...` field, when the line has one.
COMPONENT = r'(?:^|\s)(?:component|Component|source|Source)=(?:"(?P<quoted>[^"]*)"|(?P<bare>\S+))'

_LEVELS = {
    "trace": "INFO", "debug": "INFO", "info": "INFO", "warning": "WARNING", "warn": "WARNING",
    "error": "ERROR", "fatal": "FATAL", "panic": "FATAL",
}


def detect(head: Head) -> bool:
    """logrus lines in a file whose name or first lines name the Arc agent."""
    if head.is_binary:
        return False
    lines = first_nonblank_lines(head.text, 50)
    if not any(_START.match(line) for line in lines):
        return False
    return bool(ARC_MARKERS.search(head.name.rsplit("/", 1)[-1]) or ARC_MARKERS.search("\n".join(lines)))


def _unescape(text: pl.Expr) -> pl.Expr:
    """Undo the Go quoting of msg (strconv.Quote): escaped quotes, backslashes, line breaks."""
    return (
        text.str.replace_all(r"\\[nrt]", " ")
        .str.replace_all(r"\"", '"', literal=True)
        .str.replace_all(r"\\", "\\", literal=True)
    )


def _utc(stamp: pl.Expr) -> pl.Expr:
    """RFC 3339 (Z or an offset, optional fraction) to UTC."""
    return stamp.str.replace(r"Z$", "+00:00").str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%:z", time_zone="UTC", strict=False
    )


def classify(frame: pl.DataFrame) -> pl.DataFrame:
    """Mark logrus lines as record starts; msg and then the other fields make the message."""
    df = frame.with_columns(parts=pl.col("line").str.extract_groups(LINE))
    field = pl.col("parts").struct.field
    is_start = field("time").is_not_null()
    msg = pl.coalesce(_unescape(field("qmsg")), field("bmsg"), pl.lit(""))
    fields = field("fields").fill_null("").str.strip_chars()
    message = pl.when(fields == "").then(msg).otherwise(pl.concat_str(msg, pl.lit(" "), fields)).str.strip_chars()
    component = field("fields").str.extract_groups(COMPONENT)
    return df.select(
        "line_no",
        "byte_offset",
        "line",
        "too_long",
        is_start=is_start,
        text=pl.when(is_start).then(message).otherwise(pl.col("line").str.strip_chars_end()),
        kind=pl.lit("line"),
        ts=_utc(field("time")),
        component=pl.coalesce(component.struct.field("quoted"), component.struct.field("bare")),
        level=pl.when(is_start).then(
            field("level").str.to_lowercase().replace_strict(_LEVELS, default="INFO", return_dtype=pl.String)
        ),
    )


PARSER = folding_parser(
    NAME,
    "Azure Arc Connected Machine agent logs (himds.log, azcmagent.log): logrus "
    "'time=\"...\" level=... msg=\"...\" key=value'",
    detect,
    classify,
    35,
)
