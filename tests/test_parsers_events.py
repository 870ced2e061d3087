"""Windows event export parsers: EVTX, wevtutil XML, Event Viewer CSV/TXT/text, PowerShell CSV/JSON.

Every export form is read from a real file (written by event_fixtures, or a real EVTX from the
shared corpus), checked for record count, one record field by field, and for not being
claimed by the other formats' detectors.
"""

from __future__ import annotations

import io
import struct
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from event_fixtures import (
    FORMS,
    MANAGEMENT_GROUP,
    RULE,
    TLS_CHAIN,
    event_xml,
    sample_events,
    write_json,
    write_samples,
    write_viewer_csv,
    write_wevtutil_xml,
)
from umtriage.parsers import event_csv, event_json, event_text, evtx_events
from umtriage.parsers import event_xml as xml_parser
from umtriage.parsers.base import RECORD_SCHEMA, REJECT_SCHEMA, Head, ParseContext, ParserSpec
from umtriage.parsers.event_common import level_from_name, level_from_number, make_batch, parse_event_time
from umtriage.parsers.textio import HEAD_BYTES, decode_head, looks_binary, sniff_encoding

EVTX_DIR = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "evtx"
PUBLIC_DIR = EVTX_DIR.parent / "public"
SPECS: dict[str, ParserSpec] = {
    m.PARSER.name: m.PARSER for m in (evtx_events, xml_parser, event_csv, event_text, event_json)
}
HOST = "SRV01"


def head_of(data: bytes, name: str = "sample") -> tuple[Head, int]:
    """The Head the pipeline would build for these bytes, and the BOM length."""
    raw = data[:HEAD_BYTES]
    encoding, bom = sniff_encoding(raw)
    binary = looks_binary(raw[bom:], encoding)
    return Head(name, raw, "" if binary else decode_head(raw, encoding, bom), encoding, binary), bom


def detected_by(data: bytes) -> list[str]:
    head, _ = head_of(data)
    return [name for name, spec in SPECS.items() if spec.detect(head)]


def run(spec: ParserSpec, data: bytes, assume_tz: str = "UTC") -> tuple[pl.DataFrame, pl.DataFrame, int, list[str]]:
    """Parse bytes the way the pipeline does: text parsers start after the BOM."""
    head, bom = head_of(data)
    start = 0 if spec.binary else bom
    ctx = ParseContext(source="sample", encoding=head.encoding, assume_tz=assume_tz, start_offset=start)
    stream = io.BytesIO(data)
    stream.seek(start)
    batches = list(spec.parse(stream, ctx))
    for b in batches:
        assert b.records.schema == pl.Schema(RECORD_SCHEMA)
        assert b.rejects.schema == pl.Schema(REJECT_SCHEMA)
        assert b.lines - b.records.height - b.rejects.height >= 0
    records = pl.concat([b.records for b in batches])
    rejects = pl.concat([b.rejects for b in batches])
    return records, rejects, sum(b.lines for b in batches), [n for b in batches for n in b.notes]


def physical_lines(data: bytes, encoding: str) -> int:
    text = data.decode("utf-16-le" if encoding.startswith("utf-16") else "utf-8", errors="replace")
    return text.count("\n") + (0 if text.endswith("\n") else 1)


# --- shared helpers ---------------------------------------------------------------------------


def test_levels_map_names_and_numbers_to_record_levels():
    assert [level_from_number(n) for n in (1, 2, 3, 4, 0, 5)] == ["FATAL", "ERROR", "WARNING", "INFO", "INFO", "INFO"]
    assert [level_from_name(w) for w in ("Critical", "Error", "Warnung", "Information", "Audit Failure")] == [
        "FATAL", "ERROR", "WARNING", "INFO", "FAILED",
    ]  # fmt: skip
    assert level_from_name("Spam") is None


@pytest.mark.parametrize(
    ("text", "utc", "local"),
    [
        ("/Date(1527000000000)/", datetime(2018, 5, 22, 14, 40, tzinfo=UTC), None),
        ("\\/Date(1527000000000+0200)\\/", datetime(2018, 5, 22, 14, 40, tzinfo=UTC), None),
        ("2015-02-21T21:06:04.123456789Z", datetime(2015, 2, 21, 21, 6, 4, 123456, tzinfo=UTC), None),
        ("2018-05-22T16:40:00.1234567+02:00", datetime(2018, 5, 22, 14, 40, 0, 123456, tzinfo=UTC), None),
        ("10/7/2016 6:38:24 PM", None, datetime(2016, 10, 7, 18, 38, 24)),
        ("10/7/2016 12:05:00 AM", None, datetime(2016, 10, 7, 0, 5)),
        ("\u200e10/\u200e7/\u200e2016 6:38:24\u202fPM", None, datetime(2016, 10, 7, 18, 38, 24)),
        ("25/12/2016 18:38:24", None, datetime(2016, 12, 25, 18, 38, 24)),
        ("07.10.2016 18:38:24", None, datetime(2016, 10, 7, 18, 38, 24)),
        ("2016/10/07 18:38:24", None, datetime(2016, 10, 7, 18, 38, 24)),
        ("2016-10-07 18:38:24", None, datetime(2016, 10, 7, 18, 38, 24)),
        ("2/30/2016 1:00:00 PM", None, None),
        ("yesterday", None, None),
    ],
)
def test_event_times_are_utc_when_the_data_says_so_and_local_otherwise(text, utc, local):
    assert parse_event_time(text) == (utc, local)


# --- every export form, from the sample writer -----------------------------------------------

TLS_RECORD_ID = 48215
TLS_UTC = datetime(2024, 3, 11, 9, 21, 32, 123000, tzinfo=UTC)
#: form -> what the export keeps: computer/record/channel/pid columns, sub-second time, rendered text
KEEPS = {
    "wevtutil.xml": dict(computer=True, record=True, channel=True, pid=False, ms=True, rendered=False),
    "rendered.xml": dict(computer=True, record=True, channel=True, pid=False, ms=True, rendered=True),
    "eventviewer.csv": dict(computer=False, record=False, channel=False, pid=False, ms=False, rendered=True),
    "eventviewer.txt": dict(computer=False, record=False, channel=False, pid=False, ms=False, rendered=True),
    "exportcsv.csv": dict(computer=True, record=True, channel=True, pid=True, ms=False, rendered=True),
    "exportcsv-culture.csv": dict(computer=True, record=True, channel=True, pid=True, ms=False, rendered=True),
    "copydetails.txt": dict(computer=True, record=True, channel=True, pid=False, ms=True, rendered=True),
    "winevent51.json": dict(computer=True, record=True, channel=True, pid=True, ms=True, rendered=True),
    "winevent7.json": dict(computer=True, record=True, channel=True, pid=True, ms=True, rendered=True),
}  # fmt: skip


def test_write_samples_writes_one_file_per_form_each_detected_by_its_parser(tmp_path):
    paths = write_samples(tmp_path / "out", HOST)
    assert [p.name for p in paths] == [f"{HOST}-OperationsManager-{suffix}" for suffix in FORMS]
    for path in paths:
        expected = FORMS[path.name.split("OperationsManager-")[1]][1]
        assert detected_by(path.read_bytes()) == [expected], path.name


@pytest.mark.parametrize("form", list(FORMS))
def test_each_form_gives_every_event_and_the_tls_4502_field_by_field(tmp_path, form):
    writer, parser_name = FORMS[form]
    path = writer(tmp_path / f"{HOST}-{form}", HOST)
    data = path.read_bytes()
    assert detected_by(data) == [parser_name]  # and no other event parser claims it

    records, rejects, lines, _ = run(SPECS[parser_name], data)
    head, bom = head_of(data)
    assert records.height == 5
    assert rejects.height == 0
    assert lines == physical_lines(data[bom:], head.encoding)
    assert sorted(records["event_id"].to_list()) == [1210, 4502, 4502, 4502, 4502]

    keeps = KEEPS[form]
    tls = records.filter(pl.col("message").str.contains("common algorithm", literal=True)).row(0, named=True)
    expected = {
        "source": "sample",
        "format": parser_name,
        "kind": "event",
        "event_id": 4502,
        "provider": "Health Service Modules",
        "level": "ERROR",
        "ts": TLS_UTC if keeps["ms"] else TLS_UTC.replace(microsecond=0),
        "computer": HOST if keeps["computer"] else None,
        "record_id": TLS_RECORD_ID if keeps["record"] else None,
        "component": "Operations Manager" if keeps["channel"] else None,
        "pid": "2716" if keeps["pid"] else None,
    }
    assert {k: tls[k] for k in expected} == expected
    message = tls["message"]
    assert message.startswith(TLS_CHAIN)
    assert message.count(" ---> ") == 2
    assert "\n   at System.Net.HttpWebRequest.EndGetResponse(IAsyncResult asyncResult)\n" in message
    assert ("\n\nWorkflow name: " + RULE) in message if keeps["rendered"] else RULE in message.split("\n")
    assert message.endswith(MANAGEMENT_GROUP)

    # where it starts: the offset and line number agree with the file's own bytes
    unit = 2 if head.encoding.startswith("utf-16") else 1
    codec = "utf-16-le" if unit == 2 else "utf-8"
    before = data[bom : tls["byte_offset"]].decode(codec)
    assert tls["line_no"] == before.count("\n") + 1
    first_line = tls["raw"].split("\n")[0]
    assert data[tls["byte_offset"] :].decode(codec, errors="replace").startswith(first_line)
    assert tls["line_count"] == tls["raw"].count("\n") + 1 or len(tls["raw"]) == 2000
    assert tls["line_count"] > 1  # a multi-line description stays one record


def test_local_times_follow_assume_tz_and_written_offsets_win(tmp_path):
    csv_records, *_ = run(event_csv.PARSER, write_viewer_csv(tmp_path / "ev.csv", HOST).read_bytes(), "+0200")
    assert csv_records.filter(pl.col("message").str.contains("common algorithm"))["ts"][0] == datetime(
        2024, 3, 11, 7, 21, 32, tzinfo=UTC
    )
    json_records, *_ = run(event_json.PARSER, write_json(tmp_path / "e.json", HOST).read_bytes(), "+0200")
    assert json_records["ts"][2] == TLS_UTC  # /Date(ms)/ is UTC whatever the zone


def test_windows_powershell_json_without_message_falls_back_to_insertion_strings(tmp_path):
    records, rejects, _, _ = run(event_json.PARSER, write_json(tmp_path / "e.json", HOST).read_bytes())
    last = records.row(4, named=True)
    assert rejects.height == 0
    assert last["record_id"] == 48230
    assert last["level"] == "WARNING"
    assert last["message"].split("\n")[0] == MANAGEMENT_GROUP
    assert "oms.opinsights.azure.com was not issued by a certificate authority" in last["message"]


# --- foreign files are not claimed -------------------------------------------------------------

PROSE = (
    b"Notes from the patch night\n\nThe servers were rebooted at 02:00. Log Name: none, we only looked at\n"
    b"the console. Event ID 4502 showed up twice; the message said the machine was registered elsewhere.\n"
)
WU_LINE = (
    b"2016-10-07\t18:38:24:123\t 996\t1f5c\tAgent\t*FAILED* [80244019] Synchronize updates\r\n"
    b"2016-10-07\t18:38:24:125\t 996\t1f5c\tAgent\tWARNING: Failed to synchronize, error = 0x80244019\r\n"
)
FOREIGN = {
    "prose": PROSE,
    "windowsupdate": WU_LINE,
    "plain csv": b"Name,Id,Message\r\nalpha,1,hello\r\n",
    "plain json": b'[{"name": "alpha", "id": 1}]',
    "plain xml": b'<?xml version="1.0"?><root><Event>not windows</Event></root>',
}


@pytest.mark.parametrize("name", list(FOREIGN))
def test_foreign_content_is_not_claimed_by_any_event_parser(name):
    assert detected_by(FOREIGN[name]) == []


@pytest.mark.skipif(not PUBLIC_DIR.is_dir(), reason="shared corpus not present")
def test_real_windowsupdate_logs_are_not_claimed():
    files = sorted(PUBLIC_DIR.glob("windowsupdate-*"))
    assert files
    for path in files:
        assert detected_by(path.read_bytes()[:HEAD_BYTES]) == [], path.name


# --- EVTX ------------------------------------------------------------------------------------

EVTX_COUNTS = {
    "Application_no_crc32.evtx": 17,
    "MSExchange_Management_wec.evtx": 1,
    "Security_short_selected.evtx": 7,
    "sample_with_a_bad_chunk_magic.evtx": 270,
    "system.evtx": 1881,
}
needs_evtx = pytest.mark.skipif(not EVTX_DIR.is_dir(), reason="shared corpus not present")


def run_evtx_file(path: Path) -> tuple[pl.DataFrame, pl.DataFrame, int, list[str]]:
    with path.open("rb") as f:
        batches = list(evtx_events.parse(f, ParseContext(source=path.name, encoding="auto")))
    for b in batches:
        assert b.lines == b.records.height + b.rejects.height
    return (
        pl.concat([b.records for b in batches]),
        pl.concat([b.rejects for b in batches]),
        sum(b.lines for b in batches),
        [n for b in batches for n in b.notes],
    )


@needs_evtx
@pytest.mark.parametrize("name", list(EVTX_COUNTS))
def test_real_evtx_files_are_read_whole_with_record_offsets(name):
    path = EVTX_DIR / name
    data = path.read_bytes()
    assert detected_by(data) == ["evtx"]
    records, rejects, _, _ = run_evtx_file(path)
    assert records.height == EVTX_COUNTS[name]
    assert records["line_no"].to_list() == list(range(1, records.height + 1))
    assert set(records["kind"]) == {"event"}
    headers = [struct.unpack_from("<IIQ", data, offset) for offset in records["byte_offset"]]
    assert {magic for magic, _, _ in headers} == {0x2A2A}  # every offset is a record's first byte
    assert len({record_id for _, _, record_id in headers}) == records.height
    if name in ("system.evtx", "Application_no_crc32.evtx"):  # not renumbered by an export
        assert [record_id for _, _, record_id in headers] == records["record_id"].to_list()
    if name != "sample_with_a_bad_chunk_magic.evtx":
        assert rejects.height == 0


@needs_evtx
def test_damaged_evtx_chunk_is_reported_and_the_rest_is_read():
    records, rejects, lines, notes = run_evtx_file(EVTX_DIR / "sample_with_a_bad_chunk_magic.evtx")
    assert rejects["reason"].to_list() == ["bad_chunk", "bad_chunk"]
    assert rejects["byte_offset"].to_list() == [4096 + 6 * 65536, 4096 + 10 * 65536]
    assert notes == ["2 damaged EVTX chunk(s) skipped, the rest was read"]
    assert lines == 272
    # records from chunks on both sides of the damage are there
    assert {46728, 47628, 45933} <= set(records["record_id"])


@needs_evtx
def test_evtx_record_field_by_field_and_from_a_non_file_stream():
    data = (EVTX_DIR / "system.evtx").read_bytes()
    batches = list(evtx_events.parse(io.BytesIO(data), ParseContext(source="sys.evtx", encoding="auto")))
    first = batches[0].records.row(0, named=True)
    assert {k: v for k, v in first.items() if k != "raw"} == {
        "source": "sys.evtx", "format": "evtx", "kind": "event", "line_no": 1, "line_count": 1,
        "byte_offset": 4608, "ts": datetime(2017, 7, 12, 17, 16, 28, 214161, tzinfo=UTC), "pid": None,
        "tid": None, "component": "System", "level": "INFO", "message": "10.00.\n15063\nMultiprocessor Free\n0",
        "computer": "WIN-P4SIAA0SQCO", "event_id": 6009, "provider": "EventLog", "record_id": 1,
    }  # fmt: skip
    assert first["raw"].startswith("<Event xmlns=") and "<Data>15063</Data>" in first["raw"]


@needs_evtx
def test_text_parsers_do_not_claim_evtx_and_evtx_does_not_claim_text(tmp_path):
    assert detected_by((EVTX_DIR / "system.evtx").read_bytes()) == ["evtx"]
    for path in write_samples(tmp_path, HOST):
        assert "evtx" not in detected_by(path.read_bytes())


def evtx_style_xml(lines: list[str]) -> str:
    """An event as the evtx reader renders it: declaration, indentation, double quotes."""
    body = "\n".join("  " + line for line in lines)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"


def test_4502_from_evtx_gets_the_same_fields_as_from_wevtutil_xml(tmp_path):
    event = sample_events(HOST)[2]
    pretty = evtx_style_xml(event_xml(event, HOST, quote='"'))
    from_evtx = evtx_events.row_from_record(pretty, index=7, byte_offset=69632)
    wevtutil = run(xml_parser.PARSER, write_wevtutil_xml(tmp_path / "w.xml", HOST).read_bytes())[0]
    from_xml = wevtutil.filter(pl.col("record_id") == event.record_id).row(0, named=True)
    records = make_batch([from_evtx], [], 1, ParseContext(source="s", encoding="auto"), "evtx").records
    evtx_row = records.row(0, named=True)
    same = ("event_id", "provider", "level", "computer", "record_id", "ts", "message", "component", "kind")
    assert {k: evtx_row[k] for k in same} == {k: from_xml[k] for k in same}
    assert (evtx_row["line_no"], evtx_row["line_count"], evtx_row["byte_offset"]) == (7, 1, 69632)
    assert evtx_row["message"].startswith(TLS_CHAIN + "\n   at System.Net.SSPIWrapper")
    assert "\n" not in evtx_row["raw"].split("<EventData>")[0]  # indentation squeezed out of raw


# --- XML robustness --------------------------------------------------------------------------

NS = "http://schemas.microsoft.com/win/2004/08/events/event"


def one_event(record_id: int, data: str = "Registration failed") -> str:
    return (
        f"<Event xmlns='{NS}'><System><Provider Name='HealthService'/><EventID>4502</EventID><Level>2</Level>"
        f"<TimeCreated SystemTime='2024-03-11T09:16:02.1234567Z'/><EventRecordID>{record_id}</EventRecordID>"
        f"<Channel>Operations Manager</Channel><Computer>SRV01</Computer></System>"
        f"<EventData><Data>{data}</Data></EventData></Event>"
    )


def test_doctype_is_refused_as_a_reject_and_never_expanded():
    laughs = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        ' <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n'
        + one_event(1)
        + "\n"
        + one_event(2, "&lol1;")
        + "\n"
        + one_event(3)
        + "\n"
    ).encode()
    assert detected_by(laughs) == ["event-xml"]
    records, rejects, lines, _ = run(xml_parser.PARSER, laughs)
    assert records["record_id"].to_list() == [1, 3]
    assert rejects.select("line_no", "reason").rows() == [(2, "dtd_refused"), (7, "malformed_xml")]
    assert "lol" not in "".join(records["message"].to_list())
    assert lines == 8


def test_malformed_event_is_rejected_and_the_next_one_read():
    text = (
        one_event(1)
        + "\n<Event xmlns='"
        + NS
        + "'><System><EventID>4502</System>\n"
        + one_event(2)
        + "\nstray words\n"
        + one_event(3, "a &amp; b &lt;c&gt;")
        + "\n"
        + one_event(4)[:60]
    )
    records, rejects, lines, _ = run(xml_parser.PARSER, text.encode())
    assert records["record_id"].to_list() == [1, 2, 3]
    assert records["message"][2] == "a & b <c>"
    assert rejects.select("line_no", "reason").rows() == [
        (2, "malformed_xml"), (4, "stray_text"), (6, "malformed_xml"),
    ]  # fmt: skip
    assert lines == 6


def test_events_sharing_one_line_and_the_save_as_xml_wrapper(tmp_path):
    text = (
        '<?xml version="1.0" encoding="UTF-16"?>\r\n<Events>' + "".join(one_event(i) for i in range(1, 4)) + "</Events>"
    )
    data = b"\xff\xfe" + text.encode("utf-16-le")
    records, rejects, lines, notes = run(xml_parser.PARSER, data)
    assert records["record_id"].to_list() == [1, 2, 3]
    assert records["line_no"].to_list() == [2, 2, 2]
    assert records["byte_offset"][0] == 2 + len('<?xml version="1.0" encoding="UTF-16"?>\r\n<Events>') * 2
    assert records["ts"][0] == datetime(2024, 3, 11, 9, 16, 2, 123456, tzinfo=UTC)
    assert rejects.height == 0
    assert lines == 3 and notes == ["1 event(s) shared a physical line with another"]


def test_xml_with_bytes_that_are_not_utf8_is_still_read():
    data = one_event(9, "Zugriff verweigert \u2013 caf\u00e9").encode("cp1252")
    records, rejects, _, _ = run(xml_parser.PARSER, data)
    assert rejects.height == 0
    assert records["message"][0] == "Zugriff verweigert \u2013 caf\u00e9"


# --- CSV and TXT -----------------------------------------------------------------------------


def test_localised_viewer_csv_with_unquoted_continuation_lines_and_a_bad_row():
    text = (
        "Ebene,Datum und Uhrzeit,Quelle,Ereignis-ID,Aufgabenkategorie\r\n"
        "Fehler,11.03.2024 10:21:32,Health Service Modules,4502,Integritätsdienst,Registrierung fehlgeschlagen\r\n"
        "   at Agent.Register()\r\n"
        "Informationen,11.03.2024 10:15:02,HealthService,1210,Integritätsdienst,Neue Konfiguration aktiv\r\n"
    )
    data = b"\xef\xbb\xbf" + text.encode("utf-8")
    assert detected_by(data) == ["event-csv"]
    records, rejects, lines, _ = run(event_csv.PARSER, data, "Europe/Berlin")
    assert rejects.height == 0
    assert lines == 4
    first = records.row(0, named=True)
    assert (first["level"], first["event_id"], first["line_no"], first["line_count"]) == ("ERROR", 4502, 2, 2)
    assert first["message"] == "Registrierung fehlgeschlagen\n   at Agent.Register()"
    assert first["ts"] == datetime(2024, 3, 11, 9, 21, 32, tzinfo=UTC)
    assert records["level"][1] == "INFO"


def test_export_csv_rows_with_wrong_field_counts_are_rejected():
    header = '"Message","Id","RecordId","ProviderName","MachineName","TimeCreated","LevelDisplayName"'
    good = '"Registration failed","4502","11","HealthService","SRV01","3/11/2024 9:16:02 AM","Error"'
    data = ("\r\n".join(['#TYPE System.Diagnostics.Eventing.Reader.EventLogRecord', header, good, '"short","1"', good])
            + "\r\n").encode()  # fmt: skip
    records, rejects, lines, _ = run(event_csv.PARSER, data)
    assert records.height == 2
    assert rejects.select("line_no", "reason").rows() == [(4, "bad_row")]
    assert lines == 5


def test_a_runaway_quote_is_bounded_and_reading_goes_on():
    header = '"Message","Id","ProviderName","TimeCreated"'
    runaway = '"never closed,1,p,3/11/2024 9:16:02 AM'
    filler = "x" * 1000
    good = '"after","2","p","3/11/2024 9:16:02 AM"'
    data = "\n".join([header, runaway, *([filler] * 4200), good, ""]).encode()
    records, rejects, _, _ = run(event_csv.PARSER, data)
    assert "malformed_csv" in rejects["reason"].to_list()
    assert records.filter(pl.col("message") == "after").height == 1


# --- Copy details text -------------------------------------------------------------------------


def test_copy_details_with_a_preface_and_no_event_xml():
    text = (
        "Copied from SRV02 on Monday\r\n"
        "Log Name:      Operations Manager\r\nSource:        HealthService\r\nDate:          3/11/2024 9:16:02 AM\r\n"
        "Event ID:      4502\r\nTask Category: Health Service\r\nLevel:         Error\r\nKeywords:      Classic\r\n"
        "User:          N/A\r\nComputer:      SRV02.contoso.local\r\nDescription:\r\n"
        "Unable to Register Machine for Patch Management ---> inner\r\n   at A.B()\r\n\r\n"
    )
    data = text.encode()
    assert detected_by(data) == ["event-text"]
    records, rejects, lines, _ = run(event_text.PARSER, data, "-05:00")
    assert rejects.select("line_no", "reason").rows() == [(1, "no_header")]
    row = records.row(0, named=True)
    assert {k: row[k] for k in ("line_no", "line_count", "event_id", "provider", "level", "computer", "ts")} == {
        "line_no": 2, "line_count": 13, "event_id": 4502, "provider": "HealthService", "level": "ERROR",
        "computer": "SRV02.contoso.local", "ts": datetime(2024, 3, 11, 14, 16, 2, tzinfo=UTC),
    }  # fmt: skip
    assert row["message"] == "Unable to Register Machine for Patch Management ---> inner\n   at A.B()"
    assert lines == 14


# --- JSON --------------------------------------------------------------------------------------


def test_json_single_object_and_a_broken_object_in_an_array():
    single = b'{"Message": "only one", "Id": 4502, "ProviderName": "HealthService", "TimeCreated": "/Date(0)/"}'
    records, rejects, lines, _ = run(event_json.PARSER, single)
    assert (records.height, rejects.height, lines) == (1, 0, 1)
    assert records["ts"][0] == datetime(1970, 1, 1, tzinfo=UTC)

    array = (
        b'[\n {"Message": "a", "Id": 1, "ProviderName": "p"},\n {"Message": oops, "Id": 2},\n'
        b' {"Message": "brace } and \\" quote", "Id": 3, "LogName": "L", "Level": 1}\n]\n'
    )
    assert detected_by(array) == ["event-json"]
    records, rejects, lines, _ = run(event_json.PARSER, array)
    assert records["event_id"].to_list() == [1, 3]
    assert records["message"][1] == 'brace } and " quote'
    assert records["level"][1] == "FATAL"
    assert rejects.select("line_no", "reason").rows() == [(3, "malformed_json")]
    assert lines == 5


def test_compressed_json_on_one_line_keeps_every_event():
    objs = ",".join(f'{{"Message":"m{i}","Id":{i},"ProviderName":"p"}}' for i in range(50))
    records, _, lines, notes = run(event_json.PARSER, f"[{objs}]".encode())
    assert records.height == 50
    assert lines == 50 and notes == ["49 event(s) shared a physical line with another"]


def test_numbers_no_64_bit_column_holds_become_null_not_a_lost_file() -> None:
    # a damaged EVTX record header can carry a record id past 2**63 (seen by flipping bytes in a
    # real file); polars refuses such a value, which made the whole file's batch fail
    from umtriage.parsers.base import ParseContext
    from umtriage.parsers.event_common import build_records

    rows = [
        {"line_no": 1, "line_count": 1, "byte_offset": 0, "event_id": 4502, "record_id": 11313042263954686065,
         "message": "damaged header"},
        {"line_no": 2, "line_count": 1, "byte_offset": 10, "event_id": 1 << 70, "record_id": 7, "message": "ok"},
    ]
    df = build_records(rows, ParseContext(source="h/x.evtx", encoding="utf-8"), "evtx")
    assert df["record_id"].to_list() == [None, 7]
    assert df["event_id"].to_list() == [4502, None]
    assert df["message"].to_list() == ["damaged header", "ok"]
