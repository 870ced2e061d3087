"""Environment for the processes of a parallel scan, set before polars is imported.

Kept in a module that imports nothing heavy, because the values only take effect when they are
in the environment before polars (and the jemalloc allocator it ships) is loaded: the CLI sets
them for its own process, the scan for the worker processes it spawns. A value the user set wins.
"""

from __future__ import annotations

import os

#: POLARS_MAX_THREADS: the scanning processes already fill the cores, so one polars thread each
#: avoids oversubscription (the 1 GB benchmark ran 0.3 s slower with two).
#: _RJEM_MALLOC_CONF narenas:1: the main thread and polars' pool thread share one allocator arena
#: instead of each keeping its own freed blocks: about 35 MB less per run of two processes on the
#: 1 GB benchmark file, at the same speed (both measured with bench/throughput).
PARALLEL_SCAN_ENV = {"POLARS_MAX_THREADS": "1", "_RJEM_MALLOC_CONF": "narenas:1"}


def apply_parallel_scan_env() -> dict[str, str | None]:
    """Set PARALLEL_SCAN_ENV where unset; return the previous values (for `restore`)."""
    saved = {k: os.environ.get(k) for k in PARALLEL_SCAN_ENV}
    for k, v in PARALLEL_SCAN_ENV.items():
        os.environ.setdefault(k, v)
    return saved


def restore(saved: dict[str, str | None]) -> None:
    """Put back the values `apply_parallel_scan_env` found."""
    for k, old in saved.items():
        if old is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = old
