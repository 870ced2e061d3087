"""Severity from a code's class and its line's context (issue 10), and what must not be reported (issue 14.2):
trace codes at info and never a host's current problem, codes of other domains dropped, --mute and mute.txt.
Every case runs the real CLI on real files."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from conftest import run_cli
from umtriage.patterns.catalog import load_catalog

ETW = "2024/05/13 21:{mm}:14.9931102 1244  5528  {component:<15} {text}"
CATALOG = load_catalog()


def scan(tmp_path: Path, lines: list[str], *extra: str, name: str = "WindowsUpdate.log") -> pl.DataFrame:
    root = tmp_path / "in" / "SRV01"
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = run_cli("scan", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q", *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    return pl.read_parquet(tmp_path / "out" / "incidents.parquet")


def by_code(inc: pl.DataFrame) -> dict[str, tuple[str, str, bool]]:
    return {c: (s, sev, cur) for c, s, sev, cur in inc.select("code", "signature_id", "severity", "current").iter_rows()}


def test_a_failed_operation_takes_its_code_class_severity_and_fix(tmp_path: Path) -> None:
    inc = scan(tmp_path, [
        ETW.format(mm="01", component="WebServices", text="*FAILED* [80240438] Web service call"),
        ETW.format(mm="02", component="ComApi", text="ClientId = UpdateOrchestrator: Exit code = 0x00000000; "
                                                     "Call error code = 0x80240022"),
        ETW.format(mm="03", component="DownloadManager", text="Update 1A2B3C4D-0000-4000-8000-00000000BEEF.1 "
                                                              "LastDynamicDataRefreshResult=0x8024402F."),
    ])
    got = by_code(inc)
    assert got["0x80240438"][:2] == ("wu-failure", "high")  # network class
    assert got["0x80240022"][:2] == ("wu-failure", "high")  # install class
    assert got["0x8024402F"][0] == "hresult-8024402f"  # a specific signature still wins
    row = inc.filter(pl.col("code") == "0x80240438").row(0, named=True)
    assert row["resolution"].startswith("0. " + CATALOG.classes["network"].fix)
    assert "WU_E_PT_ENDPOINT_UNREACHABLE" in row["title"]


def test_a_code_only_mentioned_stays_low(tmp_path: Path) -> None:
    inc = scan(tmp_path, [ETW.format(mm="01", component="DownloadManager",
                                     text="Update 1A2B3C4D-0000-4000-8000-00000000BEEF.1 "
                                          "LastDynamicDataRefreshResult=0x80240438.")])
    assert by_code(inc)["0x80240438"][:2] == ("wu-error", "low")


def test_trace_codes_and_frames_are_info_and_never_current(tmp_path: Path) -> None:
    inc = scan(tmp_path, [
        ETW.format(mm="01", component="ComApi", text="*FAILED* [80246007] ISusInternal:: IsCommitRequired"),
        ETW.format(mm="02", component="Agent", text="*FAILED* [8024000C] LoadHistoryEventFromRegistry completed"),
        ETW.format(mm="03", component="Agent", text="*FAILED* [80070032] Method failed [AppxPackage::Initialize:88]"),
        ETW.format(mm="04", component="Agent", text="*FAILED* [80070003] wuauengcore.dll, C:\\src\\fileutil.cpp @1030"),
    ])
    got = by_code(inc)
    assert set(got) == {"0x80246007", "0x8024000C", "0x80070032", "0x80070003"}
    assert all(sig == "wu-trace" and sev == "info" and not cur for sig, sev, cur in got.values())


def test_a_trace_code_never_heads_a_host_even_when_it_is_the_last_line(tmp_path: Path) -> None:
    inc = scan(tmp_path, [
        ETW.format(mm="01", component="WebServices", text="*FAILED* [80240438] Web service call"),
        ETW.format(mm="09", component="Agent", text="*FAILED* [8024000E] Method failed [Foo::Bar:1]"),
    ])
    got = by_code(inc)
    assert got["0x80240438"] == ("wu-failure", "high", True)
    assert got["0x8024000E"] == ("wu-trace", "info", False)


def test_security_and_licensing_codes_are_not_windows_update_incidents(tmp_path: Path) -> None:
    inc = scan(tmp_path, [
        "An account failed to log on. Status: 0xC000006D Sub Status: 0xC000006A",
        "Activation failed with error 0xC004F074: the Key Management Service could not be contacted",
    ], name="notes.txt")
    assert inc.height == 0


def test_a_line_that_says_it_continues_is_trace_even_for_a_known_code(tmp_path: Path) -> None:
    inc = scan(tmp_path, [
        "2023-11-12 12:15:46, Info                  CBS    Exec: Begin: nested restore point - failed, "
        "ignoring and continuing. [HRESULT = 0x80070422 - ERROR_SERVICE_DISABLED]",
    ], name="CBS.log")
    assert by_code(inc)["0x80070422"][:2] == ("wu-trace", "info")


def test_servicing_log_codes_need_a_servicing_signature_to_be_reported(tmp_path: Path) -> None:
    inc = scan(tmp_path, [
        "2021-08-02 09:14:51, Error                 CBS    Failed to check package state [HRESULT = 0x80070490 - "
        "ERROR_NOT_FOUND]",
        "2021-08-02 09:14:52, Info                  CBS    Failed to repair store. [HRESULT = 0x800f081f - "
        "CBS_E_SOURCE_MISSING]",
    ], name="CBS.log")
    got = by_code(inc)
    assert got["0x80070490"][:2] == ("wu-error", "low")
    assert got["0x800F081F"][:2] == ("cbs-source-missing", "high")


FAIL_LINES = [
    ETW.format(mm="01", component="WebServices", text="*FAILED* [80240438] Web service call"),
    ETW.format(mm="02", component="DownloadManager", text="DO job {5B1C0D2E-1F3A-4B5C-8D6E-7F8091A2B3C4} 403'd, "
                                                          "updateId = 1A2B.1, hr = 0x80190193"),
]


@pytest.mark.parametrize("mute", ["80240438", "0x80240438", "-2145123272", "2149844024"])
def test_mute_a_code_in_any_spelling(tmp_path: Path, mute: str) -> None:
    inc = scan(tmp_path, FAIL_LINES, "--mute", mute)
    assert set(by_code(inc)) == {"0x80190193"}


def test_mute_a_signature_and_a_mute_file(tmp_path: Path) -> None:
    pats = tmp_path / "pats"
    pats.mkdir()
    (pats / "mute.txt").write_text("# expected 403s from the content filter\n0x80190193  # DO\n", encoding="utf-8")
    assert set(by_code(scan(tmp_path, FAIL_LINES, "--patterns", str(pats)))) == {"0x80240438"}
    assert scan(tmp_path, FAIL_LINES, "--patterns", str(pats), "--mute", "wu-failure").height == 0
    # a muted line is recognised, so it does not come back as an unknown problem
    unmatched = pl.read_parquet(tmp_path / "out" / "unmatched.parquet")
    assert not any("80240438" in (e or "") for e in unmatched["example"].to_list())


def test_a_mute_item_that_is_neither_code_nor_signature_is_refused(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.log").write_text(FAIL_LINES[0] + "\n", encoding="utf-8")
    for cmd in (["scan", str(tmp_path / "in"), "-o", str(tmp_path / "o1")],
                ["watch", str(tmp_path / "in"), "-o", str(tmp_path / "o2"), "--once"]):
        r = run_cli(*cmd, "--mute", "no-such-thing")
        assert r.returncode == 2, r.stderr
        assert "'no-such-thing': neither an error code nor a signature id" in r.stderr
    pats = tmp_path / "pats"
    pats.mkdir()
    (pats / "mute.txt").write_text("0x80240438\nwu-typo\n", encoding="utf-8")
    r = run_cli("patterns", "check", str(pats))
    assert r.returncode == 1
    assert "mute.txt:2: 'wu-typo' is neither an error code nor a signature id" in r.stdout


def test_watch_mutes_too(tmp_path: Path) -> None:
    (tmp_path / "in" / "SRV01").mkdir(parents=True)
    (tmp_path / "in" / "SRV01" / "WindowsUpdate.log").write_text("\n".join(FAIL_LINES) + "\n", encoding="utf-8")
    r = run_cli("watch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--once", "-q", "--mute", "80190193")
    assert r.returncode == 0, r.stderr
    assert set(pl.read_parquet(tmp_path / "out" / "incidents.parquet")["code"].to_list()) == {"0x80240438"}


def test_every_decoder_class_is_defined_and_every_range_names_one() -> None:
    for prefix, name in CATALOG.ranges.items():
        assert name in CATALOG.classes, prefix
        assert prefix.startswith("0x") and prefix[2:] == prefix[2:].upper()
    for klass in CATALOG.classes.values():
        assert klass.severity in ("info", "low", "medium", "high", "critical") and klass.fix
    # the longest prefix wins: a single code inside a block keeps its own class
    assert CATALOG.code_class("0x80240438").name == "network"
    assert CATALOG.code_class("0x80240001").name == "agent"
    assert CATALOG.code_class("0x80244018").name == "proxy"
    assert CATALOG.code_class("0x8024400E").name == "wsus"
    assert CATALOG.code_class("0x12345678") is None


def test_watch_starts_over_when_the_mute_list_changes(tmp_path: Path) -> None:
    """The mute list is part of watch's settings: a later run with another list does not keep parts
    matched under the old one."""
    (tmp_path / "in" / "SRV01").mkdir(parents=True)
    (tmp_path / "in" / "SRV01" / "WindowsUpdate.log").write_text("\n".join(FAIL_LINES) + "\n", encoding="utf-8")
    args = ["watch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--once", "-q"]
    assert run_cli(*args).returncode == 0
    first = set(pl.read_parquet(tmp_path / "out" / "incidents.parquet")["code"].to_list())
    assert first == {"0x80240438", "0x80190193"}
    r = run_cli(*args, "--mute", "0x80240438")
    assert r.returncode == 0, r.stderr
    assert set(pl.read_parquet(tmp_path / "out" / "incidents.parquet")["code"].to_list()) == {"0x80190193"}


def test_explain_names_the_class_severity_of_a_failed_operations_code() -> None:
    r = run_cli("explain", ETW.format(mm="01", component="WebServices", text="*FAILED* [80240438] Web service call"))
    assert r.returncode == 0, r.stderr
    assert "MATCH 100.0  wu-failure" in r.stdout
    assert "severity high (code class network)" in r.stdout
