"""How well a message template carries a signature's phrase: the scores and their cheap upper
bounds, one template at a time (`explain` shows these scores, under the threshold too;
phrase_index.py gives the same hits for whole batches of templates)."""

from __future__ import annotations

import re

from rapidfuzz import fuzz
from rapidfuzz.distance import LCSseq

#: A message shorter than this share of a phrase is too short to stand for it (truncation).
MIN_COVERAGE = 0.6
#: A message cut off inside a phrase must keep this much of it (share, and characters).
MIN_CUT_SHARE, MIN_CUT_CHARS = 0.7, 30
_CUT_MARKS = ".… "
_EPS = 1e-6


def phrase_score(phrase_template: str, template: str) -> float:
    """How well a message template carries a phrase: best partial alignment, 0 when too short."""
    if len(template) < MIN_COVERAGE * len(phrase_template):
        return 0.0
    return float(fuzz.partial_ratio(phrase_template, template))


def _shortest_cut(phrase_len: int) -> int:
    return max(MIN_CUT_CHARS, int(MIN_CUT_SHARE * phrase_len + 0.999))


def cut_score(phrase_template: str, template: str) -> float:
    """Score of a message that ends part-way through the phrase (a field limit, a `...` cut).

    partial_ratio aligns the whole phrase, so text before a cut-off phrase drags it down; here the
    message's tail is compared with the phrase's head instead, if enough of the phrase remains.
    """
    t = template.rstrip(_CUT_MARKS)
    best = 0.0
    for n in range(_shortest_cut(len(phrase_template)), min(len(phrase_template), len(t)) + 1):
        best = max(best, fuzz.ratio(t[-n:], phrase_template[:n]))
    return float(best)


def best_score(phrase_templates: list[str], template: str, threshold: float) -> float:
    """A signature's score for a template: whole-phrase alignment, else a cut-off phrase."""
    best = max(phrase_score(p, template) for p in phrase_templates)
    if best < threshold:
        best = max(best, *(cut_score(p, template) for p in phrase_templates))
    return best


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
    t = template.rstrip(_CUT_MARKS)
    shortest = _shortest_cut(len(phrase))
    longest = min(len(phrase), len(t))
    if longest < shortest:
        return 0.0
    return min(100.0, 100.0 * LCSseq.similarity(t[-longest:], phrase[:longest]) / shortest)


#: A phrase is scored against a template only when this share of its words (4 letters or more)
#: occur in the template: a template that carries a phrase at a score of 86 or more keeps most of
#: its words whole; anchor words alone (what a hostile line is made of) do not pass.
WORD_SHARE = 0.4
_WORD = re.compile(r"[a-z]{4,}")


def phrase_words(phrase_template: str) -> tuple[str, ...]:
    """The distinct words of a phrase that the word test counts."""
    return tuple(sorted(set(_WORD.findall(phrase_template))))


def words_needed(n_words: int, phrase_len: int, template_len: int) -> int:
    """How many of a phrase's `n_words` words a template must hold: WORD_SHARE of those it can
    hold whole, in proportion to the part of the phrase its length covers (a message cut short
    holds only the words before the cut); no test for phrases of fewer than three words."""
    if n_words < 3:
        return 0
    whole = int(n_words * min(1.0, template_len / phrase_len))
    return int(WORD_SHARE * whole + 0.999)


def _has_words(words: tuple[str, ...], phrase: str, template: str) -> bool:
    need = words_needed(len(words), len(phrase), len(template))
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
              words: list[tuple[str, ...]]) -> float:
    """best_score where it reaches the threshold, else some lower value: the phrases that lack
    most of their `words` (phrase_words of each), or whose bound cannot reach the threshold, are
    not scored, which gives the same hits for a fraction of the work (explain keeps best_score,
    which shows scores under the threshold too)."""
    live = [p for k, p in enumerate(phrase_templates) if _has_words(words[k], p, template)]
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
