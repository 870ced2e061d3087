"""The real public WindowsUpdate.log corpus (../shared/corpus): read whole, accounted, counted right.

Skipped only when ../shared/corpus is absent (it is not ours to redistribute, so it is not in the repo).
"""

import json
import re
from pathlib import Path

import polars as pl
import pytest
from conftest import SHARED_CORPUS, run_cli

PUBLIC = SHARED_CORPUS / "public"
pytestmark = pytest.mark.skipif(not PUBLIC.is_dir(), reason="../shared/corpus is not present")

# Written independently of umtriage's extractor: one code, its spellings, Python look-arounds.
_402C = re.compile(
    r"(?i)(?:(?<![0-9a-z])0x8024402c|\[8024402c\]|\b(?:hr|error|code)\s*[=:]?\s*8024402c|(?<![\w.-])-2145107924)"
    r"(?![0-9a-z-])"
)


def independent_402c_lines(path: Path) -> int:
    text = path.read_bytes().decode("utf-8", errors="replace")
    return sum(1 for line in text.splitlines() if _402C.search(line) and not line.startswith("#"))


@pytest.fixture(scope="module")
def corpus_scan(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    r = run_cli("scan", str(PUBLIC), "-o", str(out), "--jobs", "2")
    assert r.returncode == 0, r.stderr
    return out


def test_every_file_is_read_and_every_line_accounted(corpus_scan: Path) -> None:
    s = json.loads((corpus_scan / "summary.json").read_text())
    files = sorted(p.name for p in PUBLIC.iterdir() if p.is_file())
    assert sorted(Path(f["source"]).name for f in s["sources"]) == files
    assert s["errors"] == []
    assert s["lines"] == s["records"] + s["folded_lines"] + s["rejects"]
    for f in s["sources"]:
        raw = (PUBLIC / Path(f["source"]).name).read_bytes()
        if f["skipped"] is None:
            physical = raw.count(b"\n") + (0 if raw.endswith(b"\n") or not raw else 1)
            assert f["lines"] == physical, f["source"]
            assert f["lines"] == f["records"] + f["folded_lines"] + f["rejects"], f["source"]


def test_0x8024402c_matches_equal_an_independent_count(corpus_scan: Path) -> None:
    m = pl.read_parquet(corpus_scan / "matches.parquet")
    got = (
        m.filter(pl.col("code") == "0x8024402C")
        .select("source", "line_no").unique()
        .group_by("source").len()
    )
    counts = {Path(s).name: n for s, n in got.iter_rows()}
    checked = 0
    for path in sorted(PUBLIC.iterdir()):
        if path.suffix in (".log", ".txt") and path.name != "SOURCES.md":
            expected = independent_402c_lines(path)
            assert counts.get(path.name, 0) == expected, path.name
            checked += expected
    assert checked > 50  # the corpus really carries this code (92 lines at the time of writing)


def test_no_incident_from_a_success_code_or_a_guid(corpus_scan: Path) -> None:
    inc = pl.read_parquet(corpus_scan / "incidents.parquet")
    assert inc.height > 0
    codes = [c for c in inc["code"].to_list() if c]
    assert all(int(c, 16) >= 0x80000000 for c in codes)
    m = pl.read_parquet(corpus_scan / "matches.parquet").drop_nulls("code")
    for msg, code in zip(m["message"], m["code"], strict=True):
        hexpart = code[2:]
        spots = [mm.start() for mm in re.finditer(hexpart, msg, re.IGNORECASE)]
        if not spots:  # signed decimal spelling
            continue
        outside_guid = any(
            not (msg[i + 8:i + 9] == "-" or (i > 0 and msg[i - 1] in "{-")) for i in spots
        )
        assert outside_guid, (code, msg)
