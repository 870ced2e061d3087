"""Hosts from file names, --host-from, host_display; failures vs lines; a success ends an incident.

Everything runs through the real CLI on files written here (and the public corpus when present).
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from conftest import SHARED_CORPUS, run_cli
from umtriage.pipeline.filehosts import host_from_name
from umtriage.pipeline.incidents import incident_ids

PUBLIC = SHARED_CORPUS / "public"

FAIL = "2024/05/14 09:{m:02d}:{s:02d}.{f:07d} 1244  5528  Agent           *FAILED* [8024402C] Method failed [{where}]"
END_FAIL = ("2024/05/14 09:{m:02d}:{s:02d}.5000000 1244  5528  Agent           * END * Finding updates "
            "CallerId = Update;x, Id = 12, Exit code = 0x8024402C")
END_OK = ("2024/05/14 09:{m:02d}:{s:02d}.5000000 1244  5528  Agent           * END * Finding updates "
          "CallerId = Update;x, Id = 13, Exit code = 0x00000000")


def _attempt(minute: int, second: int = 0, lines: int = 4) -> list[str]:
    """One failed scan: several *FAILED* lines within a millisecond, then its END line."""
    out = [FAIL.format(m=minute, s=second, f=1000 + k, where=f"Step{k}") for k in range(lines)]
    return [*out, END_FAIL.format(m=minute, s=second)]


def _scan(root: Path, out: Path, *extra: str) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    r = run_cli("scan", str(root), "-o", str(out), "-q", *extra)
    assert r.returncode == 0, r.stderr
    return (pl.read_parquet(out / "incidents.parquet"), pl.read_parquet(out / "matches.parquet"),
            json.loads((out / "summary.json").read_text()))


@pytest.mark.parametrize(("name", "host"), [
    ("SRV01_WindowsUpdate.log", "SRV01"),
    ("WindowsUpdate-SRV02.log", "SRV02"),
    ("srv03.contoso.com-CBS.log", "srv03.contoso.com"),
    ("WIN10-APP02_WindowsUpdate.log", "WIN10-APP02"),
    ("SRV04_WindowsUpdate_20240514.log", "SRV04"),
    ("WindowsUpdate-2024-05-14-SRV05.log.1", "SRV05"),
    ("db-07_omsupdatemgmt.log.gz", "db-07"),
    ("windowsupdate-win10-zayrexdev-excerpt.log", "zayrexdev"),
    ("WindowsUpdate.log", None),
    ("CBS.log", None),
    ("MoSetup.log", None),
    ("System-export.csv", None),
])
def test_the_file_name_rule(name: str, host: str | None) -> None:
    assert host_from_name(name) == host


def test_a_flat_folder_of_several_machines_gives_one_host_each(tmp_path: Path) -> None:
    root = tmp_path / "collected"
    root.mkdir()
    for name in ("SRV01_WindowsUpdate.log", "WindowsUpdate-SRV02.log", "srv03.contoso.com-CBS.log"):
        (root / name).write_text("\n".join(_attempt(5)) + "\n")
    inc, m, summary = _scan(root, tmp_path / "out")
    assert sorted(inc["host"].unique()) == ["srv01", "srv02", "srv03"]
    assert dict(inc.select("host", "host_display").unique().iter_rows()) == {
        "srv01": "SRV01", "srv02": "SRV02", "srv03": "srv03"}
    assert (m["host_display"].str.to_lowercase() == m["host"]).all()
    assert {s["host"] for s in summary["sources"]} == {"srv01", "srv02", "srv03"}


def test_one_machines_files_keep_the_folder_name_and_host_folders_win(tmp_path: Path) -> None:
    one = tmp_path / "SRV09"
    one.mkdir()
    (one / "SRV01_WindowsUpdate.log").write_text("\n".join(_attempt(5)) + "\n")
    (one / "SRV01_CBS.log").write_text("\n".join(_attempt(6)) + "\n")
    inc, _, _ = _scan(one, tmp_path / "o1")
    assert set(inc["host"]) == {"srv09"}  # one machine named: the folder's name, as before
    fleet = tmp_path / "fleet" / "HOSTA"
    fleet.mkdir(parents=True)
    (fleet / "SRV01_WindowsUpdate.log").write_text("\n".join(_attempt(5)) + "\n")
    (fleet / "SRV02_WindowsUpdate.log").write_text("\n".join(_attempt(5)) + "\n")
    inc, _, _ = _scan(tmp_path / "fleet", tmp_path / "o2")
    assert set(inc["host"]) == {"hosta"}  # a host folder holds one machine's files


def test_host_from_regex_and_its_refusals(tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    for name in ("export-web01-wu.log", "export-web02-wu.log"):
        (root / name).write_text("\n".join(_attempt(5)) + "\n")
    inc, _, _ = _scan(root, tmp_path / "out", "--host-from", r"export-(?P<host>[A-Za-z]+\d+)-")
    assert sorted(set(inc["host"])) == ["web01", "web02"]
    for bad, says in (("export-(", "not a valid regular expression"), ("export-(\\w+)", "group named host")):
        r = run_cli("scan", str(root), "-o", str(tmp_path / "o2"), "--host-from", bad)
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(not PUBLIC.is_dir(), reason="needs ../shared/corpus/public")
def test_the_public_corpus_as_a_flat_folder_gives_one_host_per_machine(tmp_path: Path) -> None:
    _, _, summary = _scan(PUBLIC, tmp_path / "out")
    machine_logs = [s for s in summary["sources"] if s["source"].startswith("windowsupdate-")]
    assert len(machine_logs) >= 10
    hosts = [s["host"] for s in machine_logs]
    assert len(set(hosts)) == len(hosts)  # one host per machine's log
    assert "public" not in hosts
    by_name = {s["source"]: s["host"] for s in machine_logs}
    assert by_name.get("windowsupdate-win10-privacytarget.log") == "privacytarget"
    assert by_name.get("windowsupdate-classic-rkudache31.log") == "rkudache31"


def test_failures_count_operations_and_a_success_ends_the_incident(tmp_path: Path) -> None:
    root = tmp_path / "SRV01"
    root.mkdir()
    lines = [*_attempt(0), *_attempt(0, 30), END_OK.format(m=10, s=0), *_attempt(20), *_attempt(40)]
    (root / "WindowsUpdate.log").write_text("\n".join(lines) + "\n")
    inc, m, _ = _scan(root, tmp_path / "out")
    inc = inc.filter(pl.col("code") == "0x8024402C").sort("first_seen")
    assert inc.height == 2  # the success at 09:10 ends the first incident; 09:20 starts another
    first, second = inc.row(0, named=True), inc.row(1, named=True)
    assert first["lines"] == first["count"] == 10 and first["failures"] == 2
    assert first["resolved_at"].strftime("%H:%M") == "09:10" and first["state"] == "resolved"
    assert second["first_seen"].strftime("%H:%M") == "09:20" and second["failures"] == 2
    assert second["state"] == "current" and second["resolved_at"] is None
    assert second["severity_rank"] == {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}[second["severity"]]
    ids = m.filter(pl.col("code") == "0x8024402C").group_by("incident_id").len()
    assert dict(ids.iter_rows()) == {first["incident_id"]: 10, second["incident_id"]: 10}


def test_a_flat_archive_of_several_machines_gives_one_host_each(tmp_path: Path) -> None:
    import io
    import tarfile
    import zipfile

    root = tmp_path / "in"
    root.mkdir()
    body = ("\n".join(_attempt(5)) + "\n").encode()
    with zipfile.ZipFile(root / "bundle.zip", "w") as z:
        for name in ("SRV01_WindowsUpdate.log", "WindowsUpdate-SRV02.log"):
            z.writestr(name, body)
    with tarfile.open(root / "more.tar.gz", "w:gz") as t:
        for name in ("SRV07_WindowsUpdate.log", "SRV08_WindowsUpdate.log"):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
    inc, _, _ = _scan(root, tmp_path / "out")
    assert dict(inc.select("host", "host_display").unique().iter_rows()) == {
        "srv01": "SRV01", "srv02": "SRV02", "srv07": "SRV07", "srv08": "SRV08"}


def _reference_id(host: str, sig: str, code: str | None, first_seen: datetime | None, src: str, line: int) -> str:
    """The documented id, computed the slow way: Python's isoformat and one hash per incident."""
    anchor = first_seen.isoformat() if first_seen is not None else f"{src}:{line}"
    return hashlib.sha256("\x1f".join([host, sig, code or "", anchor]).encode()).hexdigest()[:16]


def test_incident_ids_are_the_documented_hash_for_every_kind_of_time() -> None:
    rng = random.Random(7)
    rows = []
    for i in range(3000):
        when = None if i % 7 == 0 else datetime(
            rng.choice([1, 999, 1601, 2015, 9999]), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
            rng.randint(0, 59), rng.randint(0, 59), rng.choice([0, rng.randint(1, 999_999)]), tzinfo=UTC)
        rows.append((f"HOST-{i % 5}", "sig-é", None if i % 3 == 0 else "0x8024001E", when, "a/WindowsUpdate.log", i))
    agg = pl.DataFrame(rows, orient="row", schema={
        "host": pl.String, "signature_id": pl.String, "code": pl.String, "first_seen": pl.Datetime("us", "UTC"),
        "first_src": pl.String, "first_line": pl.Int64})
    assert incident_ids(agg).to_list() == [_reference_id(*r) for r in rows]
