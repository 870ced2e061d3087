"""ReportingEvents.log and CBS.log / DISM.log: generated files in the shapes of the real ones, and
the two whole real CBS.logs of ../shared/corpus/real (read from there, never copied)."""

import io
import json
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from conftest import REPO, SHARED_CORPUS, run_cli
from umtriage.parsers import FAMILY, PARSERS
from umtriage.parsers.base import ParseContext
from umtriage.parsers.detect import detect
from umtriage.patterns.catalog import load_codes
from umtriage.pipeline.codes import extract_codes

REAL = SHARED_CORPUS / "real"

# -- ReportingEvents.log ---------------------------------------------------------------------------

Z = "{00000000-0000-0000-0000-000000000000}"
REPORT_ROWS = [  # event guid, local time, version, event, namespace, update, revision, hresult, caller, result, operation, text
    ("{2F6C8A41-0D3B-4E7A-9C15-7B8E2D4F6A01}", "2016-07-21 09:40:02:113+0200", "1", "147 [AGENT_DETECTION_FINISHED]", "101", Z, "0", "0",
     "AutomaticUpdates", "Success", "Software Synchronization", "Windows Update Client successfully detected 2 updates."),
    ("{7E1D5C93-2A4F-4B86-8E07-C3D9A1F05B22}", "2016-07-21 09:52:47:531+0200", "1", "161 [AGENT_DOWNLOAD_FAILED]", "101",
     "{A4F5D8E2-7B3C-4E91-8F20-6C1D9B0A3E57}", "201", "80246008", "AutomaticUpdates", "Failure", "Content Download", "Error: Download failed."),
    ("{C0B4E7A2-5F19-4D3E-A6B8-91E2F4C7D033}", "2016-07-21 09:53:23:948+0200", "1", "182 [AGENT_INSTALLING_FAILED]", "101",
     "{9B2E6F10-4C8D-4A57-B3E1-0F7A5D2C8E44}", "201", "80240022", "AutomaticUpdates", "Failure", "Content Install",
     "Installation Failure: Windows failed to install the following update with error 0x80240022: Security Update for Windows Server 2012 R2 (KB3172729)."),
    ("{5A3F9D17-8B2C-4E60-9D41-E6C0B7A2F155}", "2016-07-21 10:15:09:004+0200", "1", "183 [AGENT_INSTALLING_SUCCEEDED]", "101",
     "{3D8C1A6E-9F4B-4072-8A5D-B1E7C0F29366}", "200", "0", "AutomaticUpdates", "Success", "Content Install",
     "Installation Successful: Windows successfully installed the following update: Update for Windows Server 2012 R2 (KB2919355)"),
    ("{E8D2B6C4-1A7F-4B39-85E0-4F9A3C1D7E77}", "2016-07-22 03:00:11:250-0500", "1", "148 [AGENT_DETECTION_FAILED]", "101", Z, "0", "8024402c",
     "UpdateOrchestrator", "Failure", "Software Synchronization", "Windows Update Client failed to detect with error 0x8024402c.", ""),
    ("{B7F1A0D8-6E2C-4F95-9B34-2D8E5A7C1F88}", "2016-07-22 03:05:40:777-0500", "1", "182 [AGENT_INSTALLING_FAILED]", "101",
     "{6F0E2B9A-3D7C-4E18-A5F6-C9B1D4E8A299}", "200", "0", "UpdateOrchestrator", "Failure", "Content Install",
     "Installation Failure: Windows failed to install the following update with error 0x00000000: Update for Windows (KB4023057)."),
]


def reporting_events_bytes(rows=REPORT_ROWS, extra_lines: tuple[str, ...] = ()) -> bytes:
    """UTF-16LE with BOM and CRLF, as the agent writes the file."""
    lines = ["\t".join(r) for r in rows] + list(extra_lines)
    return b"\xff\xfe" + "".join(line + "\r\n" for line in lines).encode("utf-16-le")


def parse_bytes(data: bytes, name: str = "f", assume_tz: str = "UTC"):
    det = detect(name, data[:65536])
    assert det.parser is not None
    ctx = ParseContext(source=name, encoding=det.head.encoding, start_offset=det.bom_len, assume_tz=assume_tz)
    batches = list(det.parser.parse(io.BytesIO(data[det.bom_len:]), ctx))
    return (det.parser.name, pl.concat([b.records for b in batches]), pl.concat([b.rejects for b in batches]),
            sum(b.lines for b in batches))


def test_reporting_events_records_and_one_field_by_field() -> None:
    fmt, recs, rej, lines = parse_bytes(reporting_events_bytes())
    assert fmt == "reportingevents" and FAMILY[fmt] == "windowsupdate"
    assert recs.height == 6 and rej.height == 0 and lines == 6
    r = recs.row(2, named=True)
    assert r["ts"] == datetime(2016, 7, 21, 7, 53, 23, 948_000, tzinfo=UTC)
    assert (r["component"], r["event_id"], r["provider"], r["level"]) == ("AGENT_INSTALLING_FAILED", 182,
                                                                          "AutomaticUpdates", "ERROR")
    assert r["message"].startswith("Content Install Failure 0x80240022: Installation Failure: Windows failed")
    assert r["message"].endswith("(KB3172729).")
    assert r["raw"] == "\t".join(REPORT_ROWS[2]) and r["line_no"] == 3
    # UTF-16: two bytes a unit, the BOM, and CRLF after each line
    assert r["byte_offset"] == 2 + sum(2 * (len("\t".join(row)) + 2) for row in REPORT_ROWS[:2])
    assert recs["ts"][4] == datetime(2016, 7, 22, 8, 0, 11, 250_000, tzinfo=UTC)  # -0500
    assert recs["level"].to_list() == ["INFO", "ERROR", "ERROR", "INFO", "ERROR", "ERROR"]


def test_reporting_events_hresult_field_is_the_code_on_failures_only() -> None:
    _, recs, _, _ = parse_bytes(reporting_events_bytes())
    codes = extract_codes(recs["message"]).to_list()
    # the download failure names its code only in the HRESULT field; lower-case hex is normalised
    assert codes == [[], ["0x80246008"], ["0x80240022"], [], ["0x8024402C"], []]
    assert not any("0x00000000" in c for c in codes)


def test_reporting_events_damage_is_counted(tmp_path: Path) -> None:
    whole = reporting_events_bytes()
    cut = whole[: whole.index("{6F0E2B9A".encode("utf-16-le")) + 10]  # the file ends inside the last update id
    data = reporting_events_bytes([*REPORT_ROWS[:5], REPORT_ROWS[5][:7]], extra_lines=("", "junk\tline"))
    _, recs, rej, lines = parse_bytes(data)
    assert recs.height == 5 and rej["reason"].to_list() == ["bad_fields", "bad_fields"] and lines == 8
    assert lines == recs.height + rej.height + 1  # the blank line is folded
    _, recs_cut, rej_cut, lines_cut = parse_bytes(cut)
    assert recs_cut.height == 5 and rej_cut["reason"].to_list() == ["bad_fields"] and lines_cut == 6
    (tmp_path / "in" / "SRV-2012").mkdir(parents=True)
    (tmp_path / "in" / "SRV-2012" / "ReportingEvents.log").write_bytes(data)
    r = run_cli("scan", str(tmp_path / "in"), "-o", str(tmp_path / "out"))
    assert r.returncode in (0, 1), r.stderr
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["accounted"] and s["formats"]["reportingevents"]["records"] == 5
    assert s["rejects_by_reason"] == {"bad_fields": 2}
    m = pl.read_parquet(tmp_path / "out" / "matches.parquet")
    assert {"0x80246008", "0x80240022", "0x8024402C"} <= set(m["code"]) and "0x00000000" not in set(m["code"])


def test_reporting_events_is_not_confused_with_its_neighbours() -> None:
    classic = (b"2016-10-19\t14:24:02:653\t8904\t1834\tReport\tREPORT EVENT: {2F6C8A41-0D3B-4E7A-9C15-7B8E2D4F6A01}\t"
               b"2016-10-19 14:23:56:200-0600\t1\t181\t101\t{A4F5D8E2-7B3C-4E91-8F20-6C1D9B0A3E57}\t501\t80246007\t"
               b"AutomaticUpdates\tFailure\tContent Download\tError: Download failed.\r\n")
    assert detect("ReportingEvents.log", classic).parser.name == "windowsupdate"
    assert detect("x", reporting_events_bytes()).parser.name == "reportingevents"
    assert detect("x", "\r\n".join("\t".join(r) for r in REPORT_ROWS).encode()).parser.name == "reportingevents"
    assert detect("x", CBS_SAMPLE.encode()).parser.name == "cbs"


# -- CBS.log / DISM.log ----------------------------------------------------------------------------

CBS_SAMPLE = "\r\n".join([
    "2018-12-08 18:38:09, Info                  CBS    Exec: Processing started.  Client: WindowsUpdateAgent, Session: 30718543_3417260131, Package: Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.194.1.5",
    "2018-12-08 18:38:10, Info                  CSI    00000042 Begin executing advanced installer phase 38 index 92",
    "2018-12-08 18:38:11, Error                 CBS    Failed to execute advanced installer phases. [HRESULT = 0x800f0922 - CBS_E_INSTALLERS_FAILED]",
    "Summary:",
    "Operation: Detect and Repair ",
    "\tCSI Payload Corruption:\t3",
    "",
    "2018-12-08 18:38:12, Warning               CBS    Failed to get session package state [HRESULT = 0x80070490 - ERROR_NOT_FOUND]",
    "2018-12-08 18:38:13, Info                  CBS    Session: 30718543_3417260131 finalized. Reboot required: no [HRESULT = 0x800f0922 - CBS_E_INSTALLERS_FAILED]",
]) + "\r\n"

DISM_SAMPLE = "\r\n".join([
    "2019-03-05 10:53:38, Info                  DISM   PID=4352 TID=4968 Scratch directory set to 'C:\\Windows\\TEMP\\'. - CDISMManager::put_ScratchDir",
    "2019-03-05 10:53:40, Error                 DISM   DISM Package Manager: PID=4352 TID=5012 Failed finalizing changes. - CDISMPackageManager::Internal_Finalize(hr:0x800f081f)",
    "2019-03-05 10:53:40, Error                 DISM   DISM Package Manager: PID=4352 TID=5012 The source files could not be found; their location must be specified using the /source option to restore the feature.",
]) + "\r\n"


def test_cbs_records_continuations_and_one_field_by_field() -> None:
    data = b"\xef\xbb\xbf" + CBS_SAMPLE.encode()
    fmt, recs, rej, lines = parse_bytes(data, assume_tz="+0100")
    assert fmt == "cbs" and FAMILY[fmt] == "cbs"
    assert recs.height == 5 and rej.height == 0 and lines == 9
    r = recs.row(2, named=True)
    assert r["ts"] == datetime(2018, 12, 8, 17, 38, 11, tzinfo=UTC)  # local +0100
    assert (r["level"], r["component"], r["line_no"], r["line_count"]) == ("ERROR", "CBS", 3, 4)
    assert r["message"].startswith("Failed to execute advanced installer phases. [HRESULT = 0x800f0922")
    assert r["message"].split("\n")[1:] == ["Summary:", "Operation: Detect and Repair ", "\tCSI Payload Corruption:\t3"]
    assert r["byte_offset"] == 3 + sum(len(line) + 2 for line in CBS_SAMPLE.split("\r\n")[:2])
    assert recs["level"].to_list() == ["INFO", "INFO", "ERROR", "WARNING", "INFO"]
    assert recs["component"].to_list() == ["CBS", "CSI", "CBS", "CBS", "CBS"]
    codes = extract_codes(recs["message"]).to_list()
    assert codes[2] == ["0x800F0922"] and codes[3] == ["0x80070490"]


def test_dism_log_gives_pid_and_tid() -> None:
    fmt, recs, _, _ = parse_bytes(DISM_SAMPLE.encode())
    assert fmt == "cbs"
    assert recs["pid"].to_list() == ["4352"] * 3 and recs["tid"].to_list() == ["4968", "5012", "5012"]
    assert recs["component"].to_list() == ["DISM"] * 3 and recs["level"][1] == "ERROR"
    assert extract_codes(recs["message"])[1].to_list() == ["0x800F081F"]


def test_cbs_damage_and_leading_orphans_are_counted() -> None:
    text = "  Found: {l:32 b:AAAA} Expected: {l:32 b:BBBB}\r\n" + CBS_SAMPLE + "2018-12-08 18:3"
    _, recs, rej, lines = parse_bytes(text.encode("utf-8") + b"\x81\xfe tail\r\n")
    assert rej["reason"].to_list() == ["orphan_continuation"]
    assert recs.height == 5 and lines == 11
    # the cut last line continues the record above; bytes that are not UTF-8 are read as cp1252
    assert recs["message"][-1].split("\n")[-1] == "2018-12-08 18:3\ufffd\u00fe tail"
    assert recs["line_count"].to_list() == [1, 1, 4, 1, 2]
    assert lines - recs.height - rej.height == 5  # 4 continuations and the blank line are folded


def test_cbs_is_not_confused_with_its_neighbours() -> None:
    wu = "2024/05/14 09:12:31.4417750 5120  8804  ProtocolTalker  *FAILED* [8024402C] SyncServerUpdatesInternal failed\r\n"
    assert detect("CBS.log", wu.encode()).parser.name == "windowsupdate"
    oms = "2024-05-14 09:12:31> Starting patch run\n"
    assert detect("CBS.log", oms.encode()).parser.name == "omsupdatemgmt"
    worker = "2024-05-14 09:12:31 (1234)worker : Job started\n"
    assert detect("CBS.log", worker.encode()).parser.name == "workerlog"
    assert detect("WindowsUpdate.log", CBS_SAMPLE.encode()).parser.name == "cbs"
    assert detect("x", b"2018-12-08 18:38:11, Nonsense   CBS  x\r\n").parser.name == "text"


def _independent_counts(path: Path) -> tuple[int, list[tuple[int, str, str, str, str]]]:
    """Prefixed lines and the Error lines of a real CBS.log, found without the parser."""
    rx = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}), (Info|Warning|Error) +(\S+) +(.*)$")
    starts, errors = 0, []
    for no, line in enumerate(path.read_bytes().decode("utf-8-sig", errors="replace").split("\r\n"), 1):
        m = rx.match(line)
        if m:
            starts += 1
            if m.group(2) == "Error":
                errors.append((no, m.group(1), m.group(3), m.group(4), line))
    return starts, errors


@pytest.mark.parametrize("name", ["full-CBS.log", "full-CBS-sfc-win7.log"])
def test_real_cbs_logs_parse_whole(name: str) -> None:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    data = path.read_bytes()
    fmt, recs, rej, lines = parse_bytes(data, name)
    starts, errors = _independent_counts(path)
    assert fmt == "cbs" and recs.height == starts and rej.height == 0
    assert lines == data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    by_line = {r["line_no"]: r for r in recs.filter(pl.col("level") == "ERROR").iter_rows(named=True)}
    assert sorted(by_line) == [e[0] for e in errors]
    no, stamp, component, message, raw = errors[0]
    r = by_line[no]
    assert r["ts"] == datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert (r["component"], r["message"].split("\n")[0], r["raw"].split("\n")[0]) == (component, message, raw)


def test_real_cbs_and_dism_excerpts_are_read_as_cbs() -> None:
    truth_file = REAL / "truth.jsonl"
    if not truth_file.exists():
        pytest.skip(f"{truth_file} not present")
    entries = [json.loads(x) for x in truth_file.read_text().splitlines()]
    picked = [t for t in entries if t["kind"] == "cbs" or "/dism.log#" in t["source_url"].lower()]
    assert len(picked) >= 15
    for t in picked:
        fmt, recs, rej, _ = parse_bytes((REAL / t["file"]).read_bytes(), t["file"])
        assert fmt == "cbs" and rej.height == 0 and recs.height > 0, t["file"]
        found = {c for codes in extract_codes(recs["message"]).to_list() for c in codes}
        assert set(t["codes"]) <= found, t["file"]


def test_real_cbs_log_scan_finds_the_codes_a_reader_names(tmp_path: Path) -> None:
    path = REAL / "full-CBS.log"
    if not path.exists():
        pytest.skip(f"{path} not present")
    truth = next(json.loads(x) for x in (REAL / "truth.jsonl").read_text().splitlines()
                 if json.loads(x)["file"] == "full-CBS.log")
    r = run_cli("scan", str(path), "-o", str(tmp_path / "out"))
    assert r.returncode in (0, 1), r.stderr
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["accounted"] and s["formats"]["cbs"]["files"] == 1 and s["rejects"] == 0
    codes = set(pl.read_parquet(tmp_path / "out" / "matches.parquet")["code"])
    assert set(truth["codes"]) <= codes


# -- decoder -----------------------------------------------------------------------------------------


def test_servicing_codes_are_decoded_and_defined_once() -> None:
    folder = REPO / "patterns" / "codes"
    codes = load_codes()
    servicing = tomllib.loads((folder / "servicing.toml").read_text(encoding="utf-8"))["code"]
    wu = {row["code"] for row in tomllib.loads((folder / "wu_errors.toml").read_text(encoding="utf-8"))["code"]}
    assert len(servicing) >= 10
    for row in servicing:
        assert re.fullmatch(r"0x[0-9A-F]{8}", row["code"]) and row["name"] and row["meaning"]
        assert row["code"] not in wu, f"{row['code']} is already in wu_errors.toml"
        assert codes[row["code"]].name == row["name"]
    for code in ("0x800F0922", "0x800F081F", "0x800F0831", "0x80073712", "0x800736CC", "0x800F0906",
                 "0x800F0823", "0x800F0982", "0x80070BC9"):
        assert codes[code].name and codes[code].meaning
    assert codes["0x800F0922"].name == "CBS_E_INSTALLERS_FAILED"


def test_new_formats_are_listed(capsys) -> None:
    from umtriage.pipeline.cli import main

    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    for name in ("windowsupdate-etl", "reportingevents", "cbs"):
        assert name in PARSERS and re.search(rf"^{name}\s", out, re.M)
