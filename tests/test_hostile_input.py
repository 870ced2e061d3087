"""Damaged and hostile input loses only the damaged part (issue #15, items 1, 6, 7 and 10).

Every attack input is generated here: one bad event among good ones, NUL runs and encoding
changes inside real-looking logs, archives and EVTX files cut short, CR-only line ends,
duplicate zip member names. Each test scans it through `run_scan` (the code `umtriage scan`
runs) and checks what was kept, what was rejected and why, and that every line is accounted.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import struct
import sys
import tarfile
import threading
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import polars as pl
import pytest
from umtriage.pipeline.process import ScanOptions
from umtriage.pipeline.scan import run_scan

EVENT_NS = "http://schemas.microsoft.com/win/2004/08/events/event"
DEEP = 100_000
LONG_NUMBER = "7" * 5000
FAR_DATE = "/Date(99999999999999999999)/"
GOOD_TIME_MS = 1715680000000


def scan(tmp_path: Path, files: dict[str, bytes], name: str = "in") -> tuple[dict, pl.DataFrame]:
    """Write `files` under a fresh folder, scan it, return (summary, rejects table)."""
    root = tmp_path / name
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    out = tmp_path / f"{name}-out"
    result = run_scan([root], out, ScanOptions(), jobs=1)
    return result.summary, pl.read_parquet(out / "rejects.parquet")


def one_source(summary: dict) -> dict:
    assert len(summary["sources"]) == 1, summary["sources"]
    return summary["sources"][0]


def assert_accounted(summary: dict) -> None:
    assert summary["accounted"] is True
    for s in summary["sources"]:
        assert s["lines"] == s["records"] + s["folded_lines"] + s["rejects"], s


# --- item 1: one bad event is one reject --------------------------------------------------------------


def _json_event(i: int, **extra: object) -> dict:
    return {"Message": f"Update scan {i} failed with 0x8024402C", "Id": 4502, "ProviderName": "HealthService",
            "LogName": "Operations Manager", "TimeCreated": f"/Date({GOOD_TIME_MS + i * 1000})/",
            "MachineName": "srv-json", "RecordId": i, **extra}


def test_json_export_keeps_good_events_around_deep_long_and_far_ones(tmp_path):
    good = [json.dumps(_json_event(i)) for i in (1, 3, 5)]
    deep = json.dumps(_json_event(2))[:-1] + ', "Properties": ' + "[" * DEEP + "]" * DEEP + "}"
    long_id = json.dumps(_json_event(4))[:-1].replace('"RecordId": 4', '"RecordId": ' + LONG_NUMBER) + "}"
    far = json.dumps(_json_event(6, TimeCreated=FAR_DATE))
    text = "[\n" + ",\n".join([good[0], deep, good[1], long_id, good[2], far]) + "\n]\n"
    summary, rejects = scan(tmp_path, {"srv-json/events.json": text.encode()})
    src = one_source(summary)
    assert src["format"] == "event-json" and src["errors"] == []
    assert src["records"] == 3 and src["rejects"] == 3
    assert sorted(rejects["reason"]) == ["nesting_too_deep", "number_too_long", "value_out_of_range"]
    assert rejects.sort("line_no")["line_no"].to_list() == [3, 5, 7]
    assert_accounted(summary)


def test_csv_export_keeps_good_rows_around_a_long_id_and_a_far_date(tmp_path):
    header = '"Message","Id","ProviderName","LogName","TimeCreated","MachineName","RecordId"'

    def row(i: int, record_id: str, when: str) -> str:
        return f'"Update scan {i} failed with 0x8024402C","4502","HealthService","Operations Manager",' \
               f'"{when}","srv-csv","{record_id}"'

    rows = [row(1, "1", "5/14/2024 9:00:00 AM"), row(2, LONG_NUMBER, "5/14/2024 9:01:00 AM"),
            row(3, "3", FAR_DATE), row(4, "4", "5/14/2024 9:03:00 AM")]
    text = "#TYPE System.Diagnostics.Eventing.Reader.EventLogRecord\r\n" + header + "\r\n" + "\r\n".join(rows) + "\r\n"
    summary, rejects = scan(tmp_path, {"srv-csv/events.csv": text.encode()})
    src = one_source(summary)
    assert src["format"] == "event-csv" and src["errors"] == []
    assert src["records"] == 2 and src["rejects"] == 2
    assert sorted(rejects["reason"]) == ["number_too_long", "value_out_of_range"]
    assert_accounted(summary)


def _xml_event(i: int, record_id: str | None = None, when: str | None = None) -> str:
    when = when or f"2024-05-14T09:0{i}:00.000Z"
    return (f"<Event xmlns='{EVENT_NS}'><System><Provider Name='HealthService'/><EventID>4502</EventID>"
            f"<Level>2</Level><TimeCreated SystemTime='{when}'/><EventRecordID>{record_id or i}</EventRecordID>"
            f"<Channel>Operations Manager</Channel><Computer>srv-xml</Computer></System><EventData>"
            f"<Data>Update scan {i} failed with 0x8024402C</Data></EventData></Event>")


def test_xml_export_keeps_good_events_around_a_long_id_and_a_far_date(tmp_path):
    events = [_xml_event(1), _xml_event(2, record_id=LONG_NUMBER), _xml_event(3), _xml_event(4, when=FAR_DATE),
              _xml_event(5)]
    summary, rejects = scan(tmp_path, {"srv-xml/events.xml": ("\n".join(events) + "\n").encode()})
    src = one_source(summary)
    assert src["format"] == "event-xml" and src["errors"] == []
    assert src["records"] == 3 and src["rejects"] == 2
    assert sorted(rejects["reason"]) == ["number_too_long", "value_out_of_range"]
    assert_accounted(summary)


def test_copy_details_text_keeps_good_blocks_around_a_long_id_and_a_far_date(tmp_path):
    def block(i: int, event_id: str = "4502", date: str = "5/14/2024 9:00:00 AM") -> str:
        return (f"Log Name:      Operations Manager\nSource:        HealthService\nDate:          {date}\n"
                f"Event ID:      {event_id}\nLevel:         Error\nComputer:      srv-text\nDescription:\n"
                f"Update scan {i} failed with 0x8024402C\n\n")

    text = block(1) + block(2, event_id=LONG_NUMBER) + block(3, date=FAR_DATE) + block(4)
    summary, rejects = scan(tmp_path, {"srv-text/events.txt": text.encode()})
    src = one_source(summary)
    assert src["format"] == "event-text" and src["errors"] == []
    assert src["records"] == 2 and src["rejects"] == 2
    assert sorted(rejects["reason"]) == ["number_too_long", "value_out_of_range"]
    assert_accounted(summary)


@pytest.mark.parametrize("value", [LONG_NUMBER, "9" * 30])
def test_a_hostile_first_event_does_not_break_detection(tmp_path, value):
    """Detectors read the head too: a 5,000-digit id there must not raise out of detection."""
    events = [_xml_event(1, record_id=value), _xml_event(2)]
    summary, _ = scan(tmp_path, {"srv-xml/events.xml": "\n".join(events).encode()})
    src = one_source(summary)
    assert src["errors"] == [] and src["records"] + src["rejects"] == 2
    assert_accounted(summary)


# --- item 6: NUL runs and encoding changes are regions, not whole files ------------------------------

GEN_PATH = Path(__file__).resolve().parents[1] / "bench" / "gen_wulog.py"
_spec = importlib.util.spec_from_file_location("gen_wulog_hostile", GEN_PATH)
gen = importlib.util.module_from_spec(_spec)
sys.modules["gen_wulog_hostile"] = gen
_spec.loader.exec_module(gen)


@pytest.fixture(scope="module")
def wu_log(tmp_path_factory) -> bytes:
    """A generated WindowsUpdate.log (Windows 10 form, CRLF, no BOM) of about 120 KB."""
    path = tmp_path_factory.mktemp("wu") / "WindowsUpdate.log"
    gen.write_log(path, 120_000, form="win10", seed=7, bom=False, error_share=0.05)
    return path.read_bytes()


@pytest.fixture(scope="module")
def wu_clean(wu_log, tmp_path_factory) -> dict:
    summary, _ = scan(tmp_path_factory.mktemp("clean"), {"SRV01/WindowsUpdate.log": wu_log})
    src = one_source(summary)
    assert src["format"] == "windowsupdate" and src["rejects"] == 0 and summary["matched_records"] > 20
    return summary


def _after_line(data: bytes, at: int) -> int:
    """The offset just after the line end at or after byte `at`."""
    return data.index(b"\n", at) + 1


def test_one_nul_inside_a_line_costs_that_line_only(tmp_path, wu_log, wu_clean):
    damaged = wu_log[:300] + b"\x00" + wu_log[301:]
    summary, rejects = scan(tmp_path, {"SRV01/WindowsUpdate.log": damaged})
    src = one_source(summary)
    assert src["skipped"] is None and src["format"] == "windowsupdate"
    assert rejects.filter(pl.col("reason") == "nul_run").height == 1
    assert summary["matched_records"] >= wu_clean["matched_records"] - 1
    assert src["records"] == wu_clean["records"] - 1 and src["lines"] == wu_clean["lines"]
    assert_accounted(summary)


def test_a_20kb_nul_run_left_by_a_crash_costs_the_line_it_is_in(tmp_path, wu_log, wu_clean):
    """The run sits where the crash left the file; the restart appended the next line after it."""
    at = _after_line(wu_log, len(wu_log) // 3)
    damaged = wu_log[:at] + b"\x00" * 20_000 + wu_log[at:]
    summary, rejects = scan(tmp_path, {"SRV01/WindowsUpdate.log": damaged})
    src = one_source(summary)
    assert src["skipped"] is None
    assert src["lines"] == wu_clean["lines"]  # the physical lines: a NUL is no line end
    nul = rejects.filter(pl.col("reason") == "nul_run")
    assert nul.height == 1 and nul["byte_offset"][0] == at and "<20000 NUL bytes>" in nul["raw"][0]
    assert summary["matched_records"] >= wu_clean["matched_records"] - 1
    assert src["records"] == wu_clean["records"] - 1
    assert_accounted(summary)


def test_a_nul_run_at_the_start_of_the_file_does_not_make_it_binary(tmp_path, wu_log, wu_clean):
    summary, rejects = scan(tmp_path, {"SRV01/WindowsUpdate.log": b"\x00" * 20_000 + wu_log})
    src = one_source(summary)
    assert src["skipped"] is None, src
    assert rejects.filter(pl.col("reason") == "nul_run").height == 1
    assert src["records"] == wu_clean["records"] - 1
    assert summary["matched_records"] >= wu_clean["matched_records"] - 1
    assert_accounted(summary)


@pytest.mark.parametrize("head_lines", [None, 12], ids=["long-utf8-part", "tail-within-the-head"])
def test_a_utf8_log_with_a_utf16_tail_reads_both_parts(tmp_path, wu_log, head_lines):
    """A script appended to the log with PowerShell's Out-File (UTF-16); when the UTF-16 part is
    within the first 64 KiB detection sees its NULs, which made the whole file `binary`."""
    utf8 = wu_log if head_lines is None else b"".join(wu_log.splitlines(keepends=True)[:head_lines])
    tail = "2024-06-12 00:05:00.0000000 1234  5678  Agent    *FAILED* [8024402C] tail written as UTF-16\r\n" * 5
    data = utf8 + tail.encode("utf-16-le")
    summary, rejects = scan(tmp_path, {"SRV01/WindowsUpdate.log": data})
    src = one_source(summary)
    assert src["skipped"] is None and src["format"] == "windowsupdate"
    assert src["records"] == utf8.count(b"\n") + 5 == src["lines"]
    assert rejects.height == 0
    assert_accounted(summary)


def test_a_utf16_log_with_a_utf8_tail_reads_the_tail_as_lines(tmp_path, wu_log, wu_clean):
    text = wu_log.decode("utf-8")
    head, tail = text[: len(text) // 2], text[len(text) // 2 :]
    cut = head.rfind("\n") + 1
    head, tail = text[:cut], text[cut:]
    data = b"\xff\xfe" + head.encode("utf-16-le") + tail.encode("utf-8")
    summary, rejects = scan(tmp_path, {"SRV01/WindowsUpdate.log": data})
    src = one_source(summary)
    assert src["skipped"] is None and src["format"] == "windowsupdate"
    assert src["records"] == wu_clean["records"]
    assert summary["matched_records"] == wu_clean["matched_records"]
    assert rejects.height == 0
    assert_accounted(summary)


def _png(width: int = 16) -> bytes:
    raw = b"".join(b"\x00" + bytes((x * 7 + y * 13) % 256 for x in range(width * 3)) for y in range(width))
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, width, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _pe_header() -> bytes:
    """The start of a Windows executable: MZ stub, PE header, section table (NULs everywhere)."""
    dos = b"MZ" + b"\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\xb8" + b"\x00" * 7 + b"\x40"
    dos = dos.ljust(0x3C, b"\x00") + struct.pack("<I", 0x80)
    dos = dos.ljust(0x80, b"\x00") + b"PE\x00\x00" + struct.pack("<HHIIIHH", 0x8664, 3, 0, 0, 0, 0xF0, 0x22)
    sections = b"".join(name.ljust(8, b"\x00") + struct.pack("<IIIIIIHHI", 0x1000 * i, 0x1000, 0x200, 0x400, 0, 0,
                                                                             0, 0, 0x60000020)
                        for i, name in enumerate((b".text", b".rdata", b".data"), 1))
    return (dos + b"\x00" * 0xF0 + sections).ljust(4096, b"\x00") + bytes(range(256)) * 16


def _etl_like() -> bytes:
    """WMI trace buffers as ETL files hold them: headers with sizes and GUIDs, then event payloads."""
    out = bytearray()
    for i in range(64):
        out += struct.pack("<IIQQ", 0x10000, 0x200 + i, 0x1D9A0000 + i * 977, i) + bytes(16)
        out += ("WindowsUpdateClient " + str(i)).encode("utf-16-le") + struct.pack("<HHI", i, 4, 0xC0000000 + i)
    return bytes(out)


@pytest.mark.parametrize("make", [_png, _pe_header, _etl_like], ids=["png", "exe", "etl"])
def test_real_binaries_stay_out_of_the_line_parsers(tmp_path, make):
    summary, _ = scan(tmp_path, {"SRV01/blob.log": make()})
    src = one_source(summary)
    assert src["skipped"] == "binary" and src["format"] is None
    assert summary["rejects"] == 0 and summary["records"] == 0


# --- item 10: CR-only line ends ------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_cr_only_line_ends_are_line_ends(tmp_path, wu_log, wu_clean, encoding):
    text = wu_log.decode("utf-8").replace("\r\n", "\r")
    data = text.encode("utf-8") if encoding == "utf-8" else b"\xff\xfe" + text.encode("utf-16-le")
    summary, rejects = scan(tmp_path, {"SRV01/WindowsUpdate.log": data})
    src = one_source(summary)
    assert src["format"] == "windowsupdate"
    assert src["lines"] == wu_clean["lines"] and src["records"] == wu_clean["records"]
    assert summary["matched_records"] == wu_clean["matched_records"] and rejects.height == 0
    assert_accounted(summary)


# --- item 7: what was read before a cut or damage is kept, and the damage is reported ----------------

EVTX_DIR = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "evtx"


def _whole_lines(data: bytes) -> int:
    return data[: data.rfind(b"\n") + 1].count(b"\n")


def test_a_small_gzip_cut_short_keeps_the_lines_before_the_cut(tmp_path, wu_log):
    log = wu_log[: _after_line(wu_log, 12_000)]
    cut = gzip.compress(log)[:-40]
    readable = zlib.decompressobj(31).decompress(cut)  # what zcat prints before "unexpected end of file"
    summary, _ = scan(tmp_path, {"SRV01.log.gz": cut})
    src = one_source(summary)
    assert src["format"] == "windowsupdate"
    assert src["lines"] == _whole_lines(readable) > 0
    assert src["errors"] == ["reading stopped: truncated_archive"]
    assert [p["reason"] for p in summary["problems"]] == ["truncated_archive"]
    assert_accounted(summary)


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED], ids=["deflated", "stored"])
def test_a_small_zip_member_damaged_at_its_end_keeps_the_lines_before(tmp_path, wu_log, method):
    log = wu_log[: _after_line(wu_log, 12_000)]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        z.writestr("SRV02/WindowsUpdate.log", log)
        z.writestr("SRV03/WindowsUpdate.log", log)
    data = bytearray(buf.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).infolist()[0]
    end = info.header_offset + 30 + len(info.filename) + info.compress_size
    for i in range(end - 30, end - 20):  # ten bytes near the member's end: its CRC no longer holds
        data[i] ^= 0x55
    summary, _ = scan(tmp_path, {"bundle.zip": bytes(data)})
    per = {s["source"]: s for s in summary["sources"]}
    damaged, intact = per["bundle.zip!SRV02/WindowsUpdate.log"], per["bundle.zip!SRV03/WindowsUpdate.log"]
    assert intact["errors"] == [] and intact["lines"] == log.count(b"\n")
    # at most the last 4 KiB step (where the damage is found) is lost
    assert _whole_lines(log[:-4096]) <= damaged["lines"] < intact["lines"]
    assert damaged["errors"] == ["reading stopped: corrupt_archive"] and damaged["records"] == damaged["lines"]
    assert_accounted(summary)


@pytest.mark.skipif(not (EVTX_DIR / "system.evtx").exists(), reason="shared EVTX corpus absent")
@pytest.mark.parametrize("inside", [False, True], ids=["file", "zip-member"])
@pytest.mark.parametrize("cut_at", [4096 + 2 * 65536 + 30_000, 4096 + 2 * 65536], ids=["in-chunk", "chunk-edge"])
def test_an_evtx_cut_short_keeps_its_records_and_says_so(tmp_path, inside, cut_at):
    """Cut inside its third chunk, or after its second while its header declares three."""
    whole = (EVTX_DIR / "system.evtx").read_bytes()
    files = {"SRV04/System.evtx": whole, "SRV05/System.evtx": whole[:cut_at]}
    if inside:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in files.items():
                z.writestr(name, data)
        files = {"fleet.zip": buf.getvalue()}
    summary, rejects = scan(tmp_path, files)
    per = {s["source"].split("!")[-1]: s for s in summary["sources"]}
    full, cut = per["SRV04/System.evtx"], per["SRV05/System.evtx"]
    assert full["rejects"] == 0 and full["notes"] == [] and full["errors"] == []  # read whole, in a zip too
    assert cut["format"] == "evtx" and cut["errors"] == []
    # every record that ends before the cut, those of the cut chunk too; the one the cut is in is the reject
    assert cut["records"] == sum(1 for r in _evtx_record_ends(whole) if r <= cut_at) < full["records"]
    assert any("cut short" in n for n in cut["notes"])
    truncated = rejects.filter((pl.col("reason") == "truncated") & pl.col("source").str.ends_with("SRV05/System.evtx"))
    assert truncated.height == 1 and f"byte {cut_at}" in truncated["raw"][0]
    assert_accounted(summary)


def _evtx_record_ends(data: bytes) -> list[int]:
    """End offsets of the records in an EVTX, from the record headers (magic, size) chunk by chunk."""
    ends = []
    for chunk in range(4096, len(data), 65536):
        pos = chunk + 512
        while pos + 8 <= min(len(data), chunk + 65536):
            magic, size = struct.unpack_from("<II", data, pos)
            if magic != 0x2A2A or size < 24:
                break
            pos += size
            ends.append(pos)
    return ends


@pytest.mark.parametrize("size", [0, 100, 3000])
def test_an_evtx_cut_inside_its_header_is_a_reject_not_an_error(tmp_path, size):
    header = b"ElfFile\x00" + bytes(120) + struct.pack("<H", 3) + bytes(4096)
    summary, rejects = scan(tmp_path, {"SRV06/System.evtx": header[: max(size, 8)]})
    src = one_source(summary)
    assert src["format"] == "evtx" and src["errors"] == []
    assert rejects["reason"].to_list() == ["truncated"]
    assert_accounted(summary)


# --- item 10: duplicate member names, binary members, files that change while read -------------------


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_duplicate_member_names_become_distinct_sources(tmp_path, wu_log, kind):
    first, second = wu_log[: _after_line(wu_log, 5000)], wu_log[: _after_line(wu_log, 9000)]
    if kind == "zip":
        buf = io.BytesIO()
        with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate; hostile input does it
            z.writestr("SRV01/WindowsUpdate.log", first)
            z.writestr("SRV01/WindowsUpdate.log", second)
    else:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            for data in (first, second):
                info = tarfile.TarInfo("SRV01/WindowsUpdate.log")
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    summary, _ = scan(tmp_path, {f"a.{kind}": buf.getvalue()})
    per = {s["source"]: s for s in summary["sources"]}
    name = f"a.{kind}!SRV01/WindowsUpdate.log"
    assert sorted(per) == [name, f"{name}#2"]
    assert per[name]["lines"] == first.count(b"\n") and per[f"{name}#2"]["lines"] == second.count(b"\n")
    assert_accounted(summary)


def test_a_binary_zip_member_is_skipped_without_reading_it_to_its_end(tmp_path):
    """The member's last bytes are damaged: reading it to its end would meet the bad CRC."""
    blob = bytearray(_pe_header() * 200)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("SRV01/tool.exe", bytes(blob))
        z.writestr("SRV01/notes.log", b"plain text line\n")
    data = bytearray(buf.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).infolist()[0]
    end = info.header_offset + 30 + len(info.filename) + info.compress_size
    data[end - 10 : end - 6] = b"XXXX"
    summary, _ = scan(tmp_path, {"b.zip": bytes(data)})
    per = {s["source"]: s for s in summary["sources"]}
    exe = per["b.zip!SRV01/tool.exe"]
    assert exe["skipped"] == "binary" and exe["errors"] == [] and exe["bytes"] == len(blob)
    assert summary["problems"] == []
    assert per["b.zip!SRV01/notes.log"]["lines"] == 1


def test_a_file_written_to_during_the_scan_gets_a_note(tmp_path, wu_log):
    root = tmp_path / "in" / "SRV01"
    root.mkdir(parents=True)
    path = root / "WindowsUpdate.log"
    path.write_bytes(wu_log * 50)  # over 4 MiB: parsed while it is read, not read whole first
    size = path.stat().st_size
    stop = threading.Event()

    def append() -> None:  # keeps writing until the scan is over, faster than small blocks parse
        with path.open("ab") as f:
            while not stop.wait(0.001):
                f.write(wu_log[:200])
                f.flush()

    writer = threading.Thread(target=append, daemon=True)
    writer.start()
    try:
        time.sleep(0.05)
        result = run_scan([tmp_path / "in"], tmp_path / "out", ScanOptions(), jobs=1)
    finally:
        stop.set()
        writer.join(timeout=10)
    assert not writer.is_alive()
    notes = [n for n in result.summary["notes"] if n["source"].endswith("WindowsUpdate.log")]
    assert notes and "while it was read" in notes[0]["note"]
    assert_accounted(result.summary)
    # read up to the size it had when the scan opened it: the appends cannot keep the scan going
    [source] = [s for s in result.summary["sources"] if s["source"].endswith("WindowsUpdate.log")]
    assert size <= source["bytes"] < path.stat().st_size


def test_a_file_left_alone_during_the_scan_has_no_change_note(tmp_path, wu_log):
    summary, _ = scan(tmp_path, {"SRV01/WindowsUpdate.log": wu_log})
    assert not [n for n in summary["notes"] if "while it was read" in n["note"]]
