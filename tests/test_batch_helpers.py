"""Batch helpers that replace per-row work: they must give what the per-row expressions give."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from umtriage.pipeline.hosts import host_display_expr, host_expr, with_hosts
from umtriage.pipeline.literals import LOWER, holds, literals_regex, with_lower

NAMES = [None, "", "  ", "SRV01", "srv01.contoso.local", "10.0.0.7", ".cache", "Web-02.Corp", "\\\\FILE01"]


def test_with_hosts_equals_the_per_row_expressions_for_one_and_many_pairs() -> None:
    rows = [(c, p) for c in NAMES for p in ("from-path", "Other.Host.local")]
    df = pl.DataFrame(rows * 3, schema={"computer": pl.String, "path_host": pl.String}, orient="row")
    want = df.select(host=host_expr(pl.col("computer"), pl.col("path_host")),
                     host_display=host_display_expr(pl.col("computer"), pl.col("path_host")))
    got = with_hosts(df, pl.col("path_host"))
    assert got.columns == ["computer", "path_host", "host", "host_display"]
    assert got.select("host", "host_display").equals(want)
    # one pair (the usual batch of one file): literal columns, same values
    one = df.filter(pl.col("computer").is_null() & (pl.col("path_host") == "from-path"))
    assert with_hosts(one, "Other.Host.local")["host"].to_list() == ["other"] * one.height
    assert with_hosts(one, pl.col("path_host"))["host_display"].to_list() == ["from-path"] * one.height


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(st.text(alphabet="abcXYZ ,=:é", min_size=1, max_size=6), min_size=1, max_size=5),
       st.lists(st.text(alphabet="abcXYZ ,=:é\t", max_size=30), min_size=1, max_size=20))
def test_holds_finds_what_a_case_insensitive_search_finds(needles: list[str], messages: list[str]) -> None:
    df = with_lower(pl.DataFrame({"message": messages}, schema={"message": pl.String}))
    got = df.select(holds(literals_regex(needles))).to_series().to_list()
    want = [any(n.lower() in m.lower() for n in needles) for m in messages]
    assert got == want
    assert with_lower(df) is df and LOWER in df.columns


def test_no_needles_hold_nothing() -> None:
    df = with_lower(pl.DataFrame({"message": ["error", None]}))
    assert literals_regex([]) is None
    assert df.filter(holds(None)).height == 0
    assert df.filter(holds(literals_regex(["ERROR"])))["message"].to_list() == ["error"]
