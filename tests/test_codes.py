"""Error-code extraction: every spelling found, normalised; GUIDs and success codes never."""

import polars as pl
import pytest
from umtriage.pipeline.codes import extract_codes, normalise_code


def codes_of(text: str) -> list[str]:
    return extract_codes(pl.Series([text]))[0].to_list()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Exit code = 0x8024402C", ["0x8024402C"]),
        ("Exit code = 0x8024402c", ["0x8024402C"]),
        ("WebServices     *FAILED* [8024402C] Web service call.", ["0x8024402C"]),
        ("WARNING: Send failed with hr = 80244010.", ["0x80244010"]),
        ("Send request failed, hr:0x80072f8f", ["0x80072F8F"]),
        ("FATAL: IsUpdateRequired failed with error 0x8024402c", ["0x8024402C"]),
        ("*Error Originate:DownloadHandler* -> [hr] : -2145124322 (0x8024001E);", ["0x8024001E"]),
        ("(Exception from HRESULT: 0x80070422)", ["0x80070422"]),
        ("Access is denied. (Exception form HRESULT: 0x80070005(E_ACCESSDENIED))", ["0x80070005"]),
        ("mapped Nws error 0x803d0006 to 0x8024401c", ["0x803D0006", "0x8024401C"]),
        ("ComApi Exit code = 0x00000000, Result code = 0x8024402F", ["0x8024402F"]),
        ("WARNING: Failed to evaluate Installed rule, updateId = {7A967290-323C}.202, hr = 80070057", ["0x80070057"]),
        # issue 10: bare hex after resultMapped=, HRESULT = without 0x, unsigned decimal, Win32 numbers in words
        ("LogHistory called. idUpdate={1A2B3C4D-0000-4000-8000-00000000BEEF}.200, resultMapped=80070643, "
         "resultUnMapped=0", ["0x80070643"]),
        ("Failed to open key [HRESULT = 80070005]", ["0x80070005"]),
        ("Setup exited with code 2149859372", ["0x8024402C"]),
        ("Expected process to exit with [0, 3010], but received '2149842967'", ["0x80240017"]),
        ("[SC] OpenService FAILED 1060:", ["0x80070424"]),
        ("Dienst konnte nicht gestartet werden, Fehler 5", ["0x80070005"]),
        ("Le démarrage du service a échoué : échec 1058", ["0x80070422"]),
        ("msiexec returned error 1603", ["0x80070643"]),
    ],
)
def test_every_spelling_is_found_and_normalised(text: str, expected: list[str]) -> None:
    assert codes_of(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "CallId = {8024402C-1F2A-4B3C-9D8E-001122334455}",
        "ServiceId = 80070005-1F2A-4B3C-9D8E-001122334455",
        "* END * Finding updates, Exit code = 0x00000000",
        "Shared * END * Service exit Exit code = 0x00240001",
        "Exit code = 0x240001",
        "Found 3 updates in 8024402 ms",
        "0x8024402C1 is not a code",
        "",
        # numbers that are not codes: counts, success exit codes, another product's error numbers
        "Download call complete (succeeded = 0, failed = 2, cancelled = 0)",
        "The job failed 3 times, error 2 of 5",
        "Error 1920. Service 'Contoso Agent' (ContosoAgent) failed to start.",
        "wusa returned 2359302",
        "Obtained a network reference with No-Progress-Timeout set to 4294967295",
        "OpenSSL error error:80000002:system library::No such file or directory",
        "LogHistory called. resultMapped=0, resultUnMapped=0",
        "error 0",
    ],
)
def test_guids_success_codes_and_lookalikes_give_nothing(text: str) -> None:
    assert codes_of(text) == []


def test_codes_are_listed_once_in_order_of_appearance() -> None:
    assert codes_of("hr = 80072ee2 then 0x8024402C then [80072EE2]") == ["0x80072EE2", "0x8024402C"]


def test_extract_keeps_one_list_per_message() -> None:
    got = extract_codes(pl.Series(["no code", "[8024402C] x", None, "hr = 80070005"])).to_list()
    assert got == [[], ["0x8024402C"], [], ["0x80070005"]]


@pytest.mark.parametrize(
    ("typed", "code"),
    [("8024402c", "0x8024402C"), ("0x8024402C", "0x8024402C"), ("-2145107924", "0x8024402C"),
     ("[80070005]", "0x80070005"), ("0x00000000", None), ("hello", None), ("12345", None),
     ("2149859372", "0x8024402C"), ("4294967296", None)],
)
def test_user_typed_codes(typed: str, code: str | None) -> None:
    assert normalise_code(typed) == code


REPORT = ("REPORT EVENT: {{5F0D6A61-3C6E-4E1B-9B52-1B2C3D4E5F60}}\t2016-10-19 14:23:56:200-0600\t1\t{eid}\t101\t"
          "{{D67661EB-2423-451D-BF5D-13199E37DF28}}\t201\t{hr}\tAutomaticUpdates\t{result}\t{category}\t{text}")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # a failed download names its code only in the HRESULT field
        (REPORT.format(eid=167, hr="80246007", result="Failure", category="Content Download",
                       text="Error: Download failed."), ["0x80246007"]),
        # the field comes first in the line, the description's codes after it, each once
        (REPORT.format(eid=148, hr="8024402c", result="Failure", category="Software Synchronization",
                       text="failed with error 0x80240032 and 0x8024402c."), ["0x8024402C", "0x80240032"]),
        (REPORT.format(eid=183, hr="0", result="Success", category="Content Install",
                       text="Installation Successful"), []),
        (REPORT.format(eid=183, hr="80246007", result="Success", category="Content Install", text="odd"), []),
        (REPORT.format(eid=183, hr="00240001", result="Failure", category="Content Install", text="odd"), []),
        # not a whole REPORT EVENT: the grammar refuses, so a bare tab-separated hex is no code
        (REPORT.format(eid=167, hr="80246007", result="Failure", category="Content Download",
                       text="x").split("\tAutomaticUpdates")[0] + "\t", []),
        ("Summary\t80246007\tsomething else", []),
    ],
)
def test_report_event_hresult_field_is_read_by_its_grammar(message: str, expected: list[str]) -> None:
    assert codes_of(message) == expected


def test_report_event_grammar_names_its_fields() -> None:
    from umtriage.parsers.grammar import parse_report_event

    event = parse_report_event(REPORT.format(eid=167, hr="80246007", result="Failure", category="Content Download",
                                             text="Error: Download failed."))
    assert event is not None
    assert (event.event_id, event.category, event.result, event.caller) == (167, "Content Download", "Failure",
                                                                            "AutomaticUpdates")
    assert event.update_id == "{D67661EB-2423-451D-BF5D-13199E37DF28}"
    assert event.description == "Error: Download failed." and event.failure_code == "0x80246007"
    assert parse_report_event("REPORT EVENT: {not a guid}\t...") is None


def test_every_new_spelling_passes_the_parsers_prefilter() -> None:
    """MAY_HOLD_CODE must let through every line TOKEN takes a code from (the parsers skip the rest)."""
    import re

    from umtriage.pipeline.codes import MAY_HOLD_CODE

    for line in ["resultMapped=80070643", "exit code 2149859372", "OpenService FAILED 1060", "Fehler 5",
                 "échec 1058", "HRESULT = 80070005"]:
        assert codes_of(line), line
        assert re.search(MAY_HOLD_CODE.removeprefix("(?i)"), line, re.IGNORECASE), line
