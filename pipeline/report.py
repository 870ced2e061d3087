"""What a person sees on the terminal: a progress bar over bytes, then incidents per host."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from .termsafe import cell

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


def _total_bytes(paths: Sequence[Path]) -> int:
    total = 0
    for p in paths:
        if p.is_file():
            total += p.stat().st_size
        elif p.is_dir():
            for f in p.rglob("*"):
                try:
                    if f.is_file() and not f.is_symlink():
                        total += f.stat().st_size
                except OSError:
                    pass
    return total


@contextmanager
def scan_progress(paths: Sequence[Path], *, quiet: bool) -> Iterator:
    """Yield an `on_unit(index, bytes)` callback driving a progress bar (only on a terminal)."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]scanning"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
        console=console, transient=True,
    ) as progress:
        task = progress.add_task("scan", total=_total_bytes(paths))

        def on_unit(_index: int, size: int) -> None:
            progress.advance(task, size)

        yield on_unit


SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
SEVERITY_SHORT = {"critical": "crit", "high": "high", "medium": "med", "low": "low", "info": "info"}
#: How many individual incidents and hosts the terminal report lists; the tables hold them all.
TOP_INCIDENTS = 10
TOP_HOSTS = 25


def _host_rank(rows: list[dict]) -> tuple:
    """Hosts with a current high problem first, then by their worst severity and name."""
    worst = min(SEVERITY_ORDER.index(r["severity"]) for r in rows)
    current = min((SEVERITY_ORDER.index(r["severity"]) for r in rows if r["current"]), default=len(SEVERITY_ORDER))
    return (current, worst)


def _host_table(inc) -> tuple[Table, int]:
    table = Table(title="Incidents per host", title_justify="left")
    table.add_column("host", no_wrap=True)
    table.add_column("incidents", no_wrap=True)
    table.add_column("last failure (UTC)", no_wrap=True)
    table.add_column("current problem", overflow="fold")
    by_host: dict[str, list[dict]] = {}
    for r in inc.iter_rows(named=True):
        by_host.setdefault(r["host"], []).append(r)
    ranked = sorted(by_host, key=lambda h: (*_host_rank(by_host[h]), h))
    shown = sorted(ranked[:TOP_HOSTS])
    for host in shown:
        rows = by_host[host]
        mix = ", ".join(
            f"[{SEVERITY_STYLE[k]}]{n} {SEVERITY_SHORT[k]}[/]"
            for k in SEVERITY_ORDER if (n := sum(1 for r in rows if r["severity"] == k))
        )
        last = max((r["last_seen"] for r in rows if r["last_seen"]), default=None)
        current = sorted((r for r in rows if r["current"]),
                         key=lambda r: (SEVERITY_ORDER.index(r["severity"]), r["signature_id"]))
        table.add_row(cell(_display(rows[0])), mix, last.strftime("%Y-%m-%d %H:%M") if last else "-",
                      cell(current[0]["title"]) if current else "-")
    return table, len(ranked) - len(shown)


def _top_table(inc) -> tuple[Table, int]:
    rows = [r for r in inc.iter_rows(named=True) if r["severity"] in ("critical", "high", "medium")]
    rows.sort(key=lambda r: (r["resolved_at"] is not None, not r["current"], SEVERITY_ORDER.index(r["severity"]),
                             r["host"], r["signature_id"], r["code"] or ""))
    table = Table(title="Most severe incidents", title_justify="left")
    for col in ("host", "severity", "failures", "last seen (UTC)", "state"):
        table.add_column(col, no_wrap=True, justify="right" if col == "failures" else "left")
    table.add_column("what", overflow="fold")
    for r in rows[:TOP_INCIDENTS]:
        state = "resolved" if r["resolved_at"] else ("CURRENT" if r["current"] else "open")
        table.add_row(cell(_display(r)), f"[{SEVERITY_STYLE[r['severity']]}]{r['severity']}[/]",
                      str(r.get("failures", r["count"])),
                      r["last_seen"].strftime("%Y-%m-%d %H:%M") if r["last_seen"] else "-", state,
                      cell(f"{r['scenario']}: {r['title']}"))
    return table, max(0, len(rows) - TOP_INCIDENTS)


def _display(row: dict) -> str:
    """The host as its logs write it (host_display), else the normalised key."""
    return row.get("host_display") or row["host"]


#: Piped output without COLUMNS: wide enough that the tables keep their words whole.
PIPE_WIDTH = 120


def report_console() -> Console:
    """A console for the report: the terminal's width, COLUMNS when set, else PIPE_WIDTH."""
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS", "").strip().isdigit() else PIPE_WIDTH
    return Console(highlight=False, width=width)


def print_scan_report(result) -> None:
    """Incidents per host, then the most severe incidents, then the accounting line."""
    console = report_console()
    s = result.summary
    inc = result.incidents
    if inc.height:
        hosts, more_hosts = _host_table(inc)
        console.print(hosts)
        if more_hosts:
            console.print(f"... and {more_hosts} more hosts (shown: the {TOP_HOSTS} with the worst current problems)")
        top, more = _top_table(inc)
        if top.row_count:
            console.print(top)
            if more:
                console.print(f"... and {more} more medium or higher incidents in incidents.parquet")
    else:
        console.print("No incidents found.")
    console.print(
        f"{s['files']} files ({s['files_skipped']} skipped), {s['bytes']:,} bytes, {s['lines']:,} lines = "
        f"{s['records']:,} records + {s['folded_lines']:,} folded + {s['rejects']:,} rejected; "
        f"{s['matched_records']:,} matched records, {s['incidents']} incidents on {len(s['hosts'])} hosts "
        f"in {s['elapsed_seconds']:.2f}s"
    )
    if s["problems"]:
        console.print(f"[yellow]{len(s['problems'])} input problems[/] (see summary.json: problems)")
    if s["errors"]:
        console.print(f"[yellow]{len(s['errors'])} read errors[/] (see summary.json: errors)")
    console.print(cell(f"Tables written to {result.out_dir}/"))
