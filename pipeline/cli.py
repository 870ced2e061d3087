"""The `umtriage` command line. Heavy imports happen inside each command so `--help` is instant."""

from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import timedelta
from pathlib import Path

SEVERITIES = ("info", "low", "medium", "high", "critical")
TABLE_FORMATS = ("parquet", "csv", "jsonl")
EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Something the user asked for cannot be done; exit 2 with this message."""


def _duration(text: str) -> timedelta:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: a number and a unit (s, m, h, d), "
                                         "e.g. 6h, 90m, 2d")
    value, unit = float(m.group(1)), m.group(2)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: must be more than 0")
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: value})


def _size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", text, re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: use e.g. 500M, 20G")
    return int(float(m.group(1)) * 1024 ** " kmgt".index((m.group(2) or " ").lower()))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="umtriage",
        description="Find out why Windows Update and Azure Update Management fail, from the logs machines leave.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("scan", help="scan files, folders and archives; write incident tables")
    s.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    s.add_argument("-o", "--out", type=Path, required=True, help="output folder for the tables")
    s.add_argument("--format", action="append", default=[], metavar="FORMAT",
                   help="extra table format (csv, jsonl), or a parser name to force (see `umtriage formats`)")
    _common(s)
    s.add_argument("--fail-on", choices=SEVERITIES,
                   help="exit 1 when an unresolved incident at or above this severity exists")
    s.add_argument("--fail-on-any", action="store_true",
                   help="with --fail-on: count resolved incidents too")
    s.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    s.add_argument("--max-expansion", type=float, default=200.0, metavar="RATIO",
                   help="an archive may expand to RATIO times its size over all its layers (past 64 MiB; "
                        "default 200), else it is reported as zip_bomb and the rest of it skipped")
    s.add_argument("--max-expanded", type=_size, default=20 << 30, metavar="SIZE",
                   help="most bytes read out of one archive input, all layers together (default 20G)")
    s.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster: a scheduler address (tcp://host:8786), "
                   "or local[:N] for a LocalCluster of N workers (needs: pip install 'umtriage[dask]')")

    w = sub.add_parser("watch", help="follow a folder of logs and keep the tables current")
    w.add_argument("path", type=Path, metavar="DIR")
    w.add_argument("-o", "--out", type=Path, required=True)
    w.add_argument("--state", type=Path, help="checkpoint file (default: OUT/watch-state.json)")
    w.add_argument("--once", action="store_true", help="process what is there, then exit")
    w.add_argument("--from-end", action="store_true", help="start at the current end of existing files")
    w.add_argument("--interval", type=float, default=2.0, help="seconds between safety rescans")
    w.add_argument("--format", action="append", default=[], metavar="FORMAT",
                   help="extra table format (csv, jsonl), or a parser name to force (see `umtriage formats`)")
    _common(w)

    e = sub.add_parser("explain", help="explain an error code or a log line")
    e.add_argument("text", nargs="+", help="a code (8024402c, 0x8024402C, -2145107924) or a log line")
    e.add_argument("--patterns", action="append", default=[], type=Path, metavar="DIR")

    pt = sub.add_parser("patterns", help="list, check or draft signatures")
    psub = pt.add_subparsers(dest="action", required=True)
    pl_ = psub.add_parser("list", help="list the signatures")
    pl_.add_argument("--patterns", action="append", default=[], type=Path, metavar="DIR")
    pc = psub.add_parser("check", help="validate signature files and run their examples")
    pc.add_argument("dir", nargs="?", type=Path)
    ps = psub.add_parser("suggest", help="turn an unknown message template into a signature skeleton")
    ps.add_argument("template", help="a template from unmatched.parquet, or a raw log line")
    ps.add_argument("--id", help="signature id (default: derived from the text)")
    ps.add_argument("-o", "--out", type=Path, help="write the skeleton to this file or folder")

    sub.add_parser("formats", help="list the input formats umtriage understands")
    sub.add_parser("schema", help="print the output tables' schema (Markdown; docs/schema.md)")
    p.add_argument("--version", action="version", version="umtriage 0.1.0")
    return p


def _common(s: argparse.ArgumentParser) -> None:
    s.add_argument("--assume-tz", default="UTC", help="zone for local times without offset (UTC, +0530, IANA name)")
    s.add_argument("--host", help="host name for files whose path names no machine")
    s.add_argument("--host-from", metavar="REGEX",
                   help="take the host from the source path: a regex with a group named `host`, "
                   "e.g. '(?P<host>[^_/]+)_'")
    s.add_argument("--window", type=_duration, default=timedelta(hours=6),
                   help="gap that splits incidents (default 6h)")
    s.add_argument("--patterns", action="append", default=[], type=Path, metavar="DIR",
                   help="extra signature folder; overrides built-ins by id (repeatable)")
    s.add_argument("--mute", action="append", default=[], metavar="CODE|SIGNATURE",
                   help="never report this error code or signature id (repeatable; also a mute.txt in --patterns)")
    s.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def _split_formats(values: list[str]) -> tuple[tuple[str, ...], str | None]:
    from umtriage.parsers import PARSERS

    tables, parser = [], None
    for v in values:
        for item in v.split(","):
            item = item.strip()
            if item in TABLE_FORMATS:
                tables.append(item)
            elif item in PARSERS:
                if parser is not None and parser != item:
                    raise UsageError(f"--format {parser} and --format {item}: force one parser at most")
                parser = item
            else:
                raise UsageError(f"unknown --format {item!r}: use csv, jsonl, or one of {', '.join(PARSERS)}")
    return tuple(sorted(set(tables))), parser


def _options(args, forced: str | None):
    from umtriage.parsers.timeutil import validate_tz
    from umtriage.pipeline.process import ScanOptions

    try:
        validate_tz(args.assume_tz)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    for d in args.patterns:
        if not d.is_dir():
            raise UsageError(f"--patterns {d}: not a folder")
    if args.host_from is not None:
        try:
            rx = re.compile(args.host_from)
        except re.error as exc:
            raise UsageError(f"--host-from {args.host_from!r}: not a valid regular expression: {exc}") from None
        if "host" not in rx.groupindex:
            raise UsageError(f"--host-from {args.host_from!r}: needs a group named host, e.g. (?P<host>[^_/]+)")
    return ScanOptions(assume_tz=args.assume_tz, host=args.host, host_from=args.host_from, forced_format=forced,
                       patterns=tuple(str(d) for d in args.patterns), mute=tuple(args.mute))


def cmd_scan(args) -> int:
    from umtriage.pipeline.procenv import (
        ALLOCATOR_ENV,
        apply_env,
        end_workers,
        start_workers,
        will_run_parallel,
    )

    workers = None
    if args.jobs > 1 and not args.dask and will_run_parallel(args.paths):  # this process will scan beside workers:
        apply_env()  # the same settings, set before polars is imported
        workers = start_workers(args.jobs - 1)  # their start-up runs beside this process's own
    else:
        apply_env(ALLOCATOR_ENV)  # before polars is imported, as above
    try:
        return _scan(args, workers)
    finally:
        if workers is not None:  # the scan ends them once its items are done; this is for early exits
            end_workers(workers)


def _scan(args, workers) -> int:
    import shutil
    import tempfile
    from contextlib import closing, nullcontext

    from umtriage.patterns.catalog import CatalogError
    from umtriage.pipeline.outdir import check_output_dir
    from umtriage.pipeline.scan import LocalPool, run_scan

    tables, forced = _split_formats(args.format)
    options = _options(args, forced)
    urls, out_url = _split_urls(args)
    try:
        _check_fail_on(args, options)
    except CatalogError as exc:
        raise UsageError("invalid signatures:\n" + str(exc)) from exc
    for p in args.paths:
        if not p.exists():
            raise UsageError(f"{p}: no such file or folder")
        if not os.access(p, os.R_OK):
            raise UsageError(f"{p}: not readable")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.max_expansion <= 0:
        raise UsageError("--max-expansion must be above 0")
    from umtriage.pipeline.sources import Limits

    limits = Limits(max_expansion=args.max_expansion, max_total_bytes=args.max_expanded)
    engine = _open_engine(args.dask, urls) if args.dask else None  # a missing extra is said first
    if not out_url:
        try:
            check_output_dir(args.out)
        except BaseException:
            if engine:
                engine.close()
            raise
    engine_errors: tuple[type[Exception], ...] = engine.errors if engine else ()
    out = Path(tempfile.mkdtemp(prefix="umtriage-out-")) if out_url else args.out  # uploaded when complete
    progress = nullcontext(None)
    if not args.quiet:  # rich is only imported when something will be printed
        from umtriage.pipeline.report import scan_progress

        progress = scan_progress(args.paths, quiet=False)
    try:
        with closing(engine) if engine else nullcontext(), progress as on_unit:
            result = run_scan(args.paths, out, options, jobs=args.jobs, window=args.window, formats=tables,
                              limits=limits, on_unit=on_unit, engine=engine or LocalPool(args.jobs, workers))
        if out_url:
            from umtriage.pipeline.url_inputs import upload

            upload(out, out_url)
            result.out_dir = out_url
    except CatalogError as exc:
        raise UsageError("invalid signatures:\n" + str(exc)) from exc
    except engine_errors as exc:  # the cluster could not finish the scan
        raise UsageError(str(exc)) from exc
    finally:
        if out_url:
            shutil.rmtree(out, ignore_errors=True)
    if not args.quiet:
        from umtriage.pipeline.report import print_scan_report

        print_scan_report(result)
    if args.fail_on:
        floor = SEVERITIES.index(args.fail_on)
        inc = result.incidents
        counted = inc["severity"].to_list() if args.fail_on_any else \
            inc.filter(inc["resolved_at"].is_null())["severity"].to_list()
        if any(SEVERITIES.index(s) >= floor for s in counted):
            return EXIT_FOUND
    return EXIT_OK


def _split_urls(args) -> tuple[tuple[str, ...], str | None]:
    """Take the fsspec URLs out of the inputs (Dask workers fetch them); and the output URL, if any."""
    from umtriage.pipeline.url_inputs import as_url

    urls = tuple(u for u in map(as_url, args.paths) if u)
    out_url = as_url(args.out)
    if (urls or out_url) and not args.dask:
        raise UsageError("URL inputs and outputs need --dask (its workers fetch the objects): e.g. --dask local")
    args.paths = [p for p in args.paths if not as_url(p)]
    return urls, out_url


def _open_engine(spec: str, urls: tuple[str, ...] = ()):
    """The connected engine for `--dask SPEC`; exit 2 with the reason when there is none."""
    from umtriage.pipeline.dask_engine import DaskEngine, DaskError

    try:
        return DaskEngine(spec, urls=urls).open()
    except (ValueError, DaskError) as exc:
        raise UsageError(str(exc)) from exc
def _check_fail_on(args, options) -> None:
    """Refuse a --fail-on severity that no signature in use can reach: it could never fail the run."""
    if args.fail_on_any and not args.fail_on:
        raise UsageError("--fail-on-any needs --fail-on SEVERITY")
    if not args.fail_on:
        return
    from umtriage.pipeline.process import matcher_for

    floor = SEVERITIES.index(args.fail_on)
    have = {s.severity for s in matcher_for(options.patterns).sigs.values()}
    if not any(SEVERITIES.index(s) >= floor for s in have if s in SEVERITIES):
        raise UsageError(f"--fail-on {args.fail_on}: no signature has this severity or a higher one "
                         f"(they have: {', '.join(s for s in SEVERITIES if s in have)})")


def cmd_explain(args) -> int:
    from umtriage.pipeline.explain import explain

    return explain(" ".join(args.text), [Path(p) for p in args.patterns])


def cmd_patterns(args) -> int:
    from umtriage.pipeline import patterns_cmd

    if args.action == "list":
        return patterns_cmd.list_signatures(args.patterns)
    if args.action == "check":
        return patterns_cmd.check(args.dir)
    return patterns_cmd.suggest(args.template, args.id, args.out)


def cmd_formats(_args) -> int:
    from umtriage.parsers import PARSERS

    width = max(len(n) for n in PARSERS)
    for name, spec in PARSERS.items():
        print(f"{name:<{width}}  {spec.description}")
    return EXIT_OK


def cmd_watch(args) -> int:
    from umtriage.pipeline.procenv import ALLOCATOR_ENV, apply_env

    apply_env(ALLOCATOR_ENV)  # before polars is imported: freed pages go back within 200 ms
    from umtriage.pipeline.outdir import check_output_dir
    from umtriage.pipeline.watch import run_watch

    args.table_formats, forced = _split_formats(args.format)
    options = _options(args, forced)
    if not args.path.is_dir():
        raise UsageError(f"{args.path}: not a folder")
    check_output_dir(args.out)
    from umtriage.patterns.catalog import CatalogError

    try:
        return run_watch(args, options)
    except CatalogError as exc:
        raise UsageError("invalid signatures:\n" + str(exc)) from exc


def cmd_schema(_args) -> int:
    from umtriage.pipeline.schema import render_markdown

    print(render_markdown(), end="")
    return EXIT_OK


COMMANDS = {"scan": cmd_scan, "explain": cmd_explain, "patterns": cmd_patterns, "formats": cmd_formats,
            "watch": cmd_watch, "schema": cmd_schema}


#: Options whose value may start with "-" (a UTC offset such as -05:00), which argparse would
#: take for an option: `--assume-tz -05:00` is passed on as `--assume-tz=-05:00`.
_DASH_VALUES = ("--assume-tz",)


def _attach_values(argv: list[str]) -> list[str]:
    out: list[str] = []
    k = 0
    while k < len(argv):
        if argv[k] in _DASH_VALUES and k + 1 < len(argv) and re.fullmatch(r"-\d.*", argv[k + 1]):
            out.append(f"{argv[k]}={argv[k + 1]}")
            k += 2
            continue
        out.append(argv[k])
        k += 1
    return out


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C so workers, parts and the unfinished run folder go."""


def _on_sigterm(_signum, _frame) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    import signal

    from .outdir import OutputBusy, OutputError
    from .termsafe import safe

    args = build_parser().parse_args(_attach_values(sys.argv[1:] if argv is None else list(argv)))
    if args.command == "scan":  # watch installs its own handler (it flushes and exits 0)
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return COMMANDS[args.command](args)
    except (UsageError, OutputError, OutputBusy) as exc:
        print(f"umtriage: error: {safe(exc, keep_newlines=True)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("umtriage: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("umtriage: terminated", file=sys.stderr)
        return 143


if __name__ == "__main__":
    sys.exit(main())
