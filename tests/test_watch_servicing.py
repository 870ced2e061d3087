"""Watch mode follows CBS.log (folding continuation lines) and ReportingEvents.log (UTF-16) line by
line and re-reads a raw WindowsUpdate ETL whole when it changes: real files, real
`Watcher.cycle()` passes; at the end the watch tables equal a batch scan of the final files."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from etl_writer import EtlWriter, WuEvent
from test_watch import append, assert_same_tables, batch, complete_lines, lines_by_source, make_watcher, summary
from umtriage.pipeline.tail import FOLDING, TAILABLE

HOST = "WIN11-W01/Windows"


def cbs_text(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    t0 = datetime(2024, 5, 14, 9, 0, 0)
    out = []
    for i in range(n):
        stamp = (t0 + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S")
        if rng.random() < 0.15:
            out.append(f"{stamp}, Error                 CBS    Failed to execute advanced installer phases. "
                       "[HRESULT = 0x800f0922 - CBS_E_INSTALLERS_FAILED]")
            out += ["Summary:", "Operation: Detect and Repair ", f"\tCSI Payload Corruption:\t{i % 4}", ""]
        else:
            out.append(f"{stamp}, Info                  CSI    {i:08x} Begin executing advanced installer phase {i}")
    return b"\xef\xbb\xbf" + "".join(line + "\r\n" for line in out).encode()


def reporting_text(n: int) -> bytes:
    rows = []
    for i in range(n):
        failed = i % 5 == 2
        rows.append("\t".join([
            f"{{{i:08X}-0D3B-4E7A-9C15-7B8E2D4F6A01}}", f"2024-05-14 09:{i // 60:02d}:{i % 60:02d}:100+0000", "1",
            "182 [AGENT_INSTALLING_FAILED]" if failed else "183 [AGENT_INSTALLING_SUCCEEDED]", "101",
            "{9B2E6F10-4C8D-4A57-B3E1-0F7A5D2C8E44}", "201", "800f0922" if failed else "0", "UpdateOrchestrator",
            "Failure" if failed else "Success", "Content Install",
            f"Installation {'Failure' if failed else 'Successful'}: update {i} (KB50377{i % 100:02d})."]))
    return b"\xff\xfe" + "".join(r + "\r\n" for r in rows).encode("utf-16-le")


def etl(n: int) -> bytes:
    start = datetime(2024, 5, 14, 9, 0, tzinfo=UTC)
    w = EtlWriter(start=start)
    return w.build([w.event(WuEvent(start + timedelta(seconds=i), 7340, 6120, "Handler",
                                    f"*FAILED* [800F0922] Install of package {i} failed")) for i in range(n)])


def test_servicing_line_formats_are_followed() -> None:
    assert "cbs" in FOLDING and "reportingevents" in TAILABLE and "windowsupdate-etl" not in TAILABLE


def test_appends_in_random_pieces_and_an_etl_rewrite(tmp_path: Path) -> None:
    root, out = tmp_path / "in", tmp_path / "out"
    data = {
        f"{HOST}/Logs/CBS/CBS.log": (cbs_text(300, 1), "utf-8"),
        f"{HOST}/SoftwareDistribution/ReportingEvents.log": (reporting_text(120), "utf-16-le"),
    }
    for logical in data:
        (root / logical).parent.mkdir(parents=True, exist_ok=True)
    etl_path = root / HOST / "Logs/WindowsUpdate/WindowsUpdate.20240514.090000.000.1.etl"
    etl_path.parent.mkdir(parents=True)
    etl_path.write_bytes(etl(20))
    w = make_watcher(root, out)
    rng = random.Random(7)
    written = dict.fromkeys(data, 0)
    offsets: dict[str, list[int]] = {k: [] for k in data}
    while any(written[k] < len(d) for k, (d, _) in data.items()):
        for k, (d, _) in data.items():
            if written[k] < len(d) and rng.random() < 0.7:
                n = rng.choice([1, 3, rng.randint(1, 300), rng.randint(300, 3000)])
                append(root / k, d[written[k]: written[k] + n])
                written[k] += n
        w.cycle()
        got = lines_by_source(out)
        for k, (d, enc) in data.items():
            assert got.get(k, 0) == complete_lines(d[: written[k]], enc), (k, got.get(k), written[k])
        for t in w.state.tails.values():
            if t.logical in offsets:
                offsets[t.logical].append(t.offset)
    for k in data:
        assert offsets[k] == sorted(offsets[k]) and offsets[k][-1] > offsets[k][0], k  # committed as it grew
    etl_path.write_bytes(etl(35))  # the ETL is rewritten whole (a new buffer flushed)
    w.cycle(final=True)
    s = summary(out)
    etl_stat = next(f for f in s["sources"] if f["source"].endswith(".etl"))
    assert etl_stat["records"] == 35
    assert_same_tables(out, batch(root, tmp_path))
