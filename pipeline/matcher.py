"""Records to signature hits: exact codes by join, phrases by fuzzy score on distinct templates.

Cost model: a multi-pattern prefilter (Aho-Corasick in polars' `contains_any`) keeps only lines
holding an anchor word; those are masked into templates, and rapidfuzz scores each distinct
template once per process (cached), never each line. Codes never go through the fuzzy scorer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl
from rapidfuzz import fuzz
from umtriage.patterns.catalog import SOURCE_FAMILIES, Catalog, Signature

from .codes import MAY_HOLD_CODE
from .masking import template_expr, template_of
from .updates import needles_of_family as update_needles

#: A message shorter than this share of a phrase is too short to stand for it (truncation).
MIN_COVERAGE = 0.6
#: Levels whose unmatched records are kept as unknown errors.
PROBLEM_LEVELS = ("WARNING", "ERROR", "FAILED", "FATAL")

#: Level words the parsers read (an unmatched line at these levels is kept as an unknown problem).
LEVEL_HINTS = ("*failed*", "warning", "fatal", "error", "exception")

HIT_SCHEMA = {"row": pl.UInt32, "signature_id": pl.String, "code": pl.String, "score": pl.Float64}


@dataclass
class BatchHits:
    """What one batch of records produced: hits, unknown problem lines, later-success markers."""

    hits: pl.DataFrame  # row, signature_id, code, score
    unmatched: pl.DataFrame  # row, template
    successes: pl.DataFrame  # row, marker


#: A message cut off inside a phrase must keep this much of it (share, and characters).
MIN_CUT_SHARE, MIN_CUT_CHARS = 0.7, 30
_CUT_MARKS = (".", "…", " ")


def phrase_score(phrase_template: str, template: str) -> float:
    """How well a message template carries a phrase: best partial alignment, 0 when too short."""
    if len(template) < MIN_COVERAGE * len(phrase_template):
        return 0.0
    return float(fuzz.partial_ratio(phrase_template, template))


def cut_score(phrase_template: str, template: str) -> float:
    """Score of a message that ends part-way through the phrase (a field limit, a `...` cut).

    partial_ratio aligns the whole phrase, so text before a cut-off phrase drags it down; here the
    message's tail is compared with the phrase's head instead, if enough of the phrase remains.
    """
    t = template.rstrip("".join(_CUT_MARKS))
    shortest = max(MIN_CUT_CHARS, int(MIN_CUT_SHARE * len(phrase_template) + 0.999))
    best = 0.0
    for n in range(shortest, min(len(phrase_template), len(t)) + 1):
        best = max(best, fuzz.ratio(t[-n:], phrase_template[:n]))
    return float(best)


def best_score(phrase_templates: list[str], template: str, threshold: float) -> float:
    """A signature's score for a template: whole-phrase alignment, else a cut-off phrase."""
    best = max(phrase_score(p, template) for p in phrase_templates)
    if best < threshold:
        best = max(best, *(cut_score(p, template) for p in phrase_templates))
    return best


class Matcher:
    """Matches record batches against a catalog; keeps the template cache across batches."""

    def __init__(self, catalog: Catalog, *, include_explain_only: bool = False):
        """`include_explain_only` adds the knowledge-only signatures (for `explain`, never for scans)."""
        self.catalog = catalog
        sigs = [s for s in catalog.active() if include_explain_only or not s.explain_only]
        self.sigs = {s.id: s for s in sigs}
        self.code_table = pl.DataFrame(
            [(c, s.id) for s in sigs for c in s.codes], schema={"code": pl.String, "signature_id": pl.String},
            orient="row",
        )
        fam_rows = [(s.id, f) for s in sigs for f in SOURCE_FAMILIES if f != "any" and s.applies_to(f)]
        self.sig_family = pl.DataFrame(fam_rows, schema={"signature_id": pl.String, "family": pl.String},
                                       orient="row")
        self.phrase_sigs = [s for s in sigs if s.phrases]
        self.phrase_templates = {s.id: [template_of(p) for p in s.phrases] for s in self.phrase_sigs}
        self.anchors = sorted({a for s in self.phrase_sigs for a in s.anchors})
        #: per source family, only the anchors of signatures that apply to it
        self.family_anchors = {
            f: sorted({a for s in self.phrase_sigs if s.applies_to(f) for a in s.anchors})
            for f in SOURCE_FAMILIES if f != "any"
        }
        self.success_markers = sorted({m for s in sigs for m in s.resolved_by})
        self.sig_code = pl.DataFrame(
            [(s.id, s.codes[0] if len(s.codes) == 1 else None, s.generic) for s in sigs],
            schema={"signature_id": pl.String, "sig_code": pl.String, "generic": pl.Boolean}, orient="row",
        )
        self.fallback = next((s.id for s in sigs if s.id == "wu-error"), None)
        self.cache: dict[str, list[tuple[str, float]]] = {}

    def needles(self, family: str) -> tuple[str, ...]:
        """Every literal a line of this family must hold to possibly produce a phrase hit, an
        unknown-problem row, a success marker or an update event (updates.EXTRACTORS): with
        codes.MAY_HOLD_CODE, the parsers' prefilter (`ParseContext.keep_regex`)."""
        return tuple(sorted({*LEVEL_HINTS, *self.family_anchors.get(family, ()),
                             *(m.lower() for m in self.success_markers), *update_needles(family)}))

    def keep_pattern(self, family: str) -> str:
        """One case-insensitive regex for the prefilter: the needles as literals, or a possible
        failure code. A single regex pass is cheaper than a literal scan plus a regex scan."""
        literals = "|".join(re.escape(n) for n in self.needles(family))
        return f"(?i){literals}|{MAY_HOLD_CODE.removeprefix('(?i)')}"

    # -- phrases ---------------------------------------------------------------------------
    def score_template(self, template: str) -> list[tuple[str, float]]:
        """Signatures whose phrases this template carries, with scores, sorted by id (cached)."""
        hit = self.cache.get(template)
        if hit is not None:
            return hit
        out: list[tuple[str, float]] = []
        for sig in self.phrase_sigs:
            if not any(a in template for a in sig.anchors):
                continue
            best = best_score(self.phrase_templates[sig.id], template, sig.threshold)
            if best >= sig.threshold:
                out.append((sig.id, round(best, 1)))
        self.cache[template] = out
        return out

    def _phrase_hits(self, df: pl.DataFrame) -> pl.DataFrame:
        keep = []
        for family in df["family"].unique().sort().to_list():
            anchors = self.family_anchors.get(family) or []
            if anchors:
                part = df.filter(pl.col("family") == family) if len(keep) or df["family"].n_unique() > 1 else df
                keep.append(part.filter(pl.col("message").str.contains_any(anchors, ascii_case_insensitive=True)))
        cand = pl.concat(keep) if keep else df.clear()
        single = self._score_rows(cand)
        pairs = self._wrapped_pairs(df)
        if pairs.height == 0:
            return single
        paired = self._score_rows(pairs)
        # a pair counts only where neither of its lines matched that signature on its own
        alone = single.select("row", "signature_id")
        paired = paired.join(alone, on=["row", "signature_id"], how="anti").join(
            alone.with_columns(pl.col("row") - 1), on=["row", "signature_id"], how="anti")
        return pl.concat([single, paired]).sort(["row", "signature_id"])

    def _wrapped_pairs(self, df: pl.DataFrame) -> pl.DataFrame:
        """Plain text: each line joined with the next, for messages a mail or ticket wrapped in two."""
        text = df.filter(pl.col("family") == "text").sort("row")
        if text.height < 2:
            return text.clear()
        anchors = self.family_anchors.get("text") or []
        pairs = text.select(
            "row", message=pl.col("message") + " " + pl.col("message").shift(-1),
            same=(pl.col("source") == pl.col("source").shift(-1)) & (pl.col("row") + 1 == pl.col("row").shift(-1)),
        ).filter(pl.col("same").fill_null(False))
        return pairs.filter(pl.col("message").str.contains_any(anchors, ascii_case_insensitive=True))

    def _score_rows(self, cand: pl.DataFrame) -> pl.DataFrame:
        """(row, signature_id, score) for candidate rows, scoring each distinct template once."""
        if cand.height == 0:
            return pl.DataFrame(schema={"row": pl.UInt32, "signature_id": pl.String, "score": pl.Float64})
        # mask each distinct message once (repeated messages are common), then spread back to rows
        msgs = cand.select("message").unique()
        msgs = msgs.with_columns(template=template_expr(pl.col("message")))
        cand = cand.select("row", "message").join(msgs, on="message").select("row", "template")
        rows = [
            (t, sid, sc) for t in cand["template"].unique().sort().to_list() for sid, sc in self.score_template(t)
        ]
        if not rows:
            return pl.DataFrame(schema={"row": pl.UInt32, "signature_id": pl.String, "score": pl.Float64})
        table = pl.DataFrame(rows, schema={"template": pl.String, "signature_id": pl.String, "score": pl.Float64},
                             orient="row")
        return cand.join(table, on="template").select("row", "signature_id", "score")

    # -- all -------------------------------------------------------------------------------
    def match(self, df: pl.DataFrame) -> BatchHits:
        """`df` needs columns row (UInt32), family, message, codes (list), level."""
        codes = df.select("row", "family", "codes").explode("codes").drop_nulls("codes").rename({"codes": "code"})
        by_code = codes.join(self.code_table, on="code").with_columns(score=pl.lit(100.0))
        by_phrase = self._phrase_hits(df).join(df.select("row", "family", "codes"), on="row").join(
            self.sig_code, on="signature_id"
        ).with_columns(
            code=pl.coalesce(
                pl.col("sig_code"),
                pl.col("codes").list.first(),
            )
        )
        hits = pl.concat(
            [by_code.select("row", "family", "signature_id", "code", "score"),
             by_phrase.select("row", "family", "signature_id", "code", "score")],
        )
        hits = hits.join(self.sig_family, on=["signature_id", "family"], how="semi")
        hits = hits.sort(["row", "signature_id", "score"], descending=[False, False, True]).unique(
            ["row", "signature_id"], keep="first", maintain_order=True
        )
        # a catch-all signature only speaks where no specific one did
        hits = hits.join(self.sig_code.select("signature_id", "generic"), on="signature_id")
        specific_rows = hits.filter(~pl.col("generic")).select("row").unique()
        hits = pl.concat([
            hits.filter(~pl.col("generic")),
            hits.filter(pl.col("generic")).join(specific_rows, on="row", how="anti"),
        ]).drop("generic")
        if self.fallback is not None:
            claimed = hits.select("row", "code").drop_nulls()
            rest = codes.join(claimed, on=["row", "code"], how="anti")
            rest = rest.join(hits.filter(pl.col("code").is_null()).select("row"), on="row", how="anti")
            fb = rest.select("row", "family", pl.lit(self.fallback).alias("signature_id"), "code",
                             pl.lit(100.0).alias("score"))
            hits = pl.concat([hits, fb])
        hits = hits.select("row", "signature_id", "code", "score").sort(["row", "signature_id", "code"])
        unmatched = df.filter(pl.col("level").is_in(PROBLEM_LEVELS)).join(hits.select("row"), on="row", how="anti")
        unmatched = unmatched.select("row", template=template_expr(pl.col("message")))
        if self.success_markers:
            succ = df.select(
                "row", marker=pl.col("message").str.extract_many(self.success_markers, ascii_case_insensitive=True)
            ).explode("marker").drop_nulls("marker")
        else:
            succ = pl.DataFrame(schema={"row": pl.UInt32, "marker": pl.String})
        return BatchHits(hits.cast(HIT_SCHEMA), unmatched, succ)

    def signature(self, sig_id: str) -> Signature:
        return self.sigs[sig_id]
