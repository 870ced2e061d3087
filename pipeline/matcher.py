"""Records to signature hits: exact codes by join, phrases by fuzzy score on distinct templates.

Cost model: a multi-pattern prefilter (an alternation of lower-cased literals on the lower-cased
message, see literals.py) keeps only lines holding an anchor word; those are masked into
templates, and rapidfuzz scores each distinct template once per process (cached), never each line.
Codes never go through the fuzzy scorer.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import polars as pl
from umtriage.patterns.catalog import SOURCE_FAMILIES, Catalog, Signature

from .codes import MAY_HOLD_CODE
from .fuzzy import hit_score, phrase_words
from .literals import LOWER, holds, literals_regex, with_lower
from .masking import templates_of, with_templates
from .updates import needles_of_family as update_needles

if TYPE_CHECKING:
    from .phrase_index import PhraseIndex

#: Levels whose unmatched records are kept as unknown errors.
PROBLEM_LEVELS = ("WARNING", "ERROR", "FAILED", "FATAL")

#: Level words the parsers read (an unmatched line at these levels is kept as an unknown problem).
LEVEL_HINTS = ("*failed*", "warning", "fatal", "error", "exception")

#: A plain-text line that opens with a level tag starts a record of its own, so it is never read
#: as the second half of a wrapped message: `WARNING:`, `Error -`, `[error]`, in capitals or title
#: case (a wrapped sentence that goes on with "error: (401)" is lower case).
RECORD_OPENING = (
    r"^\s*(?:\[(?i:fatal|failed|error|exception|warn|warning)\]"
    r"|(?:FATAL|FAILED|ERROR|EXCEPTION|WARN|WARNING|Fatal|Failed|Error|Exception|Warn|Warning)\s*[:|-])"
)

_NO_HITS: list[tuple[str, float]] = []  # shared by every template without a hit; never changed

HIT_SCHEMA = {"row": pl.UInt32, "signature_id": pl.String, "code": pl.String, "score": pl.Float64}


@dataclass
class BatchHits:
    """What one batch of records produced: hits, unknown problem lines, later-success markers."""

    hits: pl.DataFrame  # row, signature_id, code, score
    unmatched: pl.DataFrame  # row, template
    successes: pl.DataFrame  # row, marker (lower-cased)


#: Templates scored and remembered per process (least recently used ones are forgotten first):
#: a fleet's distinct templates number in the thousands; hostile input can make every line one.
TEMPLATE_CACHE_SIZE = 50_000
#: Only this many characters of a template are scored (a megabyte-long line must not cost
#: seconds per signature); log messages carry their phrases well before this.
MAX_SCORED_CHARS = 16_384
#: New templates are scored in shares of at most this many (their candidate pairs are tables in
#: memory, one share per polars thread at a time: 10,000 took fuzzy-200k to 506 MB, 5,000 to 466-488).
SCORE_BATCH = 5_000
#: Fewer new templates than this are scored one by one: real logs' templates cost a few µs each
#: that way (250 of WindowsUpdate.log in 3-4 ms, as in a batch) and the batch scorer's set-up
#: (numpy, 50-80 ms once per process) is not paid; it is for floods of anchor-stuffed templates.
INDEX_MIN_TEMPLATES = 1_000


def _any_of(patterns: tuple[str, ...]) -> str | None:
    """One case-insensitive alternation of the decoder's context regexes (None when there are none)."""
    return "(?i)" + "|".join(f"(?:{p})" for p in patterns) if patterns else None


def _contains(expr: pl.Expr, pattern: str | None) -> pl.Expr:
    return expr.str.contains(pattern).fill_null(False) if pattern else pl.lit(False)


def _masked(rows: pl.DataFrame, known: pl.DataFrame | None = None) -> pl.DataFrame:
    """(message, template) for the distinct messages of `rows`: each masked once (repeated
    messages are common), taken from `known` where it has them."""
    msgs = rows.select("message").unique()
    if known is None:
        return with_templates(msgs)
    new = msgs.join(known, on="message", how="anti")
    return pl.concat([known.join(msgs, on="message", how="semi"),
                      with_templates(new)])


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
    def score_template(self, template: str) -> list[tuple[str, float]]:
        """Signatures whose phrases this template carries, with scores, sorted by id (cached)."""
        hit = self.cache.get(template)
        if hit is not None:
            self.cache.move_to_end(template)
            return hit
        scored = template[:MAX_SCORED_CHARS]
        wanted = sorted({k for a in self.sigs_by_anchor if a in scored for k in self.sigs_by_anchor[a]})
        out: list[tuple[str, float]] = []
        for sig in (self.phrase_sigs[k] for k in wanted):
            best = hit_score(self.phrase_templates[sig.id], scored, sig.threshold, self.phrase_words[sig.id])
            if best >= sig.threshold:
                out.append((sig.id, round(best, 1)))
        self._remember([(template, out)])
        return out

    def _remember(self, scored: list[tuple[str, list[tuple[str, float]]]]) -> None:
        """Put new (template, hits) into the cache, forgetting the least recently used past its size."""
        self.cache.update(scored)
        while len(self.cache) > TEMPLATE_CACHE_SIZE:
            self.cache.popitem(last=False)

    @cached_property
    def _index(self) -> PhraseIndex:
        # imported here: numpy and the index cost 60 ms, which a scan that never meets many new
        # templates at once (most of them) does not pay
        from .phrase_index import PhraseIndex

        return PhraseIndex([(s.id, float(s.threshold), self.phrase_templates[s.id], list(s.anchors))
                            for s in self.phrase_sigs])

    def _score_new(self, templates: list[str]) -> dict[int, list[tuple[str, float]]]:
        """score_template for many new templates at once (phrase_index.py), remembered: the hits
        by position in `templates`, for the templates that have any. The templates are scored in
        shares of at most SCORE_BATCH (bounded tables), on polars' thread count: rapidfuzz,
        numpy and polars let go of the GIL for most of a share's work (fuzzy-50k 0.60 -> 0.43 s)."""
        got: dict[int, list[tuple[str, float]]] = {}
        if self.anchors and templates:
            workers = max(1, pl.thread_pool_size())
            shares = workers * -(-len(templates) // (workers * SCORE_BATCH))
            step = -(-len(templates) // shares)
            starts = range(0, len(templates), step)
            pieces = [[t[:MAX_SCORED_CHARS] for t in templates[at : at + step]] for at in starts]
            if workers > 1 and len(pieces) > 1:
                with ThreadPoolExecutor(workers, thread_name_prefix="umtriage-fuzzy") as pool:
                    results = list(pool.map(self._index.score, pieces))
            else:
                results = [self._index.score(piece) for piece in pieces]
            got = {at + i: hits for at, part in zip(starts, results, strict=True) for i, hits in part.items()}
        self._remember([(t, got.get(i, _NO_HITS)) for i, t in enumerate(templates)])
        return got

    def _phrase_hits(self, df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(row, signature_id, score) of the phrase and regex signatures, and the (message,
        template) table of the lines that were masked for it (the unknown problems reuse it)."""
        keep = []
        families = df["family"].unique().sort().to_list()
        for family in families:
            anchors = self._anchor_regex.get(family)
            if anchors:
                part = df.filter(pl.col("family") == family) if len(families) > 1 else df
                keep.append(part.filter(holds(anchors)))
        cand = pl.concat(keep) if keep else df.clear()
        masked = _masked(cand)
        single = pl.concat([self._score_rows(cand, masked), self._regex_hits(df)]).sort(["row", "signature_id"])
        pairs = self._wrapped_pairs(df)
        if pairs.height == 0:
            return single, masked
        paired = self._score_rows(pairs, _masked(pairs))
        # a pair counts only where neither of its lines matched that signature on its own
        alone = single.select("row", "signature_id")
        paired = paired.join(alone, on=["row", "signature_id"], how="anti").join(
            alone.with_columns(pl.col("row") - 1), on=["row", "signature_id"], how="anti")
        return pl.concat([single, paired]).sort(["row", "signature_id"]), masked

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
        """Plain text: each line joined with the next, for messages a mail or ticket wrapped in two;
        not where the next line opens a record of its own (a timestamp or a level tag)."""
        text = df.filter(pl.col("family") == "text").sort("row")
        if text.height < 2:
            return text.clear()
        opens = pl.col("message").str.contains(RECORD_OPENING)
        if "ts" in text.columns:
            opens = opens | pl.col("ts").is_not_null()
        nxt = pl.col("row").shift(-1)
        pairs = text.select(
            "row", message=pl.col("message") + " " + pl.col("message").shift(-1),
            joins=(pl.col("source") == pl.col("source").shift(-1)) & (pl.col("row") + 1 == nxt) & ~opens.shift(-1),
        ).filter(pl.col("joins").fill_null(False))
        return with_lower(pairs).filter(holds(self._anchor_regex.get("text"))).drop(LOWER)

    def _score_rows(self, cand: pl.DataFrame, masked: pl.DataFrame) -> pl.DataFrame:
        """(row, signature_id, score) for candidate rows, scoring each distinct template once
        (`masked`: their distinct messages with their templates)."""
        if cand.height == 0:
            return pl.DataFrame(schema={"row": pl.UInt32, "signature_id": pl.String, "score": pl.Float64})
        cand = cand.select("row", "message").join(masked, on="message").select("row", "template")
        templates = cand["template"].unique().sort().to_list()
        fresh = [t for t in templates if t not in self.cache]
        rows: list[tuple[str, str, float]] = []
        if len(fresh) >= INDEX_MIN_TEMPLATES:  # else score_template scores them below, one by one
            got = self._score_new(fresh)
            rows += [(fresh[i], sid, sc) for i, hits in sorted(got.items()) for sid, sc in hits]
            scored = set(fresh)
            templates = [t for t in templates if t not in scored]
        rows += [(t, sid, sc) for t in templates for sid, sc in self.score_template(t)]
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
        phrase_hits, masked = self._phrase_hits(df)
        by_phrase = phrase_hits.join(df.select("row", "family", "codes"), on="row").join(
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
        unmatched = unmatched.select("row", "message").join(_masked(unmatched, masked), on="message",
                                                            maintain_order="left").select(
            "row", "template")
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
