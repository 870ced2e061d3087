"""Sample Operations Manager event exports, one file per export form, for one host.

Our own text, shaped after log-formats.md §2: no real 4502 export is public, so the events
follow the two message shapes described there (HealthService "module reported an exception"
and Health Service Modules "One or more workflows were affected"), with the exception texts
Microsoft's docs quote, nested with " ---> " and followed by stack lines as .NET prints them.

The story: a server cannot join Update Management. Registration fails because the machine
is still registered to another Automation account, then TLS 1.2 is missing, then the agent
cannot create its self-signed certificate, and a proxy intercepts TLS. Times are written in
UTC, and local-time forms use the same wall clock, so `assume_tz="UTC"` reproduces them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

WORKSPACE_ID = "7d3e1f52-94a6-4c0b-b8e1-2f6a9c4d0e73"
MANAGEMENT_GROUP = f"AOI-{WORKSPACE_ID}"
RULE = "Microsoft.IntelligencePacks.AzureAutomation.HybridAgent.Init"
MODULE = "Microsoft.EnterpriseManagement.HealthService.AzureAutomation.HybridAgent"
INSTANCE_ID = "{3F8A2C61-0B7D-4E95-A1C4-6D2E9B7F5A08}"
LOG_NAME = "Operations Manager"
EVENT_NS = "http://schemas.microsoft.com/win/2004/08/events/event"

ALREADY_REGISTERED = (
    "Unable to Register Machine for Patch Management, Registration Failed with Exception "
    'System.InvalidOperationException: {"Message":"Machine is already registered to a different account."}'
)
TLS_CHAIN = (
    "Unable to Register Machine for Patch Management, Registration Failed with Exception "
    "System.Net.Http.HttpRequestException: An error occurred while sending the request. ---> "
    "System.Net.WebException: The underlying connection was closed: An unexpected error occurred on a "
    "receive. ---> System.ComponentModel.Win32Exception: The client and server cannot communicate, "
    "because they do not possess a common algorithm"
)
TLS_STACK = (
    "   at System.Net.SSPIWrapper.AcquireCredentialsHandle(SSPIInterface secModule, String package, "
    "CredentialUse intent, SecureCredential scc)",
    "   at System.Net.Security.SecureChannel.AcquireCredentialsHandle(CredentialUse credUsage, "
    "SecureCredential& secureCredential)",
    "   --- End of inner exception stack trace ---",
    "   at System.Net.HttpWebRequest.EndGetResponse(IAsyncResult asyncResult)",
    "   at System.Net.Http.HttpClientHandler.GetResponseCallback(IAsyncResult ar)",
    "   --- End of inner exception stack trace ---",
    "   at Microsoft.EnterpriseManagement.HealthService.AzureAutomation.HybridAgent.Registration"
    ".RegisterAsync(Uri endpoint, String workspaceId)",
)
CERT_CREATION = (
    "Unable to Register Machine for Patch Management, Registration Failed with Exception "
    "AgentService.HybridRegistration.PowerShell.Certificates.CertificateCreationException: Failed to create a "
    "self-signed certificate. ---> System.UnauthorizedAccessException: Access is denied."
)
CERT_STACK = (
    "   at System.Security.Cryptography.CngKey.Create(CngAlgorithm algorithm, String keyName, "
    "CngKeyCreationParameters creationParameters)",
    "   at AgentService.HybridRegistration.PowerShell.Certificates.CertificateGenerator.CreateSelfSigned("
    "String subject)",
    "   --- End of inner exception stack trace ---",
)
PROXY_CERT = (
    f"The certificate presented by the service {WORKSPACE_ID}.oms.opinsights.azure.com was not issued by a "
    "certificate authority used for Microsoft services. Contact your network administrator to see if they "
    "are running a proxy that intercepts TLS/SSL communication."
)
CONFIG_ACTIVE = f'New configuration became active. Management group "{MANAGEMENT_GROUP}", configuration id:"{{C41A7E09-55D2-4F3B-9A86-1E0B7C2D4F95}}".'

LEVEL_WORDS = {1: "Critical", 2: "Error", 3: "Warning", 4: "Information"}


@dataclass(frozen=True)
class SampleEvent:
    """One event as the agent would log it: rendered description and insertion strings."""

    event_id: int
    provider: str
    level: int
    utc: datetime
    record_id: int
    message: str
    data: tuple[str, ...]
    task: str = "Health Service"


def _module_shape(host: str, exception: str) -> str:
    """HealthService 4502: 'A module of type … reported an exception … in management group …'."""
    return (
        f'A module of type "{MODULE}" reported an exception {exception} which was running as part of rule '
        f'"{RULE}" running for instance "{host}" with id:"{INSTANCE_ID}" in management group "{MANAGEMENT_GROUP}".'
    )


def _workflow_shape(host: str, exception: str) -> str:
    """Health Service Modules 4502: description, blank line, the affected workflow block."""
    return (
        f"{exception}\n\nOne or more workflows were affected by this.\n\nWorkflow name: {RULE}\n"
        f"Instance name: {host}\nInstance ID: {INSTANCE_ID}\nManagement group: {MANAGEMENT_GROUP}"
    )


def sample_events(host: str) -> list[SampleEvent]:
    """The five events of the story, oldest first."""
    t0 = datetime(2024, 3, 11, 9, 15, 2, 123000, tzinfo=UTC)
    tls = TLS_CHAIN + "\n" + "\n".join(TLS_STACK)
    cert = CERT_CREATION + "\n" + "\n".join(CERT_STACK)
    return [
        SampleEvent(1210, "HealthService", 4, t0, 48211, CONFIG_ACTIVE, (MANAGEMENT_GROUP, "{C41A7E09-55D2-4F3B-9A86-1E0B7C2D4F95}")),
        SampleEvent(4502, "HealthService", 2, t0 + timedelta(minutes=1), 48212,
                    _module_shape(host, ALREADY_REGISTERED),
                    (MANAGEMENT_GROUP, RULE, host, MODULE, ALREADY_REGISTERED, INSTANCE_ID)),
        SampleEvent(4502, "Health Service Modules", 2, t0 + timedelta(minutes=6, seconds=30), 48215,
                    _workflow_shape(host, tls), (tls, RULE, host, INSTANCE_ID, MANAGEMENT_GROUP)),
        SampleEvent(4502, "Health Service Modules", 2, t0 + timedelta(hours=1, seconds=4), 48219,
                    _workflow_shape(host, cert), (cert, RULE, host, INSTANCE_ID, MANAGEMENT_GROUP)),
        SampleEvent(4502, "HealthService", 3, t0 + timedelta(hours=2, minutes=3), 48230,
                    _module_shape(host, PROXY_CERT),
                    (MANAGEMENT_GROUP, RULE, host, MODULE, PROXY_CERT, INSTANCE_ID)),
    ]  # fmt: skip


# --- XML --------------------------------------------------------------------------------------


def _system_xml(e: SampleEvent, host: str, q: str) -> list[str]:
    stamp = e.utc.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    return [
        f"<System><Provider Name={q}{e.provider}{q}/>",
        f"<EventID Qualifiers={q}{49152 if e.level <= 2 else 32768 if e.level == 3 else 0}{q}>{e.event_id}</EventID>",
        f"<Level>{e.level}</Level><Task>1</Task><Keywords>0x80000000000000</Keywords>",
        f"<TimeCreated SystemTime={q}{stamp}{q}/>",
        f"<EventRecordID>{e.record_id}</EventRecordID>",
        f"<Channel>{LOG_NAME}</Channel><Computer>{escape(host)}</Computer><Security/></System>",
    ]


def event_xml(e: SampleEvent, host: str, rendered: bool = False, quote: str = "'") -> list[str]:
    """One event as XML lines (wevtutil uses single quotes; join with "" for one line)."""
    out = [f"<Event xmlns={quote}{EVENT_NS}{quote}>", *_system_xml(e, host, quote), "<EventData>"]
    out += [f"<Data>{escape(d)}</Data>" for d in e.data]
    out.append("</EventData>")
    if rendered:
        out += [
            f"<RenderingInfo Culture={quote}en-US{quote}>",
            f"<Message>{escape(e.message)}</Message>",
            f"<Level>{LEVEL_WORDS[e.level]}</Level><Task>{e.task}</Task><Opcode/><Channel/><Provider/>",
            "<Keywords><Keyword>Classic</Keyword></Keywords></RenderingInfo>",
        ]
    out.append("</Event>")
    return out


def _lines_to_bytes(lines: list[str], encoding: str = "utf-8", bom: bytes = b"") -> bytes:
    return bom + "".join(line + "\r\n" for line in lines).encode(encoding)


def write_wevtutil_xml(path: Path, host: str) -> Path:
    """`wevtutil qe "Operations Manager" /f:xml`: one event per line, no root, no declaration."""
    path.write_bytes(_lines_to_bytes(["".join(event_xml(e, host)) for e in sample_events(host)]))
    return path


def write_rendered_xml(path: Path, host: str) -> Path:
    """`/f:RenderedXml`, pretty-printed: each event spans many lines and carries its Message."""
    lines: list[str] = []
    for e in sample_events(host):
        lines += event_xml(e, host, rendered=True, quote='"')
    path.write_bytes(_lines_to_bytes(lines, bom=b"\xef\xbb\xbf"))
    return path


# --- delimited text ---------------------------------------------------------------------------


def _us_time(t: datetime) -> str:
    hour = t.hour % 12 or 12
    return f"{t.month}/{t.day}/{t.year} {hour}:{t.minute:02d}:{t.second:02d} {'AM' if t.hour < 12 else 'PM'}"


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def write_viewer_csv(path: Path, host: str, tab: bool = False) -> Path:
    """Event Viewer "Save as CSV" (or TXT with `tab`): 5 header names, description as 6th field."""
    sep = "\t" if tab else ","
    rows = [sep.join(("Level", "Date and Time", "Source", "Event ID", "Task Category"))]
    for e in reversed(sample_events(host)):  # Event Viewer lists newest first
        fields = (LEVEL_WORDS[e.level], _us_time(e.utc), e.provider, str(e.event_id), e.task)
        rows.append(sep.join(fields) + sep + _quote(_crlf(e.message)))
    text = "".join(r + "\r\n" for r in rows)
    if tab:
        path.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    else:
        path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    return path


_PS_COLUMNS = (
    "Message", "Id", "Version", "Qualifiers", "Level", "Task", "Opcode", "Keywords", "RecordId", "ProviderName",
    "ProviderId", "LogName", "ProcessId", "ThreadId", "MachineName", "UserId", "TimeCreated", "ActivityId",
    "RelatedActivityId", "ContainerLog", "MatchedQueryIds", "Bookmark", "LevelDisplayName", "OpcodeDisplayName",
    "TaskDisplayName", "KeywordsDisplayNames", "Properties",
)  # fmt: skip


def _ps_values(e: SampleEvent, host: str, when: str) -> dict[str, str]:
    return {
        "Message": _crlf(e.message), "Id": str(e.event_id), "Version": "", "Qualifiers": "49152",
        "Level": str(e.level), "Task": "1", "Opcode": "", "Keywords": "36028797018963968",
        "RecordId": str(e.record_id), "ProviderName": e.provider, "ProviderId": "", "LogName": LOG_NAME,
        "ProcessId": "2716", "ThreadId": "4032", "MachineName": host, "UserId": "", "TimeCreated": when,
        "ActivityId": "", "RelatedActivityId": "", "ContainerLog": LOG_NAME,
        "MatchedQueryIds": "System.UInt32[]",
        "Bookmark": "System.Diagnostics.Eventing.Reader.EventBookmark", "LevelDisplayName": LEVEL_WORDS[e.level],
        "OpcodeDisplayName": "Info", "TaskDisplayName": e.task, "KeywordsDisplayNames": "System.Collections.ObjectModel.ReadOnlyCollection`1[System.String]",
        "Properties": "System.Collections.Generic.List`1[System.Diagnostics.Eventing.Reader.EventProperty]",
    }  # fmt: skip


def write_export_csv(path: Path, host: str, culture: bool = False) -> Path:
    """`Get-WinEvent | Export-Csv`: 5.1 with `#TYPE`, ASCII, US dates; or `-UseCulture` (`;`, German dates)."""
    sep = ";" if culture else ","
    lines = [] if culture else ["#TYPE System.Diagnostics.Eventing.Reader.EventLogRecord"]
    lines.append(sep.join(_quote(c) for c in _PS_COLUMNS))
    for e in sample_events(host):
        when = e.utc.strftime("%d.%m.%Y %H:%M:%S") if culture else _us_time(e.utc)
        values = _ps_values(e, host, when)
        lines.append(sep.join(_quote(values[c]) for c in _PS_COLUMNS))
    data = "".join(line + "\r\n" for line in lines)
    path.write_bytes(data.encode("utf-8") if culture else data.encode("ascii", errors="replace"))
    return path


# --- Copy details text ------------------------------------------------------------------------


def write_copy_details(path: Path, host: str) -> Path:
    """Event Viewer "Copy details as text" blocks pasted one after another, with their Event Xml."""
    lines: list[str] = []
    for e in sample_events(host):
        lines += [
            f"Log Name:      {LOG_NAME}",
            f"Source:        {e.provider}",
            f"Date:          {_us_time(e.utc)}",
            f"Event ID:      {e.event_id}",
            f"Task Category: {e.task}",
            f"Level:         {LEVEL_WORDS[e.level]}",
            "Keywords:      Classic",
            "User:          N/A",
            f"Computer:      {host}",
            "Description:",
            *e.message.split("\n"),
            "Event Xml:",
            *event_xml(e, host, quote='"'),
            "",
        ]
    path.write_bytes(_lines_to_bytes(lines))
    return path


# --- JSON -------------------------------------------------------------------------------------


def _json_event(e: SampleEvent, host: str, when: str, with_message: bool) -> dict[str, object]:
    return {
        "Id": e.event_id, "Version": None, "Qualifiers": 49152, "Level": e.level, "Task": 1, "Opcode": None,
        "Keywords": 36028797018963968, "RecordId": e.record_id, "ProviderName": e.provider, "ProviderId": None,
        "LogName": LOG_NAME, "ProcessId": 2716, "ThreadId": 4032, "MachineName": host, "UserId": None,
        "TimeCreated": when, "ActivityId": None, "RelatedActivityId": None, "ContainerLog": LOG_NAME,
        "MatchedQueryIds": [], "Bookmark": {}, "LevelDisplayName": LEVEL_WORDS[e.level],
        "OpcodeDisplayName": None, "TaskDisplayName": e.task, "KeywordsDisplayNames": ["Classic"],
        "Properties": [{"Value": d} for d in e.data],
        "Message": _crlf(e.message) if with_message else None,
    }  # fmt: skip


def write_json(path: Path, host: str, ps7: bool = False) -> Path:
    """`Get-WinEvent | ConvertTo-Json`: 5.1 (UTF-16LE via Out-File, `/Date(ms)/`) or 7.x (UTF-8, ISO).

    In the 5.1 file the last event has no rendered Message (the agent's message DLL was not
    on the exporting machine), so only its Properties carry the text.
    """
    events = sample_events(host)
    objs = []
    for i, e in enumerate(events):
        if ps7:
            local = e.utc.astimezone(UTC).replace(tzinfo=None) + timedelta(hours=1)
            when = local.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+01:00"
        else:
            when = f"/Date({int(e.utc.timestamp() * 1000)})/"
        objs.append(_json_event(e, host, when, with_message=ps7 or i < len(events) - 1))
    text = json.dumps(objs, indent=4)
    if ps7:
        path.write_bytes(_crlf(text).encode("utf-8"))
    else:
        text = text.replace('"/Date(', '"\\/Date(').replace(')/"', ')\\/"')
        path.write_bytes(b"\xff\xfe" + _crlf(text + "\n").encode("utf-16-le"))
    return path


# --- all forms --------------------------------------------------------------------------------

#: file name suffix -> (writer, parser name that must read it)
FORMS = {
    "wevtutil.xml": (write_wevtutil_xml, "event-xml"),
    "rendered.xml": (write_rendered_xml, "event-xml"),
    "eventviewer.csv": (write_viewer_csv, "event-csv"),
    "eventviewer.txt": (lambda p, h: write_viewer_csv(p, h, tab=True), "event-csv"),
    "exportcsv.csv": (write_export_csv, "event-csv"),
    "exportcsv-culture.csv": (lambda p, h: write_export_csv(p, h, culture=True), "event-csv"),
    "copydetails.txt": (write_copy_details, "event-text"),
    "winevent51.json": (write_json, "event-json"),
    "winevent7.json": (lambda p, h: write_json(p, h, ps7=True), "event-json"),
}


def write_samples(dest_dir: Path, host: str) -> list[Path]:
    """Write one file of each Operations Manager export form for `host`; return their paths.

    EVTX is not among them: the format cannot be written here. Names are
    `<host>-OperationsManager-<form>`, e.g. `SRV01-OperationsManager-wevtutil.xml`.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    return [writer(dest_dir / f"{host}-OperationsManager-{suffix}", host) for suffix, (writer, _) in FORMS.items()]
