"""The input side: command-line paths become units, units become (SourceRef, stream) pairs.

Admins hand over folders and archives from machines we do not trust. Everything is read as a
stream and nothing is written; what is refused or broken comes out as a Problem in the same
ordered sequence as the streams, so a scan reports it next to the files it concerns.

This module holds the model (limits, problems, references) and the naming rules: logical
names and the host a path names. The archive readers themselves live in `archives.py`.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "ArchiveDamaged",
    "LimitExceeded",
    "Limits",
    "Problem",
    "SourceError",
    "SourceRef",
    "Unit",
    "archive_stem",
    "detect_archive",
    "fallback_host",
    "is_archive_name",
    "iter_unit",
    "list_units",
]

#: Folder names that say where logs live, not which machine they came from.
NOT_HOSTS = frozenset(
    (
        "windows", "winnt", "logs", "log", "cbs", "dism", "windowsupdate", "softwaredistribution",
        "datastore", "reportingevents", "panther", "system32", "syswow64", "winevt", "programdata",
        "program files", "program files (x86)", "users", "temp", "tmp", "var", "opt", "etc", "home",
        "root", "usr", "microsoft", "packages", "plugins", "diagnostics", "eventlogs", "events", "evtx",
        "waagent", "azure", "__macosx", "c", "c$", "d",
    )
)

_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip", ".gz")
_DRIVE = re.compile(r"^[A-Za-z]:")

#: The host of a member is not known yet: the next archive layer decides it.
UNDECIDED = "\0undecided"


@dataclass(frozen=True)
class Limits:
    """What one unit may cost to read: bundles come from machines we do not trust."""

    max_total_bytes: int = 20 << 30  # uncompressed bytes read from archives per input unit, all layers
    max_member_bytes: int = 8 << 30  # one member
    max_ratio: float = 1000.0  # output bytes per compressed input byte, per member
    #: Bytes read out of an archive input, summed over all its layers (a nested archive's own bytes
    #: and then its members'), per byte of the input file: a per-member ratio lets nested zips
    #: multiply (16 layers of 16 members under 1000x each), the unit's budget does not. Judged only
    #: past `expansion_grace` bytes, so small bundles of very repetitive logs are always read.
    max_expansion: float = 200.0
    expansion_grace: int = 64 << 20
    max_depth: int = 4  # archive layers, the top-level archive counting as 1
    max_members: int = 200_000  # entries of every kind, over all layers of a unit
    max_nested_zip_bytes: int = 512 << 20  # a zip inside an archive is spilled to a temporary file this big at most

    def expansion_budget(self, input_bytes: int) -> int:
        """Most bytes an archive input of `input_bytes` may expand to, over all its layers."""
        return min(self.max_total_bytes, max(self.expansion_grace, int(self.max_expansion * input_bytes)))


@dataclass(frozen=True)
class Problem:
    """Something refused or broken, reported beside the streams instead of ending the scan."""

    logical: str
    reason: str
    detail: str


class SourceError(Exception):
    """A member stream stopped. iter_unit yields `problem` as its next item: do not record it twice."""

    def __init__(self, problem: Problem, *, fatal: bool = False) -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.fatal = fatal  # True when the rest of the unit cannot be read either


class LimitExceeded(SourceError):
    """A byte, ratio or count limit was reached while reading."""


class ArchiveDamaged(SourceError):
    """The container turned out truncated or corrupt while a member was being read."""


def detect_archive(head: bytes) -> str | None:
    """Name the container by its magic bytes: "zip", "tar", "gzip" or None."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[257:262] == b"ustar":
        return "tar"
    return None


def is_archive_name(name: str) -> bool:
    """True for names that promise a container we read (.zip, .tar, .tar.gz, .tgz, .gz)."""
    return name.lower().endswith(_ARCHIVE_SUFFIXES)


def archive_stem(name: str) -> str:
    """The name without its archive suffixes: "web01.tar.gz" -> "web01", "x.zip.gz" -> "x"."""
    while True:
        low = name.lower()
        suffix = next((s for s in _ARCHIVE_SUFFIXES if low.endswith(s) and len(name) > len(s)), None)
        if suffix is None:
            return name
        name = name[: -len(suffix)]


def gunzipped_name(name: str) -> str:
    """The name of what a single-file gzip holds: "WindowsUpdate.log.gz" -> "WindowsUpdate.log"."""
    low = name.lower()
    if low.endswith(".tgz") and len(name) > 4:
        return name[:-4] + ".tar"
    if low.endswith(".gz") and len(name) > 3:
        return name[:-3]
    return name


def member_parts(raw: str) -> tuple[tuple[str, ...], str | None]:
    """Split a member name into path parts, or say why it is refused (absolute_path, path_traversal)."""
    if raw.startswith(("/", "\\")) or _DRIVE.match(raw):
        return (), "absolute_path"
    parts = tuple(p for p in raw.replace("\\", "/").split("/") if p not in ("", "."))
    if ".." in parts:
        return (), "path_traversal"
    return parts, None


def host_candidate(name: str) -> str | None:
    """A folder or archive name as a host, unless it is a well-known OS or log folder."""
    return None if name.casefold() in NOT_HOSTS else name


def is_fleet(entries: list[tuple[tuple[str, ...], bool]]) -> bool:
    """More than one top-level host folder (or host archive): members belong to several machines."""
    hosts = set()
    for parts, is_dir in entries:
        if len(parts) > 1 or is_dir:
            top = host_candidate(parts[0])
        else:
            top = host_candidate(archive_stem(parts[0])) if is_archive_name(parts[0]) else None
        if top is not None:
            hosts.add(top.casefold())
    return len(hosts) > 1


def logical_of(where: tuple[tuple[str, ...], ...]) -> str:
    """Path segments, one per layer, joined: "fleet.zip!SRV01/Windows/WindowsUpdate.log"."""
    return "!".join("/".join(seg) for seg in where)


@dataclass(frozen=True)
class Unit:
    """One top-level thing to scan: a plain file or an archive file found under an input root."""

    path: Path  # where to open it (under root; may be a symlink that stays inside root)
    root: Path  # the folder given on the command line, or the file itself
    rel_parts: tuple[str, ...]  # components from root to path; (name,) for a file given directly
    name_host: str | None = None  # the machine its file name names, where its folder holds several (filehosts)


@dataclass(frozen=True)
class SourceRef:
    """Where a stream comes from, for reports and for telling hosts apart."""

    logical: str  # "fleet.zip!SRV01/Windows/WindowsUpdate.log": "!" after each archive
    parts: tuple[str, ...]  # ("fleet.zip", "SRV01", "Windows", "WindowsUpdate.log")
    path_host: str | None  # host named by the folder or archive layout, as found
    size: int | None  # uncompressed size when known (declared by the archive for members)


def list_units(paths: Sequence[Path], *, follow_symlinks_within: bool = True) -> tuple[list[Unit], list[Problem]]:
    """Expand command-line paths into units: root order first, then relative path.

    Folders are walked recursively. A symlink under a folder is followed only when its target
    stays inside that folder (and `follow_symlinks_within`); sockets, fifos and devices are
    Problems, so are unreadable entries. A path that does not exist raises FileNotFoundError.
    """
    units: list[Unit] = []
    problems: list[Problem] = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, "input path does not exist", str(path))
        name = path.resolve().name
        try:
            st = path.stat()
        except OSError as exc:
            problems.append(Problem(name, "unreadable", f"Cannot look at this input: {exc.strerror or exc}."))
            continue
        if stat.S_ISDIR(st.st_mode):
            found, trouble = _walk_folder(path, follow_symlinks_within)
            units += sorted(found, key=lambda u: u.rel_parts)
            problems += sorted(trouble, key=lambda p: p.logical)
        elif stat.S_ISREG(st.st_mode) and os.access(path, os.R_OK):
            units.append(Unit(path, path, (path.name or name,)))
        elif stat.S_ISREG(st.st_mode):
            problems.append(Problem(name, "unreadable", "This file cannot be read (permission denied)."))
        else:
            problems.append(Problem(name, "special_file", "Not a regular file or folder; skipped."))
    from .filehosts import assign_name_hosts  # builds on this module's model

    return assign_name_hosts(units), problems


def _inside(target: str, root: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def _walk_folder(root: Path, follow: bool) -> tuple[list[Unit], list[Problem]]:
    """Every regular file under root, through links that stay inside it.

    A linked folder is walked once, and never when it leads back to a folder it sits in (a loop).
    """
    units: list[Unit] = []
    problems: list[Problem] = []
    root_real = os.path.realpath(root)
    linked: set[str] = set()
    pending: list[tuple[str, tuple[str, ...], frozenset[str]]] = [(str(root), (), frozenset({root_real}))]
    while pending:
        folder, rel, chain = pending.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            problems.append(Problem("/".join(rel) or root.name, "unreadable",
                                    f"This folder cannot be listed: {exc.strerror or exc}."))
            continue
        for entry in entries:
            parts = (*rel, entry.name)

            def refuse(reason: str, detail: str, parts: tuple[str, ...] = parts) -> None:
                problems.append(Problem("/".join(parts), reason, detail))

            try:
                if entry.is_symlink():
                    if not follow:
                        refuse("special_file", "A symbolic link; links are not followed in this run.")
                        continue
                    target = os.path.realpath(entry.path)
                    if not _inside(target, root_real):
                        refuse("symlink_outside", "A symbolic link that points outside the input folder; "
                               "not followed.")
                        continue
                st = os.stat(entry.path)  # follows a link that stays inside
            except OSError as exc:
                refuse("unreadable", f"Cannot look at this entry (a broken link?): {exc.strerror or exc}.")
                continue
            if stat.S_ISDIR(st.st_mode):
                real = os.path.realpath(entry.path)
                if entry.is_symlink():
                    if real in chain or real in linked:
                        refuse("special_file", "A link to a folder that contains it or was already "
                               "followed (a loop); not followed.")
                        continue
                    linked.add(real)
                pending.append((entry.path, parts, chain | {real}))
            elif not stat.S_ISREG(st.st_mode):
                refuse("special_file", "A socket, fifo or device, not a file; skipped.")
            elif not os.access(entry.path, os.R_OK):
                refuse("unreadable", "This file cannot be read (permission denied).")
            else:
                units.append(Unit(Path(entry.path), root, parts))
    return units, problems


_DEFAULT_LIMITS = Limits()


def iter_unit(unit: Unit, limits: Limits = _DEFAULT_LIMITS) -> Iterator[tuple[SourceRef, BinaryIO] | Problem]:
    """Yield (ref, stream) for every regular file in the unit, and Problems, in a stable order.

    A plain file yields itself (a real, seekable file); an archive yields its members in stored
    order with nested archives expanded in place. A stream is valid only until the next item is
    requested. Reading a member stream may raise SourceError (LimitExceeded or ArchiveDamaged):
    stop reading that member and ask for the next item; iter_unit yields that error's Problem
    next, so the caller must not record `exc.problem` itself. Damage found between members is
    yielded as Problems directly; the walk goes on wherever the format allows.
    """
    from .archives import Found, walk_unit  # archives builds on this module's model

    host: str | None = UNDECIDED
    if len(unit.rel_parts) > 1:
        host = host_candidate(unit.rel_parts[0])
    for item in walk_unit(unit.path, unit.rel_parts, host, limits):
        if isinstance(item, Found):
            parts = tuple(p for segment in item.where for p in segment)
            yield SourceRef(logical_of(item.where), parts, item.host, item.size), item.stream
        else:
            yield item


def fallback_host(unit: Unit) -> str:
    """Host for sources whose path names none: the input folder's name (or the file's folder)."""
    folder = unit.root if unit.root.is_dir() else unit.path.parent
    return folder.resolve().name or "unknown"
