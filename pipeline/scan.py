"""Batch scan: inputs -> units -> (parallel) per-unit parts -> merged tables, incidents, summary.

Units are processed in any order but their parts are merged in unit order, and each unit's
rows are in stream order, so the same input always gives byte-identical tables.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from itertools import pairwise
from multiprocessing import get_context
from pathlib import Path
from typing import Protocol

import polars as pl
from umtriage.parsers.base import REJECT_SCHEMA
from umtriage.parsers.detect import detect, read_head

from . import matches_disk
from .hosts import source_host
from .html_report import write_report
from .incidents import incidents_and_links, kb_expr
from .outdir import OutputError, RunFolder, check_output_dir, lock_output
from .output import write_json, write_table
from .procenv import apply_env, end_workers, restore
from .process import MATCH_COLUMNS, FileStat, ScanOptions, SourceScanner, matcher_for
from .schema import SCHEMA_VERSION
from .sources import Limits, Problem, Unit, detect_archive, is_archive_name, iter_unit, list_units
from .streams import RangeStream
from .tail import last_banner_tz
from .updates import EVENT_SCHEMA, UPDATE_SCHEMA, build_updates

#: A big file is cut into ranges of falling size (guided self-scheduling): each range is the
#: rest of the file divided by GUIDED_FACTOR x processes, but no smaller than MIN_RANGE_BYTES.
#: Big ranges first keep the per-range cost low; small ones last let every process finish at
#: nearly the same time, although the worker processes start a few tenths of a second late.
GUIDED_FACTOR, MIN_RANGE_BYTES = 2, 32 << 20
#: How far back a range that starts mid-file looks for the classic `tz:` banner in force.
TZ_LOOKBACK = 256 << 20
#: Formats whose records are single lines, so any line boundary is a safe place to cut.
SPLITTABLE = ("windowsupdate",)


#: Small units are scanned in groups of about this many bytes (fewer tasks, fewer part files).
GROUP_BYTES = 32 << 20
GROUP_UNITS = 256


@dataclass(frozen=True)
class WorkItem:
    """Some small units, one unit, or one line-aligned byte range of a big plain file."""

    index: int
    units: tuple[Unit, ...]
    start: int = 0
    end: int | None = None
    part: int = 0
    parser: str | None = None


class Engine(Protocol):
    """Where work items run: `LocalPool` (the default) or a Dask cluster (`pipeline/dask_engine.py`)."""

    def plan(self, units: list[Unit], problems: list[Problem],
             options: ScanOptions) -> tuple[list[WorkItem], list[Problem]]: ...  # plan_work for its slots (+ URLs)

    def run(self, items: list[WorkItem], options: ScanOptions, parts_dir: Path, limits: Limits,
            on_unit: Callable[[int, int], None] | None) -> list[UnitResult]: ...  # any order; parts in parts_dir

    def describe(self) -> dict: ...  # summary.json's `run`: engine, jobs, processes, polars_threads, ...


def _range_targets(size: int, jobs: int) -> list[int]:
    """Where to cut a file of `size` bytes for `jobs` processes (before aligning to lines)."""
    if size < jobs * MIN_RANGE_BYTES:  # small: one equal range per process
        return [k * size // jobs for k in range(1, jobs)]
    cuts, at = [], 0
    while size - at > MIN_RANGE_BYTES * 3 // 2:  # a last range under 1.5x the minimum stays whole
        at += max(MIN_RANGE_BYTES, (size - at) // (GUIDED_FACTOR * jobs))
        cuts.append(at)
    return cuts


def _split_points(path: Path, size: int, targets: list[int]) -> list[int]:
    """[0, the byte just after the first newline at or after each target..., size]."""
    points = [0]
    with open(path, "rb") as f:
        for target in targets:
            f.seek(target)
            window = f.read(1 << 20)
            nl = window.find(b"\n")
            if nl < 0:
                continue
            at = target + nl + 1
            if at > points[-1] and at < size:
                points.append(at)
    return [*points, size]


def plan_work(units: list[Unit], jobs: int, options: ScanOptions) -> list[WorkItem]:
    """One item per unit, except big single-line-record files, which are cut for the workers."""
    items: list[WorkItem] = []
    group: list[Unit] = []
    group_bytes = 0

    def close_group() -> None:
        nonlocal group, group_bytes
        if group:
            items.append(WorkItem(len(items), tuple(group)))
        group, group_bytes = [], 0

    for u in units:
        size = u.path.stat().st_size if u.path.is_file() else 0
        if size < min(GROUP_BYTES // 4, options.split_min_bytes):
            group.append(u)
            group_bytes += size
            if group_bytes >= GROUP_BYTES or len(group) >= GROUP_UNITS:
                close_group()
            continue
        close_group()
        parser = None
        if options.fast and jobs > 1 and size >= options.split_min_bytes and not is_archive_name(u.path.name):
            with open(u.path, "rb") as f:
                head = read_head(f)
            det = detect(u.path.name, head, options.forced_format)
            if (det.parser is not None and det.parser.name in SPLITTABLE and detect_archive(head) is None
                    and not det.head.encoding.startswith("utf-16")):
                parser = det.parser.name
        if parser is None:
            items.append(WorkItem(len(items), (u,)))
            continue
        points = _split_points(u.path, size, _range_targets(size, jobs))
        for k, (a, b) in enumerate(pairwise(points)):
            items.append(WorkItem(len(items), (u,), a, b, k, parser))
    close_group()
    return items


def scan_item(item: WorkItem, options: ScanOptions, parts_dir: Path, limits: Limits) -> UnitResult:
    """Scan a work item: a whole unit, or one byte range of a big file (line numbers local)."""
    if item.end is None:
        return scan_units(item.index, item.units, options, parts_dir, limits)
    unit = item.units[0]
    scanner = SourceScanner(parts_dir, f"{item.index:06d}", replace(options, forced_format=item.parser))
    walker = iter_unit(unit, limits)  # keep it alive: it owns the open file
    ref, stream = next(x for x in walker if not isinstance(x, Problem))
    host = source_host(ref.logical, ref.path_host, unit, options)
    state = {}
    if item.start:  # the classic zone in force where this range starts, looked up only if needed
        state["tz_min"] = partial(last_banner_tz, stream.fileno(), max(0, item.start - TZ_LOOKBACK), item.start,
                                  "utf-8")
    before = _file_state(unit.path)
    stat = scanner.scan_stream(ref.logical, RangeStream(stream.fileno(), item.start, item.end), host,
                               ctx_overrides={"start_offset": item.start, "state": state} if item.start else None)
    _note_change(unit.path, before, [stat])
    walker.close()
    if item.start:
        stat.bytes = item.end - item.start  # a mid-file range has no BOM of its own
    return UnitResult(item.index, [stat], [], scanner.close(), item.end - item.start)


def _run_shared_queue(items: list[WorkItem], pool: Executor, workers: int, options: ScanOptions, parts_dir: Path,
                      limits: Limits, on_unit: Callable[[int, int], None] | None) -> list[UnitResult]:
    """`workers` pool processes and this process take items from one queue until it is empty.

    This process starts at once while the workers are still starting up, and one process fewer
    keeps the summed memory of a run lower.
    """
    queue, lock = deque(items), threading.Lock()
    results: list[UnitResult] = []
    failure: list[BaseException] = []

    def take() -> WorkItem | None:
        with lock:
            return queue.popleft() if queue and not failure else None

    def done(r: UnitResult) -> None:
        with lock:
            results.append(r)
        if on_unit:
            on_unit(r.index, r.bytes)

    def feed() -> None:
        pending: set = set()
        try:
            while True:
                while len(pending) < workers and (it := take()) is not None:
                    pending.add(pool.submit(scan_item, it, options, parts_dir, limits))
                if not pending:
                    return
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    done(f.result())
        except BaseException as exc:  # re-raised in the calling thread below
            failure.append(exc)

    feeder = threading.Thread(target=feed, name="umtriage-feeder", daemon=True)
    feeder.start()
    try:
        while (it := take()) is not None:
            done(scan_item(it, options, parts_dir, limits))
    except BaseException as exc:  # SIGTERM, Ctrl-C, a full disk: stop feeding; the pool is ended by the caller
        with lock:
            failure.append(exc)
        raise
    feeder.join()
    if failure:
        raise failure[0]
    return results


@contextmanager
def _worker_pool(workers: int, started: ProcessPoolExecutor | None = None) -> Iterator[Executor | None]:
    """Spawned worker processes (None when there are none), or the `started` ones; they end, and
    free their memory, before the tables are merged."""
    if workers < 1:
        if started is not None:  # started early for a run that turned out too small to share
            end_workers(started)
        yield None
        return
    with _worker_environment(), (started or ProcessPoolExecutor(max_workers=workers,
                                                                mp_context=get_context("spawn"))) as pool:
        try:
            yield pool
        except BaseException:  # interrupted: end the workers now instead of waiting for their items
            end_workers(pool)
            raise


class LocalPool:
    """The local engine: this process and `jobs - 1` spawned processes, when the input is worth it."""

    def __init__(self, jobs: int = 1, started: ProcessPoolExecutor | None = None) -> None:
        """`started`: the jobs - 1 workers, spawned early (procenv.start_workers); ended by `run`."""
        self.jobs, self.parallel, self.items, self.started = jobs, False, 0, started

    def plan(self, units: list[Unit], problems: list[Problem],
             options: ScanOptions) -> tuple[list[WorkItem], list[Problem]]:
        items = plan_work(units, self.jobs, options)
        size = sum(u.path.stat().st_size if u.path.exists() else 0 for u in units)
        self.parallel = self.jobs > 1 and len(items) > 1 and (size >= options.parallel_min_bytes
                                                              or len(units) >= options.parallel_min_files)
        self.items = len(items)
        return items, problems

    def run(self, items: list[WorkItem], options: ScanOptions, parts_dir: Path, limits: Limits,
            on_unit: Callable[[int, int], None] | None) -> list[UnitResult]:
        started, self.started = self.started, None
        with _worker_pool(self.jobs - 1 if self.parallel else 0, started) as pool:
            if pool is not None:
                return _run_shared_queue(items, pool, self.jobs - 1, options, parts_dir, limits, on_unit)
        results = []
        for it in items:
            results.append(r := scan_item(it, options, parts_dir, limits))
            if on_unit:
                on_unit(r.index, r.bytes)
        return results

    def describe(self) -> dict:
        """How the run was made (after `plan`): what a slow run's report needs to show."""
        return {"engine": "local", "jobs": self.jobs, "processes": min(self.jobs, self.items) if self.parallel else 1,
                "polars_threads": pl.thread_pool_size()}


def _stitch_ranges(items: list[WorkItem], results: list[UnitResult]) -> list[UnitResult]:
    """Give the ranges of a split file their true line numbers and fold them into one result."""
    out: list[UnitResult] = []
    shift = 0
    for item, r in zip(items, results, strict=True):
        if item.end is None:
            out.append(r)
            continue
        if item.part == 0:
            shift = 0
            out.append(r)
        else:
            for t, paths in r.parts.items():  # line numbers are shifted when the parts are merged
                r.parts[t] = [f"{p}{SHIFT_MARK}{shift}" for p in paths]
            head, stat = out[-1], r.files[0]
            acc = head.files[0]
            for f in ("bytes", "lines", "records", "folded_lines", "rejects", "matched_records"):
                setattr(acc, f, getattr(acc, f) + getattr(stat, f))
            acc.errors += stat.errors
            acc.notes += [n for n in stat.notes if n not in acc.notes]  # each range may say the same
            for t, paths in r.parts.items():
                head.parts[t] = head.parts[t] + paths
            head.bytes += r.bytes
        shift += r.files[0].lines
    return out


@dataclass
class UnitResult:
    index: int
    files: list[FileStat]
    problems: list[dict]
    parts: dict[str, list[str]]
    bytes: int = 0


@dataclass
class ScanResult:
    summary: dict
    incidents: pl.DataFrame
    out_dir: Path
    written: list[Path] = field(default_factory=list)


@contextmanager
def _worker_environment() -> Iterator[None]:
    """PARALLEL_SCAN_ENV while the worker processes are spawned (read by polars at their import)."""
    saved = apply_env()
    try:
        yield
    finally:
        restore(saved)


def _problem_dict(p: Problem) -> dict:
    return {"source": p.logical, "reason": p.reason, "detail": p.detail}


def scan_units(index: int, units: tuple[Unit, ...], options: ScanOptions, parts_dir: Path,
               limits: Limits) -> UnitResult:
    """Scan every source inside some units (files or archives) into one set of parquet parts."""
    scanner = SourceScanner(parts_dir, f"{index:06d}", options)
    files: list[FileStat] = []
    problems: list[dict] = []
    size = 0
    for unit in units:
        before, first = _file_state(unit.path), len(files)
        try:
            for item in iter_unit(unit, limits):
                if isinstance(item, Problem):
                    problems.append(_problem_dict(item))
                    continue
                ref, stream = item
                host = source_host(ref.logical, ref.path_host, unit, options)
                files.append(scanner.scan_stream(ref.logical, stream, host, size_hint=ref.size))
        except OSError as exc:
            problems.append({"source": "/".join(unit.rel_parts), "reason": "unreadable", "detail": str(exc)})
        _note_change(unit.path, before, files[first:])
        size += unit.path.stat().st_size if unit.path.exists() else 0
    return UnitResult(index, files, problems, scanner.close(), size)


def _file_state(path: Path) -> tuple[int, int] | None:
    """(size, mtime in ns) of a unit's file, None when it cannot be stat'ed."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _note_change(path: Path, before: tuple[int, int] | None, stats: list[FileStat]) -> None:
    """A file written to while it was read may give tables that mix its old and new content: say so."""
    after = _file_state(path)
    if before is None or after == before:
        return
    what = "was removed" if after is None else (f"grew from {before[0]:,} to {after[0]:,} bytes" if after[0] > before[0]
                                                else f"changed (size {before[0]:,} -> {after[0]:,} bytes)")
    for stat in stats:
        stat.notes.append(f"the file {what} while it was read: scan it again once it is complete")


UNMATCHED_ROW_SCHEMA = {"template": pl.String, "host": pl.String, "source": pl.String, "line_no": pl.Int64,
                        "ts": pl.Datetime("us", "UTC"), "level": pl.String, "raw": pl.String}


#: A part of a split file's later range is named `path#+shift`: its line numbers start at 1 and
#: get the lines of the earlier ranges added when read back.
SHIFT_MARK = "#+"


def _read_part(part: str) -> pl.DataFrame:
    path, _, shift = part.partition(SHIFT_MARK)
    df = pl.read_parquet(path)
    return df.with_columns(pl.col("line_no") + int(shift)) if shift else df


def _merge(parts: list[str], schema: dict) -> pl.DataFrame:
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.concat([_read_part(p) for p in parts], how="vertical_relaxed")


def _aggregate_unmatched(df: pl.DataFrame) -> pl.DataFrame:
    schema = {"template": pl.String, "count": pl.Int64, "hosts": pl.List(pl.String), "levels": pl.List(pl.String),
              "first_seen": pl.Datetime("us", "UTC"), "last_seen": pl.Datetime("us", "UTC"), "example": pl.String,
              "example_source": pl.String}
    if df.height == 0:
        return pl.DataFrame(schema=schema)
    return (
        df.group_by("template", maintain_order=True)
        .agg(
            count=pl.len().cast(pl.Int64), hosts=pl.col("host").unique().sort(), levels=pl.col("level").unique().sort(),
            first_seen=pl.col("ts").min(), last_seen=pl.col("ts").max(), example=pl.col("raw").first(),
            example_source=pl.concat_str(pl.col("source"), pl.lit(":"), pl.col("line_no").cast(pl.String)).first(),
        )
        .sort(["count", "template"], descending=[True, False])
        .select(list(schema))
    )


def run_scan(
    paths: Sequence[Path],
    out_dir: Path,
    options: ScanOptions,
    *,
    jobs: int = 1,
    window: timedelta = timedelta(hours=6),
    formats: tuple[str, ...] = (),
    limits: Limits | None = None,
    on_unit: Callable[[int, int], None] | None = None,
    engine: Engine | None = None,
) -> ScanResult:
    """Scan `paths` into `out_dir`. Raises FileNotFoundError for a missing input path, OutputError
    when the tables cannot be written and OutputBusy when another run writes into `out_dir`.

    `engine`: where the work items run (default: `LocalPool(jobs)`, this process and its workers).
    Every file is written into a fresh run folder that is published only when complete (see
    output.RunFolder); `out_dir` is never read as input, even when it lies inside one.
    """
    t0 = time.perf_counter()
    limits = limits or Limits()
    catalog = matcher_for(options.patterns, mute=options.mute).catalog  # fail fast on a bad --patterns folder
    units, problems = list_units([Path(p) for p in paths])
    check_output_dir(out_dir)
    units, problems = _outside(units, problems, out_dir, paths)
    with lock_output(out_dir):
        run = RunFolder(out_dir)
        try:
            return _scan_into(run, paths, units, problems, options, catalog, t0, jobs=jobs, window=window,
                              formats=formats, limits=limits, on_unit=on_unit, engine=engine)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise OutputError.wrap(exc, run.dir if run.dir.exists() else out_dir) from exc
        finally:
            run.discard()  # published runs are no longer there; an unfinished one goes


def _outside(units: list[Unit], problems: list[Problem], out_dir: Path, paths: Sequence[Path]):
    """Drop what lies in the output folder: a second `scan X -o X/out` must not read its own tables."""
    real = os.path.realpath(out_dir)

    def inside(p: str) -> bool:
        r = os.path.realpath(p)
        return r == real or r.startswith(real + os.sep)

    roots = [Path(p) for p in paths]
    kept = [u for u in units if not inside(str(u.path))]
    kept_problems = [p for p in problems if not any(inside(str(r / p.logical)) for r in roots if r.is_dir())]
    return kept, kept_problems


def _scan_into(run: RunFolder, paths, units, problems, options: ScanOptions, catalog, t0: float, *, jobs: int,
               window: timedelta, formats: tuple[str, ...], limits: Limits,
               on_unit: Callable[[int, int], None] | None, engine: Engine | None) -> ScanResult:
    out_dir = run.dir
    parts_dir = out_dir / ".parts"
    parts_dir.mkdir()
    engine = engine or LocalPool(jobs)
    items, problems = engine.plan(units, problems, options)
    results = sorted(engine.run(items, options, parts_dir, limits, on_unit), key=lambda r: r.index)
    results = _stitch_ranges(items, results)
    parts = {t: [p for r in results for p in r.parts[t]] for t in SourceScanner.TABLES}
    tables = write_tables(out_dir, parts, catalog, window, formats)
    summary = _summary(paths, results, problems, tables, time.perf_counter() - t0)
    summary["run"] = engine.describe()
    summary["inputs"] += summary["run"].pop("url_inputs", [])  # objects only the engine's workers fetch
    shutil.rmtree(parts_dir, ignore_errors=True)
    del results, parts  # a stat per source: with 100k sources, memory the report page needs more
    tables.matches = tables.matches.clear()  # written and counted; the page needs incidents and updates only
    write_report(out_dir, tables.incidents, tables.updates, summary)
    write_json(summary, out_dir / "summary.json")  # the last file of the run
    published = run.publish()
    return ScanResult(summary, tables.incidents, run.out, published)


@dataclass
class Tables:
    incidents: pl.DataFrame
    matches: pl.DataFrame
    rejects: pl.DataFrame
    unmatched: pl.DataFrame
    written: list[Path]
    updates: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=UPDATE_SCHEMA))
    match_rows: int = 0  # rows of matches.parquet (`matches` is empty when they were built on disk)
    on_disk: bool = False


def write_tables(out_dir: Path, parts: dict[str, list[str]], catalog, window: timedelta,
                 formats: tuple[str, ...]) -> Tables:
    """Merge parts into the final tables, in canonical order, and write them (shared with watch mode).

    Canonical order (source, line_no, ...) makes the tables independent of the order in which
    files were processed: batch and watch give the same bytes for the same final files.
    """
    if sum(matches_disk.part_rows([p.partition(SHIFT_MARK)[0] for p in parts["matches"]])) \
            > matches_disk.in_memory_limit():
        return _write_tables_on_disk(out_dir, parts, _successes(parts), catalog, window, formats)
    # polars lets go of the GIL: the tables that need nothing from the matches are built and
    # written beside the incidents, and the matches are written while the incidents are
    with ThreadPoolExecutor(2, thread_name_prefix="umtriage-writer") as pool:
        side = pool.submit(_side_tables, out_dir, parts, formats)
        successes = pool.submit(_successes, parts)
        matches = _merge(parts["matches"], _match_schema()).select(MATCH_COLUMNS)
        matches = matches.sort(["source", "line_no", "signature_id", "code"], nulls_last=True).with_columns(
            _kb=kb_expr(pl.col("raw")))  # read by the incidents and written as the table's `kb`
        incidents, links = incidents_and_links(matches, successes.result(), catalog, window)
        matches = matches.with_columns(incident_id=links, kb=pl.col("_kb"), **_parser_format(matches)).drop("_kb")
        matches_written = pool.submit(write_table, matches, out_dir, "matches", formats)
        written = write_table(incidents, out_dir, "incidents", formats)
        written += matches_written.result()
        rejects, unmatched, updates, side_written = side.result()
    return Tables(incidents, matches, rejects, unmatched, written + side_written, updates, matches.height)


def _successes(parts: dict[str, list[str]]) -> pl.DataFrame:
    return _merge(parts["successes"], {"host": pl.String, "source": pl.String, "line_no": pl.Int64,
                                       "ts": pl.Datetime("us", "UTC"), "marker": pl.String})


def _side_tables(out_dir: Path, parts: dict[str, list[str]],
                 formats: tuple[str, ...]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, list[Path]]:
    """rejects, unmatched and updates, built and written (in that order): none needs the matches."""
    rejects = _merge(parts["rejects"], REJECT_SCHEMA).select(list(REJECT_SCHEMA)).sort(["source", "line_no"])
    unmatched = _aggregate_unmatched(_merge(parts["unmatched"], UNMATCHED_ROW_SCHEMA).sort(["source", "line_no"]))
    updates = build_updates(_merge(parts.get("updates", []), EVENT_SCHEMA))
    written = write_table(rejects, out_dir, "rejects", formats)
    written += write_table(unmatched, out_dir, "unmatched", formats)
    written += write_table(updates, out_dir, "updates", formats)
    return rejects, unmatched, updates, written


def _scan_part(part: str) -> pl.LazyFrame:
    path, _, shift = part.partition(SHIFT_MARK)
    lf = pl.scan_parquet(path)
    return lf.with_columns(pl.col("line_no") + int(shift)) if shift else lf


def _write_tables_on_disk(out_dir: Path, parts: dict[str, list[str]], successes: pl.DataFrame, catalog,
                          window: timedelta, formats: tuple[str, ...]) -> Tables:
    """write_tables for more matches than matches_disk.in_memory_limit(): the same tables, built
    without holding the matches' text (see matches_disk)."""
    def add_columns(df: pl.DataFrame, links: pl.Series) -> pl.DataFrame:
        return df.with_columns(incident_id=links, kb=kb_expr(pl.col("raw")), **_parser_format(df))

    work = out_dir / ".parts" / "matches-on-disk"
    incidents, sorted_file, rows = matches_disk.build_on_disk(
        parts["matches"], _scan_part, MATCH_COLUMNS, successes, catalog, window, work, add_columns)
    os.replace(sorted_file, out_dir / "matches.parquet")
    written = write_table(incidents, out_dir, "incidents", formats)
    written += [out_dir / "matches.parquet", *matches_disk.matches_extra_formats(out_dir / "matches.parquet",
                                                                                 out_dir, formats)]
    matches_disk.discard(work)
    rejects, unmatched, updates, side_written = _side_tables(out_dir, parts, formats)
    written += side_written
    return Tables(incidents, pl.DataFrame(), rejects, unmatched, written, updates, rows, on_disk=True)


def _parser_format(matches: pl.DataFrame) -> dict[str, pl.Expr]:
    """`format` as the parser's name (what `umtriage formats` lists); the line's form goes to format_variant."""
    from umtriage.parsers import PARSERS

    names = sorted(PARSERS, key=len, reverse=True)
    mapping = {v: next((n for n in names if v == n or v.startswith(n + "-")), v)
               for v in matches["format"].drop_nulls().unique().to_list()}
    return {"format": pl.col("format").replace_strict(mapping, default=None, return_dtype=pl.String),
            "format_variant": pl.col("format")}


def _match_schema() -> dict:
    return {
        "host": pl.String, "host_display": pl.String, "source": pl.String, "format": pl.String,
        "line_no": pl.Int64, "byte_offset": pl.Int64,
        "ts": pl.Datetime("us", "UTC"), "component": pl.String, "level": pl.String, "message": pl.String,
        "raw": pl.String, "signature_id": pl.String, "scenario": pl.String, "code": pl.String,
        "score": pl.Float64, "event_id": pl.Int64,
    }


def _rejected_codes(rejects: pl.DataFrame) -> dict[str, int]:
    """Error codes named by lines rejected as too long: lost to matching, but still counted."""
    from .codes import extract_codes

    if rejects.height == 0:
        return {}
    long = rejects.filter(pl.col("reason") == "line_too_long")["raw"]
    if len(long) == 0:
        return {}
    codes = extract_codes(long).explode().drop_nulls()
    return dict(sorted(codes.value_counts().iter_rows())) if len(codes) else {}


def _summary(paths, results, problems, tables: Tables, elapsed) -> dict:
    rejects, incidents, unmatched = tables.rejects, tables.incidents, tables.unmatched
    files = [f for r in results for f in r.files]
    scanned = [f for f in files if f.skipped is None]
    formats: dict[str, dict] = {}
    for f in scanned:
        d = formats.setdefault(f.format or "?", {"files": 0, "bytes": 0, "lines": 0, "records": 0, "rejects": 0})
        d["files"] += 1
        d["bytes"] += f.bytes
        d["lines"] += f.lines
        d["records"] += f.records
        d["rejects"] += f.rejects
    lines = sum(f.lines for f in files)
    records = sum(f.records for f in files)
    folded = sum(f.folded_lines for f in files)
    n_rejects = sum(f.rejects for f in files)
    by_reason = dict(sorted(rejects.group_by("reason").len().iter_rows())) if rejects.height else {}
    sev = dict(sorted(incidents.group_by("severity").len().iter_rows())) if incidents.height else {}
    all_problems = [_problem_dict(p) for p in problems] + [p for r in results for p in r.problems]
    return {
        "schema_version": SCHEMA_VERSION,
        "inputs": [str(p) for p in paths],
        "files": len(scanned),
        "files_skipped": len(files) - len(scanned),
        "bytes": sum(f.bytes for f in files),
        "lines": lines,
        "records": records,
        "folded_lines": folded,
        "rejects": n_rejects,
        "rejects_by_reason": by_reason,
        "codes_in_rejected_lines": _rejected_codes(rejects),
        "accounted": lines == records + folded + n_rejects,
        "matched_records": int(sum(f.matched_records for f in files)),
        "matches": tables.match_rows,
        "incidents": incidents.height,
        "incidents_by_severity": sev,
        "hosts": sorted(incidents["host"].unique().to_list()) if incidents.height else [],
        "unmatched_templates": unmatched.height,
        "formats": dict(sorted(formats.items())),
        "skipped": [{"source": f.source, "reason": f.skipped, "bytes": f.bytes} for f in files if f.skipped],
        "problems": all_problems,
        "errors": [{"source": f.source, "error": e} for f in files for e in f.errors],
        "notes": [{"source": f.source, "note": n} for f in files for n in f.notes],
        "elapsed_seconds": round(elapsed, 3),
        "sources": [f.to_dict() for f in files],
    }
