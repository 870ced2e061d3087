"""Message templates: lower-case, variable parts masked, whitespace folded.

Fuzzy matching runs once per distinct template, not per line, so masking decides both accuracy
(a GUID or path must not change the score) and speed (fewer distinct templates). The masks are
data (patterns/masks.toml); this module only applies them, vectorised.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import polars as pl


@dataclass(frozen=True)
class Mask:
    name: str
    pattern: str
    replace: str


@lru_cache(maxsize=1)
def load_masks(path: str | None = None) -> tuple[Mask, ...]:
    """Masks in the order they are applied."""
    p = Path(path) if path else Path(str(resources.files("umtriage.patterns") / "masks.toml"))
    data = tomllib.loads(p.read_text(encoding="utf-8"))
    return tuple(Mask(m["name"], m["pattern"], m["replace"]) for m in data["mask"])


def template_expr(expr: pl.Expr) -> pl.Expr:
    """Polars expression turning messages into masked templates."""
    out = expr.str.to_lowercase()
    for m in load_masks():
        out = out.str.replace_all("(?i)" + m.pattern, m.replace)
    return out.str.replace_all(r"\s+", " ").str.strip_chars()


def template_of(text: str) -> str:
    """The template of one message (same code path as the vectorised one)."""
    return pl.select(template_expr(pl.lit(text, dtype=pl.String))).item()


def templates_of(texts: list[str]) -> list[str]:
    """Templates of many messages in one vectorised pass (the catalog's phrases at start-up)."""
    return pl.select(template_expr(pl.Series(texts, dtype=pl.String))).to_series().to_list()
