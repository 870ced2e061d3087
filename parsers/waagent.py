"""waagent.log: the Azure Linux guest agent (WALinuxAgent), which installs and runs VM extensions.

When an Azure Update Manager run never starts on a Linux VM, this is where the reason is: the
LinuxPatchExtension failed to download, install or enable (`[ExtensionError] Non-zero exit code:
51`), the wire server (168.63.129.16) was unreachable, or the goal state could not be fetched.

The agent's logger writes utcnow() in two forms (`/var/log/waagent.log`): agents before 2.2.4x
`2019/04/12 06:17:29.427583 INFO Daemon message` (older ones without the thread name), newer
ones `2023-10-27T08:36:49.318851Z INFO ExtHandler ExtHandler message` (thread name, then the
logger prefix, often the same word). Lines without a stamp (tracebacks, extension output the
agent copies, the rest of a multi-line message) continue the record above. A copy through
syslog adds `python3: ` before the stamp.
"""

from __future__ import annotations

import re

import polars as pl

from .linefold import folding_parser, prefix_detector

NAME = "waagent"

LINE = (
    r"^(?:python[\d.]*: )?(?P<date>\d{4}[-/]\d{2}[-/]\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)Z? "
    r"(?P<level>VERBOSE|INFO|WARNING|WARN|ERROR)(?: (?P<rest>.*?))?\s*$"
)

#: The agent's thread names (Daemon, ExtHandler, MonitorHandler, EnvHandler, ...): the component.
THREAD = r"^(?P<thread>Daemon|[A-Z][A-Za-z]*(?:Handler|Collector))(?: (?P<message>.*))?$"

_LEVELS = {"VERBOSE": "INFO", "INFO": "INFO", "WARNING": "WARNING", "WARN": "WARNING", "ERROR": "ERROR"}

#: True when one of the first non-blank lines has the agent's prefix.
detect = prefix_detector(re.compile(LINE))


def classify(frame: pl.DataFrame) -> pl.DataFrame:
    """Mark stamped lines as record starts and parse time, level and thread, vectorised."""
    df = frame.with_columns(parts=pl.col("line").str.extract_groups(LINE))
    field = pl.col("parts").struct.field
    rest = field("rest").fill_null("")
    df = df.with_columns(thread=rest.str.extract_groups(THREAD), rest=rest)
    thread = pl.col("thread").struct.field("thread")
    after = pl.col("thread").struct.field("message").fill_null("")
    # the newer form repeats the thread name as the logger prefix: keep it once, as the component
    message = (
        pl.when(thread.is_null())
        .then(pl.col("rest"))
        .when(after.str.starts_with(pl.concat_str(thread, pl.lit(" "))) | (after == thread))
        .then(after.str.slice(thread.str.len_chars() + 1))
        .otherwise(after)
    )
    is_start = field("date").is_not_null()
    stamp = pl.concat_str(field("date").str.replace_all("/", "-", literal=True), pl.lit(" "), field("time"))
    return df.select(
        "line_no",
        "byte_offset",
        "line",
        "too_long",
        is_start=is_start,
        text=pl.when(is_start).then(message).otherwise(pl.col("line").str.strip_chars_end()),
        kind=pl.lit("line"),
        # the agent logs utcnow() in both forms: UTC whatever --assume-tz says
        ts=stamp.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f", strict=False).dt.replace_time_zone("UTC"),
        component=thread,
        level=field("level").replace_strict(_LEVELS, default=None, return_dtype=pl.String),
    )


PARSER = folding_parser(
    NAME,
    "Azure Linux guest agent log (waagent.log): 'YYYY/MM/DD HH:MM:SS.ffffff LEVEL ...' and "
    "'YYYY-MM-DDTHH:MM:SS.ffffffZ LEVEL Thread ...', UTC",
    detect,
    classify,
    35,
)
