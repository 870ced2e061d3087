"""Fold unprefixed continuation lines into the record before them, vectorised and streaming.

Line logs such as omsupdatemgmt.log and worker.log prefix only a record's first line; tracebacks,
debug dumps and package-manager output run on below it. A format supplies a classifier that marks
the lines starting a record (and parses their fields) in one vectorised pass; this module numbers
records with a cumulative sum of those marks (a forward-filled record id), folds the rest with one
group_by, and carries the last, possibly unfinished, record over to the next block of lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

import polars as pl

from .base import (
    LEVELS,
    RAW_CUT,
    REJECT_SCHEMA,
    SRC,
    SRC_RECORD_SCHEMA,
    SRC_REJECT_SCHEMA,
    UTC_TS,
    Batch,
    GroupResult,
    Head,
    ParseContext,
    ParserSpec,
    conform,
    line_rejects,
    with_source_names,
)
from .textio import LineBlock, context_lines

#: Columns a classifier may add to a LineBlock frame; missing ones are filled with nulls.
#: `is_start` marks a record's first line; `text` is what the line adds to the message;
#: ts/pid/tid/component/kind are read from start lines only; `level` on a continuation line
#: lifts a record its start line left at INFO (a traceback inside sandbox output) but never
#: overrides a level the start line chose; `note` ends up in Batch.notes.
CLASSIFIED_SCHEMA: dict[str, pl.DataType] = {
    "line_no": pl.Int64(),
    "byte_offset": pl.Int64(),
    "line": pl.String(),
    "too_long": pl.Boolean(),
    "is_start": pl.Boolean(),
    "text": pl.String(),
    "kind": pl.String(),
    "ts": UTC_TS,
    "pid": pl.String(),
    "tid": pl.String(),
    "component": pl.String(),
    "level": pl.String(),
    "note": pl.String(),
}

#: An open record longer than this is emitted as it stands instead of being carried on
#: (bounded memory); lines after it become a record of kind "continuation".
MAX_CARRY_LINES = 50_000

#: Most notes one batch reports; a file with thousands of markers should not flood the summary.
MAX_NOTES = 20

_RANK = {name: i for i, name in enumerate(LEVELS)}
_HEADER_FIELDS = ("ts", "pid", "tid", "component", "kind")

Classifier = Callable[[pl.DataFrame], pl.DataFrame]


def first_nonblank_lines(text: str, limit: int) -> list[str]:
    """The first `limit` non-blank lines of a head, for detectors (line endings removed)."""
    out: list[str] = []
    for line in text.splitlines():
        if line.strip():
            out.append(line)
            if len(out) >= limit:
                break
    return out


def prefix_detector(pattern: re.Pattern[str], lines: int = 50) -> Callable[[Head], bool]:
    """A detector: True when one of the first non-blank lines of text matches `pattern`.

    Looking past the first line lets a rotated log that starts inside a traceback still count.
    """

    def detect(head: Head) -> bool:
        if head.is_binary:
            return False
        return any(pattern.match(line) for line in first_nonblank_lines(head.text, lines))

    return detect


def _complete(df: pl.DataFrame) -> pl.DataFrame:
    """Give a classified frame every CLASSIFIED_SCHEMA column, so blocks concatenate."""
    df = conform(df, CLASSIFIED_SCHEMA)
    return df.with_columns(
        is_start=pl.col("is_start").fill_null(False) & ~pl.col("too_long"),
        text=pl.col("text").fill_null(pl.col("line")),
    )


def fold_lines(
    blocks: Iterable[LineBlock],
    classify: Classifier,
    ctx: ParseContext,
    fmt: str,
    *,
    max_carry_lines: int = MAX_CARRY_LINES,
) -> Iterator[Batch]:
    """Turn classified line blocks into batches of records and rejects.

    Lines before the first record of a file are rejects `orphan_continuation`; when parsing
    resumes mid-file (ctx.start_line > 1) they continue a record reported earlier and become
    a record of kind "continuation" instead. Blank lines are folded (neither record nor reject).
    """
    carry: pl.DataFrame | None = None
    continuing = ctx.start_line > 1  # do leading non-start lines continue an earlier record?
    for block in blocks:
        fresh = _complete(classify(block.frame)).with_columns(pl.lit(0, dtype=pl.UInt32).alias(SRC))
        df = fresh if carry is None else pl.concat([carry, fresh], how="vertical")
        carry = None
        starts = df["is_start"].arg_true()
        if len(starts) == 0 or block.last:  # nothing to carry, or nothing more will come
            yield _batch(df, ctx, fmt, continuing)
            continue
        last = int(starts[-1])
        if df.height - last <= max_carry_lines:
            carry = df.slice(last)
            df = df.slice(0, last)
            if df.height:
                yield _batch(df, ctx, fmt, continuing)
        else:
            yield _batch(df, ctx, fmt, continuing)
            continuing = True
    if carry is not None and carry.height:
        yield _batch(carry, ctx, fmt, continuing)


def _batch(df: pl.DataFrame, ctx: ParseContext, fmt: str, continuing: bool) -> Batch:
    """Fold one run of whole records (plus leading lines) of one stream into a Batch."""
    got = _fold(df, [ctx.source], fmt, continuing)
    notes = [note for _, listed in sorted(got.notes.items()) for note in listed]
    return Batch(got.records.drop(SRC), got.rejects.drop(SRC), df.height, notes)


def fold_group(frame: pl.DataFrame, sources: list[str], classify: Classifier, fmt: str) -> GroupResult:
    """Several whole small files at once (ParserSpec.parse_group): each file's lines fold on
    their own, exactly as `fold_lines` folds the file alone."""
    classified = _complete(classify(frame)).with_columns(frame[SRC])
    return _fold(classified, sources, fmt, continuing=False)


def _fold(df: pl.DataFrame, sources: list[str], fmt: str, continuing: bool) -> GroupResult:
    """Fold classified lines (with SRC) into records; record ids restart with every file."""
    starts = pl.col("is_start").cast(pl.Int64).cum_sum()
    df = df.with_columns(
        rid=starts if len(sources) == 1 else starts.over(SRC),
        blank=~pl.col("is_start") & ~pl.col("too_long") & (pl.col("text").str.strip_chars() == ""),
        rank=pl.col("level").replace_strict(_RANK, default=None, return_dtype=pl.Int8),
    )
    member = ~pl.col("too_long") & ~pl.col("blank")
    orphan = member & (pl.col("rid") == 0) & pl.lit(not continuing)
    rejects = pl.concat(
        [
            _rejects(df.filter(pl.col("too_long")), "line_too_long"),
            _rejects(df.filter(orphan), "orphan_continuation"),
        ]
    ).sort(SRC, "line_no")
    rows = df.filter(member & ~orphan)
    start = pl.col("is_start")
    grouped = rows.group_by(SRC, "rid", maintain_order=True).agg(
        pl.col("line_no").first(),
        pl.col("byte_offset").first(),
        pl.len().alias("line_count"),
        *(pl.col(name).filter(start).first() for name in _HEADER_FIELDS),
        pl.col("rank").filter(start).first().alias("start_rank"),
        pl.col("rank").filter(~start).max().alias("cont_rank"),
        pl.col("text").str.join("\n").alias("message"),
        pl.col("line").str.join("\n").str.slice(0, RAW_CUT).alias("raw"),
    )
    records = grouped.with_columns(
        format=pl.lit(fmt),
        kind=pl.col("kind").fill_null("continuation"),
        level=pl.when(pl.col("start_rank") > 0)
        .then(pl.col("start_rank"))
        .otherwise(pl.max_horizontal("start_rank", "cont_rank"))
        .replace_strict(dict(enumerate(LEVELS)), default="INFO", return_dtype=pl.String),
    )
    notes: dict[int, list[str]] = {}
    for src, note in df.select(SRC, "note").drop_nulls("note").iter_rows():
        if len(notes.setdefault(src, [])) < MAX_NOTES:
            notes[src].append(note)
    counted = dict(records.group_by(SRC).len().iter_rows()) if len(sources) > 1 else {0: records.height}
    return GroupResult(
        conform(with_source_names(records, sources), SRC_RECORD_SCHEMA),
        with_source_names(rejects, sources).select(*REJECT_SCHEMA, SRC),
        counted,
        notes,
    )


def _rejects(df: pl.DataFrame, reason: str) -> pl.DataFrame:
    return line_rejects(df, reason) if df.height else _EMPTY_REJECTS


_EMPTY_REJECTS = pl.DataFrame(schema=SRC_REJECT_SCHEMA)


def folding_parser(name: str, description: str, detect: Callable, classify: Classifier,
                   priority: int) -> ParserSpec:
    """The ParserSpec of a line format whose records are one stamped line and the unstamped lines
    after it: streamed with fold_lines, small files grouped with fold_group (one wrapper for all)."""

    def parse(stream: BinaryIO, ctx: ParseContext) -> Iterator[Batch]:
        yield from fold_lines(context_lines(stream, ctx), classify, ctx, name)

    def parse_group(frame: pl.DataFrame, sources: list[str], ctx: ParseContext) -> GroupResult:
        return fold_group(frame, sources, classify, name)

    return ParserSpec(name=name, description=description, detect=detect, parse=parse, priority=priority,
                      parse_group=parse_group)
