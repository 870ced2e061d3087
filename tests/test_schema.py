"""The documented schema against the real tables: nothing written is undocumented, types agree,
docs/schema.md is the `umtriage schema` output, and the columns mean what they say."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import REPO, SAMPLES, SHARED_CORPUS, run_cli
from umtriage.pipeline.schema import SCHEMA_VERSION, SUMMARY_KEYS, TABLES, TYPES

EVTX = SHARED_CORPUS / "evtx"
KB_LINE = ("2024/05/14 09:00:00.1000000 1244  5528  Handler         *FAILED* [80070005] Install of "
           "2024-05 Cumulative Update for Windows 10 (KB5037768) failed")


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("in")
    (root / "SRV-KB").mkdir()
    (root / "SRV-KB" / "WindowsUpdate.log").write_text(KB_LINE + "\n")
    inputs = [str(SAMPLES), str(root)] + ([str(EVTX)] if EVTX.is_dir() else [])
    out = tmp_path_factory.mktemp("out")
    r = run_cli("scan", *inputs, "-o", str(out), "-q", "--format", "csv", "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    return out


def test_every_written_table_and_column_is_documented_with_its_type(scanned: Path) -> None:
    written = sorted(p.stem for p in scanned.glob("*.parquet"))
    assert written == sorted(TABLES)
    for name in written:
        df = pl.read_parquet(scanned / f"{name}.parquet")
        documented = {c.name: c.type for c in TABLES[name].columns}
        assert set(df.columns) == set(documented), (name, set(df.columns) ^ set(documented))
        for col, dtype in df.schema.items():
            assert str(dtype) == TYPES[documented[col]], (name, col, dtype)
        assert {p.suffix for p in scanned.glob(f"{name}.*")} == {".parquet", ".csv", ".jsonl"}
    summary = json.loads((scanned / "summary.json").read_text())
    assert set(summary) <= set(SUMMARY_KEYS), set(summary) - set(SUMMARY_KEYS)
    assert summary["schema_version"] == SCHEMA_VERSION


def test_docs_schema_md_is_the_schema_command_output() -> None:
    r = run_cli("schema")
    assert r.returncode == 0
    assert (REPO / "docs" / "schema.md").read_text(encoding="utf-8") == r.stdout
    for table in TABLES.values():
        assert f"## {table.name}.parquet" in r.stdout
        assert all(f"| `{c.name}` |" in r.stdout for c in table.columns)


def test_format_values_are_the_parser_names_formats_lists(scanned: Path) -> None:
    names = {line.split()[0] for line in run_cli("formats").stdout.splitlines() if line.strip()}
    used = set(pl.read_parquet(scanned / "matches.parquet")["format"])
    assert used and used <= names


def test_code_is_text_for_duckdb_and_incidents_link_to_matches(scanned: Path) -> None:
    rows = duckdb.sql(f"select typeof(code), code from read_csv_auto('{scanned / 'incidents.csv'}') "
                      "where code is not null").fetchall()
    assert rows and all(t == "VARCHAR" for t, _ in rows)
    assert ("VARCHAR", "'0x8024402C") in rows
    inc = pl.read_parquet(scanned / "incidents.parquet")
    m = pl.read_parquet(scanned / "matches.parquet")
    assert m["incident_id"].null_count() == 0 and set(m["incident_id"]) == set(inc["incident_id"])
    lines = m.group_by("incident_id").len()
    joined = inc.join(lines, on="incident_id")
    assert (joined["len"] == joined["lines"]).all()
    assert set(inc["state"]) <= {"current", "open", "resolved"}
    assert ((inc["state"] == "resolved") == inc["resolved_at"].is_not_null()).all()


def test_a_line_naming_a_kb_fills_kb_in_matches_and_incidents(scanned: Path) -> None:
    m = pl.read_parquet(scanned / "matches.parquet").filter(pl.col("host") == "srv-kb")
    assert set(m["kb"]) == {"KB5037768"}
    inc = pl.read_parquet(scanned / "incidents.parquet").filter(pl.col("host") == "srv-kb")
    assert inc["kb"].to_list() == [["KB5037768"]] * inc.height and inc.height >= 1


@pytest.mark.skipif(not EVTX.is_dir(), reason="needs ../shared/corpus/evtx")
def test_evtx_evidence_is_the_message_not_the_xml(scanned: Path) -> None:
    inc = pl.read_parquet(scanned / "incidents.parquet")
    m = pl.read_parquet(scanned / "matches.parquet").filter(pl.col("format") == "evtx")
    assert m.height > 0
    ev = inc.filter(pl.col("incident_id").is_in(m["incident_id"].unique().implode()))["evidence"].explode()
    assert ev.len() > 0 and not ev.str.contains("<Event").any()
    assert ev.str.starts_with("Event ").all()
