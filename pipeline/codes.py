"""Error codes out of free text, vectorised: every spelling, normalised to `0x` + 8 upper hex.

Spellings (../shared/reference/log-formats.md 1.3): `0x8024402C`, `[8024402C]`, `hr = 80244010`,
`hr:0x80072f8f`, `error 0x8024402c`, `Exit code = 0x...`, signed decimal `-2145124322`,
`Exception from HRESULT: 0x80070422`. A bare 8-hex run counts only after a context word or in
brackets, and never when it continues with `-` or more hex (a GUID segment such as
`{8024402C-...}` or `ServiceId = 80070005-1F2A-...`). Only failure HRESULTs (high bit set) count:
`0x00000000` and the WU_S_ success codes `0x0024xxxx` never do. The one bare code without a
context word, the HRESULT field of a failed classic `REPORT EVENT`, is read by its grammar
(parsers/grammar.py) on the few lines that can hold one.
"""

from __future__ import annotations

import re
from functools import lru_cache

import polars as pl

#: One code token with its context; the trailing group keeps GUID segments and longer hex out.
TOKEN = (
    r"(?i)(?:reason code\s*[=:]?\s*0x[0-9a-f]{8}"  # a shutdown reason (event 1074), consumed and dropped
    r"|0x[0-9a-f]{8}"
    r"|\[[0-9a-f]{8}\]"
    r"|\b(?:hresult|hr|error|code|returned|received|result|exited with)[\s:=('\"]{1,3}[234]\d{9}"  # unsigned
    r"|\b(?:hr|hresult|error|exit code|result code|code|returned|result(?:un)?mapped)\s*[=:]?\s*[0-9a-f]{8}"
    r"|\b(?:error|fehler|échec|erreur|errore|failed)[: ]\s*\d{1,5}(?:\s+[a-z]+)?"  # Win32 in words
    r"|(?:^|[^\w.\-])-21[0-4]\d{7})"
    r"(?:[^0-9a-z\-]|$)"
)
#: Cheap test for "this line may carry a failure code": every TOKEN that yields a code matches it.
#: The parsers' prefilter uses it so lines with only success codes or GUIDs are not cut into fields.
MAY_HOLD_CODE = (
    r"(?i)0x[89a-f][0-9a-f]{7}|\[[89a-f][0-9a-f]{7}\]"
    r"|(?:hr|hresult|error|code|returned|mapped)\s*[=:]?\s*[89a-f][0-9a-f]{7}|-21[0-4]\d{7}"
    r"|(?:hresult|hr|error|code|returned|received|result|exited with)[\s:=('\"]{1,3}[234]\d{9}"  # unsigned
    r"|(?:error|fehler|échec|erreur|errore|failed)[: ]\s*[1-9]"  # Win32 error numbers in words
    r"|\t[89a-f][0-9a-f]{7}\t"  # the HRESULT field of a failed REPORT EVENT
)
#: Lines on which the REPORT EVENT grammar runs (its failure HRESULT is a tab-separated field).
REPORT_CANDIDATE = r"^REPORT EVENT: \{.*\t[89a-fA-F][0-9a-fA-F]{7}\t"
_HEX = r"(?i)([0-9a-f]{8})(?:[^0-9a-z\-]|$)"
_DEC = r"(-21[0-4]\d{7})"
_UDEC = r"(?:^|\D)([234]\d{9})(?:\D|$)"
_WIN32 = r"(?i)^(?:error|fehler|échec|erreur|errore|failed)[: ]\s*(\d{1,5})(?:\s+([a-z]+))?"
#: `error 3 of 5`, `failed 2 times`: a count, not an error number.
_COUNT_WORDS = frozenset(
    """of out times time update updates package packages file files item items attempt attempts retry retries
    second seconds sec ms minute minutes hour hours day days byte bytes kb mb gb percent event events error
    errors warning warnings more and or in at on to x""".split()
)
#: `OpenSSL error:80000002:...` is OpenSSL's own packed code, not an HRESULT.
_OPENSSL = r"(?i)^error:[0-9a-f]{8}:"


@lru_cache(maxsize=1)
def win32_numbers() -> dict[str, str]:
    """Win32 error numbers the decoder names, as decimal text -> 0x8007XXXX. Only these are read from
    words (`error 1060`, `Fehler 5`): a number the decoder does not know is more likely a count or
    another product's error (MSI's `Error 1920.`) than a Win32 code."""
    from umtriage.patterns.catalog import load_decoder

    return {str(int(c[6:], 16)): c for c in load_decoder().codes if c.startswith("0x8007") and int(c[6:], 16)}


def _to_hex(values: pl.Expr, offset: int) -> pl.Expr:
    return (values + offset).map_batches(
        lambda s: s.map_elements(lambda v: f"{v:08X}", return_dtype=pl.String, skip_nulls=True),
        return_dtype=pl.String,
    )


def _normalise_tokens(tokens: pl.Expr) -> pl.Expr:
    """Token text to a normalised code, or null for success codes and non-codes."""
    dec = tokens.str.extract(_DEC, 1).cast(pl.Int64, strict=False)
    udec = tokens.str.extract(_UDEC, 1).cast(pl.Int64, strict=False)
    udec = pl.when(udec.is_between(1 << 31, (1 << 32) - 1)).then(udec)
    win32_num = tokens.str.extract(_WIN32, 1).str.strip_chars_start("0")
    counted = tokens.str.extract(_WIN32, 2).str.to_lowercase().is_in(list(_COUNT_WORDS)).fill_null(False)
    win32 = pl.when(~counted).then(win32_num.replace_strict(win32_numbers(), default=None, return_dtype=pl.String))
    hexpart = pl.coalesce(
        _to_hex(dec, 1 << 32), _to_hex(udec, 0), win32.str.slice(2),
        pl.when(~tokens.str.contains(_WIN32)).then(tokens.str.extract(_HEX, 1).str.to_uppercase()),
    )
    code = pl.concat_str(pl.lit("0x"), hexpart)
    failure = hexpart.str.slice(0, 1).is_in(list("89ABCDEF")) & ~tokens.str.to_lowercase().str.starts_with("reason")
    failure = failure & ~tokens.str.contains(_OPENSSL)
    return pl.when(failure).then(code).otherwise(None)


def extract_codes(messages: pl.Series) -> pl.Series:
    """List of distinct codes per message, in order of appearance (empty list when none)."""
    n = len(messages)
    if n == 0:
        return pl.Series("codes", [], dtype=pl.List(pl.String))
    frame = pl.DataFrame({"row": pl.int_range(0, n, eager=True, dtype=pl.UInt32), "m": messages})
    # a cheap test first: extract_all only runs on messages that can hold a failure code
    toks = frame.filter(pl.col("m").str.contains(MAY_HOLD_CODE)).select(
        "row", tok=pl.col("m").str.extract_all(TOKEN)
    )
    flat = toks.explode("tok").drop_nulls("tok")
    # few distinct tokens (93 among 34k in 300 MB of WindowsUpdate.log): each is normalised once
    table = flat.select("tok").unique().with_columns(code=_normalise_tokens(pl.col("tok"))).drop_nulls("code")
    flat = flat.join(table, on="tok", maintain_order="left").select("row", "code")
    # the report's own HRESULT field comes first in its message, so first in the list
    flat = pl.concat([_report_event_codes(frame), flat])
    if flat.height == 0:
        return pl.select(pl.repeat(pl.lit([], dtype=pl.List(pl.String)), n).alias("codes")).to_series()
    grouped = flat.group_by("row", maintain_order=True).agg(pl.col("code").unique(maintain_order=True))
    full = pl.DataFrame({"row": pl.int_range(0, n, eager=True, dtype=pl.UInt32)}).join(
        grouped, on="row", how="left", maintain_order="left"
    )
    return full["code"].fill_null(pl.lit([], dtype=pl.List(pl.String))).alias("codes")


def _report_event_codes(frame: pl.DataFrame) -> pl.DataFrame:
    """(row, code) for failed classic REPORT EVENTs, read with the grammar on candidates only."""
    cand = frame.filter(pl.col("m").str.contains(REPORT_CANDIDATE))
    rows = []
    if cand.height:  # the grammar (pyparsing, 20 ms to import) only when a classic failure is there
        from umtriage.parsers.grammar import parse_report_event
    for row, message in cand.iter_rows():
        event = parse_report_event(message)
        if event is not None and event.failure_code:
            rows.append((row, event.failure_code))
    return pl.DataFrame(rows, schema={"row": pl.UInt32, "code": pl.String}, orient="row")


#: Events whose hex values are not failures: User32 1074 records a shutdown reason code
#: (e.g. 0x80020010, "Operating System: Service pack (Planned)") for every planned restart.
NOT_ERROR_EVENTS: tuple[tuple[str, int], ...] = (("User32", 1074),)


def codes_expr_mask(provider: pl.Expr, event_id: pl.Expr) -> pl.Expr:
    """True for records whose codes must be ignored (see NOT_ERROR_EVENTS)."""
    out = pl.lit(False)
    for prov, eid in NOT_ERROR_EVENTS:
        out = out | ((provider == prov) & (event_id == eid)).fill_null(False)
    return out


def normalise_code(text: str) -> str | None:
    """One code typed by a user (`8024402c`, `0x8024402C`, `-2145107924`, `[8024402C]`), or None."""
    t = text.strip().strip("[]")
    if re.fullmatch(r"-\d{1,10}", t):
        v = int(t)
        if -(1 << 31) <= v < 0:
            return f"0x{v + (1 << 32):08X}"
        return None
    if re.fullmatch(r"\d{10}", t) and (1 << 31) <= int(t) < (1 << 32):  # unsigned decimal
        return f"0x{int(t):08X}"
    m = re.fullmatch(r"(?i)(?:0x)?([0-9a-f]{8})", t)
    if m and m.group(1)[0].upper() in "89ABCDEF":
        return "0x" + m.group(1).upper()
    return None
