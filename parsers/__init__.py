"""The parser table: every format umtriage reads, in one visible place.

Detection tries parsers by priority (cheap, specific ones first; the generic text parser last).
`FAMILY` maps each format to the source family that signatures name in `sources`.
"""

from __future__ import annotations

from .arclog import PARSER as ARC
from .base import ParserSpec
from .cbs import PARSER as CBS
from .event_csv import PARSER as EVENT_CSV
from .event_json import PARSER as EVENT_JSON
from .event_text import PARSER as EVENT_TEXT
from .event_xml import PARSER as EVENT_XML
from .evtx_events import PARSER as EVTX
from .linuxpatchext import PARSER as LINUXPATCHEXT
from .omsupdatemgmt import PARSER as OMSUPDATEMGMT
from .patchext_status import PARSER as PATCHEXT_STATUS
from .plaintext import PARSER as PLAINTEXT
from .reporting_events import PARSER as REPORTING_EVENTS
from .waagent import PARSER as WAAGENT
from .windowspatchext import PARSER as WINDOWSPATCHEXT
from .windowsupdate import PARSER as WINDOWSUPDATE
from .workerlog import PARSER as WORKERLOG
from .wu_etl import PARSER as WU_ETL

PARSERS: dict[str, ParserSpec] = {
    p.name: p
    for p in sorted(
        (
            WINDOWSUPDATE,
            EVTX,
            EVENT_XML,
            EVENT_CSV,
            EVENT_TEXT,
            EVENT_JSON,
            OMSUPDATEMGMT,
            WORKERLOG,
            LINUXPATCHEXT,
            PATCHEXT_STATUS,
            WINDOWSPATCHEXT,
            WAAGENT,
            ARC,
            PLAINTEXT,
            WU_ETL,
            REPORTING_EVENTS,
            CBS,
        ),
        key=lambda p: (p.priority, p.name),
    )
}

#: Record `format` value -> signature source family.
FAMILY: dict[str, str] = {
    "windowsupdate-classic": "windowsupdate",
    "windowsupdate-etw": "windowsupdate",
    "windowsupdate": "windowsupdate",
    "evtx": "event4502",
    "event-xml": "event4502",
    "event-csv": "event4502",
    "event-text": "event4502",
    "event-json": "event4502",
    "omsupdatemgmt": "omsupdatemgmt",
    "workerlog": "workerlog",
    "linuxpatchext": "patchext",
    "patchext-status": "patchext",
    "windowspatchext": "patchext",
    "waagent": "waagent",
    "arc": "arc",
    "text": "text",
    "windowsupdate-etl": "windowsupdate",
    "reportingevents": "windowsupdate",
    "cbs": "cbs",
}

__all__ = ["FAMILY", "PARSERS"]
