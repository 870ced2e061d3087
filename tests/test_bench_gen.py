"""The benchmark generator (bench/gen_wulog.py): same bytes for the same seed, and output the real
parser reads without a single reject, with the promised share of error lines."""

import importlib.util
import re
import sys
from pathlib import Path

import polars as pl
import pytest
from umtriage.parsers.base import ParseContext
from umtriage.parsers.detect import detect, read_head
from umtriage.pipeline.codes import extract_codes
from umtriage.pipeline.process import PrefixedStream

GEN_PATH = Path(__file__).resolve().parents[1] / "bench" / "gen_wulog.py"
_spec = importlib.util.spec_from_file_location("gen_wulog", GEN_PATH)
gen = importlib.util.module_from_spec(_spec)
sys.modules["gen_wulog"] = gen  # dataclasses look their module up while the class is built
_spec.loader.exec_module(gen)

PROBLEM_LEVELS = ("WARNING", "ERROR", "FAILED", "FATAL")


def parse_file(path: Path) -> tuple[str, int, pl.DataFrame, int]:
    """(parser name, lines, records with their codes, rejects) through detection and the real parser."""
    with open(path, "rb") as stream:
        head = read_head(stream)
        det = detect(path.name, head)
        assert det.parser is not None, det.skip_reason
        ctx = ParseContext(source=path.name, encoding=det.head.encoding, start_offset=det.bom_len)
        lines, rejects, frames = 0, 0, []
        for batch in det.parser.parse(PrefixedStream(head[det.bom_len:], stream), ctx):
            lines += batch.lines
            rejects += batch.rejects.height
            frames.append(batch.records.with_columns(codes=extract_codes(batch.records["message"])))
    return det.parser.name, lines, pl.concat(frames), rejects


@pytest.mark.parametrize("form", gen.FORMS)
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, form: str) -> None:
    a = gen.write_log(tmp_path / "a.log", 300_000, form=form, seed=7)
    b = gen.write_log(tmp_path / "b.log", 300_000, form=form, seed=7)
    c = gen.write_log(tmp_path / "c.log", 300_000, form=form, seed=8)
    assert (tmp_path / "a.log").read_bytes() == (tmp_path / "b.log").read_bytes()
    assert (a.lines, a.error_lines) == (b.lines, b.error_lines)
    assert (tmp_path / "a.log").read_bytes() != (tmp_path / "c.log").read_bytes()
    assert 300_000 <= a.bytes < 300_000 + 2_000  # stops at the first line that reaches the target
    assert c.bytes >= 300_000


@pytest.mark.parametrize("form", gen.FORMS)
def test_output_parses_without_rejects_and_has_the_error_share(tmp_path: Path, form: str) -> None:
    path = tmp_path / "WindowsUpdate.log"
    st = gen.write_log(path, 1_500_000, form=form, seed=3)
    name, lines, rec, rejects = parse_file(path)
    assert name == "windowsupdate"
    assert rejects == 0
    assert lines == st.lines == rec.height
    formats = set(rec["format"].unique())
    expected = {"win10": {"windowsupdate-etw"}, "classic": {"windowsupdate-classic"},
                "mixed": {"windowsupdate-etw", "windowsupdate-classic"}}[form]
    assert formats == expected
    errors = rec.filter(pl.col("level").is_in(PROBLEM_LEVELS) | (pl.col("codes").list.len() > 0))
    assert errors.height == st.error_lines  # what the generator counted is what the pipeline sees
    assert 0.01 <= errors.height / lines <= 0.02
    codes = set(errors["codes"].explode().drop_nulls())
    assert len(codes & set(gen.CATALOG_CODES)) >= 4
    assert codes - set(gen.CATALOG_CODES), "codes outside the catalog must appear too"
    # traps: successful exit codes and GUIDs that begin like an HRESULT carry no code
    ok = rec.filter(pl.col("message").str.contains(r"Exit code = 0x00000000(?:, Result code = 0x00000000)? \(cV"))
    guid_trap = rec.filter(pl.col("message").str.contains(r"[{ ]80(?:24|07)[0-9A-F]{4}-[0-9A-F]{4}-"))
    plain_traps = guid_trap.filter(~pl.col("message").str.contains(r"(?i)0x8|\[8|hr = 8|error"))
    assert plain_traps.height > 0
    assert ok.height > 0 or form == "classic"  # classic logs print no exit code on success
    assert ok.filter(pl.col("codes").list.len() > 0).height == 0
    assert plain_traps.filter(pl.col("codes").list.len() > 0).height == 0


def test_classic_report_events_keep_their_tabs(tmp_path: Path) -> None:
    path = tmp_path / "WindowsUpdate.log"
    gen.write_log(path, 400_000, form="classic", seed=5)
    _, _, rec, _ = parse_file(path)
    reports = rec.filter(pl.col("message").str.starts_with("REPORT EVENT: {"))
    assert reports.height > 0
    assert (reports["message"].str.count_matches("\t") >= 10).all()
    assert rec.filter(pl.col("kind") == "banner").height > 0  # time-zone banners, one per session


def test_win10_file_has_bom_and_crlf_classic_has_neither_bom(tmp_path: Path) -> None:
    gen.write_log(tmp_path / "w.log", 50_000, form="win10", seed=1)
    gen.write_log(tmp_path / "c.log", 50_000, form="classic", seed=1)
    w, c = (tmp_path / "w.log").read_bytes(), (tmp_path / "c.log").read_bytes()
    assert w.startswith(b"\xef\xbb\xbf") and not c.startswith(b"\xef\xbb\xbf")
    assert w.count(b"\r\n") == w.count(b"\n") and c.count(b"\r\n") == c.count(b"\n")
    first = w[3:].split(b"\r\n", 1)[0].decode()
    assert re.match(r"^\d{4}[/.\-]\d{2}[/.\-]\d{2} \d{2}:\d{2}:\d{2}\.\d{7} ", first)


def test_several_hundred_templates_per_form() -> None:
    assert gen.template_count("win10") >= 300
    assert gen.template_count("classic") >= 300


def test_bundle_is_deterministic_and_cached(tmp_path: Path) -> None:
    st, reused = gen.cached_bundle(tmp_path, files=6, avg_size=20_000, seed=2)
    assert not reused
    folder = Path(st.path)
    logs = sorted(folder.glob("*/WindowsUpdate.log"))
    assert [p.parent.name for p in logs] == sorted(gen.host_name(i) for i in range(6))
    assert sum(p.stat().st_size for p in logs) == st.bytes
    again, reused = gen.cached_bundle(tmp_path, files=6, avg_size=20_000, seed=2)
    assert reused and again == st
    other = gen.write_bundle(tmp_path / "copy", files=6, avg_size=20_000, seed=2)
    assert other.bytes == st.bytes and other.lines == st.lines
    assert all(p.read_bytes() == (tmp_path / "copy" / p.parent.name / p.name).read_bytes() for p in logs)


def test_cached_log_is_reused_and_an_interrupted_one_regenerated(tmp_path: Path) -> None:
    st, reused = gen.cached_log(tmp_path, 100_000, form="mixed", seed=4)
    assert not reused and Path(st.path).stat().st_size == st.bytes
    data = Path(st.path).read_bytes()
    again, reused = gen.cached_log(tmp_path, 100_000, form="mixed", seed=4)
    assert reused and again == st
    Path(st.path).write_bytes(data[:1000])  # a cut file: the size no longer matches its sidecar
    fixed, reused = gen.cached_log(tmp_path, 100_000, form="mixed", seed=4)
    assert not reused and Path(fixed.path).read_bytes() == data


def test_sizes_parse_in_decimal_units() -> None:
    assert gen.parse_size("50M") == 50_000_000
    assert gen.parse_size("1G") == 10**9
    assert gen.parse_size("250k") == 250_000
    assert gen.size_label(50_000_000) == "50M"
    with pytest.raises(ValueError):
        gen.parse_size("lots")
