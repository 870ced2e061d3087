"""Batch scan: inputs -> units -> (parallel) per-unit parts -> merged tables, incidents, summary.

Units are processed in any order but their parts are merged in unit order, and each unit's
rows are in stream order, so the same input always gives byte-identical tables.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from multiprocessing import get_context
from pathlib import Path

import polars as pl
from umtriage.parsers.base import REJECT_SCHEMA

from .hosts import normalise_host
from .incidents import build_incidents
from .output import write_json, write_table
from .process import MATCH_COLUMNS, FileStat, ScanOptions, SourceScanner, matcher_for
from .sources import Limits, Problem, Unit, fallback_host, iter_unit, list_units

#: Below this many input bytes a scan stays in one process (worker start-up costs more).
PARALLEL_MIN_BYTES = 64 << 20


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


def _problem_dict(p: Problem) -> dict:
    return {"source": p.logical, "reason": p.reason, "detail": p.detail}


def scan_unit(index: int, unit: Unit, options: ScanOptions, parts_dir: Path, limits: Limits) -> UnitResult:
    """Scan every source inside one unit (a file or an archive) into parquet parts."""
    scanner = SourceScanner(parts_dir, f"{index:06d}", options)
    files: list[FileStat] = []
    problems: list[dict] = []
    default_host = normalise_host(options.host) or normalise_host(fallback_host(unit)) or "unknown"
    try:
        for item in iter_unit(unit, limits):
            if isinstance(item, Problem):
                problems.append(_problem_dict(item))
                continue
            ref, stream = item
            host = normalise_host(ref.path_host) or default_host
            files.append(scanner.scan_stream(ref.logical, stream, host))
    except OSError as exc:
        problems.append({"source": "/".join(unit.rel_parts), "reason": "unreadable", "detail": str(exc)})
    size = unit.path.stat().st_size if unit.path.exists() else 0
    return UnitResult(index, files, problems, scanner.close(), size)


UNMATCHED_ROW_SCHEMA = {"template": pl.String, "host": pl.String, "source": pl.String, "line_no": pl.Int64,
                        "ts": pl.Datetime("us", "UTC"), "level": pl.String, "raw": pl.String}


def _merge(parts: list[str], schema: dict) -> pl.DataFrame:
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.concat([pl.read_parquet(p) for p in parts], how="vertical_relaxed")


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
) -> ScanResult:
    """Scan `paths` into `out_dir`. Raises FileNotFoundError for a missing input path."""
    t0 = time.perf_counter()
    limits = limits or Limits()
    catalog = matcher_for(options.patterns).catalog  # fail fast on a bad --patterns folder
    units, problems = list_units([Path(p) for p in paths])
    out_dir.mkdir(parents=True, exist_ok=True)
    parts_dir = out_dir / ".parts"
    shutil.rmtree(parts_dir, ignore_errors=True)
    parts_dir.mkdir()
    sizes = [u.path.stat().st_size if u.path.exists() else 0 for u in units]
    results: list[UnitResult] = []
    if jobs > 1 and len(units) > 1 and sum(sizes) >= PARALLEL_MIN_BYTES:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futs = [pool.submit(scan_unit, i, u, options, parts_dir, limits) for i, u in enumerate(units)]
            for f in futs:
                r = f.result()
                results.append(r)
                if on_unit:
                    on_unit(r.index, r.bytes)
    else:
        for i, u in enumerate(units):
            r = scan_unit(i, u, options, parts_dir, limits)
            results.append(r)
            if on_unit:
                on_unit(i, r.bytes)
    results.sort(key=lambda r: r.index)

    parts = {t: [p for r in results for p in r.parts[t]] for t in SourceScanner.TABLES}
    tables = write_tables(out_dir, parts, catalog, window, formats)
    summary = _summary(paths, results, problems, tables, time.perf_counter() - t0)
    write_json(summary, out_dir / "summary.json")
    shutil.rmtree(parts_dir, ignore_errors=True)
    return ScanResult(summary, tables.incidents, out_dir, [*tables.written, out_dir / "summary.json"])


@dataclass
class Tables:
    incidents: pl.DataFrame
    matches: pl.DataFrame
    rejects: pl.DataFrame
    unmatched: pl.DataFrame
    written: list[Path]


def write_tables(out_dir: Path, parts: dict[str, list[str]], catalog, window: timedelta,
                 formats: tuple[str, ...]) -> Tables:
    """Merge parts into the final tables, in canonical order, and write them (shared with watch mode).

    Canonical order (source, line_no, ...) makes the tables independent of the order in which
    files were processed: batch and watch give the same bytes for the same final files.
    """
    matches = _merge(parts["matches"], _match_schema()).select(MATCH_COLUMNS)
    matches = matches.sort(["source", "line_no", "signature_id", "code"], nulls_last=True)
    successes = _merge(parts["successes"], {"host": pl.String, "source": pl.String, "line_no": pl.Int64,
                                            "ts": pl.Datetime("us", "UTC"), "marker": pl.String})
    incidents = build_incidents(matches, successes, catalog, window)
    rejects = _merge(parts["rejects"], REJECT_SCHEMA).select(list(REJECT_SCHEMA)).sort(["source", "line_no"])
    unmatched_rows = _merge(parts["unmatched"], UNMATCHED_ROW_SCHEMA)
    unmatched = _aggregate_unmatched(unmatched_rows.sort(["source", "line_no"]))
    written: list[Path] = []
    written += write_table(incidents, out_dir, "incidents", formats)
    written += write_table(matches, out_dir, "matches", formats)
    written += write_table(rejects, out_dir, "rejects", formats)
    written += write_table(unmatched, out_dir, "unmatched", formats)
    return Tables(incidents, matches, rejects, unmatched, written)


def _match_schema() -> dict:
    return {
        "host": pl.String, "source": pl.String, "format": pl.String, "line_no": pl.Int64, "byte_offset": pl.Int64,
        "ts": pl.Datetime("us", "UTC"), "component": pl.String, "level": pl.String, "message": pl.String,
        "raw": pl.String, "signature_id": pl.String, "scenario": pl.String, "code": pl.String,
        "score": pl.Float64, "event_id": pl.Int64,
    }


def _summary(paths, results, problems, tables: Tables, elapsed) -> dict:
    rejects, matches, incidents, unmatched = tables.rejects, tables.matches, tables.incidents, tables.unmatched
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
        "inputs": [str(p) for p in paths],
        "files": len(scanned),
        "files_skipped": len(files) - len(scanned),
        "bytes": sum(f.bytes for f in files),
        "lines": lines,
        "records": records,
        "folded_lines": folded,
        "rejects": n_rejects,
        "rejects_by_reason": by_reason,
        "accounted": lines == records + folded + n_rejects,
        "matched_records": int(sum(f.matched_records for f in files)),
        "matches": matches.height,
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
        "sources": [asdict(f) for f in files],
    }
