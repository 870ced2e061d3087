"""pyparsing grammars for the structured messages some log lines carry, built from typed atoms.

Grammars run only on candidate lines (a vectorised test picks them first): a per-line grammar
costs 0.6-5 MB/s, far too slow for whole files, but it reads a handful of candidates exactly and
says which field is which, where a regex could only guess from neighbouring text.

REPORT EVENT (classic WindowsUpdate.log, XP .. 2012 R2; shape from ../shared/reference/log-formats.md
section 1 and the public classic logs in ../shared/corpus): the agent's report of an operation
result, tab-separated after `REPORT EVENT: `::

    {event guid} <TAB> 2016-10-19 14:23:56:200-0600 <TAB> 1 <TAB> 181 <TAB> 101 <TAB> {update guid}
    <TAB> 501 <TAB> 80246007 <TAB> AutomaticUpdates <TAB> Failure <TAB> Content Download <TAB> text

The eighth field is the operation's HRESULT in bare hex ("0" on success). A failed download
often names its code only there ("Error: Download failed."), so code extraction reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyparsing as pp

# -- atoms ---------------------------------------------------------------------------------------
#: `{7A967290-323C-4B8E-9A0B-0123456789AB}`, either case.
GUID = r"\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}"
#: Local time with the writer's UTC offset: `2016-10-19 14:23:56:200-0600`.
REPORT_TIME = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}:\d{3}[+-]\d{4}"
UINT = r"\d+"
#: An HRESULT as the report writes it: bare hex without 0x, "0" for success.
BARE_HRESULT = r"[0-9A-Fa-f]{1,8}"
FIELD = r"[^\t]*"  # one tab-separated field, possibly empty
REST = r".*"


def _fields(*named: tuple[str, str], sep: str = "\t") -> str:
    """Named atoms joined by a separator, as one pattern."""
    return sep.join(f"(?P<{name}>{atom})" for name, atom in named)


# -- grammars ------------------------------------------------------------------------------------
#: One pyparsing Regex made of the atoms, not an element per field: the element-by-element form
#: took 140 us a line (13% of a bundle scan on failing reports alone), this one about 30 us.
REPORT_EVENT = pp.Regex(
    "REPORT EVENT: " + _fields(
        ("event_guid", GUID), ("time", REPORT_TIME), ("version", UINT), ("event_id", UINT),
        ("namespace", UINT), ("update_id", GUID), ("revision", UINT), ("hresult", BARE_HRESULT),
        ("caller", FIELD), ("result", FIELD), ("category", FIELD), ("description", REST),
    )
).parse_with_tabs()  # pyparsing would otherwise expand the tabs that separate the fields


@dataclass(frozen=True)
class ReportEvent:
    """The fields of one REPORT EVENT that triage uses."""

    event_id: int
    update_id: str
    hresult: int
    caller: str
    result: str
    category: str
    description: str

    @property
    def failure_code(self) -> str | None:
        """`0x` + 8 upper hex for a failed operation whose HRESULT has the failure bit, else None."""
        if self.result.strip().lower() != "failure" or not self.hresult & 0x80000000:
            return None
        return f"0x{self.hresult:08X}"


def parse_report_event(message: str) -> ReportEvent | None:
    """The REPORT EVENT in a classic message, or None when the message is not a whole one."""
    try:
        r = REPORT_EVENT.parse_string(message, parse_all=True)
    except pp.ParseException:
        return None
    return ReportEvent(int(r["event_id"]), r["update_id"], int(r["hresult"], 16), r["caller"], r["result"],
                       r["category"], r["description"])
