"""`umtriage explain`: what a code or a log line means, and which signatures it would hit."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.padding import Padding
from umtriage.patterns.catalog import Catalog, CodeClass, CodeInfo, Signature

from .codes import normalise_code
from .fuzzy import best_score
from .masking import template_of
from .matcher import Matcher
from .process import match_text, matcher_for
from .termsafe import cell


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
    """Codes, template, and the signatures a scan would match (plus near misses, best first)."""
    catalog: Catalog = matcher.catalog
    single = normalise_code(text)
    probe = single or text
    records, hits = match_text(probe, matcher)
    codes = list(dict.fromkeys(c for cs in records["codes"].to_list() for c in cs)) if records.height else []
    message = "\n".join(records["message"].to_list()) if records.height else text
    template = template_of(message)
    ex = Explanation(text, template, codes, {c: catalog.codes[c] for c in codes if c in catalog.codes})
    seen: dict[str, tuple[Signature, float, bool]] = {}
    for row in hits.iter_rows(named=True):
        sig = catalog.signatures[row["signature_id"]]
        prev = seen.get(sig.id)
        if prev is None or prev[1] < row["score"]:
            seen[sig.id] = (sig, row["score"], True)
    for sig in matcher.phrase_sigs:
        if sig.id not in seen:
            score = best_score(matcher.phrase_templates[sig.id], template, sig.threshold)
            if score >= 50:
                seen[sig.id] = (sig, score, False)
    ex.candidates = sorted(seen.values(), key=lambda t: (not t[2], -t[1], t[0].id))
    return ex


_ITEM = re.compile(r"^\s*(?:\d+\.|[-*])\s")


def reflow(text: str) -> list[str]:
    """Paragraphs and list items of a TOML block string, each joined into one line for wrapping."""
    items: list[str] = []
    fresh = True
    for line in text.strip().splitlines():
        if not line.strip():
            fresh = True
            continue
        if fresh or _ITEM.match(line):
            items.append(line.strip())
        else:
            items[-1] += " " + line.strip()
        fresh = False
    return items


def _unsigned_code(text: str) -> str | None:
    """The unsigned decimal form of an HRESULT (2149859372) as 0x8024402C; None for anything else."""
    t = text.strip()
    if t.isdigit() and len(t) <= 10 and (1 << 31) <= int(t) < (1 << 32):
        return f"0x{int(t):08X}"
    return None


_SUCCESS = re.compile(r"(?i)^\s*(?:0x)?0{1,8}\s*$|^\s*s_ok\s*$")


def _explain_direct(text: str, matcher: Matcher, con: Console) -> int | None:
    """A signature id, or the success code 0x00000000: answered without matching (None otherwise)."""
    sig = matcher.catalog.signatures.get(text.strip())
    if sig is not None:
        con.print(cell(f"signature {sig.id}"))
        _print_signature(con, sig)
        return 0
    if _SUCCESS.match(text):
        con.print("code      0x00000000  S_OK: the operation succeeded. This is not an error: Windows Update "
                  "writes it as the exit code of every operation that worked.")
        return 0
    return None


def explain(text: str, patterns: list[Path]) -> int:
    """Print the explanation; exit 0 when a signature matched, 1 when none did."""
    matcher = matcher_for(tuple(str(p) for p in patterns), explain=True)
    con = Console(highlight=False, width=max(100, Console().width))
    direct = _explain_direct(text, matcher, con)
    if direct is not None:
        return direct
    code = _unsigned_code(text)
    shown = f"{text.strip()} = {code}" if code else text
    ex = explain_text(code or text, matcher)
    con.print("[bold]input[/]     ", cell(shown), sep="")
    con.print("[bold]template[/]  ", cell(ex.template), sep="")
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
        klass = matcher.catalog.code_class(ex.codes[0]) if sig.severity_from == "code" and ex.codes else None
        _print_signature(con, sig, klass)
    return 0 if ex.matched else 1


def _print_signature(con: Console, sig: Signature, klass: CodeClass | None = None) -> None:
    """Title, scenario, severity, cause, fix, what to collect and the docs link of one signature; for
    wu-failure (`klass` given) the severity and first fix of the code's class."""
    con.print(f"[bold]{sig.id}[/]: {sig.title}")
    if klass is not None:
        con.print(f"  scenario {sig.scenario}, severity {klass.severity} (code class {klass.name})")
        con.print(f"  [bold]first[/] {klass.fix}")
    else:
        con.print(f"  scenario {sig.scenario}, severity {sig.severity}")
    for label, body in (("cause", sig.cause), ("fix", sig.resolution), ("collect", sig.evidence)):
        if body:
            con.print(f"  [bold]{label}[/]")
            for item in reflow(body):
                con.print(Padding(item, (0, 0, 0, 4)))
    if sig.doc_url:
        con.print(f"  [bold]docs[/] {sig.doc_url}")
