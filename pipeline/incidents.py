"""Matches to incidents: one per (host, signature, code) and burst of activity, with cause and fix.

A new incident starts when the gap between two matches exceeds the window, or when a success
of the same operation (a marker the signature names in `resolved_by`) lies between them: that
success ends the incident (`resolved_at`, SetupDiag's rule: check for a later success before
calling a problem current) and a later failure is a new incident. The unresolved incident whose
failure is the last one in its host's logs is `current`; `state` says current, open or resolved.

`lines` (and `count`, kept with the same value for older readers) counts matched lines;
`failures` counts failed operations: matched lines of one source that follow each other within
FAILURE_GAP (one logged attempt writes several `*FAILED*` lines within a few milliseconds) are
one failure; lines without a time are one failure per run of adjacent line numbers; each event
of an event export is one failure.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import polars as pl
from umtriage.patterns.catalog import Catalog

EVIDENCE_HEAD, EVIDENCE_TAIL = 3, 2
#: Matched lines of one source closer than this belong to one failed operation.
FAILURE_GAP = timedelta(seconds=1)
#: `severity_rank`: a number to sort and filter by (higher is worse).
SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
#: Formats whose raw text is the event's XML: evidence shows the event's message instead.
XML_EVENT_FORMATS = ("evtx", "event-xml")
#: A KB article number named in a line (update titles, install results).
KB_PATTERN = r"(?i)\bKB ?(\d{6,8})\b"

INCIDENT_SCHEMA: dict[str, pl.DataType] = {
    "incident_id": pl.String(),
    "host": pl.String(),
    "host_display": pl.String(),
    "signature_id": pl.String(),
    "scenario": pl.String(),
    "code": pl.String(),
    "code_name": pl.String(),
    "title": pl.String(),
    "severity": pl.String(),
    "severity_rank": pl.Int8(),
    "first_seen": pl.Datetime("us", "UTC"),
    "last_seen": pl.Datetime("us", "UTC"),
    "count": pl.Int64(),
    "lines": pl.Int64(),
    "failures": pl.Int64(),
    "sources": pl.List(pl.String()),
    "kb": pl.List(pl.String()),
    "evidence": pl.List(pl.String()),
    "score": pl.Float64(),
    "cause": pl.String(),
    "resolution": pl.String(),
    "doc_url": pl.String(),
    "resolved_at": pl.Datetime("us", "UTC"),
    "current": pl.Boolean(),
    "state": pl.String(),
}


def _iso_utc(ts: pl.Expr) -> pl.Expr:
    """A UTC time as datetime.isoformat() writes it (no fraction when it is zero)."""
    return (pl.when(ts.dt.microsecond() == 0).then(ts.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"))
            .otherwise(ts.dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")))


def incident_ids(agg: pl.DataFrame) -> pl.Series:
    """Stable ids: the first 16 hex digits of SHA-256 over host, signature, code and first_seen
    (ISO 8601) or, when untimed, `source:line`, joined by U+001F. The key text is built in polars:
    tens of thousands of incidents would otherwise cost a Python datetime per row."""
    anchor = pl.coalesce(_iso_utc(pl.col("first_seen")),
                         pl.concat_str(pl.col("first_src"), pl.lit(":"), pl.col("first_line").cast(pl.String)))
    keys = agg.select(pl.concat_str(pl.col("host"), pl.col("signature_id"), pl.col("code").fill_null(""), anchor,
                                    separator="\x1f").alias("k"))["k"]
    sha = hashlib.sha256
    return pl.Series("incident_id", [sha(k).hexdigest()[:16] for k in keys.cast(pl.Binary).to_list()],
                     dtype=pl.String)


def evidence_expr() -> pl.Expr:
    """A match's evidence line: its raw text, or `Event ID: message` for an event whose raw text is XML."""
    return (pl.when(pl.col("format").is_in(XML_EVENT_FORMATS))
            .then(pl.concat_str(pl.lit("Event "), pl.col("event_id").cast(pl.String).fill_null("?"),
                                pl.lit(": "), pl.col("message").fill_null("")))
            .otherwise(pl.col("raw")))


def kb_expr(text: pl.Expr) -> pl.Expr:
    """The first KB number a line names, as `KB5034441` (null when none)."""
    return pl.lit("KB") + text.str.extract(KB_PATTERN, 1)


def build_incidents(
    matches: pl.DataFrame, successes: pl.DataFrame, catalog: Catalog, window: timedelta
) -> pl.DataFrame:
    """Group matches into incidents; deterministic order (host, first_seen, signature, code)."""
    return incidents_and_links(matches, successes, catalog, window)[0]


def _success_times(successes: pl.DataFrame, catalog: Catalog) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """(markers, successes) for the as-of joins of _last_success and _resolve, made once: the
    (signature_id, marker) pairs the catalog names, and the timed successes (host, ts, lower-cased
    marker) sorted by time. None when nothing can end or resolve an incident."""
    marker_rows = [(s.id, mk.lower()) for s in catalog.signatures.values() for mk in s.resolved_by]
    if successes.height == 0 or not marker_rows:
        return None
    markers = pl.DataFrame(marker_rows, schema={"signature_id": pl.String, "marker": pl.String}, orient="row")
    succ = (successes.drop_nulls("ts").select("host", "ts", pl.col("marker").str.to_lowercase())
            .sort("ts"))  # repeats are harmless to the as-of joins, so no unique() pass
    return (markers, succ) if succ.height else None


def _last_success(m: pl.DataFrame, known: tuple[pl.DataFrame, pl.DataFrame] | None) -> pl.DataFrame:
    """Per match row (`_r`), the time of the latest success before it of a marker its signature names."""
    if known is None:
        return m.with_columns(_since=pl.lit(None, dtype=pl.Datetime("us", "UTC")))
    markers, succ = known
    markers = markers.with_columns(pl.col("signature_id").cast(m.schema["signature_id"]))  # categorical on disk
    succ = succ.select(pl.col("host").cast(m.schema["host"]), pl.col("ts").alias("_since"), "marker")
    want = m.select("_r", "host", "signature_id", "ts").drop_nulls("ts").join(markers, on="signature_id").sort("ts")
    if want.height == 0:
        return m.with_columns(_since=pl.lit(None, dtype=pl.Datetime("us", "UTC")))
    since = (want.join_asof(succ, left_on="ts", right_on="_since", by=["host", "marker"], strategy="backward",
                            allow_exact_matches=False, check_sortedness=False)
             .group_by("_r").agg(pl.col("_since").max()))
    return m.join(since, on="_r", how="left", maintain_order="left")


def _sort_rows(m: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """`m` sorted by `by`, nulls last. Categorical columns (the out-of-core path's keys) sort by
    their categories' rank in text order, which is their text's order: polars' sort of
    categoricals encodes every row's text (one key of 900k matches: +166 MB at its peak)."""
    cats = [c for c in by if m.schema[c] == pl.Categorical]
    if not cats:
        return m.sort(by, nulls_last=True)
    exprs = [_text_rank(m[c]) if c in cats else pl.col(c) for c in by]
    return m[m.select(pl.arg_sort_by(exprs, nulls_last=True)).to_series()]


def _text_rank(column: pl.Series) -> pl.Expr:
    """A categorical column as the rank of each value among its distinct values in text order
    (null: after every value), from a table of its few categories, never the rows' text."""
    values = (column.unique().drop_nulls().to_frame("v")
              .with_columns(_id=pl.col("v").to_physical(), _text=pl.col("v").cast(pl.String)).sort("_text"))
    return (pl.col(column.name).to_physical()
            .replace_strict(values["_id"], pl.int_range(values.height, dtype=pl.UInt32, eager=True),
                            default=values.height, return_dtype=pl.UInt32)
            .fill_null(values.height))


def _new_failures(m: pl.DataFrame) -> pl.Series:
    """Per row of the key-sorted matches: does it start a new failed operation of its burst?

    One failed operation is lines of one source within FAILURE_GAP of each other (adjacent lines
    when untimed). A stable sort by (burst, source) puts each source's lines of a burst together
    in time order, so plain shifts give the steps; a window over (burst, source) costs 20 times
    more with tens of thousands of bursts."""
    x = m.select("burst", "source", "ts", "line_no", _i=pl.int_range(pl.len(), dtype=pl.UInt32)).sort(
        "burst", "source", maintain_order=True)
    same_group = pl.col("burst").eq_missing(pl.col("burst").shift(1)) & pl.col("source").eq_missing(
        pl.col("source").shift(1))
    same_failure = (pl.when(pl.col("ts").is_null()).then(pl.col("line_no").diff() <= 1)
                    .otherwise(pl.col("ts").diff() <= FAILURE_GAP))
    x = x.select("_i", new=~pl.when(same_group).then(same_failure).fill_null(False))
    return x.sort("_i")["new"]


def incidents_and_links(
    matches: pl.DataFrame, successes: pl.DataFrame, catalog: Catalog, window: timedelta
) -> tuple[pl.DataFrame, pl.Series]:
    """The incidents, and each match row's incident_id (in the matches' row order).

    The out-of-core path (matches_disk.py) passes a narrow frame: key columns as categoricals,
    `_kb` already extracted and `_evidence` holding a row number, looked up afterwards. A caller
    that needs each match's KB number itself extracts it once, as `_kb`, before the call.
    """
    if matches.height == 0:
        return pl.DataFrame(schema=INCIDENT_SCHEMA), pl.Series("incident_id", [], dtype=pl.String)
    key = ["host", "signature_id", "code"]
    m = matches.with_row_index("_r").with_columns(pl.col("code").fill_null(""))
    if "_evidence" not in m.columns:
        m = m.with_columns(_evidence=evidence_expr())
    if "_kb" not in m.columns:
        m = m.with_columns(_kb=kb_expr(pl.col("raw")))
    # only what the rules read is sorted: the messages and raw lines are most of a match's bytes
    m = m.select("_r", *key, "ts", "source", "line_no", "score", "scenario", "_evidence", "_kb")
    known = _success_times(successes, catalog)
    m = _sort_rows(_last_success(m, known), [*key, "ts", "source", "line_no"])
    # m is sorted by key: a key's rows are contiguous, so plain diffs with the key's first row
    # forced to start a burst give the per-key windows without partitioning by four columns
    new_key = pl.any_horizontal(pl.col(c).ne_missing(pl.col(c).shift(1)) for c in key)
    gap = pl.col("ts").diff()
    # a success of the operation between two failures ends the incident: the next failure starts another
    after_success = pl.col("_since").ne_missing(pl.col("_since").shift(1)) & pl.col("_since").is_not_null()
    new_burst = new_key | (gap > window).fill_null(False) | after_success
    m = m.with_columns(burst=new_burst.cast(pl.Int32).cum_sum())  # numbers every burst of every key
    m = m.with_columns(_new_failure=_new_failures(m))
    agg = (
        m.group_by("burst", maintain_order=True)
        .agg(
            *(pl.col(c).first() for c in key),
            first_seen=pl.col("ts").min(),
            last_seen=pl.col("ts").max(),
            count=pl.len().cast(pl.Int64),
            failures=pl.col("_new_failure").sum().cast(pl.Int64),
            sources=pl.col("source").unique().sort(),
            kb=pl.col("_kb").drop_nulls().unique().sort(),
            first=pl.col("_evidence").head(EVIDENCE_HEAD + EVIDENCE_TAIL),
            head=pl.col("_evidence").head(EVIDENCE_HEAD),
            tail=pl.col("_evidence").tail(EVIDENCE_TAIL),
            score=pl.col("score").max(),
            scenario=pl.col("scenario").first(),
            first_src=pl.col("source").first(),
            first_line=pl.col("line_no").first(),
        )
        .with_columns(
            # up to five raw lines: all of them when there are few, else the first and the last ones
            evidence=pl.when(pl.col("count") <= EVIDENCE_HEAD + EVIDENCE_TAIL)
            .then(pl.col("first"))
            .otherwise(pl.concat_list("head", "tail"))
        )
    )
    agg = agg.with_columns(code=pl.when(pl.col("code") == "").then(None).otherwise(pl.col("code")))
    ids = incident_ids(agg)
    # the per-(signature, code) texts: few distinct pairs, built once each, joined on
    pairs = agg.select("signature_id", "code").unique(maintain_order=True)
    texts = []
    for sig_id, code in pairs.iter_rows():
        sig = catalog.signatures[sig_id]
        info = catalog.codes.get(code) if code else None
        klass = catalog.code_class(code) if sig.severity_from == "code" else None
        severity = klass.severity if klass else sig.severity
        resolution = f"0. {klass.fix}\n{sig.resolution}" if klass else sig.resolution
        texts.append((sig_id, code, info.name if info else None, _title(sig, code, info), severity,
                      _with_meaning(sig.cause, info), resolution, sig.doc_url))
    text_table = pl.DataFrame(texts, orient="row", schema={
        "signature_id": pl.String, "code": pl.String, "code_name": pl.String, "title": pl.String,
        "severity": pl.String, "cause": pl.String, "resolution": pl.String, "doc_url": pl.String})
    agg = agg.with_columns(incident_id=ids)
    links = m.select("_r", "burst").join(agg.select("burst", "incident_id"), on="burst", how="left").sort("_r")[
        "incident_id"]
    agg = agg.with_columns(pl.col(c).cast(pl.String) for c in (*key, "scenario"))  # no-op unless categorical
    inc = (
        agg.join(text_table, on=["signature_id", "code"], how="left", nulls_equal=True, maintain_order="left")
        .join(host_displays(matches), on="host", how="left", maintain_order="left")
        .with_columns(resolved_at=pl.lit(None, dtype=pl.Datetime("us", "UTC")), current=pl.lit(False),
                      lines=pl.col("count"), state=pl.lit(None, dtype=pl.String),
                      severity_rank=pl.col("severity").replace_strict(SEVERITY_RANK, default=None,
                                                                      return_dtype=pl.Int8))
        .select([pl.col(c).cast(t) for c, t in INCIDENT_SCHEMA.items()])
    )
    inc = _resolve(inc, known)
    return finish_incidents(inc), links


def finish_incidents(inc: pl.DataFrame) -> pl.DataFrame:
    """`current` and `state` over all of a run's incidents, in the table's order."""
    inc = _mark_current(inc)
    inc = inc.with_columns(state=pl.when(pl.col("resolved_at").is_not_null()).then(pl.lit("resolved"))
                           .when(pl.col("current")).then(pl.lit("current")).otherwise(pl.lit("open")))
    return inc.sort(["host", "first_seen", "signature_id", "code", "incident_id"], nulls_last=True)


def host_displays(matches: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """One spelling per host: the one its matched lines use most (ties: the first in sort order)."""
    if "host_display" not in matches.collect_schema().names():
        return pl.DataFrame(schema={"host": pl.String, "host_display": pl.String})
    return (matches.lazy().group_by("host", "host_display").len()
            .collect(engine="streaming" if isinstance(matches, pl.LazyFrame) else "auto")
            .sort(["host", "len", "host_display"], descending=[False, True, False], nulls_last=True)
            .group_by("host", maintain_order=True).agg(pl.col("host_display").first()))


def _title(sig, code: str | None, info) -> str:
    """Catch-all signatures name the code they stand for, so each incident says what it is."""
    if sig.generic and code:
        return f"{code} {info.name}: {info.meaning}" if info else f"Error {code} (not in the decoder)"
    return sig.title


def _with_meaning(cause: str, info) -> str:
    if info is None or not info.meaning:
        return cause
    return f"{info.name}: {info.meaning} {cause}".strip()


def _resolve(inc: pl.DataFrame, known: tuple[pl.DataFrame, pl.DataFrame] | None) -> pl.DataFrame:
    """Set resolved_at to the first success (of a marker the signature names) after last_seen."""
    if known is None:
        return inc
    markers, succ = known
    wants = (
        inc.select("incident_id", "host", "signature_id", "last_seen")
        .join(markers, on="signature_id")
        .drop_nulls("last_seen")
        .sort("last_seen")
    )
    if wants.height == 0:
        return inc
    # the first success strictly after the incident's last failure, per accepted marker (as-of join,
    # not a cross product: a host can log a success line on every scan)
    first = (
        wants.join_asof(succ.rename({"ts": "resolved"}), left_on="last_seen", right_on="resolved",
                        by=["host", "marker"], strategy="forward", allow_exact_matches=False,
                        check_sortedness=False)  # both sides are sorted above
        .group_by("incident_id")
        .agg(pl.col("resolved").min())
    )
    return (
        inc.join(first, on="incident_id", how="left", maintain_order="left")
        .with_columns(resolved_at=pl.col("resolved"))
        .drop("resolved")
    )


def _mark_current(inc: pl.DataFrame) -> pl.DataFrame:
    """Per host, the unresolved incident(s) holding the host's latest failure are current."""
    # an info incident (a trace code) is never a host's current problem
    open_ = pl.col("resolved_at").is_null() & (pl.col("severity") != "info")
    latest = inc.filter(open_).group_by("host").agg(latest=pl.col("last_seen").max())
    # a host whose logs carry no time at all: every open incident is as current as the others
    return (
        inc.join(latest, on="host", how="left", maintain_order="left")
        .with_columns(
            current=(open_ & ((pl.col("last_seen") == pl.col("latest")) | pl.col("latest").is_null())).fill_null(
                False
            )
        )
        .drop("latest")
    )
