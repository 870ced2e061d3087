"""The optimised path (prefilter, Rust-side framing, fixed-width slicing, files cut across
workers) gives exactly the tables of the straightforward reference path."""

import importlib.util
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from conftest import SAMPLES
from umtriage.pipeline.process import ScanOptions
from umtriage.pipeline.scan import plan_work, run_scan
from umtriage.pipeline.sources import list_units

GEN_PATH = Path(__file__).resolve().parents[1] / "bench" / "gen_wulog.py"
_spec = importlib.util.spec_from_file_location("gen_wulog_eq", GEN_PATH)
gen = importlib.util.module_from_spec(_spec)
sys.modules["gen_wulog_eq"] = gen
_spec.loader.exec_module(gen)

TABLES = ("incidents", "matches", "rejects", "unmatched")
ACCOUNTS = ("files", "bytes", "lines", "records", "folded_lines", "rejects", "matched_records", "incidents")


def _scan(inputs: list[Path], out: Path, options: ScanOptions, jobs: int):
    return run_scan(inputs, out, options, jobs=jobs)


def _assert_same(a: Path, b: Path, sa: dict, sb: dict) -> None:
    for t in TABLES:
        left, right = pl.read_parquet(a / f"{t}.parquet"), pl.read_parquet(b / f"{t}.parquet")
        assert left.equals(right), t
    assert {k: sa[k] for k in ACCOUNTS} == {k: sb[k] for k in ACCOUNTS}


def test_samples_fast_equals_reference(tmp_path: Path) -> None:
    fast = _scan([SAMPLES], tmp_path / "fast", ScanOptions(), 1)
    ref = _scan([SAMPLES], tmp_path / "ref", ScanOptions(fast=False), 1)
    _assert_same(tmp_path / "fast", tmp_path / "ref", fast.summary, ref.summary)
    assert fast.summary["incidents"] > 20


@pytest.mark.parametrize("form", ["win10", "classic", "mixed"])
def test_generated_log_fast_and_split_equal_reference(tmp_path: Path, form: str) -> None:
    src = tmp_path / "in" / "GEN01"
    src.mkdir(parents=True)
    gen.write_log(src / "WindowsUpdate.log", 3_000_000, form=form, seed=11, host="GEN01")
    shutil.copy(SAMPLES / "SRV-WSUS01" / "WindowsUpdate.log", tmp_path / "in" / "GEN01" / "WindowsUpdate.old.log")
    ref = _scan([tmp_path / "in"], tmp_path / "ref", ScanOptions(fast=False), 1)
    fast = _scan([tmp_path / "in"], tmp_path / "fast", ScanOptions(), 1)
    # cut the 3 MB file into line-aligned ranges as a big file would be, scan them in real worker
    # processes beside this one, and stitch them back
    split_options = replace(ScanOptions(), split_min_bytes=1 << 20, parallel_min_bytes=0)
    units, _ = list_units([tmp_path / "in"])
    assert sum(item.end is not None for item in plan_work(units, 3, split_options)) >= 3  # really cut
    split = _scan([tmp_path / "in"], tmp_path / "split", split_options, 3)
    assert ref.summary["matched_records"] > 100
    _assert_same(tmp_path / "fast", tmp_path / "ref", fast.summary, ref.summary)
    _assert_same(tmp_path / "split", tmp_path / "ref", split.summary, ref.summary)


def test_failed_report_event_is_an_incident_on_both_paths(tmp_path: Path) -> None:
    # a classic log whose only evidence of the failed download is the REPORT EVENT's HRESULT field:
    # the prefilter must keep the line and the grammar must read the code, on both paths
    host = tmp_path / "in" / "SRV-DL01"
    host.mkdir(parents=True)
    lines = [
        "2016-10-19\t14:20:00:000\t1532\taa4\tMisc\t===========  Logging initialized (build: 7.6.7600.320, "
        "tz: -0600)  ===========",
        "2016-10-19\t14:24:01:200\t1532\taa4\tDnldMgr\tDownloading updates [CallerId = AutomaticUpdates]",
        "2016-10-19\t14:24:01:300\t1532\taa4\tReport\tREPORT EVENT: {CA27992C-3791-43CF-8ED3-18B05939AB84}\t"
        "2016-10-19 14:23:56:200-0600\t1\t167\t101\t{37EA312C-2424-4158-B30F-E614AA28DA4A}\t501\t80246007\t"
        "AutomaticUpdates\tFailure\tContent Download\tDownload did not finish.",
    ]
    (host / "WindowsUpdate.log").write_text("\r\n".join(lines) + "\r\n")
    fast = _scan([tmp_path / "in"], tmp_path / "fast", ScanOptions(), 1)
    ref = _scan([tmp_path / "in"], tmp_path / "ref", ScanOptions(fast=False), 1)
    _assert_same(tmp_path / "fast", tmp_path / "ref", fast.summary, ref.summary)
    inc = pl.read_parquet(tmp_path / "fast" / "incidents.parquet")
    assert inc.select("host", "code").rows() == [("srv-dl01", "0x80246007")]
    assert inc["first_seen"][0].hour == 20  # 14:24 at -0600


def _per_source(summary: dict) -> list[tuple]:
    keys = ("source", "host", "format", "bytes", "lines", "records", "folded_lines", "rejects", "matched_records",
            "errors")
    return sorted(tuple(str(f[k]) for k in keys) for f in summary["sources"])


def test_small_files_parsed_together_account_per_file(tmp_path: Path) -> None:
    # many small WindowsUpdate.logs are parsed as one frame; every file must still get its own
    # lines, records, rejects, offsets, zone and host, as when each is parsed alone
    root = tmp_path / "in"
    for k, form in enumerate(("win10", "classic", "mixed", "classic")):
        host = root / f"HOST{k}"
        host.mkdir(parents=True)
        gen.write_log(host / "WindowsUpdate.log", 60_000 + 10_000 * k, form=form, seed=20 + k, host=f"HOST{k}")
    with open(root / "HOST1" / "WindowsUpdate.log", "ab") as f:  # junk, a huge line, no final newline
        f.write(b"not a log line\n" + b"x" * (1 << 21) + b"\n2023-11-10\t10:44:00:954\t1097\t150a\tAgent\t"
                b"  * WARNING: Exit code = 0x8024402C")
    (root / "HOST2" / "WindowsUpdate.log").write_bytes(
        b"\xef\xbb\xbf" + (root / "HOST2" / "WindowsUpdate.log").read_bytes())  # a BOM shifts every offset
    fast = _scan([root], tmp_path / "fast", ScanOptions(), 1)
    ref = _scan([root], tmp_path / "ref", ScanOptions(fast=False), 1)
    _assert_same(tmp_path / "fast", tmp_path / "ref", fast.summary, ref.summary)
    assert _per_source(fast.summary) == _per_source(ref.summary)
    assert fast.summary["rejects_by_reason"] == {"line_too_long": 1, "no_prefix": 1}
    assert len({f["host"] for f in fast.summary["sources"]}) == 4


def test_a_failing_group_parse_falls_back_to_one_file_at_a_time(tmp_path: Path, monkeypatch) -> None:
    # fault injection: should the shared parse of a group fail, each file is parsed alone, so
    # nothing is lost and every error would land in the right file's report
    import umtriage.parsers.windowsupdate as wu
    from umtriage.parsers.base import SRC

    real = wu.parse_block

    def fails_on_groups(frame, sources, **kw):
        if len(sources) > 1:
            raise RuntimeError("injected")
        assert SRC not in frame.columns or frame[SRC].n_unique() == 1
        return real(frame, sources, **kw)

    root = tmp_path / "in"
    for k in range(3):
        (root / f"H{k}").mkdir(parents=True)
        gen.write_log(root / f"H{k}" / "WindowsUpdate.log", 50_000, form="mixed", seed=40 + k, host=f"H{k}")
    ref = _scan([root], tmp_path / "ref", ScanOptions(fast=False), 1)
    monkeypatch.setattr(wu, "parse_block", fails_on_groups)
    fast = _scan([root], tmp_path / "fast", ScanOptions(), 1)
    _assert_same(tmp_path / "fast", tmp_path / "ref", fast.summary, ref.summary)
    assert _per_source(fast.summary) == _per_source(ref.summary)


def test_the_same_file_given_twice_counts_twice_not_squared(tmp_path: Path) -> None:
    # files parsed together are told apart by position, not by name: a path given twice (same
    # logical name) must give twice the rows of one scan, as on the reference path
    log = SAMPLES / "SRV-WSUS01" / "WindowsUpdate.log"
    once = _scan([log], tmp_path / "once", ScanOptions(), 1)
    fast = _scan([log, log], tmp_path / "fast", ScanOptions(), 1)
    ref = _scan([log, log], tmp_path / "ref", ScanOptions(fast=False), 1)
    _assert_same(tmp_path / "fast", tmp_path / "ref", fast.summary, ref.summary)
    assert _per_source(fast.summary) == _per_source(ref.summary)
    assert fast.summary["matches"] == 2 * once.summary["matches"] > 0


def test_damaged_logs_give_the_same_tables_on_both_paths(tmp_path: Path) -> None:
    # bytes flipped to NUL, CR, LF, TAB, invalid UTF-8 or anything, and files cut short: the
    # optimised path (prefilter, fixed-width cut, grouped small files) must still agree with the
    # reference path line for line
    import random

    sources = [(SAMPLES / "SRV-WSUS01" / "WindowsUpdate.log").read_bytes()]
    for k, form in enumerate(("win10", "classic", "mixed")):
        gen.write_log(tmp_path / f"g{k}.log", 120_000, form=form, seed=60 + k, host="G")
        sources.append((tmp_path / f"g{k}.log").read_bytes())
    rng = random.Random(5)
    for i in range(12):
        data = bytearray(rng.choice(sources))
        for _ in range(rng.choice((1, 8, 64, 256))):
            data[rng.randrange(len(data))] = rng.choice((0, 0x0D, 0x0A, 0x09, 0xFF, 0xC3, rng.randrange(256)))
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        host = tmp_path / f"in{i}" / "HOSTZ"
        host.mkdir(parents=True)
        (host / "WindowsUpdate.log").write_bytes(bytes(data))
        fast = _scan([host.parent], tmp_path / f"fast{i}", ScanOptions(), 1)
        ref = _scan([host.parent], tmp_path / f"ref{i}", ScanOptions(fast=False), 1)
        _assert_same(tmp_path / f"fast{i}", tmp_path / f"ref{i}", fast.summary, ref.summary)
        assert fast.summary["accounted"] is True


def test_small_linux_and_text_files_parsed_together_account_per_file(tmp_path: Path) -> None:
    # the line-folding formats parsed as one group: each file keeps its own records, orphan
    # continuation lines, overlong lines, blank lines and notes, as when it is parsed alone
    from linux_fixtures import OMS_LINES, WORKER_LINES

    root = tmp_path / "in"
    texts = {
        "LNX01/omsupdatemgmt.log": "\n".join(OMS_LINES),
        "LNX02/omsupdatemgmt.log": "\tDEBUG: orphan before any record\n" + "\n".join(OMS_LINES[1:6]) + "\n",
        "LNX03/worker.log": "\n".join(WORKER_LINES) + "\n",
        "LNX04/worker.log": "  Traceback (most recent call last):\n" + "\n".join(WORKER_LINES[:4]) + "\n\n\n",
        "LNX05/worker.log": "\n".join(WORKER_LINES[:3]) + "\n" + "x" * (1 << 21) + "\n" + WORKER_LINES[3],
        "WIN06/portal-job.txt": "5/14/2024 2:00:07 AM Error: The job failed\n\nplain line\n"
                                "2024-05-14T02:00:09Z WARNING: something\n",
        "WIN07/notes.txt": "Exception from HRESULT: 0x80070422\n",
    }
    for rel, text in texts.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    fast = _scan([root], tmp_path / "fast", ScanOptions(), 1)
    ref = _scan([root], tmp_path / "ref", ScanOptions(fast=False), 1)
    _assert_same(tmp_path / "fast", tmp_path / "ref", fast.summary, ref.summary)
    assert _per_source(fast.summary) == _per_source(ref.summary)
    assert [(n["source"], n["note"]) for n in fast.summary["notes"]] == \
        [(n["source"], n["note"]) for n in ref.summary["notes"]]
    assert fast.summary["notes"], "the close marker of LNX01 gives a note"
    assert {"line_too_long", "orphan_continuation"} <= set(fast.summary["rejects_by_reason"])
    assert {f["format"] for f in fast.summary["sources"]} == {"omsupdatemgmt", "workerlog", "text"}


def test_a_crlf_log_cut_mid_line_keeps_the_fast_framing_and_its_lines() -> None:
    """The last line of a file cut short gets the line end of the lines before it: a CRLF log
    copied while it was written is framed like the rest of it, with the same lines and offsets
    as the reference path."""
    import io

    from umtriage.parsers.textio import SMALL_BODY, _frame_utf8_fast, frame_lines

    line = b"2025/03/02 15:00:00.4198364 7693  16671 Agent           WU client version 10.0.22631.1575\r\n"
    data = line * (2 * SMALL_BODY // len(line) + 10) + line[:40]
    fast = pl.concat([b.frame for b in frame_lines(io.BytesIO(data), "auto")])
    slow = pl.concat([b.frame for b in frame_lines(io.BytesIO(data), "auto", fast=False)])
    assert fast.equals(slow)
    assert fast["line"][-1] == line[:40].decode() and fast["byte_offset"][-1] == len(data) - 40
    body = data[: data.rfind(b"\n") + 1]
    assert _frame_utf8_fast(body + line[:40] + b"\r\n", 0, 0) is not None  # one style: fast
    assert _frame_utf8_fast(body + line[:40] + b"\n", 0, 0) is None  # mixed: the slow path
