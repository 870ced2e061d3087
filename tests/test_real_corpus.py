"""The real-world corpus (../shared/corpus/real, issue 10): every failure excerpt gets a medium+ incident of
the right code or family, and no healthy excerpt gets one. The same measurement as `bench/real`, through the
real CLI. Skipped only when the corpus is absent (it is not ours to redistribute)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import sys
from pathlib import Path

import polars as pl
import pytest
from conftest import REPO, SHARED_CORPUS, run_cli

REAL = SHARED_CORPUS / "real"
PUBLIC = SHARED_CORPUS / "public"


def load_bench():
    loader = importlib.machinery.SourceFileLoader("bench_real", str(REPO / "bench" / "real"))
    spec = importlib.util.spec_from_loader("bench_real", loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_real"] = module  # its dataclasses look their module up
    loader.exec_module(module)
    return module


@pytest.mark.skipif(not (REAL / "truth.jsonl").is_file(), reason="../shared/corpus/real is not present")
def test_real_corpus_meets_the_targets(tmp_path: Path) -> None:
    bench = load_bench()
    truth = [json.loads(line) for line in (REAL / "truth.jsonl").read_text(encoding="utf-8").splitlines() if line]
    stats = bench.score(truth, bench.scan(REAL, truth, tmp_path, []))
    total = bench.KindStats()
    for s in stats.values():
        total.add(s)
    assert total.failures > 50 and total.negatives > 20  # the corpus really is there
    assert total.right / total.failures >= bench.TARGET_RIGHT, total.misses
    assert total.found_codes / total.truth_codes >= bench.TARGET_RECALL, total.misses
    assert total.reported_true / total.reported_codes >= bench.TARGET_PRECISION, total.misses
    assert total.negatives_reported == 0, total.misses


@pytest.mark.skipif(not PUBLIC.is_dir(), reason="../shared/corpus/public is not present")
def test_no_public_machine_is_headed_by_a_trace_code(tmp_path: Path) -> None:
    """Each public log as its own host: the current (headline) incidents are never info or wu-trace, and
    never one of the internal codes issue 14 names."""
    for path in sorted(PUBLIC.iterdir()):
        if path.is_file() and path.name != "SOURCES.md":
            (tmp_path / "in" / path.stem).mkdir(parents=True)
            (tmp_path / "in" / path.stem / path.name).write_bytes(path.read_bytes())
    r = run_cli("scan", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q")
    assert r.returncode == 0, r.stderr
    inc = pl.read_parquet(tmp_path / "out" / "incidents.parquet")
    assert inc["host"].n_unique() > 5
    trace = inc.filter(pl.col("signature_id") == "wu-trace")
    assert trace.height > 0 and set(trace["severity"]) == {"info"}
    current = inc.filter(pl.col("current"))
    assert current.height > 0
    assert "info" not in set(current["severity"]) and "wu-trace" not in set(current["signature_id"])
    internal = {"0x80070032", "0x80248007", "0x8024000E", "0x8024000C"}
    assert not internal & set(current["code"].drop_nulls())
    assert not internal & set(inc.filter(pl.col("severity") != "info")["code"].drop_nulls())
