"""Azure Update Manager on Windows: the WindowsPatchExtension's `WindowsUpdateExtension.log` and
`CommandExecution.log` (C:\\WindowsAzure\\Logs\\Plugins\\Microsoft.CPlat.Core.WindowsPatchExtension\\
<version>\\ on Azure VMs, the GuestConfig extension_logs folder on Arc servers).

Their format is not public: no writer source, no specification, and no real file was found. So
this parser reads them as timestamped text and promises nothing more: a line that starts with a
common time stamp (ISO `2024-06-11 22:00:04`, `2024-06-11T22:00:04.123Z`, `[2024/06/11 ...]`, or
US `6/11/2024 10:00:04 PM`) starts a record, lines without one continue it (a .NET exception's
stack), level words after the stamp (`Error`, `[WARNING]`, ...) give the level, and an offset
written on the line wins over --assume-tz. Lines before the first stamp are records of their own.

A file is taken for this format when its name is one of those two (or its first lines name the
extension) and its first lines carry such stamps; the name alone is not enough.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

import polars as pl

from .base import SRC, Batch, GroupResult, Head, ParseContext, ParserSpec
from .linefold import Classifier, first_nonblank_lines, fold_group, fold_lines
from .plaintext import ISO_STAMP, US_STAMP, make_classifier
from .textio import context_lines

NAME = "windowspatchext"

FILE_NAMES = re.compile(r"(?i)(?:^|[/\\!])(?:WindowsUpdateExtension|CommandExecution)(?:\.\d+)?\.log$")
MARKER = re.compile(r"(?i)WindowsPatchExtension")
_STAMPED = (re.compile(ISO_STAMP), re.compile(US_STAMP))
#: Share of the first non-blank lines that must start with a stamp.
MIN_STAMPED_SHARE = 0.5


def detect(head: Head) -> bool:
    """The extension's file name (or its name in the text) and mostly stamped first lines."""
    if head.is_binary or not (FILE_NAMES.search(head.name) or MARKER.search(head.text[:4096])):
        return False
    lines = first_nonblank_lines(head.text, 20)
    stamped = sum(1 for line in lines if any(p.match(line) for p in _STAMPED))
    return bool(lines) and stamped >= MIN_STAMPED_SHARE * len(lines)


def make_folding_classifier(assume_tz: str) -> Classifier:
    """The generic text classifier, with unstamped lines folded into the stamped line above."""
    text_classify = make_classifier(assume_tz)

    def classify(frame: pl.DataFrame) -> pl.DataFrame:
        df = text_classify(frame)
        stamped = pl.col("ts").is_not_null()
        seen = stamped.cast(pl.Int64).cum_sum()
        if SRC in frame.columns:  # several files at once: "before the first stamp" is per file
            df = df.with_columns(frame[SRC])
            seen = seen.over(SRC)
        before_any = seen == 0
        return df.with_columns(
            is_start=stamped | (before_any & (pl.col("line").str.strip_chars() != "")),
            text=pl.when(stamped).then(pl.col("text")).otherwise(pl.col("line").str.strip_chars_end()),
            level=pl.when(stamped).then(pl.col("level")),
        ).drop(SRC, strict=False)

    return classify


def parse(stream: BinaryIO, ctx: ParseContext) -> Iterator[Batch]:
    """Stream records: one per stamped line, with the unstamped lines after it folded in."""
    yield from fold_lines(context_lines(stream, ctx), make_folding_classifier(ctx.assume_tz), ctx, NAME)


def parse_group(frame: pl.DataFrame, sources: list[str], ctx: ParseContext) -> GroupResult:
    """Several whole small files at once (ParserSpec.parse_group)."""
    return fold_group(frame, sources, make_folding_classifier(ctx.assume_tz), NAME)


PARSER = ParserSpec(
    name=NAME,
    description="Azure Update Manager WindowsPatchExtension logs (WindowsUpdateExtension.log, "
    "CommandExecution.log): format not public, read as timestamped text",
    detect=detect,
    parse=parse,
    priority=45,
    parse_group=parse_group,
)
