"""WindowsUpdate.log in both of its forms, detected per line, parsed in vectorised blocks.

- classic (WUA 5-7, XP .. 2012 R2): `date<TAB>time<TAB>pid<TAB>tid<TAB>component<TAB>message`,
  time `HH:MM:SS:mmm`, local time whose zone is given by `Logging initialized (... tz: +0530)`
  banners; copies that went through web pages have runs of spaces instead of tabs.
- etw (Windows 10+, written by Get-WindowsUpdateLog): `yyyy/MM/dd HH:mm:ss.fffffff PID TID
  Component Message` with PID/TID padded to 5 and component to 15; the date separator follows the
  culture (`/`, `-`, `.`); undecodable events come out as `Unknown( NN): GUID=...` with an empty
  component and the zero FILETIME (year 1600).

Shapes are from ../shared/reference/log-formats.md section 1. Lines are matched with polars
(Rust regex) on whole blocks: a per-line Python regex loop is ~5x slower.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

import polars as pl

from .base import RAW_CUT, RECORD_SCHEMA, REJECT_SCHEMA, Batch, Head, ParseContext, ParserSpec, conform
from .textio import frame_lines
from .timeutil import naive_to_utc, shift_by_offset

#: Windows 10+ line. The component group is fixed-width (15) so that empty-component
#: `Unknown( NN)` lines still split right; a 16+ character component pushes the rest right.
ETW_LINE = (
    r"^\x{FEFF}?(?P<date>\d{4}[/.\-]\d{2}[/.\-]\d{2}) (?P<time>\d{2}[:.]\d{2}[:.]\d{2}\.\d{7}) "
    r"(?P<pid>[0-9A-Fa-f]{1,5} {0,4}|[0-9A-Fa-f]{6,}) (?P<tid>[0-9A-Fa-f]{1,5} {0,4}|[0-9A-Fa-f]{6,}) "
    r"(?P<component>.{15}|\S{16,}) (?P<message>.*)$"
)

#: Classic line, tolerant of tabs turned into spaces and of leading indentation. One TAB (or a
#: run of spaces) before the message: the message keeps its own bullet indentation.
CLASSIC_LINE = (
    r"^\s*(?P<date>\d{4}-\d{2}-\d{2})[\t ]+(?P<time>\d{2}:\d{2}:\d{2}:\d{3})[\t ]+(?P<pid>\d+)[\t ]+"
    r"(?P<tid>[0-9A-Fa-f]+)[\t ]+(?P<component>[A-Za-z][\w]*)(?:\t| +)(?P<message>.*)$"
)

#: Severity is a message prefix, after the agent's optional bullet (`  * `, `  # `, ...).
LEVEL_PREFIX = r"^(?:\s*[*#+\-:]\s+)?(WARNING|FATAL|ERROR):\s"
FAILED_MARK = r"^\s*\*FAILED\*"
TZ_BANNER = r"Logging initialized \(build: [^,]*, tz: ([+-]\d{4})\)"
UNDECODED = r"^Unknown\(\s*\d+\): GUID="

_DETECT = (re.compile(ETW_LINE.replace(r"\x{FEFF}", "\ufeff")), re.compile(CLASSIC_LINE))


def detect(head: Head) -> bool:
    """True when one of the first non-empty lines has either WindowsUpdate.log prefix."""
    seen = 0
    for line in head.text.splitlines():
        if not line.strip():
            continue
        if any(rx.match(line) for rx in _DETECT):
            return True
        seen += 1
        if seen >= 30:
            break
    return False


def _etw_records(frame: pl.DataFrame, assume_tz: str) -> pl.DataFrame:
    g = frame.with_columns(pl.col("line").str.extract_groups(ETW_LINE).alias("g")).unnest("g")
    g = g.filter(pl.col("date").is_not_null())
    date, time = pl.col("date"), pl.col("time")
    stamp = pl.concat_str(
        date.str.slice(0, 4), pl.lit("-"), date.str.slice(5, 2), pl.lit("-"), date.str.slice(8, 2), pl.lit(" "),
        time.str.slice(0, 2), pl.lit(":"), time.str.slice(3, 2), pl.lit(":"), time.str.slice(6, 2), pl.lit("."),
        time.str.slice(9, 6),
    ).str.to_datetime("%Y-%m-%d %H:%M:%S%.6f", strict=False, time_unit="us")
    component = pl.col("component").str.strip_chars()
    undecoded = (component == "") & pl.col("message").str.contains(UNDECODED)
    return g.with_columns(
        format=pl.lit("windowsupdate-etw"),
        kind=pl.when(undecoded).then(pl.lit("undecoded")).otherwise(pl.lit("line")),
        ts=pl.when(undecoded).then(None).otherwise(naive_to_utc(stamp, assume_tz)),
        pid=pl.col("pid").str.strip_chars(),
        tid=pl.col("tid").str.strip_chars(),
        component=component,
    )


def _classic_records(frame: pl.DataFrame, assume_tz: str, last_tz: int | None) -> tuple[pl.DataFrame, int | None]:
    g = frame.with_columns(pl.col("line").str.extract_groups(CLASSIC_LINE).alias("g")).unnest("g")
    g = g.filter(pl.col("date").is_not_null())
    if g.height == 0:
        return g, last_tz
    raw_tz = pl.col("message").str.extract(TZ_BANNER, 1)
    sign = pl.when(raw_tz.str.slice(0, 1) == "-").then(-1).otherwise(1)
    minutes = raw_tz.str.slice(1, 2).cast(pl.Int64) * 60 + raw_tz.str.slice(3, 2).cast(pl.Int64)
    tz = (sign * minutes).forward_fill().fill_null(pl.lit(last_tz, dtype=pl.Int64))
    g = g.with_columns(tz_min=tz)
    stamp = pl.concat_str(pl.col("date"), pl.lit(" "), pl.col("time")).str.to_datetime(
        "%Y-%m-%d %H:%M:%S:%3f", strict=False, time_unit="us"
    )
    g = g.with_columns(
        format=pl.lit("windowsupdate-classic"),
        kind=pl.when(pl.col("message").str.contains(TZ_BANNER)).then(pl.lit("banner")).otherwise(pl.lit("line")),
        ts=pl.when(pl.col("tz_min").is_not_null())
        .then(shift_by_offset(stamp, pl.col("tz_min")))
        .otherwise(naive_to_utc(stamp, assume_tz)),
    )
    new_last = g["tz_min"][-1]
    return g, (int(new_last) if new_last is not None else last_tz)


def parse(stream: BinaryIO, ctx: ParseContext) -> Iterator[Batch]:
    """Stream records from a WindowsUpdate.log of either form (or a mix, e.g. pasted fragments)."""
    last_tz: int | None = None
    for block in frame_lines(
        stream, ctx.encoding, batch_bytes=ctx.batch_bytes, start_line=ctx.start_line,
        start_offset=ctx.start_offset, final=ctx.final,
    ):
        frame = block.frame
        long_rows = frame.filter(pl.col("too_long"))
        frame = frame.filter(~pl.col("too_long"))
        etw = _etw_records(frame, ctx.assume_tz)
        rest = frame.join(etw.select("line_no"), on="line_no", how="anti")
        classic, last_tz = _classic_records(rest, ctx.assume_tz, last_tz)
        parsed = pl.concat([conform_wu(etw), conform_wu(classic)]).sort("line_no")
        unparsed = rest.join(classic.select("line_no"), on="line_no", how="anti")
        blank = unparsed["line"].str.strip_chars() == ""
        rejects = unparsed.filter(~blank).select(
            pl.lit(ctx.source).alias("source"),
            "line_no",
            "byte_offset",
            pl.lit("no_prefix").alias("reason"),
            pl.col("line").str.slice(0, RAW_CUT).alias("raw"),
        )
        if long_rows.height:
            rejects = pl.concat([
                rejects,
                long_rows.select(
                    pl.lit(ctx.source).alias("source"), "line_no", "byte_offset",
                    pl.lit("line_too_long").alias("reason"), pl.col("line").str.slice(0, RAW_CUT).alias("raw"),
                ),
            ]).sort("line_no")
        records = parsed.with_columns(source=pl.lit(ctx.source))
        yield Batch(conform(records, RECORD_SCHEMA), conform(rejects, REJECT_SCHEMA), block.lines)


def conform_wu(g: pl.DataFrame) -> pl.DataFrame:
    """Derive level, raw and line_count for parsed WindowsUpdate lines."""
    if g.height == 0:
        return pl.DataFrame(schema=RECORD_SCHEMA)
    msg = pl.col("message")
    level = (
        pl.when(msg.str.contains(FAILED_MARK)).then(pl.lit("FAILED"))
        .otherwise(msg.str.extract(LEVEL_PREFIX, 1).fill_null("INFO"))
    )
    return conform(
        g.with_columns(
            level=level,
            line_count=pl.lit(1, dtype=pl.Int64),
            raw=pl.col("line").str.slice(0, RAW_CUT),
            source=pl.lit(""),
        ),
        RECORD_SCHEMA,
    )

PARSER = ParserSpec(
    name="windowsupdate",
    description="WindowsUpdate.log, classic (tab-separated, XP..2012 R2) and Get-WindowsUpdateLog (Win10+) forms",
    detect=detect,
    parse=parse,
    priority=10,
)
