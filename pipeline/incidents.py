"""Matches to incidents: one per (host, signature, code) and burst of activity, with cause and fix.

A new incident starts when the gap between two matches exceeds the window. An incident is
`resolved_at` the first later success of the same operation on that host (SetupDiag's rule:
check for a later success before calling a problem current), and the unresolved incident whose
failure is the last one in its host's logs is `current`.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import polars as pl
from umtriage.patterns.catalog import Catalog

EVIDENCE_HEAD, EVIDENCE_TAIL = 3, 2

INCIDENT_SCHEMA: dict[str, pl.DataType] = {
    "incident_id": pl.String(),
    "host": pl.String(),
    "signature_id": pl.String(),
    "scenario": pl.String(),
    "code": pl.String(),
    "code_name": pl.String(),
    "title": pl.String(),
    "severity": pl.String(),
    "first_seen": pl.Datetime("us", "UTC"),
    "last_seen": pl.Datetime("us", "UTC"),
    "count": pl.Int64(),
    "sources": pl.List(pl.String()),
    "evidence": pl.List(pl.String()),
    "score": pl.Float64(),
    "cause": pl.String(),
    "resolution": pl.String(),
    "doc_url": pl.String(),
    "resolved_at": pl.Datetime("us", "UTC"),
    "current": pl.Boolean(),
}


def _incident_id(host: str, sig: str, code: str | None, first_seen, first_src: str, first_line: int) -> str:
    anchor = first_seen.isoformat() if first_seen is not None else f"{first_src}:{first_line}"
    key = "\x1f".join([host, sig, code or "", anchor])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def build_incidents(
    matches: pl.DataFrame, successes: pl.DataFrame, catalog: Catalog, window: timedelta
) -> pl.DataFrame:
    """Group matches into incidents; deterministic order (host, first_seen, signature, code)."""
    if matches.height == 0:
        return pl.DataFrame(schema=INCIDENT_SCHEMA)
    key = ["host", "signature_id", "code"]
    m = matches.with_columns(pl.col("code").fill_null("")).sort(
        [*key, "ts", "source", "line_no"], nulls_last=True
    )
    gap = pl.col("ts").diff().over(key)
    m = m.with_columns(burst=(gap > window).fill_null(False).cast(pl.Int32).cum_sum().over(key))
    agg = (
        m.group_by([*key, "burst"], maintain_order=True)
        .agg(
            first_seen=pl.col("ts").min(),
            last_seen=pl.col("ts").max(),
            count=pl.len().cast(pl.Int64),
            sources=pl.col("source").unique().sort(),
            first=pl.col("raw").head(EVIDENCE_HEAD + EVIDENCE_TAIL),
            head=pl.col("raw").head(EVIDENCE_HEAD),
            tail=pl.col("raw").tail(EVIDENCE_TAIL),
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
    ids = [
        _incident_id(h, sig, code, first, src, line)
        for h, sig, code, first, src, line in agg.select(
            "host", "signature_id", "code", "first_seen", "first_src", "first_line").iter_rows()
    ]
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
    inc = (
        agg.with_columns(incident_id=pl.Series(ids, dtype=pl.String))
        .join(text_table, on=["signature_id", "code"], how="left", nulls_equal=True, maintain_order="left")
        .with_columns(resolved_at=pl.lit(None, dtype=pl.Datetime("us", "UTC")), current=pl.lit(False))
        .select([pl.col(c).cast(t) for c, t in INCIDENT_SCHEMA.items()])
    )
    inc = _resolve(inc, successes, catalog)
    inc = _mark_current(inc)
    return inc.sort(["host", "first_seen", "signature_id", "code", "incident_id"], nulls_last=True)


def _title(sig, code: str | None, info) -> str:
    """Catch-all signatures name the code they stand for, so each incident says what it is."""
    if sig.generic and code:
        return f"{code} {info.name}: {info.meaning}" if info else f"Error {code} (not in the decoder)"
    return sig.title


def _with_meaning(cause: str, info) -> str:
    if info is None or not info.meaning:
        return cause
    return f"{info.name}: {info.meaning} {cause}".strip()


def _resolve(inc: pl.DataFrame, successes: pl.DataFrame, catalog: Catalog) -> pl.DataFrame:
    """Set resolved_at to the first success (of a marker the signature names) after last_seen."""
    if successes.height == 0:
        return inc
    marker_rows = [(s.id, mk.lower()) for s in catalog.signatures.values() for mk in s.resolved_by]
    if not marker_rows:
        return inc
    markers = pl.DataFrame(marker_rows, schema={"signature_id": pl.String, "marker": pl.String}, orient="row")
    succ = (
        successes.drop_nulls("ts")
        .select("host", "ts", pl.col("marker").str.to_lowercase())
        .sort("ts")  # repeats are harmless to the as-of join below, so no unique() pass
    )
    wants = (
        inc.select("incident_id", "host", "signature_id", "last_seen")
        .join(markers, on="signature_id")
        .drop_nulls("last_seen")
        .sort("last_seen")
    )
    if wants.height == 0 or succ.height == 0:
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
