"""Watch mode follows the Azure Update Manager, waagent and Arc logs line by line, like
WindowsUpdate.log: real files, real `Watcher.cycle()` passes, and one real `umtriage watch` with
its watchdog observer. After each story the watch tables must equal a batch scan of the final
files; the status files (JSON, rewritten whole by the extension) give each content's records once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import polars as pl
from azure_fixtures import EXT, EXT_VERSION, CoreLog, status_file
from test_watch import (
    _cmd,
    _wait,
    append,
    assert_same_tables,
    batch,
    complete_lines,
    lines_by_source,
    make_watcher,
    summary,
)
from umtriage.pipeline.tail import FOLDING, TAILABLE

LNX = f"AUM-LNX07/var/log/azure/{EXT}"
STATUS = f"AUM-LNX07/var/lib/waagent/{EXT}-{EXT_VERSION}/status/3.status"
ARC = "ARC-WIN08/ProgramData/AzureConnectedMachineAgent/Log"
WPE = "ARC-WIN08/ProgramData/GuestConfig/extension_logs/Microsoft.CPlat.Core.WindowsPatchExtension"
APT = "sudo apt-get -y --only-upgrade true install openssl=1.1.1f-1ubuntu2.22"


# -- content: longer files written the way the fixtures' writers write -----------------------
def _stamp(i: int, sep: str = "T", z: str = "Z") -> str:
    return f"2024-06-11{sep}{22 + i // 3600:02d}:{(i // 60) % 60:02d}:{i % 60:02d}{z}"


def core_text(n: int, seed: int) -> str:
    """A core.log: every write starts with a newline, so the last line never has one."""
    rng = random.Random(seed)
    c = CoreLog()
    c.write(_stamp(0), "\n" + "-" * 128 + "\n  patch management core\n" + "-" * 128)
    for i in range(n):
        r = rng.random()
        if r < 0.2:
            c.error(_stamp(i), f"Unexpected return code (100) from package manager on command: {APT}")
        elif r < 0.3:
            c.warning(_stamp(i), "Package manager on machine is not healthy. To fix, please run: sudo dpkg --configure -a")
        elif r < 0.35:
            c.log(_stamp(i), "Stopped patch installation as it is past the maintenance window cutoff time.")
        else:
            c.log(_stamp(i), f"Retrying the installation (attempt {i}).")
        if rng.random() < 0.4:
            c.debug(f"Pending patches: libssl1.1, openssl\nstep {i}", kind=rng.choice(["DEBUG", "VERBOSE"]))
    return c.close()


def ext_text(n: int) -> str:
    out = ""
    for i in range(n):
        msg = "ERROR: Core process finished with failures. [ExitCode=1]" if i % 7 == 3 else f"Heartbeat {i}."
        out += f"\n{_stamp(i, ' ', '')}> {msg!r}{msg}"
    return out + "\n"


def waagent_text(n: int, seed: int, hour: int = 21) -> str:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        ts = f"2024-06-11T{hour:02d}:{(i // 60) % 60:02d}:{i % 60:02d}.{rng.randrange(10**6):06d}Z"
        if rng.random() < 0.2:
            lines += [f"{ts} ERROR ExtHandler ExtHandler Event: name={EXT}, op=Enable, message=[ExtensionOperationError]"
                      f" Non-zero exit code: 1, MsftLinuxPatchExt.py -enable", "[stdout]", f"step {i} failed: 0x80072EE2", "",
                      "[stderr]", ", duration=720"]
        else:
            lines.append(f"{ts} INFO ExtHandler ExtHandler ProcessExtensionsGoalState started [incarnation_{i}]")
    return "\n".join(lines) + "\n"


def arc_text(n: int, seed: int, name: str = "himds") -> str:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        ts = f"2024-06-11T21:{(i // 60) % 60:02d}:{i % 60:02d}-07:00"
        if rng.random() < 0.2:
            lines.append(f'time="{ts}" level=error msg="Failed to refresh the managed identity token ({name} {i}): 0x80072EFD" '
                         'component=identity')
            if rng.random() < 0.5:
                lines += ["panic: runtime error: invalid memory address", "goroutine 1 [running]:", "main.main()"]
        else:
            lines.append(f'time="{ts}" level=info msg="Agent status" status=Connected n={i}')
    return "\n".join(lines) + "\n"


def wpe_text(n: int, seed: int) -> str:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        ts = f"2024-06-12 05:{(i // 60) % 60:02d}:{i % 60:02d}.{rng.randrange(1000):03d}"
        if rng.random() < 0.25:
            lines += [f"{ts} [Error] Search for updates failed with HResult 0x8024402C",
                      "System.Runtime.InteropServices.COMException (0x8024402C): Exception from HRESULT: 0x8024402C",
                      "   at WUApiLib.IUpdateSearcher.Search(String criteria)"]
        else:
            lines.append(f"{ts} [Information] Searching for updates, step {i}")
    return "\r\n".join(lines) + "\r\n"


def status_text(state: str, failed: int) -> str:
    """A status file after a run: `failed` failed patches, the rest installed."""
    doc = json.loads(status_file())
    top = doc[0]["status"]
    top["status"] = state
    summary_ = json.loads(top["substatus"][0]["formattedMessage"]["message"])
    for k, p in enumerate(summary_["patches"]):
        p["patchInstallationState"] = "Failed" if k < failed else "Installed"
    summary_["failedPatchCount"] = failed
    if not failed:
        summary_["errors"] = {"code": 0, "details": [], "message": ""}
    top["substatus"][0]["formattedMessage"]["message"] = json.dumps(summary_)
    return json.dumps(doc)


#: logical path -> (bytes, encoding, parser the batch scan picks)
def files() -> dict[str, tuple[bytes, str, str]]:
    return {
        f"{LNX}/3.core.log": (core_text(150, 1).encode(), "utf-8", "linuxpatchext"),
        f"{LNX}/3.ext.log": (ext_text(80).encode(), "utf-8", "linuxpatchext"),
        "AUM-LNX07/var/log/waagent.log": (waagent_text(120, 2).encode(), "utf-8", "waagent"),
        f"{ARC}/himds.log": (arc_text(120, 3).encode(), "utf-8", "arc"),
        f"{ARC}/azcmagent.log": (arc_text(40, 4, "azcmagent").encode(), "utf-8", "arc"),
        f"{WPE}/WindowsUpdateExtension.log": (b"\xff\xfe" + wpe_text(90, 5).encode("utf-16-le"), "utf-16-le",
                                              "windowspatchext"),
        f"{WPE}/CommandExecution.log": (wpe_text(30, 6).encode(), "utf-8", "windowspatchext"),
    }


def test_the_azure_line_formats_are_followed_and_folding() -> None:
    assert {"linuxpatchext", "windowspatchext", "waagent", "arc"} <= FOLDING <= TAILABLE
    assert "patchext-status" not in TAILABLE  # a document: parsed whole


def test_appends_in_random_pieces_are_read_incrementally(tmp_path: Path) -> None:
    """Pieces cut anywhere (mid-line, mid-UTF-16 unit): at every cycle each file counts exactly
    its complete lines, each is a followed entry whose checkpoint moves forward (never a whole
    re-read), and at the end the tables equal a batch scan."""
    root, out = tmp_path / "in", tmp_path / "out"
    data = files()
    for logical in data:
        (root / logical).parent.mkdir(parents=True, exist_ok=True)
    w = make_watcher(root, out)
    rng = random.Random(11)
    written = dict.fromkeys(data, 0)
    offsets: dict[str, list[int]] = {k: [] for k in data}
    while any(written[k] < len(d) for k, (d, _, _) in data.items()):
        for k, (d, _, _) in data.items():
            if written[k] < len(d) and rng.random() < 0.7:
                n = rng.choice([1, 3, rng.randint(1, 200), rng.randint(200, 2500)])
                append(root / k, d[written[k]: written[k] + n])
                written[k] += n
        w.cycle()
        got = lines_by_source(out)
        for k, (d, enc, _) in data.items():
            assert got.get(k, 0) == complete_lines(d[: written[k]], enc), (k, got.get(k), written[k])
        for t in w.state.tails.values():
            offsets[t.logical].append(t.offset)
    assert w.whole_scans == 0
    tails = {t.logical: t for t in w.state.tails.values()}
    for k, (_, _, parser) in data.items():
        assert tails[k].parser == parser, k
        assert offsets[k] == sorted(offsets[k]) and offsets[k][-1] > offsets[k][0], k  # committed as it grew
    w.cycle(final=True)  # the core.log's last line has no newline: counted at the flush
    s = summary(out)
    assert s["lines"] == sum(complete_lines(d, enc) for d, enc, _ in data.values()) + 1
    assert_same_tables(out, batch(root, tmp_path))
    formats = set(pl.read_parquet(out / "matches.parquet")["format"])
    assert {"linuxpatchext", "waagent", "arc", "windowspatchext"} <= formats


def test_rotation_truncation_and_rewrites(tmp_path: Path) -> None:
    """waagent.log renamed by logrotate, himds.log copied and truncated, a core.log rewritten in
    place for the next run, WindowsUpdateExtension.log renamed to a name that is no longer its
    format's: each as a batch scan of the final files sees it."""
    root, out = tmp_path / "in", tmp_path / "out"
    for d in (LNX, ARC, WPE, "AUM-LNX07/var/log"):
        (root / d).mkdir(parents=True, exist_ok=True)
    w = make_watcher(root, out)
    wa, hi, core = root / "AUM-LNX07/var/log/waagent.log", root / ARC / "himds.log", root / LNX / "3.core.log"
    wpe = root / WPE / "WindowsUpdateExtension.log"
    first = waagent_text(60, 21).encode()
    wa.write_bytes(first[:2000])
    hi.write_bytes(arc_text(50, 22).encode())
    core.write_bytes(core_text(40, 23).encode())
    wpe.write_bytes(wpe_text(30, 24).encode())
    w.cycle()
    append(wa, first[2000:])  # the rest, still unread when it is rotated
    wa.rename(wa.with_name("waagent.log.1"))
    wa.write_bytes(waagent_text(20, 25, hour=23).encode())
    (root / ARC / "himds.log.1").write_bytes(hi.read_bytes())  # copytruncate
    with open(hi, "r+b") as f:
        f.truncate(0)
    append(hi, arc_text(15, 26).encode())
    w.cycle()
    append(core, core_text(5, 27).encode())
    w.cycle()
    with open(core, "r+b") as f:  # the next run writes the same splash first
        f.truncate(0)
        f.write(core_text(60, 28).encode())
    wpe.rename(wpe.with_name("WindowsUpdateExtension.old"))
    w.cycle()
    w.cycle(final=True)
    assert_same_tables(out, batch(root, tmp_path))
    reasons = [e["reason"] for e in w.events]
    assert reasons.count("renamed") >= 3 and "rewritten" in reasons
    tails = {t.logical: t.parser for t in w.state.tails.values() if t.id in w.live}
    assert tails["AUM-LNX07/var/log/waagent.log.1"] == "waagent" and tails[f"{ARC}/himds.log.1"] == "arc"
    m = pl.read_parquet(out / "matches.parquet")
    # the name no longer says which extension wrote it: re-detected, as a batch scan does
    assert m.filter(pl.col("source").str.ends_with("WindowsUpdateExtension.old"))["format"].unique().to_list() \
        == ["text"]


def _status_rows(out: Path) -> pl.DataFrame:
    """The status file's matches: what it says, once per item."""
    m = pl.read_parquet(out / "matches.parquet").filter(pl.col("source") == STATUS)
    return m.select("signature_id", "message").sort("signature_id", "message")


def test_status_file_rewrites_replace_their_records(tmp_path: Path) -> None:
    """Each rewrite (in place, through a temporary file and a rename, half-written then
    completed) replaces the file's records once it has settled: never the earlier content's rows
    next to the new."""
    root, out = tmp_path / "in", tmp_path / "out"
    path = root / STATUS
    path.parent.mkdir(parents=True)
    w = make_watcher(root, out)

    def settled() -> dict:
        w.cycle()  # a document is parsed once a second look finds it unchanged
        w.cycle()
        return summary(out)

    counts = []
    for state, failed in (("error", 2), ("transitioning", 1), ("success", 0)):
        path.write_text(status_text(state, failed))  # rewritten in place
        counts.append(settled()["records"])
        assert_same_tables(out, batch(root, tmp_path))
    assert counts[0] > counts[1] > counts[2]  # fewer failures, fewer records: the old ones left
    tmp = path.with_name(".3.status.tmp")
    tmp.write_text(status_text("error", 2))
    os.replace(tmp, path)
    assert settled()["records"] == counts[0]
    text = status_text("error", 1)
    path.write_text(text[: len(text) // 2])  # caught mid-write: a counted reject for now
    s = settled()
    assert s["rejects"] == 1 and s["records"] == 0
    path.write_text(text[:12])  # too little to tell it from text: followed as lines for now
    settled()
    assert [t.parser for t in w.state.tails.values()] == ["text"]
    path.write_text(text)  # once it says what it is, it is parsed whole again
    w.cycle(final=True)
    s = summary(out)
    assert s["rejects"] == 0 and s["records"] == counts[1]
    assert w.state.tails == {}
    assert_same_tables(out, batch(root, tmp_path))
    rows = _status_rows(out)
    assert rows.height > 0 and rows.equals(_status_rows(batch(root, tmp_path)))
    assert rows.height == rows.unique().height  # nothing twice


# -- the real command, with its watchdog observer ----------------------------------------------
class AzureWriter(threading.Thread):
    """Appends to the line logs in random pieces and rewrites the status file now and then."""

    def __init__(self, root: Path):
        super().__init__(daemon=True)
        self.root, self.stop = root, threading.Event()
        self.data = {root / k: d for k, (d, _, _) in files().items()}
        self.rewrites = 0

    def run(self) -> None:
        rng = random.Random(5)
        pos = dict.fromkeys(self.data, 0)
        status = self.root / STATUS
        while not self.stop.is_set() and any(pos[p] < len(d) for p, d in self.data.items()):
            for p, d in self.data.items():
                n = rng.randint(1, 600)
                append(p, d[pos[p]: pos[p] + n])
                pos[p] += n
            if rng.random() < 0.2:
                tmp = status.with_name(".3.status.tmp")
                tmp.write_text(status_text(rng.choice(["error", "transitioning"]), rng.randint(0, 2)))
                os.replace(tmp, status)
                self.rewrites += 1
            time.sleep(rng.random() * 0.03)
        status.write_text(status_text("error", 2))
        self.rewrites += 1


def test_real_watch_follows_azure_logs_and_status_rewrites(tmp_path: Path) -> None:
    root, out, log = tmp_path / "in", tmp_path / "out", tmp_path / "watch.err"
    for k in [*files(), STATUS]:
        (root / k).parent.mkdir(parents=True, exist_ok=True)
    writer = AzureWriter(root)
    with open(log, "a") as err:
        proc = subprocess.Popen(_cmd("watch", str(root), "-o", str(out), "--interval", "0.3", "-q"),
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        assert _wait(lambda: summary(out)["watch"]["pid"] == proc.pid)
        writer.start()
        writer.join(timeout=60)
        assert not writer.is_alive()
        data = [p.read_bytes() for p in root.rglob("*.log")]
        complete = sum(complete_lines(d) if not d.startswith(b"\xff\xfe") else complete_lines(d, "utf-16-le")
                       for d in data)
        unterminated = sum(1 for d in data if not d.endswith((b"\n", b"\n\x00")))  # the core.log's last line
        assert _wait(lambda: summary(out)["lines"] - lines_by_source(out).get(STATUS, 0)
                     in (complete, complete + unterminated), 30), (summary(out)["lines"], complete)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        writer.stop.set()
        if proc.poll() is None:
            proc.kill()
    assert writer.rewrites >= 2
    assert_same_tables(out, batch(root, tmp_path))
    rows = _status_rows(out)
    assert rows.height > 0 and rows.equals(_status_rows(batch(root, tmp_path)))
