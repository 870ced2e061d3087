"""report.html: the scan's tables as one self-contained page a person can open and search.

The page needs no network: its CSS, its script and the charting library (plotly.js, from the
plotly package) are inline. The data goes in as JSON inside `<script type="application/json">`
with every `<`, `>` and `&` written as a `\\u` escape, so log text can never close the block or
start markup; the script puts text on the page only through `textContent`. The page stays small
and opens fast with thousands of hosts: the host list is paginated, a host's timeline and cards
are drawn only when it is opened, and the incidents, updates and evidence per host are capped
(the parquet tables keep everything).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path

import polars as pl

#: Caps that keep the page bounded whatever the fleet. Incidents: at most 50 per host and about
#: MAX_PAGE_INCIDENTS in all (never fewer than 5 per host); evidence: 3 lines per card, cut to
#: share EVIDENCE_BUDGET characters (120 to 400 per line). The parquet tables keep everything.
MAX_INCIDENTS_PER_HOST, MIN_INCIDENTS_PER_HOST, MAX_PAGE_INCIDENTS = 50, 5, 20_000
MAX_UPDATES_PER_HOST = 200
MAX_EVIDENCE_LINES, MIN_EVIDENCE_CHARS, MAX_EVIDENCE_CHARS, EVIDENCE_BUDGET = 3, 120, 400, 6_000_000
MAX_TEXT_CHARS = 2000
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
#: A current incident at this severity rank or worse (medium) makes its host "failing".
FAILING_AT = SEVERITY_ORDER["medium"]
#: A host's state on the overview, worst first.
HOST_STATES = ("failing", "pending_reboot", "recovered", "healthy")


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat().replace("+00:00", "Z") if ts is not None else None


def _cut(text: str | None, n: int) -> str | None:
    return text if text is None or len(text) <= n else text[: n - 1] + "…"


class Stream:
    """JSON text produced piece by piece while the page is written, after the values before it:
    a fleet's incident cards go to the file as they are made instead of being held."""

    def __init__(self, pieces: Iterator[str]) -> None:
        self.pieces = pieces


#: The page's JSON: compact, text as it is (escaped for the <script> element by _escape).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def _json(value) -> str:
    return _ENCODER.encode(value)


@dataclass(slots=True)
class _HostIncidents:
    """What the host list needs of a host's incidents (the cards are written as they are made); slots
    and a list, not a set and a dict, because a fleet can have 100k of these."""

    shown: int = 0
    last: str | None = None
    current: tuple[str, str] | None = None  # (title, text key) of the first current medium+ incident
    codes: list[tuple[str, str]] = field(default_factory=list)  # (code, text key), first incident of each code


def _incident_rows(incidents: pl.DataFrame, texts: dict[str, dict],
                   info: dict[str, _HostIncidents]) -> Iterator[str]:
    """JSON of {host: its incidents worst first (current, severity, latest)}, capped so the page
    stays bounded however big the fleet; fills `texts` (cause, fix and doc link once per
    (signature, code)) and `info` (what the host list needs) as it goes."""
    yield "{"
    if incidents.height == 0:
        yield "}"
        return
    n_hosts = incidents["host"].n_unique()
    per_host = max(MIN_INCIDENTS_PER_HOST, min(MAX_INCIDENTS_PER_HOST, MAX_PAGE_INCIDENTS // n_hosts))
    cols = ("host", "signature_id", "code", "cause", "resolution", "doc_url", "incident_id", "severity", "title",
            "first_seen", "last_seen", "count", "current", "resolved_at", "evidence", "sources")
    inc = incidents.select(*cols, sev_rank=pl.col("severity").replace_strict(SEVERITY_ORDER, default=9,
                                                                             return_dtype=pl.Int32))
    inc = inc.sort(["host", "current", "sev_rank", "last_seen", "incident_id"],
                   descending=[False, True, False, True, False], nulls_last=True)
    inc = inc.filter(pl.int_range(pl.len()).over("host") < per_host)
    chars = max(MIN_EVIDENCE_CHARS, min(MAX_EVIDENCE_CHARS, EVIDENCE_BUDGET // max(1, inc.height * MAX_EVIDENCE_LINES)))
    host, cards, hi = None, [], _HostIncidents()
    for r in inc.select(cols).iter_rows(named=True):
        if r["host"] != host:
            if host is not None:
                yield _host_entry(host, cards, first=not info)
                info[host] = hi
            host, cards, hi = r["host"], [], _HostIncidents()
        key = f"{r['signature_id']}|{r['code'] or ''}"
        if key not in texts:
            texts[key] = {"cause": _cut(r["cause"], MAX_TEXT_CHARS), "fix": _cut(r["resolution"], MAX_TEXT_CHARS),
                          "doc": r["doc_url"]}
        card = {
            "id": r["incident_id"], "sig": r["signature_id"], "sev": r["severity"], "code": r["code"],
            "title": _cut(r["title"], 300), "first": _iso(r["first_seen"]), "last": _iso(r["last_seen"]),
            "count": r["count"], "current": bool(r["current"]), "resolved": _iso(r["resolved_at"]), "text": key,
            "evidence": [_cut(e, chars) for e in (r["evidence"] or [])[:MAX_EVIDENCE_LINES]],
            "sources": (r["sources"] or [])[:3],
        }
        cards.append(_json(card))
        hi.shown += 1
        if card["last"] and (hi.last is None or card["last"] > hi.last):
            hi.last = card["last"]
        # an info or low incident can be a host's latest line without the host failing
        if hi.current is None and card["current"] and SEVERITY_ORDER.get(card["sev"], 9) <= FAILING_AT:
            hi.current = (card["title"], key)
        if card["code"] and all(c != card["code"] for c, _ in hi.codes):
            hi.codes.append((card["code"], key))
    yield _host_entry(host, cards, first=not info)
    info[host] = hi
    yield "}"


def _host_entry(host: str, rows: list[str], first: bool) -> str:
    return ("" if first else ",") + _json(host) + ":[" + ",".join(rows) + "]"


def _update_rows(updates: pl.DataFrame, failed: dict[str, dict]) -> Iterator[str]:
    """JSON of {host: its updates latest first (capped)}; fills `failed` with each host's latest
    failed update."""
    yield "{"
    host, rows, first = None, [], True
    for r in updates.sort(["host", "last_seen", "update"], descending=[False, True, False], nulls_last=True).iter_rows(
            named=True):
        if r["host"] != host:
            if host is not None:
                yield _host_entry(host, rows, first)
                first = False
            host, rows = r["host"], []
        if len(rows) < MAX_UPDATES_PER_HOST:
            row = {"update": r["update"], "kb": r["kb"], "title": _cut(r["title"], 300),
                   "cls": r["classification"], "state": r["state"], "first": _iso(r["first_seen"]),
                   "last": _iso(r["last_seen"]), "hr": r["last_hresult"], "attempts": r["attempts"]}
            rows.append(_json(row))
            if row["state"] == "failed" and host not in failed:
                failed[host] = row
    if host is not None:
        yield _host_entry(host, rows, first)
    yield "}"


def _host_rows(hosts: list[str], info: dict[str, _HostIncidents], texts: dict[str, dict],
               failed_updates: dict[str, dict], updates: pl.DataFrame, all_incidents: pl.DataFrame) -> Iterator[str]:
    """JSON of one summary row per host, with its current state and what to search it by (run
    after the incidents and updates are written: it reads what they gathered)."""
    ustate: dict[str, dict[str, int]] = {}
    # sorted: group_by's order is not stable, and the page must be byte-identical for the same input
    for host, state, n in updates.group_by("host", "state").len().sort("host", "state").iter_rows() \
            if updates.height else ():
        ustate.setdefault(host, {})[state] = n
    counts: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    if all_incidents.height:
        for host, sev, n in all_incidents.group_by("host", "severity").len().sort("host", "severity").iter_rows():
            counts.setdefault(host, {})[sev] = n
            totals[host] = totals.get(host, 0) + n
    yield "["
    empty = _HostIncidents()
    for k, h in enumerate(hosts):
        hi = info.get(h, empty)
        us = ustate.get(h, {})
        if hi.current is not None or us.get("failed"):
            state = "failing"
        elif us.get("pending_reboot"):
            state = "pending_reboot"
        elif hi.shown:
            state = "recovered"
        else:
            state = "healthy"
        now, fix = (hi.current[0], texts[hi.current[1]]["fix"]) if hi.current else _failed_update(
            failed_updates.get(h), hi, texts)
        yield ("," if k else "") + _json({
            "host": h, "state": state, "severities": counts.get(h, {}), "incidents": totals.get(h, 0),
            "shown": hi.shown, "last": hi.last, "now": now, "fix": _first_step(fix), "updates": us,
            "codes": sorted(c for c, _ in hi.codes),
        })
    yield "]"


def _failed_update(u: dict | None, hi: _HostIncidents, texts: dict[str, dict]) -> tuple[str | None, str | None]:
    """A host failing through an update alone: its latest failed update, and the fix of the
    host's incident with the same code when there is one."""
    if u is None:
        return None, None
    key = next((k for c, k in hi.codes if c == u["hr"]), None) if u["hr"] else None
    what = f"{u['kb'] or u['title'] or u['update']} failed to install" + (f" ({u['hr']})" if u["hr"] else "")
    return what, texts[key]["fix"] if key else None


def _first_step(fix: str | None) -> str | None:
    """The first line of a fix, for the host list."""
    if not fix:
        return None
    return _cut(next((ln.strip() for ln in fix.splitlines() if ln.strip()), ""), 200)


def report_data(incidents: pl.DataFrame, updates: pl.DataFrame, summary: dict) -> dict:
    """Everything the page shows: JSON-able values, and Streams that make their JSON as it is written."""
    hosts = sorted(set(incidents["host"].to_list() if incidents.height else [])
                   | set(updates["host"].to_list() if updates.height else [])
                   | {s["host"] for s in summary.get("sources", []) if s.get("host")})
    texts: dict[str, dict] = {}
    info: dict[str, _HostIncidents] = {}
    failed: dict[str, dict] = {}
    # written in this order: the host rows read what the incidents and updates gathered
    return {
        "summary": {k: summary.get(k) for k in ("files", "bytes", "lines", "records", "rejects", "matches",
                                                "incidents", "incidents_by_severity")},
        "states": list(HOST_STATES),
        "n_hosts": len(hosts),
        "incidents": Stream(_incident_rows(incidents, texts, info)),
        "updates": Stream(_update_rows(updates, failed)),
        "hosts": Stream(_host_rows(hosts, info, texts, failed, updates, incidents)),
        "texts": texts,
        "caps": {"updates_per_host": MAX_UPDATES_PER_HOST, "evidence_lines": MAX_EVIDENCE_LINES},
    }


def _escape(text: str) -> str:
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _pieces(data: dict) -> Iterator[str]:
    """JSON text of `data` in pieces; a Stream value puts in the pieces it makes."""
    yield "{"
    for k, (key, value) in enumerate(data.items()):
        yield ("," if k else "") + _ENCODER.encode(key) + ":"
        yield from value.pieces if isinstance(value, Stream) else _ENCODER.iterencode(value)
    yield "}"


def write_script_json(data: dict, f, piece: int = 1 << 16) -> None:
    """`data` as JSON safe inside a <script> element (no `<`, `>` or `&` left to end it or open
    markup), written to `f` in pieces: a fleet of 100k hosts makes tens of MB of JSON that would
    otherwise be held several times over (text, escapes, page)."""
    buf: list[str] = []
    size = 0
    for chunk in _pieces(data):
        buf.append(chunk)
        size += len(chunk)
        if size >= piece:  # each escape is of one character, so pieces escape independently
            f.write(_escape("".join(buf)).encode("utf-8"))
            buf, size = [], 0
    f.write(_escape("".join(buf)).encode("utf-8"))


#: Where plotly.js goes in the rendered page: the 4.8 MB library is copied from the plotly
#: package's file straight into the output, never through the slot filling.
PLOTLY_SLOT = "\x00plotly.min.js\x00"


def plotly_js_path() -> Path:
    """plotly.min.js as the plotly package ships it (found without importing plotly: that costs
    more than writing the page)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package is not installed; it ships the chart library report.html embeds")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


#: A slot of the page template: `{{ name }}`.
_SLOT = re.compile(r"\{\{ (\w+) \}\}")


def fill_slots(template: str, values: dict[str, object]) -> str:
    """The template with each slot replaced: text escaped as HTML (markupsafe, as a template
    engine's autoescape does), Markup values as they are. The page has eight slots; importing
    and compiling a template engine for them cost more than the rest of writing the page."""
    from markupsafe import escape

    return _SLOT.sub(lambda m: str(escape(values[m.group(1)])), template)


#: Where the data goes in the rendered page: written by write_script_json, not by the slot filling.
DATA_SLOT = "\x00report-data\x00"


def render_page(data: dict, title: str = "umtriage report") -> tuple[str, str, str]:
    """The page (templates/report.html, slots filled and escaped) cut where the data and plotly.js
    go: (before the data, between the two, after plotly.js)."""
    from markupsafe import Markup

    folder = resources.files("umtriage.pipeline") / "templates"
    css, js, page = ((folder / name).read_text(encoding="utf-8") for name in ("report.css", "report.js", "report.html"))
    summary = data["summary"]
    page = fill_slots(page.removesuffix("\n"), {
        "title": title, "n_hosts": data["n_hosts"], "incidents": summary.get("incidents") or 0,
        "files": summary.get("files") or 0, "lines": f"{summary.get('lines') or 0:,}",
        "css": Markup(css), "script": Markup(js), "plotly_js": Markup(PLOTLY_SLOT), "data_json": Markup(DATA_SLOT),
    })
    head, _, rest = page.partition(DATA_SLOT)
    middle, _, tail = rest.partition(PLOTLY_SLOT)
    return head, middle, tail


def write_report(out_dir: Path, incidents: pl.DataFrame, updates: pl.DataFrame, summary: dict) -> Path:
    """Write OUT/report.html under a temporary name, then rename: a browser never reads half a page."""
    path = out_dir / "report.html"
    tmp = path.with_name(f".{path.name}.tmp")
    data = report_data(incidents, updates, summary)
    head, middle, tail = render_page(data)
    with open(tmp, "wb") as f, open(plotly_js_path(), "rb") as lib:
        f.write(head.encode("utf-8"))
        write_script_json(data, f)
        del data
        f.write(middle.encode("utf-8"))
        shutil.copyfileobj(lib, f, 1 << 20)
        f.write(tail.encode("utf-8"))
    os.replace(tmp, path)
    return path
