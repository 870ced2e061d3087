"""The catalog: every shipped signature is valid, and every one of its examples behaves as labelled."""

from pathlib import Path

import pytest
from umtriage.patterns.catalog import CatalogError, builtin_dir, load_catalog, load_dir, load_signature_file
from umtriage.pipeline.explain import explain_text
from umtriage.pipeline.process import matcher_for

CATALOG = load_catalog()
EXAMPLES = [
    pytest.param(sig.id, i, ex.line, ex.expect, id=f"{sig.id}-{i}-{ex.expect}")
    for sig in CATALOG.active()
    for i, ex in enumerate(sig.examples)
]


@pytest.mark.parametrize(("sig_id", "index", "line", "expect"), EXAMPLES)
def test_signature_example(sig_id: str, index: int, line: str, expect: str) -> None:
    matched = {s.id for s in explain_text(line, matcher_for((), explain=True)).matched}
    if expect == "match":
        assert sig_id in matched, f"{sig_id} example {index} should match: {line}"
    else:
        assert sig_id not in matched, f"{sig_id} example {index} must not match: {line}"


def test_every_signature_has_both_kinds_of_example() -> None:
    for sig in CATALOG.signatures.values():
        assert {e.expect for e in sig.examples} == {"match", "no_match"}, sig.id


def test_flipping_an_example_expectation_is_caught(tmp_path: Path) -> None:
    from umtriage.patterns.catalog import Catalog
    from umtriage.pipeline.patterns_cmd import example_failures

    src = builtin_dir() / "windows-update" / "hresult-8024402c.toml"
    text = src.read_text(encoding="utf-8")
    flipped = text.replace('expect = "no_match"', 'expect = "MATCH_TMP"').replace(
        'expect = "match"', 'expect = "no_match"').replace('expect = "MATCH_TMP"', 'expect = "match"')
    dest = tmp_path / "hresult-8024402c.toml"
    dest.write_text(flipped, encoding="utf-8")
    sigs, problems = load_dir(tmp_path)
    assert problems == []
    failures = example_failures(Catalog(sigs, CATALOG.codes))
    assert len(failures) == len(sigs["hresult-8024402c"].examples)


def _write(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    return p


GOOD = '''id = "my-sig"
title = "t"
scenario = "s"
severity = "low"
sources = ["text"]
codes = ["0x80070005"]
phrases = ["some phrase"]
threshold = 90
cause = "c"
resolution = "r"
references = []

[[examples]]
line = "some phrase here"
expect = "match"

[[examples]]
line = "other"
expect = "no_match"
'''


def test_valid_user_signature_loads(tmp_path: Path) -> None:
    sig, problems = load_signature_file(_write(tmp_path, "my-sig.toml", GOOD))
    assert problems == []
    assert sig is not None and sig.codes == ("0x80070005",) and sig.anchors == ("phrase",)


@pytest.mark.parametrize(
    ("change", "message", "line"),
    [
        (('severity = "low"', 'severity = "urgent"'), "severity 'urgent'", 4),
        (('codes = ["0x80070005"]', 'codes = ["80070005"]'), "code '80070005'", 6),
        (("threshold = 90", "threshold = 140"), "threshold 140", 8),
        (('sources = ["text"]', 'sources = ["syslog"]'), "unknown source 'syslog'", 5),
        (('id = "my-sig"', 'id = "other-id"'), "must equal the file name", 1),
        (('expect = "no_match"', 'expect = "match"'), "one `match` and one `no_match`", 1),
        (("title = \"t\"", "title = \"t"), "invalid TOML", 2),
    ],
)
def test_problems_are_reported_with_file_and_line(tmp_path: Path, change, message: str, line: int) -> None:
    path = _write(tmp_path, "my-sig.toml", GOOD.replace(*change))
    sig, problems = load_signature_file(path)
    assert sig is None
    assert any(p.startswith(f"{path}:{line}: ") and message in p for p in problems), problems


def test_duplicate_ids_and_user_override(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    _write(tmp_path / "a", "my-sig.toml", GOOD)
    (tmp_path / "a" / "sub").mkdir()
    _write(tmp_path / "a" / "sub", "my-sig.toml", GOOD)
    _, problems = load_dir(tmp_path / "a")
    assert any("duplicate id 'my-sig'" in p for p in problems)
    override = GOOD.replace('id = "my-sig"', 'id = "hresult-8024402c"').replace('title = "t"', 'title = "mine"')
    (tmp_path / "b").mkdir()
    _write(tmp_path / "b", "hresult-8024402c.toml", override)
    cat = load_catalog([tmp_path / "b"])
    assert cat.signatures["hresult-8024402c"].title == "mine"
    with pytest.raises(CatalogError):
        load_catalog([tmp_path / "a"])
