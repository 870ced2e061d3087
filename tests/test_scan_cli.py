"""End to end through the real `umtriage` command: tables, accounting, determinism, exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from conftest import SAMPLES, run_cli

CLASSIC_FAIL = "2024-03-04\t08:00:24:120\t 896\tb10\tAgent\t  * WARNING: Exit code = 0x8024402C"
CLASSIC_OK = "2024-03-04\t{t}\t 896\tb10\tAgent\t  * Exit code = 0x00000000"
ETW_FAIL = "2024/05/13 21:03:14.9931102 1244  5528  Agent           * END * Finding updates CallerId = Update;x, Id = 12, " \
           "Exit code = 0x8024401C (cV = a.1)"
ETW_OK = "2024/05/14 09:41:20.0200000 7340  6120  Agent           * END * Finding updates CallerId = Update;x, Id = 31, " \
         "Exit code = 0x00000000 (cV = b.1)"


@pytest.fixture(scope="module")
def sample_scan(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out")
    r = run_cli("scan", str(SAMPLES), "-o", str(out), "--format", "csv", "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    return out


def test_scan_writes_every_table_with_the_contract_columns(sample_scan: Path) -> None:
    inc = pl.read_parquet(sample_scan / "incidents.parquet")
    for col in ("incident_id", "host", "signature_id", "scenario", "code", "code_name", "title", "severity",
                "first_seen", "last_seen", "count", "sources", "evidence", "score", "cause", "resolution", "doc_url",
                "resolved_at", "current"):
        assert col in inc.columns
    m = pl.read_parquet(sample_scan / "matches.parquet")
    for col in ("host", "source", "format", "line_no", "byte_offset", "ts", "component", "level", "message",
                "signature_id", "scenario", "code", "score"):
        assert col in m.columns
    rej = pl.read_parquet(sample_scan / "rejects.parquet")
    assert set(rej.columns) >= {"source", "line_no", "reason", "raw"}
    for name in ("incidents", "matches", "rejects", "unmatched"):
        assert (sample_scan / f"{name}.csv").exists() and (sample_scan / f"{name}.jsonl").exists()
    assert inc["incident_id"].n_unique() == inc.height
    assert inc["evidence"].list.len().max() <= 5


def test_summary_accounts_for_every_line(sample_scan: Path) -> None:
    s = json.loads((sample_scan / "summary.json").read_text())
    assert s["lines"] == s["records"] + s["folded_lines"] + s["rejects"]
    assert s["accounted"] is True
    assert s["rejects"] == sum(s["rejects_by_reason"].values())
    per_file = sum(f["lines"] for f in s["sources"])
    assert per_file == s["lines"]
    assert s["incidents"] == pl.read_parquet(sample_scan / "incidents.parquet").height


def test_sample_hosts_and_seed_codes_are_found(sample_scan: Path) -> None:
    inc = pl.read_parquet(sample_scan / "incidents.parquet")
    got = set(zip(inc["host"], inc["code"], strict=True))
    assert ("srv-wsus01", "0x8024402C") in got
    assert ("srv-wsus01", "0x80072EE2") in got
    assert ("win10-app02", "0x8024401C") in got
    assert ("win10-app02", "0x80070422") in got
    wsus = inc.filter((pl.col("host") == "srv-wsus01") & (pl.col("code") == "0x8024402C")).row(0, named=True)
    assert wsus["scenario"] == "hresult" and wsus["signature_id"] == "hresult-8024402c"
    assert wsus["resolved_at"] is not None and wsus["resolved_at"] > wsus["last_seen"]


def test_same_input_gives_byte_identical_tables(sample_scan: Path, tmp_path: Path) -> None:
    r = run_cli("scan", str(SAMPLES), "-o", str(tmp_path), "--format", "csv", "--jobs", "1")
    assert r.returncode == 0, r.stderr
    for name in ("incidents", "matches", "rejects", "unmatched"):
        assert (tmp_path / f"{name}.parquet").read_bytes() == (sample_scan / f"{name}.parquet").read_bytes(), name
        assert (tmp_path / f"{name}.csv").read_bytes() == (sample_scan / f"{name}.csv").read_bytes(), name


def test_polars_threads_follow_the_process_plan(tmp_path: Path) -> None:
    # with several scanning processes each gets one polars thread (more only oversubscribe the
    # cores); a scan too small to be split keeps polars' own threads. Both are decided before
    # polars is imported, from the input size alone.
    env = {k: v for k, v in os.environ.items() if k not in ("POLARS_MAX_THREADS", "_RJEM_MALLOC_CONF")}
    block = (ETW_FAIL + "\r\n" + ETW_OK + "\r\n").encode() * 2000
    for host in ("SRV-BIG01", "SRV-BIG02"):  # two files of 34 MB: two work items, 68 MB in all
        (tmp_path / "in" / host).mkdir(parents=True)
        with open(tmp_path / "in" / host / "WindowsUpdate.log", "wb") as f:
            for _ in range(34 * 1024 * 1024 // len(block) + 1):
                f.write(block)
    for inp, parallel in ((SAMPLES, False), (tmp_path / "in", True)):
        out = tmp_path / ("big" if parallel else "small")
        r = run_cli("scan", str(inp), "-o", str(out), "--jobs", "2", "-q", env=env)
        assert r.returncode == 0, r.stderr
        run = json.loads((out / "summary.json").read_text())["run"]
        assert run["jobs"] == 2
        assert run["processes"] == (2 if parallel else 1)
        assert (run["polars_threads"] == 1) == parallel or (os.cpu_count() or 1) == 1


def test_parallel_guess_follows_the_plan_rules(tmp_path: Path) -> None:
    # the CLI guesses from directory entries (before polars loads) whether the scan will use
    # several processes; sparse files give the sizes without writing the bytes
    from umtriage.pipeline.procenv import PARALLEL_MIN_BYTES, PARALLEL_MIN_FILES, SPLIT_MIN_BYTES, will_run_parallel

    def sparse(name: str, size: int) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as f:
            f.truncate(size)
        return p

    big = sparse("one/WindowsUpdate.log", SPLIT_MIN_BYTES)
    assert will_run_parallel([big])  # one file, cut into ranges
    assert not will_run_parallel([sparse("zip/fleet.zip", SPLIT_MIN_BYTES)])  # archives are not cut
    assert not will_run_parallel([sparse("mid/WindowsUpdate.log", SPLIT_MIN_BYTES - 1)])  # one unit
    sparse("two/a.log", PARALLEL_MIN_BYTES // 2)
    assert not will_run_parallel([tmp_path / "two"])  # too few bytes
    sparse("two/b.log", PARALLEL_MIN_BYTES // 2)
    assert will_run_parallel([tmp_path / "two"])  # two units, enough bytes
    assert not will_run_parallel([SAMPLES])
    for k in range(PARALLEL_MIN_FILES):  # many small files: their cost is per file, not per byte
        sparse(f"many/H{k:03d}/worker.log", 100)
    assert will_run_parallel([tmp_path / "many"])


def test_incident_window_splits_bursts(tmp_path: Path) -> None:
    host = tmp_path / "in" / "SRV09"
    host.mkdir(parents=True)
    lines = [CLASSIC_FAIL, CLASSIC_FAIL.replace("08:00:24", "09:00:24"), CLASSIC_FAIL.replace("08:00:24", "20:00:24")]
    (host / "WindowsUpdate.log").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert run_cli("scan", str(tmp_path / "in"), "-o", str(out)).returncode == 0
    inc = pl.read_parquet(out / "incidents.parquet").filter(pl.col("code") == "0x8024402C")
    assert inc["count"].to_list() == [2, 1]
    out2 = tmp_path / "out2"
    assert run_cli("scan", str(tmp_path / "in"), "-o", str(out2), "--window", "24h").returncode == 0
    assert pl.read_parquet(out2 / "incidents.parquet").filter(pl.col("code") == "0x8024402C")["count"].to_list() == [3]


def test_later_success_resolves_and_last_failure_is_current(tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "WIN01").mkdir(parents=True)
    (root / "WIN01" / "WindowsUpdate.log").write_text("\n".join([ETW_FAIL, ETW_OK]) + "\n")
    (root / "WIN02").mkdir()
    (root / "WIN02" / "WindowsUpdate.log").write_text(ETW_FAIL + "\n")
    out = tmp_path / "out"
    assert run_cli("scan", str(root), "-o", str(out)).returncode == 0
    inc = pl.read_parquet(out / "incidents.parquet").filter(pl.col("code") == "0x8024401C")
    by_host = {r["host"]: r for r in inc.iter_rows(named=True)}
    assert by_host["win01"]["resolved_at"] is not None and not by_host["win01"]["current"]
    assert by_host["win02"]["resolved_at"] is None and by_host["win02"]["current"]


def test_host_from_flag_for_a_single_file_and_case_folding(tmp_path: Path) -> None:
    f = tmp_path / "WindowsUpdate.log"
    f.write_text(ETW_FAIL + "\n")
    out = tmp_path / "o1"
    assert run_cli("scan", str(f), "-o", str(out), "--host", "SRV77.contoso.local").returncode == 0
    assert pl.read_parquet(out / "incidents.parquet")["host"].unique().to_list() == ["srv77"]
    out = tmp_path / "o2"
    assert run_cli("scan", str(f), "-o", str(out)).returncode == 0
    assert pl.read_parquet(out / "incidents.parquet")["host"].unique().to_list() == [tmp_path.name.lower()]


def test_exit_codes(tmp_path: Path) -> None:
    r = run_cli("scan", str(tmp_path / "missing"), "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "no such file" in r.stderr
    r = run_cli("scan", str(SAMPLES), "-o", str(tmp_path / "o"), "--fail-on", "high", "-q")
    assert r.returncode == 1 and r.stdout == ""
    (tmp_path / "calm").mkdir()
    (tmp_path / "calm" / "WindowsUpdate.log").write_text(ETW_OK + "\n")
    r = run_cli("scan", str(tmp_path / "calm"), "-o", str(tmp_path / "o2"), "--fail-on", "low")
    assert r.returncode == 0
    r = run_cli("scan", str(SAMPLES), "-o", str(tmp_path / "o3"), "--assume-tz", "Mars/Olympus")
    assert r.returncode == 2 and "time zone" in r.stderr
    r = run_cli("scan", str(SAMPLES), "-o", str(tmp_path / "o3"), "--format", "xlsx")
    assert r.returncode == 2


def test_csv_cells_cannot_inject_formulas(tmp_path: Path) -> None:
    host = tmp_path / "in" / "EVIL01"
    host.mkdir(parents=True)
    (host / "job-output.txt").write_text("=HYPERLINK(\"http://x\") Exception from HRESULT: 0x8024402C\n"
                                         "@SUM(1) error 0x80070005\n")
    out = tmp_path / "out"
    assert run_cli("scan", str(tmp_path / "in"), "-o", str(out), "--format", "csv").returncode == 0
    text = (out / "matches.csv").read_text()
    assert "'=HYPERLINK" in text and "'@SUM" in text
    assert "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text
    m = pl.read_parquet(out / "matches.parquet")
    assert m["message"].str.starts_with("=HYPERLINK").any()  # parquet keeps the data as it was


def test_explain_names_the_signature(cli) -> None:
    r = cli("explain", "8024402c")
    assert r.returncode == 0 and "hresult-8024402c" in r.stdout and "MATCH" in r.stdout
    r = cli("explain", "-2145107924")
    assert r.returncode == 0 and "hresult-8024402c" in r.stdout


def test_formats_and_patterns_commands(cli) -> None:
    r = cli("formats")
    assert r.returncode == 0 and "windowsupdate" in r.stdout and "text" in r.stdout
    r = cli("patterns", "check")
    assert r.returncode == 0 and " 0 problems" in r.stdout
    r = cli("patterns", "list")
    assert r.returncode == 0 and "hresult-8024402c" in r.stdout


def test_terminal_report_stays_short_for_a_fleet(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    for i in range(30):
        (root / f"SRV{i:02d}").mkdir(parents=True)
        line = ETW_FAIL.replace("0x8024401C", "0x8024000C" if i % 3 else "0x80070005")  # trace (info) vs high
        (root / f"SRV{i:02d}" / "WindowsUpdate.log").write_text(line + "\n")
    r = run_cli("scan", str(root), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert "... and 5 more hosts" in r.stdout
    # hosts are shown as their folders write them (host_display)
    listed = [h for h in (f"SRV{i:02d}" for i in range(30)) if f"│ {h} " in r.stdout.split("Most severe")[0]]
    assert len(listed) == 25
    assert all(f"SRV{i:02d}" in listed for i in range(0, 30, 3))  # the access-denied hosts rank first


def _processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds `marker` (children inherit it, whoever adopts them)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_workers_started_early_end_when_the_scan_cannot_start(tmp_path: Path) -> None:
    # a parallel-sized input starts the worker processes before the output is checked; a busy
    # output folder must still end the run at once, with its message and no process left behind
    import fcntl
    import subprocess
    import sys
    import uuid

    from umtriage.pipeline.procenv import PARALLEL_MIN_BYTES

    for host in ("SRV-A", "SRV-B"):
        (tmp_path / "in" / host).mkdir(parents=True)
        with open(tmp_path / "in" / host / "WindowsUpdate.log", "wb") as f:
            f.truncate(PARALLEL_MIN_BYTES)  # sparse: sizes only, never read
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        marker = f"UMTRIAGE_TEST_RUN={uuid.uuid4().hex}"
        env = {**os.environ, "UMTRIAGE_TEST_RUN": marker.partition("=")[2]}
        p = subprocess.Popen([sys.executable, "-m", "umtriage.pipeline.cli", "scan", str(tmp_path / "in"),
                              "-o", str(out), "-q", "--jobs", "2"], stderr=subprocess.PIPE, text=True, env=env)
        err = p.communicate(timeout=120)[1]
    assert p.returncode == 2, err
    assert "another umtriage scan or watch is writing" in err and "Traceback" not in err
    assert _processes_with(marker) == []


def test_every_scan_returns_freed_pages_within_a_second_unless_the_user_chose(tmp_path: Path) -> None:
    # polars' allocator reads _RJEM_MALLOC_CONF once, at import: a scan in one process gets the
    # parallel scan's allocator settings too (not its one polars thread), set before that import;
    # a value the user set is kept
    script = ("import os, sys; from umtriage.pipeline import cli; code = cli.main(sys.argv[1:]); "
              "print(os.environ.get('_RJEM_MALLOC_CONF'), os.environ.get('POLARS_MAX_THREADS'), "
              "'polars' in sys.modules); sys.exit(code)")
    base = {k: v for k, v in os.environ.items() if k not in ("POLARS_MAX_THREADS", "_RJEM_MALLOC_CONF")}
    from umtriage.pipeline.procenv import ALLOCATOR_ENV

    for given, expected in ((None, ALLOCATOR_ENV["_RJEM_MALLOC_CONF"]), ("narenas:2", "narenas:2")):
        env = base if given is None else {**base, "_RJEM_MALLOC_CONF": given}
        out = tmp_path / f"out-{given}"
        r = subprocess.run([sys.executable, "-c", script, "scan", str(SAMPLES), "-o", str(out), "-q", "--jobs", "1"],
                           capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        conf, threads, imported = r.stdout.split()
        # polars puts its own defaults in front at import; jemalloc lets the later options win
        assert conf.endswith(expected) and (given is None or "narenas:1" not in conf)
        assert (threads, imported) == ("None", "True")
        assert json.loads((out / "summary.json").read_text())["accounted"]
