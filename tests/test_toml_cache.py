"""The parsed-TOML cache gives the catalog tomllib gives, and a bad cache never stops a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from umtriage.patterns import catalog as catalog_module
from umtriage.patterns import toml_cache as cache_module


@pytest.fixture(autouse=True)
def _forget_after():
    """The other tests get this process's usual cache back."""
    yield
    cache_module.toml_cache.cache_clear()
    catalog_module.load_decoder.cache_clear()


def _fresh_catalog(monkeypatch: pytest.MonkeyPatch, cache_dir: Path):
    monkeypatch.setenv("UMTRIAGE_CACHE_DIR", str(cache_dir))
    cache_module.toml_cache.cache_clear()
    catalog_module.load_decoder.cache_clear()
    return catalog_module.load_catalog()


def test_a_warm_cache_gives_the_catalog_a_cold_one_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cold = _fresh_catalog(monkeypatch, tmp_path)
    written = json.loads((tmp_path / cache_module.CACHE_NAME).read_text())
    assert len(written) >= len(cold.signatures)
    warm = _fresh_catalog(monkeypatch, tmp_path)
    assert not cache_module.toml_cache().fresh  # every file came from the cache
    assert warm.signatures == cold.signatures
    assert (warm.codes, warm.classes, warm.ranges, warm.context) == (cold.codes, cold.classes, cold.ranges,
                                                                      cold.context)


@pytest.mark.parametrize("damage", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_a_damaged_cache_is_parsed_again_and_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      damage: bytes) -> None:
    (tmp_path / cache_module.CACHE_NAME).write_bytes(damage)
    got = _fresh_catalog(monkeypatch, tmp_path)
    assert got.signatures
    assert isinstance(json.loads((tmp_path / cache_module.CACHE_NAME).read_text()), dict)


def test_an_unwritable_cache_place_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    got = _fresh_catalog(monkeypatch, blocker / "cache")
    assert got.signatures and not (blocker / "cache").exists()


def test_an_edited_file_is_parsed_again_and_dates_are_not_cached(tmp_path: Path) -> None:
    cache = cache_module.TomlCache(tmp_path / "c.json")
    assert cache.loads('a = 1\nb = "x"') == {"a": 1, "b": "x"}
    assert cache.loads('a = 2\nb = "x"') == {"a": 2, "b": "x"}
    dated = cache.loads("when = 2024-05-14T09:55:01Z")
    assert dated["when"].year == 2024
    cache.save()
    again = cache_module.TomlCache(tmp_path / "c.json")
    assert sorted(v["a"] for v in again.entries.values()) == [1, 2]  # the dated file is not kept
