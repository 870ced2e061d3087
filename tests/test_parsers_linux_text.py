"""omsupdatemgmt, workerlog and text parsers on real files written to tmp_path."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from linux_fixtures import APT_COMMAND, JOB_ID, RUNBOOK, write_linux_samples
from umtriage.parsers import omsupdatemgmt, plaintext, workerlog
from umtriage.parsers.base import Head, ParseContext, ParserSpec
from umtriage.parsers.linefold import fold_lines
from umtriage.parsers.textio import HEAD_BYTES, decode_head, frame_lines, looks_binary, sniff_encoding

CORPUS = Path(__file__).parents[2] / "shared" / "corpus"

WU_WIN10 = "2024/04/11 10:15:02.1234567 1234  5678  Agent           * START * Finding updates\n"
WU_CLASSIC = "2024-04-11\t10:15:02:123\t 908\t45c\tAgent\t  * WARNING: Exit code = 0x8024402C\n"
WORKER_LINE = "2024-05-14 03:50:10 (30412)sandbox : Job state changed to failed. [jobId=1]\n"
OMS_LINE = "2024-05-14 03:50:08> Stopped patch installation as it is past the maintenance window cutoff time.\n"
XML = (
    '<?xml version="1.0" encoding="utf-8"?>\n<Events>\n'
    '<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>'
    '<Provider Name="HealthService"/><EventID>4502</EventID></System></Event>\n</Events>\n'
)
JSON = '{"time": "2024-05-14T03:50:10Z", "operationName": "Microsoft.Automation/automationAccounts/jobs/write"}\n'
CSV = "TimeGenerated,Computer,UpdateRunName,Result\n2024-05-14T03:50:10Z,lnx-web-02,weekly,Failed\n"


@dataclass
class Parsed:
    records: pl.DataFrame
    rejects: pl.DataFrame
    lines: int
    notes: list[str]


def head_of(data: bytes, name: str = "sample") -> Head:
    raw = data[:HEAD_BYTES]
    encoding, bom = sniff_encoding(raw)
    return Head(name, raw, decode_head(raw, encoding, bom), encoding, looks_binary(raw, encoding))


def parse_file(path: Path, spec: ParserSpec, **ctx_args) -> Parsed:
    """Run a parser the way the pipeline does: sniff, skip the BOM, stream batches."""
    encoding, bom = sniff_encoding(path.read_bytes()[:HEAD_BYTES])
    ctx = ParseContext(source=path.name, encoding=encoding, start_offset=bom, **ctx_args)
    with path.open("rb") as fh:
        fh.seek(bom)
        batches = list(spec.parse(fh, ctx))
    return Parsed(
        pl.concat([b.records for b in batches]),
        pl.concat([b.rejects for b in batches]),
        sum(b.lines for b in batches),
        [n for b in batches for n in b.notes],
    )


def physical_lines(path: Path) -> tuple[int, int]:
    """(lines, blank lines) of a file, counted the way frame_lines splits it."""
    data = path.read_bytes()
    encoding, bom = sniff_encoding(data[:HEAD_BYTES])
    codec = encoding if encoding.startswith("utf-16") else "utf-8"
    text = data[bom:].decode(codec)
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return len(lines), sum(1 for line in lines if not line.strip())


def assert_accounted(path: Path, parsed: Parsed) -> None:
    """Every physical line is in a record, a reject, or folded as blank."""
    lines, blank = physical_lines(path)
    assert parsed.lines == lines
    assert parsed.records["line_count"].sum() + parsed.rejects.height + blank == lines


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def samples(tmp_path: Path) -> dict[str, Path]:
    return {p.name: p for p in write_linux_samples(tmp_path / "linux")}


def reencode(src: Path, dest: Path, *, crlf: bool = False, utf16: bool = False) -> Path:
    text = src.read_text(encoding="utf-8")
    if crlf:
        text = text.replace("\n", "\r\n")
    dest.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le") if utf16 else text.encode("utf-8"))
    return dest


# --- omsupdatemgmt -----------------------------------------------------------------------------


def test_omsupdatemgmt_sample_counts_and_accounting(samples: dict[str, Path]) -> None:
    path = samples["omsupdatemgmt.log"]
    parsed = parse_file(path, omsupdatemgmt.PARSER)
    assert parsed.records.height == 15
    assert parsed.rejects.height == 0
    assert_accounted(path, parsed)
    assert parsed.records["format"].unique().to_list() == ["omsupdatemgmt"]
    assert parsed.records.filter(pl.col("kind") == "banner")["line_no"].to_list() == [2]
    assert parsed.records["level"].value_counts(sort=True).rows() == [("INFO", 10), ("ERROR", 4), ("WARNING", 1)]


def test_omsupdatemgmt_record_with_package_manager_output(samples: dict[str, Path]) -> None:
    path = samples["omsupdatemgmt.log"]
    data = path.read_bytes()
    rec = parse_file(path, omsupdatemgmt.PARSER).records.filter(pl.col("line_no") == 11).row(0, named=True)
    assert rec["kind"] == "line"
    assert rec["ts"] == utc(2024, 5, 14, 2, 0, 34)
    assert rec["level"] == "ERROR"
    assert rec["line_count"] == 3
    assert rec["byte_offset"] == data.index(b"2024-05-14 02:00:34> [ERROR]")
    assert rec["message"] == (
        f"[ERROR] Package manager was invoked using: {APT_COMMAND} - Return code from package manager: 100"
        " - Output from package manager:\n"
        "|\tReading package lists...\n"
        "|\tE: dpkg was interrupted, you must manually run 'sudo dpkg --configure -a' to correct the problem."
    )
    assert rec["raw"].startswith("2024-05-14 02:00:34> [ERROR]")
    assert rec["source"] == "omsupdatemgmt.log"
    assert rec["pid"] is None


def test_omsupdatemgmt_debug_lines_fold_into_the_record_above(samples: dict[str, Path]) -> None:
    rec = parse_file(samples["omsupdatemgmt.log"], omsupdatemgmt.PARSER).records.row(1, named=True)
    assert rec["line_no"] == 3
    assert rec["line_count"] == 3
    lines = rec["message"].split("\n")
    assert lines[0] == f"Starting patch operation. [Runbook={RUNBOOK}][Operation=Installation]"
    assert lines[1].startswith("\tDEBUG: Configuration:")
    assert lines[2].startswith("\tVERBOSE: Computer=lnx-web-02")


def test_omsupdatemgmt_glued_close_marker_is_removed_and_noted(samples: dict[str, Path]) -> None:
    parsed = parse_file(samples["omsupdatemgmt.log"], omsupdatemgmt.PARSER)
    last = parsed.records.row(-1, named=True)
    assert last["kind"] == "line"
    assert last["line_no"] == 23
    assert last["message"].endswith("/automationworker/omsupdatemgmt.log")
    assert "<Log file was closed.>" not in last["message"]
    assert last["raw"].endswith("omsupdatemgmt.log<Log file was closed.>")
    assert len(parsed.notes) == 1
    assert "line 23" in parsed.notes[0]


@pytest.mark.parametrize("variant", ["crlf", "utf16", "utf16_crlf"])
def test_omsupdatemgmt_crlf_and_utf16_give_the_same_records(
    samples: dict[str, Path], tmp_path: Path, variant: str
) -> None:
    src = samples["omsupdatemgmt.log"]
    path = reencode(src, tmp_path / f"{variant}.log", crlf="crlf" in variant, utf16="utf16" in variant)
    assert omsupdatemgmt.detect(head_of(path.read_bytes()))
    base = parse_file(src, omsupdatemgmt.PARSER).records
    parsed = parse_file(path, omsupdatemgmt.PARSER)
    assert_accounted(path, parsed)
    cols = ["line_no", "line_count", "ts", "level", "kind", "message"]
    assert parsed.records.select(cols).equals(base.select(cols))
    text = path.read_bytes()
    anchor = "2024-05-14 02:00:34> [ERROR]"
    offset = parsed.records.filter(pl.col("line_no") == 11)["byte_offset"].item()
    if "utf16" in variant:
        assert text[offset : offset + 2 * len(anchor)].decode("utf-16-le") == anchor
    else:
        assert offset == text.index(anchor.encode())


def test_omsupdatemgmt_small_batches_match_one_batch(samples: dict[str, Path]) -> None:
    path = samples["omsupdatemgmt.log"]
    whole = parse_file(path, omsupdatemgmt.PARSER)
    small = parse_file(path, omsupdatemgmt.PARSER, batch_bytes=64)
    assert small.records.equals(whole.records)
    assert small.lines == whole.lines


def test_omsupdatemgmt_continuation_before_first_record_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "omsupdatemgmt.log"
    path.write_bytes(b"\tDEBUG: left over\n|\tE: partial\n\n2024-05-14 02:00:07> Starting.\n\tDEBUG: ok\n")
    parsed = parse_file(path, omsupdatemgmt.PARSER)
    assert parsed.rejects["reason"].to_list() == ["orphan_continuation", "orphan_continuation"]
    assert parsed.rejects["line_no"].to_list() == [1, 2]
    assert parsed.rejects["byte_offset"].to_list() == [0, 18]
    assert parsed.records.select("line_no", "line_count", "message").rows() == [(4, 2, "Starting.\n\tDEBUG: ok")]
    assert_accounted(path, parsed)


def test_omsupdatemgmt_grammar_is_lenient(tmp_path: Path) -> None:
    path = tmp_path / "omsupdatemgmt.log"
    path.write_text(
        "2024-05-14T02:00:07.250> WARNING: T separator and milliseconds   \n"
        "2024-05-14 02:00:08,5Z > [ERROR] comma fraction, Z, space before >\n"
        f"2024-05-14 02:00:09>{'-' * 128}\n",
        encoding="utf-8",
    )
    records = parse_file(path, omsupdatemgmt.PARSER).records
    assert records["ts"].to_list() == [
        utc(2024, 5, 14, 2, 0, 7, 250000),
        utc(2024, 5, 14, 2, 0, 8, 500000),
        utc(2024, 5, 14, 2, 0, 9),
    ]
    assert records["message"][0] == "WARNING: T separator and milliseconds"
    assert records["level"].to_list() == ["WARNING", "ERROR", "INFO"]
    assert records["kind"].to_list() == ["line", "line", "banner"]


def test_omsupdatemgmt_ignores_assume_tz(samples: dict[str, Path]) -> None:
    """The runbook writes utcnow(): a local-zone assumption must not shift it."""
    parsed = parse_file(samples["omsupdatemgmt.log"], omsupdatemgmt.PARSER, assume_tz="Europe/Stockholm")
    assert parsed.records["ts"][0] == utc(2024, 5, 14, 2, 0, 7)


# --- workerlog ---------------------------------------------------------------------------------


def test_workerlog_sample_counts_and_accounting(samples: dict[str, Path]) -> None:
    for name, records in (("worker.log", 10), ("worker.log.1", 6)):
        path = samples[name]
        parsed = parse_file(path, workerlog.PARSER)
        assert parsed.records.height == records, name
        assert parsed.rejects.height == 0, name
        assert_accounted(path, parsed)


def test_workerlog_failed_job_record(samples: dict[str, Path]) -> None:
    path = samples["worker.log"]
    data = path.read_bytes()
    records = parse_file(path, workerlog.PARSER).records
    rec = records.filter(pl.col("message").str.starts_with("Job state changed to failed")).row(0, named=True)
    assert rec["ts"] == utc(2024, 5, 14, 3, 50, 10)
    assert rec["level"] == "ERROR"
    assert rec["pid"] == "30412"
    assert rec["component"] == "sandbox"
    assert rec["line_no"] == 12
    assert rec["line_count"] == 1
    assert rec["byte_offset"] == data.index(b"2024-05-14 03:50:10 (30412)sandbox : Job state")
    assert f"[runbookName={RUNBOOK}]" in rec["message"]
    assert f"[jobId={JOB_ID}]" in rec["message"]
    assert rec["format"] == "workerlog"


def test_workerlog_traceback_folds_into_exception_record(samples: dict[str, Path]) -> None:
    records = parse_file(samples["worker.log"], workerlog.PARSER).records
    rec = records.filter(pl.col("line_no") == 7).row(0, named=True)
    assert rec["line_count"] == 5
    assert rec["level"] == "ERROR"
    assert rec["message"].split("\n")[0] == "Exception encountered."
    assert rec["message"].split("\n")[1] == "Traceback (most recent call last):"
    assert rec["message"].endswith("Exception: Patch operation failed: maintenance window exceeded")
    stdout = records.filter(pl.col("line_no") == 5).row(0, named=True)
    assert stdout["line_count"] == 2
    assert stdout["message"].endswith("\nRunbook output: starting patch run on lnx-web-02")


def test_workerlog_levels_from_message_prefixes(samples: dict[str, Path]) -> None:
    records = parse_file(samples["worker.log.1"], workerlog.PARSER).records
    assert records["level"].to_list() == ["INFO", "INFO", "INFO", "WARNING", "WARNING", "INFO"]
    transient = records.row(3, named=True)
    assert transient["line_count"] == 5
    assert transient["message"].endswith("Connection timed out>")


def test_workerlog_sandbox_stdout_traceback_raises_level(tmp_path: Path) -> None:
    path = tmp_path / "sandbox8c2f.log"
    path.write_text(
        "2024-05-14 02:00:03 (30412)sandbox : Runbook runtime trace: installing\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "ValueError: bad\n",
        encoding="utf-8",
    )
    rec = parse_file(path, workerlog.PARSER).records.row(0, named=True)
    assert (rec["level"], rec["line_count"]) == ("ERROR", 4)


def test_workerlog_crlf_sample(samples: dict[str, Path], tmp_path: Path) -> None:
    path = reencode(samples["worker.log"], tmp_path / "worker.log", crlf=True)
    parsed = parse_file(path, workerlog.PARSER)
    base = parse_file(samples["worker.log"], workerlog.PARSER)
    assert parsed.records["message"].to_list() == base.records["message"].to_list()
    assert not parsed.records["message"].str.contains("\r").any()
    assert_accounted(path, parsed)


def test_workerlog_too_long_line_is_rejected_without_breaking_the_record(tmp_path: Path) -> None:
    path = tmp_path / "worker.log"
    path.write_text(
        "2024-05-14 03:50:10 (30412)sandbox : Exception encountered. \n"
        "Traceback (most recent call last):\n" + "x" * (1_100_000) + "\n" + "Exception: boom\n"
        "2024-05-14 03:50:11 (30412)sandbox : Job unloaded.\n",
        encoding="utf-8",
    )
    parsed = parse_file(path, workerlog.PARSER, batch_bytes=1 << 16)
    assert parsed.rejects.select("line_no", "reason").rows() == [(3, "line_too_long")]
    assert parsed.records.select("line_no", "line_count").rows() == [(1, 3), (5, 1)]
    assert parsed.records["message"][0].endswith("\nException: boom")
    assert_accounted(path, parsed)


def test_resumed_parse_keeps_leading_continuation_as_a_record(tmp_path: Path) -> None:
    """Watch mode resumes mid-file: lines there continue a record already reported."""
    path = tmp_path / "worker.log"
    path.write_text('  File "x.py", line 1\nValueError: bad\n' + WORKER_LINE, encoding="utf-8")
    parsed = parse_file(path, workerlog.PARSER, start_line=40)
    assert parsed.rejects.height == 0
    assert parsed.records.select("kind", "line_no", "line_count").rows() == [
        ("continuation", 40, 2),
        ("line", 42, 1),
    ]


def test_overlong_record_is_cut_to_bound_memory(tmp_path: Path) -> None:
    path = tmp_path / "worker.log"
    tail = "".join(f"  frame {i}\n" for i in range(6))
    path.write_text(WORKER_LINE + tail + WORKER_LINE, encoding="utf-8")
    ctx = ParseContext(source="worker.log", encoding="auto")
    with path.open("rb") as fh:
        blocks = frame_lines(fh, "auto", batch_bytes=40)
        batches = list(fold_lines(blocks, workerlog.classify, ctx, "workerlog", max_carry_lines=3))
    records = pl.concat([b.records for b in batches])
    assert records["line_count"].sum() == 8
    assert records["kind"].to_list().count("continuation") >= 1
    assert records["kind"][0] == "line"
    assert records["message"].str.contains("frame 5").any()
    assert sum(b.rejects.height for b in batches) == 0


# --- text --------------------------------------------------------------------------------------

JOB_OUTPUT = (
    "Job output - PatchMicrosoftOMSLinuxComputer\n"
    "\n"
    "5/14/2024 3:50:09 AM  Stopped patch installation as it is past the maintenance window cutoff time.\n"
    f"2024-05-14T03:50:09Z Error: Unexpected return code (100) from package manager on command: {APT_COMMAND}\n"
    "   \n"
    "FAILED: lnx-web-02 (1 of 1 machines)\n"
    'Exception calling "Invoke" with "0" argument(s): "The operation has timed out"\n'
    "Reason - error details: the package manager on this machine is not in a healthy state\n"
    "2024-05-14 05:50:10 - WARNING retry limit reached\n"
    "[2024-05-14 05:50:11] FATAL: giving up\n"
    "Summary: 0 succeeded, 1 failed\n"
)


def test_text_one_record_per_non_blank_line(tmp_path: Path) -> None:
    path = tmp_path / "job-output.txt"
    path.write_text(JOB_OUTPUT, encoding="utf-8")
    parsed = parse_file(path, plaintext.PARSER, assume_tz="+0200")
    records = parsed.records
    assert records.height == 9
    assert parsed.rejects.height == 0
    assert_accounted(path, parsed)
    assert records["line_no"].to_list() == [1, 3, 4, 6, 7, 8, 9, 10, 11]
    assert records["level"].to_list() == [
        "INFO", "INFO", "ERROR", "FAILED", "ERROR", "ERROR", "WARNING", "FATAL", "INFO",
    ]  # fmt: skip
    assert records["ts"].to_list() == [
        None,
        utc(2024, 5, 14, 1, 50, 9),  # 3:50:09 AM at +0200
        utc(2024, 5, 14, 3, 50, 9),  # Z wins over --assume-tz
        None,
        None,
        None,
        utc(2024, 5, 14, 3, 50, 10),
        utc(2024, 5, 14, 3, 50, 11),
        None,
    ]


def test_text_record_field_by_field(tmp_path: Path) -> None:
    path = tmp_path / "job-output.txt"
    path.write_text(JOB_OUTPUT, encoding="utf-8")
    rec = parse_file(path, plaintext.PARSER).records.filter(pl.col("line_no") == 4).row(0, named=True)
    assert rec["kind"] == "line"
    assert rec["format"] == "text"
    assert rec["line_count"] == 1
    assert rec["byte_offset"] == path.read_bytes().index(b"2024-05-14T03:50:09Z")
    assert rec["ts"] == utc(2024, 5, 14, 3, 50, 9)
    assert rec["level"] == "ERROR"
    assert rec["message"] == f"Error: Unexpected return code (100) from package manager on command: {APT_COMMAND}"
    assert rec["raw"].startswith("2024-05-14T03:50:09Z Error:")


def test_text_stamp_removed_and_separator_dropped(tmp_path: Path) -> None:
    path = tmp_path / "job-output.txt"
    path.write_text(JOB_OUTPUT, encoding="utf-8")
    records = parse_file(path, plaintext.PARSER).records
    by_line = dict(zip(records["line_no"].to_list(), records["message"].to_list(), strict=True))
    assert by_line[3] == "Stopped patch installation as it is past the maintenance window cutoff time."
    assert by_line[9] == "WARNING retry limit reached"
    assert by_line[10] == "FATAL: giving up"
    assert by_line[1] == "Job output - PatchMicrosoftOMSLinuxComputer"


def test_text_utf16_crlf_matches_utf8(tmp_path: Path) -> None:
    src = tmp_path / "job-output.txt"
    src.write_text(JOB_OUTPUT, encoding="utf-8")
    path = reencode(src, tmp_path / "job-output-utf16.txt", crlf=True, utf16=True)
    assert plaintext.detect(head_of(path.read_bytes()))
    parsed = parse_file(path, plaintext.PARSER)
    base = parse_file(src, plaintext.PARSER)
    cols = ["line_no", "ts", "level", "message"]
    assert parsed.records.select(cols).equals(base.records.select(cols))
    assert parsed.records["byte_offset"][1] == 2 + 2 * JOB_OUTPUT.replace("\n", "\r\n").index("5/14/2024")
    assert_accounted(path, parsed)


def test_text_too_long_line_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "dump.txt"
    path.write_text("first\n" + "y" * 1_100_000 + "\nlast\n", encoding="utf-8")
    parsed = parse_file(path, plaintext.PARSER)
    assert parsed.records["message"].to_list() == ["first", "last"]
    assert parsed.rejects.select("line_no", "reason", "byte_offset").rows() == [(2, "line_too_long", 6)]
    assert len(parsed.rejects["raw"][0]) == 2000
    assert_accounted(path, parsed)


def test_text_day_first_and_24_hour_stamps(tmp_path: Path) -> None:
    path = tmp_path / "dialog.txt"
    path.write_text("14/5/2024 17:05:00 error: access denied\n5/14/2024, 5:05 PM done\n", encoding="utf-8")
    records = parse_file(path, plaintext.PARSER).records
    assert records["ts"].to_list() == [utc(2024, 5, 14, 17, 5), utc(2024, 5, 14, 17, 5)]
    assert records["message"].to_list() == ["error: access denied", "done"]
    assert records["level"].to_list() == ["ERROR", "INFO"]


# --- detection ---------------------------------------------------------------------------------


def test_detectors_accept_their_own_samples(samples: dict[str, Path]) -> None:
    oms = head_of(samples["omsupdatemgmt.log"].read_bytes())
    assert omsupdatemgmt.detect(oms)
    assert not workerlog.detect(oms)
    for name in ("worker.log", "worker.log.1"):
        head = head_of(samples[name].read_bytes())
        assert workerlog.detect(head), name
        assert not omsupdatemgmt.detect(head), name
    assert all(plaintext.detect(head_of(p.read_bytes())) for p in samples.values())


def test_workerlog_detected_when_file_starts_inside_a_traceback() -> None:
    rotated = 'Traceback (most recent call last):\n  File "w.py", line 3, in run\nOSError: [Errno 28]\n'
    assert workerlog.detect(head_of((rotated + WORKER_LINE).encode()))


@pytest.mark.parametrize(
    "text",
    [WU_WIN10, WU_CLASSIC, XML, JSON, CSV, "just some words\nand more\n", ""],
    ids=["wu_win10", "wu_classic", "xml", "json", "csv", "prose", "empty"],
)
def test_linux_detectors_reject_foreign_content(text: str) -> None:
    head = head_of(text.encode("utf-8"))
    assert not omsupdatemgmt.detect(head)
    assert not workerlog.detect(head)
    assert plaintext.detect(head)


def test_each_linux_detector_rejects_the_other_format() -> None:
    assert not omsupdatemgmt.detect(head_of(WORKER_LINE.encode()))
    assert not workerlog.detect(head_of(OMS_LINE.encode()))
    assert omsupdatemgmt.detect(head_of(OMS_LINE.encode()))
    assert workerlog.detect(head_of(WORKER_LINE.encode()))


def test_text_detector_rejects_binary() -> None:
    blob = bytes(range(256)) * 64
    head = head_of(blob)
    assert head.is_binary
    assert not plaintext.detect(head)


def test_linux_detectors_reject_every_corpus_file() -> None:
    if not CORPUS.is_dir():
        pytest.skip("shared corpus not present")
    files = [p for p in sorted(CORPUS.rglob("*")) if p.is_file()]
    assert files
    for path in files:
        with path.open("rb") as fh:
            head = head_of(fh.read(HEAD_BYTES), path.name)
        assert not omsupdatemgmt.detect(head), path.name
        assert not workerlog.detect(head), path.name
        assert plaintext.detect(head) == (not head.is_binary), path.name
