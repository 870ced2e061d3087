"""matches.parquet and the incidents for more matches than fit in memory (issue 15: a 480 MB file
whose every line matches took 3.8 GB when its 4.5 million rows were merged, sorted and grouped).

The parts the workers spilled stay on disk. One streaming pass writes a narrow copy of them: the
columns the incident logic reads, text keys as categoricals (4 bytes a row), the KB number already
extracted, and `_seq`, the row's place in the parts read one after another. Incidents are built
from that copy in chunks of whole (host, signature, code) keys, which is all an incident spans;
their evidence rows are fetched by `_seq` afterwards. Then matches.parquet is written in its
canonical order a bounded run of rows at a time, gathered from the parts, with each row's
incident_id. Memory is bounded by the narrow copy, never by the raw or message text.
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import polars as pl

from .incidents import evidence_expr, finish_incidents, host_displays, incidents_and_links, kb_expr
from .output import COMPRESSION, COMPRESSION_LEVEL, ROW_GROUP_ROWS, neutralise

#: Above this many match rows the tables are built here instead of in memory (the usual path,
#: whose bytes the tests pin). UMTRIAGE_MATCHES_IN_MEMORY lowers it (the tests do).
MATCHES_IN_MEMORY = 250_000
#: Rows of whole keys handed to incidents_and_links at once (a single bigger key goes alone).
INCIDENT_CHUNK_ROWS = 1_000_000
#: Rows of matches.parquet gathered and written at once.
WRITE_ROWS = 50_000
MATCH_ORDER = ["source", "line_no", "signature_id", "code"]
KEY = ["host", "signature_id", "code"]
_CATEGORICAL = ("host", "signature_id", "code", "source", "scenario")


def in_memory_limit() -> int:
    value = os.environ.get("UMTRIAGE_MATCHES_IN_MEMORY", "")
    return int(value) if value.isdigit() else MATCHES_IN_MEMORY


def part_rows(paths: list[str]) -> list[int]:
    """Rows of each part, from its parquet footer (nothing else is read)."""
    return [pl.scan_parquet(p).select(pl.len()).collect().item() for p in paths]


def build_on_disk(parts: list[str], scan_part, columns: list[str], successes: pl.DataFrame, catalog,
                  window: timedelta, work_dir: Path, add_columns) -> tuple[pl.DataFrame, Path, int]:
    """Incidents and a finished matches file (in work_dir) from spilled parts.

    `scan_part(part)` gives a part as a LazyFrame (line numbers shifted); `add_columns(df, links)`
    gives a run of sorted matches their derived columns. Returns (incidents, matches file, rows).
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    sizes = part_rows([p.split("#+")[0] for p in parts])
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    wide = [scan_part(p).select(columns) for p in parts]
    narrow_path = work_dir / "narrow.parquet"
    pl.concat([lf.with_row_index("_seq", offset=s) for lf, s in zip(wide, starts, strict=True)],
              how="vertical_relaxed").select(
        *[pl.col(c).cast(pl.Categorical) for c in _CATEGORICAL], "ts", "line_no", "score", "_seq",
        _kb=kb_expr(pl.col("raw")).cast(pl.Categorical),
    ).sink_parquet(narrow_path)
    narrow = pl.scan_parquet(narrow_path)
    incidents, links = _incidents(narrow, successes, catalog, window)
    displays = host_displays(pl.concat([lf.select("host", "host_display") for lf in wide], how="vertical_relaxed"))
    incidents = (incidents.drop("host_display").join(displays, on="host", how="left", maintain_order="left")
                 .select(incidents.columns))
    incidents = _fill_evidence(incidents, parts, scan_part, starts, sizes)
    order = _sorted_order(narrow)
    out = work_dir / "matches.parquet"
    _write_sorted(order, links, wide, starts, sizes, out, add_columns)
    return incidents, out, len(order)


def _incidents(narrow: pl.LazyFrame, successes: pl.DataFrame, catalog, window: timedelta):
    """incidents_and_links over chunks of whole keys; links as one incident_id per `_seq`."""
    counts = narrow.group_by(KEY).len().collect().sort(KEY, nulls_last=True)
    chunks: list[list[tuple]] = [[]]
    rows = 0
    for *key, n in counts.iter_rows():
        if chunks[-1] and rows + n > INCIDENT_CHUNK_ROWS:
            chunks.append([])
            rows = 0
        chunks[-1].append(tuple(key))
        rows += n
    incidents, links = [], []
    for chunk in chunks:
        if not chunk:
            continue
        wanted = pl.DataFrame(chunk, schema={k: pl.String for k in KEY}, orient="row").with_columns(
            pl.col(k).cast(pl.Categorical) for k in KEY)
        df = (narrow.join(wanted.lazy(), on=KEY, how="semi", nulls_equal=True).collect(engine="streaming")
              .with_columns(_evidence=pl.col("_seq")))
        inc, link = incidents_and_links(df, successes, catalog, window)
        incidents.append(inc)
        links.append(pl.DataFrame({"_seq": df["_seq"], "incident_id": link.cast(pl.Categorical)}))
        del df
    inc = finish_incidents(pl.concat(incidents))
    return inc, pl.concat(links).sort("_seq")["incident_id"]


def _ranks(narrow: pl.LazyFrame, column: str) -> tuple[pl.Expr, int]:
    """`column` (categorical) as its rank among the column's distinct values in text order, nulls
    last, and the number of bits the ranks need. Mapped from the category ids: casting the column
    to text would write out every row's string."""
    values = (narrow.select(pl.col(column).unique()).collect().drop_nulls()
              .with_columns(_id=pl.col(column).to_physical(), _text=pl.col(column).cast(pl.String))
              .sort("_text"))
    n = values.height
    expr = (pl.col(column).to_physical()
            .replace_strict(values["_id"], pl.int_range(n, dtype=pl.UInt64, eager=True), default=n,
                            return_dtype=pl.UInt64)
            .fill_null(n))
    return expr, max(1, n.bit_length())


def _sorted_order(narrow: pl.LazyFrame) -> pl.Series:
    """`_seq` in MATCH_ORDER (source, line_no, signature, code; nulls last).

    The four keys are packed into one unsigned 64-bit number when their ranks fit (they do unless
    there are millions of sources or line numbers past 2^40): sorting one integer column takes a
    fraction of the memory of polars' multi-column sort, which encodes every row."""
    (src, src_bits), (sig, sig_bits), (code, code_bits) = (_ranks(narrow, c) for c in ("source", "signature_id",
                                                                                      "code"))
    stats = narrow.select(pl.col("line_no").min().alias("lo"), pl.col("line_no").max().alias("hi")).collect()
    lo, hi = stats["lo"][0], stats["hi"][0]
    line_bits = max(1, (hi + 1 - lo + 1).bit_length()) if hi is not None else 1
    if src_bits + line_bits + sig_bits + code_bits > 63 or (lo is not None and lo < 0):
        return narrow.select(*MATCH_ORDER, "_seq").collect().sort(MATCH_ORDER, nulls_last=True)["_seq"]
    line = (pl.col("line_no") - (lo or 0)).cast(pl.UInt64).fill_null((hi or 0) + 1 - (lo or 0))
    def shifted(expr: pl.Expr, bits: int) -> pl.Expr:
        return expr * pl.lit(1 << bits, dtype=pl.UInt64)

    packed = (shifted(src, line_bits + sig_bits + code_bits) + shifted(line, sig_bits + code_bits)
              + shifted(sig, code_bits) + code).alias("_key")
    keys = narrow.select(packed, "_seq").collect()
    if keys["_key"].is_sorted():  # the usual case: the parts already come in this order
        return keys["_seq"]
    return keys.sort("_key")["_seq"]


def _gather(wide: list[pl.LazyFrame], starts: list[int], sizes: list[int], seqs: pl.Series,
            cache: dict) -> pl.DataFrame:
    """The rows `seqs` (places in the parts read one after another), in that order."""
    import bisect

    pieces = []
    frame = pl.DataFrame({"_seq": seqs}).with_row_index("_pos")
    part_of = [bisect.bisect_right(starts, s) - 1 for s in seqs.unique().sort().to_list()]
    for i in sorted(set(part_of)):
        if i not in cache:
            cache.clear()  # the parts are mostly read in order: keep one
            cache[i] = wide[i].collect()
        mine = frame.filter(pl.col("_seq").is_between(starts[i], starts[i] + sizes[i] - 1))
        pieces.append(cache[i][(mine["_seq"] - starts[i]).cast(pl.Int64).to_list()]
                      .with_columns(_pos=mine["_pos"]))
    return pl.concat(pieces, how="vertical_relaxed").sort("_pos").drop("_pos")


def _fill_evidence(inc: pl.DataFrame, parts, scan_part, starts, sizes) -> pl.DataFrame:
    """Swap the evidence row numbers for their lines (in the incidents' evidence order)."""
    ev = (inc.select(pl.col("evidence")).with_row_index("_i").explode("evidence").with_row_index("_p")
          .drop_nulls("evidence").with_columns(_seq=pl.col("evidence").cast(pl.UInt32)))
    if ev.height == 0:
        return inc
    wide = [scan_part(p).select("format", "event_id", "message", "raw") for p in parts]
    ev = ev.sort("_seq")
    texts = _gather(wide, starts, sizes, ev["_seq"], {}).select(evidence_expr().alias("_text"))["_text"]
    lists = (ev.with_columns(_text=texts).sort("_p").group_by("_i", maintain_order=True).agg(pl.col("_text"))
             .join(inc.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_i")), on="_i", how="right")
             .sort("_i"))
    return inc.with_columns(evidence=lists["_text"].cast(inc.schema["evidence"]))


def _write_sorted(order: pl.Series, links: pl.Series, wide, starts, sizes, out: Path, add_columns) -> None:
    """matches.parquet in `order` (never empty here: this path runs for many matches), WRITE_ROWS
    rows gathered at a time and appended to one file (pyarrow's incremental writer: merging run
    files through polars' sink held 80 MB more)."""
    import pyarrow.parquet as pq  # only this path, for runs of more than MATCHES_IN_MEMORY matches

    writer = None
    cache: dict = {}
    try:
        for k in range(0, len(order), WRITE_ROWS):
            seqs = order[k:k + WRITE_ROWS]
            rows = add_columns(_gather(wide, starts, sizes, seqs, cache), links.gather(seqs).cast(pl.String))
            table = rows.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema, compression=COMPRESSION,
                                          compression_level=COMPRESSION_LEVEL, write_statistics=False)
            writer.write_table(table.cast(writer.schema), row_group_size=ROW_GROUP_ROWS)
    finally:
        if writer is not None:
            writer.close()
    cache.clear()


def matches_extra_formats(path: Path, out_dir: Path, formats: tuple[str, ...]) -> list[Path]:
    """matches.csv / .jsonl from matches.parquet, a batch of rows at a time."""
    import pyarrow.parquet as pq  # only extra formats of a large run need it: keep start-up light

    written = []
    for fmt in ("csv", "jsonl"):
        if fmt not in formats:
            continue
        written.append(out_dir / f"matches.{fmt}")
        with written[-1].open("wb") as f:
            for k, batch in enumerate(pq.ParquetFile(path).iter_batches(batch_size=WRITE_ROWS)):
                df = pl.from_arrow(batch)
                if fmt == "csv":
                    neutralise(df).write_csv(f, include_header=k == 0)
                else:
                    df.write_ndjson(f)
    return written


def discard(work_dir: Path) -> None:
    shutil.rmtree(work_dir, ignore_errors=True)
