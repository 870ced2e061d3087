"""Sample Linux Update Management logs for tests and samples/: one failed apt run.

Our own text, shaped after log-formats.md §3 (worker.log: exact from the writer's source;
omsupdatemgmt.log: the inferred shape, since no real copy exists). The story: dpkg was left
interrupted, apt-get refuses every install with return code 100, the runbook retries until the
maintenance window closes, and the hybrid worker reports the job as failed.
"""

from __future__ import annotations

from pathlib import Path

RUNBOOK = "PatchMicrosoftOMSLinuxComputer"
SANDBOX_ID = "8c2f4e1a-5b7d-4c39-9e0f-1a2b3c4d5e6f"
JOB_ID = "f3a9d2c4-7e61-4b58-a0d3-9c8b7a6f5e41"
ACCOUNT_ID = "2b7c9e14-3d5f-4a86-b1c2-d3e4f5a6b7c8"
SUBSCRIPTION_ID = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"
APT_COMMAND = "sudo apt-get -y --only-upgrade true install libssl1.1 openssl linux-image-generic"
LOG_PATH = "/var/opt/microsoft/omsagent/run/automationworker/omsupdatemgmt.log"
BANNER = "-" * 128

#: omsupdatemgmt.log lines. The writer starts every write with "\n", so the file opens with an
#: empty line, and `<Log file was closed.>` is glued to the last line with no newline after it.
OMS_LINES = [
    "",
    f"2024-05-14 02:00:07> {BANNER}",
    f"2024-05-14 02:00:07> Starting patch operation. [Runbook={RUNBOOK}][Operation=Installation]",
    "\tDEBUG: Configuration: maintenanceWindow=PT1H50M, rebootSetting=IfRequired, classifications=Critical,Security",
    "\tVERBOSE: Computer=lnx-web-02, Distribution=Ubuntu 18.04.6 LTS (bionic)",
    "2024-05-14 02:00:08> Maintenance window ends at 2024-05-14 03:50:07 UTC.",
    "2024-05-14 02:00:09> Package manager detected: apt",
    "2024-05-14 02:00:11> Refreshing the package list: sudo apt-get -q update",
    "\tDEBUG: apt-get update returned 0",
    "2024-05-14 02:00:31> Found 3 packages to install: libssl1.1, openssl, linux-image-generic",
    f"2024-05-14 02:00:34> [ERROR] Package manager was invoked using: {APT_COMMAND}"
    " - Return code from package manager: 100 - Output from package manager: ",
    "|\tReading package lists...",
    "|\tE: dpkg was interrupted, you must manually run 'sudo dpkg --configure -a' to correct the problem.",
    f"2024-05-14 02:00:34> ERROR: Unexpected return code (100) from package manager on command: {APT_COMMAND}",
    "2024-05-14 02:00:35> WARNING: Package manager on machine is not healthy. To fix, please run: "
    "sudo dpkg --configure -a",
    "2024-05-14 02:00:35> Retrying the installation in 5 minutes.",
    "2024-05-14 02:05:35> Retrying the installation (attempt 2).",
    f"2024-05-14 02:05:36> ERROR: Unexpected return code (100) from package manager on command: {APT_COMMAND}",
    "\tVERBOSE: |- Package failed to install: libssl1.1 (1.1.1-1ubuntu2.1~18.04.23). ",
    "\t |- Error code: 100. Command used: sudo apt-get -y --only-upgrade true install libssl1.1",
    "2024-05-14 03:50:08> Stopped patch installation as it is past the maintenance window cutoff time.",
    "2024-05-14 03:50:09> ERROR: Operation status was marked as failed because: "
    "[X] a failure occurred during the operation  [X] maintenance window exceeded ",
    f"2024-05-14 03:50:09> TO TROUBLESHOOT, please save this file before the next invocation: {LOG_PATH}"
    "<Log file was closed.>",
]


def _worker(ts: str, pid: int, component: str, message: str) -> str:
    return f"{ts} ({pid}){component} : {message}"


def _job_fields() -> str:
    return (
        f"[subscriptionId={SUBSCRIPTION_ID}][accountId={ACCOUNT_ID}][accountName=aa-patching-weu]"
        f"[sandboxId={SANDBOX_ID}][jobId={JOB_ID}][runbookDefinitionKind=5][runbookName={RUNBOOK}]"
        "[runbookVersionId=]"
    )


#: worker.log.1: the older rotation; a routine start and a transient JRDS error with its traceback.
WORKER_OLD_LINES = [
    _worker("2024-05-13 21:14:02", 1876, "worker", "Worker starting. [workerVersion=1.7.5.0]"),
    _worker(
        "2024-05-13 21:14:02",
        1876,
        "worker",
        "Worker general telemetry. [workerVersion=1.7.5.0][workerType=auto-registered]"
        "[username=nxautomation][oms_agent_id=0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b]",
    ),
    _worker("2024-05-13 21:14:03", 1876, "worker", "[DEBUG] Polling JRDS for sandbox actions."),
    _worker(
        "2024-05-13 23:40:17",
        1876,
        "worker",
        "Worker safe loop non terminal exception. [exception=<urlopen error [Errno 110] Connection timed out>]",
    ),
    "Traceback (most recent call last):",
    '  File "/opt/microsoft/omsconfig/modules/nxOMSAutomationWorker/DSCResources/'
    'MSFT_nxOMSAutomationWorkerResource/automationworker/3.x/worker/httpclientfactory.py", line 64, in get',
    "    response = self.opener.open(request, timeout=self.timeout)",
    "urllib.error.URLError: <urlopen error [Errno 110] Connection timed out>",
    _worker("2024-05-13 23:45:17", 1876, "worker", "[WARNING] JRDS answered after 3 retries."),
    _worker("2024-05-13 23:45:18", 1876, "worker", "Get sandbox actions found 0 new action(s)."),
]

#: worker.log: the Update Management job (runbook PatchMicrosoftOMSLinuxComputer) fails.
WORKER_LINES = [
    _worker("2024-05-14 01:59:58", 1876, "worker", "Get sandbox actions found 1 new action(s)."),
    _worker("2024-05-14 01:59:58", 1876, "worker", f"Starting sandbox process. [sandboxId={SANDBOX_ID}]"),
    _worker("2024-05-14 01:59:59", 1876, "worker", f"Sandbox process started. [sandboxId={SANDBOX_ID}][pId=30412]"),
    _worker(
        "2024-05-14 02:00:01",
        30412,
        "sandbox",
        f"Sandbox process starting. [sandboxId={SANDBOX_ID}][pId=30412][workerType=auto-registered]",
    ),
    _worker(
        "2024-05-14 02:00:03",
        30412,
        "sandbox",
        f"Job started. [sandboxId={SANDBOX_ID}][jobId={JOB_ID}][runbookDefinitionKind=5]"
        f"[runbookName={RUNBOOK}][runbookVersionId=]",
    ),
    "Runbook output: starting patch run on lnx-web-02",
    _worker("2024-05-14 03:50:10", 30412, "sandbox", "Exception encountered. "),
    "Traceback (most recent call last):",
    '  File "/var/opt/microsoft/omsagent/run/automationworker/sandboxes/'
    f'{SANDBOX_ID}/{RUNBOOK}.py", line 2318, in main',
    "    raise Exception('Patch operation failed: maintenance window exceeded')",
    "Exception: Patch operation failed: maintenance window exceeded",
    _worker(
        "2024-05-14 03:50:10",
        30412,
        "sandbox",
        f"Job state changed to failed. {_job_fields()}[exception=Patch operation failed: maintenance window exceeded]",
    ),
    _worker("2024-05-14 03:50:11", 30412, "sandbox", f"Job unloaded. [sandboxId={SANDBOX_ID}][jobId={JOB_ID}]"),
    _worker(
        "2024-05-14 03:50:12",
        1876,
        "worker",
        f"Sandbox process exited. [sandboxId={SANDBOX_ID}][pId=30412][exitCode=0]",
    ),
    _worker("2024-05-14 03:50:12", 1876, "worker", f"Worker stopped tracking sandbox. [sandboxId={SANDBOX_ID}]"),
]


def write_linux_samples(dest_dir: Path) -> list[Path]:
    """Write omsupdatemgmt.log, worker.log and worker.log.1 into `dest_dir`; return their paths.

    Files are UTF-8 with LF endings, as the Linux agent writes them.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "omsupdatemgmt.log": "\n".join(OMS_LINES),  # no final newline: the close marker ends the file
        "worker.log": "\n".join(WORKER_LINES) + "\n",
        "worker.log.1": "\n".join(WORKER_OLD_LINES) + "\n",
    }
    paths = []
    for name, text in files.items():
        path = dest_dir / name
        path.write_bytes(text.encode("utf-8"))
        paths.append(path)
    return paths
