"""CBS.log and DISM.log: the Windows servicing stack's logs (`%windir%\\Logs\\CBS\\CBS.log`,
`%windir%\\Logs\\DISM\\dism.log`), where an update's install failure shows its real cause.

Both write `2018-12-08 18:38:11, Error                 CBS    Failed to ... [HRESULT = 0x800f0922 -
CBS_E_INSTALLERS_FAILED]`: local time without zone (so --assume-tz applies), a comma, the level
(`Info`, `Warning`, `Error`) padded to 22, the component (`CBS`, `CSI`, `DISM`, `DPX`, ...) padded
to 7, then the message. DISM messages carry `PID=1234 TID=5678`, read into pid and tid. Lines without
the prefix (the CheckSUR summary block, `Found: {l:32 ...} Expected: ...` hash pairs, `POQ 0 starts:`)
continue the record above. UTF-8 with BOM and CRLF on disk; shapes are from two whole real CBS.logs
(Server 2012 DISM repair, Windows 7 SFC) in ../shared/corpus/real.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

import polars as pl

from .base import Batch, GroupResult, ParseContext, ParserSpec
from .linefold import fold_group, fold_lines, prefix_detector
from .textio import context_lines
from .timeutil import naive_to_utc

NAME = "cbs"

#: One prefixed line. The component is one token; the message keeps its own indentation after
#: the column's padding (at most 8 spaces are taken as padding).
CBS_LINE = (
    r"^\x{FEFF}?(?P<stamp>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}), (?P<level>Info|Warning|Error|Perf|Fatal)"
    r"(?: +(?P<component>[A-Za-z][\w.\-]*)(?: {1,8}(?P<message>.*))?)? *$"
)
_LEVELS = {"Info": "INFO", "Perf": "INFO", "Warning": "WARNING", "Error": "ERROR", "Fatal": "FATAL"}
#: DISM's process and thread ids inside the message (after the provider's name when there is one).
DISM_IDS = r"\bPID=(\d+) TID=(\d+) "

detect = prefix_detector(re.compile(CBS_LINE.replace(r"\x{FEFF}", "\ufeff")), lines=20)


def classify(frame: pl.DataFrame, assume_tz: str = "UTC") -> pl.DataFrame:
    """Mark prefixed lines as record starts and cut their fields, vectorised."""
    parts = pl.col("line").str.extract_groups(CBS_LINE)
    df = frame.with_columns(p=parts)
    field = pl.col("p").struct.field
    is_start = field("stamp").is_not_null()
    message = field("message").fill_null("")
    stamp = field("stamp").str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us")
    return df.select(
        "line_no", "byte_offset", "line", "too_long",
        is_start=is_start,
        text=pl.when(is_start).then(message).otherwise(pl.col("line")),
        kind=pl.when(is_start).then(pl.lit("line")),
        ts=naive_to_utc(stamp, assume_tz),
        pid=message.str.extract(DISM_IDS, 1),
        tid=message.str.extract(DISM_IDS, 2),
        component=field("component"),
        level=field("level").replace_strict(_LEVELS, default=None, return_dtype=pl.String),
    )


def parse(stream: BinaryIO, ctx: ParseContext) -> Iterator[Batch]:
    """Stream records: one per prefixed line, with the unprefixed lines after it folded in."""
    yield from fold_lines(context_lines(stream, ctx), lambda f: classify(f, ctx.assume_tz), ctx, NAME)


def parse_group(frame: pl.DataFrame, sources: list[str], ctx: ParseContext) -> GroupResult:
    """Several whole small files at once (ParserSpec.parse_group)."""
    return fold_group(frame, sources, lambda f: classify(f, ctx.assume_tz), NAME)


PARSER = ParserSpec(
    name=NAME,
    description="CBS.log / DISM.log (servicing stack): 'YYYY-MM-DD HH:MM:SS, Level  Component  message', local time",
    detect=detect,
    parse=parse,
    priority=30,
    parse_group=parse_group,
)
