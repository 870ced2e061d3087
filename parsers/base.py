"""The contract every parser keeps: what it is given, what it yields, and the table shapes.

Parsers turn one byte stream into batches of records (polars DataFrames with RECORD_SCHEMA)
and rejects (REJECT_SCHEMA). They never match signatures or extract error codes: that is the
pipeline's job, done once, vectorised, for every format alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import BinaryIO

import polars as pl

#: Levels a record can carry, weakest first.
LEVELS = ("INFO", "WARNING", "ERROR", "FAILED", "FATAL")

#: Longest raw text kept for a reject or an evidence line.
RAW_CUT = 2000

UTC_TS = pl.Datetime("us", "UTC")

RECORD_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),  # logical path, e.g. "fleet.zip!SRV01/WindowsUpdate.log"
    "format": pl.String(),  # parser name that produced the record
    "kind": pl.String(),  # "line", "event", "undecoded", "banner", ...
    "line_no": pl.Int64(),  # 1-based physical line where the record starts
    "line_count": pl.Int64(),  # physical lines (or binary units) the record consumed
    "byte_offset": pl.Int64(),  # offset of the record's first byte in the source stream
    "ts": UTC_TS,
    "pid": pl.String(),
    "tid": pl.String(),
    "component": pl.String(),
    "level": pl.String(),
    "message": pl.String(),
    "raw": pl.String(),  # the text as found (cut at RAW_CUT), for evidence
    "computer": pl.String(),  # host named inside the record (event Computer field)
    "event_id": pl.Int64(),
    "provider": pl.String(),
    "record_id": pl.Int64(),
}

REJECT_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "line_no": pl.Int64(),
    "byte_offset": pl.Int64(),
    "reason": pl.String(),
    "raw": pl.String(),
}


def empty_records() -> pl.DataFrame:
    """A zero-row record table, for batches that hold only rejects."""
    return pl.DataFrame(schema=RECORD_SCHEMA)


def empty_rejects() -> pl.DataFrame:
    """A zero-row reject table, for batches where every line parsed (one shared frame: polars
    frames are never changed in place here)."""
    return _EMPTY_REJECTS


_EMPTY_REJECTS = pl.DataFrame(schema=REJECT_SCHEMA)


def conform(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Give a frame exactly the columns of `schema`, in order, adding nulls for missing ones.

    Parsers build only the columns they know; this keeps every batch concatenable.
    """
    if df.schema == schema:
        return df
    return df.select(_conform_exprs(tuple(df.schema.items()), tuple(schema.items())))


@lru_cache(maxsize=256)
def _conform_exprs(have: tuple, want: tuple) -> list[pl.Expr]:
    """The select list that turns frames of schema `have` into `want` (cached: building the
    expressions cost more than running them on the small frames of a fleet's many files)."""
    present = dict(have)
    return [
        (pl.col(name) if present[name] == dtype else pl.col(name).cast(dtype)) if name in present
        else pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in want
    ]


def rejects_from_rows(rows: list[dict]) -> pl.DataFrame:
    """Build a reject table from Python dicts, cutting raw text at RAW_CUT."""
    if not rows:
        return empty_rejects()
    for r in rows:
        raw = r.get("raw")
        if raw is not None and len(raw) > RAW_CUT:
            r["raw"] = raw[:RAW_CUT]
    return pl.DataFrame(rows, schema=REJECT_SCHEMA, strict=False)


@dataclass
class Batch:
    """What a parser yields: records, rejects, and how many physical lines it consumed.

    `lines - len(records) - quiet - len(rejects)` lines were folded into records (continuations,
    headers, XML wrappers); the pipeline checks that number is never negative.
    """

    records: pl.DataFrame
    rejects: pl.DataFrame
    lines: int
    notes: list[str] = field(default_factory=list)  # problems worth a line in the summary
    #: Lines that parsed as records but do not match ParseContext.keep_regex, so were not cut into
    #: fields: they count as records, nothing downstream could match them.
    quiet: int = 0


#: Index of a line's file among the files one group parse covers (see ParserSpec.parse_group).
SRC = "_src"


@dataclass
class GroupResult:
    """Several whole files parsed at once; every row carries SRC, its file's index."""

    records: pl.DataFrame  # RECORD_SCHEMA + SRC
    rejects: pl.DataFrame  # REJECT_SCHEMA + SRC
    counted: dict[int, int]  # records per file, those not cut into fields (quiet) included
    notes: dict[int, list[str]]


#: Records and rejects as a parser of several files builds them: the file's index (SRC) beside
#: or in place of its name, which is joined on last, onto the few rows that come out.
SRC_RECORD_SCHEMA: dict[str, pl.DataType] = {**RECORD_SCHEMA, SRC: pl.UInt32()}
SRC_REJECT_SCHEMA: dict[str, pl.DataType] = {SRC: pl.UInt32(), **{k: v for k, v in REJECT_SCHEMA.items()
                                                                  if k != "source"}}


#: How a NUL run shows in a framed line (parsers/textio.py); such a line is flagged `too_long`
#: and rejected as `nul_run`.
_NUL_TEXT = re.compile(r"<\d+ NUL bytes>")


def nul_run_text(n: int) -> str:
    """The framed text standing for a run of `n` NUL bytes."""
    return f"<{n} NUL bytes>"


def framed_reject_reason(text: str) -> str:
    """The reject reason of a framed line flagged `too_long`: a NUL run, or a line too long."""
    return "nul_run" if _NUL_TEXT.search(text) else "line_too_long"


def line_rejects(lines: pl.DataFrame, reason: str, *keep: str) -> pl.DataFrame:
    """Rejects (SRC_REJECT_SCHEMA, after the `keep` columns) for framed lines, raw text cut.

    `line_too_long` is what a parser calls every framed line flagged `too_long`; the NUL runs
    among them are named `nul_run` here, so no parser needs to tell them apart.
    """
    why = pl.lit(reason, dtype=pl.String)
    if reason == "line_too_long":
        why = pl.when(pl.col("line").str.contains(_NUL_TEXT.pattern)).then(pl.lit("nul_run")).otherwise(why)
    return lines.select(
        *keep, SRC, "line_no", "byte_offset", reason=why, raw=pl.col("line").str.slice(0, RAW_CUT),
    )


def with_source_names(df: pl.DataFrame, sources: list[str]) -> pl.DataFrame:
    """Give every row the name of its file, from its SRC index into `sources`."""
    if len(sources) == 1:
        return df.with_columns(source=pl.lit(sources[0], dtype=pl.String))
    names = pl.DataFrame({SRC: pl.int_range(0, len(sources), eager=True, dtype=pl.UInt32),
                          "source": pl.Series(sources, dtype=pl.String)})
    return df.drop("source", strict=False).join(names, on=SRC, how="left", maintain_order="left")


@dataclass(frozen=True)
class Head:
    """The first bytes of a source, decoded once, for cheap detection."""

    name: str  # logical path
    raw: bytes  # up to HEAD_BYTES raw bytes
    text: str  # the same bytes decoded with `encoding` (BOM stripped)
    encoding: str  # python codec name chosen by sniffing
    is_binary: bool


@dataclass
class ParseContext:
    """Everything a parser needs besides the bytes."""

    source: str  # logical path used in every record and reject
    encoding: str  # codec chosen by sniffing (see parsers.textio)
    assume_tz: str = "UTC"  # zone for local timestamps that carry no offset
    start_line: int = 1  # line number of the first byte (watch mode resumes mid-file)
    start_offset: int = 0  # byte offset of the first byte in the whole file
    batch_bytes: int = 16 << 20  # how many bytes to frame at a time (fewer, larger polars calls)
    final: bool = True  # False when more bytes may follow (watch mode): keep partial lines
    #: A regex (the pipeline's needles and failure-code shapes); a parser may skip cutting valid
    #: lines that do not match it into fields, counting them as quiet records. None: keep all.
    keep_regex: str | None = None
    #: Parser state carried in when reading starts mid-file (a split range, a resumed tail),
    #: e.g. {"tz_min": 330} for the classic WindowsUpdate.log zone in force at that point. A
    #: value may be a zero-argument callable, called only if the parser needs it (a lookback
    #: that costs a read of the file before the range, pointless for a file with no classic lines).
    state: dict = field(default_factory=dict)
    #: False selects the plain reference path (Python line splitting, the general regexes):
    #: slower, and used by tests to prove the fast paths give the same answers.
    fast: bool = True
    #: What the next block may hold, when less than batch_bytes: the scanner lowers it while a
    #: source keeps nearly every line (a log of nothing but failures, whose records and matches
    #: take several times the bytes of its lines) and raises it again when they thin out.
    next_block_bytes: int | None = None

    def block_bytes(self) -> int:
        """The byte budget of the next block (text framing asks before every read)."""
        return self.next_block_bytes or self.batch_bytes


@dataclass(frozen=True)
class ParserSpec:
    """One registered parser: a name, a content test, and a streaming reader."""

    name: str
    description: str
    detect: Callable[[Head], bool]
    parse: Callable[[BinaryIO, ParseContext], Iterator[Batch]]
    #: Lower runs first during detection; the generic text parser is last.
    priority: int = 50
    #: True for parsers that read the raw bytes themselves (EVTX); no text decoding.
    binary: bool = False
    #: Parse several whole small files at once: (framed lines with a SRC column, their names,
    #: context) -> GroupResult. A fleet's thousands of small files then pay the per-call cost of
    #: each polars step once per group instead of once per file. None: one file at a time.
    parse_group: Callable[[pl.DataFrame, list[str], ParseContext], GroupResult] | None = None
