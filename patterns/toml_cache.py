"""Parsed TOML, remembered between runs by the SHA-256 of each file's text.

Every umtriage process (a scan's workers too) reads the eighty-odd signature and decoder files
before it can match a line. tomllib is pure Python and takes about 25 ms for them; the same data
from JSON takes a tenth of that. The cache is one JSON file in the user's cache folder
(`$UMTRIAGE_CACHE_DIR`, else `$XDG_CACHE_HOME/umtriage`, else `~/.cache/umtriage`), replaced
atomically. An entry is found only by the hash of the exact text it was parsed from, so an
edited file is parsed again; a missing, damaged or unwritable cache only means parsing again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import tomllib
from functools import lru_cache
from pathlib import Path

CACHE_NAME = "toml-v1.json"
#: Entries kept; past this the oldest go first (a catalog is about 80 files).
MAX_ENTRIES = 4096


def cache_path() -> Path:
    """Where the cache lives (see the module docstring)."""
    if os.environ.get("UMTRIAGE_CACHE_DIR"):
        return Path(os.environ["UMTRIAGE_CACHE_DIR"]) / CACHE_NAME
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "umtriage" / CACHE_NAME


class TomlCache:
    """tomllib.loads with a memory of earlier runs; `save` writes what this process parsed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict] = {}
        self.fresh = False
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                self.entries = {k: v for k, v in data.items() if isinstance(v, dict)}
        except (OSError, ValueError):
            pass

    def loads(self, text: str) -> dict:
        """The parsed document (raises tomllib.TOMLDecodeError as tomllib does)."""
        key = hashlib.sha256(text.encode("utf-8")).hexdigest()
        hit = self.entries.get(key)
        if hit is not None:
            return hit
        data = tomllib.loads(text)
        try:
            json.dumps(data)  # dates and times have no JSON form: such a file is parsed every time
        except (TypeError, ValueError):
            return data
        self.entries[key] = data
        self.fresh = True
        return data

    def save(self) -> None:
        """Write the cache if this process parsed anything new; any failure is ignored."""
        if not self.fresh:
            return
        self.fresh = False
        keep = dict(list(self.entries.items())[-MAX_ENTRIES:])
        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".toml-", suffix=".tmp", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(keep, f, separators=(",", ":"))
            os.replace(tmp, self.path)
        except OSError:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


@lru_cache(maxsize=1)
def toml_cache() -> TomlCache:
    """This process's cache (read once)."""
    return TomlCache(cache_path())
