"""Host names: one machine, one key, however its logs spell it.

`SRV01`, `srv01` and `SRV01.contoso.local` are the same machine; IP addresses stay whole.
`host` is that key (lower case, first DNS label); `host_display` is the same name with the case
it was written in (`SRV01`), so `host_display.lower() == host` always holds.

Where a source's host comes from, first match wins: the record's own `Computer` field; then
`--host-from REGEX` (group `host`, searched in the source's path); the machine its file name
names when its folder holds several machines' files (filehosts.py); the first folder or archive
under the input root; `--host`; the name of the input folder.
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


def display_host(name: str | None) -> str | None:
    """`normalise_host` keeping the case as written: `SRV01.contoso.local` -> `SRV01`."""
    if name is None:
        return None
    n = name.strip().strip("\\")
    if not n:
        return None
    if _IP.match(n):
        return n
    return n.split(".", 1)[0] or n


def _display_expr(name: pl.Expr) -> pl.Expr:
    short = name.str.strip_chars().str.strip_chars("\\")
    label = short.str.split(".").list.first()
    # as display_host: an IP stays whole, a name that starts with a dot (`.cache`) keeps its name
    short = pl.when(short.str.contains(r"^\d{1,3}(?:\.\d{1,3}){3}$") | (label == "")).then(short).otherwise(label)
    return pl.when(short == "").then(None).otherwise(short)


def host_display_expr(computer: pl.Expr, path_host: str | pl.Expr) -> pl.Expr:
    """Vectorised: the host as written, from the record's Computer field, else from the path."""
    fallback = path_host if isinstance(path_host, pl.Expr) else pl.lit(path_host, dtype=pl.String)
    return pl.coalesce(_display_expr(computer), _display_expr(fallback))


def host_expr(computer: pl.Expr, path_host: str | pl.Expr) -> pl.Expr:
    """Vectorised: the record's own Computer field when present, else the host from the path (the key)."""
    return host_display_expr(computer, path_host).str.to_lowercase()


def with_hosts(records: pl.DataFrame, path_host: str | pl.Expr) -> pl.DataFrame:
    """`records` with `host` and `host_display` (host_expr and host_display_expr of its `computer`).

    A batch holds few distinct (computer, path host) pairs, usually one, while the string work
    per row is a strip, a split and a regex: the names are worked out once per pair and spread
    back to the rows."""
    fallback = path_host if isinstance(path_host, pl.Expr) else pl.lit(path_host, dtype=pl.String)
    pairs = records.select(pl.col("computer"), fallback.alias("_path_host")).unique(maintain_order=True)
    display = host_display_expr(pl.col("computer"), pl.col("_path_host"))
    pairs = pairs.with_columns(host=display.str.to_lowercase(), host_display=display)
    if pairs.height == 1:
        return records.with_columns(host=pl.lit(pairs["host"][0], dtype=pl.String),
                                    host_display=pl.lit(pairs["host_display"][0], dtype=pl.String))
    keyed = records.with_columns(fallback.alias("_path_host"))
    return keyed.join(pairs, on=["computer", "_path_host"], how="left", nulls_equal=True,
                      maintain_order="left").drop("_path_host")


def host_value(computer: str | None, path_host: str) -> str:
    """`host_expr` for one value, without a polars call (it runs once per source, and a fleet has
    thousands of small ones)."""
    if computer is not None:
        short = computer.strip().lower()
        if not _IP_EXPR.match(short):
            short = short.split(".")[0] or short
        if short:
            return short
    return normalise_host(path_host) or path_host


def source_host(logical: str, path_host: str | None, unit, options) -> str:
    """The host (as written) of a source whose records may not name one; see the module rule."""
    if options.host_from:
        m = re.search(options.host_from, logical)
        if m and m.group("host") and display_host(m.group("host")):
            return m.group("host").strip()
    from .sources import archive_stem, fallback_host

    # a host folder (or a fleet archive's folder) wins: it holds one machine's files whatever their names
    if unit.name_host and (path_host is None or path_host == archive_stem(unit.path.name)):
        return unit.name_host
    for name in (path_host, options.host, fallback_host(unit)):
        if display_host(name):
            return name.strip()
    return "unknown"


_IP_EXPR = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
