"""Inputs and outputs given as fsspec URLs (s3://, gs://, abfs://, file://...) for `scan --dask`.

A cluster's workers often share no file system with the client but all reach an object store.
The client only lists the objects (names and sizes) and plans them into work items like local
files (small ones grouped); each worker copies the objects of its item into its own scratch
folder, under the same relative names, and scans them there with the same code as a local scan:
archive handling, limits and accounting do not depend on where the bytes came from, and so
neither do logical names, hosts and tables. Objects are never cut into byte ranges: a big one is
one task. Outputs at a URL are written to a local folder first, then uploaded whole.

fsspec comes with dask; s3://, gs:// and the others need their fsspec back-end installed
(s3fs, gcsfs, adlfs...) on the client and on every worker.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .sources import Problem, Unit, member_parts

#: `scheme://...` with a scheme of two letters or more (`C:/` is a Windows drive, not a URL).
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
#: What argparse's `type=Path` leaves of a URL: `s3://b/k` -> `s3:/b/k`, `file:///x` -> `file:/x`.
_MANGLED = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/(?!/)")


@dataclass(frozen=True)
class UrlUnit:
    """One object to scan: what a worker opens, and the names a local scan would give it."""

    url: str
    root_name: str  # the folder name a local scan would fall back to for the host
    rel_parts: tuple[str, ...]  # from the URL given to the object; (name,) for an object given directly
    size: int
    direct: bool = False  # the URL named this object itself, not a folder holding it


def as_url(arg: str | Path) -> str | None:
    """The URL a command-line argument names (also after argparse made a Path of it), else None."""
    text = str(arg)
    if _URL.match(text):
        return text
    m = _MANGLED.match(text)
    if m is None:
        return None
    rest = text[m.end():]
    return f"{m.group(1)}:///{rest}" if m.group(1).lower() == "file" else f"{m.group(1)}://{rest}"


def list_url_units(urls: list[str]) -> tuple[list[UrlUnit], list[Problem]]:
    """Every object under each URL, in argument order then name order (as `list_units` does).

    A key that would leave its folder (`..`, absolute) is a Problem, as an archive member's is;
    so is anything but a regular object (file:// links are not followed).
    Raises FileNotFoundError for a URL that names nothing.
    """
    from fsspec.core import url_to_fs

    units: list[UrlUnit] = []
    problems: list[Problem] = []
    for url in urls:
        fs, root = url_to_fs(url)
        root = root.rstrip("/") or root
        name = root.rsplit("/", 1)[-1]
        if fs.isdir(root):
            found = []
            for path, info in fs.find(root, detail=True).items():
                parts, refused = member_parts(path[len(root):].lstrip("/"))
                if not refused and info.get("type") != "file":
                    problems.append(Problem("/".join(parts), "special_file",
                                            "Not a regular object (a link?); links are not followed in URL inputs."))
                    continue
                if refused:
                    problems.append(Problem(path, refused, "An object name that leaves its folder; skipped."))
                    continue
                found.append(UrlUnit(fs.unstrip_protocol(path), name, parts, int(info.get("size") or 0)))
            units += sorted(found, key=lambda u: u.rel_parts)
        elif fs.isfile(root):
            parent = root.rsplit("/", 2)[-2] if root.count("/") >= 1 else "unknown"
            units.append(UrlUnit(fs.unstrip_protocol(root), parent or "unknown", (name,), int(fs.size(root) or 0),
                                 direct=True))
        else:
            raise FileNotFoundError(f"{url}: no such object or folder")
    return units, problems


def stage(units: tuple[UrlUnit, ...], folder: Path) -> tuple[list[Unit], list[dict]]:
    """Copy the objects into `folder` under their relative names; local units to scan, and problems."""
    import fsspec

    local: list[Unit] = []
    problems: list[dict] = []
    for k, u in enumerate(units):
        root = folder / str(k) / u.root_name
        path = root.joinpath(*u.rel_parts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with fsspec.open(u.url, "rb") as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except OSError as exc:
            problems.append({"source": "/".join(u.rel_parts), "reason": "unreadable",
                             "detail": f"Cannot fetch this object: {exc}."})
            continue
        local.append(Unit(path, path if u.direct else root, u.rel_parts))
    return local, problems


def upload(local: Path, url: str) -> None:
    """Put every file of a finished output folder at `url` (the tables, summary.json)."""
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(url)
    fs.makedirs(root, exist_ok=True)
    for p in sorted(local.iterdir()):
        if p.is_file() and not p.name.startswith("."):  # the tables and summary.json, not the lock
            fs.put_file(str(p), f"{root.rstrip('/')}/{p.name}")
