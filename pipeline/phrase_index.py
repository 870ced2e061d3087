"""The catalog's phrases as dense tables, to score thousands of new templates at once.

A flood of distinct templates (hostile input: every line a new one, full of anchor words) costs
per (template, phrase) candidate, so each step is one vectorised pass: the anchors and phrase
words a template holds come from one Aho-Corasick pass over the batch; which signatures a template
may carry and which phrases keep enough of their words are two small matrix products; and each
phrase is compared with all of its candidate templates in one rapidfuzz call (the phrase is
prepared once, the loop runs in C++). The results are those of `fuzzy.hit_score` for every
candidate (tested). It reads its tables only, so the matcher runs shares of a batch on threads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# One BLAS thread (unless the user chose): the matrix products here are small, and OpenBLAS's
# own threads, which spin while they wait, took CPU from polars and 25 MB of buffers (fuzzy-200k:
# 489 -> 465 MB; fuzzy-50k 1.64 -> 1.58 s). Read once, when numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import polars as pl
from rapidfuzz import fuzz, process
from rapidfuzz.distance import LCSseq

from .fuzzy import _CUT_MARKS, _EPS, MIN_COVERAGE, WORD_SHARE, _shortest_cut, phrase_words


@dataclass(frozen=True)
class _Phrase:
    k: int  # its signature's index
    text: str  # the phrase template
    words: int  # how many words the word test counts (fuzzy.words_needed)


class PhraseIndex:
    """Scores batches of templates against the phrases of the signatures in `sigs` (index k)."""

    def __init__(self, sigs: list[tuple[str, float, list[str], list[str]]]):
        """`sigs`: (id, threshold, phrase templates, anchors) for each phrase signature."""
        self.ids = [s[0] for s in sigs]
        self.thr = np.array([s[1] for s in sigs], dtype=np.float64)
        texts = [(k, p) for k, s in enumerate(sigs) for p in s[2]]
        words = [phrase_words(p) for _, p in texts]
        self.phrases = [_Phrase(k, p, len(ws)) for (k, p), ws in zip(texts, words, strict=True)]
        anchors = sorted({a for s in sigs for a in s[3]})
        vocabulary = sorted({w for ws in words for w in ws})
        self.terms = sorted({*anchors, *vocabulary})  # found in one pass, then split in two
        self._anchor_of = np.array([anchors.index(x) if x in anchors else -1 for x in self.terms], dtype=np.intp)
        self._word_of = np.array([vocabulary.index(x) if x in vocabulary else -1 for x in self.terms], dtype=np.intp)
        #: 1 where anchor a belongs to signature k; where word w is one of phrase p's
        self.sig_anchors = np.zeros((len(sigs), len(anchors)), dtype=np.float32)
        for k, s in enumerate(sigs):
            self.sig_anchors[k, [anchors.index(a) for a in s[3]]] = 1
        self.phrase_words = np.zeros((len(self.phrases), len(vocabulary)), dtype=np.float32)
        for p, ws in enumerate(words):
            self.phrase_words[p, [vocabulary.index(w) for w in ws]] = 1
        #: words_needed for each phrase and template length (the lengths past the phrase's ask all)
        longest = max(len(p.text) for p in self.phrases) if self.phrases else 0
        self._need = _words_needed(np.array([p.words for p in self.phrases], dtype=np.float64),
                                   np.array([len(p.text) for p in self.phrases], dtype=np.float64), longest)
        self.sig_of = np.array([p.k for p in self.phrases], dtype=np.intp)
        self._term_ids = pl.Enum(self.terms)  # a term's code is its index

    def score(self, templates: list[str]) -> dict[int, list[tuple[str, float]]]:
        """(signature id, score rounded to 0.1) of the signatures each template carries, by the
        template's position, for the templates that carry any."""
        n = len(templates)
        if n == 0 or not self.phrases:
            return {}
        t = pl.Series(templates, dtype=pl.String)
        length = t.str.len_chars().to_numpy()
        found = pl.DataFrame({"t": t}).with_row_index("ti").select(
            "ti", v=pl.col("t").str.extract_many(self.terms, overlapping=True)).explode("v").drop_nulls()
        ti, v = found["ti"].to_numpy(), found["v"].cast(self._term_ids).to_physical().to_numpy()
        # the anchors and the phrase words each template holds, then per signature and phrase,
        # as phrase x template tables (rows contiguous: each phrase reads its own row)
        may = (self.sig_anchors @ _held(ti, self._anchor_of[v], n, self.sig_anchors.shape[1]).T) > 0
        words = self.phrase_words @ _held(ti, self._word_of[v], n, self.phrase_words.shape[1]).T
        words_ok = words >= np.take(self._need, np.minimum(length, self._need.shape[1] - 1), axis=1) - 0.5
        cand = may[self.sig_of] & words_ok  # (phrase, template) pairs worth scoring
        stripped = t.str.strip_chars_end(_CUT_MARKS)
        b = _Batch(np.array(templates, dtype=object), length,
                   np.array(stripped.to_list(), dtype=object), stripped.str.len_chars().to_numpy(), len(self.ids))
        for p, ph in enumerate(self.phrases):
            _whole_phrase(b, ph, self.thr[ph.k], cand[p])
        b.hit = b.best >= self.thr[:, None]
        for p, ph in enumerate(self.phrases):
            _cut_phrase(b, ph, self.thr[ph.k], cand[p])
        final = np.where(b.hit, b.best, np.where(b.cut >= self.thr[:, None], b.cut, 0.0)).T
        out: dict[int, list[tuple[str, float]]] = {}
        for row, k in zip(*np.nonzero(final >= self.thr), strict=True):
            out.setdefault(int(row), []).append((self.ids[k], round(float(final[row, k]), 1)))
        return out


def _held(rows: np.ndarray, columns: np.ndarray, n: int, width: int) -> np.ndarray:
    """An n x width table of 1 where (row, column) occurs (columns of -1 are left out)."""
    table = np.zeros((n, width), dtype=np.float32)
    keep = columns >= 0
    table[rows[keep], columns[keep]] = 1
    return table


def _words_needed(words: np.ndarray, lengths: np.ndarray, longest: int) -> np.ndarray:
    """fuzzy.words_needed for each phrase (its word count and length) and each template length up
    to `longest`, with the same float arithmetic."""
    cover = np.minimum(1.0, np.arange(longest + 1, dtype=np.float64)[None, :] / lengths[:, None])
    need = np.floor(WORD_SHARE * np.floor(words[:, None] * cover) + 0.999)
    return np.where(words[:, None] < 3, 0.0, need).astype(np.float32)


class _Batch:
    """The templates of one batch and the score tables (signature x template) being filled."""

    def __init__(self, text: np.ndarray, length: np.ndarray, stripped: np.ndarray, stripped_len: np.ndarray,
                 sigs: int):
        self.text, self.length = text, length
        self.stripped, self.stripped_len = stripped, stripped_len  # without the cut marks at the end
        self.best = np.zeros((sigs, len(text)))
        self.cut = np.zeros((sigs, len(text)))
        self.hit = np.zeros((sigs, len(text)), dtype=bool)


def _similarity(query: str, choices: np.ndarray) -> np.ndarray:
    return process.cdist([query], choices, scorer=LCSseq.similarity, dtype=np.int32)[0]


def _whole_phrase(b: _Batch, ph: _Phrase, thr: float, cand: np.ndarray) -> None:
    """fuzzy.phrase_score where its LCS bound (fuzzy._partial_bound) can reach the threshold."""
    plen = len(ph.text)
    tis = np.flatnonzero(cand)
    tis = tis[b.length[tis] >= MIN_COVERAGE * plen]
    if tis.size == 0:
        return
    whole = _similarity(ph.text, b.text[tis])
    n = np.minimum(b.length[tis], plen)
    # both terms of the bound are at most 200*w/(n+w), w the LCS with the whole longer string
    keep = (n == 0) | (200.0 * whole >= (thr - _EPS) * np.maximum(n + whole, 1))
    tis, whole, n = tis[keep], whole[keep], n[keep]
    edge = np.zeros(tis.size)
    # the edges only matter where the whole term alone falls short of the threshold
    longer = (b.length[tis] >= plen) & (100.0 * whole < (thr - _EPS) * n)  # the phrase is the shorter string
    if longer.any():
        texts = b.text[tis[longer]]
        heads = np.array([x[:plen] for x in texts], dtype=object)
        tails = np.array([x[-plen:] for x in texts], dtype=object)
        edge[longer] = np.maximum(_similarity(ph.text, heads), _similarity(ph.text, tails))
    for j in np.flatnonzero(b.length[tis] < plen):  # the template is the shorter string (rare)
        x = b.text[tis[j]]
        edge[j] = max(LCSseq.similarity(x, ph.text[: len(x)]), LCSseq.similarity(x, ph.text[-len(x):]))
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where(n == 0, 100.0, np.maximum(100.0 * whole / n, 200.0 * edge / (n + edge)))
    tis = tis[bound >= thr - _EPS]
    if tis.size == 0:
        return
    scores = process.cdist([ph.text], b.text[tis], scorer=fuzz.partial_ratio, score_cutoff=thr - _EPS,
                           dtype=np.float64)[0]
    b.best[ph.k, tis] = np.maximum(b.best[ph.k, tis], scores)


def _cut_phrase(b: _Batch, ph: _Phrase, thr: float, cand: np.ndarray) -> None:
    """fuzzy.cut_score where its bound (fuzzy._cut_bound) can reach the threshold, for the
    templates whose signature the whole phrases left short of it."""
    plen = len(ph.text)
    shortest = _shortest_cut(plen)
    tis = np.flatnonzero(cand & ~b.hit[ph.k])
    tis = tis[np.minimum(b.stripped_len[tis], plen) >= shortest]
    if tis.size == 0:
        return
    common = np.zeros(tis.size)
    longer = b.stripped_len[tis] >= plen
    if longer.any():
        common[longer] = _similarity(ph.text, np.array([x[-plen:] for x in b.stripped[tis[longer]]], dtype=object))
    for j in np.flatnonzero(~longer):
        x = b.stripped[tis[j]]
        common[j] = LCSseq.similarity(x, ph.text[: len(x)])
    tis = tis[np.minimum(100.0, 100.0 * common / shortest) >= thr - _EPS]
    if tis.size == 0:
        return
    # cut_score for each: its tail against the phrase's head over every length it tries, in one call
    tails, heads, sizes = [], [], []
    for x in b.stripped[tis]:
        lengths = range(shortest, min(plen, len(x)) + 1)
        tails += [x[-n:] for n in lengths]
        heads += [ph.text[:n] for n in lengths]
        sizes.append(len(lengths))
    ratios = process.cpdist(tails, heads, scorer=fuzz.ratio, dtype=np.float64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    b.cut[ph.k, tis] = np.maximum(b.cut[ph.k, tis], np.maximum.reduceat(ratios, starts))
