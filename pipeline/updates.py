"""Per host and update: what the logs say happened to it (found, downloaded, installed, failed, ...).

Dashboards (Update Manager, WSUS, WUfB reports) show one row per machine and update; this builds
the same from the logs. It runs in two steps:

1. While scanning, each `Extractor` in EXTRACTORS turns the records of the formats it reads into
   update *events* (EVENT_SCHEMA): one event per log line that names an update and what happened
   to it. Extractors are vectorised (polars regexes over the batch) and only look at lines that
   hold one of their `needles`; the needles also join the parsers' prefilter
   (`Matcher.needles`), so update lines that carry no error code are still cut into fields.
2. When the tables are written, `build_updates` folds the events into UPDATE_SCHEMA rows.

Needles are kept rare, since every line they keep is cut into fields on the hot path: the
two-line `Title =` / `UpdateId =` listings and `Added update ... to search result` are common
lines (a few % of a real log) that tell nothing the one-line ComApi forms (`Deserialized
installable update <title>, UpdateID = ...`, `Title=..., UpdateId=...`) do not, so they are not read.

A new format (ReportingEvents.log, the Linux patch extension's status files, ...) gets an update
table by adding an Extractor for its record `format` here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl
from umtriage.parsers import FAMILY

from .literals import holds, literals_regex, with_lower

UTC_TS = pl.Datetime("us", "UTC")

#: Every state an update can be in, as dashboards name them.
STATES = ("found", "downloaded", "installed", "failed", "pending_reboot", "excluded", "not_selected")
#: States that end an attempt: the latest of these is the update's state.
OUTCOMES = ("installed", "failed", "pending_reboot", "excluded", "not_selected")

#: One event: a line that names an update and what happened to it; `attempt` marks the result of
#: one install attempt.
EVENT_SCHEMA: dict[str, pl.DataType] = {
    "host": pl.String(),
    "source": pl.String(),
    "format": pl.String(),
    "line_no": pl.Int64(),
    "ts": UTC_TS,
    "update_id": pl.String(),
    "kb": pl.String(),
    "title": pl.String(),
    "classification": pl.String(),
    "state": pl.String(),
    "hresult": pl.String(),
    "attempt": pl.Boolean(),
}

UPDATE_SCHEMA: dict[str, pl.DataType] = {
    "host": pl.String(),
    "update": pl.String(),  # the key: update id, else KB, else title (a Linux package name)
    "update_id": pl.String(),
    "kb": pl.String(),
    "title": pl.String(),
    "classification": pl.String(),
    "state": pl.String(),
    "first_seen": UTC_TS,
    "last_seen": UTC_TS,
    "last_hresult": pl.String(),
    "attempts": pl.Int64(),
    "events": pl.Int64(),
    "sources": pl.List(pl.String()),
}

#: WSUS update classification ids (the well-known category GUIDs) and their names.
CLASSIFICATIONS = {
    "0FA1201D-4330-4FA8-8AE9-B877473B6441": "Security Updates",
    "E6CF1350-C01B-414D-A61F-263D14D133B4": "Critical Updates",
    "CD5FFD1E-E932-4E3A-BF74-18BF0B1BBD83": "Updates",
    "E0789628-CE08-4437-BE74-2495B842F43B": "Definition Updates",
    "EBFC1FC5-71A4-4F7B-9ACA-3B9A503104A0": "Drivers",
    "28BC880E-0592-4CBF-8F95-C79B17911D5F": "Update Rollups",
    "68C5B0A3-D1A6-4553-AE49-01D3A7827828": "Service Packs",
    "B54E7D24-7ADD-428F-8B75-90A396FA584F": "Feature Packs",
    "B4832BD8-E735-4761-8DAF-37F882276DAB": "Tools",
    "3689BDC8-B205-4AF4-8D4A-A63924C5E9D5": "Upgrades",
}

GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
KB = r"(?i)(?:^|[^A-Za-z0-9])(KB\d{6,8})(?:\D|$)"


@dataclass(frozen=True)
class Extractor:
    """Update events from the records of some formats.

    `needles`: literals (matched case-insensitively) one of which every line it reads holds;
    `extract`: records (host, source, format, line_no, ts, kind, message, raw) -> events (any EVENT_SCHEMA
    columns; the rest are added as nulls).
    """

    name: str
    formats: tuple[str, ...]
    needles: tuple[str, ...]
    extract: Callable[[pl.DataFrame], pl.DataFrame]


def _hresult(hexpart: pl.Expr) -> pl.Expr:
    """`0x` + 8 upper hex digits, null for 0 (success without a code)."""
    h = hexpart.str.to_uppercase().str.zfill(8)
    return pl.when(h.is_null() | (h == "00000000")).then(None).otherwise(pl.lit("0x") + h)


def _kb_of(title: pl.Expr) -> pl.Expr:
    return title.str.extract(KB, 1).str.to_uppercase()


# -- WindowsUpdate.log classic and ReportingEvents.log: REPORT EVENT lines --------------------
#: `[REPORT EVENT: ]{event}<TAB>time<TAB>1<TAB>event id[ name]<TAB>101<TAB>{update}<TAB>revision
#: <TAB>hresult<TAB>caller<TAB>Success|Failure<TAB>category<TAB>text` (log-formats.md 1.1).
REPORT_EVENT = (
    r"^(?:REPORT EVENT: )?\{" + GUID + r"\}\t[^\t]*\t\d+\t\d+[^\t]*\t\d+\t\{(?P<uid>" + GUID + r")\}\t\d+\t"
    r"(?P<hr>[0-9A-Fa-f]{1,8})\t[^\t]*\t(?P<result>[^\t]*)\t(?P<category>[^\t]*)\t(?P<text>.*)$"
)
#: The update's title at the end of the text of install events.
REPORT_TITLE = r"(?:the following updates?(?: with error 0x[0-9A-Fa-f]{8})?|download new updates):\s+(.*?)\s*$"


def _report_events(df: pl.DataFrame) -> pl.DataFrame:
    g = df.with_columns(pl.col("message").str.extract_groups(REPORT_EVENT).alias("g")).unnest("g")
    g = g.filter(pl.col("uid").is_not_null() & ~pl.col("uid").str.starts_with("00000000-0000"))
    text, cat = pl.col("text"), pl.col("category")
    failed = (pl.col("result") == "Failure") | text.str.starts_with("Installation Failure")
    state = (
        pl.when((cat == "Content Download") & failed).then(pl.lit("failed"))
        .when(cat == "Content Download").then(pl.lit("downloaded"))
        .when((cat == "Content Install") & failed).then(pl.lit("failed"))
        .when((cat == "Content Install") & text.str.starts_with("Installation Successful")).then(pl.lit("installed"))
        .when((cat == "Content Install") & text.str.starts_with("Restart Required")).then(pl.lit("pending_reboot"))
        .otherwise(None)
    )
    title = text.str.extract(REPORT_TITLE, 1)
    return g.filter(cat.is_in(["Content Download", "Content Install"])).select(
        "host", "source", "format", "line_no", "ts", update_id=pl.col("uid").str.to_uppercase(),
        title=title, kb=_kb_of(title), state=state, hresult=_hresult(pl.col("hr")),
        attempt=state.is_in(["installed", "failed"]) & (cat == "Content Install"),  # a restart notice is no attempt
    )


def _reporting_events(df: pl.DataFrame) -> pl.DataFrame:
    """ReportingEvents.log: its parser rewrites the message; the line itself has the REPORT EVENT fields."""
    return _report_events(df.with_columns(message=pl.col("raw").str.strip_chars_start("\ufeff")))


# -- WindowsUpdate.log, Windows 10+ form -----------------------------------------------------
#: ComApi's one-line listing: `Title=<title>, ProductName=..., UpdateId=<guid>.<rev>, ...` and
#: `Deserialized installable update <title>, UpdateID = {<guid>.<rev>}, ...`.
COMAPI_TITLE = r"^\s*Title=(?P<t1>.*?), ProductName=.*?UpdateId=(?P<u1>" + GUID + r")\."
DESERIALIZED = r"^\s*Deserialized installable update (?P<t2>.*), UpdateID = \{(?P<u2>" + GUID + r")\."
#: The agent's install history entry, one per install result: `LogHistory called. idUpdate=
#: {<guid>}.<rev>, resultMapped=80070643, resultUnMapped=800F0828` (newer builds: `LogHistory
#: called for Caller=..., idUpdate=<guid>.<rev>, operation = Install, resultMapped=0, ...`).
LOG_HISTORY = (
    r"LogHistory called.*?idUpdate=\{?(?P<u4>" + GUID + r")\}?\.\d+(?:, operation = (?P<op>\w+))?"
    r", resultMapped=(?P<mapped>[0-9A-Fa-f]{1,8})"
)
DOWNLOADED = (
    r"(?:DO job \{?" + GUID + r"\}? completed successfully, updateId = (?P<u5>" + GUID + r")"
    r"|All files for update (?P<u6>" + GUID + r")\.\d+ were already downloaded and are valid)"
)
REBOOT_REQUIRED = r"get_RebootRequired exited for update (?P<u7>" + GUID + r")\.\d+, reboot required = Yes"
CLASSIFIED = (
    r"logged \w+ deloyment history, caller = .*?, update (?P<u8>" + GUID + r")\.\d+, "
    r"classification (?P<cls>" + GUID + r")"
)
#: HRESULTs of an install history entry that mean "done, but the machine must restart".
REBOOT_CODES = ("00240005", "80242014")


def _etw_events(df: pl.DataFrame) -> pl.DataFrame:
    m = pl.col("message")
    g = df.with_columns(
        m.str.extract_groups(COMAPI_TITLE).alias("a"), m.str.extract_groups(DESERIALIZED).alias("b"),
        m.str.extract_groups(LOG_HISTORY).alias("d"),
        m.str.extract_groups(DOWNLOADED).alias("e"), m.str.extract_groups(REBOOT_REQUIRED).alias("f"),
        m.str.extract_groups(CLASSIFIED).alias("h"),
    ).unnest("a", "b", "d", "e", "f", "h")
    mapped = pl.col("mapped").str.to_uppercase().str.zfill(8)
    history = pl.col("u4").is_not_null() & (pl.col("op").is_null() | (pl.col("op") == "Install"))
    state = (
        pl.when(history & mapped.is_in(REBOOT_CODES)).then(pl.lit("pending_reboot"))
        .when(history & mapped.str.slice(0, 1).is_in(list("89ABCDEF"))).then(pl.lit("failed"))
        .when(history).then(pl.lit("installed"))
        .when(pl.col("u5").is_not_null() | pl.col("u6").is_not_null()).then(pl.lit("downloaded"))
        .when(pl.col("u7").is_not_null()).then(pl.lit("pending_reboot"))
        .when(pl.col("u8").is_not_null()).then(None)
        .otherwise(pl.lit("found"))
    )
    title = pl.coalesce("t1", "t2")
    g = g.with_columns(update_id=pl.coalesce("u1", "u2", "u4", "u5", "u6", "u7", "u8").str.to_uppercase())
    g = g.filter(pl.col("update_id").is_not_null() & (pl.col("u4").is_null() | history))
    return g.select(
        "host", "source", "format", "line_no", "ts", "update_id", title=title, kb=_kb_of(title), state=state,
        hresult=pl.when(history).then(_hresult(pl.col("mapped"))).otherwise(None),
        classification=pl.col("cls").str.to_uppercase().replace_strict(CLASSIFICATIONS, default=pl.col("cls")),
        attempt=history,
    )


# -- omsupdatemgmt.log (Linux Update Management) ---------------------------------------------
#: `Found 3 packages to install: a, b, c` and `Unexpected return code (100) from package manager
#: on command: sudo apt-get ... install a b c` (log-formats.md 3.3; the shape is inferred).
OMS_FOUND = r"^Found \d+ packages? to install: (?P<found>[^\n]*)"
OMS_FAILED = r"^(?:ERROR: )?Unexpected return code \((?P<rc>\d+)\) from package manager on command: (?P<cmd>[^\n]*)"


def _oms_events(df: pl.DataFrame) -> pl.DataFrame:
    m = pl.col("message")
    g = df.with_columns(m.str.extract_groups(OMS_FOUND).alias("a"), m.str.extract_groups(OMS_FAILED).alias("b")).unnest(
        "a", "b")
    failed_pkgs = pl.col("cmd").str.extract(r"\binstall\s+(.*)$", 1).str.strip_chars().str.split(" ")
    g = g.with_columns(
        pkgs=pl.when(pl.col("found").is_not_null()).then(pl.col("found").str.split(", ")).otherwise(failed_pkgs),
        state=pl.when(pl.col("found").is_not_null()).then(pl.lit("found")).otherwise(pl.lit("failed")),
    ).filter(pl.col("pkgs").is_not_null()).explode("pkgs")
    g = g.filter(pl.col("pkgs").str.contains(r"^[A-Za-z0-9][\w.+:~-]*$"))  # package names, not options
    return g.select("host", "source", "format", "line_no", "ts", "state", title=pl.col("pkgs"),
                    attempt=pl.col("state") == "failed")


# -- Azure Update Manager: the patch extensions' status files (parsers/patchext_status.py) ------
#: One `patch` record per patch the status lists in a state worth a record; `raw` is the patch's
#: own JSON (patchId, name, version, classifications, patchInstallationState).
PATCH_STATE = {"Installed": "installed", "Failed": "failed", "Pending": "found", "Excluded": "excluded",
               "NotSelected": "not_selected"}


def _status_patches(df: pl.DataFrame) -> pl.DataFrame:
    raw = pl.col("raw")
    g = df.filter(pl.col("kind") == "patch").with_columns(
        state=raw.str.json_path_match("$.patchInstallationState").replace_strict(PATCH_STATE, default=None),
        name=raw.str.json_path_match("$.name"), version=raw.str.json_path_match("$.version"),
        update_id=raw.str.json_path_match("$.patchId"),
        classification=raw.str.json_path_match("$.classifications[0]"),
    ).filter(pl.col("state").is_not_null() & pl.col("name").is_not_null())
    title = pl.concat_str("name", pl.lit(" "), "version", ignore_nulls=True)
    return g.select("host", "source", "format", "line_no", "ts", "update_id", "state", "classification",
                    title=title, kb=_kb_of(title), attempt=pl.col("state").is_in(["installed", "failed"]))


EXTRACTORS: tuple[Extractor, ...] = (
    Extractor("report-event", ("windowsupdate-classic",), ("Content Install", "Content Download"), _report_events),
    Extractor("reportingevents", ("reportingevents",), ("Content Install", "Content Download"), _reporting_events),
    Extractor("windows10-agent", ("windowsupdate-etw", "windowsupdate-etl"),
              ("Title=", "installable update", "LogHistory called",
               "completed successfully, updateId", "already downloaded and are valid", "reboot required = Yes",
               "deloyment history"), _etw_events),
    Extractor("patchext-status", ("patchext-status",), ("Patch ",), _status_patches),
    Extractor("omsupdatemgmt", ("omsupdatemgmt",), ("packages to install", "package to install",
                                                    "Unexpected return code"), _oms_events),
)


#: Each extractor's needles as one regex for the lower-cased message (literals.holds).
_NEEDLE_REGEX = {e.name: literals_regex(e.needles) for e in EXTRACTORS}


def needles_of_family(family: str) -> tuple[str, ...]:
    """The literals the update extractors of a source family's formats need kept by the prefilter."""
    formats = {f for f, fam in FAMILY.items() if fam == family}
    return tuple(sorted({n.lower() for e in EXTRACTORS if formats & set(e.formats) for n in e.needles}))


def _conform(df: pl.DataFrame) -> pl.DataFrame:
    return df.select([pl.col(c).cast(t) if c in df.columns else pl.lit(None, dtype=t).alias(c)
                      for c, t in EVENT_SCHEMA.items()])


def extract_events(records: pl.DataFrame) -> pl.DataFrame:
    """Update events of a batch of prepared records (host, source, format, line_no, ts, kind,
    message, raw)."""
    out = []
    formats = set(records["format"].unique().to_list())
    for ex in EXTRACTORS:
        if not formats.intersection(ex.formats):
            continue
        part = with_lower(records.filter(pl.col("format").is_in(ex.formats)))
        part = part.filter(holds(_NEEDLE_REGEX[ex.name]))
        if part.height:
            got = ex.extract(part.select("host", "source", "format", "line_no", "ts", "kind", "message", "raw"))
            if got.height:
                out.append(_conform(got))
    return pl.concat(out) if out else pl.DataFrame(schema=EVENT_SCHEMA)


def build_updates(events: pl.DataFrame) -> pl.DataFrame:
    """One row per (host, update), in a stable order: host, then update key."""
    if events.height == 0:
        return pl.DataFrame(schema=UPDATE_SCHEMA)
    ev = events.with_columns(update=pl.coalesce("update_id", "kb", "title")).filter(
        pl.col("update").is_not_null())
    ev = ev.sort(["host", "update", "ts", "source", "line_no"], nulls_last=False)
    outcome = pl.col("state").is_in(OUTCOMES)
    rows = ev.group_by("host", "update", maintain_order=True).agg(
        update_id=pl.col("update_id").drop_nulls().last(),
        kb=pl.col("kb").drop_nulls().last(),
        title=pl.col("title").drop_nulls().last(),
        classification=pl.col("classification").drop_nulls().last(),
        last_outcome=pl.col("state").filter(outcome).last(),
        downloaded=(pl.col("state") == "downloaded").any(),
        first_seen=pl.col("ts").min(),
        last_seen=pl.col("ts").max(),
        last_hresult=pl.col("hresult").drop_nulls().last(),
        attempts=pl.col("attempt").fill_null(False).sum().cast(pl.Int64),
        events=pl.len().cast(pl.Int64),
        sources=pl.col("source").unique().sort(),
    )
    rows = rows.with_columns(
        state=pl.coalesce("last_outcome", pl.when(pl.col("downloaded")).then(pl.lit("downloaded")), pl.lit("found")))
    return rows.select(list(UPDATE_SCHEMA)).cast(UPDATE_SCHEMA).sort(["host", "update"])
