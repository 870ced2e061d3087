"""Azure Update Manager, guest agent and Arc parsers on real files (the shared corpus, when it is
there) and on files written the way their writers write them (azure_fixtures)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from azure_fixtures import ACTIVITY_ID, APT_INSTALL, EXT, HOSTS, WAAGENT_OLD_LINES, write_azure_samples
from conftest import SAMPLES, SHARED_CORPUS
from event_fixtures import FORMS, write_samples
from linux_fixtures import write_linux_samples
from test_parsers_linux_text import assert_accounted, parse_file
from umtriage.parsers import FAMILY, PARSERS, arclog, linuxpatchext, patchext_status, waagent, windowspatchext
from umtriage.parsers.base import SRC, ParseContext
from umtriage.parsers.detect import detect
from umtriage.parsers.textio import HEAD_BYTES, frame_lines

REAL = SHARED_CORPUS / "real"
NEW = {"linuxpatchext": "patchext", "patchext-status": "patchext", "windowspatchext": "patchext",
       "waagent": "waagent", "arc": "arc"}
#: Which parser must read each generated file.
EXPECTED = {
    "3.core.log": "linuxpatchext", "3.ext.log": "linuxpatchext", "3.status": "patchext-status",
    "waagent.log": "waagent", "himds.log": "arc", "azcmagent.log": "arc",
    "WindowsUpdateExtension.log": "windowspatchext", "CommandExecution.log": "windowspatchext",
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def detected(path: Path, name: str | None = None) -> str | None:
    det = detect(name or path.as_posix(), path.read_bytes()[:HEAD_BYTES])
    return det.parser.name if det.parser else None


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    return write_azure_samples(tmp_path_factory.mktemp("aum"))


# --- the table, detection both ways ------------------------------------------------------------

def test_new_parsers_are_registered_with_their_families() -> None:
    for name, family in NEW.items():
        assert name in PARSERS and FAMILY[name] == family
    assert list(PARSERS)[-1] == "text"  # the generic parser still comes last


def test_formats_command_lists_them(cli) -> None:
    r = cli("formats")
    assert r.returncode == 0
    listed = {line.split()[0] for line in r.stdout.splitlines() if line.strip()}
    assert listed == set(PARSERS) and set(NEW) <= listed
    assert "format not public" in next(line for line in r.stdout.splitlines() if line.startswith("windowspatchext"))


def test_each_generated_file_is_detected_by_its_parser(files: dict[str, Path]) -> None:
    assert {name: detected(path) for name, path in files.items()} == EXPECTED


def test_existing_formats_are_not_claimed_by_the_new_parsers(tmp_path: Path) -> None:
    for path in write_linux_samples(tmp_path / "lx"):
        assert detected(path) == ("omsupdatemgmt" if path.name == "omsupdatemgmt.log" else "workerlog"), path.name
    for path in write_samples(tmp_path / "ev", "SRV01"):
        want = next(parser for suffix, (_, parser) in FORMS.items() if path.name.endswith(suffix))
        assert detected(path) == want, path.name
    for path in sorted(SAMPLES.glob("*/WindowsUpdate.log")):
        assert detected(path) == "windowsupdate"


def test_public_and_real_corpus_files_keep_their_parsers() -> None:
    if not REAL.exists():
        pytest.skip("shared corpus not present")
    truth = [json.loads(line) for line in (REAL / "truth.jsonl").read_text().splitlines()]
    for t in truth:
        got = detected(REAL / t["file"], t["file"])
        if t["kind"] == "waagent":
            assert got == "waagent", t["file"]
        else:  # the Arc excerpts are console and installer text, not the agent's logrus log
            assert got not in NEW, t["file"]
    for path in sorted((SHARED_CORPUS / "public").glob("windowsupdate-*")):
        assert detected(path) not in NEW, path.name


def test_new_parsers_do_not_claim_each_others_files(files: dict[str, Path]) -> None:
    for name, path in files.items():
        head = detect(path.as_posix(), path.read_bytes()[:HEAD_BYTES]).head
        claims = {spec.name for spec in PARSERS.values() if spec.name in NEW and spec.detect(head)}
        assert claims == {EXPECTED[name]}, name


def test_lookalikes_stay_with_other_parsers(tmp_path: Path) -> None:
    """Same stamps, other programs: a docker logrus log, an omsupdatemgmt-style log, a stamped log
    that is not named like the Windows extension's."""
    docker = tmp_path / "dockerd.log"
    docker.write_text('time="2024-06-11T10:00:00Z" level=error msg="pull failed" image=nginx\n')
    oms = tmp_path / "run.log"
    oms.write_text("2024-06-11 10:00:00> Starting patch operation.\n2024-06-11 10:00:01> ERROR: failed\n")
    other = tmp_path / "app.log"
    other.write_text("2024-06-12 05:00:48.990 [Error] Search for updates failed with HResult 0x8024402C\n")
    assert detected(docker) == "text"
    assert detected(oms) == "omsupdatemgmt"
    assert detected(other) == "text"
    named = tmp_path / "WindowsUpdateExtension.log"
    named.write_text("no stamp here\nnor here\n")
    assert detected(named) == "text"  # the name alone is not enough


# --- LinuxPatchExtension core.log and ext.log --------------------------------------------------

def test_core_log_counts_and_accounting(files: dict[str, Path]) -> None:
    parsed = parse_file(files["3.core.log"], linuxpatchext.PARSER)
    assert parsed.records.height == 12 and parsed.rejects.height == 0
    assert_accounted(files["3.core.log"], parsed)
    assert parsed.records["component"].unique().to_list() == ["core"]
    assert parsed.records["level"].value_counts().sort("level").rows() == [("ERROR", 3), ("INFO", 8), ("WARNING", 1)]
    assert parsed.notes == ["line 24: '<Log file was closed.>' removed from the message"]


def test_core_log_record_field_by_field(files: dict[str, Path]) -> None:
    records = parse_file(files["3.core.log"], linuxpatchext.PARSER).records
    r = records.filter(pl.col("message").str.contains("invoked using")).row(0, named=True)
    assert r["line_no"] == 17 and r["line_count"] == 1
    assert r["ts"] == utc(2024, 6, 11, 22, 0, 44)
    assert r["level"] == "ERROR" and r["component"] == "core" and r["kind"] == "line"
    assert r["message"] == (
        f"ERROR:Package manager was invoked using: {APT_INSTALL}  - Return code from package manager: 100  - "
        "Output from package manager: E: dpkg was interrupted, you must manually run 'sudo dpkg --configure -a' "
        "to correct the problem."
    )
    assert r["raw"].startswith("2024-06-11T22:00:44Z> ERROR:Package manager")
    raw = files["3.core.log"].read_bytes()
    assert raw[r["byte_offset"]:].startswith(b"2024-06-11T22:00:44Z> ERROR:")


def test_core_log_folds_splash_and_debug_lines(files: dict[str, Path]) -> None:
    records = parse_file(files["3.core.log"], linuxpatchext.PARSER).records
    first = records.row(0, named=True)
    assert first["kind"] == "banner" and first["line_no"] == 2 and first["line_count"] == 7
    assert first["message"].splitlines()[1] == "-" * 128
    start = records.filter(pl.col("message").str.starts_with("Patch operation starting")).row(0, named=True)
    assert start["line_count"] == 4
    assert start["message"].splitlines()[1:] == [
        "\tDEBUG: Settings read from 3.settings:", "\tmaintenanceWindow=PT2H, rebootSetting=IfRequired",
        "\tclassificationsToInclude=Critical,Security",
    ]
    assert start["message"].startswith(f"Patch operation starting. [Operation=Installation][Sequence=3][Activity={ACTIVITY_ID}]")


def test_ext_log_decodes_the_quoted_message_and_drops_its_repeat(files: dict[str, Path]) -> None:
    parsed = parse_file(files["3.ext.log"], linuxpatchext.PARSER)
    assert_accounted(files["3.ext.log"], parsed)
    rows = parsed.records.select("ts", "component", "level", "message").rows()
    assert rows == [
        (utc(2024, 6, 11, 22, 0, 1), "ext", "INFO", "-" * 128),
        (utc(2024, 6, 11, 22, 0, 1), "ext", "INFO", "Enable requested. [Sequence=3][Operation=Installation] "
         "DEBUG: Handler environment read from HandlerEnvironment.json"),
        (utc(2024, 6, 11, 22, 0, 2), "ext", "INFO", "Retaining the 10 newest core and ext logs."),
        (utc(2024, 6, 11, 22, 0, 3), "ext", "INFO", "Core process started. [Pid=24117][Python=python3]"),
        (utc(2024, 6, 12, 0, 0, 9), "ext", "ERROR",
         "ERROR: Core process finished with failures. [ExitCode=1][Operation=Installation]"),
        (utc(2024, 6, 12, 0, 0, 9), "ext", "WARNING", "WARNING: Status file reports 'error' for PatchInstallationSummary."),
    ]


def test_ext_log_double_quoted_literal_and_escapes(tmp_path: Path) -> None:
    path = tmp_path / "1.ext.log"
    path.write_text("\n2024-06-11 22:00:01> \"it's a 'quote'\\n and a \\\\ backslash\"\n")
    records = parse_file(path, linuxpatchext.PARSER).records
    assert records["message"].to_list() == ["it's a 'quote'  and a \\ backslash"]


def test_core_log_ignores_assume_tz(files: dict[str, Path]) -> None:
    parsed = parse_file(files["3.core.log"], linuxpatchext.PARSER, assume_tz="Europe/Stockholm")
    assert parsed.records["ts"][1] == utc(2024, 6, 11, 22, 0, 5)


# --- status files ---------------------------------------------------------------------------------

def test_status_file_items_and_accounting(files: dict[str, Path]) -> None:
    parsed = parse_file(files["3.status"], patchext_status.PARSER)
    assert parsed.rejects.height == 0
    assert parsed.records.select("kind", "component", "level").rows() == [
        ("status", "status", "ERROR"),
        ("substatus", "PatchInstallationSummary", "ERROR"),
        ("mw", "PatchInstallationSummary", "ERROR"),
        ("reboot", "PatchInstallationSummary", "WARNING"),
        ("error", "PatchInstallationSummary", "ERROR"),
        ("error", "PatchInstallationSummary", "ERROR"),
        ("patch", "PatchInstallationSummary", "ERROR"),
        ("patch", "PatchInstallationSummary", "WARNING"),
        ("patch", "PatchInstallationSummary", "WARNING"),
        ("substatus", "PatchMetadataForHealthStore", "INFO"),
    ]
    # one physical line, ten items: the lines are raised to the items, as for one-line JSON exports
    assert parsed.lines == 10 and parsed.notes == ["9 event(s) shared a physical line with another"]


def test_status_file_records_field_by_field(files: dict[str, Path]) -> None:
    records = parse_file(files["3.status"], patchext_status.PARSER).records
    top = records.row(0, named=True)
    assert top["message"] == "Azure Patch Management: Installation error, code 1"
    assert top["ts"] == utc(2024, 6, 12, 0, 0, 7) and top["line_no"] == 1 and top["byte_offset"] == 0
    sub = records.row(1, named=True)
    assert sub["message"] == (
        "PatchInstallationSummary error, code 1; rebootStatus Required; maintenanceWindowExceeded true; "
        "installedPatchCount 1; failedPatchCount 1; pendingPatchCount 2; excludedPatchCount 0; "
        "notSelectedPatchCount 1; 2 error/s reported. The latest 2 error/s are shared in detail. To view all "
        f"errors, review this log file on the machine: /var/log/azure/{EXT}/3.core.log"
    )
    messages = records["message"].to_list()
    assert "PACKAGE_MANAGER_FAILURE: Package manager on machine is not healthy. To fix, please run: sudo dpkg " \
           "--configure -a" in messages
    assert "Patch Failed: libssl1.1 1.1.1f-1ubuntu2.22 (Security)" in messages
    assert "Patch Pending: linux-image-generic 5.4.0.182.180 (Critical)" in messages
    assert not any("ca-certificates" in m or "vim" in m for m in messages)  # installed / not selected
    patch = records.filter(pl.col("kind") == "patch").row(0, named=True)
    assert json.loads(patch["raw"])["patchId"] == "libssl1.1_1.1.1f-1ubuntu2.22_Ubuntu_20.04"
    assert "maintenance window exceeded" in records.filter(pl.col("kind") == "mw")["message"][0]


def _status(summary: object, top_message: str = "") -> str:
    message = summary if isinstance(summary, str) else json.dumps(summary)
    return json.dumps([{"timestampUTC": "2024-06-12T00:00:07Z", "status": {
        "name": "Azure Patch Management", "operation": "Assessment", "status": "success", "code": 0,
        "formattedMessage": {"message": top_message},
        "substatus": [{"name": "PatchAssessmentSummary", "status": "success", "code": 0,
                       "formattedMessage": {"message": message}}]}}], indent=2)


def test_status_pretty_printed_assessment_counts_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "2.status"
    path.write_text(_status({"rebootPending": False, "criticalAndSecurityPatchCount": 4, "otherPatchCount": 9,
                             "patches": [{"name": "x", "classifications": ["Other"]}],
                             "errors": {"code": 0, "details": [], "message": "0 error/s reported."}}) + "\n")
    parsed = parse_file(path, patchext_status.PARSER)
    lines = path.read_text().count("\n")
    assert parsed.lines == lines and parsed.records.height == 2 and parsed.rejects.height == 0
    assert parsed.records["message"][1] == ("PatchAssessmentSummary success, code 0; rebootPending false; "
                                            "criticalAndSecurityPatchCount 4; otherPatchCount 9; 0 error/s reported.")


@pytest.mark.parametrize(("text", "reason"), [
    ('[{"status": {"name": "x", "formattedMessage": {"message": ""}, "substatus": [', "malformed_json"),
    ("[" * 100_000 + "]" * 100_000, "json_too_deep"),
    ('["status", "formattedMessage"]', "unexpected_json"),
])
def test_damaged_status_documents_become_rejects(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "9.status"
    path.write_text(text)
    parsed = parse_file(path, patchext_status.PARSER)
    assert parsed.records.height == 0
    assert parsed.rejects["reason"].to_list() in ([reason], [reason, reason])
    assert parsed.rejects["raw"].str.len_chars().max() <= 2000
    assert parsed.lines >= 1


def test_damaged_summary_inside_a_good_status_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "4.status"
    path.write_text(_status('{"rebootPending": tru'))
    parsed = parse_file(path, patchext_status.PARSER)
    assert parsed.rejects["reason"].to_list() == ["malformed_json"]
    assert parsed.records["kind"].to_list() == ["status", "substatus"]
    assert parsed.records["message"][1] == 'PatchAssessmentSummary success, code 0: {"rebootPending": tru'


def test_status_items_are_bounded_in_number_and_length(tmp_path: Path) -> None:
    path = tmp_path / "6.status"
    patches = [{"name": f"p{i}", "version": "1", "patchInstallationState": "Failed"}
               for i in range(patchext_status.MAX_RECORDS + 50)]
    path.write_text(_status({"patches": patches}, top_message="x" * (patchext_status.MAX_MESSAGE_CHARS + 10)))
    parsed = parse_file(path, patchext_status.PARSER)
    assert parsed.records.height == patchext_status.MAX_RECORDS
    assert parsed.records["message"].str.len_chars().max() == patchext_status.MAX_MESSAGE_CHARS
    assert f"52 status item(s) past the first {patchext_status.MAX_RECORDS} were not kept" in parsed.notes
    assert f"1 status message(s) cut at {patchext_status.MAX_MESSAGE_CHARS} characters" in parsed.notes


def test_status_over_the_size_bound_is_one_reject_with_every_line_counted(tmp_path: Path) -> None:
    path = tmp_path / "5.status"
    line = '{"status": "x", "formattedMessage": "' + "y" * 1000 + '"},\n'
    path.write_text("[\n" + line * (patchext_status.MAX_STATUS_CHARS // len(line) + 10) + "{}]")
    parsed = parse_file(path, patchext_status.PARSER)
    assert parsed.rejects["reason"].to_list() == ["too_large"]
    assert parsed.lines == path.read_text().count("\n") + 1


# --- waagent.log ----------------------------------------------------------------------------------

def test_real_waagent_log_counts_and_one_record() -> None:
    path = REAL / "full-waagent.log"
    if not path.exists():
        pytest.skip("shared corpus not present")
    parsed = parse_file(path, waagent.PARSER)
    assert (parsed.records.height, parsed.rejects.height, parsed.lines) == (92, 0, 114)
    assert_accounted(path, parsed)
    r = parsed.records.row(40, named=True)
    assert (r["line_no"], r["byte_offset"], r["component"], r["level"], r["message"]) == (
        41, 3841, "ExtHandler", "INFO", "Routes:None")
    assert r["ts"] == utc(2019, 4, 12, 6, 17, 48, 157944)
    fw = parsed.records.filter(pl.col("line_count") > 1)
    assert fw["line_count"].to_list() == [9, 9]  # iptables listings folded into "Firewall rules:"
    assert fw["message"].str.starts_with("Firewall rules:").all()


def test_real_waagent_excerpts_give_their_errors() -> None:
    if not REAL.exists():
        pytest.skip("shared corpus not present")
    parsed = parse_file(REAL / "032.txt", waagent.PARSER)
    err = parsed.records.filter(pl.col("level") == "ERROR").row(0, named=True)
    assert "[ExtensionError] Non-zero exit code: 1" in err["message"] and err["component"] is None
    heartbeat = parse_file(REAL / "034.txt", waagent.PARSER).records.row(0, named=True)
    assert heartbeat["component"] == "ExtHandler" and heartbeat["message"].startswith("[HEARTBEAT] Agent")


def test_generated_waagent_log_new_form(files: dict[str, Path]) -> None:
    parsed = parse_file(files["waagent.log"], waagent.PARSER)
    assert_accounted(files["waagent.log"], parsed)
    assert parsed.records.height == 9
    err = parsed.records.filter(pl.col("level") == "ERROR").row(0, named=True)
    assert err["component"] == "ExtHandler" and err["line_no"] == 8 and err["line_count"] == 5  # + 2 blank lines
    assert err["ts"] == utc(2024, 6, 12, 0, 0, 10, 118245)
    assert err["message"].startswith(f"Event: name={EXT}, op=Enable, message=[ExtensionOperationError] "
                                     "Non-zero exit code: 1,")
    assert err["message"].endswith(", duration=7209136")
    monitor = parsed.records.filter(pl.col("component") == "MonitorHandler")["message"].to_list()
    assert monitor == ["ExtHandler Stopped tracking cgroup walinuxagent.service"]  # prefix differs: kept


def test_waagent_old_forms(tmp_path: Path) -> None:
    path = tmp_path / "waagent.log"
    path.write_text("\n".join(WAAGENT_OLD_LINES) + "\n")
    parsed = parse_file(path, waagent.PARSER)
    assert parsed.records.select("component", "level", "line_count").rows() == [
        ("Daemon", "INFO", 1), (None, "WARNING", 1), (None, "ERROR", 3), ("ExtHandler", "INFO", 1)]
    assert parsed.records["ts"][0] == utc(2019, 5, 1, 10, 20, 30, 123456)


# --- Arc ------------------------------------------------------------------------------------------

def test_himds_log_fields(files: dict[str, Path]) -> None:
    parsed = parse_file(files["himds.log"], arclog.PARSER)
    assert_accounted(files["himds.log"], parsed)
    assert parsed.records["level"].to_list() == ["INFO", "INFO", "WARNING", "ERROR", "INFO"]
    r = parsed.records.row(3, named=True)
    assert r["ts"] == utc(2024, 6, 12, 4, 58, 40)  # -07:00 on the line wins over --assume-tz
    assert r["message"] == 'Failed to refresh the managed identity token: "AADSTS700027: certificate expired" ' \
                           "component=identity"
    assert r["component"] == "identity" and r["line_no"] == 4
    assert parsed.records["ts"][2] == utc(2024, 6, 12, 4, 57, 12, 250000)


def test_arc_bare_msg_and_unprefixed_lines(tmp_path: Path) -> None:
    path = tmp_path / "azcmagent.log"
    path.write_text('time="2024-06-11T10:00:00Z" level=fatal msg=panic\ngoroutine 1 [running]:\n'
                    'time="2024-06-11T10:00:01Z" level=debug\n')
    parsed = parse_file(path, arclog.PARSER)
    assert parsed.records.select("level", "message", "line_count").rows() == [
        ("FATAL", "panic\ngoroutine 1 [running]:", 2), ("INFO", "", 1)]


# --- WindowsPatchExtension ------------------------------------------------------------------------

def test_windows_update_extension_log(files: dict[str, Path]) -> None:
    parsed = parse_file(files["WindowsUpdateExtension.log"], windowspatchext.PARSER)
    assert_accounted(files["WindowsUpdateExtension.log"], parsed)
    assert parsed.records["level"].to_list() == ["INFO", "INFO", "ERROR", "WARNING", "INFO"]
    err = parsed.records.row(2, named=True)
    assert err["ts"] == utc(2024, 6, 12, 5, 0, 48, 990000) and err["line_count"] == 3
    assert err["message"].splitlines() == [
        "[Error] Search for updates failed with HResult 0x8024402C",
        "System.Runtime.InteropServices.COMException (0x8024402C): Exception from HRESULT: 0x8024402C",
        "   at WUApiLib.IUpdateSearcher.Search(String criteria)",
    ]


def test_windows_update_extension_log_in_utf16_gives_the_same_records(tmp_path: Path,
                                                                      files: dict[str, Path]) -> None:
    path = tmp_path / "WindowsUpdateExtension.log"
    path.write_bytes(b"\xff\xfe" + files[path.name].read_text(encoding="utf-8").encode("utf-16-le"))
    assert detected(path) == "windowspatchext"
    utf8 = parse_file(files[path.name], windowspatchext.PARSER).records
    utf16 = parse_file(path, windowspatchext.PARSER).records
    assert utf16.select("ts", "level", "message", "line_no").equals(utf8.select("ts", "level", "message", "line_no"))


def test_command_execution_log_us_stamps_and_assume_tz(files: dict[str, Path]) -> None:
    parsed = parse_file(files["CommandExecution.log"], windowspatchext.PARSER, assume_tz="+0200")
    assert parsed.records["ts"].to_list() == [utc(2024, 6, 12, 3, 0, 1), utc(2024, 6, 12, 3, 0, 49)]


def test_windowspatchext_lines_before_the_first_stamp_are_records(tmp_path: Path) -> None:
    path = tmp_path / "CommandExecution.log"
    path.write_text("Header of the log\n2024-06-12 05:00:01 started\n2024-06-12 05:00:02 done\n\n")
    parsed = parse_file(path, windowspatchext.PARSER)
    assert parsed.records["message"].to_list() == ["Header of the log", "started", "done"]
    assert_accounted(path, parsed)


# --- every line parser: groups, damage --------------------------------------------------------------

LINE_PARSERS = ("3.core.log", "3.ext.log", "waagent.log", "himds.log", "WindowsUpdateExtension.log")


@pytest.mark.parametrize("name", LINE_PARSERS)
def test_group_parse_equals_single_file_parse(files: dict[str, Path], name: str) -> None:
    spec = PARSERS[EXPECTED[name]]
    single = parse_file(files[name], spec).records
    other = files["CommandExecution.log" if name != "CommandExecution.log" else "himds.log"]
    frames = []
    for k, path in enumerate([files[name], other]):
        for block in frame_lines(io.BytesIO(path.read_bytes()), "auto"):
            frames.append(block.frame.with_columns(pl.lit(k, dtype=pl.UInt32).alias(SRC)))
    got = spec.parse_group(pl.concat(frames), [files[name].name, other.name], ParseContext(source="", encoding=""))
    mine = got.records.filter(pl.col(SRC) == 0).drop(SRC)
    assert mine.select(single.columns).equals(single)


@pytest.mark.parametrize("name", LINE_PARSERS)
def test_damaged_line_files_account_for_every_line(tmp_path: Path, files: dict[str, Path], name: str) -> None:
    """Truncated mid-line, an overlong line, and stray binary bytes: nothing lost, nothing raised."""
    data = files[name].read_bytes()
    damaged = data[: len(data) * 2 // 3] + b"\n" + b"x" * (1 << 21) + b"\n\x00\xff\xfe garbage \x81\n" + data[:200]
    path = tmp_path / files[name].name
    path.write_bytes(damaged)
    parsed = parse_file(path, PARSERS[EXPECTED[name]])
    lines = damaged.count(b"\n") + (0 if damaged.endswith(b"\n") else 1)
    blank = sum(1 for line in damaged.split(b"\n")[:lines] if not line.strip())
    assert parsed.lines == lines
    assert parsed.records["line_count"].sum() + parsed.rejects.height + blank == lines
    assert "line_too_long" in parsed.rejects["reason"].to_list()


def test_scan_of_the_hosts_accounts_for_every_line(tmp_path: Path, cli) -> None:
    root = tmp_path / "in"
    write_azure_samples(root)
    (root / "AUM-LNX07" / "bad.status").write_text('[{"status": {"formattedMessage": {"message": "{"}}, "substatus": [')
    r = cli("scan", str(root), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["accounted"] is True and not s.get("errors")
    assert {f["format"] for f in s["sources"]} == set(NEW)
    assert s["rejects_by_reason"] == {"malformed_json": 1}
    assert {f["host"] for f in s["sources"]} == {h.lower() for h in HOSTS}
