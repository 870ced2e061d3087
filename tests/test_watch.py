"""Watch mode never loses or repeats a line: real files, a real watchdog observer, a real `umtriage watch`.

In-process tests drive `Watcher.cycle()` between file operations, so every rotation is tested
at a chosen moment without any timing; the subprocess tests kill and stop the real command.
After each story the watch tables must equal a batch scan of the same final files.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
from umtriage.pipeline.process import ScanOptions
from umtriage.pipeline.scan import run_scan
from umtriage.pipeline.watch import COMPACT_AT, Watcher
from umtriage.pipeline.watch_state import TABLES

OPTS = ScanOptions()
TABLE_NAMES = ("incidents", "matches", "rejects", "unmatched", "updates")


# -- content -------------------------------------------------------------------------------
def etw_lines(n: int, seed: int = 0, hour: int = 21) -> list[str]:
    """Windows 10 WindowsUpdate.log lines: failures, successes, an undecoded event now and then."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        stamp = f"2024/05/13 {hour:02d}:{(i // 60) % 60:02d}:{i % 60:02d}.{rng.randrange(10**7):07d}"
        kind = rng.random()
        if kind < 0.3:
            msg = f"* END * Finding updates CallerId = Update;x, Id = {i}, Exit code = 0x8024401C (cV = a.{i})"
        elif kind < 0.4:
            msg = f"* END * Finding updates CallerId = Update;x, Id = {i}, Exit code = 0x00000000 (cV = b.{i})"
        elif kind < 0.45:
            out.append(f"{stamp} 1244  5528                  Unknown( 10): GUID=d1317ae3-ad25-5d2d-0b1f-4e6c1bd5a2b4 (No Format Information found).")
            continue
        else:
            msg = f"Service routine {i} done"
        out.append(f"{stamp} 1244  5528  Agent           {msg}")
    return out


def classic_lines(n: int, seed: int = 0) -> list[str]:
    """Classic WindowsUpdate.log: local times whose zone comes from `Logging initialized` banners."""
    rng = random.Random(seed)
    out = []
    zones = ["+0530", "-0700", "+0100"]
    for i in range(n):
        t = f"2021-08-{28 + i // 1000:02d}\t{(i // 60) % 24:02d}:{i % 60:02d}:07:{rng.randrange(1000):03d}"
        if i % 37 == 0:
            out.append(f"{t}\t 576\ta70\tMisc\t===========  Logging initialized (build: 7.6.7600.256, tz: {zones[(i // 37) % 3]})  ===========")
        elif rng.random() < 0.3:
            out.append(f"{t}\t 896\tb10\tAgent\t  * WARNING: Exit code = 0x8024402C")
        elif rng.random() < 0.05:
            out.append(f"garbage line {i} without a prefix")
        else:
            out.append(f"{t}\t 896\tb10\tAgent\t  * Found {i} updates")
    return out


def worker_lines(n: int, seed: int = 0) -> list[str]:
    """worker.log records, some followed by traceback lines that fold into them."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ts = f"2024-05-14 02:{(i // 60) % 60:02d}:{i % 60:02d}"
        if rng.random() < 0.25:
            out.append(f"{ts} (1234)worker : Job state changed to failed")
            out += ["Traceback (most recent call last):", f'  File "x.py", line {i}', "ValueError: 0x80070005"]
        elif rng.random() < 0.1:
            out += [f"{ts} (1234)jrdsclient : [WARNING] call failed", ""]
        else:
            out.append(f"{ts} (1234)worker : Polling job {i}")
    return out


def oms_lines(n: int, seed: int = 0, day: int = 14) -> list[str]:
    rng = random.Random(seed)
    out = ["", f"2024-05-{day:02d} 02:00:07> " + "-" * 128]
    for i in range(n):
        ts = f"2024-05-{day:02d} 02:{(i // 60) % 60:02d}:{i % 60:02d}"
        if rng.random() < 0.3:
            out.append(f"{ts}> ERROR: Unexpected return code (100) from package manager on command: sudo apt-get -y install x")
            out.append("|\tE: dpkg was interrupted, you must manually run 'sudo dpkg --configure -a' to correct the problem.")
        else:
            out += [f"{ts}> Retrying the installation (attempt {i}).", "\tDEBUG: nothing to see"]
    return out


def text_lines(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = ["Job output saved from the portal"]
    for i in range(n):
        r = rng.random()
        if r < 0.3:
            out.append(f"5/1/2024 10:{i % 60:02d}:00 AM Exception from HRESULT: 0x8024402C step {i}")
        elif r < 0.4:
            out.append("")
        else:
            out.append(f"Step {i} completed")
    return out


def encode(lines: list[str], encoding: str = "utf-8", newline: str = "\n", bom: bool = False) -> bytes:
    data = (newline.join(lines) + newline).encode(encoding)
    if bom and encoding == "utf-16-le":
        data = b"\xff\xfe" + data
    return data


# -- helpers -------------------------------------------------------------------------------
def make_watcher(root: Path, out: Path, **kw) -> Watcher:
    kw.setdefault("interval", 0)
    kw.setdefault("partial_wait", 1e9)
    kw.setdefault("settle", 0)
    return Watcher(root, out, OPTS, echo=lambda _msg: None, **kw)


def batch(root: Path, tmp: Path) -> Path:
    out = tmp / f"batch-{time.monotonic_ns()}"
    run_scan([root], out, OPTS, jobs=1)
    return out


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def assert_same_tables(watch_out: Path, batch_out: Path) -> None:
    for name in TABLE_NAMES:
        a, b = pl.read_parquet(watch_out / f"{name}.parquet"), pl.read_parquet(batch_out / f"{name}.parquet")
        assert a.equals(b), f"{name}: watch {a.shape} != batch {b.shape}\n{a}\n{b}"
    sa, sb = summary(watch_out), summary(batch_out)
    for key in ("files", "files_skipped", "bytes", "lines", "records", "folded_lines", "rejects", "matches",
                "incidents", "accounted"):
        assert sa[key] == sb[key], (key, sa[key], sb[key])
    assert [(f["source"], f["lines"], f["records"]) for f in sa["sources"]] == \
        [(f["source"], f["lines"], f["records"]) for f in sb["sources"]]


def lines_by_source(out: Path) -> dict[str, int]:
    return {f["source"]: f["lines"] for f in summary(out)["sources"]}


def complete_lines(data: bytes, encoding: str = "utf-8") -> int:
    if encoding == "utf-16-le":
        return data[: len(data) - len(data) % 2].decode("utf-16-le", errors="replace").count("\n")
    return data.count(b"\n")


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


# -- reading -------------------------------------------------------------------------------
def test_random_pieces_give_exactly_the_lines_of_each_file(tmp_path: Path) -> None:
    """Appends in random pieces, cut anywhere (mid-line, mid-character, mid-BOM): at every
    cycle each file counts exactly its complete lines; at the end the tables equal a batch scan."""
    root = tmp_path / "in"
    files = {
        root / "SRV01" / "WindowsUpdate.log": (encode(etw_lines(150, 1)), "utf-8"),
        root / "SRV02" / "WindowsUpdate.log": (encode(classic_lines(200, 2), newline="\r\n"), "utf-8"),
        root / "SRV03" / "WindowsUpdate.log": (encode(etw_lines(60, 3), "utf-16-le", "\r\n", bom=True), "utf-16-le"),
        root / "lnx01" / "worker.log": (encode(worker_lines(100, 4)), "utf-8"),
        root / "lnx01" / "omsupdatemgmt.log": (encode(oms_lines(60, 5)), "utf-8"),
        root / "job-output.txt": (encode(text_lines(120, 6)), "utf-8"),
        # a pasted fragment: the first line has no prefix, so detection changes as the file grows
        root / "SRV04" / "pasted.log": (encode(["copied from the console:", *etw_lines(80, 7)]), "utf-8"),
    }
    for p in files:
        p.parent.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "out"
    w = make_watcher(root, out)
    rng = random.Random(42)
    written = dict.fromkeys(files, 0)
    while any(written[p] < len(d) for p, (d, _) in files.items()):
        for p, (data, _enc) in files.items():
            if written[p] < len(data) and rng.random() < 0.7:
                n = rng.choice([1, 2, 3, rng.randint(1, 300), rng.randint(300, 3000)])
                append(p, data[written[p]: written[p] + n])
                written[p] += n
        w.cycle()
        got = lines_by_source(out)
        for p, (data, enc) in files.items():
            logical = p.relative_to(root).as_posix()
            want = complete_lines(data[: written[p]], enc)
            assert got.get(logical, 0) == want, (logical, got.get(logical), want)
    w.cycle(final=True)
    assert_same_tables(out, batch(root, tmp_path))
    for table in TABLES:  # compaction keeps the part count of a file bounded
        names = [f.name.split("-")[0] for f in (out / "parts" / table).iterdir()]
        assert max((names.count(n) for n in set(names)), default=0) <= COMPACT_AT + 1


def test_a_last_line_without_newline_waits_then_counts_once(tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "SRV01").mkdir(parents=True)
    log = root / "SRV01" / "WindowsUpdate.log"
    lines = etw_lines(3, 9)
    log.write_text("\n".join(lines))  # the last line has no newline yet
    out = tmp_path / "out"
    w = make_watcher(root, out)
    w.cycle()
    assert summary(out)["lines"] == 2
    w.partial_wait = 0  # the writer went quiet: the line is read as it stands
    w.cycle()
    assert summary(out)["lines"] == 3
    append(log, b" and more of the same line\n" + encode(etw_lines(2, 10)))
    w.partial_wait = 1e9
    w.cycle()
    s = summary(out)
    assert s["lines"] == 5 and s["records"] == 5
    raw = pl.read_parquet(out / "matches.parquet").filter(pl.col("line_no") == 3)["raw"].to_list()
    assert all(r.endswith("of the same line") for r in raw)
    assert_same_tables(out, batch(root, tmp_path))


# -- rotation ------------------------------------------------------------------------------
def _story(tmp_path: Path, steps) -> tuple[Path, Path, Watcher]:
    """Run `steps(root, cycle)` against a fresh watcher; check the end against a batch scan."""
    root = tmp_path / "in"
    (root / "SRV01").mkdir(parents=True)
    out = tmp_path / "out"
    w = make_watcher(root, out)
    steps(root / "SRV01", w.cycle)
    w.cycle(final=True)
    assert_same_tables(out, batch(root, tmp_path))
    return root, out, w


def test_rename_rotation_continues_under_the_new_name(tmp_path: Path) -> None:
    first, second = etw_lines(200, 11, hour=1), etw_lines(50, 12, hour=5)
    head = encode(first[:120])

    def steps(d: Path, cycle) -> None:
        log = d / "WindowsUpdate.log"
        log.write_bytes(head + encode(first[120:])[:15])  # cut mid-line
        cycle()
        append(log, encode(first[120:])[15:])  # the rest, still unread when the file is renamed
        log.rename(d / "WindowsUpdate.old.log")
        (d / "WindowsUpdate.log").write_bytes(encode(second))
        cycle()
        wk = d / "worker.log"
        wk.write_bytes(encode(worker_lines(40, 13)))
        cycle()
        wk.rename(d / "worker.log.1")
        cycle()
        wk.write_bytes(encode(worker_lines(10, 14)))
        cycle()

    _, out, w = _story(tmp_path, steps)
    m = pl.read_parquet(out / "matches.parquet")
    assert set(m["source"]) >= {"SRV01/WindowsUpdate.old.log", "SRV01/WindowsUpdate.log", "SRV01/worker.log.1"}
    assert sum(e["reason"] == "renamed" for e in w.events) == 2
    assert summary(out)["lines"] == 200 + 50 + len(worker_lines(40, 13)) + len(worker_lines(10, 14))


def test_copytruncate_either_order(tmp_path: Path) -> None:
    a, b = worker_lines(60, 21), worker_lines(30, 22)

    def steps(d: Path, cycle) -> None:
        log = d / "worker.log"
        log.write_bytes(encode(a[:40]))
        cycle()
        append(log, encode(a[40:]))
        shutil.copyfile(log, d / "worker.log.1")  # copy seen together with the truncation
        with open(log, "r+b") as f:
            f.truncate(0)
        append(log, encode(b))
        cycle()
        other = d / "omsupdatemgmt.log"
        other.write_bytes(encode(oms_lines(30, 23)))
        cycle()
        shutil.copyfile(other, d / "omsupdatemgmt.log.1")
        cycle()  # the copy is seen before the truncation
        with open(other, "r+b") as f:
            f.truncate(0)
        cycle()
        append(other, encode(oms_lines(10, 24, day=15)))
        cycle()

    _, out, _ = _story(tmp_path, steps)
    assert summary(out)["lines"] == len(a) + len(b) + len(oms_lines(30, 23)) + len(oms_lines(10, 24))


def test_truncate_and_rewrite_with_the_same_first_bytes(tmp_path: Path) -> None:
    """Rewritten in place, longer than before, starting with the same lines: only the bytes before
    the checkpoint tell it apart; it is read as new and nothing is counted twice."""
    base = etw_lines(100, 31)

    def steps(d: Path, cycle) -> None:
        log = d / "WindowsUpdate.log"
        log.write_bytes(encode(base))
        cycle()
        with open(log, "r+b") as f:
            f.truncate(0)
            f.write(encode(base[:10] + etw_lines(150, 32, hour=3)))
        cycle()
        with open(log, "r+b") as f:  # truncated below the checkpoint
            f.truncate(100)
        cycle()
        append(log, encode(["", *etw_lines(5, 33)]))
        cycle()

    _, _, w = _story(tmp_path, steps)
    assert any(e["reason"] == "rewritten" for e in w.events)


def test_whole_file_rewrites(tmp_path: Path) -> None:
    """Get-WindowsUpdateLog regenerates its output (same start, more lines); omsupdatemgmt.log is
    replaced by each run with other content."""
    gen = etw_lines(300, 41)

    def steps(d: Path, cycle) -> None:
        wu = d / "WindowsUpdate.log"
        wu.write_bytes(encode(gen[:100]))
        cycle()
        tmp = d / "WindowsUpdate.log.tmp"
        tmp.write_bytes(encode(gen[:250]))
        os.replace(tmp, wu)  # a new file replaces the old one
        cycle()
        wu.write_bytes(encode(gen[:300]))  # rewritten in place (truncate + write)
        cycle()
        oms = d / "omsupdatemgmt.log"
        oms.write_bytes(encode(oms_lines(40, 42, day=14)))
        cycle()
        oms.write_bytes(encode(oms_lines(25, 43, day=15)))
        cycle()

    _, out, _ = _story(tmp_path, steps)
    assert summary(out)["lines"] == 300 + len(oms_lines(25, 43))


# -- restart, state, outputs ---------------------------------------------------------------
def test_restart_deletes_unnamed_parts_and_resumes(tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "SRV01").mkdir(parents=True)
    log = root / "SRV01" / "WindowsUpdate.log"
    lines = etw_lines(120, 51)
    log.write_bytes(encode(lines[:60]))
    out = tmp_path / "out"
    w = make_watcher(root, out)
    w.cycle()
    stray = out / "parts" / "matches" / "t0000001-999999999.parquet"
    shutil.copyfile(next((out / "parts" / "matches").iterdir()), stray)  # a chunk whose state never landed
    append(log, encode(lines[60:]))
    w2 = make_watcher(root, out)
    assert not stray.exists() and not w2.fresh
    w2.cycle(final=True)
    assert_same_tables(out, batch(root, tmp_path))
    state = json.loads((out / "watch-state.json").read_text())
    state["version"] = 999
    (out / "watch-state.json").write_text(json.dumps(state))
    w3 = make_watcher(root, out)  # a state of another version is not trusted: start over
    assert w3.fresh and not list((out / "parts" / "matches").iterdir())
    w3.cycle(final=True)
    assert_same_tables(out, batch(root, tmp_path))


def test_parts_are_one_dataset_for_polars_and_duckdb(tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "SRV01").mkdir(parents=True)
    log = root / "SRV01" / "WindowsUpdate.log"
    lines = etw_lines(400, 61)
    out = tmp_path / "out"
    w = make_watcher(root, out)
    for i in range(0, 400, 50):
        append(log, encode(lines[i:i + 50]))
        w.cycle()
    w.cycle(final=True)
    assert not [p for p in (out / "parts").rglob("*") if p.is_file() and not p.name.endswith(".parquet")]
    committed = pl.scan_parquet(out / "parts" / "matches" / "*.parquet").collect()
    provisional = [pl.read_parquet(p) for p in (out / ".watch" / "tail" / "matches").glob("*.parquet")]
    both = pl.concat([committed, *provisional]).sort(["source", "line_no", "signature_id", "code"])
    # the table adds what is derived when the tables are built: each row's incident and KB, and
    # names the parser in `format` (the parts hold the line's form, the table's format_variant)
    table = pl.read_parquet(out / "matches.parquet").drop("incident_id", "kb", "format")
    assert both.equals(table.rename({"format_variant": "format"}).select(both.columns))
    glob = str(out / "parts" / "matches" / "*.parquet")
    assert duckdb.sql(f"select count(*) from read_parquet('{glob}')").fetchall() == [(committed.height,)]


def test_archive_dropped_in_is_scanned_once(tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    out = tmp_path / "out"
    w = make_watcher(root, out)
    w.cycle()
    staging = tmp_path / "fleet.zip"
    with zipfile.ZipFile(staging, "w") as z:
        z.writestr("SRV07/WindowsUpdate.log", "\n".join(etw_lines(50, 71)) + "\n")
        z.writestr("lnx07/worker.log", "\n".join(worker_lines(20, 72)) + "\n")
    shutil.move(staging, root / "fleet.zip")
    w.cycle()  # first seen: waits for its size and time to settle
    w.cycle()
    scans = w.whole_scans
    assert scans == 1
    for _ in range(3):
        w.cycle()
    assert w.whole_scans == scans
    w.cycle(final=True)
    assert_same_tables(out, batch(root, tmp_path))
    assert "fleet.zip!SRV07/WindowsUpdate.log" in lines_by_source(out)


def test_event_exports_written_in_pieces_are_parsed_whole(tmp_path: Path) -> None:
    """Documents (XML, CSV, JSON, Event Viewer text) are not tailed: parsed again as a whole once
    they stop changing, even when their first bytes first looked like plain text."""
    from event_fixtures import write_samples

    src = tmp_path / "src"
    src.mkdir()
    root = tmp_path / "in"
    (root / "OMS01").mkdir(parents=True)
    out = tmp_path / "out"
    w = make_watcher(root, out)
    rng = random.Random(5)
    for p in write_samples(src, "OMS01"):
        data, pos = p.read_bytes(), 0
        while pos < len(data):
            n = rng.randint(1, 4000)
            append(root / "OMS01" / p.name, data[pos: pos + n])
            pos += n
            w.cycle()
    w.cycle(final=True)
    assert_same_tables(out, batch(root, tmp_path))
    assert summary(out)["incidents"] > 0


def test_problem_files_are_reported_and_do_not_stop_the_watcher(tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "SRV01").mkdir(parents=True)
    out = tmp_path / "out"
    w = make_watcher(root, out)
    (root / "SRV01" / "WindowsUpdate.log").symlink_to(root / "SRV01" / "missing.log")  # dangling link
    os.mkfifo(root / "SRV01" / "worker.log")  # a FIFO named like a log (never opened)
    (root / "SRV01" / "omsupdatemgmt.log").mkdir()  # a folder named like a log
    (root / "SRV01" / "CBS.log").write_bytes(b"\x00\x01\x02binary\x00" * 500)
    if os.geteuid() != 0:  # root reads through chmod 000, so this sub-case only runs unprivileged
        locked = root / "SRV01" / "locked.log"
        locked.write_text("secret\n")
        locked.chmod(0)
    big = root / "SRV01" / "big.log"
    big.write_bytes(encode(etw_lines(10, 81)))
    w.cycle()  # known to the watcher, so however the deletion falls it is reported
    append(big, encode(etw_lines(40000, 82)))
    remover = threading.Thread(target=lambda: (time.sleep(0.05), big.unlink()))
    remover.start()  # deleted while it is being read (or just before, or just after)
    w.cycle()
    remover.join()
    good = root / "SRV01" / "job-output.txt"
    good.write_text("Exception from HRESULT: 0x8024402C\n")
    w.cycle()
    w.cycle(final=True)
    s = summary(out)
    reasons = {(p["source"], p["reason"]) for p in s["problems"]}
    assert ("SRV01/WindowsUpdate.log", "unreadable") in reasons
    assert ("SRV01/worker.log", "special_file") in reasons
    assert {"source": "SRV01/CBS.log", "reason": "binary", "bytes": 5000} in s["skipped"]
    assert any(e["source"] == "SRV01/big.log" and e["reason"] == "vanished" for e in s["watch"]["events"])
    if os.geteuid() != 0:
        assert ("SRV01/locked.log", "unreadable") in reasons
    assert lines_by_source(out)["SRV01/job-output.txt"] == 1
    assert_same_tables(out, batch(root, tmp_path))


def test_windowsupdate_classic_zone_carries_across_reads(tmp_path: Path) -> None:
    """Times of classic lines depend on the last banner, which an incremental read may not see."""
    root = tmp_path / "in"
    (root / "SRV01").mkdir(parents=True)
    log = root / "SRV01" / "WindowsUpdate.log"
    lines = classic_lines(200, 91)
    out = tmp_path / "out"
    w = make_watcher(root, out)
    for i in range(0, 200, 7):
        append(log, encode(lines[i:i + 7]))
        w.cycle()
    w.cycle(final=True)
    assert_same_tables(out, batch(root, tmp_path))
    ts = pl.read_parquet(out / "matches.parquet")["ts"]
    assert ts.null_count() == 0


# -- the real command ----------------------------------------------------------------------
def _cmd(*args: str) -> list[str]:
    exe = Path(sys.executable).with_name("umtriage")
    return [str(exe), *args] if exe.exists() else [sys.executable, "-m", "umtriage.pipeline.cli", *args]


def _start(root: Path, out: Path, log: Path) -> subprocess.Popen:
    with open(log, "a") as err:
        return subprocess.Popen(_cmd("watch", str(root), "-o", str(out), "--interval", "0.3", "-q"),
                                stdout=subprocess.DEVNULL, stderr=err)


def _wait(pred, timeout: float = 60.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if pred():
                return True
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    return False


class Writer(threading.Thread):
    """Appends to several logs in random pieces (cut anywhere) until told to stop; rotates one."""

    def __init__(self, root: Path):
        super().__init__(daemon=True)
        self.root, self.stop = root, threading.Event()
        self.data = {
            root / "SRV01" / "WindowsUpdate.log": encode(etw_lines(30000, 101)),
            root / "lnx01" / "worker.log": encode(worker_lines(15000, 102)),
            root / "job-output.txt": encode(text_lines(15000, 103)),
        }
        self.rotated = False

    def run(self) -> None:
        rng = random.Random(7)
        pos = dict.fromkeys(self.data, 0)
        worker = self.root / "lnx01" / "worker.log"
        while not self.stop.is_set() and any(pos[p] < len(d) for p, d in self.data.items()):
            for p, d in self.data.items():
                n = rng.randint(1, 8000)
                append(p, d[pos[p]: pos[p] + n])
                pos[p] += n
            if not self.rotated and pos[worker] > 200_000:
                worker.rename(worker.with_name("worker.log.1"))
                self.data[worker] = encode(worker_lines(15000, 104))
                pos[worker] = 0
                self.rotated = True
            time.sleep(rng.random() * 0.01)


def test_kill_9_during_heavy_appends_then_restart(tmp_path: Path) -> None:
    root = tmp_path / "in"
    for d in ("SRV01", "lnx01"):
        (root / d).mkdir(parents=True)
    out, log = tmp_path / "out", tmp_path / "watch.err"
    writer = Writer(root)
    writer.start()
    proc = _start(root, out, log)
    orphans = []
    rng = random.Random(3)
    try:
        for _ in range(4):  # each kill lands at a random moment while this process reads and commits
            assert _wait(lambda p=proc.pid: summary(out)["watch"]["pid"] == p and summary(out)["lines"] > 0)
            time.sleep(rng.uniform(0, 0.4))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            proc = _start(root, out, log)
            assert _wait(lambda p=proc.pid: summary(out)["watch"]["pid"] == p)
            orphans.append(summary(out)["watch"]["orphan_parts_removed_at_start"])
        writer.stop.set()
        writer.join()
        files = [p.read_bytes() for p in root.rglob("*") if p.is_file()]
        complete = sum(complete_lines(d) for d in files)
        unterminated = sum(1 for d in files if d and not d.endswith(b"\n"))  # counted once the writer is idle
        assert _wait(lambda: summary(out)["lines"] in (complete, complete + unterminated)), \
            (summary(out)["lines"], complete, unterminated)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        writer.stop.set()
        if proc.poll() is None:
            proc.kill()
    assert writer.rotated
    print("parts of unfinished chunks removed at each restart:", orphans)
    assert_same_tables(out, batch(root, tmp_path))


def test_once_from_end_and_new_incidents_printed(tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "SRV01").mkdir(parents=True)
    log = root / "SRV01" / "WindowsUpdate.log"
    old = [line for line in etw_lines(30, 111) if "0x8024401C" in line]
    log.write_bytes(encode(old))
    out = tmp_path / "out"
    r = subprocess.run(_cmd("watch", str(root), "-o", str(out), "--once", "--from-end"), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert summary(out)["lines"] == 0 and "new incident" not in r.stdout
    new = ["2024/05/14 09:00:00.0000000 1244  5528  Agent           * END * Finding updates CallerId = Update;x, "
           "Id = 1, Exit code = 0x80072EE2 (cV = c.1)"]
    append(log, encode(new))
    r = subprocess.run(_cmd("watch", str(root), "-o", str(out), "--once"), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("new incident") == 1 and "0x80072EE2" in r.stdout
    m = pl.read_parquet(out / "matches.parquet")
    assert m["line_no"].to_list() == [len(old) + 1]
    r = subprocess.run(_cmd("watch", str(root), "-o", str(out), "--once"), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "new incident" not in r.stdout  # nothing new, nothing printed twice


def test_watch_window_option_is_used(tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "SRV01").mkdir(parents=True)
    (root / "SRV01" / "WindowsUpdate.log").write_bytes(encode(etw_lines(200, 121)))
    out = tmp_path / "out"
    w = make_watcher(root, out, window=timedelta(minutes=1))
    w.cycle(final=True)
    b = tmp_path / "b"
    run_scan([root], b, OPTS, jobs=1, window=timedelta(minutes=1))
    assert pl.read_parquet(out / "incidents.parquet").equals(pl.read_parquet(b / "incidents.parquet"))

