"""Command-line edges a new user trips over, each through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
from conftest import SAMPLES, run_cli
from umtriage.patterns.catalog import load_catalog

EXE = str(Path(sys.executable).with_name("umtriage"))
SEVERITIES = ("info", "low", "medium", "high", "critical")
FAIL = "2024/05/14 09:00:00.1000000 1244  5528  Agent           * END * Finding updates Id = 1, Exit code = 0x8024402C"
OK = "2024/05/14 10:00:00.1000000 1244  5528  Agent           * END * Finding updates Id = 2, Exit code = 0x00000000"


def _host(tmp_path: Path, *lines: str) -> Path:
    root = tmp_path / "in" / "SRV01"
    root.mkdir(parents=True)
    (root / "WindowsUpdate.log").write_text("\n".join(lines) + "\n")
    return root


def test_fail_on_counts_unresolved_incidents_unless_fail_on_any(tmp_path: Path) -> None:
    resolved = _host(tmp_path, FAIL, OK)
    assert run_cli("scan", str(resolved), "-o", str(tmp_path / "o"), "-q", "--fail-on", "high").returncode == 0
    r = run_cli("scan", str(resolved), "-o", str(tmp_path / "o"), "-q", "--fail-on", "high", "--fail-on-any")
    assert r.returncode == 1
    (resolved / "WindowsUpdate.log").write_text(f"{FAIL}\n")
    assert run_cli("scan", str(resolved), "-o", str(tmp_path / "o"), "-q", "--fail-on", "high").returncode == 1


def test_refused_arguments_exit_2_with_a_reason(tmp_path: Path) -> None:
    have = {s.severity for s in load_catalog().active()}
    top = max(SEVERITIES.index(s) for s in have)
    out = str(tmp_path / "o")
    cases = [(["--window", "90"], "a number and a unit"),
             (["--format", "windowsupdate", "--format", "evtx"], "force one parser at most"),
             (["--fail-on-any"], "needs --fail-on")]
    cases += [(["--fail-on", s], "no signature has this severity") for s in SEVERITIES[top + 1:]]
    for extra, says in cases:
        r = run_cli("scan", str(SAMPLES), "-o", out, "-q", *extra)
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, (extra, r.stderr)
    assert run_cli("scan", str(SAMPLES), "-o", out, "-q", "--fail-on", SEVERITIES[top]).returncode == 1
    assert run_cli("scan", str(SAMPLES), "-o", out, "-q", "--window", "90m").returncode == 0


def test_assume_tz_takes_a_negative_offset(tmp_path: Path) -> None:
    root = _host(tmp_path, FAIL)
    utc = run_cli("scan", str(root), "-o", str(tmp_path / "utc"), "-q")
    east = run_cli("scan", str(root), "-o", str(tmp_path / "minus5"), "-q", "--assume-tz", "-05:00")
    assert utc.returncode == east.returncode == 0, east.stderr
    a = pl.read_parquet(tmp_path / "utc" / "matches.parquet")["ts"][0]
    b = pl.read_parquet(tmp_path / "minus5" / "matches.parquet")["ts"][0]
    assert (b - a).total_seconds() == 5 * 3600


def test_watch_writes_csv_when_asked(tmp_path: Path) -> None:
    r = run_cli("watch", str(SAMPLES), "-o", str(tmp_path / "w"), "--once", "-q", "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert pl.read_csv(tmp_path / "w" / "incidents.csv").height == pl.read_parquet(
        tmp_path / "w" / "incidents.parquet").height > 0


def test_explain_takes_ids_unsigned_decimals_and_names_success() -> None:
    by_id = run_cli("explain", "hresult-8024402c")
    assert by_id.returncode == 0 and "hresult-8024402c: Windows Update cannot resolve" in by_id.stdout
    unsigned = run_cli("explain", "2149859372")
    assert unsigned.returncode == 0 and "0x8024402C" in unsigned.stdout and "MATCH" in unsigned.stdout
    ok = run_cli("explain", "0x00000000")
    assert ok.returncode == 0 and "S_OK" in ok.stdout and "not an error" in ok.stdout


def test_patterns_suggest_on_a_whole_line_gives_a_signature_that_checks(tmp_path: Path) -> None:
    line = ("2024/03/12 19:50:05.9014272 19724 12036 ProtocolTalker  *FAILED* [8024402C] Recovery attempt failed "
            "for {855E8A7C-ECB4-4CA3-B045-1DFA50104289} after 3 tries")
    for text, where in ((line, "line"), ("widget <num> could not reach <url>", "template")):
        folder = tmp_path / where
        folder.mkdir()
        r = run_cli("patterns", "suggest", text, "-o", str(folder))
        assert r.returncode == 0, r.stderr
        body = next(folder.glob("*.toml")).read_text()
        phrase = body.split("phrases = [", 1)[1].split("]\n", 1)[0]
        assert "2024" not in phrase and "19724" not in phrase and "protocoltalker" not in phrase
        check = run_cli("patterns", "check", str(folder))
        assert check.returncode == 0 and "0 problems" in check.stdout, check.stdout


def test_a_code_in_a_line_rejected_as_too_long_is_still_counted(tmp_path: Path) -> None:
    root = tmp_path / "in" / "SRV01"
    root.mkdir(parents=True)
    long = f"2024/05/14 09:00:00.1000000 1244  5528  Agent   *FAILED* [8024402C] {'x' * (1 << 20)} hr = 0x80070005"
    (root / "WindowsUpdate.log").write_text(f"{FAIL}\n{long}\n")
    r = run_cli("scan", str(root), "-o", str(tmp_path / "o"), "-q")
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["rejects_by_reason"] == {"line_too_long": 1} and s["accounted"]
    assert s["codes_in_rejected_lines"] == {"0x80070005": 1, "0x8024402C": 1}
    raw = pl.read_parquet(tmp_path / "o" / "rejects.parquet")["raw"][0]
    assert len(raw) <= 2000 and raw.endswith("[line cut; codes in it: 0x8024402C 0x80070005]")


def test_piped_output_without_columns_is_120_wide(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    r = subprocess.run([EXE, "scan", str(SAMPLES), "-o", str(tmp_path / "o")], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    table = [ln for ln in r.stdout.splitlines() if ln.startswith(("┃", "│", "┏", "└"))]
    assert table and max(len(ln) for ln in table) == 120
    # wrapped cells keep their words whole: every word of a shown title is a token of the output
    tokens = set(r.stdout.replace("│", " ").split())
    inc = pl.read_parquet(tmp_path / "o" / "incidents.parquet").filter(pl.col("state") == "current")
    words = {w for t in inc["title"] for w in t.split()}
    assert words and words <= tokens, words - tokens
