"""Load and validate the signature catalog: one TOML file per signature, typed, with locations.

Every problem is reported as `file:line: message` so a user editing their own signatures
(`--patterns DIR`) can jump straight to it, as pySigma does with SigmaRuleLocation.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .toml_cache import toml_cache

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
#: A file of a --patterns folder listing codes and signature ids never to report (one a line).
MUTE_FILE = "mute.txt"
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
    #: exact patterns (Rust regex, case-insensitive) for what fuzzy phrases cannot say, such as a count
    #: that must not be zero (`failed = 1`); run only on lines holding one of `anchors`
    regexes: tuple[str, ...] = ()
    explain_only: bool = False
    #: A catch-all (e.g. wu-error): dropped for a record that a specific signature matched.
    generic: bool = False
    resolved_by: tuple[str, ...] = ()
    #: "code": the incident's severity and first fix steps come from its code's class (wu-failure)
    severity_from: str = "signature"
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
    klass: str = ""


@dataclass(frozen=True)
class CodeClass:
    """What kind of failure a code is (patterns/codes/classes.toml): severity and first fix steps."""

    name: str
    severity: str
    fix: str


@dataclass(frozen=True)
class Decoder:
    """Every file of patterns/codes/ merged: names and meanings, classes, and line contexts."""

    codes: dict[str, CodeInfo]
    classes: dict[str, CodeClass]
    ranges: dict[str, str]  # code prefix -> class name
    context: dict[str, tuple[str, ...]]  # failure / quiet / benign -> regexes


@dataclass
class Catalog:
    """All signatures by id, plus the error-code decoder."""

    signatures: dict[str, Signature]
    codes: dict[str, CodeInfo] = field(default_factory=dict)
    classes: dict[str, CodeClass] = field(default_factory=dict)
    ranges: dict[str, str] = field(default_factory=dict)
    context: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: codes and signature ids that are never reported (`--mute`, a `mute.txt` in a --patterns folder)
    muted: frozenset[str] = frozenset()

    def code_class(self, code: str | None) -> CodeClass | None:
        """The class of a code: its decoder row's `class`, else the longest matching range prefix."""
        if not code:
            return None
        info = self.codes.get(code)
        name = info.klass if info and info.klass else ""
        if not name:
            for n in range(len(code), 2, -1):
                name = self.ranges.get(code[:n], "")
                if name:
                    break
        return self.classes.get(name)

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
    if data.get("severity_from", "signature") not in ("signature", "code"):
        bad("severity_from", f"severity_from {data.get('severity_from')!r} must be \"signature\" or \"code\"")
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
    if not (data["codes"] or data["phrases"] or data.get("regexes") or data.get("explain_only", False)
            or data.get("generic", False)):
        bad("phrases", "a signature needs codes, phrases or regexes (or explain_only = true)")
    for rx in data.get("regexes", []):
        try:
            re.compile(rx)
        except (re.error, TypeError) as exc:
            bad("regexes", f"regex {rx!r} does not compile: {exc}")
    if data.get("regexes") and not data.get("anchors"):
        bad("regexes", "a signature with regexes needs anchors (the words its lines always hold)")
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
        regexes=tuple(data.get("regexes", ())),
        explain_only=bool(data.get("explain_only", False)), generic=bool(data.get("generic", False)),
        resolved_by=tuple(data.get("resolved_by", ())), severity_from=data.get("severity_from", "signature"),
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
        data = toml_cache().loads(text)
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


def codes_dir() -> Path:
    """Folder of the shipped decoder files (every *.toml in it is read, in name order)."""
    return Path(str(resources.files("umtriage.patterns") / "codes"))


@lru_cache(maxsize=4)
def load_decoder(root: Path | None = None) -> Decoder:
    """Merge every decoder file: wu_errors.toml first, then the others in name order (servicing.toml,
    ...); a code keeps its first definition; [[class]], [[range]] and [context] are merged.
    Cached: the catalog and the code extractor both read it; callers must not change what it returns."""
    root = root or codes_dir()
    codes: dict[str, CodeInfo] = {}
    classes: dict[str, CodeClass] = {}
    ranges: dict[str, str] = {}
    context: dict[str, tuple[str, ...]] = {}
    files = sorted(root.glob("*.toml"), key=lambda f: (f.name != "wu_errors.toml", f.name)) if root.is_dir() else []
    for path in files:
        data = toml_cache().loads(path.read_text(encoding="utf-8"))
        for row in data.get("code", []):
            code = row["code"].upper().replace("0X", "0x")
            codes.setdefault(code, CodeInfo(code, row.get("name", ""), row.get("meaning", ""), row.get("class", "")))
        for row in data.get("class", []):
            classes[row["name"]] = CodeClass(row["name"], row["severity"], row.get("fix", "").strip())
        for row in data.get("range", []):
            ranges[row["prefix"].upper().replace("0X", "0x")] = row["class"]
        for key, patterns in data.get("context", {}).items():
            context[key] = (*context.get(key, ()), *patterns)
    return Decoder(codes, classes, ranges, context)


def load_codes(path: Path | None = None) -> dict[str, CodeInfo]:
    """The error-code decoder (symbolic names and meanings): every *.toml in patterns/codes (see
    load_decoder), or the one file or folder `path` names."""
    if path is not None and path.is_file():
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        out: dict[str, CodeInfo] = {}
        for r in data.get("code", []):
            code = r["code"].upper().replace("0X", "0x")
            out.setdefault(code, CodeInfo(code, r.get("name", ""), r.get("meaning", ""), r.get("class", "")))
        return out
    if path is not None and not path.exists():
        return {}
    return load_decoder(path).codes


def mute_key(item: str, signature_ids: Iterable[str]) -> str | None:
    """A mute item as matching compares it: a code normalised (`8024000c` -> `0x8024000C`, decimal
    spellings too), or a known signature id; None when it is neither."""
    text = item.strip()
    if text in set(signature_ids):
        return text
    t = text.strip("[]")
    if re.fullmatch(r"-\d{1,10}", t) and -(1 << 31) <= int(t) < 0:
        return f"0x{int(t) + (1 << 32):08X}"
    if re.fullmatch(r"\d{10}", t) and (1 << 31) <= int(t) < (1 << 32):
        return f"0x{int(t):08X}"
    m = re.fullmatch(r"(?i)(?:0x)?([0-9a-f]{8})", t)
    return "0x" + m.group(1).upper() if m else None


def load_mute_file(path: Path, signature_ids: Iterable[str]) -> tuple[set[str], list[str]]:
    """A mute file: one code or signature id a line, `#` starts a comment; (keys, problems)."""
    out: set[str] = set()
    problems: list[str] = []
    ids = set(signature_ids)
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        key = mute_key(item, ids)
        if key is None:
            problems.append(f"{path}:{n}: {item!r} is neither an error code nor a signature id")
        else:
            out.add(key)
    return out, problems


def load_catalog(extra_dirs: Sequence[Path] = (), mute: Sequence[str] = ()) -> Catalog:
    """Built-in signatures, then each user folder in order; a user signature replaces a built-in one by id.
    `mute` (codes or signature ids, like the lines of a folder's mute.txt) are never reported.

    Raises CatalogError listing every problem found, so nothing runs on a half-valid catalog.
    """
    sigs, problems = load_dir(builtin_dir())
    for d in extra_dirs:
        user, errs = load_dir(Path(d))
        problems.extend(errs)
        sigs.update(user)
    muted: set[str] = set()
    for d in extra_dirs:
        if (Path(d) / MUTE_FILE).is_file():
            keys, errs = load_mute_file(Path(d) / MUTE_FILE, sigs)
            muted |= keys
            problems.extend(errs)
    for item in mute:
        key = mute_key(item, sigs)
        if key is None:
            problems.append(f"--mute {item!r}: neither an error code nor a signature id")
        else:
            muted.add(key)
    if problems:
        raise CatalogError(problems)
    dec = load_decoder()
    toml_cache().save()
    return Catalog(sigs, dec.codes, dec.classes, dec.ranges, dec.context, frozenset(muted))
