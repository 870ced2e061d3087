"""Plain text copied through mail or a ticket wraps a message over two lines: the matcher joins each
line with the next, but not where the next line opens a record of its own."""

from __future__ import annotations

import re

import pytest
from umtriage.pipeline.matcher import RECORD_OPENING
from umtriage.pipeline.process import match_text, matcher_for

FIRST = "The service did not respond to the start or control request"
SECOND = "in a timely fashion."
SIG = "windows-service-start-failed"


def _hits(text: str) -> list[tuple[int, str]]:
    _, hits = match_text(text, matcher_for(()))
    return [(r, s) for r, s in hits.select("row", "signature_id").iter_rows() if s == SIG]


def test_a_message_wrapped_in_two_lines_is_matched_on_its_first_line() -> None:
    assert _hits(FIRST) == [] and _hits(SECOND) == []  # neither half is enough alone
    assert _hits(f"{FIRST}\n{SECOND}\n") == [(0, SIG)]
    assert _hits(f"Output of the job:\n{FIRST}\n{SECOND}\n") == [(1, SIG)]


@pytest.mark.parametrize("opening", ["WARNING: ", "Error - ", "[error] ", "ERROR:", "2024-05-01 10:00:00 "])
def test_a_line_that_opens_a_record_is_not_the_end_of_the_line_before(opening: str) -> None:
    # the first line never takes the second's words (the second may still match on its own)
    assert (0, SIG) not in _hits(f"{FIRST}\n{opening}{SECOND}\n")


@pytest.mark.parametrize(("line", "opens"), [
    ("WARNING: disk", True), ("  Fatal: x", True), ("[Warn] y", True), ("Exception: System.X", True),
    ("FAILED - KB1", True), ("error: (401) Unauthorized", False), ("Warning signs were", False),
    ("errors: none", False), ("the error: x", False),
])
def test_record_openings(line: str, opens: bool) -> None:
    assert bool(re.search(RECORD_OPENING, line)) is opens
