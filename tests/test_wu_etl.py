"""Raw Windows Update ETL: files laid out as the ETW logger writes them (tests/etl_writer.py), read
back by etl-parser's own reader first, then by the parser and the real CLI."""

import io
import json
import tarfile
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from conftest import SHARED_CORPUS, run_cli
from etl.etl import IEtlFileObserver, build_from_stream
from etl_writer import EtlWriter, WuEvent
from umtriage.parsers import PARSERS
from umtriage.parsers.base import ParseContext
from umtriage.parsers.detect import detect
from umtriage.parsers.wu_etl import parse as parse_etl
from umtriage.parsers.wu_etl import walk

START = datetime(2025, 10, 8, 14, 2, 45, 443_000, tzinfo=UTC)

#: One scan and one failed install, as the agent logs them (messages in the shapes of
#: ../shared/reference/log-formats.md 1.2/1.3; ids invented).
MESSAGES = [
    ("Shared", "* START * Service startup"),
    ("Agent", "* START * Finding updates CallerId = UpdateOrchestrator  Id = 7 (cV = pQ3xk1tYbUe0Zr2a.1.0.0.4)"),
    ("Misc", "Got WSUS Client/Server URL: https://wsus.contoso.local:8531/ClientWebService/client.asmx"),
    ("WebServices", "*FAILED* [8024402C] Web service call. Current service auth scheme=0. Current Proxy auth scheme=0."),
    ("ProtocolTalker", "*FAILED* [8024402C] SyncServerUpdatesInternal failed"),
    ("Agent", "* END * Finding updates CallerId = UpdateOrchestrator, Id = 7, Exit code = 0x8024402C (cV = pQ3xk1tYbUe0Zr2a.1.0.0.4)"),
    ("ComApi", "Exit code = 0x00000000, Result code = 0x8024402C"),
    ("DownloadManager", "*FAILED* [80246008] Connect to BITS"),
    ("Handler", "WARNING: Failed to evaluate Installed rule, updateId = {7A967290-323C-4217-A32C-E4AA1574D7D7}.202, hr = 80070057"),
    ("Agent", "* START * Installing updates CallerId = UpdateOrchestrator"),
    ("Deployment", "Install call complete (succeeded = 0, succeeded with errors = 0, failed = 1, cancelled = 0, unaccounted = 0"),
    ("Shared", "* END * Service exit Exit code = 0x240001"),
]


def wu_events(n: int = 60) -> list[WuEvent]:
    """`n` events 0.37 s apart with sub-microsecond ticks, cycling through MESSAGES."""
    return [WuEvent(START + timedelta(microseconds=370_123 * i), 6016, 4400 + i % 7, *MESSAGES[i % len(MESSAGES)],
                    extra_ticks=i % 10) for i in range(n)]


def etl_bytes(events: list[WuEvent], writer: EtlWriter | None = None, wpp: int = 0) -> bytes:
    w = writer or EtlWriter(start=START)
    return w.build([w.event(e) for e in events] + [w.wpp(10 + i, 1080, 1132) for i in range(wpp)])


def parse_all(data: bytes) -> tuple[pl.DataFrame, pl.DataFrame, int, list[str]]:
    batches = list(parse_etl(io.BytesIO(data), ParseContext(source="t.etl", encoding="")))
    recs = pl.concat([b.records for b in batches])
    rej = pl.concat([b.rejects for b in batches])
    return recs, rej, sum(b.lines for b in batches), [n for b in batches for n in b.notes]


class Collect(IEtlFileObserver):
    def __init__(self) -> None:
        self.tl, self.wpp = [], 0

    def on_event_record(self, event):
        tl = event.parse_tracelogging()
        self.tl.append((tl.get_name(), dict(tl), event.get_process_id(), event.get_thread_id()))

    def on_trace_record(self, event):
        pass

    def on_perfinfo_trace(self, obj):
        pass

    def on_system_trace(self, obj):
        pass

    def on_win_trace(self, obj):
        self.wpp += 1


def test_generated_file_is_read_by_etl_parsers_own_reader() -> None:
    events = wu_events(60)
    data = etl_bytes(events, wpp=3)
    seen = Collect()
    build_from_stream(data).parse(seen)
    assert seen.wpp == 3
    assert [(name, fields["Info"], pid, tid) for name, fields, pid, tid in seen.tl] == [
        (e.component, e.message, e.pid, e.tid) for e in events]
    assert len(data) % 4096 == 0 and len(data) > 3 * 4096  # several fixed-size buffers


def test_detected_by_content_and_nothing_else_is() -> None:
    data = etl_bytes(wu_events(3))
    assert detect("renamed.bin", data[:65536]).parser.name == "windowsupdate-etl"
    text = "\n".join(e.text_line() for e in wu_events(3)).encode()
    assert detect("WindowsUpdate.etl", text).parser.name == "windowsupdate"
    assert detect("x.etl", b"\x00" * 4096).parser is None
    assert detect("x.etl", bytes(range(256)) * 32).parser is None
    evtx = SHARED_CORPUS / "evtx" / "system.evtx"
    if evtx.exists():
        assert detect("system.evtx", evtx.read_bytes()[:65536]).parser.name == "evtx"


def test_record_count_and_one_record_field_by_field() -> None:
    events = wu_events(60)
    recs, rej, lines, _ = parse_all(etl_bytes(events))
    assert recs.height == 60 and rej.height == 0
    assert lines == 61  # the logfile header event is counted and folded
    r = recs.row(3, named=True)
    e = events[3]
    assert r["format"] == "windowsupdate-etl" and r["kind"] == "line"
    assert r["ts"] == START + timedelta(microseconds=370_123 * 3)
    assert (r["pid"], r["tid"], r["component"]) == ("6016", "4403", "WebServices")
    assert r["message"] == e.message and r["level"] == "FAILED"
    assert r["provider"] == "WUTraceLogging"
    assert r["raw"] == e.text_line()
    assert r["line_no"] == 5 and r["byte_offset"] > 4096 and r["line_count"] == 1
    assert recs.row(8, named=True)["level"] == "WARNING"
    assert recs["byte_offset"].is_sorted() and recs["line_no"].is_unique().all()


def test_other_field_types_and_a_damaged_payload() -> None:
    w = EtlWriter(start=START)
    e = WuEvent(START, 10, 20, "Agent", "unused")
    counted = "*FAILED* [80070005] Caf\u00e9 counted".encode("utf-16-le")
    recs, rej, _, _ = parse_all(w.build([
        # a counted UTF-16 message, then a field type no reader knows: the message is kept
        w.event(e, fields=[("Info", 22, len(counted).to_bytes(2, "little") + counted), ("Blob", 24, b"\x01\x02")]),
        # no Info field: the fields are the message; an 8-bit string that is not ASCII
        w.event(e, fields=[("Code", 8, (0x80070005).to_bytes(4, "little")), ("Where", 2, "Gr\xfc\xdfe\0".encode("latin-1"))]),
        # the payload ends inside its string
        w.event(e, fields=[("Info", 1, "cut".encode("utf-16-le"))]),
        # a manifest event without embedded schema
        w.event(e, schema=False),
    ]))
    assert recs["message"].to_list() == ["*FAILED* [80070005] Caf\u00e9 counted", "Code=2147942405 Where=Gr\xfc\xdfe"]
    assert recs["level"].to_list() == ["FAILED", "INFO"]
    assert rej["reason"].to_list() == ["bad_event", "etl_needs_symbols"]


@pytest.mark.parametrize(
    ("clock_type", "freq", "ticks_after_start", "expected"),
    [
        # HPET frequency: 2.5 s is 35 795 450 ticks
        (1, 14_318_180, 35_795_450, START + timedelta(seconds=2.5)),
        # the ACPI PM timer, 3.579545 MHz: one tick short of 1 s is 999 999.7 us, truncated
        (1, 3_579_545, 3_579_544, START + timedelta(microseconds=999_999)),
        # system-time clock: the stamps are FILETIMEs
        (2, 0, None, START + timedelta(minutes=5)),
        # CPU cycle counter at 2400 MHz: 2.4e9 cycles is one second
        (3, 0, 2_400_000_000, START + timedelta(seconds=1)),
    ],
)
def test_timestamps_convert_from_the_header_start_time_and_clock(clock_type, freq, ticks_after_start, expected) -> None:
    w = EtlWriter(start=START, clock_type=clock_type, perf_freq=freq or 10_000_000, header_ticks=5_000_000_000)
    if clock_type == 2:
        rec = w.event(WuEvent(expected, 1, 2, "Agent", "x"))
    else:
        rec = w.event(WuEvent(START, 1, 2, "Agent", "x"))
        # re-stamp the event: the timestamp sits after size/type/marker, flags, property, tid, pid
        stamp = (w.header_ticks + ticks_after_start).to_bytes(8, "little")
        rec = rec[:16] + stamp + rec[24:]
    recs, _, _, _ = parse_all(w.build([rec]))
    assert recs["ts"][0] == expected


def write_text_log(path: Path, events: list[WuEvent]) -> None:
    """The Get-WindowsUpdateLog text of the same events (UTF-8, CRLF), in UTC."""
    path.write_bytes("".join(e.text_line() + "\r\n" for e in events).encode())


def scan(inputs: Path, out: Path) -> tuple[dict, pl.DataFrame]:
    r = run_cli("scan", str(inputs), "-o", str(out))
    assert r.returncode in (0, 1), r.stderr
    return json.loads((out / "summary.json").read_text()), pl.read_parquet(out / "matches.parquet")


def test_etl_and_its_get_windowsupdatelog_text_give_the_same_matches(tmp_path: Path) -> None:
    events = wu_events(60)
    (tmp_path / "etl" / "WIN11-01").mkdir(parents=True)
    (tmp_path / "txt" / "WIN11-01").mkdir(parents=True)
    (tmp_path / "etl" / "WIN11-01" / "WindowsUpdate.20251008.140245.443.1.etl").write_bytes(etl_bytes(events))
    write_text_log(tmp_path / "txt" / "WIN11-01" / "WindowsUpdate.log", events)
    s_etl, m_etl = scan(tmp_path / "etl", tmp_path / "out-etl")
    s_txt, m_txt = scan(tmp_path / "txt", tmp_path / "out-txt")
    assert s_etl["formats"]["windowsupdate-etl"]["records"] == s_txt["formats"]["windowsupdate"]["records"] == 60
    assert s_etl["accounted"] and s_txt["accounted"]
    drop = ["source", "format", "format_variant", "line_no", "byte_offset"]  # where and how the line was read
    a = m_etl.drop(drop).sort(pl.all())
    b = m_txt.drop(drop).sort(pl.all())
    assert a.height > 10 and {"0x8024402C", "0x80246008", "0x80070057"} <= set(a["code"])
    assert a.equals(b)
    inc_etl = pl.read_parquet(tmp_path / "out-etl" / "incidents.parquet")
    inc_txt = pl.read_parquet(tmp_path / "out-txt" / "incidents.parquet")
    cols = ["host", "signature_id", "code", "severity", "first_seen", "last_seen", "count"]
    assert inc_etl.select(cols).sort(cols).equals(inc_txt.select(cols).sort(cols))


def spans_tile(data: bytes) -> bool:
    pos = 0
    for unit in walk(io.BytesIO(data)):
        if unit.offset != pos:
            return False
        pos += unit.size
    return pos == len(data)


def test_truncated_file_keeps_the_events_before_and_counts_the_cut() -> None:
    events = wu_events(60)
    data = etl_bytes(events)
    cut = data[: 3 * 4096 + 1500]  # into the fourth buffer, mid-record
    recs, rej, lines, _ = parse_all(cut)
    assert recs.height > 30 and recs["message"].to_list() == [e.message for e in events[: recs.height]]
    assert rej["reason"].to_list() == ["truncated"]
    assert rej["byte_offset"][0] > 3 * 4096
    assert lines == recs.height + 1 + 1  # header folded, one reject
    assert spans_tile(cut)
    recs_short, rej_short, _, _ = parse_all(data[:40])
    assert recs_short.height == 0 and rej_short["reason"].to_list() == ["truncated"]


def test_bad_buffer_and_bad_record_are_counted_rejects_and_the_rest_is_read() -> None:
    events = wu_events(60)
    data = bytearray(etl_bytes(events))
    whole, _, _, _ = parse_all(bytes(data))
    in_second = whole.filter((pl.col("byte_offset") >= 2 * 4096) & (pl.col("byte_offset") < 3 * 4096)).height
    data[2 * 4096: 2 * 4096 + 8] = b"\x99" * 8  # the third buffer's size and used-bytes fields
    rec_at = int(whole.filter(pl.col("byte_offset") > 4 * 4096)["byte_offset"][2])
    data[rec_at + 2] = 0x77  # a record whose header type is unknown
    recs, rej, lines, _ = parse_all(bytes(data))
    assert sorted(rej["reason"].to_list()) == ["bad_buffer", "bad_event"]
    lost_after_bad_record = whole.filter((pl.col("byte_offset") >= rec_at) & (pl.col("byte_offset") < 5 * 4096)).height
    assert recs.height == 60 - in_second - lost_after_bad_record
    assert recs["message"][-1] == events[-1].message  # buffers after the damage are read
    assert lines == recs.height + rej.height + 1
    assert spans_tile(bytes(data))


def test_pre_1709_wpp_file_is_reported_as_needing_symbols(tmp_path: Path) -> None:
    w = EtlWriter(start=START)
    data = w.build([w.wpp(20 + i, 1080, 1132) for i in range(25)])
    recs, rej, lines, notes = parse_all(data)
    assert recs.height == 0 and rej["reason"].to_list() == ["etl_needs_symbols"] * 25 and lines == 26
    assert "need symbols" in notes[0]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "WindowsUpdate.20160510.081500.123.1.etl").write_bytes(data)
    s, _ = scan(tmp_path / "in", tmp_path / "out")
    assert s["rejects_by_reason"] == {"etl_needs_symbols": 25} and s["accounted"]
    assert s["files_skipped"] == 0 and any("need symbols" in n["note"] for n in s["notes"])


def test_etl_in_zip_and_tar_reads_as_the_plain_file(tmp_path: Path) -> None:
    events = wu_events(40)
    good = etl_bytes(events)
    cut = etl_bytes(events)[: 2 * 4096 + 700]
    member = "WIN11-02/Windows/Logs/WindowsUpdate/WindowsUpdate.20251008.140245.443.{}.etl"
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(member.format(1), good)
        z.writestr(member.format(2), cut)
    with tarfile.open(tmp_path / "bundle.tar.gz", "w:gz") as t:
        info = tarfile.TarInfo(member.format(1))
        info.size = len(good)
        t.addfile(info, io.BytesIO(good))
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "WindowsUpdate.etl").write_bytes(good)
    s, _ = scan(tmp_path / "bundle.zip", tmp_path / "out-zip")
    assert s["formats"]["windowsupdate-etl"]["files"] == 2 and s["accounted"]
    assert s["rejects_by_reason"] == {"truncated": 1}
    per = {f["source"].rsplit(".", 2)[-2]: f for f in s["sources"]}
    assert per["1"]["records"] == 40 and per["1"]["bytes"] == len(good)
    assert 0 < per["2"]["records"] < 40 and per["2"]["bytes"] == len(cut)
    s_tar, _ = scan(tmp_path / "bundle.tar.gz", tmp_path / "out-tar")
    assert s_tar["formats"]["windowsupdate-etl"]["records"] == 40


def test_a_member_found_damaged_at_its_end_keeps_its_events(tmp_path: Path) -> None:
    # past the archive reader's 1 MiB read-ahead, so detection succeeds and parsing starts
    events = wu_events(4000)
    good = etl_bytes(events, EtlWriter(start=START, buffer_size=65536))
    assert len(good) > 1 << 20
    with zipfile.ZipFile(tmp_path / "crc.zip", "w", zipfile.ZIP_STORED) as z:
        z.writestr("WIN11-03/WindowsUpdate.etl", good)
    data = bytearray((tmp_path / "crc.zip").read_bytes())
    at = data.index(events[-1].message.encode("utf-16-le"))
    data[at] ^= 0x01  # the stored member's CRC no longer matches: the reader fails at its end
    (tmp_path / "crc.zip").write_bytes(bytes(data))
    s, _ = scan(tmp_path / "crc.zip", tmp_path / "out")
    src = s["sources"][0]
    assert src["records"] > 3000 and src["errors"] and s["accounted"]


def test_the_parser_is_in_the_table_with_its_family(capsys) -> None:
    from umtriage.parsers import FAMILY
    from umtriage.pipeline.cli import main

    assert PARSERS["windowsupdate-etl"].binary and FAMILY["windowsupdate-etl"] == "windowsupdate"
    assert main(["formats"]) == 0
    assert "windowsupdate-etl" in capsys.readouterr().out
