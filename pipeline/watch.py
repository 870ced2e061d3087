"""`umtriage watch DIR -o OUT`: follow a folder of logs and keep OUT's tables current.

Batch and watch share everything but the source of lines: parsers, matching, part writing and
`scan.write_tables` are the batch ones. What watch adds:

- Identity by content. A line-format file is an entry keyed by nothing but a fingerprint of its
  first bytes plus a check of the bytes before its checkpoint (see `tail.py`): a rename keeps the
  entry (its parts are relabelled with the new path), a truncation, copytruncate or rewrite makes
  a new one read from the start, and the old entry's parts leave the tables. Documents (event
  exports), archives and skipped files are parsed again as a whole when they change, once their
  size and time have settled.
- Exactly-once. Parts go to OUT/parts/<table>/ (committed) or OUT/.watch/tail/<table>/
  (provisional), each written under a temporary name and renamed into place; then the state
  naming them is replaced atomically; only then are superseded parts deleted. On start, parts no
  state names are deleted and their bytes read again.
- Tables equal a batch scan of the same files: they are rebuilt from the parts of the files that
  exist now, through `write_tables`, so order, incident ids, counts and `resolved_at` are the
  batch ones, and an incident is updated in place rather than repeated.

watchdog events only wake the loop early; every cycle lists the folder again (the safety net).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import stat
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import polars as pl
from umtriage.parsers import PARSERS
from umtriage.parsers.detect import detect
from umtriage.parsers.textio import HEAD_BYTES

from .hosts import normalise_host
from .html_report import write_report
from .masking import load_masks
from .outdir import OutputBusy, OutputError, RunFolder, check_output_dir, lock_output
from .output import write_json
from .process import FileStat, ScanOptions, matcher_for
from .scan import UnitResult, _summary, scan_units, write_tables
from .sources import Limits, Problem, Unit, detect_archive, is_archive_name, list_units
from .tail import (
    FOLDING,
    FP_BYTES,
    TAILABLE,
    PassResult,
    PassRunner,
    Source,
    back_lines,
    count_lines,
    digest,
    head_print,
    held_records,
    last_banner_tz,
    line_end,
    pread,
    prefix_holds,
    prefix_sum,
    same_file,
    tail_print,
)
from .termsafe import safe
from .watch_state import (
    TABLES,
    PartStore,
    TailEntry,
    WatchState,
    WholeEntry,
    config_digest,
    load_state,
    no_parts,
    zero_counts,
)

#: Seconds a last line without newline waits for it before it is parsed as it stands.
PARTIAL_WAIT = 5.0
#: Seconds a document or archive must keep its size and time before it is parsed.
SETTLE = 1.0
#: Committed parts per entry and table above which they are merged into one.
COMPACT_AT = 16
#: Cycles an entry whose file is gone is kept, in case it turns up under another name.
MISSING_GRACE = 3
#: Failed reads of a file retried at once; after that it is read again when it changes.
MAX_RETRIES = 3
#: Most errors kept per followed file.
MAX_ERRORS = 50


_STAT_FIELDS = {f.name for f in dataclasses.fields(FileStat)}


def _key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev]


def _counts(stat_: FileStat) -> dict:
    return {"lines": stat_.lines, "records": stat_.records, "rejects": stat_.rejects,
            "matched_records": stat_.matched_records, "errors": list(stat_.errors),
            "notes": list(getattr(stat_, "notes", []))}


def _add_counts(into: dict, more: dict) -> None:
    for k in ("lines", "records", "rejects", "matched_records"):
        into[k] += more[k]
    for k in ("errors", "notes"):
        into[k] = (into.get(k, []) + more.get(k, []))[:MAX_ERRORS]


class Watcher:
    """One watched folder, its state and its outputs; `cycle()` brings the outputs up to date."""

    def __init__(self, root: Path, out: Path, options: ScanOptions, *, state_path: Path | None = None,
                 window: timedelta = timedelta(hours=6), from_end: bool = False, quiet: bool = False,
                 interval: float = 2.0, partial_wait: float = PARTIAL_WAIT, settle: float = SETTLE,
                 limits: Limits | None = None, echo: Callable[[str], None] | None = None,
                 formats: tuple[str, ...] = ()):
        self.root, self.out, self.options, self.window = Path(root), Path(out), options, window
        self.state_path = Path(state_path) if state_path else self.out / "watch-state.json"
        self.from_end, self.quiet, self.interval = from_end, quiet, interval
        self.partial_wait, self.settle = partial_wait, settle
        self.limits = limits or Limits()
        self.formats = formats  # extra table formats (csv, jsonl), as in a scan
        self.echo = echo or (lambda msg: print(safe(msg), file=sys.stderr, flush=True))
        self.catalog = matcher_for(options.patterns, mute=options.mute).catalog
        self._excluded = [os.path.realpath(self.out), os.path.realpath(self.state_path)]
        config = config_digest(self._settings())
        loaded = load_state(self.state_path, config)
        self.fresh = loaded is None
        self.state = loaded or WatchState(config)
        self.store = PartStore(self.out, self.state)
        self.orphans_removed = self.store.clean()
        self.runner = PassRunner(self.store.staging, options)
        self.live: set[str] = set()
        self.problems: list[Problem] = []
        self.events: deque[dict] = deque(maxlen=200)
        self.reported: set[tuple] = set()
        self.settling: dict[str, tuple[list[int], float]] = {}
        self.failures: dict[str, int] = {}
        self.seen_incidents = self._previous_incidents()
        self.cycles = 0
        self.whole_scans = 0
        self.dirty = True
        self.last_write = 0.0
        self.write_seconds = 0.0
        self.started = time.time()
        self.should_stop: Callable[[], bool] = lambda: False
        self.last_failure: str | None = None  # the write failure last reported (watch retries)

    # -- set-up ------------------------------------------------------------------------------
    def _settings(self) -> dict:
        cat = self.catalog
        return {
            "layout": 1,
            "root": os.path.realpath(self.root),
            "assume_tz": self.options.assume_tz,
            "host": self.options.host,
            "host_from": self.options.host_from,
            "forced": self.options.forced_format,
            "patterns": [os.path.realpath(p) for p in self.options.patterns],
            "catalog": digest(repr(sorted(cat.signatures.items())).encode() + repr(sorted(cat.codes.items())).encode()
                              + repr((sorted(cat.classes.items()), sorted(cat.ranges.items()),
                                      sorted(cat.context.items()), sorted(cat.muted))).encode()),
            "masks": digest(repr(load_masks()).encode()),
        }

    def _previous_incidents(self) -> set[str]:
        path = self.out / "incidents.parquet"
        if self.fresh or not path.exists():
            return set()
        try:
            return set(pl.read_parquet(path, columns=["incident_id"])["incident_id"].to_list())
        except Exception:  # a foreign or damaged file: every incident is new then
            return set()

    # -- reporting ---------------------------------------------------------------------------
    def _event(self, logical: str, reason: str, detail: str) -> None:
        """Something happened to a file that the user should know (it never stops the watcher)."""
        self.events.append({"time": round(time.time(), 3), "source": logical, "reason": reason, "detail": detail})
        self.echo(f"umtriage: watch: {logical}: {reason}: {detail}")

    def _report_once(self, logical: str, reason: str, detail: str) -> None:
        if (logical, reason) not in self.reported:
            self.reported.add((logical, reason))
            self.echo(f"umtriage: watch: {logical}: {reason}: {detail}")

    # -- listing -----------------------------------------------------------------------------
    def _is_excluded(self, path: Path) -> bool:
        real = os.path.realpath(path)
        return any(real == x or real.startswith(x + os.sep) for x in self._excluded) or \
            os.path.basename(real).startswith(f".{self.state_path.name}")

    def _list(self) -> list[Unit]:
        try:
            units, problems = list_units([self.root])
        except FileNotFoundError as exc:
            self._report_once(str(self.root), "missing", f"the watched folder is gone: {exc}")
            return []
        units = [u for u in units if not self._is_excluded(u.path)]
        self.problems = [p for p in problems if not self._is_excluded(self.root / p.logical)]
        for p in self.problems:
            self._report_once(p.logical, p.reason, p.detail)
        return units

    def _host(self, unit: Unit) -> str:
        """The host a batch scan gives a plain file: the path's first folder, else --host, else the folder."""
        from .hosts import source_host
        from .sources import host_candidate

        path_host = host_candidate(unit.rel_parts[0]) if len(unit.rel_parts) > 1 else None
        return source_host("/".join(unit.rel_parts), path_host, unit, self.options)

    # -- one cycle ---------------------------------------------------------------------------
    def cycle(self, final: bool = False) -> None:
        """List the folder, read what changed, commit parts and state; `final` also parses partial
        last lines and unsettled documents (at exit and in --once)."""
        now = time.time()
        first = self.cycles == 0
        self.cycles += 1
        units = self._list()
        current: dict[str, Unit] = {"/".join(u.rel_parts): u for u in units}
        # an entry still present wins its path over one that went missing from it
        by_path = {t.logical: t for t in sorted(self.state.tails.values(), key=lambda t: -t.missing)}
        assigned: dict[str, TailEntry] = {}
        moved: set[str] = set()
        fds: dict[str, tuple[int, int, list[int]]] = {}
        look: list[str] = []
        try:
            for logical, unit in sorted(current.items()):
                try:
                    key = _key(os.stat(unit.path))
                except OSError:
                    key = []
                t = by_path.get(logical)
                if t is not None and t.key == key:  # unchanged since it was last read
                    assigned[logical] = t
                    continue
                w = self.state.wholes.get(logical)
                if w is not None and w.key == key:
                    continue
                look.append(logical)
            wholes, candidates, heads = [], [], {}
            for logical in look:
                opened = self._open(logical, current[logical])
                if opened is None:
                    current.pop(logical)
                    continue
                fd, size, key, head = opened
                fds[logical] = (fd, size, key)
                heads[logical] = head
                if size == 0 or detect_archive(head) or is_archive_name(current[logical].path.name):
                    wholes.append(logical)
                else:
                    candidates.append(logical)
            taken = {t.id for t in assigned.values()}
            rest = []
            for logical in candidates:  # the same file at the same path, grown or not
                fd, size, _ = fds[logical]
                t = by_path.get(logical)
                if t is not None and t.id not in taken and self._continues(t, fd, size, fds[logical][2]):
                    assigned[logical] = t
                    taken.add(t.id)
                else:
                    rest.append(logical)
            for logical in rest:  # a known file under a new name (rotation by rename, copytruncate's copy)
                fd, size, _ = fds[logical]
                t = self._find_moved(fd, size, heads[logical], taken, fds[logical][2])
                if t is not None:
                    assigned[logical] = t
                    taken.add(t.id)
                    moved.add(t.id)
                    continue
                t = self._new_tail(logical, current[logical], fd, size, fds[logical][2], now, first)
                if t is None:
                    wholes.append(logical)
                else:
                    self.state.tails[t.id] = t
                    assigned[logical] = t
                    taken.add(t.id)
            for logical, t in sorted(assigned.items()):
                if self.should_stop() and not final:
                    break
                self._follow(logical, t, current[logical], fds, moved, final, now)
            for logical in sorted(set(wholes)):
                if self.should_stop() and not final:
                    break
                self._whole(logical, current[logical], fds.get(logical), final, now, first)
            self._forget(assigned, current)
            for t in self.state.tails.values():
                if t.id in self.live:
                    self._compact(t)
        finally:
            for fd, _, _ in fds.values():
                os.close(fd)
        self.store.commit(self.state_path)
        # tables are rebuilt from every part: not more often than every interval, nor than three
        # times the last rebuild took, so a large fleet is not spent rebuilding (interval 0: always)
        pause = max(self.interval, 3 * self.write_seconds) if self.interval > 0 else 0
        if final or (self.dirty and time.time() - self.last_write >= pause):
            self.write_outputs()

    def _open(self, logical: str, unit: Unit) -> tuple[int, int, list[int], bytes] | None:
        try:
            fd = os.open(unit.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            self._event(logical, "vanished", "deleted before it could be read")
            return None
        except OSError as exc:
            self._report_once(logical, "unreadable", f"cannot be opened: {exc.strerror or exc}")
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            self._report_once(logical, "special_file", "not a regular file; skipped")
            return None
        try:
            head = pread(fd, 512, 0)
        except OSError as exc:
            os.close(fd)
            self._report_once(logical, "unreadable", f"cannot be read: {exc.strerror or exc}")
            return None
        return fd, st.st_size, _key(st), head

    @staticmethod
    def _continues(t: TailEntry, fd: int, size: int, key: list[int]) -> bool:
        """True when the open file holds, unchanged, what `t` committed (so reading goes on).

        The cheap checks (first bytes, bytes before the checkpoint) decide for the same inode
        grown or untouched; a new inode (a replace by rename, a copy) or a change without growth
        has its whole committed prefix checked against the sums kept in the state.
        """
        if not same_file(fd, size, t.fp_len, t.fp, t.offset, t.check):
            return False
        if t.key and key[2:] == t.key[2:] and (key[0] > t.key[0] or key[1] == t.key[1]):
            return True
        return prefix_holds(fd, t.offset, t.prefix)

    def _find_moved(self, fd: int, size: int, head: bytes, taken: set[str], key: list[int]) -> TailEntry | None:
        """An entry not found at its own path whose content this file continues."""
        by_len: dict[int, list[TailEntry]] = {}
        for t in self.state.tails.values():
            if t.id not in taken and t.fp_len <= min(size, FP_BYTES):
                by_len.setdefault(t.fp_len, []).append(t)
        for n, entries in sorted(by_len.items(), reverse=True):
            h = digest(head[:n]) if n <= len(head) else digest(pread(fd, n, 0))
            for t in sorted(entries, key=lambda e: (-e.offset, e.id)):
                if t.fp == h and self._continues(t, fd, size, key):
                    return t
        return None

    def _new_tail(self, logical: str, unit: Unit, fd: int, size: int, key: list[int], now: float, first: bool
                  ) -> TailEntry | None:
        """A new followed file, or None when its format is read as a whole."""
        head = pread(fd, min(size, HEAD_BYTES), 0)
        det = detect(logical, head, self.options.forced_format)
        if det.parser is None or det.parser.binary or det.parser.name not in TAILABLE:
            return None
        fp_len, fp = head_print(fd, size)
        bom = det.bom_len
        t = TailEntry(id=self.state.new_id("t"), logical=logical, host=self._host(unit), fp_len=fp_len, fp=fp,
                      parser=det.parser.name, encoding=det.head.encoding, bom=bom, head_len=len(head), offset=bom,
                      line=1, check=tail_print(fd, bom), prefix=prefix_sum(fd, 0, bom), read_end=bom, key=key,
                      changed_at=now)
        if self.from_end and self.fresh and first:
            end = line_end(fd, bom, size, t.encoding)
            t.line = 1 + count_lines(fd, bom, end, t.encoding)
            t.offset = t.read_end = end
            t.check = tail_print(fd, end)
            t.prefix = prefix_sum(fd, bom, end, t.prefix)
            if t.parser == "windowsupdate":
                t.tz = last_banner_tz(fd, bom, end, t.encoding)
        self.dirty = True
        return t

    def _reset(self, t: TailEntry, fd: int, parser: str, encoding: str, bom: int) -> None:
        """Read the file again from its start (its detected format changed as it grew)."""
        self.store.drop(t.parts, True)
        self.store.drop(t.prov, False)
        t.parts, t.prov, t.counts, t.prov_counts = no_parts(), no_parts(), zero_counts(), zero_counts()
        t.parser, t.encoding, t.bom = parser, encoding, bom
        t.offset = t.read_end = bom
        t.line, t.tz = 1, None
        t.check = tail_print(fd, bom)
        t.prefix = prefix_sum(fd, 0, bom)
        self.dirty = True

    def _follow(self, logical: str, t: TailEntry, unit: Unit, fds: dict, moved: set[str], final: bool,
                now: float) -> None:
        """Bring one followed file's parts up to date."""
        self.live.add(t.id)
        opened = fds.get(logical)
        if opened is None:  # unchanged since the last read: only a waiting partial line may need work
            size = t.key[0]
            if t.read_end >= size or not (final or now - t.changed_at >= self.partial_wait):
                return
            got = self._open(logical, unit)
            if got is None:
                return
            fds[logical] = got[:3]
            opened = got[:3]
            if not same_file(got[0], got[1], t.fp_len, t.fp, t.offset, t.check):
                return  # changed just now; the next cycle sorts it out
        fd, size, key = opened
        if key != t.key:
            t.changed_at = now
            t.key = key
        if t.id in moved:
            self._relabel(t, logical, unit, fd)
        if t.fp_len < FP_BYTES and size > t.fp_len:
            t.fp_len, t.fp = head_print(fd, size)
        # detection is redone while the head grows, and after a rename (Arc and Windows patch
        # extension logs are told by their names too)
        if (t.head_len < HEAD_BYTES and size > t.head_len) or t.id in moved:
            head = pread(fd, min(size, HEAD_BYTES), 0)
            det = detect(logical, head, self.options.forced_format)
            now_parser = det.parser.name if det.parser and not det.parser.binary else None
            if (now_parser, det.head.encoding, det.bom_len) != (t.parser, t.encoding, t.bom):
                if now_parser not in TAILABLE:
                    self.store.drop(t.parts, True)
                    self.store.drop(t.prov, False)
                    del self.state.tails[t.id]
                    self.live.discard(t.id)
                    self._whole(logical, unit, opened, final, now, False)
                    return
                self._reset(t, fd, now_parser, det.head.encoding, det.bom_len)
            t.head_len = len(head)
        self._advance(t, fd, size, final or now - t.changed_at >= self.partial_wait)

    def _relabel(self, t: TailEntry, logical: str, unit: Unit, fd: int) -> None:
        """A renamed file keeps its parts; they are rewritten with the name a scan would give it."""
        old = t.logical
        if old == logical:
            return  # back where it was (it was missed by one listing)
        t.logical = logical
        host = self._host(unit)
        self._event(logical, "renamed", f"continues {old} at line {t.line} (byte {t.offset})")
        if host != t.host:
            t.host = host
            self._reset(t, fd, t.parser, t.encoding, t.bom)
            return
        t.parts = self.store.rewrite(t.parts, t.id, True, logical)
        t.prov = self.store.rewrite(t.prov, t.id, False, logical)
        self.dirty = True

    def _advance(self, t: TailEntry, fd: int, size: int, include_partial: bool) -> None:
        """Parse what is new: commit whole records, re-read the open tail as provisional."""
        end_complete = line_end(fd, t.offset, size, t.encoding)
        target = size if include_partial else end_complete
        if target == t.read_end:
            return
        spec = PARSERS[t.parser]
        src = Source(t.logical, t.host, spec, t.encoding)
        fold = t.parser in FOLDING
        commit_off, commit_line, tz = t.offset, t.line, t.tz
        committed: PassResult | None = None
        held = None
        if end_complete > t.offset:
            r = self.runner.parse_range(src, fd, t.offset, end_complete, t.line, tz=t.tz, hold_last=fold,
                                        final=False)
            if not r.ok:
                self.store.discard(r)
                self._failed(t, r.problem)
                return
            if not fold:
                committed, commit_off, commit_line = r, end_complete, t.line + r.stat.lines
                if t.parser == "windowsupdate":
                    found = last_banner_tz(fd, t.offset, end_complete, t.encoding)
                    tz = found if found is not None else tz
            elif r.held is not None and held_records(r.held):
                held, committed = r.held, r
                commit_line = t.line + r.stat.lines
                commit_off = back_lines(fd, t.offset, end_complete, r.held.lines, t.encoding)
            else:  # no record has started yet: all of it stays provisional
                self.store.discard(r)
        prov: PassResult | None = None
        if target > commit_off:
            if held is not None and target == end_complete:
                prov = self.runner.replay(src, held)
            else:
                prov = self.runner.parse_range(src, fd, commit_off, target, commit_line, tz=tz, hold_last=False,
                                               final=True)
                if not prov.ok:
                    self.store.discard(committed, prov)
                    self._failed(t, prov.problem)
                    return
        if os.fstat(fd).st_size < target or digest(pread(fd, t.fp_len, 0)) != t.fp:
            self.store.discard(committed, prov)
            self._failed(t, "truncated or rewritten while it was read")
            return
        self.failures.pop(t.id, None)
        if committed is not None:
            added = self.store.adopt(committed.parts, t.id, True)
            for table in TABLES:
                t.parts[table] += added[table]
            _add_counts(t.counts, _counts(committed.stat))
        self.store.drop(t.prov, False)
        t.prov = self.store.adopt(prov.parts, t.id, False) if prov is not None else no_parts()
        t.prov_counts = _counts(prov.stat) if prov is not None else zero_counts()
        for e in (committed.stat.errors if committed else []) + (prov.stat.errors if prov else []):
            self._report_once(t.logical, "error", e)
        t.prefix = prefix_sum(fd, t.offset, commit_off, t.prefix)  # only the newly committed bytes
        t.offset, t.line, t.tz = commit_off, commit_line, tz
        t.check = tail_print(fd, commit_off)
        t.read_end = target
        self.dirty = True

    def _failed(self, t: TailEntry, problem: str | None) -> None:
        """Nothing of a failed pass is kept; it is tried again at the next cycles, then when the file changes."""
        n = self.failures[t.id] = self.failures.get(t.id, 0) + 1
        if n <= MAX_RETRIES:
            t.key = []  # looked at again next cycle
        self._event(t.logical, "read_failed", f"{problem} (attempt {n}); nothing of this read was kept")

    def _whole(self, logical: str, unit: Unit, opened: tuple | None, final: bool, now: float, first: bool
               ) -> None:
        """Parse a document, archive or skipped file as a whole once its size and time have settled."""
        try:
            key = opened[2] if opened else _key(os.stat(unit.path))
        except OSError:
            return  # gone meanwhile: the next listing reports it
        w = self.state.wholes.get(logical)
        if self.from_end and self.fresh and first and w is None:
            self.state.wholes[logical] = WholeEntry(self.state.new_id("w"), logical, key)
            return
        seen = self.settling.get(logical)
        if seen is None or seen[0] != key:
            self.settling[logical] = (key, now)
            if not final:
                return
        elif not final and now - seen[1] < self.settle:
            return
        self.whole_scans += 1
        try:
            r = scan_units(self.whole_scans, (unit,), self.options, self.store.staging, self.limits)
        except Exception as exc:  # never let one file stop the watcher
            self._event(logical, "scan_failed", f"{type(exc).__name__}: {exc}")
            return
        if w is None:
            w = self.state.wholes[logical] = WholeEntry(self.state.new_id("w"), logical)
        self.store.drop(w.parts, True)
        w.parts = self.store.adopt(r.parts, w.id, True)
        w.key, w.files, w.problems = key, [f.to_dict() for f in r.files], r.problems
        self.settling.pop(logical, None)
        for f in r.files:
            if f.skipped:
                self._report_once(f.source, "skipped", f"not parsed ({f.skipped})")
            for e in f.errors:
                self._report_once(f.source, "error", e)
        for p in r.problems:
            self._report_once(p["source"], p["reason"], p["detail"])
        self.dirty = True

    def _forget(self, assigned: dict[str, TailEntry], current: dict[str, Unit]) -> None:
        """Entries whose file is gone leave the tables now and the state after a grace period."""
        found = {t.id for t in assigned.values()}
        self.live = {i for i in self.live if i in found}
        for t in list(self.state.tails.values()):
            if t.id in found:
                t.missing = 0
                continue
            t.missing += 1
            self.live.discard(t.id)
            if t.missing == 1:
                self.dirty = True
                if t.logical in current:
                    self._event(t.logical, "rewritten", "truncated or replaced; read again from its start")
                else:
                    self._event(t.logical, "vanished", f"gone after {t.read_end} bytes; its lines leave the tables")
            if t.missing > MISSING_GRACE:
                self.store.drop(t.parts, True)
                self.store.drop(t.prov, False)
                del self.state.tails[t.id]
        tail_paths = {t.logical for t in assigned.values() if t.id in self.state.tails}
        for logical in list(self.state.wholes):
            if logical not in current or logical in tail_paths:
                w = self.state.wholes.pop(logical)
                self.store.drop(w.parts, True)
                self.dirty = True
                if logical not in current:
                    self._event(logical, "vanished", "gone; its records leave the tables")

    def _compact(self, t: TailEntry) -> None:
        """Merge an entry's committed parts of one table when they grow numerous."""
        for table in TABLES:
            if len(t.parts[table]) > COMPACT_AT:
                merged = self.store.rewrite({table: t.parts[table]}, t.id, True, None)
                t.parts[table] = merged[table]

    # -- outputs -----------------------------------------------------------------------------
    def write_outputs(self) -> None:
        """Rebuild the tables from the live parts (batch order and ids) and summary.json."""
        t0 = time.perf_counter()
        parts: dict[str, list[str]] = {t: [] for t in TABLES}
        # (logical, file stats, problems, [(folder, parts)]) per live file, in a scan's unit order
        entries: list[tuple[str, list[FileStat], list[dict], list[tuple[Path, dict]]]] = []
        for t in self.state.tails.values():
            if t.id in self.live:
                groups = [(self.store.parts_dir, t.parts), (self.store.prov_dir, t.prov)]
                entries.append((t.logical, [self._tail_stat(t)], [], groups))
        for w in self.state.wholes.values():
            files = [FileStat(**{k: v for k, v in f.items() if k in _STAT_FIELDS}) for f in w.files]
            entries.append((w.logical, files, w.problems, [(self.store.parts_dir, w.parts)]))
        results = []
        for i, (_, files, probs, groups) in enumerate(sorted(entries, key=lambda e: e[0].split("/"))):
            for folder, group in groups:
                for table in TABLES:
                    parts[table] += [str(folder / table / n) for n in group[table]]
            results.append(UnitResult(i, files, list(probs), {}, 0))
        run = RunFolder(self.out)
        try:
            tables = self._write_run(run, parts, results, t0)
        finally:
            run.discard()
        self._announce(tables.incidents)
        self.dirty = False
        self.last_write = time.time()
        self.write_seconds = time.perf_counter() - t0

    def _write_run(self, run: RunFolder, parts: dict, results: list, t0: float):
        tables = write_tables(run.dir, parts, self.catalog, self.window, self.formats)
        summary = _summary([str(self.root)], results, self.problems, tables, time.perf_counter() - t0)
        summary["watch"] = {
            "state": str(self.state_path),
            "pid": os.getpid(),
            "cycles": self.cycles,
            "files_followed": len(self.live),
            "orphan_parts_removed_at_start": self.orphans_removed,
            "running_seconds": round(time.time() - self.started, 3),
            "events": list(self.events),
        }
        write_report(run.dir, tables.incidents, tables.updates, summary)
        write_json(summary, run.dir / "summary.json")
        run.publish()
        return tables

    def _tail_stat(self, t: TailEntry) -> FileStat:
        """A followed file's accounting, as a scan of it would report it."""
        c = zero_counts()
        _add_counts(c, t.counts)
        _add_counts(c, t.prov_counts)
        fs = FileStat(source=t.logical, host=normalise_host(t.host) or t.host, format=t.parser, bytes=t.read_end,
                      lines=c["lines"],
                      records=c["records"], rejects=c["rejects"], matched_records=c["matched_records"],
                      folded_lines=c["lines"] - c["records"] - c["rejects"], errors=c["errors"])
        if hasattr(fs, "notes"):
            fs.notes = c["notes"]
        return fs

    def _announce(self, incidents: pl.DataFrame) -> None:
        for r in incidents.iter_rows(named=True):
            if r["incident_id"] in self.seen_incidents:
                continue
            self.seen_incidents.add(r["incident_id"])
            if not self.quiet:
                print(safe(f"new incident {r['incident_id']} {r['severity']} {r.get('host_display') or r['host']} "
                           f"{r['code'] or '-'} {r['signature_id']}: {r['title']} (x{r['count']})"), flush=True)


def _wake_handler(wake: threading.Event, excluded: list[str]):
    """A watchdog handler: any event outside OUT wakes the loop (events are hints, not data)."""
    from watchdog.events import FileSystemEventHandler

    class Wake(FileSystemEventHandler):
        def dispatch(self, event) -> None:
            _wake_on(event, wake, excluded)

    return Wake()


def _wake_on(event, wake: threading.Event, excluded: list[str]) -> None:
    for raw in (getattr(event, "src_path", ""), getattr(event, "dest_path", "")):
        p = os.fsdecode(raw) if raw else ""
        if p and not any(p == x or p.startswith(x + os.sep) for x in excluded):
            wake.set()
            return


def _observer(root: Path, wake: threading.Event, excluded: list[str], echo: Callable[[str], None]):
    try:
        from watchdog.observers import Observer

        obs = Observer()
        obs.schedule(_wake_handler(wake, excluded), str(root), recursive=True)
        obs.daemon = True
        obs.start()
        return obs
    except Exception as exc:  # inotify limits and the like: the periodic rescan still runs
        echo(f"umtriage: watch: file events unavailable ({exc}); rescanning every interval")
        return None


def _supervise(obs, start: Callable[[], object], echo: Callable[[str], None], restarts: list[int]):
    """A dead observer (its thread or an emitter's ended, e.g. of a KeyError inside watchdog) is
    said out loud and started again; after MAX_OBSERVER_RESTARTS watch goes on rescanning alone."""
    if obs is None:
        return None
    alive = obs.is_alive() and all(e.is_alive() for e in getattr(obs, "emitters", ()))
    if alive:
        return obs
    with contextlib.suppress(Exception):
        obs.stop()
    if restarts[0] >= MAX_OBSERVER_RESTARTS:
        echo("umtriage: watch: file events stopped again; from now on only the rescan every interval "
             "finds changes")
        return None
    restarts[0] += 1
    echo("umtriage: watch: file events stopped (the watchdog thread ended); restarting them, and the "
         "rescan every interval goes on meanwhile")
    return start()


#: Times a dead watchdog observer is started again before watch relies on its rescans alone.
MAX_OBSERVER_RESTARTS = 3


def _thread_died(echo: Callable[[str], None]):
    """threading.excepthook for watch: one line instead of a traceback when a helper thread dies."""

    def hook(args) -> None:
        name = args.thread.name if args.thread is not None else "?"
        echo(f"umtriage: watch: thread {name} stopped: {args.exc_type.__name__}: {args.exc_value}")

    return hook


def run_watch(args, options: ScanOptions) -> int:
    """The `watch` command: follow args.path until Ctrl-C or SIGTERM (or once), exit 0.

    OUT/.lock is the one a scan takes too: a scan and a watch never write into one folder."""
    out: Path = args.out
    check_output_dir(out)
    with contextlib.ExitStack() as stack:
        stack.enter_context(lock_output(out))
        return _run(args, options, stack)


def _retry(watcher: Watcher, exc: BaseException, args, options: ScanOptions, stack: contextlib.ExitStack) -> Watcher:
    """After a failed cycle: a removed output folder is made again (and every file read again);
    a full disk or another write failure is reported and retried at the next cycle."""
    out = Path(args.out)
    if not out.is_dir():
        watcher.echo(f"umtriage: watch: the output folder {out} is gone; making it again and reading every "
                     "file again")
        try:
            check_output_dir(out)
            stack.enter_context(lock_output(out))
        except (OutputError, OutputBusy) as again:
            watcher.echo(f"umtriage: watch: {again}; retrying in {args.interval:g} s")
            return watcher
        fresh = _new_watcher(args, options)
        fresh.should_stop = watcher.should_stop
        return fresh
    if not isinstance(exc, OutputError):
        exc = OutputError.wrap(exc, out)
    if str(exc) != watcher.last_failure:  # said once, not every cycle
        watcher.echo(f"umtriage: watch: {exc}; retrying every {args.interval:g} s")
        watcher.last_failure = str(exc)
    return watcher


def _new_watcher(args, options: ScanOptions) -> Watcher:
    return Watcher(args.path, args.out, options, state_path=args.state, window=args.window,
                   from_end=args.from_end, quiet=args.quiet, interval=args.interval,
                   formats=getattr(args, "table_formats", ()))


def _run(args, options: ScanOptions, stack: contextlib.ExitStack) -> int:
    watcher = _new_watcher(args, options)
    if args.once:
        watcher.cycle(final=True)
        return 0
    stop, wake = threading.Event(), threading.Event()

    def on_signal(signum, _frame) -> None:
        stop.set()
        wake.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C ends at once

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    watcher.should_stop = stop.is_set
    excluded = [os.path.abspath(args.out), os.path.realpath(args.out)]
    if args.state:
        excluded += [os.path.abspath(args.state), os.path.realpath(args.state)]
    threading.excepthook = _thread_died(watcher.echo)

    def start():
        return _observer(Path(os.path.abspath(args.path)), wake, excluded, watcher.echo)

    obs = start()
    restarts = [0]
    if not args.quiet:
        watcher.echo(f"umtriage: watching {args.path} -> {args.out} (Ctrl-C to stop)")
    try:
        while not stop.is_set():
            try:
                if not Path(args.out).is_dir():  # removed while nothing changed: nothing would fail
                    raise OutputError(f"the output folder {args.out} is gone")
                watcher.cycle(final=False)
                if watcher.last_failure:
                    watcher.echo("umtriage: watch: writing the tables again")
                    watcher.last_failure = None
            except (OutputError, OSError, pl.exceptions.PolarsError) as exc:
                watcher = _retry(watcher, exc, args, options, stack)
            obs = _supervise(obs, start, watcher.echo, restarts)
            wake.wait(timeout=max(0.05, args.interval))
            wake.clear()
            stop.wait(0.1)  # let a burst of events settle into one cycle
    finally:
        if obs is not None:
            obs.stop()
            obs.join(timeout=5)
    watcher.should_stop = lambda: False
    try:
        watcher.cycle(final=True)  # the flush: partial last lines and unsettled documents too
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise OutputError.wrap(exc, Path(args.out)) from exc
    return 0
