"""`umtriage explain`: what a code or a log line means, and which signatures it would hit."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from rich.console import Console
from umtriage.patterns.catalog import Catalog, CodeInfo, Signature

from .codes import extract_codes, normalise_code
from .masking import template_of
from .matcher import Matcher, phrase_score
from .process import matcher_for


@dataclass
class Explanation:
    text: str
    template: str
    codes: list[str]
    code_info: dict[str, CodeInfo]
    candidates: list[tuple[Signature, float, bool]] = field(default_factory=list)  # (sig, score, matched)

    @property
    def matched(self) -> list[Signature]:
        return [s for s, _, ok in self.candidates if ok]


def explain_text(text: str, matcher: Matcher) -> Explanation:
    """Codes, template, and every signature scored against the text (best first)."""
    catalog: Catalog = matcher.catalog
    single = normalise_code(text)
    codes = [single] if single else extract_codes(pl.Series([text]))[0].to_list()
    template = template_of(text)
    ex = Explanation(text, template, codes, {c: catalog.codes[c] for c in codes if c in catalog.codes})
    seen: dict[str, tuple[Signature, float, bool]] = {}
    by_code = catalog.by_code()
    for c in codes:
        for sig in by_code.get(c, []):
            seen[sig.id] = (sig, 100.0, True)
    for sig in matcher.phrase_sigs:
        if sig.id in seen:
            continue
        score = max(phrase_score(p, template) for p in matcher.phrase_templates[sig.id])
        if score >= 50:
            seen[sig.id] = (sig, score, score >= sig.threshold)
    specific = [s for s, _, ok in seen.values() if ok and not s.generic]
    if specific:
        seen = {k: v for k, v in seen.items() if not (v[0].generic and v[2])}
    if codes and not any(ok for _, _, ok in seen.values()) and "wu-error" in catalog.signatures:
        seen["wu-error"] = (catalog.signatures["wu-error"], 100.0, True)
    ex.candidates = sorted(seen.values(), key=lambda t: (not t[2], -t[1], t[0].id))
    return ex


def explain(text: str, patterns: list[Path]) -> int:
    """Print the explanation; exit 0 when a signature matched, 1 when none did."""
    matcher = matcher_for(tuple(str(p) for p in patterns))
    ex = explain_text(text, matcher)
    con = Console(highlight=False)
    con.print(f"[bold]input[/]     {text}")
    con.print(f"[bold]template[/]  {ex.template}")
    for c in ex.codes:
        info = ex.code_info.get(c)
        con.print(f"[bold]code[/]      {c}" + (f"  {info.name}: {info.meaning}" if info else "  (not in the decoder)"))
    if not ex.candidates:
        con.print("No signature comes close. Run `umtriage patterns suggest` to draft one.")
        return 1
    con.print("[bold]candidates[/]")
    for sig, score, ok in ex.candidates[:8]:
        mark = "[green]MATCH[/]" if ok else "[dim]below[/]"
        con.print(f"  {mark} {score:5.1f}  {sig.id}  ({sig.scenario}, {sig.severity}, threshold {sig.threshold:g})")
    for sig in ex.matched:
        con.print()
        con.print(f"[bold]{sig.id}[/]: {sig.title}")
        con.print(f"  scenario   {sig.scenario}    severity {sig.severity}")
        con.print(f"  cause      {sig.cause}")
        con.print(f"  fix        {sig.resolution}")
        if sig.evidence:
            con.print(f"  collect    {sig.evidence}")
        if sig.doc_url:
            con.print(f"  docs       {sig.doc_url}")
    return 0 if ex.matched else 1
