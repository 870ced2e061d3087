"""ReportingEvents.log (`%windir%\\SoftwareDistribution\\ReportingEvents.log`): the agent's own
history of operation results, one tab-separated line per report.

UTF-16LE with a BOM and CRLF on disk (the framing layer handles both). Fields, in order (the same
as a classic `REPORT EVENT:` line, parsers/grammar.py, which has no event name):

    {event guid}  2016-07-21 09:53:23:948+0200  1  182 [AGENT_INSTALLING_FAILED]  101
    {update guid}  201  80240022  AutomaticUpdates  Failure  Content Install  <text naming the KB>

12 fields; some agents write a 13th, kept at the end of the message. The time is local with its
own offset, so it converts to UTC exactly. The HRESULT is bare hex ("0" on success): on a failure
line with the failure bit set it is written into the message as `0x` + 8 hex, where code
extraction reads it; success lines carry no code. A line of any other shape is a `bad_fields`
reject; blank lines are folded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

import polars as pl

from .base import RECORD_SCHEMA, REJECT_SCHEMA, SRC, Batch, Head, ParseContext, ParserSpec, conform, line_rejects
from .linefold import first_nonblank_lines
from .textio import context_lines
from .timeutil import shift_by_offset

NAME = "reportingevents"

_GUID = r"\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}"
#: One report line; every field is named so the grammar is readable in one place.
REPORT_LINE = (
    rf"^\x{{FEFF}}?(?P<guid>{_GUID})\t(?P<stamp>\d{{4}}-\d{{2}}-\d{{2}} \d{{2}}:\d{{2}}:\d{{2}}:\d{{3}})"
    r"(?P<tz>[+-]\d{4})\t(?P<version>\d+)\t(?P<event_id>\d+)(?: \[(?P<event_name>[A-Za-z0-9_]+)\])?\t"
    rf"(?P<namespace>\d+)\t(?P<update_id>{_GUID})\t(?P<revision>\d+)\t(?P<hresult>[0-9A-Fa-f]{{1,8}})\t"
    r"(?P<caller>[^\t]*)\t(?P<result>[^\t]*)\t(?P<operation>[^\t]*)\t(?P<text>[^\t]*)(?:\t(?P<extra>[^\t]*))?$"
)
_DETECT = re.compile(REPORT_LINE.replace(r"\x{FEFF}", "\ufeff"))


def detect(head: Head) -> bool:
    """True when one of the first non-blank lines is a whole report line."""
    if head.is_binary:
        return False
    return any(_DETECT.match(line) for line in first_nonblank_lines(head.text, 20))


def _records(g: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    hr = pl.col("hresult").str.to_uppercase().str.zfill(8)
    failed = (pl.col("result").str.to_lowercase() == "failure") & hr.str.slice(0, 1).is_in(list("89ABCDEF"))
    head = pl.concat_str(pl.col("operation"), pl.lit(" "), pl.col("result"))
    message = (
        pl.when(failed).then(pl.concat_str(head, pl.lit(" 0x"), hr)).otherwise(head)
        + pl.lit(": ") + pl.col("text")
        + pl.when(pl.col("extra").fill_null("") != "").then(pl.lit("\t") + pl.col("extra")).otherwise(pl.lit(""))
    )
    tz = pl.col("tz")
    minutes = (pl.when(tz.str.slice(0, 1) == "-").then(-1).otherwise(1)
               * (tz.str.slice(1, 2).cast(pl.Int64) * 60 + tz.str.slice(3, 2).cast(pl.Int64)))
    stamp = pl.col("stamp").str.to_datetime("%Y-%m-%d %H:%M:%S:%3f", strict=False, time_unit="us")
    return conform(g.with_columns(
        source=pl.lit(ctx.source), format=pl.lit(NAME), kind=pl.lit("line"), line_count=pl.lit(1, pl.Int64),
        ts=shift_by_offset(stamp, minutes),
        component=pl.coalesce("event_name", "event_id"),
        event_id=pl.col("event_id").cast(pl.Int64, strict=False),
        provider=pl.col("caller"),
        level=pl.when(pl.col("result").str.to_lowercase() == "failure").then(pl.lit("ERROR")).otherwise(pl.lit("INFO")),
        message=message,
        raw=pl.col("line"),
    ), RECORD_SCHEMA)


def parse(stream: BinaryIO, ctx: ParseContext) -> Iterator[Batch]:
    """One record per report line; other non-blank lines are rejects."""
    for block in context_lines(stream, ctx):
        frame = block.frame
        too_long = frame.filter(pl.col("too_long"))
        rest = frame.filter(~pl.col("too_long"))
        g = rest.with_columns(pl.col("line").str.extract_groups(REPORT_LINE).alias("g")).unnest("g")
        good = g.filter(pl.col("guid").is_not_null())
        bad = g.filter(pl.col("guid").is_null() & (pl.col("line").str.strip_chars() != ""))
        rejects = pl.concat([line_rejects(too_long.with_columns(_src()), "line_too_long"),
                             line_rejects(bad.with_columns(_src()), "bad_fields")])
        rejects = rejects.with_columns(source=pl.lit(ctx.source)).select(*REJECT_SCHEMA).sort("line_no")
        yield Batch(_records(good, ctx), rejects, block.lines)


def _src() -> pl.Expr:
    """The file-index column line_rejects expects (one file here)."""
    return pl.lit(0, dtype=pl.UInt32).alias(SRC)


PARSER = ParserSpec(
    name=NAME,
    description="Windows Update ReportingEvents.log (UTF-16, tab-separated report lines with HRESULT and result)",
    detect=detect,
    parse=parse,
    priority=30,
)
