"""A log in a folder whose name starts with a dot (`bench/.cache/x.log`) once gave matches a null
host, and building incidents crashed. The polars and Python forms of the host rule must agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from umtriage.pipeline.hosts import display_host, host_display_expr

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "SRV-WSUS01" / "WindowsUpdate.log"


@pytest.mark.parametrize("name", [".cache", "SRV01.contoso.local", "10.0.0.7", "web-01", "..x", " SRV02 "])
def test_vectorised_display_host_equals_the_python_one(name: str) -> None:
    got = pl.select(host_display_expr(pl.lit(None, dtype=pl.String), name)).item()
    assert got == display_host(name)


def test_scan_of_a_file_in_a_dot_folder_names_a_host(tmp_path: Path) -> None:
    folder = tmp_path / ".cache"
    folder.mkdir()
    (folder / "WindowsUpdate.log").write_bytes(SAMPLE.read_bytes())
    r = subprocess.run([sys.executable, "-m", "umtriage.pipeline.cli", "scan", str(folder / "WindowsUpdate.log"),
                        "-o", str(tmp_path / "out"), "-q"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    m = pl.read_parquet(tmp_path / "out" / "matches.parquet")
    inc = pl.read_parquet(tmp_path / "out" / "incidents.parquet")
    assert m.height > 0 and m["host"].null_count() == 0
    assert inc.height > 0 and set(inc["host"]) == {".cache"}
