"""Watch never keeps matches of content a file no longer holds (issue #15, item 2).

The attack: a followed file is replaced by one of the same size, the same first 256 bytes and
the same bytes before the checkpoint, but another middle; by atomic rename over it, rewritten
in place, or written under a new name beside it. The cheap checks (head and checkpoint windows)
all pass; only the sums of the whole committed prefix kept in the state tell the files apart.
After each story the watch tables must equal a batch scan of the final files.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import polars as pl
import pytest
from test_watch import _cmd, _wait, append, assert_same_tables, batch, encode, etw_lines, make_watcher, summary

OLD_CODE, NEW_CODE = "0x8024401C", "0x80072EE2"  # same length: the replacement keeps every size


def _original() -> bytes:
    lines = etw_lines(400, 71)
    assert sum(OLD_CODE in ln for ln in lines[150:250]) > 5
    return encode(lines)


def _other_middle(data: bytes) -> bytes:
    """The same bytes but for the error code of the lines in the middle (same size, same head, same tail)."""
    lo, hi = len(data) // 3, 2 * len(data) // 3
    middle = data[lo:hi].replace(OLD_CODE.encode(), NEW_CODE.encode())
    assert middle != data[lo:hi]
    out = data[:lo] + middle + data[hi:]
    assert len(out) == len(data) and out[:256] == data[:256] and out[-256:] == data[-256:]
    return out


def _codes(out: Path) -> set[str]:
    return set(pl.read_parquet(out / "matches.parquet")["code"].drop_nulls())


def _setup(tmp_path: Path):
    root = tmp_path / "in"
    (root / "SRV01").mkdir(parents=True)
    log = root / "SRV01" / "WindowsUpdate.log"
    log.write_bytes(_original())
    out = tmp_path / "out"
    w = make_watcher(root, out)
    w.cycle()
    assert NEW_CODE not in _codes(out) and OLD_CODE in _codes(out)
    return root, log, out, w


def test_a_same_size_replace_by_rename_is_read_again(tmp_path: Path) -> None:
    root, log, out, w = _setup(tmp_path)
    tmp = log.with_name(".WindowsUpdate.log.tmp")
    tmp.write_bytes(_other_middle(log.read_bytes()))
    os.replace(tmp, log)
    w.cycle()
    assert NEW_CODE in _codes(out)
    assert any(e["reason"] == "rewritten" for e in w.events)
    w.cycle(final=True)
    assert_same_tables(out, batch(root, tmp_path))


def test_a_same_size_rewrite_in_place_is_read_again(tmp_path: Path) -> None:
    root, log, out, w = _setup(tmp_path)
    data = log.read_bytes()
    changed = _other_middle(data)
    with open(log, "r+b") as f:  # same inode, same size: only the mtime says it changed
        f.write(changed)
    st = os.stat(log)
    os.utime(log, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    w.cycle()
    assert NEW_CODE in _codes(out)
    w.cycle(final=True)
    assert_same_tables(out, batch(root, tmp_path))


def test_the_new_content_under_a_new_name_is_not_taken_for_the_old_file(tmp_path: Path) -> None:
    root, log, out, w = _setup(tmp_path)
    changed = _other_middle(log.read_bytes())
    log.unlink()
    (log.parent / "WindowsUpdate.old.log").write_bytes(changed)
    w.cycle()
    assert not any(e["reason"] == "renamed" for e in w.events)
    assert NEW_CODE in _codes(out)
    w.cycle(final=True)
    assert_same_tables(out, batch(root, tmp_path))


def test_a_real_rename_and_a_copy_still_continue(tmp_path: Path) -> None:
    """The full check passes for content that is really the same: nothing is read twice."""
    root, log, out, w = _setup(tmp_path)
    before = summary(out)["lines"]
    log.rename(log.with_name("WindowsUpdate.old.log"))
    w.cycle()
    assert sum(e["reason"] == "renamed" for e in w.events) == 1
    copy = log.with_name("WindowsUpdate.old.log")
    data = copy.read_bytes()
    tmp = copy.with_name(".copy.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, copy)  # a new inode holding the same bytes
    w.cycle()
    assert not any(e["reason"] == "rewritten" for e in w.events)
    assert summary(out)["lines"] == before
    w.cycle(final=True)
    assert_same_tables(out, batch(root, tmp_path))


def test_real_watch_with_its_observer_serves_the_new_middle(tmp_path: Path) -> None:
    """`umtriage watch` as a subprocess (watchdog observer on): the replaced file's new codes show up."""
    root = tmp_path / "in"
    (root / "SRV01").mkdir(parents=True)
    log = root / "SRV01" / "WindowsUpdate.log"
    log.write_bytes(_original())
    out, err = tmp_path / "out", tmp_path / "watch.err"
    with open(err, "a") as e:
        proc = subprocess.Popen(_cmd("watch", str(root), "-o", str(out), "--interval", "1", "-q"),
                                stdout=subprocess.DEVNULL, stderr=e)
    try:
        assert _wait(lambda: OLD_CODE in _codes(out)), err.read_text()
        tmp = log.with_name(".WindowsUpdate.log.tmp")
        tmp.write_bytes(_other_middle(log.read_bytes()))
        os.replace(tmp, log)
        assert _wait(lambda: NEW_CODE in _codes(out)), err.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert_same_tables(out, batch(root, tmp_path))


@pytest.mark.parametrize("variant", ["utf16_tail", "nul_run", "utf8_tail_in_utf16", "cr_only"])
def test_damaged_regions_read_by_watch_equal_a_batch_scan(tmp_path: Path, variant: str) -> None:
    """NUL runs, encoding changes and CR-only line ends (issue #15, items 6 and 10) appended in
    pieces are framed by watch exactly as by a batch scan of the final file."""
    root = tmp_path / "in"
    (root / "SRV01").mkdir(parents=True)
    log = root / "SRV01" / "WindowsUpdate.log"
    if variant == "utf8_tail_in_utf16":
        log.write_bytes(encode(etw_lines(50, 1), "utf-16-le", "\r\n", bom=True))
    else:
        log.write_bytes(encode(etw_lines(50, 1), newline="\r" if variant == "cr_only" else "\r\n"))
    w = make_watcher(root, tmp_path / "out")
    w.cycle()
    pieces = {
        "utf16_tail": [encode(etw_lines(20, 2), "utf-16-le", "\r\n"), encode(etw_lines(5, 3), "utf-16-le", "\r\n")],
        "nul_run": [b"\x00" * 5000, encode(etw_lines(10, 2), newline="\r\n")],
        "utf8_tail_in_utf16": [encode(etw_lines(20, 2), newline="\r\n")],
        "cr_only": [encode(etw_lines(10, 2), newline="\r")],
    }[variant]
    for piece in pieces:
        append(log, piece)
        w.cycle()
    w.cycle(final=True)
    assert_same_tables(tmp_path / "out", batch(root, tmp_path))
