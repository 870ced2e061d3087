"""Build samples/fleet.zip and samples/fleet.tar.gz: byte-for-byte reproducible demo bundles.

Each bundle holds one Windows host (both WindowsUpdate.log forms, several event 4502 export
forms) and one Linux host (omsupdatemgmt.log, worker.log). Also writes the Azure Update Manager
host folders samples/AUM-LNX07 and samples/ARC-WIN08 (tests/azure_fixtures.py) and the Windows 11
host samples/WIN11-APP09 (raw ETL, ReportingEvents.log, CBS.log: tests/servicing_fixtures.py). Run from the repo root:
    .venv/bin/python tests/build_samples.py
"""

from __future__ import annotations

import gzip
import io
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from azure_fixtures import HOSTS  # noqa: E402
from event_fixtures import write_samples  # noqa: E402
from linux_fixtures import write_linux_samples  # noqa: E402
from servicing_fixtures import host_files as servicing_host_files  # noqa: E402

SAMPLES = HERE.parent / "samples"
FIXED_TIME = (2024, 6, 1, 12, 0, 0)
LINUX_DIR = "var/opt/microsoft/omsagent/run/automationworker"

#: which event export forms go in which bundle (by file-name suffix of write_samples)
ZIP_FORMS = ("wevtutil.xml", "eventviewer.csv", "winevent51.json")
TAR_FORMS = ("rendered.xml", "exportcsv.csv", "copydetails.txt", "eventviewer.txt")


#: What an admin copies out of the portal: the update deployment's job output for this machine.
PORTAL_JOB_OUTPUT = """\
Update deployment 'Patch-Tuesday-SQL' run 2024-06-11T22:00:00Z
2024-06-11 22:00:04 Machine WIN-SQL05: Failed to start
Failed to start the runbook. Check the parameters passed. RunbookName Patch-MicrosoftOMSComputer. Exception \
You have requested to create a runbook job on a hybrid worker group that does not exist.
2024-06-12 00:05:11 Machine WIN-SQL05 status: MaintenanceWindowExceeded
2024-06-12 00:05:11 Error details: Exception from HRESULT: 0x8024402C
2024-06-12 00:05:12 Job completed with status Failed
"""


def _members(windows_host: str, linux_host: str, forms: tuple[str, ...], wu_sources: dict[str, Path]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        for p in write_samples(tmpdir / "ev", windows_host):
            if p.name.endswith(forms):
                out[f"{windows_host}/OperationsManager/{p.name.removeprefix(windows_host + '-')}"] = p.read_bytes()
        for name, src in wu_sources.items():
            out[f"{windows_host}/{name}"] = src.read_bytes()
        for p in write_linux_samples(tmpdir / "lx"):
            out[f"{linux_host}/{LINUX_DIR}/{p.name}"] = p.read_bytes()
    return dict(sorted(out.items()))


def build_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return buf.getvalue()


def build_tgz(members: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1717243200, 0o644
            info.uname = info.gname = "root"
            t.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def bundles() -> dict[str, bytes]:
    """The bundle files by name, built in memory."""
    zip_members = _members("HYB-WORKER03", "LNX-WEB04", ZIP_FORMS, {
        "Windows/WindowsUpdate.log": SAMPLES / "WIN10-APP02" / "WindowsUpdate.log",
        "Windows.old/Windows/WindowsUpdate.log": SAMPLES / "SRV-WSUS01" / "WindowsUpdate.log",
    })
    tar_members = _members("WIN-SQL05", "LNX-DB06", TAR_FORMS, {
        "WindowsUpdate.log": SAMPLES / "SRV-WSUS01" / "WindowsUpdate.log",
        "WindowsUpdate-Get-WindowsUpdateLog.log": SAMPLES / "WIN10-APP02" / "WindowsUpdate.log",
    })
    tar_members["WIN-SQL05/portal-job-output.txt"] = PORTAL_JOB_OUTPUT.encode("utf-8")
    tar_members = dict(sorted(tar_members.items()))
    return {"fleet.zip": build_zip(zip_members), "fleet.tar.gz": build_tgz(tar_members)}


def host_folders() -> dict[str, bytes]:
    """The Azure Update Manager host folders' files, and the Windows 11 host's servicing files
    (tests/servicing_fixtures.py), by path under samples/."""
    azure = {f"{host}/{rel}": text.encode("utf-8") for host, files in HOSTS.items() for rel, text in files.items()}
    return {**azure, **servicing_host_files()}


def main() -> None:
    for name, data in {**bundles(), **host_folders()}.items():
        (SAMPLES / name).parent.mkdir(parents=True, exist_ok=True)
        (SAMPLES / name).write_bytes(data)
        print(f"wrote samples/{name} ({len(data):,} bytes)")


if __name__ == "__main__":
    main()
