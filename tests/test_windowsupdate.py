"""WindowsUpdate.log parser: both forms, encodings, offsets, time zones, detection."""

import io
from datetime import UTC, datetime

import polars as pl
import pytest
from umtriage.parsers.base import ParseContext
from umtriage.parsers.detect import detect
from umtriage.parsers.windowsupdate import PARSER

CLASSIC = [
    "2021-08-28\t11:05:07:920\t 576\ta70\tMisc\t===========  Logging initialized (build: 7.6.7600.256, tz: +0530)  ===========",
    "2021-08-28\t11:05:08:001\t 576\t a0\tAgent\t  * WARNING: Exit code = 0x8024402C",
    "",
    "2021-08-28\t11:05:09:100\t1008\t45c\tReport\tREPORT EVENT: {5F0D6A61-3C6E-4E1B-9B52-1B2C3D4E5F60}\t2021-08-28 11:05:09:100+0530\t1\t148\t101"
    "\t{D67661EB-2423-451D-BF5D-13199E37DF28}\t1\t8024402c\tAutomaticUpdates\tFailure\tSoftware Synchronization\tfailed",
    "garbage that is not a log line",
    "2021-08-28\t11:06:00:000\t1008\t45c\tHandler\tFATAL: UH: 0x80070057: EvaluateApplicability failed",
    "2021-08-29\t09:00:00:000\t 640\t b1\tMisc\t===========  Logging initialized (build: 7.6.7600.256, tz: -0700)  ===========",
    "2021-08-29\t09:00:01:000\t 640\t b1\tAgent\tnothing to report",
]
ETW = [
    "2024/04/11 10:15:02.1234567 1234  5678  WebServices     *FAILED* [8024402C] Web service call.",
    "2021.11.24 09:00:00.0000001 612   176640 Agent           Timer: 29A863E7-8609-4D1E-B7CD-5668F857F1DB",
    "1600/12/31 19:00:00.0000000 2024  4948                  Unknown( 15): GUID=1f9e54c8-9e31-3e53-867d-d9f39756ad7f "
    "(No Format Information found).",
    "2020-09-20 23:59:59.9999999 69624 176640 WebServices     WS error: There was an error communicating",
]


def parse_bytes(data: bytes, encoding: str = "auto", bom: int = 0, tz: str = "UTC"):
    ctx = ParseContext(source="host/WindowsUpdate.log", encoding=encoding, start_offset=bom, assume_tz=tz,
                       batch_bytes=64)
    batches = list(PARSER.parse(io.BytesIO(data[bom:]), ctx))
    recs = pl.concat([b.records for b in batches])
    rejs = pl.concat([b.rejects for b in batches])
    return recs, rejs, sum(b.lines for b in batches)


def test_classic_records_field_by_field_with_tz_banner() -> None:
    data = ("\r\n".join(CLASSIC) + "\r\n").encode()
    recs, rejs, lines = parse_bytes(data)
    assert lines == 8
    assert recs.height == 6
    assert rejs["reason"].to_list() == ["no_prefix"]
    assert rejs["line_no"].to_list() == [5]
    r = recs.row(1, named=True)
    assert r["line_no"] == 2
    assert r["byte_offset"] == data.index(b"2021-08-28\t11:05:08")
    assert r["ts"] == datetime(2021, 8, 28, 5, 35, 8, 1000, tzinfo=UTC)  # 11:05 at +0530
    assert (r["pid"], r["tid"], r["component"], r["level"]) == ("576", "a0", "Agent", "WARNING")
    assert r["message"] == "  * WARNING: Exit code = 0x8024402C"
    assert r["format"] == "windowsupdate-classic"
    report = recs.row(2, named=True)
    assert report["message"].count("\t") == 11  # REPORT EVENT keeps its own tab fields
    assert recs.row(3, named=True)["level"] == "FATAL"
    assert recs.row(0, named=True)["kind"] == "banner"
    last = recs.row(5, named=True)  # new banner: -0700
    assert last["ts"] == datetime(2021, 8, 29, 16, 0, 1, tzinfo=UTC)


def test_classic_with_tabs_turned_to_spaces() -> None:
    line = "   2010-01-05 18:52:06:747 808 aac Setup FATAL: IsUpdateRequired failed with error 0x8024402c"
    recs, rejs, _ = parse_bytes((line + "\n").encode())
    assert rejs.height == 0
    r = recs.row(0, named=True)
    assert (r["pid"], r["tid"], r["component"], r["level"]) == ("808", "aac", "Setup", "FATAL")
    assert r["message"] == "FATAL: IsUpdateRequired failed with error 0x8024402c"


def test_etw_forms_dates_and_undecoded_lines() -> None:
    recs, rejs, _ = parse_bytes(("\n".join(ETW) + "\n").encode(), tz="+0200")
    assert rejs.height == 0
    assert recs["format"].to_list() == ["windowsupdate-etw"] * 4
    first = recs.row(0, named=True)
    assert first["ts"] == datetime(2024, 4, 11, 8, 15, 2, 123456, tzinfo=UTC)
    assert (first["pid"], first["tid"], first["component"], first["level"]) == ("1234", "5678", "WebServices",
                                                                                "FAILED")
    assert first["message"] == "*FAILED* [8024402C] Web service call."
    dotted = recs.row(1, named=True)
    assert dotted["tid"] == "176640" and dotted["component"] == "Agent"
    undecoded = recs.row(2, named=True)
    assert undecoded["kind"] == "undecoded" and undecoded["ts"] is None and undecoded["component"] == ""
    assert recs.row(3, named=True)["ts"] == datetime(2020, 9, 20, 21, 59, 59, 999999, tzinfo=UTC)


def test_fixed_width_lines_with_mixed_date_separators_in_one_block() -> None:
    # fragments pasted from machines of different cultures: the fast fixed-width cut reads the
    # separators off the block's first line and must fall back for the others
    lines = [f"2024{d}04{d}11 10{t}15{t}02.1234567 1234  5678  WebServices     *FAILED* [8024402C] call {i}"
             for i, (d, t) in enumerate((("/", ":"), ("-", ":"), (".", "."), ("/", ":")))]
    ctx = ParseContext(source="h/WindowsUpdate.log", encoding="auto", batch_bytes=1 << 20)
    batches = list(PARSER.parse(io.BytesIO(("\n".join(lines) + "\n").encode()), ctx))
    assert len(batches) == 1
    recs = batches[0].records
    assert recs["ts"].to_list() == [datetime(2024, 4, 11, 10, 15, 2, 123456, tzinfo=UTC)] * 4
    assert recs["message"].to_list() == [f"*FAILED* [8024402C] call {i}" for i in range(4)]


def test_iana_zone_assumption() -> None:
    recs, _, _ = parse_bytes((ETW[0] + "\n").encode(), tz="Europe/Stockholm")
    assert recs["ts"][0] == datetime(2024, 4, 11, 8, 15, 2, 123456, tzinfo=UTC)  # CEST, +02:00


@pytest.mark.parametrize(
    ("codec", "bom"),
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"),
     ("utf-16-le", b"")],
)
def test_encodings_give_the_same_records_and_true_offsets(codec: str, bom: bytes) -> None:
    text = "\r\n".join([*ETW[:2], "2024/04/11 10:15:03.0000000 1234  5678  Agent           Title=Säkerhetsuppdatering"])
    data = bom + (text + "\r\n").encode(codec)
    det = detect("x.log", data[:65536])
    assert det.parser is not None and det.parser.name == "windowsupdate"
    recs, rejs, lines = parse_bytes(data, det.head.encoding, det.bom_len)
    assert (recs.height, rejs.height, lines) == (3, 0, 3)
    assert recs["message"][2] == "Title=Säkerhetsuppdatering"
    for off, line in zip(recs["byte_offset"], text.split("\r\n"), strict=True):
        assert data[off:off + len(line.encode(codec))].decode(codec) == line


def test_cp1252_bytes_never_fail() -> None:
    data = "2021-08-28\t11:05:08:001\t 576\t a0\tAgent\tTitle=Säkerhet €\r\n".encode("cp1252")
    recs, rejs, _ = parse_bytes(data)
    assert rejs.height == 0
    assert recs["message"][0] == "Title=Säkerhet €"


def test_huge_line_is_rejected_and_the_rest_read() -> None:
    data = ETW[0].encode() + b"\n" + b"x" * (3 << 20) + b"\n" + ETW[3].encode() + b"\n"
    recs, rejs, lines = parse_bytes(data)
    assert recs.height == 2 and lines == 3
    assert rejs["reason"].to_list() == ["line_too_long"]
    assert len(rejs["raw"][0]) == 2000


def test_last_line_without_newline_is_read() -> None:
    recs, _, lines = parse_bytes(ETW[0].encode())
    assert recs.height == 1 and lines == 1


@pytest.mark.parametrize(
    "foreign",
    [
        "2024-05-01 10:00:00> Starting patch operation",
        "2024-05-01 10:00:00 (1234)worker : Worker starting. [workerVersion=1.6]",
        '<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System></System></Event>',
        "Level,Date and Time,Source,Event ID,Task Category",
        "Unable to Register Machine for Patch Management",
    ],
)
def test_foreign_formats_are_not_detected(foreign: str) -> None:
    assert detect("WindowsUpdate.log", (foreign + "\n").encode()).parser is not PARSER


class _Trickle(io.RawIOBase):
    """A stream that hands out at most `step` bytes a read, as archive members do, and can fail
    after `fail_after` bytes, as a damaged member does."""

    def __init__(self, data: bytes, step: int, fail_after: int | None = None):
        self.data, self.step, self.fail_after, self.pos = data, step, fail_after, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.fail_after is not None and self.pos >= self.fail_after:
            raise OSError("member damaged")
        out = self.data[self.pos: self.pos + min(n, self.step)]
        self.pos += len(out)
        return out


def test_short_reads_still_give_one_block_that_knows_it_is_the_last() -> None:
    from umtriage.parsers.textio import frame_lines

    data = ("\n".join(ETW) + "\n" + ETW[0]).encode()  # no newline after the last line
    blocks = list(frame_lines(_Trickle(data, 7), "auto", batch_bytes=1 << 20))
    assert len(blocks) == 1 and blocks[0].last and blocks[0].lines == len(ETW) + 1
    assert blocks[0].frame["line"][-1] == ETW[0]


def test_lines_read_before_a_failing_read_are_parsed_then_the_error_is_raised() -> None:
    from umtriage.parsers.textio import frame_lines

    data = ("\n".join(ETW * 50) + "\n").encode()
    seen = []
    with pytest.raises(OSError, match="member damaged"):
        for block in frame_lines(_Trickle(data, 100, fail_after=1000), "auto", batch_bytes=1 << 20):
            seen.append(block)
    assert sum(b.lines for b in seen) == data[:1000].count(b"\n")  # every whole line that came
