"""Damaged and hostile input loses only the damaged part (issue #15, items 1, 6, 7 and 10).

Every attack input is generated here: one bad event among good ones, NUL runs and encoding
changes inside real-looking logs, archives and EVTX files cut short, CR-only line ends,
duplicate zip member names. Each test scans it through `run_scan` (the code `umtriage scan`
runs) and checks what was kept, what was rejected and why, and that every line is accounted.
"""

from __future__ import annotations

import json
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
