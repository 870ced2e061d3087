"""`umtriage patterns list|check|suggest`: keep the signature catalog honest and easy to extend."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rich.console import Console
from rich.table import Table
from umtriage.patterns.catalog import (
    MUTE_FILE,
    Catalog,
    Signature,
    builtin_dir,
    load_catalog,
    load_decoder,
    load_dir,
    load_mute_file,
)

from .masking import template_of
from .matcher import Matcher


def example_failures(catalog: Catalog) -> list[str]:
    """Run every `[[examples]]` line of every signature; return one message per wrong outcome."""
    from .explain import explain_text

    matcher = Matcher(catalog, include_explain_only=True)
    out = []
    for sig in catalog.active():
        for ex in sig.examples:
            hit = sig.id in {s.id for s in explain_text(ex.line, matcher).matched}
            if hit != (ex.expect == "match"):
                out.append(f"{sig.path}: example expected {ex.expect} but {'matched' if hit else 'did not match'}: "
                           f"{ex.line[:120]}")
    return out


def list_signatures(patterns: list[Path]) -> int:
    cat = load_catalog(patterns)
    table = Table(title=f"{len(cat.signatures)} signatures")
    for c in ("id", "scenario", "severity", "codes", "sources", "title"):
        table.add_column(c, overflow="fold")
    for sig in sorted(cat.signatures.values(), key=lambda s: (s.scenario, s.id)):
        table.add_row(sig.id, sig.scenario, sig.severity, " ".join(sig.codes) or "-", " ".join(sig.sources), sig.title)
    Console().print(table)
    return 0


def check(folder: Path | None) -> int:
    """Validate a folder (default: the built-ins) and run its examples; exit 1 on any problem."""
    con = Console(highlight=False)
    root = folder or builtin_dir()
    if not root.is_dir():
        con.print(f"umtriage: {root}: not a folder")
        return 2
    sigs, problems = load_dir(root)
    if (root / MUTE_FILE).is_file():
        known = {*load_dir(builtin_dir())[0], *sigs}
        problems.extend(load_mute_file(root / MUTE_FILE, known)[1])
    if not problems:
        dec = load_decoder()
        problems = example_failures(Catalog(sigs, dec.codes, dec.classes, dec.ranges, dec.context))
    for p in problems:
        con.print(p)
    examples = sum(len(s.examples) for s in sigs.values())
    con.print(f"{len(sigs)} signatures, {examples} examples, {len(problems)} problems in {root}")
    return 1 if problems else 0


def _skeleton_id(text: str) -> str:
    words = re.findall(r"[a-z]{3,}", text.lower())
    words = [w for w in words if w not in {"num", "hex", "guid", "path", "url", "the", "and", "for", "with"}]
    return "-".join(words[:5]) or "new-signature"


def _toml_str(text: str) -> str:
    """A TOML basic string (JSON's escapes are valid TOML escapes)."""
    return json.dumps(text, ensure_ascii=False)


#: Stand-ins that turn a masked template back into a plausible line for the skeleton's example.
_UNMASK = {
    "<path>": r"C:\Windows\Temp\example", "<num>": "42", "<hex>": "0x80070005",
    "<guid>": "{0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0}", "<url>": "https://example.invalid/path",
    "<ip>": "192.0.2.10", "<host>": "server.contoso.local", "<id>": "1a2b3c4d", "<kb>": "KB5000001",
}


def _is_template(text: str) -> bool:
    return any(tok in text for tok in _UNMASK) and text == text.lower()


def _message_of(line: str) -> str:
    """A whole log line's message, without its timestamp, process and thread ids or component:
    the part a signature's phrase is scored against (the line as it stands when no parser knows it)."""
    from .process import parse_text

    records = parse_text(line)
    if records.height == 1 and records["message"][0]:
        return records["message"][0]
    return line


def suggest(text: str, sig_id: str | None, out: Path | None) -> int:
    """Print (or write) a signature skeleton for a template (from unmatched.parquet) or a raw line."""
    template = text if _is_template(text) else template_of(_message_of(text))
    example = text
    if _is_template(text):
        for tok, value in _UNMASK.items():
            example = example.replace(tok, value)
    phrase = template  # placeholders stay: phrases are masked the same way before scoring
    sid = sig_id or _skeleton_id(template)
    body = "\n".join([
        f"id = {_toml_str(sid)}",
        'title = "TODO: one line saying what failed"',
        'status = "experimental"',
        'scenario = "TODO"',
        'severity = "medium"',
        'sources = ["any"]',
        "codes = []",
        f"phrases = [{_toml_str(phrase)}]",
        "anchors = []",
        "threshold = 90",
        "explain_only = false",
        "resolved_by = []",
        'cause = "TODO: why this happens."',
        'resolution = "TODO: what to do about it."',
        'evidence = ""',
        "references = []",
        "",
        "[[examples]]",
        f"line = {_toml_str(example)}",
        'expect = "match"',
        "",
        "[[examples]]",
        'line = "TODO: a near miss that must not match"',
        'expect = "no_match"',
        "",
    ])
    if out:
        path = out / f"{sid}.toml" if out.is_dir() else out
        path.write_text(body, encoding="utf-8")
        print(f"wrote {path}")
    else:
        print(body, end="")
    return 0


__all__ = ["Signature", "check", "example_failures", "list_signatures", "suggest"]
