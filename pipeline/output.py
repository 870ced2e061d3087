"""Writing the result tables: parquet always, CSV and JSON Lines on request.

CSV cells are neutralised against formula injection (a cell starting with = + - @ TAB or CR is
prefixed with a quote), since these files are opened in spreadsheets and the text comes from
machines we do not trust. Where the files go (run folders, the lock) is `outdir.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl

from .outdir import OutputError

FORMULA_START = r"^[=+\-@\t\r]"
#: How the result tables are written (see atomic_write_parquet; matches_disk uses them too).
COMPRESSION, COMPRESSION_LEVEL, ROW_GROUP_ROWS = "zstd", 1, 16_384


def atomic_write_parquet(df: pl.DataFrame, path: Path) -> None:
    """Write to a temporary name, then rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    # zstd level 1: on the result tables both faster and smaller than polars' default level 3
    # (1 GB bench: matches 65 -> 52 ms and 7.71 -> 7.59 MB, incidents 44 -> 34 ms and 3.89 -> 3.83 MB).
    # Row groups of ROW_GROUP_ROWS: the writer holds one group's columns uncompressed, and 100k
    # incidents repeat 160 MB of cause and fix text (peak +296 MB in one group, +67 MB in 16k rows).
    df.write_parquet(tmp, statistics=False, compression=COMPRESSION, compression_level=COMPRESSION_LEVEL,
                     row_group_size=ROW_GROUP_ROWS)
    os.replace(tmp, path)


#: Text columns a CSV reader would take for numbers (DuckDB reads `0x8024402C` as 2149859372):
#: their cells are written with a leading `'`, like formula cells.
TEXT_NOT_NUMBER = ("code",)


def neutralise(df: pl.DataFrame) -> pl.DataFrame:
    """Flatten lists for CSV and defuse cells a spreadsheet would run as formulas."""
    cols = []
    for name, dtype in df.schema.items():
        c = pl.col(name)
        if name in TEXT_NOT_NUMBER and dtype == pl.String:
            cols.append(pl.when(c.is_not_null() & (c != "")).then(pl.lit("'") + c).otherwise(c).alias(name))
            continue
        if isinstance(dtype, pl.List):
            c = c.cast(pl.List(pl.String)).list.join(" | ")
        elif dtype == pl.String:
            pass
        else:
            cols.append(c)
            continue
        cols.append(pl.when(c.str.contains(FORMULA_START)).then(pl.lit("'") + c).otherwise(c).alias(name))
    return df.select(cols)


def write_table(df: pl.DataFrame, out_dir: Path, name: str, formats: tuple[str, ...]) -> list[Path]:
    """Write one table as parquet plus each extra format asked for; returns the paths written."""
    written = []
    path = out_dir / f"{name}.parquet"
    try:
        atomic_write_parquet(df, path)
        written.append(path)
        if "csv" in formats:
            p = out_dir / f"{name}.csv"
            neutralise(df).write_csv(p)
            written.append(p)
        if "jsonl" in formats:
            p = out_dir / f"{name}.jsonl"
            df.write_ndjson(p)
            written.append(p)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise OutputError.wrap(exc, path.parent) from exc
    return written


def write_json(obj: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:  # streamed: a summary of 100k sources is not one string
            json.dump(obj, f, indent=2, sort_keys=False, default=str)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError.wrap(exc, path.parent) from exc
