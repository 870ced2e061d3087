"""One unit of work (a file or an archive) through detect -> parse -> extract -> match -> parts.

This is the part batch scan and watch mode share: it knows nothing of where bytes come from
beyond a (SourceRef, stream) pair, and writes its results as ordered parquet parts.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import polars as pl
from umtriage.parsers import FAMILY
from umtriage.parsers.base import RAW_CUT, REJECT_SCHEMA, SRC, ParseContext
from umtriage.parsers.detect import Detection, detect, read_head
from umtriage.parsers.textio import frame_lines
from umtriage.patterns.catalog import Catalog, load_catalog

from .codes import codes_expr_mask, extract_codes
from .hosts import host_value, normalise_host, with_hosts
from .literals import with_lower
from .matcher import Matcher
from .outdir import OutputError
from .procenv import PARALLEL_MIN_BYTES, PARALLEL_MIN_FILES, SPLIT_MIN_BYTES
from .sources import SourceError
from .streams import PrefixedStream
from .updates import extract_events

MATCH_COLUMNS = [
    "host", "host_display", "source", "format", "line_no", "byte_offset", "ts", "component", "level", "message", "raw",
    "signature_id", "scenario", "code", "score", "event_id",
]


@dataclass(frozen=True)
class ScanOptions:
    """Everything a worker process needs to scan a unit; picklable."""

    assume_tz: str = "UTC"
    host: str | None = None
    host_from: str | None = None  # --host-from REGEX with a group named `host`, searched in the source path
    forced_format: str | None = None
    patterns: tuple[str, ...] = ()
    #: codes and signature ids never reported (--mute)
    mute: tuple[str, ...] = ()
    batch_bytes: int = 8 << 20
    part_rows: int = 50_000
    #: False: the straightforward reference path (no prefilter, no fast framing, no file
    #: splitting), kept so tests can prove the optimised path gives the same tables.
    fast: bool = True
    #: A plain file at least this big is cut into line-aligned byte ranges, one per worker.
    split_min_bytes: int = SPLIT_MIN_BYTES
    #: Below this many input bytes and files a scan stays in one process (worker start-up costs more).
    parallel_min_bytes: int = PARALLEL_MIN_BYTES
    parallel_min_files: int = PARALLEL_MIN_FILES


@dataclass(slots=True)
class FileStat:
    """Per-source accounting for summary.json: every line is a record, folded, or a reject."""

    source: str
    host: str
    format: str | None
    bytes: int = 0
    lines: int = 0
    records: int = 0
    folded_lines: int = 0
    rejects: int = 0
    matched_records: int = 0
    skipped: str | None = None
    errors: list[str] = field(default_factory=list)  # reading stopped early or a parser failed
    notes: list[str] = field(default_factory=list)  # what a parser wants the user to know (damaged chunk, ...)

    def to_dict(self) -> dict:
        """asdict's result, without its deep copying (100k sources in a bundle: seconds)."""
        return {"source": self.source, "host": self.host, "format": self.format, "bytes": self.bytes,
                "lines": self.lines, "records": self.records, "folded_lines": self.folded_lines,
                "rejects": self.rejects, "matched_records": self.matched_records, "skipped": self.skipped,
                "errors": list(self.errors), "notes": list(self.notes)}


def compact_strings(df: pl.DataFrame) -> pl.DataFrame:
    """Copy string columns into buffers of their own.

    Polars string columns are views: a few rows sliced or filtered out of a 16 MB block keep the
    whole block alive. Rows kept for later (matches, rejects) are copied so memory stays flat
    whatever the input size.
    """
    exprs = _copy_exprs(tuple(df.schema.items()))
    return df.with_columns(exprs) if exprs else df


@lru_cache(maxsize=64)
def _copy_exprs(schema: tuple) -> list[pl.Expr]:
    """The expressions that copy a schema's string columns (built once per schema)."""
    return [pl.concat_str(pl.col(name), pl.lit("")).alias(name) for name, dtype in schema if dtype == pl.String]


class PartWriter:
    """Buffers frames for one table and writes them as numbered parquet parts, in order."""

    def __init__(self, folder: Path, stem: str, part_rows: int):
        self.folder, self.stem, self.part_rows = folder, stem, part_rows
        self.frames: list[pl.DataFrame] = []
        self.rows = 0
        self.paths: list[str] = []

    def add(self, df: pl.DataFrame) -> None:
        if df.height:
            self.frames.append(compact_strings(df))
            self.rows += df.height
            if self.rows >= self.part_rows:
                self.flush()

    def flush(self) -> None:
        if not self.frames:
            return
        path = self.folder / f"{self.stem}-{len(self.paths):05d}.parquet"
        # parts are temporary: written fast (lz4) and merged into the compressed tables at the end
        try:
            pl.concat(self.frames, how="vertical_relaxed").write_parquet(path, statistics=False, compression="lz4")
        except (OSError, pl.exceptions.PolarsError) as exc:  # disk full, folder gone: the run stops
            raise OutputError.wrap(exc, self.folder) from exc
        self.paths.append(str(path))
        self.frames, self.rows = [], 0


_STATE: dict[tuple, tuple[Catalog, Matcher]] = {}


#: What stops the reading of a source (not a parser bug): the archive layer's refusals and
#: damage, I/O errors, broken compression, undecodable bytes.
_STOPS = (SourceError, OSError, EOFError, zlib.error, ValueError, UnicodeError)


def _stopped(exc: BaseException) -> str:
    """The error line a source's stat gets when its reading stopped."""
    if isinstance(exc, SourceError):
        return f"reading stopped: {exc.problem.reason}"
    return f"reading stopped: {type(exc).__name__}: {exc}"


def _read_up_to(stream: BinaryIO, limit: int) -> tuple[bytes, str | None]:
    """Everything in `stream` (or its first limit + 1 bytes when it holds more), and why the
    reading stopped early (None when it did not): what was read before damage is kept."""
    chunks, got = [], 0
    try:
        while got <= limit:
            b = stream.read(min(1 << 20, limit + 1 - got))
            if not b:
                break
            chunks.append(b)
            got += len(b)
    except _STOPS as exc:
        return b"".join(chunks), _stopped(exc)
    return b"".join(chunks), None


def _rewind(stream: BinaryIO) -> bool:
    """Seek a plain file back to its start; False for streams that cannot (archive members)."""
    try:
        if stream.seekable() and isinstance(getattr(stream, "name", None), str):
            stream.fileno()
            stream.seek(0)
            return True
    except (OSError, ValueError, AttributeError):
        pass
    return False


def prepare_records(records: pl.DataFrame, path_host: str | pl.Expr) -> pl.DataFrame:
    """Add what matching needs: a row index, the host, the source family and the error codes.

    `path_host` is the host named by the path: one name, or a column when files are batched.
    """
    numbered = records.with_columns(row=pl.int_range(0, records.height, dtype=pl.UInt32))
    return with_hosts(numbered, path_host).with_columns(
        family=pl.col("format").replace_strict(FAMILY, default="text", return_dtype=pl.String),
        codes=extract_codes(records["message"]),
    ).with_columns(
        codes=pl.when(codes_expr_mask(pl.col("provider"), pl.col("event_id")))
        .then(pl.lit([], dtype=pl.List(pl.String)))
        .otherwise(pl.col("codes"))
    )


def parse_text(text: str, source: str = "<text>", forced: str | None = None) -> pl.DataFrame:
    """Records from a snippet of log text, through the same detection and parsers as a scan."""
    data = text.encode("utf-8")
    det = detect(source, data, forced)
    if det.parser is None:
        return pl.DataFrame()
    ctx = ParseContext(source=source, encoding=det.head.encoding, start_offset=det.bom_len)
    frames = [b.records for b in det.parser.parse(io.BytesIO(data[det.bom_len:]), ctx)]
    return pl.concat(frames) if frames else pl.DataFrame()


def match_text(text: str, matcher: Matcher, forced: str | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(records, hits) for a snippet of text: what a scan would find in a file holding it."""
    records = parse_text(text, forced=forced)
    if records.height == 0:
        return records, pl.DataFrame(schema={"row": pl.UInt32, "signature_id": pl.String, "code": pl.String,
                                             "score": pl.Float64})
    rec = prepare_records(records, "explain")
    return rec, matcher.match(rec).hits


def matcher_for(patterns: tuple[str, ...], *, explain: bool = False, mute: tuple[str, ...] = ()) -> Matcher:
    """One catalog and matcher per process and pattern set (the template cache lives there)."""
    key = (tuple(patterns), explain, tuple(mute))
    if key not in _STATE:
        cat = load_catalog([Path(p) for p in patterns], mute)
        _STATE[key] = (cat, Matcher(cat, include_explain_only=explain))
    return _STATE[key][1]


class SourceScanner:
    """Scans sources one after another into a set of part writers."""

    TABLES = ("matches", "rejects", "unmatched", "successes", "updates")
    #: Whole files up to TOGETHER_FILE_BYTES of parsers that can (ParserSpec.parse_group) are
    #: parsed in groups of about TOGETHER_BYTES (see _parse_together).
    TOGETHER_FILE_BYTES, TOGETHER_BYTES = 4 << 20, 16 << 20
    #: A group also closes at this many lines or files (a group's rows are parsed in one frame, and
    #: each waiting file costs its stat and detection): files of short lines or a bundle of many
    #: tiny members keep memory bounded. A file with more lines than this is streamed on its own.
    TOGETHER_ROWS, TOGETHER_FILES = 100_000, 2_000
    #: Records are matched in groups of about this many rows (across small files too).
    FLUSH_ROWS = 25_000
    #: A block's byte budget aims at this many kept records (see _next_block_bytes).
    KEPT_ROWS_PER_BLOCK, MIN_BLOCK_BYTES = 16_000, 1 << 20

    def __init__(self, parts_dir: Path, prefix: str, options: ScanOptions):
        self.options = options
        self.matcher = matcher_for(options.patterns, mute=options.mute)
        self.writers = {t: PartWriter(parts_dir, f"{prefix}-{t}", options.part_rows) for t in self.TABLES}
        self._pending: list[pl.DataFrame] = []
        self._pending_rows = 0
        self._stats: list[FileStat] = []
        self._together: list[tuple[FileStat, Detection, bytes, str]] = []  # stat, detection, bytes, host
        self._together_bytes = self._together_rows = 0
        sig_rows = [(s.id, s.scenario) for s in self.matcher.sigs.values()]
        self.sig_table = pl.DataFrame(sig_rows, schema={"signature_id": pl.String, "scenario": pl.String},
                                      orient="row")

    def scan_stream(self, logical: str, stream: BinaryIO, path_host: str, *, ctx_overrides: dict | None = None,
                    detection: Detection | None = None, size_hint: int | None = None,
                    into: FileStat | None = None) -> FileStat:
        """Detect, parse and match one source. Never raises for bad content: errors land in the stat.

        `detection` skips detection: watch mode parses a slice from the middle of a file with the
        parser and encoding it detected once from the file's head. `into`: the stat to fill (a
        fresh one by default). A small file (`size_hint`: the size the file system or archive
        declares) of a parser that can parse groups is read whole and parsed later together with
        others (see `_parse_together`); its stat is filled in then, at the latest by `close()`.
        """
        try:
            head = read_head(stream)
        except _STOPS as exc:  # damaged before its first bytes could be read (a bad CRC in a small member)
            stat = into or FileStat(source=logical, host=normalise_host(path_host) or path_host, format=None)
            stat.errors.append(_stopped(exc))
            return stat
        det = detection if detection is not None else detect(logical, head, self.options.forced_format)
        stat = into or FileStat(source=logical, host=normalise_host(path_host) or path_host,
                                format=det.parser.name if det.parser else None)
        if det.parser is None:
            stat.bytes, stat.skipped = len(head), det.skip_reason
            if size_hint is not None:  # a binary member is not decompressed to its end just to count it
                stat.bytes = max(size_hint, len(head))
                return stat
            try:
                stat.bytes += sum(len(b) for b in iter(lambda: stream.read(1 << 20), b""))
            except _STOPS as exc:
                stat.errors.append(_stopped(exc))
            return stat
        body = PrefixedStream(head[det.bom_len:], stream)
        read_error = None
        if (self.options.fast and detection is None and ctx_overrides is None and size_hint is not None
                and size_hint <= self.TOGETHER_FILE_BYTES and det.parser.parse_group is not None
                and not det.head.encoding.startswith("utf-16")):
            data, read_error = _read_up_to(body, self.TOGETHER_FILE_BYTES)
            rows = data.count(b"\n")
            if read_error is None and len(data) <= self.TOGETHER_FILE_BYTES and rows <= self.TOGETHER_ROWS:
                self._together.append((stat, det, head[:det.bom_len] + data, path_host))  # parse it with others
                self._together_bytes += len(data)
                self._together_rows += rows
                stat.bytes = det.bom_len + len(data)
                if (self._together_bytes >= self.TOGETHER_BYTES or self._together_rows >= self.TOGETHER_ROWS
                        or len(self._together) >= self.TOGETHER_FILES):
                    self._parse_together()
                return stat
            if read_error is not None:  # the whole lines read before the damage are still parsed
                body = PrefixedStream(data[: data.rfind(b"\n") + 1], io.BytesIO())
            else:  # bigger than declared, or too many lines for a group: read on as a stream
                body = PrefixedStream(data, stream)
        if det.parser.binary and _rewind(stream):
            body = PrefixedStream(b"", stream)  # a plain file: binary readers want their own handle on it
            body.name = getattr(stream, "name", None)  # type: ignore[attr-defined]
            body.fileno = stream.fileno  # type: ignore[method-assign]
        ctx = ParseContext(source=logical, encoding=det.head.encoding, assume_tz=self.options.assume_tz,
                           start_offset=det.bom_len, batch_bytes=self.options.batch_bytes)
        if self.options.fast:
            family = FAMILY.get(det.parser.name, "text")
            ctx.keep_regex = self.matcher.keep_pattern(family)
        ctx.fast = self.options.fast
        for k, v in (ctx_overrides or {}).items():
            setattr(ctx, k, v)
        try:
            for batch in det.parser.parse(body, ctx):
                self._consume(batch.records, batch.rejects, path_host, stat)
                stat.records += batch.quiet
                stat.lines += batch.lines
                stat.notes.extend(batch.notes)
                ctx.next_block_bytes = self._next_block_bytes(ctx, batch.records.height)
        except OutputError:  # the tables cannot be written: not this source's fault, the run stops
            raise
        except _STOPS as exc:  # the archive layer refused or lost the member (it reports that itself), or I/O
            stat.errors.append(_stopped(exc))
        except Exception as exc:  # a parser bug must not end a fleet-wide scan; it is reported
            stat.errors.append(f"parser {det.parser.name} failed: {type(exc).__name__}: {exc}")
        if read_error is not None:
            stat.errors.append(read_error)
        stat.bytes = det.bom_len + body.consumed
        stat.folded_lines = stat.lines - stat.records - stat.rejects
        return stat

    def _next_block_bytes(self, ctx: ParseContext, kept: int) -> int:
        """The next block's budget: about KEPT_ROWS_PER_BLOCK kept records' worth of bytes, at
        least MIN_BLOCK_BYTES and at most ctx.batch_bytes. A usual log keeps a few % of its lines
        and stays at full blocks; one whose every line fails gets blocks a fifth the size, which
        bounds the memory its records, codes and matches take in flight."""
        if kept <= self.KEPT_ROWS_PER_BLOCK // 2:
            return ctx.batch_bytes
        return max(self.MIN_BLOCK_BYTES, min(ctx.batch_bytes, ctx.block_bytes() * self.KEPT_ROWS_PER_BLOCK // kept))

    def _parse_together(self) -> None:
        """Parse the small files read so far in one frame per parser: a fleet of thousands of
        small files pays the per-call cost of each polars step once per group, not once per file.
        Every file is framed on its own (line numbers, offsets, encodings); the counts are then
        split back per file. Should that fail, each file is parsed alone, so errors land in its stat.
        """
        waiting, self._together, self._together_bytes, self._together_rows = self._together, [], 0, 0
        by_parser: dict[str, list] = {}
        for entry in waiting:
            by_parser.setdefault(entry[1].parser.name, []).append(entry)
        for name in sorted(by_parser):
            self._parse_group(by_parser[name])

    def _parse_group(self, group: list[tuple[FileStat, Detection, bytes, str]]) -> None:
        spec = group[0][1].parser
        ctx = ParseContext(source="", encoding="", assume_tz=self.options.assume_tz, fast=True,
                           keep_regex=self.matcher.keep_pattern(FAMILY.get(spec.name, "text")))
        try:
            frames = []
            for k, (stat, det, data, _) in enumerate(group):
                blocks = list(frame_lines(io.BytesIO(data[det.bom_len:]), det.head.encoding,
                                          batch_bytes=self.options.batch_bytes, start_offset=det.bom_len))
                stat.lines = sum(b.lines for b in blocks)
                frames += [b.frame.with_columns(pl.lit(k, dtype=pl.UInt32).alias(SRC)) for b in blocks]
            got = spec.parse_group(pl.concat(frames), [stat.source for stat, *_ in group], ctx)
        except Exception:  # never lose a file to a shared failure: parse each alone, with its own report
            for stat, det, data, path_host in group:
                stat.lines = 0
                self.scan_stream(stat.source, io.BytesIO(data), path_host, detection=det, into=stat)
            return
        rejected = dict(got.rejects.group_by(SRC).len().iter_rows()) if got.rejects.height else {}
        keys = pl.DataFrame(
            [(k, path_host, len(self._stats) + k) for k, (_, _, _, path_host) in enumerate(group)],
            schema={SRC: pl.UInt32, "path_host": pl.String, "stat_key": pl.Int32}, orient="row")
        self._stats += [stat for stat, *_ in group]
        for k, (stat, *_) in enumerate(group):
            stat.records = got.counted.get(k, 0)
            stat.rejects = rejected.get(k, 0)
            stat.folded_lines = stat.lines - stat.records - stat.rejects
            stat.notes.extend(got.notes.get(k, []))
        if got.rejects.height:
            self.writers["rejects"].add(got.rejects.select(list(REJECT_SCHEMA)))
        if got.records.height:
            named = got.records.filter(pl.col("computer").is_not_null())
            for k, computer in named.group_by(SRC, maintain_order=True).agg(pl.col("computer").first()).iter_rows():
                group[k][0].host = host_value(computer, group[k][3])  # as _consume does for one file
            self._queue(compact_strings(got.records.join(keys, on=SRC, how="left", maintain_order="left").drop(SRC)))

    def _consume(self, records: pl.DataFrame, rejects: pl.DataFrame, path_host: str, stat: FileStat) -> None:
        stat.records += records.height
        stat.rejects += rejects.height
        if rejects.height:
            self.writers["rejects"].add(rejects.select(list(REJECT_SCHEMA)))
        if records.height == 0:
            return
        hosts = records["computer"].drop_nulls()
        if len(hosts):
            stat.host = host_value(hosts[0], path_host)
        key = len(self._stats)
        self._stats.append(stat)
        # copied out of the parser's block, or every pending row would keep its whole block alive
        self._queue(records.with_columns(*_copy_exprs(tuple(records.schema.items())),
                                         path_host=pl.lit(path_host), stat_key=pl.lit(key, pl.Int32)))

    def _queue(self, rows: pl.DataFrame) -> None:
        """Hold copied record rows (with path_host and stat_key) until FLUSH_ROWS are gathered."""
        self._pending.append(rows)
        self._pending_rows += rows.height
        if self._pending_rows >= self.FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        """Match the records gathered so far in one go: many small files cost one set of calls."""
        if not self._pending:
            return
        records = pl.concat(self._pending, how="vertical_relaxed")
        self._pending, self._pending_rows = [], 0
        # a block whose every line is kept (80k rows of 8 MiB) is matched in slices: the matcher's
        # intermediate frames are a few times the rows they work on
        for start in range(0, records.height, 2 * self.FLUSH_ROWS):
            self._match(records.slice(start, 2 * self.FLUSH_ROWS))

    def _match(self, records: pl.DataFrame) -> None:
        rec = with_lower(prepare_records(records, pl.col("path_host")))  # for the matcher's and extractors' tests
        self.writers["updates"].add(extract_events(rec))
        bh = self.matcher.match(rec)
        if bh.hits.height:
            matches = bh.hits.join(rec, on="row").join(self.sig_table, on="signature_id")
            self.writers["matches"].add(matches.select(MATCH_COLUMNS).with_columns(pl.col("raw").str.slice(0, RAW_CUT)))
            per_stat = bh.hits.select("row").unique().join(rec.select("row", "stat_key"), on="row")
            for key, n in per_stat.group_by("stat_key").len().iter_rows():
                self._stats[key].matched_records += n
        if bh.unmatched.height:
            self.writers["unmatched"].add(
                bh.unmatched.join(rec, on="row").select("template", "host", "source", "line_no", "ts", "level",
                                                       pl.col("raw").str.slice(0, RAW_CUT))
            )
        if bh.successes.height:
            self.writers["successes"].add(
                bh.successes.join(rec, on="row").select("host", "source", "line_no", "ts", "marker")
            )

    def close(self) -> dict[str, list[str]]:
        self._parse_together()
        self._flush()
        for w in self.writers.values():
            w.flush()
        return {t: w.paths for t, w in self.writers.items()}
