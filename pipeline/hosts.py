"""Host names: one machine, one key, however its logs spell it.

`SRV01`, `srv01` and `SRV01.contoso.local` are the same machine; IP addresses stay whole.
"""

from __future__ import annotations

import re

import polars as pl

_IP = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")


def normalise_host(name: str | None) -> str | None:
    """Lower-case short name: first DNS label unless the name is an IP address."""
    if name is None:
        return None
    n = name.strip().strip("\\").lower()
    if not n:
        return None
    if _IP.match(n):
        return n
    return n.split(".", 1)[0] or n


def host_expr(computer: pl.Expr, path_host: str | pl.Expr) -> pl.Expr:
    """Vectorised: the record's own Computer field when present, else the host from the path."""
    short = computer.str.strip_chars().str.to_lowercase()
    short = pl.when(short.str.contains(r"^\d{1,3}(?:\.\d{1,3}){3}$")).then(short).otherwise(
        short.str.split(".").list.first()
    )
    short = pl.when(short == "").then(None).otherwise(short)
    fallback = path_host if isinstance(path_host, pl.Expr) else pl.lit(path_host, dtype=pl.String)
    return pl.coalesce(short, fallback)


def host_value(computer: str | None, path_host: str) -> str:
    """`host_expr` for one value, without a polars call (it runs once per source, and a fleet has
    thousands of small ones)."""
    if computer is None:
        return path_host
    short = computer.strip().lower()
    if not _IP_EXPR.match(short):
        short = short.split(".")[0]
    return short or path_host


_IP_EXPR = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
