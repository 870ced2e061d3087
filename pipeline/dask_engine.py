"""Run a scan's work items on a Dask cluster instead of the local process pool.

The plan is the local one (`scan.plan_work`: groups of small files, whole files, line-aligned
ranges of big files) and so is the code each item runs (`scan.scan_item`), so archive handling,
limits and accounting are the same on every worker. What differs is where the parts go: a task
scans into a scratch folder of its own worker, reads the parts back and returns them as bytes;
only this (client) process writes into the output folder. A task is thus pure and idempotent:
when a worker dies the scheduler runs its tasks again elsewhere, and whichever run finishes
first is the one result kept per item, so nothing is lost or counted twice.

dask is an optional extra (`pip install 'umtriage[dask]'`); this module is imported only when
`--dask` is given, and imports dask only when an engine is opened.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from .procenv import PARALLEL_SCAN_ENV
from .process import ScanOptions
from .scan import GROUP_BYTES, GROUP_UNITS, UnitResult, WorkItem, plan_work, scan_item
from .sources import Limits, Problem, Unit
from .url_inputs import UrlUnit, list_url_units, stage

INSTALL_HINT = "--dask needs the dask extra: pip install 'umtriage[dask]'"
#: Re-runs of a task that raised (a flaky network file system); a task lost with its worker is
#: re-run by the scheduler anyway (up to distributed's `allowed-failures`).
RETRIES = 2
#: How long to wait for a remote cluster to have at least one worker.
WORKER_WAIT_SECONDS = 60


class DaskError(RuntimeError):
    """The cluster cannot be had: dask is not installed, or the scheduler cannot be reached."""


def parse_spec(spec: str) -> tuple[str | None, int | None]:
    """`local` / `local:N` -> (None, N or None); anything else is a scheduler address -> (spec, None)."""
    if spec == "local":
        return None, None
    if spec.startswith("local:"):
        n = spec.removeprefix("local:")
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"--dask {spec}: use local, local:N (N >= 1) or a scheduler address")
        return None, int(n)
    if not spec or spec.startswith("-"):
        raise ValueError(f"--dask {spec!r}: use local, local:N or a scheduler address such as tcp://host:8786")
    return spec, None


def umtriage_version() -> str:
    """The umtriage installed where this runs (a worker must run the client's version)."""
    from importlib.metadata import version

    return version("umtriage")


def plan_urls(units: list[UrlUnit], first: int, options: ScanOptions) -> list[WorkItem]:
    """Work items for objects at URLs: small ones grouped by the local plan's rules, others alone."""
    items: list[WorkItem] = []
    group: list[UrlUnit] = []
    size = 0
    for u in units:
        if u.size >= min(GROUP_BYTES // 4, options.split_min_bytes):
            items.append(WorkItem(first + len(items), (u,)))  # type: ignore[arg-type]  # staged by the worker
            continue
        group.append(u)
        size += u.size
        if size >= GROUP_BYTES or len(group) >= GROUP_UNITS:
            items.append(WorkItem(first + len(items), tuple(group)))  # type: ignore[arg-type]
            group, size = [], 0
    if group:
        items.append(WorkItem(first + len(items), tuple(group)))  # type: ignore[arg-type]
    return items


def scan_remote(item: WorkItem, options: ScanOptions, limits: Limits) -> tuple[UnitResult, dict[str, bytes]]:
    """Run on a worker: scan one item into a private scratch folder and return its parts as bytes.

    Objects at URLs are first copied into that folder under their relative names. Writes nothing
    that outlives the call, so running it twice (a retried task) is harmless.
    """
    scratch = None
    try:
        from distributed import get_worker

        scratch = get_worker().local_directory  # the nanny clears it when the worker goes
    except (ImportError, ValueError):
        pass
    with tempfile.TemporaryDirectory(prefix="umtriage-task-", dir=scratch) as tmp:
        fetch_problems: list[dict] = []
        if item.units and isinstance(item.units[0], UrlUnit):
            local, fetch_problems = stage(item.units, Path(tmp) / "objects")  # type: ignore[arg-type]
            item = replace(item, units=tuple(local))
        result = scan_item(item, options, Path(tmp), limits)
        result.problems[:0] = fetch_problems
        blobs: dict[str, bytes] = {}
        for table, paths in result.parts.items():
            for p in paths:
                blobs[Path(p).name] = Path(p).read_bytes()
            result.parts[table] = [Path(p).name for p in paths]
    return result, blobs


class DaskEngine:
    """An engine for `run_scan(engine=...)`: a LocalCluster of its own, or a running scheduler.

    `open()` (or `with`) connects, starting the LocalCluster first for `local[:N]`; `close()`
    disconnects and stops that cluster.
    """

    #: What `run` raises when the cluster cannot finish the scan (the CLI reports it and exits 2).
    errors = (DaskError,)

    def __init__(self, spec: str, *, urls: tuple[str, ...] = (), timeout: float = WORKER_WAIT_SECONDS,
                 run_timeout: float | None = None) -> None:
        self.address, self.local_workers = parse_spec(spec)
        self.urls, self.timeout = tuple(urls), timeout
        self.run_timeout = run_timeout  # seconds for a whole `run` (tests bound their waits; a scan has none)
        self.url_units: list[UrlUnit] = []
        self.url_problems: list[Problem] = []
        self._stack = ExitStack()
        self.client = None

    def open(self) -> DaskEngine:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise DaskError(INSTALL_HINT) from exc
        try:  # listed first: a URL that names nothing fails before a cluster is started
            self.url_units, self.url_problems = list_url_units(list(self.urls))
        except (OSError, ValueError, ImportError) as exc:
            raise DaskError(f"cannot list {', '.join(self.urls)}: {exc}") from exc
        try:
            if self.address is None:
                n = self.local_workers or os.cpu_count() or 1
                # one single-threaded process per worker, each with the settings of a local pool worker
                env = {k: os.environ.get(k, v) for k, v in PARALLEL_SCAN_ENV.items()}
                cluster = self._stack.enter_context(LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0",
                    env=env))
                self.address = cluster.scheduler_address
            self.client = self._stack.enter_context(Client(self.address, timeout=self.timeout))
            self.client.wait_for_workers(1, timeout=self.timeout)
            self._check_workers()
        except (OSError, TimeoutError) as exc:
            self._stack.close()
            raise DaskError(f"cannot use the Dask cluster at {self.address}: {exc}") from exc
        except BaseException:
            self._stack.close()
            raise
        return self

    def close(self) -> None:
        self._stack.close()

    def _check_workers(self) -> None:
        """Fail at once, not at the first task, when a worker lacks umtriage or runs another version."""
        mine = umtriage_version()
        try:
            theirs = self.client.run(umtriage_version)
        except Exception as exc:
            raise DaskError(f"the workers at {self.address} cannot run umtriage ({type(exc).__name__}: {exc}): "
                            "install the same umtriage[dask] on every worker") from exc
        wrong = sorted(f"{addr} has {v}" for addr, v in theirs.items() if v != mine)
        if wrong:
            raise DaskError(f"umtriage {mine} here, but {', '.join(wrong[:3])}: install the same version everywhere")

    def __enter__(self) -> DaskEngine:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def slots(self) -> int:
        """Tasks the cluster runs at once: how finely big files are cut."""
        return max(1, sum(self.client.nthreads().values()))

    def describe(self) -> dict:
        """What summary.json's `run` records about this engine."""
        import polars as pl

        about = {"engine": "dask", "jobs": self.slots, "processes": len(self.client.nthreads()),
                 "polars_threads": pl.thread_pool_size(), "scheduler": self.address,
                 "workers": len(self.client.nthreads())}
        return {**about, "url_inputs": list(self.urls)} if self.urls else about

    def plan(self, units: list[Unit], problems: list[Problem],
             options: ScanOptions) -> tuple[list[WorkItem], list[Problem]]:
        """The local plan, big files cut for the cluster's slots, then the objects at URLs."""
        items = plan_work(units, self.slots, options)
        return items + plan_urls(self.url_units, len(items), options), problems + self.url_problems

    def run(self, items: list[WorkItem], options: ScanOptions, parts_dir: Path, limits: Limits,
            on_unit: Callable[[int, int], None] | None) -> list[UnitResult]:
        """Every item's result (in the order they finish), its parts written into `parts_dir`."""
        from distributed import as_completed

        run_id = uuid.uuid4().hex[:12]
        futures = [self.client.submit(scan_remote, it, options, limits, key=f"umtriage-scan-{run_id}-{it.index:06d}",
                                      retries=RETRIES, pure=False) for it in items]
        results: dict[int, UnitResult] = {}
        try:
            for fut in as_completed(futures, timeout=self.run_timeout):
                try:
                    result, blobs = fut.result()
                except Exception as exc:  # umtriage missing on a worker, a worker killed too often...
                    raise DaskError(f"the cluster could not scan a work item: {type(exc).__name__}: {exc}") from exc
                fut.release()  # the parts' bytes are not kept on the cluster once written here
                if result.index in results:  # one result per item, whatever the scheduler did
                    continue
                for name, data in blobs.items():
                    (parts_dir / name).write_bytes(data)
                result.parts = {t: [str(parts_dir / n) for n in names] for t, names in result.parts.items()}
                results[result.index] = result
                if on_unit:
                    on_unit(result.index, result.bytes)
        except BaseException:
            self.client.cancel(futures)
            raise
        missing = {it.index for it in items} - set(results)
        if missing:  # cannot happen with a healthy scheduler; never let a table silently lack an item
            raise RuntimeError(f"dask returned no result for work items {sorted(missing)[:10]}")
        return list(results.values())
