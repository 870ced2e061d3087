"""What a person sees on the terminal: a progress bar over bytes, then incidents per host."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

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


def print_scan_report(result) -> None:
    """Incidents per host, most severe first, then the accounting line."""
    term = Console()
    console = Console(highlight=False, width=term.width if term.is_terminal else 160)
    s = result.summary
    inc = result.incidents
    if inc.height:
        table = Table(title="Incidents per host", show_lines=False)
        for col in ("host", "severity", "scenario", "code", "count", "last seen (UTC)", "state"):
            table.add_column(col, no_wrap=True, justify="right" if col == "count" else "left")
        table.add_column("title", overflow="ellipsis", no_wrap=True, max_width=70)
        order = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
        rows = sorted(inc.iter_rows(named=True), key=lambda r: (r["host"], order[r["severity"]], r["signature_id"],
                                                                 r["code"] or ""))
        for r in rows:
            state = "resolved" if r["resolved_at"] else ("CURRENT" if r["current"] else "open")
            last = r["last_seen"].strftime("%Y-%m-%d %H:%M") if r["last_seen"] else "-"
            table.add_row(r["host"], f"[{SEVERITY_STYLE[r['severity']]}]{r['severity']}[/]", r["scenario"],
                          r["code"] or "-", str(r["count"]), last, state, r["title"])
        console.print(table)
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
    console.print(f"Tables written to {result.out_dir}/")
