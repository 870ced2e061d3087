"""The output folder: bad -o paths, its own tables never read back, stale files, the lock, the
atomic switch under kill -9, a full disk, SIGTERM, a removed folder under watch. Real CLI runs."""

from __future__ import annotations

import fcntl
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from conftest import SAMPLES, run_cli

#: Hosts samples/ has had from the start (other machines may be added beside them).
SAMPLE_HOSTS = {"srv-wsus01", "win10-app02", "hyb-worker03", "lnx-web04", "win-sql05", "lnx-db06"}
EXE = str(Path(sys.executable).with_name("umtriage"))
ETW = "2024/05/14 09:{m:02d}:{s:02d}.1000000 1244  5528  Agent           *FAILED* [8024402C] Method failed [Step{k}]"


def _not_writable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write into (root ignores modes: use a kernel folder then)."""
    if os.geteuid() == 0:
        return Path("/proc/sys")
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def _fleet(root: Path, hosts: int, lines: int) -> Path:
    for h in range(hosts):
        d = root / f"SRV{h:03d}"
        d.mkdir(parents=True)
        body = "\n".join(ETW.format(m=k // 60 % 60, s=k % 60, k=k) for k in range(lines))
        (d / "WindowsUpdate.log").write_text(body + "\n")
    return root


@pytest.mark.parametrize("command", ["scan", "watch"])
def test_unusable_output_folders_exit_2_with_one_line(tmp_path: Path, command: str) -> None:
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    cases = [(a_file, "is a file"), (a_file / "sub", "is a file"), (_not_writable_folder(tmp_path), "not writable")]
    for out, says in cases:
        args = ["scan", str(SAMPLES)] if command == "scan" else ["watch", str(SAMPLES), "--once"]
        r = run_cli(*args, "-o", str(out), "-q")
        assert r.returncode == 2, (out, r.stderr)
        assert says in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_an_output_folder_inside_the_input_is_never_read_back(tmp_path: Path) -> None:
    root = tmp_path / "in"
    shutil.copytree(SAMPLES, root)
    for _ in range(2):
        r = run_cli("scan", str(root), "-o", str(root / "out"), "-q")
        assert r.returncode == 0, r.stderr
        summary = json.loads((root / "out" / "summary.json").read_text())
        assert "out" not in summary["hosts"]
        assert not [s for s in summary["sources"] if s["source"].startswith("out/")]
    first = pl.read_parquet(root / "out" / "incidents.parquet")
    assert set(first["host"]) >= SAMPLE_HOSTS


def test_a_run_leaves_no_table_file_of_the_previous_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli("scan", str(SAMPLES), "-o", str(out), "--format", "csv", "--format", "jsonl", "-q").returncode == 0
    assert (out / "incidents.csv").exists() and (out / "matches.jsonl").exists()
    (out / "notes.txt").write_text("mine")  # not a table name: left alone
    (out / "mine.csv").write_text("a,b")  # nor this
    assert run_cli("scan", str(SAMPLES / "SRV-WSUS01"), "-o", str(out), "-q").returncode == 0
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert names == ["current", "incidents.parquet", "matches.parquet", "mine.csv", "notes.txt", "rejects.parquet",
                     "report.html", "summary.json", "unmatched.parquet", "updates.parquet"]
    assert len(list((out / ".runs").iterdir())) <= 2  # this run and the one before, for readers still on it
    assert set(pl.read_parquet(out / "incidents.parquet")["host"]) == {"srv-wsus01"}


def test_a_second_writer_is_refused_while_the_folder_is_locked(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".lock", "a") as held:  # what a running scan or watch holds
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        for args in (["scan", str(SAMPLES)], ["watch", str(SAMPLES), "--once"]):
            r = run_cli(*args, "-o", str(out), "-q")
            assert r.returncode == 2 and "another umtriage" in r.stderr and "Traceback" not in r.stderr
    assert run_cli("scan", str(SAMPLES), "-o", str(out), "-q").returncode == 0


def test_concurrent_scans_into_one_folder_never_mix(tmp_path: Path) -> None:
    a, b = _fleet(tmp_path / "a", 40, 400), SAMPLES
    out = tmp_path / "out"
    procs = [subprocess.Popen([EXE, "scan", str(p), "-o", str(out), "-q", "--jobs", "1"], stderr=subprocess.PIPE,
                              text=True) for p in (a, b, a, b)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert all(rc in (0, 2) for rc, _ in results) and any(rc == 0 for rc, _ in results)
    for rc, err in results:
        assert "Traceback" not in err
        if rc == 2:
            assert "another umtriage" in err
    summary = json.loads((out / "current" / "summary.json").read_text())
    hosts = set(pl.read_parquet(out / "current" / "incidents.parquet")["host"])
    assert hosts == set(summary["hosts"])  # the tables and the summary of one run
    if summary["inputs"] == [str(a)]:
        assert hosts == {f"srv{h:03d}" for h in range(40)}
    else:
        assert hosts >= SAMPLE_HOSTS and not any(h.startswith("srv0") for h in hosts)


def test_kill_9_while_writing_leaves_the_previous_run_whole(tmp_path: Path) -> None:
    big = _fleet(tmp_path / "big", 60, 2000)
    out = tmp_path / "out"
    assert run_cli("scan", str(SAMPLES), "-o", str(out), "-q").returncode == 0
    before = (out / "summary.json").read_bytes()
    for delay in (0.3, 0.8, 1.5):
        p = subprocess.Popen([EXE, "scan", str(big), "-o", str(out), "-q", "--jobs", "1"])
        time.sleep(delay)
        p.kill()
        p.wait(timeout=60)
        summary = json.loads((out / "summary.json").read_text())
        inc = pl.read_parquet(out / "incidents.parquet")
        assert set(inc["host"]) == set(summary["hosts"])  # never new tables beside an old summary
        if summary["inputs"] == [str(SAMPLES)]:
            assert (out / "summary.json").read_bytes() == before
    assert run_cli("scan", str(SAMPLES), "-o", str(out), "-q").returncode == 0
    assert len(list((out / ".runs").iterdir())) <= 2  # the half-written runs are gone


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))  # writes past 64 KiB fail (EFBIG)


def test_a_full_disk_is_a_clear_error_and_keeps_the_previous_tables(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli("scan", str(SAMPLES), "-o", str(out), "-q").returncode == 0
    before = pl.read_parquet(out / "incidents.parquet")
    big = _fleet(tmp_path / "big", 20, 2000)
    r = subprocess.run([EXE, "scan", str(big), "-o", str(out), "-q", "--jobs", "1"], capture_output=True, text=True,
                       preexec_fn=_limit_file_size, timeout=300)
    assert r.returncode == 2, r.stderr
    assert "cannot write the tables" in r.stderr and "Traceback" not in r.stderr
    assert pl.read_parquet(out / "incidents.parquet").equals(before)
    assert len(list((out / ".runs").iterdir())) == 1  # the failed run's folder is gone


def test_sigterm_ends_a_parallel_scan_cleanly(tmp_path: Path) -> None:
    big = _fleet(tmp_path / "big", 200, 1500)
    out = tmp_path / "out"
    p = subprocess.Popen([EXE, "scan", str(big), "-o", str(out), "-q", "--jobs", "2"], stderr=subprocess.PIPE,
                         text=True)
    deadline = time.time() + 60
    while not list(out.glob(".runs/*/.parts/*.parquet")) and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    err = p.communicate(timeout=120)[1]
    assert p.returncode in (143, 0), err
    assert "leaked" not in err and "Traceback" not in err, err
    assert not list(out.glob("**/.parts"))
    if p.returncode == 143:
        assert not (out / "current").exists() and not list((out / ".runs").iterdir())


def test_watch_makes_a_removed_output_folder_again(tmp_path: Path) -> None:
    root = _fleet(tmp_path / "in", 2, 20)
    out = tmp_path / "out"
    p = subprocess.Popen([EXE, "watch", str(root), "-o", str(out), "--interval", "0.2", "-q"],
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (out / "incidents.parquet").exists() and time.time() < deadline:
            time.sleep(0.1)
        shutil.rmtree(out)
        deadline = time.time() + 60
        while not (out / "incidents.parquet").exists() and time.time() < deadline:
            time.sleep(0.1)
        assert set(pl.read_parquet(out / "incidents.parquet")["host"]) == {"srv000", "srv001"}
    finally:
        p.send_signal(signal.SIGTERM)
        err = p.communicate(timeout=60)[1]
    assert p.returncode == 0, err
    assert "is gone; making it again" in err and "Traceback" not in err


def test_an_output_folder_removed_during_a_scan_is_a_clear_error(tmp_path: Path) -> None:
    big = _fleet(tmp_path / "big", 200, 1500)
    out = tmp_path / "out"
    p = subprocess.Popen([EXE, "scan", str(big), "-o", str(out), "-q", "--jobs", "2"], stderr=subprocess.PIPE,
                         text=True)
    deadline = time.time() + 60
    while not list(out.glob(".runs/*/.parts/*.parquet")) and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    shutil.rmtree(out)
    err = p.communicate(timeout=120)[1]
    assert p.returncode == 2, err
    assert "the folder is gone" in err and "Traceback" not in err


def _can_mount_tmpfs(where: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(where)], capture_output=True)
    return r.returncode == 0


def test_a_really_full_disk_is_a_clear_error(tmp_path: Path) -> None:
    """ENOSPC from a real 128 KiB tmpfs (needs root to mount one; the RLIMIT test covers the rest)."""
    disk = tmp_path / "disk"
    if not _can_mount_tmpfs(disk):
        pytest.skip("mounting a tmpfs needs root")
    try:
        big = _fleet(tmp_path / "big", 60, 2000)
        free = os.statvfs(disk).f_bfree
        r = run_cli("scan", str(big), "-o", str(disk / "out"), "-q", "--jobs", "1")
        assert r.returncode == 2, r.stderr
        assert "no space left on the device" in r.stderr and "Traceback" not in r.stderr
        assert not list((disk / "out" / ".runs").iterdir())
        assert os.statvfs(disk).f_bfree >= free - 2  # the failed run left nothing behind (a folder or two)
        # report.html carries plotly.js (about 5 MB): a run that succeeds needs a bigger disk
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        small = run_cli("scan", str(SAMPLES / "SRV-WSUS01"), "-o", str(disk / "out"), "-q")
        assert small.returncode == 0, small.stderr
    finally:
        subprocess.run(["umount", str(disk)], check=False)
