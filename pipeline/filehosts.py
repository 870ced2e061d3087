"""Hosts named by file names: a flat folder of `SRV01_WindowsUpdate.log`, `WindowsUpdate-SRV02.log`.

Collection scripts often put the logs of many machines into one folder and name each file after
its machine. The rule, applied to the file name only:

1. Drop archive and log suffixes (`.zip`, `.gz`, `.log`, `.txt`, `.evtx`, `.etl`, `.csv`, `.xml`,
   `.json`, `.old`, `.bak`, rotation numbers such as `.1`).
2. Cut the rest into words at `_`, `-`, `.`, spaces and `()[]`, keeping the separators.
3. The name must contain a known log base name (`WindowsUpdate`, `CBS`, `DISM`, `ReportingEvents`,
   `worker`, `omsupdatemgmt`, `waagent`, `System`, ... see LOG_BASES) as one of its words: a file
   called `MoSetup.log` or `notes.txt` names no machine.
4. Base names, dates and times (`20240514`, `2024-05-14`, `093000`, `20240514T093000Z`) and
   sequence numbers (any word of digits only) are removed; the words left form runs (words that
   were next to each other).
5. From each run, descriptive words (`excerpt`, `fragment`, `old`, `classic`, `win10`, ... see
   NOISE) are dropped at the ends where the run touches a removed word or the end of the name
   (never at the start of the name: `WIN10-APP02_WindowsUpdate.log` is host WIN10-APP02).
6. The first run that looks like a host name (letters, digits and `-`, DNS labels joined by `.`,
   at least one letter, first label at most 63 characters, not a folder word such as `logs`) is
   the host, written as in the file name: `srv03.contoso.com-CBS.log` gives `srv03.contoso.com`
   (key `srv03`).

These hosts are used only for files that no folder names a host for (files directly in the
input folder, or under folders such as `logs/` or `Windows/`, see sources.NOT_HOSTS) and only where
one folder holds files naming at least two different machines (`assign_name_hosts`): a host
folder `SRV01/` keeps SRV01 for `SRV01_CBS.log` and `System-export.csv` alike, and a folder of one
machine's `SRV01_*.log` files keeps the folder's name. An archive named this way
(`SRV01_WindowsUpdate.zip` beside `SRV02_WindowsUpdate.zip`) gives its members that host unless it
is a fleet archive with host folders inside, and the files at the top of an archive without host
folders follow the same rule among themselves (`bundle.zip` holding `SRV01_WindowsUpdate.log`
and `SRV02_WindowsUpdate.log`). `--host-from REGEX` covers any other naming.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import replace

from .hosts import normalise_host
from .sources import NOT_HOSTS, Unit, archive_stem

#: Base names of the logs umtriage reads (lower case), as collection scripts keep them in file names.
LOG_BASES = frozenset((
    "windowsupdate", "windowsupdatelog", "cbs", "cbspersist", "dism", "reportingevents", "worker", "omsupdatemgmt",
    "waagent", "setupapi", "system", "application", "setup", "security", "wuahandler", "updatesdeployment",
    "windowsupdateclient", "himds", "azcmagent", "gc_agent", "extension", "core", "patchextension",
    "windowspatchextension", "linuxpatchextension", "operationsmanager", "hybridworker", "hybridagent",
))
#: Words that describe a file, not a machine; dropped at the edges of what is left.
NOISE = frozenset((
    "log", "logs", "old", "bak", "backup", "copy", "new", "latest", "current", "full", "export", "exported",
    "excerpt", "fragment", "fragments", "sample", "part", "archive", "rotated", "classic", "legacy", "operational",
    "events", "evtx", "etl", "status", "dev", "app", "offline", "win7", "win8", "win81", "win10", "win11", "win2008",
    "win2012", "win2016", "win2019", "win2022", "ws2012", "ws2016", "ws2019", "ws2022", "wu", "report",
))
_SUFFIX = re.compile(r"\.(?:log|txt|evtx|etl|csv|xml|json|jsonl|old|bak|out|\d{1,3})$", re.IGNORECASE)
_SPLIT = re.compile(r"([_\-.\s()\[\]]+)")
_DATE_OR_NUMBER = re.compile(r"^(?:\d+|\d{8}t\d{4,6}z?|\d{6}z?|t\d{4,6}z?)$", re.IGNORECASE)
#: Dates and times in file names: 20240514, 2024-05-14, 2024_05_14T09-30-00Z, 20240514093012.
_DATE = re.compile(r"(?<![A-Za-z0-9])(?:19|20)\d{2}[-_.]?[01]\d[-_.]?[0-3]\d"
                   r"(?:[T_\-]?\d{2}[-_.:]?\d{2}(?:[-_.:]?\d{2})?Z?)?(?![A-Za-z0-9])")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")


def _stem(name: str) -> str:
    name = archive_stem(name)
    while (m := _SUFFIX.search(name)) and m.start() > 0:
        name = name[: m.start()]
    return name


def host_like(text: str) -> bool:
    """Letters, digits and `-` in dot-joined labels, with at least one letter, not a folder word."""
    labels = text.split(".")
    return (all(_LABEL.match(label) for label in labels) and len(labels[0]) <= 63
            and any(c.isalpha() for c in text) and text.casefold() not in NOT_HOSTS
            and text.casefold() not in NOISE and text.casefold() not in LOG_BASES)


def host_from_name(name: str) -> str | None:
    """The machine a log file's name names, as written (see the module rule), else None."""
    pieces = _SPLIT.split(_DATE.sub("_", _stem(name)))  # word, sep, word, sep, ..., word
    words, seps = pieces[0::2], pieces[1::2]
    kinds: list[str] = []  # "base", "drop" (date, time or number), "word"
    for k, w in enumerate(words):
        low = w.casefold()
        if low in LOG_BASES:
            kinds.append("base")
        elif not w:
            kinds.append("drop")
        elif _DATE_OR_NUMBER.match(w):  # digits stay after a word and a dash: db-07
            joined = k > 0 and kinds[k - 1] == "word" and seps[k - 1] == "-" and w.isdigit() and len(w) <= 4
            kinds.append("word" if joined else "drop")
        else:
            kinds.append("word")
    if "base" not in kinds:
        return None
    runs: list[tuple[int, int]] = []  # [start, end) of consecutive "word"s
    k = 0
    while k < len(words):
        if kinds[k] != "word":
            k += 1
            continue
        start = k
        while k < len(words) and kinds[k] == "word":
            k += 1
        runs.append((start, k))
    for start, end in runs:
        # descriptive words go where the run touches a removed word or the end of the name
        while start < end and start > 0 and words[start].casefold() in NOISE:
            start += 1
        while end > start and words[end - 1].casefold() in NOISE:
            end -= 1
        if start == end:
            continue
        text = "".join(words[j] + (seps[j] if j < end - 1 else "") for j in range(start, end))
        # a host is joined by `-` and `.` only; another separator ends it
        text = re.split(r"[_\s()\[\]]", text)[0]
        if host_like(text):
            return text
    return None


def name_hosts(entries: Sequence[tuple[tuple[str, ...], bool]]) -> dict[tuple[str, ...], str]:
    """For an archive's (parts, is_dir) entries: the host of each top-level file whose name names
    one, when they name at least two machines (else nothing)."""
    found = {parts: h for parts, is_dir in entries if len(parts) == 1 and not is_dir
             and (h := host_from_name(parts[0]))}
    return found if len({normalise_host(h) for h in found.values()}) >= 2 else {}


def assign_name_hosts(units: Sequence[Unit]) -> list[Unit]:
    """Set `name_host` on the files of every folder whose file names name two or more machines."""
    folders: dict[tuple, list[int]] = {}
    found: list[str | None] = []
    for k, u in enumerate(units):
        found.append(host_from_name(u.rel_parts[-1]))
        folders.setdefault(os.path.dirname(os.path.abspath(u.path)), []).append(k)
    out = list(units)
    for members in folders.values():
        if len({normalise_host(found[k]) for k in members if found[k]}) < 2:
            continue
        for k in members:
            if found[k]:
                out[k] = replace(out[k], name_host=found[k])
    return out
