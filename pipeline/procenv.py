"""Environment for the processes of a parallel scan, set before polars is imported.

Kept in a module that imports nothing heavy, because the values only take effect when they are
in the environment before polars (and the jemalloc allocator it ships) is loaded: the CLI sets
them for its own process, the scan for the worker processes it spawns. A value the user set wins.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from .sources import is_archive_name

#: Below this many input bytes and files a scan stays in one process (worker start-up costs
#: more); that process then keeps polars' own threads. Files count on their own because small
#: files cost per file (a few ms each for the event and Linux formats), not per byte.
PARALLEL_MIN_BYTES, PARALLEL_MIN_FILES = 64 << 20, 200
#: A plain file at least this big is cut into line-aligned byte ranges for several processes.
SPLIT_MIN_BYTES = 128 << 20

#: POLARS_MAX_THREADS: the scanning processes already fill the cores, so one polars thread each
#: avoids oversubscription (the 1 GB benchmark ran 0.3 s slower with two).
#: _RJEM_MALLOC_CONF narenas:1: the main thread and polars' pool thread share one allocator arena
#: instead of each keeping its own freed blocks: about 35 MB less per run of two processes on the
#: 1 GB benchmark file, at the same speed (both measured with bench/throughput). Freed pages go
#: back to the system after 200 ms (dirty_decay_ms, muzzy_decay_ms; polars' own default keeps
#: them 0.5 s, then 1 s more): the merge of a run whose 4.5M lines all match (bench/hostile
#: all-match) peaked at 513-535 MB with polars' default, 462-524 MB after a second, 445-449 MB
#: after 200 ms (one process); the 1 GB benchmark's time stayed within its run-to-run noise.
#: The allocator settings serve a scan in one process as well (the CLI sets them for every scan
#: and watch): fuzzy-200k (200k distinct anchor-word lines, one process) peaked at 485-502 MB,
#: with them 436-448 MB; 300 MB of WindowsUpdate.log 248-276 -> 211-215 MB; both as fast.
ALLOCATOR_ENV = {"_RJEM_MALLOC_CONF": "narenas:1,dirty_decay_ms:200,muzzy_decay_ms:0"}
PARALLEL_SCAN_ENV = {"POLARS_MAX_THREADS": "1", **ALLOCATOR_ENV}


def apply_env(env: dict[str, str] = PARALLEL_SCAN_ENV) -> dict[str, str | None]:
    """Set `env` (PARALLEL_SCAN_ENV or ALLOCATOR_ENV) where unset; return the previous values (for `restore`)."""
    saved = {k: os.environ.get(k) for k in env}
    for k, v in env.items():
        os.environ.setdefault(k, v)
    return saved


def restore(saved: dict[str, str | None]) -> None:
    """Put back the values `apply_env` found."""
    for k, old in saved.items():
        if old is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = old


def will_run_parallel(paths: Iterable[Path]) -> bool:
    """Whether a scan of `paths` with several jobs will use several processes: enough files, or
    enough bytes in more than one file or in one plain file big enough to be cut (a single big
    file in a format that cannot be cut is the one case this guesses wrong; it then runs with one
    polars thread).

    Cheap (directory entries only) so the CLI can decide before it imports polars.
    """
    total, files, largest = 0, 0, 0
    for root in paths:
        stack = [Path(root)]
        while stack:
            p = stack.pop()
            try:
                if p.is_symlink():
                    continue
                if p.is_dir():
                    stack.extend(p.iterdir())
                elif p.is_file():
                    size = p.stat().st_size
                    total, files = total + size, files + 1
                    if not is_archive_name(p.name):  # archives are never cut
                        largest = max(largest, size)
            except OSError:
                continue
            if files >= PARALLEL_MIN_FILES or (
                    total >= PARALLEL_MIN_BYTES and (files > 1 or largest >= SPLIT_MIN_BYTES)):
                return True
    return False


#: What a worker needs before its first item: importing it is most of a worker's start-up.
WORKER_MODULE = "umtriage.pipeline.scan"


def _import_in_worker(name: str) -> None:
    importlib.import_module(name)


def start_workers(workers: int) -> ProcessPoolExecutor:
    """Spawn `workers` scan processes now and have each import the scanner, so that their start-up
    runs beside this process's own imports and planning instead of after them (about half a
    second of one core on a parallel scan). Call with PARALLEL_SCAN_ENV applied."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
    for _ in range(workers):  # one task per process: each submit spawns a process while none is idle
        pool.submit(_import_in_worker, WORKER_MODULE)
    return pool


def end_workers(pool: ProcessPoolExecutor) -> None:
    """End the workers without waiting for what they are doing (safe on an ended pool)."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)
