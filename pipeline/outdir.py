"""The output folder: checked before a run, locked while written, switched whole at the end.

A run never changes the tables a reader is looking at: it writes every file into a fresh
`OUT/.runs/<id>/` and then switches `OUT/current` (a symbolic link) to it with one rename; each
table's plain path `OUT/incidents.parquet` is a link to `current/incidents.parquet`. A reader
therefore opens a whole table of one run; one that wants every table of the same run reads
them under `OUT/current/`. A run killed while writing leaves `current` on the previous run
(its half-written folder is removed by the next run). `OUT/.lock` is held while a scan or a
watch writes, so two of them never write into one folder.

No polars here: the command line imports this before it knows how polars must be set up.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path


class OutputError(Exception):
    """The tables cannot be written (disk full, folder removed, not writable): exit 2, no traceback.

    Not an OSError on purpose: readers of inputs turn OSErrors into per-file read errors, and a
    full disk must stop the run instead of being reported as a damaged input.
    """

    @classmethod
    def wrap(cls, exc: BaseException, where: Path) -> OutputError:
        if isinstance(exc, OutputError):
            return exc
        text = str(exc).strip()
        reason = getattr(exc, "strerror", None) or (text.splitlines()[-1] if text else type(exc).__name__)
        if not where.exists():
            reason = f"the folder is gone ({reason})"
        elif _free_bytes(where) < FULL_BELOW:  # the writers' own words for a full disk vary (thrift, EFBIG, ...)
            reason = f"no space left on the device ({reason})"
        return cls(f"cannot write the tables to {where}: {reason}")


#: Free bytes under which a failed write is reported as a full disk.
FULL_BELOW = 1 << 20


def _free_bytes(where: Path) -> int:
    try:
        return shutil.disk_usage(where).free
    except OSError:
        return FULL_BELOW


class OutputBusy(RuntimeError):
    """Another scan or watch is writing into the same output folder."""


def check_output_dir(out: Path) -> None:
    """Create `out` or say in one sentence why it cannot be the output folder (OutputError)."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"-o {out}: is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError):
        raise OutputError(f"-o {out}: a part of this path is a file, not a folder") from None
    except OSError as exc:
        raise OutputError(f"-o {out}: cannot create the folder: {exc.strerror or exc}") from None
    probe = out / f".write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"-o {out}: the folder is not writable: {exc.strerror or exc}") from None


LOCK_NAME = ".lock"


@contextlib.contextmanager
def lock_output(out: Path) -> Iterator[None]:
    """Hold OUT/.lock (an advisory flock) while writing; OutputBusy when someone else holds it."""
    try:
        f = open(out / LOCK_NAME, "a")  # noqa: SIM115 - held for the whole block
    except OSError as exc:
        raise OutputError.wrap(exc, out) from exc
    with f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise OutputBusy(f"another umtriage scan or watch is writing to {out}; wait for it or use another -o")\
                from None
        yield


#: The tables a run may write (a new table adds its name here and in schema.TABLES).
RUN_TABLES = ("incidents", "matches", "rejects", "unmatched", "updates")
#: Top-level names a run may own in OUT: those tables in every format, summary.json, the report.
#: A plain file of an older run with such a name that this run does not write is removed; other
#: files of the user's are left alone (links into `current/` are always ours).
OUTPUT_NAME = re.compile(rf"^(?:(?:{'|'.join(RUN_TABLES)})\.(?:parquet|csv|jsonl)|summary\.json|report\.html)$")
RUNS, CURRENT = ".runs", "current"


class RunFolder:
    """One run's output files: written into OUT/.runs/<id>/, then published all at once."""

    def __init__(self, out: Path) -> None:
        self.out = out
        run_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}-{secrets.token_hex(3)}"
        self.dir = out / RUNS / run_id
        self.published = False
        try:
            self.dir.mkdir(parents=True)
        except OSError as exc:
            raise OutputError.wrap(exc, out) from exc

    def discard(self) -> None:
        """Remove the folder unless it was published (a failed or interrupted run)."""
        if not self.published:
            shutil.rmtree(self.dir, ignore_errors=True)

    def publish(self) -> list[Path]:
        """Switch OUT/current to this run, link each file at OUT/<name>, drop stale names and old runs.

        Returns the published paths (OUT/<name>).
        """
        try:
            return self._publish()
        except OSError as exc:
            raise OutputError.wrap(exc, self.out) from exc

    def _publish(self) -> list[Path]:
        names = sorted(n for n in os.listdir(self.dir) if not n.startswith("."))
        current = self.out / CURRENT
        previous = os.readlink(current) if current.is_symlink() else None
        tmp = self.out / f".{CURRENT}.{self.dir.name}"
        try:
            os.symlink(os.path.join(RUNS, self.dir.name), tmp, target_is_directory=True)
        except (OSError, NotImplementedError):  # no symbolic links here: move the files, one rename each
            return self._publish_by_moving(names)
        os.replace(tmp, current)
        self.published = True
        for name in names:
            link = self.out / name
            want = os.path.join(CURRENT, name)
            if link.is_symlink() and os.readlink(link) == want:
                continue
            tmp = self.out / f".{name}.link"
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(want, tmp)
            os.replace(tmp, link)  # also replaces a plain file left by an older version
        self._drop_stale(set(names))
        keep = {self.dir.name, os.path.basename(previous or "")}
        for old in os.listdir(self.out / RUNS):
            if old not in keep:
                shutil.rmtree(self.out / RUNS / old, ignore_errors=True)
        return [self.out / n for n in names]

    def _publish_by_moving(self, names: list[str]) -> list[Path]:
        for name in names:
            os.replace(self.dir / name, self.out / name)
        self._drop_stale(set(names))
        shutil.rmtree(self.dir, ignore_errors=True)
        self.published = True
        return [self.out / n for n in names]

    def _drop_stale(self, names: set[str]) -> None:
        for entry in os.listdir(self.out):
            if entry in names:
                continue
            path = self.out / entry
            ours = path.is_symlink() and os.readlink(path).startswith(CURRENT + os.sep)
            if ours or (OUTPUT_NAME.match(entry) and path.is_file() and not path.is_symlink()):
                path.unlink()
