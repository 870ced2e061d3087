"""Property tests (hypothesis) over every parser and the archive layer (issue #15, acceptance).

Inputs are real export forms and log lines (event_fixtures, the watch tests' line writers, EVTX
files of the shared corpus), mutated by hypothesis: bytes replaced, inserted, cut; NULs,
UTF-16 parts, CRs; whole values made hostile (deep nesting, endless digits, far dates). Each is
read the way a scan reads it: detection then parsing, and also with every parser forced on it,
through `SourceScanner.scan_stream` (the code `umtriage scan` runs per file), whole archives
through `scan_units`, and a few fuzzed bundles through the real CLI. The properties: no
exception escapes and no parser fails (a failure is caught and written to the file's errors,
which would hide it), and every line is a record, a folded line or a counted reject, the
rejects written being exactly the rejects counted.

Seeds are fixed (`derandomize=True`), example counts bounded, and no example database is kept.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import tempfile
import warnings
import zipfile
from pathlib import Path

import polars as pl
import pytest
from conftest import SHARED_CORPUS, run_cli
from event_fixtures import FORMS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_watch import classic_lines, encode, etw_lines, oms_lines, text_lines, worker_lines
from umtriage.parsers import PARSERS
from umtriage.parsers.textio import MAX_LINE_BYTES, _frame_few, _frame_many, sniff_encoding
from umtriage.pipeline.process import FileStat, ScanOptions, SourceScanner
from umtriage.pipeline.scan import scan_units
from umtriage.pipeline.sources import Limits, list_units


def fuzz(max_examples: int):
    """Fixed seed, bounded examples, no database, no deadline (the machine is shared and slow)."""
    return settings(max_examples=max_examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --- seeds: real forms, written once ------------------------------------------------------------------


def _event_forms() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as d:
        return {name: writer(Path(d) / name, "SRV01").read_bytes() for name, (writer, _) in FORMS.items()}


EVENT_FORMS = _event_forms()
LINE_FORMS = {
    "WindowsUpdate.log": encode(etw_lines(40, 1), newline="\r\n"),
    "WindowsUpdate-classic.log": encode(classic_lines(60, 2), newline="\r\n"),
    "WindowsUpdate-utf16.log": encode(etw_lines(20, 3), "utf-16-le", "\r\n", bom=True),
    "worker.log": encode(worker_lines(30, 4)),
    "omsupdatemgmt.log": encode(oms_lines(20, 5)),
    "job-output.txt": encode(text_lines(30, 6)),
}
EVTX_DIR = SHARED_CORPUS / "evtx"
EVTX_SEEDS = sorted(p for p in EVTX_DIR.glob("*.evtx") if p.stat().st_size <= 128 * 1024) if EVTX_DIR.is_dir() else []


# --- mutations ----------------------------------------------------------------------------------------

_HOSTILE_BYTES = st.sampled_from([
    b"\x00", b"\x00" * 300, b"\r", b"\n", b"\r\n", b"\xff\xfe", b"\xef\xbb\xbf", b"\x80\x81\xfe",
    "é€𝄞".encode(), "line in UTF-16\r\n".encode("utf-16-le"), b"[" * 3000, b"{" * 50, b"<Event>" * 3,
    b"9" * 5000, b"/Date(99999999999999999999)/", b'"', b",", b";", b"\t", b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
    b"Log Name: x\n", b"Event ID: " + b"7" * 5000 + b"\n", b"\x1b]0;x\x07",
])
_CHUNK = st.one_of(_HOSTILE_BYTES, st.binary(min_size=1, max_size=64))


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """One seed with a few edits: bytes replaced, inserted or removed, or the end cut off."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        op = draw(st.sampled_from(["insert", "replace", "delete", "cut", "flip"]))
        at = draw(st.integers(0, len(data) - 1))
        if op == "insert":
            data[at:at] = draw(_CHUNK)
        elif op == "replace":
            piece = draw(_CHUNK)
            data[at : at + len(piece)] = piece
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 200))]
        elif op == "cut":
            del data[at:]
        else:
            data[at] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


# --- the properties -----------------------------------------------------------------------------------


def check_stats(stats: list[FileStat], parts: dict[str, list[str]]) -> None:
    """No parser failed, every line is accounted for, the rejects written are the rejects counted."""
    for s in stats:
        assert not [e for e in s.errors if e.startswith("parser ")], (s.source, s.errors)
        assert s.folded_lines >= 0 and s.records >= 0 and s.rejects >= 0, s
        assert s.lines == s.records + s.folded_lines + s.rejects, s
    written = sum(pl.read_parquet(p).height for p in parts["rejects"])
    assert written == sum(s.rejects for s in stats)


def scan_bytes(name: str, data: bytes, forced: str | None = None) -> FileStat:
    """One file's bytes through detection (or a forced parser), parsing and matching."""
    with tempfile.TemporaryDirectory() as d:
        scanner = SourceScanner(Path(d), "fuzz", ScanOptions(forced_format=forced))
        stat = scanner.scan_stream(name, io.BytesIO(data), "fuzzhost", size_hint=len(data))
        parts = scanner.close()
        check_stats([stat], parts)
    return stat


PARSER_NAMES = sorted(PARSERS)
LINE_PARSERS = {"windowsupdate", "omsupdatemgmt", "workerlog", "text"}


@fuzz(150)
@given(data=mutated(list(EVENT_FORMS.values())), forced=st.sampled_from([None, *PARSER_NAMES]))
def test_event_exports_mutated(data: bytes, forced: str | None) -> None:
    scan_bytes("SRV01-OperationsManager-export", data, forced)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_JSON_KEYS = st.sampled_from(["Message", "Id", "ProviderName", "TimeCreated", "MachineName", "RecordId", "Level",
                              "LevelDisplayName", "Properties", "LogName", "EntryType", "Index"])


@fuzz(50)
@given(events=st.lists(st.dictionaries(_JSON_KEYS, _JSON_VALUES, max_size=8), min_size=1, max_size=6),
       deep=st.integers(0, 3), compact=st.booleans())
def test_event_json_with_arbitrary_values(events: list[dict], deep: int, compact: bool) -> None:
    for e in events:  # a shape detection accepts, with arbitrary values inside
        e.setdefault("Message", "x")
        e.setdefault("Id", 4502)
        e.setdefault("ProviderName", "HealthService")
    text = json.dumps(events, separators=(",", ":") if compact else None, indent=None if compact else 1)
    if deep:  # one event nested past the interpreter's stack
        text = text[:-1] + ',{"Message":"m","Id":1,"ProviderName":"p","X":' + "[" * (20_000 * deep) + \
            "]" * (20_000 * deep) + "}]"
    stat = scan_bytes("events.json", text.encode())
    assert stat.format == "event-json"
    assert stat.records + stat.rejects >= 1


@fuzz(200)
@given(data=mutated(list(LINE_FORMS.values())), forced=st.sampled_from([None, *PARSER_NAMES]))
def test_line_formats_mutated(data: bytes, forced: str | None) -> None:
    stat = scan_bytes("SRV01/WindowsUpdate.log", data, forced)
    if stat.format in LINE_PARSERS and sniff_encoding(data)[0] in ("auto", "utf-8-sig") and b"\n" in data:
        # the lines counted are the file's physical lines, whatever NULs or UTF-16 parts it holds
        assert stat.lines == data.count(b"\n") + (not data.endswith(b"\n")), stat


@fuzz(60)
@given(lines=st.lists(st.sampled_from(etw_lines(30, 9)), min_size=1, max_size=30),
       newline=st.sampled_from(["\n", "\r\n", "\r"]), encoding=st.sampled_from(["utf-8", "utf-16-le", "cp1252"]),
       nul_at=st.none() | st.floats(0, 1), nul_len=st.integers(1, 5000))
def test_windowsupdate_lines_in_every_encoding_and_line_end_keep_their_lines(lines, newline, encoding, nul_at,
                                                                             nul_len) -> None:
    data = (newline.join(lines) + newline).encode(encoding)
    if encoding == "utf-16-le":
        data = b"\xff\xfe" + data
    clean = scan_bytes("SRV01/WindowsUpdate.log", data)
    assert clean.format == "windowsupdate" and clean.records == len(lines) and clean.rejects == 0
    if nul_at is not None and encoding != "utf-16-le":  # a NUL run costs at most the line it lands in
        at = int(nul_at * len(data))
        damaged = scan_bytes("SRV01/WindowsUpdate.log", data[:at] + b"\x00" * nul_len + data[at:])
        assert damaged.skipped is None
        assert damaged.records >= len(lines) - 1


@pytest.mark.skipif(not EVTX_SEEDS, reason="shared EVTX corpus absent")
@fuzz(100)
@given(data=st.data())
def test_evtx_mutated(data) -> None:
    seeds = [p.read_bytes() for p in EVTX_SEEDS]
    blob = data.draw(mutated(seeds))
    if data.draw(st.booleans()):  # keep the signature so the EVTX parser is the one that reads it
        blob = b"ElfFile\x00" + blob[8:]
    stat = scan_bytes("SRV01/System.evtx", blob)
    assert stat.format in (None, "evtx", *PARSERS)


# --- archives ------------------------------------------------------------------------------------------

_MEMBERS = st.lists(
    st.tuples(st.sampled_from(["SRV01/WindowsUpdate.log", "SRV02/worker.log", "SRV01/WindowsUpdate.log",
                               "x.json", "../up.log", "SRV03/a/b.txt", "SRV04/System.evtx"]),
              mutated([*LINE_FORMS.values(), *EVENT_FORMS.values(), *(p.read_bytes() for p in EVTX_SEEDS[:1])])),
    min_size=1, max_size=4,
)


def _archive(kind: str, members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    if kind.startswith("zip"):
        method = zipfile.ZIP_DEFLATED if kind == "zip" else zipfile.ZIP_STORED
        with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", method) as z:
            warnings.simplefilter("ignore", UserWarning)  # a duplicate name, on purpose
            for k, (name, data) in enumerate(members):
                z.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, k % 60)), data)
        return buf.getvalue()
    if kind == "gz":
        return gzip.compress(members[0][1], mtime=0)
    with tarfile.open(fileobj=buf, mode="w:gz" if kind == "tar.gz" else "w") as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


_ARCHIVE_KINDS = st.sampled_from(["zip", "zip-stored", "tar", "tar.gz", "gz"])
_SUFFIX = {"zip": "zip", "zip-stored": "zip", "tar": "tar", "tar.gz": "tar.gz", "gz": "log.gz"}


@fuzz(100)
@given(kind=_ARCHIVE_KINDS, members=_MEMBERS, damage=st.lists(st.tuples(st.floats(0, 1), _CHUNK), max_size=3),
       cut=st.none() | st.floats(0.2, 1))
def test_archives_built_then_damaged(kind: str, members, damage, cut) -> None:
    blob = bytearray(_archive(kind, members))
    for where, piece in damage:
        at = int(where * (len(blob) - 1))
        blob[at : at + len(piece)] = piece
    if cut is not None:
        del blob[int(cut * len(blob)):]
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "in"
        root.mkdir()
        (root / f"bundle.{_SUFFIX[kind]}").write_bytes(bytes(blob))
        parts = Path(d) / "parts"
        parts.mkdir()
        units, _ = list_units([root])
        result = scan_units(0, tuple(units), ScanOptions(), parts, Limits())
        check_stats(result.files, result.parts)
        names = [f.source for f in result.files]
        assert len(names) == len(set(names))  # duplicate member names are told apart
        assert all(".." not in n.split("!")[-1].split("/") for n in names)


@fuzz(4)
@given(kind=_ARCHIVE_KINDS, members=_MEMBERS, cut=st.none() | st.floats(0.3, 1))
def test_cli_scans_fuzzed_bundles(kind: str, members, cut) -> None:
    blob = _archive(kind, members)
    if cut is not None:
        blob = blob[: int(cut * len(blob))]
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "in"
        (root / "SRV09").mkdir(parents=True)
        (root / f"bundle.{_SUFFIX[kind]}").write_bytes(blob)
        (root / "SRV09" / "WindowsUpdate.log").write_bytes(members[0][1])
        out = Path(d) / "out"
        r = run_cli("scan", str(root), "-o", str(out), "-q", "--jobs", "1", timeout=120)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
        s = json.loads((out / "summary.json").read_text())
        assert s["accounted"] is True
        assert not [e for e in s["errors"] if e["error"].startswith("parser ")]
        assert pl.read_parquet(out / "rejects.parquet").height == s["rejects"]


@fuzz(200)
@given(parts=st.lists(st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\n"), max_size=40)
                      | st.sampled_from(["", "\r", "x" * (MAX_LINE_BYTES + 1), "é\r", "\U0001f600a"]), max_size=64),
       unit=st.sampled_from(["utf-8", "cp1252", "utf-16"]), first=st.integers(1, 10**6), at=st.integers(0, 10**9))
def test_few_lines_framed_in_python_equal_the_polars_framing(parts: list[str], unit: str, first: int, at: int) -> None:
    # a handful of lines skips polars' per-call cost (100k one-line files); the frame must not change
    assert _frame_few(parts, unit, first, at)[1] == _frame_many(parts, unit, first, at)[1]
    assert _frame_few(parts, unit, first, at)[0].equals(_frame_many(parts, unit, first, at)[0])
