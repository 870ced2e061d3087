"""The sample Windows 11 host's servicing files (samples/WIN11-APP09): a raw WindowsUpdate ETL, its
ReportingEvents.log and CBS.log, telling one story: a scan that fails on the proxy, then a
cumulative update whose install fails in the servicing stack (0x800F0922). Written in the
shapes of the real files (see parsers/wu_etl.py, reporting_events.py, cbs.py); ids invented.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from etl_writer import EtlWriter, WuEvent

HOST = "WIN11-APP09"
START = datetime(2024, 5, 14, 9, 15, 0, 123_000, tzinfo=UTC)

ETL_EVENTS = [
    ("Shared", "* START * Service startup"),
    ("Agent", "* START * Finding updates CallerId = UpdateOrchestrator  Id = 3 (cV = hT5mQ2wXeR8yUi0o.1.0.0.1)"),
    ("Misc", "Got WU Client/Server URL: https://fe3cr.delivery.mp.microsoft.com/ClientWebService/client.asmx"),
    ("WebServices", "*FAILED* [80072EE2] Web service call. Current service auth scheme=0. Current Proxy auth scheme=0."),
    ("WebServices", "*FAILED* [80072EE2] WebService call failed during NwsCallWithRetries with a transient error."),
    ("Agent", "* END * Finding updates CallerId = UpdateOrchestrator, Id = 3, Exit code = 0x80072EE2 (cV = hT5mQ2wXeR8yUi0o.1.0.0.1)"),
    ("Agent", "* START * Finding updates CallerId = UpdateOrchestrator  Id = 4 (cV = hT5mQ2wXeR8yUi0o.1.0.0.2)"),
    ("Agent", "* END * Finding updates CallerId = UpdateOrchestrator, Id = 4, Exit code = 0x00000000 (cV = hT5mQ2wXeR8yUi0o.1.0.0.2)"),
    ("Agent", "* START * Installing updates CallerId = UpdateOrchestrator"),
    ("Handler", "*FAILED* [800F0922] Install of package Package_for_RollupFix~31bf3856ad364e35~amd64~~22621.3593.1.9 failed"),
    ("Agent", "* END * Installing updates CallerId = UpdateOrchestrator, Exit code = 0x800F0922"),
    ("Shared", "* END * Service exit Exit code = 0x240001"),
]


def etl_events() -> list[WuEvent]:
    return [WuEvent(START + timedelta(seconds=7 * i, microseconds=4321 * i), 7340, 6120 + i % 3, comp, msg,
                    extra_ticks=i % 10) for i, (comp, msg) in enumerate(ETL_EVENTS)]


def etl_file() -> bytes:
    w = EtlWriter(start=START)
    return w.build([w.event(e) for e in etl_events()])


_ZERO = "{00000000-0000-0000-0000-000000000000}"
REPORTS = [
    ("{4C2A7E19-5B3D-4F80-9E61-A2D7C0B3F511}", "2024-05-14 09:15:49:300+0000", "1", "148 [AGENT_DETECTION_FAILED]", "101",
     _ZERO, "0", "80072ee2", "UpdateOrchestrator", "Failure", "Software Synchronization",
     "Windows Update Client failed to detect with error 0x80072ee2."),
    ("{9E07B3D5-2C6A-4E18-8F45-7D1B0A6C3E22}", "2024-05-14 09:16:03:812+0000", "1", "147 [AGENT_DETECTION_FINISHED]", "101",
     _ZERO, "0", "0", "UpdateOrchestrator", "Success", "Software Synchronization",
     "Windows Update Client successfully detected 1 updates."),
    ("{1F8D6A2C-7E4B-4093-B5C1-E3A9D0F72C33}", "2024-05-14 09:16:17:455+0000", "1", "182 [AGENT_INSTALLING_FAILED]", "101",
     "{B5E3C1A7-9D2F-4E60-A8B4-1C7F0E3D5A44}", "1", "800f0922", "UpdateOrchestrator", "Failure", "Content Install",
     "Installation Failure: Windows failed to install the following update with error 0x800F0922: "
     "2024-05 Cumulative Update for Windows 11 Version 22H2 for x64-based Systems (KB5037771)."),
]


def reporting_events_file() -> bytes:
    """UTF-16LE with BOM and CRLF, as the agent writes it."""
    return b"\xff\xfe" + "".join("\t".join(r) + "\r\n" for r in REPORTS).encode("utf-16-le")


CBS_LINES = [
    "2024-05-14 09:16:05, Info                  CBS    Exec: Processing started.  Client: WindowsUpdateAgent, Session: 31108223_3761245520, Package: Package_for_RollupFix~31bf3856ad364e35~amd64~~22621.3593.1.9",
    "2024-05-14 09:16:09, Info                  CSI    00000101 Begin executing advanced installer phase 38 index 112 (sequence 150)",
    "2024-05-14 09:16:15, Error                 CSI    00000102 (F) STATUS_DISK_FULL #3124807# from Windows::Rtl::SystemImplementation::DirectFileSystemProvider::SysCreateFile(...)[gle=0x80070070]",
    "2024-05-14 09:16:15, Error                 CBS    Failed to execute advanced installer phases. [HRESULT = 0x800f0922 - CBS_E_INSTALLERS_FAILED]",
    "2024-05-14 09:16:16, Info                  CBS    Exec: Processing complete, session(Corruption Repairing): 31108223_3761245520 [HRESULT = 0x800f0922 - CBS_E_INSTALLERS_FAILED]",
    "2024-05-14 09:16:16, Info                  CBS    Session: 31108223_3761245520 finalized. Reboot required: no [HRESULT = 0x800f0922 - CBS_E_INSTALLERS_FAILED]",
]


def cbs_file() -> bytes:
    """UTF-8 with BOM and CRLF; local time of the machine, an Azure VM left at UTC."""
    return b"\xef\xbb\xbf" + "".join(line + "\r\n" for line in CBS_LINES).encode("utf-8")


def host_files() -> dict[str, bytes]:
    """The host's files by path under samples/."""
    return {
        f"{HOST}/Windows/Logs/WindowsUpdate/WindowsUpdate.20240514.091500.123.1.etl": etl_file(),
        f"{HOST}/Windows/SoftwareDistribution/ReportingEvents.log": reporting_events_file(),
        f"{HOST}/Windows/Logs/CBS/CBS.log": cbs_file(),
    }
