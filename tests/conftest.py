"""Shared test helpers: where the repo, samples and the shared corpus are, and how to run the CLI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
SHARED_CORPUS = REPO.parent / "shared" / "corpus"

sys.path.insert(0, str(Path(__file__).parent))  # fixture writers (linux_fixtures, event_fixtures)


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the installed `umtriage` entry point in a real subprocess."""
    exe = Path(sys.executable).with_name("umtriage")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "umtriage.pipeline.cli"]
    env = {**(os.environ if env is None else env), "COLUMNS": "200"}
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)


@pytest.fixture
def cli():
    return run_cli
