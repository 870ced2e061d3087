"""The documented, versioned schema of everything a run writes: tables, their columns, summary.json.

This is the one place the schema is written down. `umtriage schema` prints it as Markdown and
docs/schema.md is that output; the tests scan real files and fail when a written table or
column is missing here, has another type, or when docs/schema.md differs from the output. To add
a table or a column: add it to TABLES (or SUMMARY_KEYS) with its type and meaning, run
`umtriage schema > docs/schema.md`, and raise SCHEMA_VERSION when a column changes meaning or
type or goes away (adding one does not break readers: the version stays).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Written into summary.json as `schema_version`.
#: 1: the first tables. 2: host_display, lines, failures, kb, state, severity_rank, incident_id in
#: matches, matches.format = parser name (format_variant keeps the line form), an incident ends at
#: a later success of its operation, tables published through OUT/current.
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # one of TYPES
    meaning: str


@dataclass(frozen=True)
class Table:
    name: str
    row: str  # what one row is
    columns: tuple[Column, ...]


#: Type names used below, and the polars dtype each stands for (as `str(dtype)`).
TYPES = {
    "string": "String",
    "int8": "Int8",
    "int64": "Int64",
    "float64": "Float64",
    "bool": "Boolean",
    "timestamp": "Datetime(time_unit='us', time_zone='UTC')",
    "list[string]": "List(String)",
}


def _cols(*rows: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*r) for r in rows)


_HOST = ("host", "string", "the machine, normalised: lower case, first DNS label (IP addresses whole); the join key")
_HOST_DISPLAY = ("host_display", "string", "the same machine as its logs or file names write it (case kept); "
                 "`lower(host_display) == host`")

INCIDENTS = Table("incidents", "machine x problem (signature and code) x burst of failures", _cols(
    ("incident_id", "string", "stable id: a hash of host, signature, code and the first failure's time (or place)"),
    _HOST,
    ("host_display", "string", "the host as written, the spelling its matched lines use most"),
    ("signature_id", "string", "the catalog signature (`umtriage explain ID`)"),
    ("scenario", "string", "the troubleshooting article's anchor, e.g. `hresult`"),
    ("code", "string", "the error code, `0x8024402C` (text, also in CSV); empty when the signature matched words"),
    ("code_name", "string", "the code's symbolic name from the decoder, e.g. `WU_E_PT_WINHTTP_NAME_NOT_RESOLVED`"),
    ("title", "string", "one line saying what failed"),
    ("severity", "string", "info, low, medium, high or critical"),
    ("severity_rank", "int8", "the severity as a number to sort and filter by: info 0, low 1, medium 2, high 3, "
     "critical 4"),
    ("first_seen", "timestamp", "first failure of the burst (UTC); empty when its lines carry no time"),
    ("last_seen", "timestamp", "last failure of the burst (UTC)"),
    ("count", "int64", "matched lines (kept for older readers; equals `lines`)"),
    ("lines", "int64", "matched lines"),
    ("failures", "int64", "failed operations: matched lines of one source within 1 s of each other are one "
     "failure; untimed lines, one per run of adjacent lines"),
    ("sources", "list[string]", "the files the lines come from"),
    ("kb", "list[string]", "KB articles its lines name, e.g. `KB5034441`"),
    ("evidence", "list[string]", "up to 5 lines, the first 3 and the last 2 (for an EVTX or XML event: "
     "`Event <id>: <message>`, not the XML)"),
    ("score", "float64", "best match score, 0-100 (100 for exact codes)"),
    ("cause", "string", "why this happens (with the code's meaning)"),
    ("resolution", "string", "what to do about it"),
    ("doc_url", "string", "Microsoft's article for the scenario"),
    ("resolved_at", "timestamp", "the first later success of the same operation on that host; it ends the "
     "incident, a later failure starts a new one"),
    ("current", "bool", "unresolved and holding the host's latest failure"),
    ("state", "string", "`current` (unresolved, the host's latest failure), `open` (unresolved, older) or "
     "`resolved`"),
))

MATCHES = Table("matches", "matched record x signature", _cols(
    _HOST, _HOST_DISPLAY,
    ("source", "string", "the file, `fleet.zip!SRV01/Windows/WindowsUpdate.log` inside archives"),
    ("format", "string", "the parser that read it: a name `umtriage formats` lists"),
    ("line_no", "int64", "line number in the source (1-based; the first line of a multi-line record)"),
    ("byte_offset", "int64", "offset of that line in the source's bytes"),
    ("ts", "timestamp", "the record's time (UTC)"),
    ("component", "string", "component or event provider"),
    ("level", "string", "level as logged (ERROR, WARNING, FAILED, ...)"),
    ("message", "string", "the message (for events: the rendered message or insertion strings)"),
    ("raw", "string", "the text as found, cut at 2,000 characters"),
    ("signature_id", "string", "the signature it matched"),
    ("scenario", "string", "the signature's scenario"),
    ("code", "string", "the error code it matched on (text)"),
    ("score", "float64", "match score, 0-100"),
    ("event_id", "int64", "Windows event id, for event exports"),
    ("incident_id", "string", "the incident this row belongs to (incidents.incident_id)"),
    ("kb", "string", "the KB article the line names, e.g. `KB5034441`"),
    ("format_variant", "string", "the form of the line within its format, e.g. `windowsupdate-classic`, "
     "`windowsupdate-etw` (equals `format` when it has one form)"),
))

REJECTS = Table("rejects", "line that did not parse", _cols(
    ("source", "string", "the file"),
    ("line_no", "int64", "line number"),
    ("byte_offset", "int64", "offset of the line"),
    ("reason", "string", "why: `line_too_long` (a line over 1 MiB; error codes in it are still counted in "
     "summary.json `codes_in_rejected_lines`), `no_prefix`, `orphan_continuation`, `bad_record`, `no_header`, ..."),
    ("raw", "string", "the text, cut at 2,000 characters"),
))

UNMATCHED = Table("unmatched", "WARNING/ERROR/FAILED/FATAL template no signature matched", _cols(
    ("template", "string", "the message with variable parts masked (`<num>`, `<guid>`, ...)"),
    ("count", "int64", "records with this template"),
    ("hosts", "list[string]", "hosts that logged it"),
    ("levels", "list[string]", "levels it was logged at"),
    ("first_seen", "timestamp", "first time (UTC)"),
    ("last_seen", "timestamp", "last time (UTC)"),
    ("example", "string", "one raw line"),
    ("example_source", "string", "where that line is, `source:line_no`"),
))

UPDATES = Table("updates", "machine x update (pipeline/updates.py)", _cols(
    _HOST,
    ("update", "string", "the key: the update id, else the KB, else the title (a Linux package name)"),
    ("update_id", "string", "the Windows Update id (GUID, upper case) or an Azure Update Manager patch id"),
    ("kb", "string", "the KB article, `KB5034441`, when the title names one"),
    ("title", "string", "the update's title (a Linux package: name, and version when known)"),
    ("classification", "string", "Security Updates, Definition Updates, ... (Linux: Security, Critical, ...) when "
                                 "the logs name it"),
    ("state", "string", "found, downloaded, installed, failed, pending_reboot, excluded or not_selected: the "
                        "latest install result, else downloaded, else found"),
    ("first_seen", "timestamp", "first line about it (UTC)"),
    ("last_seen", "timestamp", "last line about it (UTC)"),
    ("last_hresult", "string", "the code of its latest result that had one, `0x80070643`"),
    ("attempts", "int64", "install results seen (installed or failed)"),
    ("events", "int64", "lines about it"),
    ("sources", "list[string]", "the files those lines come from"),
))

#: Every table a run writes, as OUT/<name>.parquet (and .csv / .jsonl with --format).
TABLES: dict[str, Table] = {t.name: t for t in (INCIDENTS, MATCHES, REJECTS, UNMATCHED, UPDATES)}

#: The top-level keys of summary.json.
SUMMARY_KEYS: dict[str, str] = {
    "schema_version": "the version of this schema (an integer)",
    "inputs": "the paths given",
    "files": "files scanned",
    "files_skipped": "files skipped (binary, unknown), listed in `skipped`",
    "bytes": "bytes read",
    "lines": "lines read; `lines == records + folded_lines + rejects`",
    "records": "records parsed",
    "folded_lines": "continuation lines of multi-line records, headers and blank lines",
    "rejects": "lines that did not parse",
    "rejects_by_reason": "rejects per reason",
    "codes_in_rejected_lines": "error codes named by lines rejected as too long (over 1 MiB), with how many such "
                               "lines name each: these lines are not matched, their codes are still counted",
    "accounted": "true when every line is a record, folded or a reject",
    "matched_records": "records that matched a signature",
    "matches": "rows of matches.parquet",
    "incidents": "rows of incidents.parquet",
    "incidents_by_severity": "incidents per severity",
    "hosts": "hosts with incidents",
    "unmatched_templates": "rows of unmatched.parquet",
    "formats": "per parser: files, bytes, lines, records, rejects",
    "skipped": "skipped files: source, reason, bytes",
    "problems": "input problems (refused or damaged archives, unreadable files): source, reason, detail",
    "errors": "sources whose reading stopped early: source, error",
    "notes": "what a parser wants you to know about a source: source, note",
    "elapsed_seconds": "run time",
    "sources": "per source: source, host, format, bytes, lines, records, folded_lines, rejects, matched_records, "
               "skipped, errors, notes",
    "run": "how the run was executed: jobs, processes, polars_threads",
    "watch": "watch mode only: state file, pid, cycles, files followed, recent events",
}


def render_markdown() -> str:
    """docs/schema.md: every table and column with type and meaning, and summary.json's keys."""
    out = [
        "# umtriage output schema",
        "",
        f"Schema version **{SCHEMA_VERSION}** (`schema_version` in summary.json). Generated by "
        "`umtriage schema` from `pipeline/schema.py`; the tests fail when a written table or column is "
        "missing here.",
        "",
        "Every file of a run is written into `OUT/.runs/<id>/` and published at once by switching "
        "`OUT/current` to it; `OUT/<table>.parquet` is a link to `current/<table>.parquet`. Read "
        "`OUT/current/` to get every table of the same run. Rows are in a stable order: the same "
        "input gives byte-identical tables. In CSV, list columns are joined with ` | `, a cell a "
        "spreadsheet would run as a formula (`=`, `+`, `-`, `@`, TAB, CR) and a `code` cell (which "
        "DuckDB would read as a hexadecimal number) start with `'`.",
        "",
        f"Types: {', '.join(f'`{t}`' for t in TYPES)} (timestamps are UTC, microseconds).",
        "",
    ]
    for t in TABLES.values():
        out += [f"## {t.name}.parquet", "", f"One row per {t.row}.", "", "| column | type | meaning |",
                "|---|---|---|"]
        out += [f"| `{c.name}` | {c.type} | {c.meaning} |" for c in t.columns]
        out.append("")
    out += ["## summary.json", "", "| key | meaning |", "|---|---|"]
    out += [f"| `{k}` | {v} |" for k, v in SUMMARY_KEYS.items()]
    return "\n".join(out) + "\n"


__all__ = ["SCHEMA_VERSION", "SUMMARY_KEYS", "TABLES", "TYPES", "Column", "Table", "render_markdown"]
