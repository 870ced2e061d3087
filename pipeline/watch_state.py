"""Watch mode's checkpoint file: versioned JSON, replaced atomically, naming every live part.

The state is the commit record. Parts are written first, the state naming them second; a part
that no state names belongs to a chunk whose state never landed and is deleted on restart, and
that chunk is read again from the state's offsets. So a kill at any moment loses and repeats
nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import polars as pl

#: 2: TailEntry.prefix; 3: parts of the `updates` table (an older state names none, so its files are read again).
STATE_VERSION = 3
TABLES = ("matches", "rejects", "unmatched", "successes", "updates")


def no_parts() -> dict[str, list[str]]:
    return {t: [] for t in TABLES}


def zero_counts() -> dict:
    return {"lines": 0, "records": 0, "rejects": 0, "matched_records": 0, "errors": [], "notes": []}


@dataclass
class TailEntry:
    """A followed line-format file, identified by content, wherever it is now."""

    id: str
    logical: str  # path under the watched folder ("SRV01/WindowsUpdate.log"), as a scan names it
    host: str
    fp_len: int  # fingerprint: hash of the first fp_len bytes
    fp: str
    parser: str
    encoding: str
    bom: int
    head_len: int  # bytes detection saw; detection is redone while this is below a full head
    offset: int  # checkpoint: committed bytes end here (a line start)
    line: int  # line number at `offset`
    check: str  # hash of the bytes just before `offset`
    read_end: int  # bytes parsed, committed and provisional
    tz: int | None = None  # WindowsUpdate.log classic zone in force at `offset`
    key: list[int] = field(default_factory=list)  # size, mtime_ns, inode, device when last read
    changed_at: float = 0.0  # wall time the file last changed
    parts: dict[str, list[str]] = field(default_factory=no_parts)  # committed part file names
    prov: dict[str, list[str]] = field(default_factory=no_parts)  # provisional part file names
    counts: dict = field(default_factory=zero_counts)  # committed accounting
    prov_counts: dict = field(default_factory=zero_counts)
    missing: int = 0  # cycles since it was last found
    #: CRC-32 and Adler-32 of every byte before `offset`, extended as bytes are committed: checked
    #: in full when the file's inode changed or it changed without growing (see tail.prefix_holds)
    prefix: str = ""


@dataclass
class WholeEntry:
    """A file or archive parsed as a whole whenever it changes (documents, archives, skipped files)."""

    id: str
    logical: str
    key: list[int] = field(default_factory=list)  # stat key of the content parsed
    parts: dict[str, list[str]] = field(default_factory=no_parts)
    files: list[dict] = field(default_factory=list)  # FileStat dicts
    problems: list[dict] = field(default_factory=list)


@dataclass
class WatchState:
    config: str
    version: int = STATE_VERSION
    next_id: int = 0
    next_part: int = 0
    tails: dict[str, TailEntry] = field(default_factory=dict)
    wholes: dict[str, WholeEntry] = field(default_factory=dict)

    def new_id(self, kind: str) -> str:
        self.next_id += 1
        return f"{kind}{self.next_id:07d}"

    def part_name(self, owner: str) -> str:
        self.next_part += 1
        return f"{owner}-{self.next_part:09d}.parquet"

    def named_parts(self) -> set[str]:
        names: set[str] = set()
        for t in self.tails.values():
            for group in (t.parts, t.prov):
                for lst in group.values():
                    names.update(lst)
        for w in self.wholes.values():
            for lst in w.parts.values():
                names.update(lst)
        return names


def config_digest(settings: dict) -> str:
    """A hash of everything that shapes the parts; a state written under other settings is void."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _entry(cls, data: dict):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def load_state(path: Path, config: str) -> WatchState | None:
    """The saved state, or None when there is none, it is unreadable, or from other settings."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION or data.get("config") != config:
        return None
    try:
        return WatchState(
            config=config,
            next_id=int(data["next_id"]),
            next_part=int(data["next_part"]),
            tails={k: _entry(TailEntry, v) for k, v in data["tails"].items()},
            wholes={k: _entry(WholeEntry, v) for k, v in data["wholes"].items()},
        )
    except (KeyError, TypeError, ValueError):
        return None


def save_state(state: WatchState, path: Path, previous: str | None = None) -> str:
    """Write to a temporary file, flush it to disk, then rename over the old state.

    Returns what was written; nothing is written when it equals `previous`.
    """
    payload = json.dumps(asdict(state), separators=(",", ":"))
    if payload == previous:
        return payload
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return payload


class PartStore:
    """The part files a state names: committed ones form the dataset OUT/parts/<table>/*.parquet,
    provisional ones live in OUT/.watch/tail/<table>/. Files arrive by rename (never half
    written) and leave only after a state that no longer names them has landed."""

    def __init__(self, out: Path, state: WatchState):
        self.state = state
        self.parts_dir = out / "parts"
        self.prov_dir = out / ".watch" / "tail"
        self.staging = out / ".watch" / "staging"
        self.garbage: list[Path] = []
        self._saved: str | None = None

    def folder(self, committed: bool) -> Path:
        return self.parts_dir if committed else self.prov_dir

    def clean(self) -> int:
        """Delete the part files no state names (a chunk whose state never landed); return how many."""
        named = self.state.named_parts()
        removed = 0
        for base in (self.parts_dir, self.prov_dir):
            for table in TABLES:
                folder = base / table
                folder.mkdir(parents=True, exist_ok=True)
                for f in folder.iterdir():
                    if f.name not in named:
                        f.unlink(missing_ok=True)
                        removed += 1
        self.staging.mkdir(parents=True, exist_ok=True)
        for f in self.staging.iterdir():
            f.unlink(missing_ok=True)
        return removed

    def adopt(self, staged: dict[str, list[str]], owner: str, committed: bool) -> dict[str, list[str]]:
        """Rename staged parts into place under fresh names."""
        out = no_parts()
        for table in TABLES:
            for path in staged.get(table, []):
                name = self.state.part_name(owner)
                os.replace(path, self.folder(committed) / table / name)
                out[table].append(name)
        return out

    def drop(self, parts: dict[str, list[str]], committed: bool) -> None:
        """Delete these parts once the next state is saved."""
        for table, names in parts.items():
            self.garbage.extend(self.folder(committed) / table / n for n in names)

    @staticmethod
    def discard(*results) -> None:
        """Delete staged parts that will not be adopted (a failed or superseded pass)."""
        for r in results:
            if r is not None:
                for paths in r.parts.values():
                    for p in paths:
                        Path(p).unlink(missing_ok=True)

    def rewrite(self, parts: dict[str, list[str]], owner: str, committed: bool, source: str | None
                ) -> dict[str, list[str]]:
        """Parts rewritten under new names: each relabelled with `source`, or (None) merged into one per table."""
        folder = self.folder(committed)
        out = no_parts()
        for table, names in parts.items():
            if not names:
                continue
            frames = [pl.read_parquet(folder / table / n) for n in names]
            for group in ([frames] if source is None else [[f] for f in frames]):
                df = pl.concat(group, how="vertical_relaxed")
                if source is not None:
                    df = df.with_columns(source=pl.lit(source, dtype=pl.String))
                name = self.state.part_name(owner)
                df.write_parquet(self.staging / name, statistics=False)
                os.replace(self.staging / name, folder / table / name)
                out[table].append(name)
            self.drop({table: names}, committed)
        return out

    def commit(self, state_path: Path) -> None:
        """Save the state (it names the new parts), then delete what it no longer names."""
        self._saved = save_state(self.state, state_path, self._saved)
        named = self.state.named_parts()
        for p in self.garbage:
            if p.name not in named:
                p.unlink(missing_ok=True)
        self.garbage.clear()
