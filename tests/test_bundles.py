"""Bundles as support engineers receive them: the sample fleet, and a hostile one."""

import json
import os
import zipfile
from pathlib import Path

import polars as pl
from build_samples import bundles, host_folders
from conftest import SAMPLES, run_cli

ETW_LINE = "2024/05/13 21:03:14.9931102 1244  5528  Agent           * END * Finding updates CallerId = Update;x, " \
           "Id = 12, Exit code = 0x8024401C (cV = a.1)"


def test_sample_bundles_are_reproducible() -> None:
    for name, data in bundles().items():
        assert (SAMPLES / name).read_bytes() == data, f"samples/{name} is stale: run tests/build_samples.py"
    for name, data in host_folders().items():
        assert (SAMPLES / name).read_bytes() == data, f"samples/{name} is stale: run tests/build_samples.py"


def test_samples_give_incidents_for_every_host_from_every_input_kind(tmp_path: Path) -> None:
    r = run_cli("scan", str(SAMPLES), "-o", str(tmp_path))
    assert r.returncode == 0, r.stderr
    inc = pl.read_parquet(tmp_path / "incidents.parquet")
    hosts = set(inc["host"])
    assert hosts == {"srv-wsus01", "win10-app02", "hyb-worker03", "lnx-web04", "win-sql05", "lnx-db06",
                     "aum-lnx07", "arc-win08", "win11-app09"}
    m = pl.read_parquet(tmp_path / "matches.parquet")
    kinds = set(m["format_variant"])  # format is the parser's name, format_variant the line's form
    assert set(m["format"]) >= {"windowsupdate", "event-xml", "event-csv", "event-json", "event-text"}
    assert kinds >= {"windowsupdate-classic", "windowsupdate-etw", "event-xml", "event-csv", "event-json",
                     "event-text", "omsupdatemgmt", "workerlog", "text", "linuxpatchext", "patchext-status",
                     "windowspatchext", "windowsupdate-etl", "reportingevents", "cbs"}
    for host in hosts:
        assert inc.filter(pl.col("host") == host).height > 0
    sources = set(m["source"])
    assert any(s.startswith("fleet.zip!HYB-WORKER03/") for s in sources)
    assert any(s.startswith("fleet.tar.gz!LNX-DB06/") for s in sources)
    scen = set(inc["scenario"])
    assert scen >= {"hresult", "machine-already-registered", "machine-unable-to-communicate",
                    "unable-to-create-selfsigned-cert", "update-run-failed-linux", "failed-to-start", "mw-exceeded"}


def _hostile_bundle(root: Path) -> None:
    good = root / "GOOD01"
    good.mkdir(parents=True)
    (good / "WindowsUpdate.log").write_text(ETW_LINE + "\n")
    with zipfile.ZipFile(root / "evil.zip", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("SRV02/WindowsUpdate.log", ETW_LINE + "\n")
        z.writestr("../../escape.log", ETW_LINE + "\n")
        z.writestr("/etc/absolute.log", ETW_LINE + "\n")
        z.writestr("SRV02/bomb.log", b"\0" * (64 << 20))
        z.writestr("SRV03/WindowsUpdate.log", ETW_LINE + "\n")
    whole = (root / "evil.zip").read_bytes()
    with zipfile.ZipFile(root / "cut.zip", "w") as z:
        z.writestr("SRV04/WindowsUpdate.log", (ETW_LINE + "\n") * 2000)
    data = (root / "cut.zip").read_bytes()
    (root / "cut.zip").write_bytes(data[: len(data) // 2])
    (root / "GOOD01" / "core.dmp").write_bytes(bytes(range(256)) * 64)
    (root / "GOOD01" / "WindowsUpdate-utf16.log").write_bytes((ETW_LINE.replace("0x8024401C", "0x80072EE2") + "\r\n")
                                                               .encode("utf-16-le"))
    assert len(whole) < 1 << 20


def test_hostile_bundle_scans_to_completion_and_reports_each_problem(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    _hostile_bundle(inputs)
    before = sorted(p for p in tmp_path.rglob("*"))
    out = tmp_path / "out"
    r = run_cli("scan", str(inputs), "-o", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "summary.json").read_text())
    reasons = {p["reason"] for p in s["problems"]}
    assert {"path_traversal", "absolute_path", "zip_bomb"} <= reasons
    assert reasons & {"corrupt_archive", "truncated_archive"}
    assert {x["reason"] for x in s["skipped"]} >= {"binary"}
    assert s["lines"] == s["records"] + s["folded_lines"] + s["rejects"]
    # nothing was written outside -o
    after = sorted(p for p in tmp_path.rglob("*") if out not in p.parents and p != out)
    assert after == before
    assert not any(p.name == "escape.log" for p in Path(os.sep, "tmp").glob("*.log"))
    inc = pl.read_parquet(out / "incidents.parquet")
    got = set(zip(inc["host"], inc["code"], strict=True))
    assert {("good01", "0x8024401C"), ("good01", "0x80072EE2"), ("srv02", "0x8024401C"),
            ("srv03", "0x8024401C")} <= got
    assert all("escape" not in s and "absolute" not in s for s in pl.read_parquet(out / "matches.parquet")["source"])


def _damaged(data: bytes, at: bytes) -> bytes:
    """The zip with four bytes of a stored member changed (the first place `at` occurs): its
    CRC-32 no longer holds."""
    k = data.find(at)
    return data[:k] + b"XXXX" + data[k + 4:]


def test_members_with_a_bad_crc_are_reported_and_the_scan_goes_on(tmp_path: Path) -> None:
    # a stored member is only found damaged when its last byte is read: in the first read for a
    # small one, after megabytes for a big one; the lines read before that are still used (a
    # small member is read again in small steps for them, issue #15)
    small = "\r\n".join([ETW_LINE] * 50) + "\r\n"
    big = "\r\n".join(ETW_LINE.replace("Id = 12", f"Id = {i}") for i in range(20_000)) + "\r\n"
    with zipfile.ZipFile(tmp_path / "crc.zip", "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("SRV10/WindowsUpdate.log", small)
        z.writestr("SRV11/WindowsUpdate.log", big)
        z.writestr("SRV12/WindowsUpdate.log", small)
    data = (tmp_path / "crc.zip").read_bytes()
    data = _damaged(_damaged(data, b"Id = 19999"), small[-60:].encode())  # the big one's last line, SRV10
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "crc.zip").write_bytes(data)
    out = tmp_path / "out"
    r = run_cli("scan", str(tmp_path / "in"), "-o", str(out))
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "summary.json").read_text())
    damaged = {p["source"] for p in s["problems"] if p["reason"] == "corrupt_archive"}
    assert damaged == {"crc.zip!SRV10/WindowsUpdate.log", "crc.zip!SRV11/WindowsUpdate.log"}
    per = {f["source"]: f for f in s["sources"]}
    assert 0 < per["crc.zip!SRV10/WindowsUpdate.log"]["lines"] < 50
    assert per["crc.zip!SRV10/WindowsUpdate.log"]["errors"] == ["reading stopped: corrupt_archive"]
    assert 0 < per["crc.zip!SRV11/WindowsUpdate.log"]["lines"] < 20_000
    assert per["crc.zip!SRV11/WindowsUpdate.log"]["errors"] == ["reading stopped: corrupt_archive"]
    assert per["crc.zip!SRV12/WindowsUpdate.log"]["lines"] == 50 and not per["crc.zip!SRV12/WindowsUpdate.log"]["errors"]
    assert s["accounted"] is True
    hosts = set(pl.read_parquet(out / "incidents.parquet")["host"])
    assert {"srv11", "srv12"} <= hosts


def test_a_zip_asking_for_an_unknown_zip_version_is_reported(tmp_path: Path) -> None:
    # a damaged byte in the central directory can ask for a zip version Python's reader refuses
    # with NotImplementedError at open: reported, not a crash
    (tmp_path / "in").mkdir()
    data = bytearray((SAMPLES / "fleet.zip").read_bytes())
    k = data.find(b"PK\x01\x02")
    data[k + 6] = 0xFF  # "version needed to extract" of the first directory entry
    (tmp_path / "in" / "fleet.zip").write_bytes(bytes(data))
    (tmp_path / "in" / "GOOD01").mkdir()
    (tmp_path / "in" / "GOOD01" / "WindowsUpdate.log").write_text(ETW_LINE + "\n")
    r = run_cli("scan", str(tmp_path / "in"), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [p["reason"] for p in s["problems"] if p["source"] == "fleet.zip"] == ["corrupt_archive"]
    assert "good01" in s["hosts"]


def test_randomly_damaged_bundles_never_crash_and_stay_accounted(tmp_path: Path) -> None:
    # bytes flipped and files cut at seeded random places in the sample bundles: every scan ends,
    # and every line read is a record, a folded line or a reject
    import random

    from umtriage.pipeline.process import ScanOptions
    from umtriage.pipeline.scan import run_scan

    rng = random.Random(2)
    for i in range(40):
        name = ("fleet.zip", "fleet.tar.gz")[i % 2]
        data = bytearray((SAMPLES / name).read_bytes())
        for _ in range(rng.choice((1, 2, 8, 32))):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.2:
            data = data[: rng.randrange(len(data))]
        inp = tmp_path / f"in{i}"
        inp.mkdir()
        (inp / name).write_bytes(bytes(data))
        result = run_scan([inp], tmp_path / f"out{i}", ScanOptions(), jobs=1)
        assert result.summary["accounted"] is True, i
