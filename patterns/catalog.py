"""Load and validate the signature catalog: one TOML file per signature, typed, with locations.

Every problem is reported as `file:line: message` so a user editing their own signatures
(`--patterns DIR`) can jump straight to it, as pySigma does with SigmaRuleLocation.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

SEVERITIES = ("info", "low", "medium", "high", "critical")
STATUSES = ("experimental", "test", "stable", "deprecated")
#: Families a signature can name in `sources`; "any" means every format. Formats map to them in
#: parsers.FAMILY: ReportingEvents.log and raw WU ETL read as "windowsupdate"; "cbs" is CBS.log and
#: DISM.log; "patchext" the Azure Update Manager patch extensions (Linux core/ext logs and status
#: files, Windows extension logs); "waagent" the Azure Linux guest agent; "arc" the Arc agent logs.
SOURCE_FAMILIES = (
    "windowsupdate", "event4502", "omsupdatemgmt", "workerlog", "text",
    "cbs", "patchext", "waagent", "arc", "any",
)
REQUIRED = (
    "id", "title", "scenario", "severity", "sources", "codes", "phrases", "threshold",
    "cause", "resolution", "references",
)
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_CODE = re.compile(r"^0x[0-9A-F]{8}$")
_STOPWORDS = frozenset(
    """the and for with was were this that from have has not are but you your can could there their which
    while when been into than then they them some such only also error errors failed failure exception""".split()
)
#: Words too common in ordinary update logs to be worth a prefilter hit (measured on the public
#: WindowsUpdate.log corpus: each is in more than 0.1% of lines). Anchors are picked among the rest.
_COMMON_LOG_WORDS = frozenset(
    """access account automatic because changed command configure configured create created current
    download downloading downloaded enable enabled installation install installing installed machine manager
    microsoft policy preference process provider requested request running sandbox state stopped started
    starting window windows update updates service services status server client search found agent handler
    operation network version result complete completed success successfully""".split()
)


class CatalogError(Exception):
    """One or more catalog files are invalid; `problems` holds `file:line: message` strings."""

    def __init__(self, problems: Sequence[str]):
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Example:
    line: str
    expect: str  # "match" | "no_match"
    format: str | None = None


@dataclass(frozen=True)
class Signature:
    """A known failure: how to recognise it (codes, phrases) and what to tell the admin."""

    id: str
    title: str
    scenario: str
    severity: str
    sources: tuple[str, ...]
    codes: tuple[str, ...]
    phrases: tuple[str, ...]
    threshold: float
    cause: str
    resolution: str
    references: tuple[str, ...]
    status: str = "stable"
    anchors: tuple[str, ...] = ()
    explain_only: bool = False
    #: A catch-all (e.g. wu-error): dropped for a record that a specific signature matched.
    generic: bool = False
    resolved_by: tuple[str, ...] = ()
    evidence: str = ""
    examples: tuple[Example, ...] = ()
    path: str = ""

    @property
    def doc_url(self) -> str | None:
        return self.references[0] if self.references else None

    def applies_to(self, family: str) -> bool:
        return "any" in self.sources or family in self.sources


@dataclass(frozen=True)
class CodeInfo:
    code: str
    name: str
    meaning: str


@dataclass
class Catalog:
    """All signatures by id, plus the error-code decoder."""

    signatures: dict[str, Signature]
    codes: dict[str, CodeInfo] = field(default_factory=dict)

    def by_code(self) -> dict[str, list[Signature]]:
        out: dict[str, list[Signature]] = {}
        for sig in self.active():
            for code in sig.codes:
                out.setdefault(code, []).append(sig)
        return out

    def active(self) -> list[Signature]:
        """Signatures used for matching, sorted by id (deterministic order everywhere)."""
        return [s for _, s in sorted(self.signatures.items()) if s.status != "deprecated"]


def _line_of(text: str, key: str, nth: int = 0) -> int:
    """Line number of the `nth` `key = ` assignment in a TOML text (1 if not found)."""
    hits = [m.start() for m in re.finditer(rf"(?m)^\s*{re.escape(key)}\s*=", text)]
    if len(hits) > nth:
        return text.count("\n", 0, hits[nth]) + 1
    return 1


def derive_anchors(phrases: Iterable[str]) -> tuple[str, ...]:
    """Pick up to three long, distinctive words per phrase as prefilter keywords."""
    out: list[str] = []
    for phrase in phrases:
        words = re.findall(r"[A-Za-z][A-Za-z.\-']{4,}", phrase)
        words = [w.lower().strip(".-'") for w in words]
        words = [w for w in words if w not in _STOPWORDS and len(w) >= 5]
        rare = [w for w in words if w not in _COMMON_LOG_WORDS] or words
        for w in sorted(set(rare), key=lambda w: (-len(w), w))[:3]:
            if w not in out:
                out.append(w)
    return tuple(out)


def _check(data: dict, text: str, where: str, stem: str) -> list[str]:
    problems: list[str] = []

    def bad(key: str, msg: str, nth: int = 0) -> None:
        problems.append(f"{where}:{_line_of(text, key, nth)}: {msg}")

    for key in REQUIRED:
        if key not in data:
            problems.append(f"{where}:1: missing required field '{key}'")
    if problems:
        return problems
    if not isinstance(data["id"], str) or not _ID.match(data["id"]):
        bad("id", f"id {data['id']!r} must be lowercase letters, digits and dashes")
    elif data["id"] != stem:
        bad("id", f"id {data['id']!r} must equal the file name {stem!r}")
    if data["severity"] not in SEVERITIES:
        bad("severity", f"severity {data['severity']!r} is not one of {', '.join(SEVERITIES)}")
    if data.get("status", "stable") not in STATUSES:
        bad("status", f"status {data.get('status')!r} is not one of {', '.join(STATUSES)}")
    for src in data["sources"] if isinstance(data["sources"], list) else [data["sources"]]:
        if src not in SOURCE_FAMILIES:
            bad("sources", f"unknown source {src!r}; known: {', '.join(SOURCE_FAMILIES)}")
    for code in data["codes"]:
        if not isinstance(code, str) or not _CODE.match(code):
            bad("codes", f"code {code!r} must be 0x followed by 8 upper-case hex digits")
    thr = data["threshold"]
    if not isinstance(thr, int | float) or isinstance(thr, bool) or not 50 <= thr <= 100:
        bad("threshold", f"threshold {thr!r} must be a number from 50 to 100")
    if not data["codes"] and not data["phrases"] and not data.get("explain_only", False) and data["id"] != "wu-error":
        bad("phrases", "a signature needs codes or phrases (or explain_only = true)")
    if not isinstance(data["references"], list) or not all(isinstance(r, str) for r in data["references"]):
        bad("references", "references must be a list of URLs")
    examples = data.get("examples", [])
    kinds = set()
    for i, ex in enumerate(examples):
        if not isinstance(ex, dict) or "line" not in ex or ex.get("expect") not in ("match", "no_match"):
            problems.append(f"{where}:{_line_of(text, 'line', i)}: example {i + 1} needs `line` and expect = "
                            f"\"match\" or \"no_match\"")
        else:
            kinds.add(ex["expect"])
    if kinds != {"match", "no_match"}:
        problems.append(f"{where}:1: needs at least one `match` and one `no_match` example")
    return problems


def _build(data: dict, where: str) -> Signature:
    phrases = tuple(data["phrases"])
    anchors = tuple(a.lower() for a in data.get("anchors", ())) or derive_anchors(phrases)
    return Signature(
        id=data["id"], title=data["title"].strip(), scenario=data["scenario"], severity=data["severity"],
        sources=tuple(data["sources"]), codes=tuple(data["codes"]), phrases=phrases,
        threshold=float(data["threshold"]), cause=data["cause"].strip(), resolution=data["resolution"].strip(),
        references=tuple(data["references"]), status=data.get("status", "stable"), anchors=anchors,
        explain_only=bool(data.get("explain_only", False)), generic=bool(data.get("generic", False)),
        resolved_by=tuple(data.get("resolved_by", ())),
        evidence=data.get("evidence", "").strip(),
        examples=tuple(Example(e["line"], e["expect"], e.get("format")) for e in data.get("examples", ())),
        path=where,
    )


def load_signature_file(path: Path, label: str | None = None) -> tuple[Signature | None, list[str]]:
    """Parse and validate one signature file; returns (signature or None, problems)."""
    where = label or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{where}:1: cannot read: {exc}"]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        return None, [f"{where}:{m.group(1) if m else 1}: invalid TOML: {exc}"]
    problems = _check(data, text, where, path.stem)
    if problems:
        return None, problems
    return _build(data, where), []


def _signature_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.toml") if p.is_file())


def builtin_dir() -> Path:
    """Folder of the shipped signatures (package data of umtriage.patterns)."""
    return Path(str(resources.files("umtriage.patterns") / "signatures"))


def load_dir(root: Path) -> tuple[dict[str, Signature], list[str]]:
    """Load every signature under `root`; duplicate ids inside one folder are problems."""
    sigs: dict[str, Signature] = {}
    problems: list[str] = []
    for path in _signature_files(root):
        sig, errs = load_signature_file(path)
        problems.extend(errs)
        if sig is None:
            continue
        if sig.id in sigs:
            problems.append(f"{path}:{_line_of(path.read_text(encoding='utf-8'), 'id')}: duplicate id "
                            f"{sig.id!r} (also in {sigs[sig.id].path})")
            continue
        sigs[sig.id] = sig
    return sigs, problems


def load_codes(path: Path | None = None) -> dict[str, CodeInfo]:
    """The error-code decoder (symbolic names and meanings): every *.toml in patterns/codes, or
    the one file or folder `path` names. wu_errors.toml is read first, then the other files in
    name order (servicing.toml, ...); a code keeps the first definition found."""
    folder = Path(str(resources.files("umtriage.patterns") / "codes"))
    path = path or folder
    if not path.exists():
        return {}
    files = sorted(path.glob("*.toml"), key=lambda f: (f.name != "wu_errors.toml", f.name)) if path.is_dir() else [path]
    out: dict[str, CodeInfo] = {}
    for file in files:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
        for row in data.get("code", []):
            code = row["code"].upper().replace("0X", "0x")
            out.setdefault(code, CodeInfo(code, row.get("name", ""), row.get("meaning", "")))
    return out


def load_catalog(extra_dirs: Sequence[Path] = ()) -> Catalog:
    """Built-in signatures, then each user folder in order; a user signature replaces a built-in one by id.

    Raises CatalogError listing every problem found, so nothing runs on a half-valid catalog.
    """
    sigs, problems = load_dir(builtin_dir())
    for d in extra_dirs:
        user, errs = load_dir(Path(d))
        problems.extend(errs)
        sigs.update(user)
    if problems:
        raise CatalogError(problems)
    return Catalog(sigs, load_codes())
