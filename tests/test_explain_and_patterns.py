"""`explain`, user signatures (`--patterns`), `patterns check` and `patterns suggest`, and
unknown problems kept in unmatched.parquet."""

import tomllib
from pathlib import Path

import polars as pl
import pytest
from conftest import run_cli

ETW = "2024/05/13 21:03:14.99{n:05d} 1244  5528  Agent           {msg}"


@pytest.mark.parametrize(
    ("query", "signature"),
    [
        ("0x8024402C", "hresult-8024402c"),
        ("-2145107924", "hresult-8024402c"),
        ("Machine is already registered to a different account", "machine-already-registered"),
        ("Data collection stopped due to daily limit of free data reached", "nologs-daily-quota"),
        ("Access is denied. (Exception form HRESULT: 0x80070005(E_ACCESSDENIED))",
         "machine-unable-to-communicate-access-denied"),
    ],
)
def test_explain_names_the_right_signature(query: str, signature: str) -> None:
    r = run_cli("explain", query)
    assert r.returncode == 0, r.stderr
    first_match = next(line for line in r.stdout.splitlines() if "MATCH" in line)
    assert signature in r.stdout
    assert "MATCH" in first_match


def test_explain_of_noise_says_nothing_matched() -> None:
    r = run_cli("explain", "the weather is nice today")
    assert r.returncode == 1
    assert "MATCH" not in r.stdout


def _log(tmp_path: Path, lines: list[str]) -> Path:
    host = tmp_path / "in" / "WIN07"
    host.mkdir(parents=True)
    (host / "WindowsUpdate.log").write_text(
        "\n".join(ETW.format(n=i, msg=m) for i, m in enumerate(lines)) + "\n")
    return tmp_path / "in"


def test_unknown_failures_are_grouped_by_template_and_become_signatures(tmp_path: Path) -> None:
    inputs = _log(tmp_path, [
        "*FAILED* Frobnicator cache at C:\\Windows\\Temp\\a1 is wedged after 3 retries",
        "*FAILED* Frobnicator cache at C:\\Windows\\Temp\\b2 is wedged after 17 retries",
        "*FAILED* [8024402C] Web service call",
        "Everything fine",
    ])
    out = tmp_path / "out"
    assert run_cli("scan", str(inputs), "-o", str(out)).returncode == 0
    un = pl.read_parquet(out / "unmatched.parquet")
    assert un.height == 1
    row = un.row(0, named=True)
    assert row["count"] == 2 and row["hosts"] == ["win07"] and row["levels"] == ["FAILED"]
    assert "frobnicator cache at <path> is wedged after <num> retries" in row["template"]

    sig_dir = tmp_path / "mine"
    sig_dir.mkdir()
    r = run_cli("patterns", "suggest", row["template"], "--id", "frobnicator-wedged", "-o", str(sig_dir))
    assert r.returncode == 0, r.stderr
    skeleton = tomllib.loads((sig_dir / "frobnicator-wedged.toml").read_text())
    assert skeleton["id"] == "frobnicator-wedged" and skeleton["phrases"]

    # complete the skeleton as a user would, check it, and scan with it
    text = (sig_dir / "frobnicator-wedged.toml").read_text()
    text = text.replace('scenario = "TODO"', 'scenario = "frobnicator"').replace(
        'line = "TODO: a near miss that must not match"', 'line = "Frobnicator cache is healthy"')
    (sig_dir / "frobnicator-wedged.toml").write_text(text)
    check = run_cli("patterns", "check", str(sig_dir))
    assert check.returncode == 0, check.stdout
    out2 = tmp_path / "out2"
    assert run_cli("scan", str(inputs), "-o", str(out2), "--patterns", str(sig_dir)).returncode == 0
    inc = pl.read_parquet(out2 / "incidents.parquet")
    mine = inc.filter(pl.col("signature_id") == "frobnicator-wedged")
    assert mine["count"].to_list() == [2] and mine["scenario"].to_list() == ["frobnicator"]
    assert pl.read_parquet(out2 / "unmatched.parquet").height == 0


def test_patterns_check_reports_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad-sig.toml"
    bad.write_text('id = "bad-sig"\ntitle = "t"\nscenario = "s"\nseverity = "urgent"\nsources = ["any"]\n'
                   'codes = []\nphrases = ["x y z"]\nthreshold = 90\ncause = "c"\nresolution = "r"\n'
                   'references = []\n[[examples]]\nline = "x y z"\nexpect = "match"\n'
                   '[[examples]]\nline = "q"\nexpect = "no_match"\n')
    r = run_cli("patterns", "check", str(tmp_path))
    assert r.returncode == 1
    assert f"{bad}:4: severity 'urgent'" in r.stdout
    r = run_cli("scan", str(tmp_path), "-o", str(tmp_path / "o"), "--patterns", str(tmp_path))
    assert r.returncode == 2 and "severity 'urgent'" in r.stderr


def test_user_signature_overrides_a_builtin_by_id(tmp_path: Path) -> None:
    inputs = _log(tmp_path, ["* END * Finding updates, Exit code = 0x8024402C"])
    builtin = Path(__file__).resolve().parents[1] / "patterns" / "signatures" / "windows-update" / "hresult-8024402c.toml"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "hresult-8024402c.toml").write_text(builtin.read_text().replace('severity = "high"', 'severity = "critical"'))
    out = tmp_path / "out"
    r = run_cli("scan", str(inputs), "-o", str(out), "--patterns", str(mine), "--fail-on", "critical")
    assert r.returncode == 1
    inc = pl.read_parquet(out / "incidents.parquet").filter(pl.col("signature_id") == "hresult-8024402c")
    assert inc["severity"].to_list() == ["critical"]
