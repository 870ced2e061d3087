"""updates.parquet: one row per host and update, whose state matches the log lines, counted by hand.

Every expected number below was counted with grep on the file named, and is written next to
the command that counts it.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from conftest import SAMPLES, SHARED_CORPUS, run_cli
from umtriage.pipeline.process import matcher_for
from umtriage.pipeline.updates import STATES, UPDATE_SCHEMA, extract_events

PUBLIC = SHARED_CORPUS / "public"


def scan(tmp_path: Path, *inputs: Path, extra: tuple[str, ...] = ()) -> Path:
    out = tmp_path / "out"
    r = run_cli("scan", *map(str, inputs), "-o", str(out), "-q", *extra)
    assert r.returncode == 0, r.stderr
    return out


def by_kb(updates: pl.DataFrame, host: str) -> dict[str, tuple]:
    rows = updates.filter(pl.col("host") == host).select("kb", "state", "last_hresult", "attempts").rows()
    return {kb: (state, hr, n) for kb, state, hr, n in rows}


@pytest.fixture(scope="module")
def sample_updates(tmp_path_factory) -> pl.DataFrame:
    return pl.read_parquet(scan(tmp_path_factory.mktemp("samples"), SAMPLES) / "updates.parquet")


def test_schema_and_states_are_the_documented_ones(sample_updates: pl.DataFrame) -> None:
    assert dict(sample_updates.schema) == UPDATE_SCHEMA
    assert set(sample_updates["state"]) <= set(STATES)
    assert sample_updates.height == sample_updates.select("host", "update").unique().height


def test_classic_report_events_of_the_sample(sample_updates: pl.DataFrame) -> None:
    """samples/SRV-WSUS01/WindowsUpdate.log (classic):
    grep -c 'Installation Successful' -> 2 (KB5034819, KB890830)
    grep -c 'Installation Failure'    -> 1 (KB5034275, error 0x80070005)
    grep -c 'Restart Required'        -> 1 (KB5034819, after its successful install)
    grep -c 'Download succeeded'      -> 3 (all three)
    """
    assert by_kb(sample_updates, "srv-wsus01") == {
        "KB5034819": ("pending_reboot", None, 1),
        "KB890830": ("installed", None, 1),
        "KB5034275": ("failed", "0x80070005", 1),
    }


def test_windows10_install_history_of_the_sample(sample_updates: pl.DataFrame) -> None:
    """samples/WIN10-APP02/WindowsUpdate.log (Windows 10 form):
    grep -c 'LogHistory called' -> 2: resultMapped=0 for 9E8D7C6B (KB2267602, titled by its
    `Deserialized installable update` line), resultMapped=8024001E for 6D2F1C4B (KB5037768);
    grep 'classification' names E0789628-... (Definition Updates) and 0FA1201D-... (Security Updates).
    """
    assert by_kb(sample_updates, "win10-app02") == {
        "KB2267602": ("installed", None, 1),
        "KB5037768": ("failed", "0x8024001E", 1),
    }
    cls = dict(sample_updates.filter(pl.col("host") == "win10-app02").select("kb", "classification").rows())
    assert cls == {"KB2267602": "Definition Updates", "KB5037768": "Security Updates"}


def test_linux_packages_of_the_sample(sample_updates: pl.DataFrame) -> None:
    """fleet.zip!LNX-WEB04/.../omsupdatemgmt.log: `Found 3 packages to install: libssl1.1, openssl,
    linux-image-generic`; grep -c 'Unexpected return code' -> 2 failed runs of the install of all three."""
    rows = sample_updates.filter(pl.col("host") == "lnx-web04").select("update", "state", "attempts").rows()
    assert rows == [("libssl1.1", "failed", 2), ("linux-image-generic", "failed", 2), ("openssl", "failed", 2)]


def test_bundles_give_the_same_updates_as_the_folders(sample_updates: pl.DataFrame) -> None:
    """fleet.tar.gz's WIN-SQL05 holds copies of both sample logs: its rows are both hosts' rows."""
    sql = sample_updates.filter(pl.col("host") == "win-sql05").drop("host", "sources", "first_seen", "last_seen")
    both = sample_updates.filter(pl.col("host").is_in(["srv-wsus01", "win10-app02"])).drop(
        "host", "sources", "first_seen", "last_seen").unique(maintain_order=True)
    assert sorted(sql.rows(), key=str) == sorted(both.rows(), key=str)


def test_update_lines_pass_the_prefilter() -> None:
    """`LogHistory called ... resultMapped=0` holds no failure code: only the update needle keeps it."""
    pattern = matcher_for(()).keep_pattern("windowsupdate")
    line = "LogHistory called. idUpdate={9E8D7C6B-5A4F-4E3D-8C2B-1A0F9E8D7C6B}.200, resultMapped=0, resultUnMapped=0"
    assert pl.Series([line]).str.contains(pattern).item()


def test_reporting_events_shape_is_read_by_the_same_extractor() -> None:
    """ReportingEvents.log lines are REPORT EVENT lines without the prefix, the event id followed
    by its name: the extractor accepts both, so that parser only needs its format name added."""
    line = ("{0C6F5D3B-2A61-4E8F-9D7C-5B4A3F2E1D0C}\t2024-03-05 09:21:50:020+0100\t1\t182 [AGENT_INSTALLING_FAILED]\t"
            "101\t{8F4E6D21-0B7A-4C93-A15E-6D2C9B0F7E42}\t201\t80070643\tAutomaticUpdates\tFailure\tContent Install\t"
            "Installation Failure: Windows failed to install the following update with error 0x80070643: "
            "2024-02 Cumulative Update for .NET Framework (KB5034275).")
    rec = pl.DataFrame({"host": ["h"], "source": ["s"], "format": ["windowsupdate-classic"], "line_no": [1],
                        "ts": pl.Series([None], dtype=pl.Datetime("us", "UTC")), "kind": ["line"], "message": [line],
                        "raw": [line]})
    ev = extract_events(rec)
    assert ev.select("update_id", "kb", "state", "hresult").rows() == [
        ("8F4E6D21-0B7A-4C93-A15E-6D2C9B0F7E42", "KB5034275", "failed", "0x80070643")]


def test_csv_and_jsonl_are_written_and_csv_is_formula_safe(tmp_path: Path) -> None:
    host = tmp_path / "in" / "WS01"
    host.mkdir(parents=True)
    uid = "1A2B3C4D-5E6F-4A1B-8C2D-3E4F5A6B7C8D"
    (host / "WindowsUpdate.log").write_text(
        "2024/05/14 09:42:00.1000200 7340  6120  ComApi          Deserialized installable update "
        f"=HYPERLINK(\"http://x\") (KB5037768), UpdateID = {{{uid}.1}}, CallbackInfo cookie length = 0\n"
        f"2024/05/14 09:55:11.3500000 7340  9992  Agent           LogHistory called. idUpdate={{{uid}}}.1, "
        "resultMapped=80070643, resultUnMapped=0\n", encoding="utf-8")
    out = scan(tmp_path, tmp_path / "in", extra=("--format", "csv", "--format", "jsonl"))
    with open(out / "updates.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["kb"], r["state"], r["last_hresult"]) for r in rows] == [("KB5037768", "failed", "0x80070643")]
    assert rows[0]["title"].startswith("'=HYPERLINK")
    assert pl.read_ndjson(out / "updates.jsonl")["title"].to_list() == ['=HYPERLINK("http://x") (KB5037768)']


@pytest.mark.skipif(not PUBLIC.is_dir(), reason="the shared public corpus is not here")
def test_public_windows10_log_with_two_failed_installs(tmp_path: Path) -> None:
    """windowsupdate-win10-reeceketley.log:
    grep -c 'LogHistory called'                                  -> 18 install results
    grep 'LogHistory called' | grep -c 'resultMapped=0,'         -> 14 installed
    grep 'LogHistory called' | grep -c 'resultMapped=80242014'   -> 2 pending a restart
    the other two, titled by their `Deserialized installable update` lines: 576B0DD6...
    resultMapped=80070643 (KB5034441) and E4E4724A... resultMapped=80240017 (KB5037036).
    """
    u = pl.read_parquet(scan(tmp_path, PUBLIC / "windowsupdate-win10-reeceketley.log") / "updates.parquet")
    tried = u.filter(pl.col("attempts") > 0)
    assert tried["attempts"].sum() == 18
    assert tried.group_by("state").len().sort("state").rows() == [("failed", 2), ("installed", 14),
                                                                   ("pending_reboot", 2)]
    failed = u.filter(pl.col("state") == "failed").select("update_id", "kb", "last_hresult").sort("kb").rows()
    assert failed == [("576B0DD6-57CC-457B-A5EC-E888491B395D", "KB5034441", "0x80070643"),
                      ("E4E4724A-87D9-409D-81B7-7784572CA154", "KB5037036", "0x80240017")]


@pytest.mark.skipif(not PUBLIC.is_dir(), reason="the shared public corpus is not here")
def test_public_windows11_cumulative_update_waits_for_a_restart(tmp_path: Path) -> None:
    """windowsupdate-win10-privacytarget.log:
    grep -c 'LogHistory called' -> 5: 19682DF0... resultMapped=80242014 (its `Deserialized
    installable update` line: KB5035853), 2C6DB99F... 240006 (KB890830), three Defender updates at 0.
    grep -c 'get_RebootRequired exited for update 19682DF0' -> 18 later lines, all `= Yes`.
    """
    u = pl.read_parquet(scan(tmp_path, PUBLIC / "windowsupdate-win10-privacytarget.log") / "updates.parquet")
    cu = u.filter(pl.col("kb") == "KB5035853").row(0, named=True)
    assert (cu["update_id"], cu["state"], cu["last_hresult"], cu["attempts"]) == (
        "19682DF0-D60C-4C12-B482-78552A546A7F", "pending_reboot", "0x80242014", 1)
    assert cu["title"] == "2024-03 Cumulative Update for Windows 11 Version 23H2 for x64-based Systems (KB5035853)"
    installed = u.filter(pl.col("state") == "installed")
    assert installed.height == 4 and installed["attempts"].sum() == 4
    assert set(installed["kb"]) == {"KB2267602", "KB890830"}


@pytest.mark.skipif(not PUBLIC.is_dir(), reason="the shared public corpus is not here")
def test_public_classic_fragment_names_the_update_it_started(tmp_path: Path) -> None:
    """windowsupdate-classic-trentent-blog-fragment.log: grep -c 'REPORT EVENT' -> 1, `Installation
    Started` of KB3177467; no result line follows in the fragment, so the update is only found."""
    u = pl.read_parquet(scan(tmp_path, PUBLIC / "windowsupdate-classic-trentent-blog-fragment.log") / "updates.parquet")
    assert u.select("update_id", "kb", "state", "attempts").rows() == [
        ("37EA312C-2424-4158-B30F-E614AA28DA4A", "KB3177467", "found", 0)]


def test_watch_writes_the_same_updates_and_a_report(tmp_path: Path) -> None:
    root = tmp_path / "in"
    shutil.copytree(SAMPLES / "SRV-WSUS01", root / "SRV-WSUS01")
    watched = tmp_path / "watched"
    r = run_cli("watch", str(root), "-o", str(watched), "--once", "-q")
    assert r.returncode == 0, r.stderr
    batch = pl.read_parquet(scan(tmp_path, root) / "updates.parquet")
    assert pl.read_parquet(watched / "updates.parquet").equals(batch)
    assert batch.height == 3
    page = (watched / "report.html").read_text(encoding="utf-8")
    assert "KB5034275" in page and "srv-wsus01" in page


def test_patch_extension_status_of_the_sample(sample_updates: pl.DataFrame) -> None:
    """samples/AUM-LNX07/.../status/3.status, counted with
    grep -o '\\"patchInstallationState\\": \\"[A-Za-z]*' 3.status | sort | uniq -c
    -> Failed 1 (libssl1.1), Pending 2 (openssl, linux-image-generic), Installed 1, NotSelected 1.
    The status parser gives records for the failed and pending patches only (its PATCH_STATES)."""
    rows = sample_updates.filter(pl.col("host") == "aum-lnx07").select("title", "classification", "state").rows()
    assert rows == [("libssl1.1 1.1.1f-1ubuntu2.22", "Security", "failed"),
                    ("linux-image-generic 5.4.0.182.180", "Critical", "found"),
                    ("openssl 1.1.1f-1ubuntu2.22", "Security", "found")]


def test_every_patch_state_of_a_status_maps_to_an_update_state() -> None:
    states = ["Installed", "Failed", "Pending", "Excluded", "NotSelected"]
    raws = [json.dumps({"patchId": f"p{k}_1.0", "name": f"p{k}", "version": "1.0", "classifications": ["Other"],
                        "patchInstallationState": s}) for k, s in enumerate(states)]
    n = len(raws)
    rec = pl.DataFrame({"host": ["h"] * n, "source": ["3.status"] * n, "format": ["patchext-status"] * n,
                        "line_no": [1] * n, "ts": pl.Series([None] * n, dtype=pl.Datetime("us", "UTC")),
                        "kind": ["patch"] * n, "message": [f"Patch {s}: x" for s in states], "raw": raws})
    assert extract_events(rec)["state"].to_list() == ["installed", "failed", "found", "excluded", "not_selected"]


def test_reporting_events_of_the_sample(sample_updates: pl.DataFrame) -> None:
    """samples/WIN11-APP09/Windows/SoftwareDistribution/ReportingEvents.log (UTF-16):
    iconv -f UTF-16LE -t UTF-8 ReportingEvents.log | grep -c 'Content Install' -> 1, an
    `Installation Failure` of KB5037771 with 800f0922; the other two lines are detections."""
    assert by_kb(sample_updates, "win11-app09") == {"KB5037771": ("failed", "0x800F0922", 1)}


def test_the_same_input_gives_the_same_updates_and_report_bytes(tmp_path: Path) -> None:
    one, two = scan(tmp_path / "a", SAMPLES), scan(tmp_path / "b", SAMPLES)
    for name in ("updates.parquet", "report.html"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
