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
