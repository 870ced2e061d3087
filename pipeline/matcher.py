"""Records to signature hits: exact codes by join, phrases by fuzzy score on distinct templates.

Cost model: a multi-pattern prefilter (an alternation of lower-cased literals on the lower-cased
message, see literals.py) keeps only lines holding an anchor word; those are masked into
templates, and rapidfuzz scores each distinct template once per process (cached), never each line.
Codes never go through the fuzzy scorer.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

import polars as pl
from rapidfuzz import fuzz
from rapidfuzz.distance import LCSseq
from umtriage.patterns.catalog import SOURCE_FAMILIES, Catalog, Signature

from .codes import MAY_HOLD_CODE
from .literals import LOWER, holds, literals_regex, with_lower
from .masking import template_expr, templates_of
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
    successes: pl.DataFrame  # row, marker (lower-cased)


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


#: Templates scored and remembered per process (least recently used ones are forgotten first):
#: a fleet's distinct templates number in the thousands; hostile input can make every line one.
TEMPLATE_CACHE_SIZE = 50_000
#: Only this many characters of a template are scored (a megabyte-long line must not cost
#: seconds per signature); log messages carry their phrases well before this.
MAX_SCORED_CHARS = 16_384
_EPS = 1e-6
#: New templates are scored this many at a time (their candidate pairs are tables in memory).
SCORE_BATCH = 5_000


def _partial_bound(phrase: str, template: str) -> float:
    """An upper bound of phrase_score from longest-common-subsequence lengths (a few µs, where
    partial_ratio takes up to a hundred): partial_ratio's best window shares at most LCS(phrase,
    template) characters with the shorter string, and its shorter edge windows at most the LCS
    with the first or last window-length stretch."""
    short, long_ = (phrase, template) if len(phrase) <= len(template) else (template, phrase)
    n = len(short)
    if n == 0:
        return 100.0
    whole = LCSseq.similarity(short, long_)
    edge = max(LCSseq.similarity(short, long_[:n]), LCSseq.similarity(short, long_[-n:]))
    return max(100.0 * whole / n, 200.0 * edge / (n + edge))


def _cut_bound(phrase: str, template: str) -> float:
    """An upper bound of cut_score: each of its comparisons is within the last N characters of the
    template against the first N of the phrase (N the longest one tried), over at least `shortest`."""
    t = template.rstrip("".join(_CUT_MARKS))
    shortest = max(MIN_CUT_CHARS, int(MIN_CUT_SHARE * len(phrase) + 0.999))
    longest = min(len(phrase), len(t))
    if longest < shortest:
        return 0.0
    return min(100.0, 100.0 * LCSseq.similarity(t[-longest:], phrase[:longest]) / shortest)


#: A phrase is scored against a template only when this share of its words (4 letters or more)
#: occur in the template: a template that carries a phrase at a score of 86 or more keeps most of
#: its words whole; anchor words alone (what a hostile line is made of) do not pass.
WORD_SHARE = 0.4
_WORD = re.compile(r"[a-z]{4,}")


def phrase_words(phrase_template: str) -> tuple[tuple[str, ...], int]:
    """The distinct words of a phrase and how many of them a template must hold (0: no test)."""
    words = tuple(sorted(set(_WORD.findall(phrase_template))))
    need = int(WORD_SHARE * len(words) + 0.999) if len(words) >= 3 else 0
    return words, need


def _has_words(words: tuple[str, ...], need: int, template: str) -> bool:
    if need == 0:
        return True
    found = 0
    for w in words:
        if w in template:
            found += 1
            if found >= need:
                return True
    return False


def hit_score(phrase_templates: list[str], template: str, threshold: float,
              words: list[tuple[tuple[str, ...], int]] | None = None) -> float:
    """best_score where it reaches the threshold, else some lower value: the phrases whose bound
    cannot reach the threshold (or, with `words`, that lack most of their words) are not scored,
    which gives the same hits for a fraction of the work (explain keeps best_score, which shows
    scores under the threshold too)."""
    live = [p for k, p in enumerate(phrase_templates) if words is None or _has_words(*words[k], template)]
    best = 0.0
    for p in live:
        if _partial_bound(p, template) >= threshold - _EPS:
            best = max(best, phrase_score(p, template))
    if best >= threshold:
        return best
    for p in live:
        if _cut_bound(p, template) >= threshold - _EPS:
            best = max(best, cut_score(p, template))
    return best
def _any_of(patterns: tuple[str, ...]) -> str | None:
    """One case-insensitive alternation of the decoder's context regexes (None when there are none)."""
    return "(?i)" + "|".join(f"(?:{p})" for p in patterns) if patterns else None


def _contains(expr: pl.Expr, pattern: str | None) -> pl.Expr:
    return expr.str.contains(pattern).fill_null(False) if pattern else pl.lit(False)


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
        masked = iter(templates_of([p for s in self.phrase_sigs for p in s.phrases]))
        self.phrase_templates = {s.id: [next(masked) for _ in s.phrases] for s in self.phrase_sigs}
        self.regex_sigs = [s for s in sigs if s.regexes]
        worded = self.phrase_sigs + [s for s in self.regex_sigs if not s.phrases]
        self.anchors = sorted({a for s in worded for a in s.anchors})
        #: per source family, only the anchors of signatures that apply to it
        self.family_anchors = {
            f: sorted({a for s in worded if s.applies_to(f) for a in s.anchors})
            for f in SOURCE_FAMILIES if f != "any"
        }
        self.success_markers = sorted({m for s in sigs for m in s.resolved_by})
        self._success_regex = literals_regex(self.success_markers)
        self._anchor_regex = {f: literals_regex(a) for f, a in self.family_anchors.items()}
        self._sig_anchor_regex = {s.id: literals_regex(s.anchors) for s in self.regex_sigs}
        self.sig_code = pl.DataFrame(
            [(s.id, s.codes[0] if len(s.codes) == 1 else None, s.generic) for s in sigs],
            schema={"signature_id": pl.String, "sig_code": pl.String, "generic": pl.Boolean}, orient="row",
        )
        self.fallback = next((s.id for s in sigs if s.id == "wu-error"), None)
        self.cache: OrderedDict[str, list[tuple[str, float]]] = OrderedDict()  # LRU, TEMPLATE_CACHE_SIZE
        self.phrase_words = {sid: [phrase_words(p) for p in ps] for sid, ps in self.phrase_templates.items()}
        self.sigs_by_anchor: dict[str, list[int]] = {}
        for k, sig in enumerate(self.phrase_sigs):
            for a in sig.anchors:
                self.sigs_by_anchor.setdefault(a, []).append(k)
        # the same, as tables for _score_batch: anchor -> signature k; (k, phrase p, words needed);
        # (k, p, word) for the phrases that have a word test
        self._anchor_table = pl.DataFrame([(a, k) for a, ks in self.sigs_by_anchor.items() for k in ks],
                                          schema={"a": pl.String, "k": pl.UInt32}, orient="row")
        self._phrase_table = pl.DataFrame(
            [(k, p, w[1]) for k, sig in enumerate(self.phrase_sigs) for p, w in enumerate(self.phrase_words[sig.id])],
            schema={"k": pl.UInt32, "p": pl.UInt32, "need": pl.UInt32}, orient="row")
        self._word_table = pl.DataFrame(
            [(k, p, word) for k, sig in enumerate(self.phrase_sigs) for p, (words, need) in
             enumerate(self.phrase_words[sig.id]) if need for word in words],
            schema={"k": pl.UInt32, "p": pl.UInt32, "w": pl.String}, orient="row")
        self._words = sorted(set(self._word_table["w"].to_list()))
        # the catch-all's three faces: a code of a failed operation, a code mentioned, a trace code
        self.fallback_failure = "wu-failure" if "wu-failure" in self.sigs else self.fallback
        self.fallback_trace = "wu-trace" if "wu-trace" in self.sigs else self.fallback
        self.context = {k: _any_of(catalog.context.get(k, ())) for k in ("failure", "quiet", "benign", "trace")}
        self.muted = catalog.muted

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
    def score_template(self, template: str, anchors: list[str] | None = None) -> list[tuple[str, float]]:
        """Signatures whose phrases this template carries, with scores, sorted by id (cached).

        `anchors`: the anchor words in the template's first MAX_SCORED_CHARS, when the caller
        found them already (vectorised, for a whole batch)."""
        hit = self.cache.get(template)
        if hit is not None:
            self.cache.move_to_end(template)
            return hit
        scored = template[:MAX_SCORED_CHARS]
        if anchors is None:
            anchors = [a for a in self.sigs_by_anchor if a in scored]
        wanted = sorted({k for a in anchors for k in self.sigs_by_anchor.get(a, ())})
        out: list[tuple[str, float]] = []
        for sig in (self.phrase_sigs[k] for k in wanted):
            best = hit_score(self.phrase_templates[sig.id], scored, sig.threshold, self.phrase_words[sig.id])
            if best >= sig.threshold:
                out.append((sig.id, round(best, 1)))
        self._remember(template, out)
        return out

    def _remember(self, template: str, hits: list[tuple[str, float]]) -> None:
        self.cache[template] = hits
        if len(self.cache) > TEMPLATE_CACHE_SIZE:
            self.cache.popitem(last=False)

    def _score_batch(self, templates: list[str]) -> list[list[tuple[str, float]]]:
        """score_template for many templates, the cheap tests vectorised: the anchors and the
        phrase words each template holds are found in one Aho-Corasick pass each, and only the
        (template, phrase) pairs that keep enough words reach Python and the fuzzy scorer."""
        out: list[list[tuple[str, float]]] = [[] for _ in templates]
        if not self.anchors or not templates:
            return out
        t = pl.DataFrame({"t": pl.Series(templates, dtype=pl.String)}).with_row_index("ti").with_columns(
            pl.col("t").str.slice(0, MAX_SCORED_CHARS))
        sigs = t.select("ti", a=pl.col("t").str.extract_many(self.anchors, overlapping=True)).explode("a").join(
            self._anchor_table, on="a").select("ti", "k").unique()
        pairs = sigs.join(self._phrase_table, on="k")
        if self._word_table.height:
            held = t.select("ti", w=pl.col("t").str.extract_many(self._words, overlapping=True)).explode("w").unique()
            counts = held.join(self._word_table, on="w").group_by("ti", "k", "p").len("held")
            pairs = pairs.join(counts, on=["ti", "k", "p"], how="left").filter(
                pl.col("held").fill_null(0) >= pl.col("need"))
        scored = [p[:MAX_SCORED_CHARS] for p in templates]
        todo: dict[tuple[int, int], list[int]] = {}
        for ti, k, p in pairs.sort("ti", "k", "p").select("ti", "k", "p").iter_rows():
            todo.setdefault((ti, k), []).append(p)
        for (ti, k), ps in todo.items():
            sig = self.phrase_sigs[k]
            phrases = self.phrase_templates[sig.id]
            best = hit_score([phrases[p] for p in ps], scored[ti], sig.threshold)
            if best >= sig.threshold:
                out[ti].append((sig.id, round(best, 1)))
        return out

    def _phrase_hits(self, df: pl.DataFrame) -> pl.DataFrame:
        keep = []
        families = df["family"].unique().sort().to_list()
        for family in families:
            anchors = self._anchor_regex.get(family)
            if anchors:
                part = df.filter(pl.col("family") == family) if len(families) > 1 else df
                keep.append(part.filter(holds(anchors)))
        cand = pl.concat(keep) if keep else df.clear()
        single = pl.concat([self._score_rows(cand), self._regex_hits(df)]).sort(["row", "signature_id"])
        pairs = self._wrapped_pairs(df)
        if pairs.height == 0:
            return single
        paired = self._score_rows(pairs)
        # a pair counts only where neither of its lines matched that signature on its own
        alone = single.select("row", "signature_id")
        paired = paired.join(alone, on=["row", "signature_id"], how="anti").join(
            alone.with_columns(pl.col("row") - 1), on=["row", "signature_id"], how="anti")
        return pl.concat([single, paired]).sort(["row", "signature_id"])

    def _regex_hits(self, df: pl.DataFrame) -> pl.DataFrame:
        """(row, signature_id, score) of the few regex signatures, on rows holding one of their anchors."""
        parts = [pl.DataFrame(schema={"row": pl.UInt32, "signature_id": pl.String, "score": pl.Float64})]
        present = set(df["family"].unique().to_list()) if self.regex_sigs else set()
        for sig in self.regex_sigs:
            fams = [f for f in present if sig.applies_to(f)]
            if not fams:  # e.g. a WindowsUpdate.log batch: no regex signature reads that family
                continue
            rows = df.filter(pl.col("family").is_in(fams) & holds(self._sig_anchor_regex[sig.id]))
            rows = rows.filter(pl.col("message").str.contains(_any_of(sig.regexes)))
            parts.append(rows.select("row", signature_id=pl.lit(sig.id), score=pl.lit(100.0)))
        return pl.concat(parts)

    def _wrapped_pairs(self, df: pl.DataFrame) -> pl.DataFrame:
        """Plain text: each line joined with the next, for messages a mail or ticket wrapped in two."""
        text = df.filter(pl.col("family") == "text").sort("row")
        if text.height < 2:
            return text.clear()
        pairs = text.select(
            "row", message=pl.col("message") + " " + pl.col("message").shift(-1),
            same=(pl.col("source") == pl.col("source").shift(-1)) & (pl.col("row") + 1 == pl.col("row").shift(-1)),
        ).filter(pl.col("same").fill_null(False))
        return with_lower(pairs).filter(holds(self._anchor_regex.get("text"))).drop(LOWER)

    def _score_rows(self, cand: pl.DataFrame) -> pl.DataFrame:
        """(row, signature_id, score) for candidate rows, scoring each distinct template once."""
        if cand.height == 0:
            return pl.DataFrame(schema={"row": pl.UInt32, "signature_id": pl.String, "score": pl.Float64})
        # mask each distinct message once (repeated messages are common), then spread back to rows
        msgs = cand.select("message").unique()
        msgs = msgs.with_columns(template=template_expr(pl.col("message")))
        cand = cand.select("row", "message").join(msgs, on="message").select("row", "template")
        templates = cand["template"].unique().sort().to_list()
        fresh = [t for t in templates if t not in self.cache]
        for at in range(0, len(fresh), SCORE_BATCH):  # bounded intermediate tables
            piece = fresh[at : at + SCORE_BATCH]
            for t, got in zip(piece, self._score_batch(piece), strict=True):
                self._remember(t, got)
        rows = [(t, sid, sc) for t in templates for sid, sc in self.score_template(t)]
        if not rows:
            return pl.DataFrame(schema={"row": pl.UInt32, "signature_id": pl.String, "score": pl.Float64})
        table = pl.DataFrame(rows, schema={"template": pl.String, "signature_id": pl.String, "score": pl.Float64},
                             orient="row")
        return cand.join(table, on="template").select("row", "signature_id", "score")

    # -- all -------------------------------------------------------------------------------
    def match(self, df: pl.DataFrame) -> BatchHits:
        """`df` needs columns row (UInt32), family, message, codes (list), level."""
        df = with_lower(df)
        codes = df.select("row", "family", "codes").explode("codes").drop_nulls("codes").rename({"codes": "code"})
        ctx = self._code_context(df, codes)
        # a code on a line whose writer says the failure does not matter is trace, whatever its signature
        by_code = codes.join(self.code_table, on="code").join(ctx.filter(pl.col("benign")), on="row", how="anti")
        by_code = by_code.with_columns(score=pl.lit(100.0))
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
            hits = pl.concat([hits, self._fallback_hits(rest, ctx)])
        hits = hits.select("row", "signature_id", "code", "score").sort(["row", "signature_id", "code"])
        muted_rows = hits.clear().select("row")
        if self.muted:
            gone = pl.col("signature_id").is_in(list(self.muted)) | pl.col("code").is_in(list(self.muted)).fill_null(
                False)
            muted_rows = hits.filter(gone).select("row")
            hits = hits.filter(~gone)
        unmatched = df.filter(pl.col("level").is_in(PROBLEM_LEVELS)).join(hits.select("row"), on="row", how="anti")
        unmatched = unmatched.join(muted_rows, on="row", how="anti")
        unmatched = unmatched.select("row", template=template_expr(pl.col("message")))
        if self._success_regex:
            # the markers as the lower-cased line spells them (incidents compare them lower-cased);
            # one extraction over every row beats a containment test and then an Aho-Corasick pass
            succ = df.select("row", marker=pl.col(LOWER).str.extract_all(self._success_regex))
            succ = succ.explode("marker").drop_nulls("marker")
        else:
            succ = pl.DataFrame(schema={"row": pl.UInt32, "marker": pl.String})
        return BatchHits(hits.cast(HIT_SCHEMA), unmatched, succ)

    def _code_context(self, df: pl.DataFrame, codes: pl.DataFrame) -> pl.DataFrame:
        """(row, failure, benign, trace) for the rows that carry a code (few): what the line says of it."""
        rows = df.filter(pl.col("codes").list.len() > 0).select("row", "family", "message")
        msg = pl.col("message")
        quiet = (pl.col("family") == "cbs") | _contains(msg, self.context["quiet"])
        return rows.select(
            "row",
            failure=(_contains(msg, self.context["failure"]) & ~quiet),
            benign=_contains(msg, self.context["benign"]),
            trace=_contains(msg, self.context["trace"]),
        )

    def _fallback_hits(self, rest: pl.DataFrame, ctx: pl.DataFrame) -> pl.DataFrame:
        """Codes no signature claimed: wu-failure on a failed operation's line, wu-trace for trace codes,
        stack frames and benign lines, wu-error otherwise; codes of another domain (security log,
        licensing) never."""
        klass = {c: (k.name if (k := self.catalog.code_class(c)) else "") for c in rest["code"].unique().to_list()}
        table = pl.DataFrame({"code": list(klass), "klass": list(klass.values())},
                             schema={"code": pl.String, "klass": pl.String})
        rest = rest.join(table, on="code", how="left").join(ctx, on="row", how="left")
        rest = rest.filter(pl.col("klass") != "unrelated")
        trace = (pl.col("klass") == "internal") | pl.col("benign").fill_null(False) | pl.col("trace").fill_null(False)
        sig = (
            pl.when(trace)
            .then(pl.lit(self.fallback_trace))
            .when(pl.col("failure").fill_null(False))
            .then(pl.lit(self.fallback_failure))
            .otherwise(pl.lit(self.fallback))
        )
        return rest.select("row", "family", sig.alias("signature_id"), "code", pl.lit(100.0).alias("score"))

    def signature(self, sig_id: str) -> Signature:
        return self.sigs[sig_id]
