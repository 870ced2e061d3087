"""Control characters from logs never reach the terminal raw; a dead watchdog observer is said out loud."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from conftest import run_cli
from umtriage.pipeline.termsafe import safe
from umtriage.pipeline.watch import _observer, _supervise

TITLE = "\x1b]0;pwned\x07"
BLINK = "\x1b[5m"
HOST = f"SRV{TITLE}{BLINK}[bold]X"
LINE = f"2024/05/14 09:00:00.1000000 1244  5528  Agent           *FAILED* [8024402C] {BLINK}Method failed{TITLE}"


def _hostile_folder(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    (root / HOST).mkdir(parents=True)
    (root / HOST / "WindowsUpdate.log").write_text(LINE + "\n")
    (root / HOST / f"notes{TITLE}.zip").write_bytes(b"not a zip at all")  # reported by name in watch
    return root


def test_safe_escapes_every_control_character() -> None:
    assert safe(TITLE + BLINK) == "\\x1b]0;pwned\\x07\\x1b[5m"
    assert safe("a\u202eb\x9bc\x7f") == "a\\u202eb\\x9bc\\x7f"
    assert safe("one\ntwo\tthree") == "one\\x0atwo\\x09three"
    assert safe("one\ntwo", keep_newlines=True) == "one\ntwo"


def test_scan_report_and_watch_messages_print_no_raw_control_characters(tmp_path: Path) -> None:
    root = _hostile_folder(tmp_path)
    scan = run_cli("scan", str(root), "-o", str(tmp_path / "out"))
    assert scan.returncode == 0, scan.stderr
    watch = run_cli("watch", str(root), "-o", str(tmp_path / "wout"), "--once")
    assert watch.returncode == 0, watch.stderr
    for printed in (scan.stdout, scan.stderr, watch.stdout, watch.stderr):
        assert "\x1b" not in printed and "\x07" not in printed
    assert "\\x1b]0;pwned\\x07\\x1b[5m[bold]X" in scan.stdout  # shown, escaped, markup not applied
    assert "new incident" in watch.stdout and "\\x1b]0;pwned" in watch.stdout
    assert "notes\\x1b]0;pwned\\x07.zip" in watch.stderr  # the file-name problem, escaped


def test_a_watchdog_thread_killed_by_a_key_error_is_reported_and_restarted(tmp_path: Path) -> None:
    """A real watchdog observer whose dispatch thread dies of a KeyError (as inotify bookkeeping
    errors do): the supervisor says so and starts a new observer."""
    wake = threading.Event()
    messages: list[str] = []
    obs = _observer(tmp_path, wake, [], messages.append)
    assert obs is not None

    class Broken:
        def dispatch(self, event) -> None:
            raise KeyError(event.src_path)

    obs.schedule(Broken(), str(tmp_path), recursive=True)
    hook, threading.excepthook = threading.excepthook, lambda args: messages.append(f"died: {args.exc_type.__name__}")
    try:
        deadline = time.time() + 20
        k = 0
        while obs.is_alive() and time.time() < deadline:
            (tmp_path / f"f{k}.log").write_text("x")  # events until the broken handler has run
            k += 1
            time.sleep(0.05)
        assert not obs.is_alive() and "died: KeyError" in messages
        restarted = _supervise(obs, lambda: _observer(tmp_path, wake, [], messages.append), messages.append, [0])
        assert restarted is not None and restarted.is_alive()
        assert any("file events stopped" in m and "restarting" in m for m in messages)
        assert _supervise(restarted, lambda: None, messages.append, [0]) is restarted  # alive: kept
        restarted.stop()
        restarted.join(timeout=5)
        assert _supervise(restarted, lambda: None, messages.append, [3]) is None  # gave up: said so
        assert "only the rescan every interval finds changes" in messages[-1]
    finally:
        threading.excepthook = hook
        obs.stop()
