"""Azure Update Manager, guest agent and Arc logs, generated the way their writers write them.

No real LinuxPatchExtension log or status file is public, so these follow the writers' code
(Azure/LinuxPatchExtension: StdOutFileMirror, CompositeLogger, the extension's Logger and
StatusHandler): every write of the core starts with "\\n", debug text is written untimed, the
close marker is glued to the last line, the ext.log carries repr() of each message followed by
the plain text, and the status file is one json.dumps line. waagent.log and the Arc logs follow
the agents' formats (see parsers/waagent.py and parsers/arclog.py); the WindowsPatchExtension
files are a guess at a timestamped log, as the parser's docstring says.

Two hosts, each with at least one failure: AUM-LNX07 (an Azure VM: a patch installation that hit
a broken dpkg and ran out of its maintenance window) and ARC-WIN08 (an Arc-enabled Windows
server whose patch extension could not reach Windows Update through its proxy).
"""

from __future__ import annotations

import json
from pathlib import Path

EXT = "Microsoft.CPlat.Core.LinuxPatchExtension"
EXT_VERSION = "1.6.48"
CORE_LOG_PATH = f"/var/log/azure/{EXT}/3.core.log"
APT_INSTALL = "sudo apt-get -y --only-upgrade true install libssl1.1=1.1.1f-1ubuntu2.22 openssl=1.1.1f-1ubuntu2.22"
ACTIVITY_ID = "6f1c2b3a-9d4e-4f70-8a1b-2c3d4e5f6a7b"
MAINTENANCE_RUN_ID = "0d9e8f7a-6b5c-4d3e-9f2a-1b0c9d8e7f6a"
DASHES = "-" * 128
#: Our own start-up title, written where the core writes its ASCII-art splash.
SPLASH = ("  ___  ___  __  __ ", " | _ \\/ _ \\|  \\/  |  patch management core", " |  _/ (_) | |\\/| |", " |_|  \\___/|_|  |_|")


class CoreLog:
    """Writes like the core's StdOutFileMirror + CompositeLogger (append mode, "\\n" first)."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, ts: str, text: str) -> CoreLog:
        """One stdout write as the mirror records it, line breaks and all."""
        self.text += f"\n{ts}> {text}"
        return self

    def log(self, ts: str, message: str) -> CoreLog:
        """The core's log(): one print, so one stamped line, per line of the message."""
        for line in message.splitlines():
            self.text += f"\n{ts}> {line}"
        return self

    def error(self, ts: str, message: str) -> CoreLog:
        return self.log(ts, "ERROR:" + " ".join(message.split("\n")).strip())

    def warning(self, ts: str, message: str) -> CoreLog:
        return self.log(ts, "WARNING:" + " ".join(message.split("\n")).strip())

    def debug(self, message: str, kind: str = "DEBUG") -> CoreLog:
        self.text += f"\n\t{kind}: " + "\n\t".join(message.strip().splitlines()).strip()
        return self

    def close(self) -> str:
        return self.text + "<Log file was closed.>"


def core_log() -> str:
    c = CoreLog()
    c.write("2024-06-11T22:00:05Z", "\n" + DASHES + "\n" + "\n".join(SPLASH) + "\n" + DASHES)
    c.log("2024-06-11T22:00:05Z", f"Patch operation starting. [Operation=Installation][Sequence=3][Activity={ACTIVITY_ID}]")
    c.debug("Settings read from 3.settings:\nmaintenanceWindow=PT2H, rebootSetting=IfRequired\n"
            "classificationsToInclude=Critical,Security")
    c.log("2024-06-11T22:00:06Z", "Package manager detected: apt")
    c.debug("Ubuntu 20.04.6 LTS (focal), Python 3.8.10", kind="VERBOSE")
    c.log("2024-06-11T22:00:07Z", "Maintenance window ends at 2024-06-12T00:00:05Z (120 minutes).")
    c.log("2024-06-11T22:00:31Z", "Patches to install: 3 [libssl1.1, openssl, linux-image-generic]")
    c.error("2024-06-11T22:00:44Z", f"Package manager was invoked using: {APT_INSTALL}\n - Return code from "
            "package manager: 100\n - Output from package manager: E: dpkg was interrupted, you must manually "
            "run 'sudo dpkg --configure -a' to correct the problem.")
    c.warning("2024-06-11T22:00:44Z", "Package manager on machine is not healthy. To fix, please run: "
              "sudo dpkg --configure -a")
    c.log("2024-06-11T22:00:45Z", "Retrying the installation in 10 minutes.")
    c.debug("Pending patches: libssl1.1, openssl, linux-image-generic")
    c.error("2024-06-11T23:50:12Z", f"Unexpected return code (100) from package manager on command: {APT_INSTALL}")
    c.log("2024-06-12T00:00:06Z", "Stopped patch installation as it is past the maintenance window cutoff time.")
    c.error("2024-06-12T00:00:07Z", "Operation status was marked as failed because: [X] a failure occurred during "
            "the operation  [X] maintenance window exceeded")
    c.log("2024-06-12T00:00:07Z", f"TO TROUBLESHOOT, please save this file before the next invocation: {CORE_LOG_PATH}")
    return c.close()


def ext_log() -> str:
    """The extension wrapper's log: each message as repr() and then as plain text on one line."""
    out = ""

    def say(ts: str, message: str, raw: str | None = None) -> None:
        nonlocal out
        out += f"\n{ts}> {message!r}" + (message if raw is None else raw)

    say("2024-06-11 22:00:01", DASHES + "\n", raw="")
    say("2024-06-11 22:00:01", "Enable requested. [Sequence=3][Operation=Installation]")
    out += "DEBUG: Handler environment read from HandlerEnvironment.json"
    say("2024-06-11 22:00:02", "Retaining the 10 newest core and ext logs.")
    say("2024-06-11 22:00:03", "Core process started. [Pid=24117][Python=python3]")
    say("2024-06-12 00:00:09", "ERROR: Core process finished with failures. [ExitCode=1][Operation=Installation]")
    say("2024-06-12 00:00:09", "WARNING: Status file reports 'error' for PatchInstallationSummary.")
    return out + "\n"


def status_file() -> str:
    """The status the core leaves for the guest agent: a one-element array on one line."""
    summary = {
        "installationActivityId": ACTIVITY_ID,
        "rebootStatus": "Required",
        "maintenanceWindowExceeded": True,
        "notSelectedPatchCount": 1,
        "excludedPatchCount": 0,
        "pendingPatchCount": 2,
        "installedPatchCount": 1,
        "failedPatchCount": 1,
        "patches": [
            {"patchId": "libssl1.1_1.1.1f-1ubuntu2.22_Ubuntu_20.04", "name": "libssl1.1",
             "version": "1.1.1f-1ubuntu2.22", "classifications": ["Security"], "patchInstallationState": "Failed"},
            {"patchId": "ca-certificates_20230311ubuntu0.20.04.1_Ubuntu_20.04", "name": "ca-certificates",
             "version": "20230311ubuntu0.20.04.1", "classifications": ["Security"],
             "patchInstallationState": "Installed"},
            {"patchId": "openssl_1.1.1f-1ubuntu2.22_Ubuntu_20.04", "name": "openssl", "version": "1.1.1f-1ubuntu2.22",
             "classifications": ["Security"], "patchInstallationState": "Pending"},
            {"patchId": "linux-image-generic_5.4.0.182.180_Ubuntu_20.04", "name": "linux-image-generic",
             "version": "5.4.0.182.180", "classifications": ["Critical"], "patchInstallationState": "Pending"},
            {"patchId": "vim_2:8.1.2269-1ubuntu5.23_Ubuntu_20.04", "name": "vim", "version": "2:8.1.2269-1ubuntu5.23",
             "classifications": ["Other"], "patchInstallationState": "NotSelected"},
        ],
        "startTime": "2024-06-11T22:00:05.381205Z",
        "lastModifiedTime": "2024-06-12T00:00:07Z",
        "maintenanceRunId": MAINTENANCE_RUN_ID,
        "errors": {
            "code": 1,
            "details": [
                {"code": "PACKAGE_MANAGER_FAILURE", "message": "Package manager on machine is not healthy. "
                 "To fix, please run: sudo dpkg --configure -a"},
                {"code": "OPERATION_FAILED", "message": "Stopped patch installation as it is past the maintenance "
                 "window cutoff time."},
            ],
            "message": f"2 error/s reported. The latest 2 error/s are shared in detail. To view all errors, "
                       f"review this log file on the machine: {CORE_LOG_PATH}",
        },
    }
    health = {"patchVersion": "2024.06.11", "shouldReportToHealthStore": False}
    doc = [{
        "version": 1.0,
        "timestampUTC": "2024-06-12T00:00:07Z",
        "status": {
            "name": "Azure Patch Management",
            "operation": "Installation",
            "status": "error",
            "code": 1,
            "formattedMessage": {"lang": "en-US", "message": ""},
            "substatus": [
                {"name": "PatchInstallationSummary", "status": "error", "code": 1,
                 "formattedMessage": {"lang": "en-US", "message": json.dumps(summary)}},
                {"name": "PatchMetadataForHealthStore", "status": "success", "code": 0,
                 "formattedMessage": {"lang": "en-US", "message": json.dumps(health)}},
            ],
        },
    }]
    return json.dumps(doc)


def waagent_log() -> str:
    """A newer agent (ISO stamps, thread name repeated as the prefix) whose extension run failed."""
    h = f"[{EXT}-{EXT_VERSION}]"
    lines = [
        "2024-06-11T21:59:41.102917Z INFO Daemon Daemon Azure Linux Agent Version: 2.9.1.1",
        "2024-06-11T21:59:41.110233Z INFO Daemon Daemon OS: ubuntu 20.04",
        "2024-06-11T21:59:55.502811Z INFO ExtHandler ExtHandler ProcessExtensionsGoalState started [incarnation_14]",
        f"2024-06-11T21:59:58.200377Z INFO ExtHandler ExtHandler {h} Target handler state: enabled [incarnation_14]",
        f"2024-06-11T21:59:58.210018Z INFO ExtHandler ExtHandler {h} [Enable] current handler state is: enabled",
        f"2024-06-11T22:00:00.982114Z INFO ExtHandler ExtHandler {h} Executing command: /var/lib/waagent/"
        f"{EXT}-{EXT_VERSION}/MsftLinuxPatchExt.py -enable",
        "2024-06-11T22:30:00.440102Z INFO MonitorHandler ExtHandler Stopped tracking cgroup walinuxagent.service",
        f"2024-06-12T00:00:10.118245Z ERROR ExtHandler ExtHandler Event: name={EXT}, op=Enable, message="
        f"[ExtensionOperationError] Non-zero exit code: 1, /var/lib/waagent/{EXT}-{EXT_VERSION}/MsftLinuxPatchExt.py"
        " -enable",
        "[stdout]",
        "Patch operation finished with errors. See 3.core.log.",
        "",
        "[stderr]",
        "",
        ", duration=7209136",
        "2024-06-12T00:00:10.120771Z WARNING ExtHandler ExtHandler ProcessExtensionsGoalState completed with "
        "errors [incarnation_14 7214618 ms]",
    ]
    return "\n".join(lines) + "\n"


#: Agents before 2.2.4x: slashes, no `T`/`Z`, and the logger prefix only (oldest: none at all).
WAAGENT_OLD_LINES = [
    "2019/05/01 10:20:30.123456 INFO Daemon Azure Linux Agent Version:2.2.38",
    "2019/05/01 10:20:31.000001 WARNING Incarnation 2 failed to fetch the extension manifest",
    "2019/05/01 10:20:32.500000 ERROR Event: name=WALinuxAgent, op=Download, message=Download failed",
    "Traceback (most recent call last):",
    '  File "bin/WALinuxAgent-2.2.38-py2.7.egg/azurelinuxagent/ga/update.py", line 312, in run',
    "2019/05/01 10:20:33.000000 INFO ExtHandler [Microsoft.OSTCExtensions.VMAccessForLinux-1.5.2] Target handler state: enabled",
]


def himds_log() -> str:
    """Arc on Windows: local times with their offset; the token refresh is refused."""
    lines = [
        'time="2024-06-11T21:55:00-07:00" level=info msg="Starting HIMDS service" version=1.41.02664.1629',
        'time="2024-06-11T21:55:01-07:00" level=info msg="Loaded agent configuration" cloud=AzureCloud '
        'location=westus2',
        'time="2024-06-11T21:57:12.250-07:00" level=warning msg="Heartbeat to the Connected Machine service failed, '
        'retrying" attempt=1 error="context deadline exceeded"',
        'time="2024-06-11T21:58:40-07:00" level=error msg="Failed to refresh the managed identity token: '
        '\\"AADSTS700027: certificate expired\\"" component=identity',
        'time="2024-06-11T22:05:00-07:00" level=info msg="Agent status" status=Connected',
    ]
    return "\n".join(lines) + "\n"


def azcmagent_log() -> str:
    lines = [
        'time="2024-06-11T21:50:02-07:00" level=info msg="azcmagent show" Version=1.41.02664.1629',
        'time="2024-06-11T21:50:03-07:00" level=error msg="Unable to reach the Arc service endpoint '
        'https://gbl.his.arc.azure.com" Code=AZCM0026 error="proxyconnect tcp: dial tcp 10.0.0.4:3128: connect: '
        'connection refused"',
    ]
    return "\n".join(lines) + "\n"


def windows_update_extension_log() -> str:
    """Our guess at WindowsUpdateExtension.log: ISO stamps, a level word, a .NET stack below errors."""
    lines = [
        "2024-06-12 05:00:02.118 [Information] WindowsPatchExtension 1.5.61 enable: operation Installation, "
        "sequence 7",
        "2024-06-12 05:00:03.502 [Information] Searching for updates (categories: Critical, Security)",
        "2024-06-12 05:00:48.990 [Error] Search for updates failed with HResult 0x8024402C",
        "System.Runtime.InteropServices.COMException (0x8024402C): Exception from HRESULT: 0x8024402C",
        "   at WUApiLib.IUpdateSearcher.Search(String criteria)",
        "2024-06-12 05:00:49.004 [Warning] Installation skipped: the update search did not complete",
        "2024-06-12 05:00:49.020 [Information] Status written: error (code 1)",
    ]
    return "\r\n".join(lines) + "\r\n"


def command_execution_log() -> str:
    lines = [
        "6/12/2024 5:00:01 AM Executing: enable (sequence 7)",
        "6/12/2024 5:00:49 AM Command enable exited with code 1",
    ]
    return "\r\n".join(lines) + "\r\n"


#: Host folder -> relative path -> text, as the machines keep them.
HOSTS: dict[str, dict[str, str]] = {
    "AUM-LNX07": {
        f"var/log/azure/{EXT}/3.core.log": core_log(),
        f"var/log/azure/{EXT}/3.ext.log": ext_log(),
        f"var/lib/waagent/{EXT}-{EXT_VERSION}/status/3.status": status_file(),
        "var/log/waagent.log": waagent_log(),
    },
    "ARC-WIN08": {
        "ProgramData/AzureConnectedMachineAgent/Log/himds.log": himds_log(),
        "ProgramData/AzureConnectedMachineAgent/Log/azcmagent.log": azcmagent_log(),
        "ProgramData/GuestConfig/extension_logs/Microsoft.CPlat.Core.WindowsPatchExtension/"
        "WindowsUpdateExtension.log": windows_update_extension_log(),
        "ProgramData/GuestConfig/extension_logs/Microsoft.CPlat.Core.WindowsPatchExtension/"
        "CommandExecution.log": command_execution_log(),
    },
}


def write_azure_samples(dest: Path) -> dict[str, Path]:
    """Write every host's files under `dest/<host>/...`; returns them by base name."""
    out: dict[str, Path] = {}
    for host, files in HOSTS.items():
        for rel, text in files.items():
            path = dest / host / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("utf-8"))
            out[path.name] = path
    return out
