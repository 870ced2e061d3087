#!/usr/bin/env python3
"""Synthetic WindowsUpdate.log files for throughput benchmarks: large, realistic, reproducible.

Why a generator: the real corpus is a few MB, but the performance targets are about GB-sized
files and fleets of thousands of hosts. Everything here comes from one seeded RNG, so the same
parameters give the same bytes on every machine, and files are written in chunks, so memory does
not grow with the target size. Pure standard library: it runs without the project installed.

Shape (see ../shared/reference/log-formats.md section 1): the Windows 10 form written by
Get-WindowsUpdateLog (default), the classic tab-separated form, or a mix of both by session.
Lines come in episodes (a scan, a download or an install) whose body is drawn from several
hundred message templates (hand-written ones plus component x verb x object combinations) with
variable GUIDs, KB numbers, URLs, paths and counters. About 1.5% of the lines are error lines
(a `*FAILED* [XXXXXXXX]` cascade, `WARNING:`/`FATAL:` lines, failure exit codes), most of them
with the catalog's codes. Successful episodes end with `Exit code = 0x00000000`, and some GUIDs
start with an error-like hex run (`{8024402C-...}`) that must never count as a code.

An *error line* is, by construction, a line that carries a failure HRESULT or a WARNING/ERROR/
FATAL/*FAILED* level; every other line carries neither. `GenStats.error_lines` counts them.

CLI: `gen_wulog.py file OUT --size 50M [--form win10|classic|mixed]` and
`gen_wulog.py bundle DIR --files 2000 --avg-size 250K`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

#: Bump when the output for given parameters changes: cached files carry it in their name.
GEN_VERSION = 3
FORMS = ("win10", "classic", "mixed")
DEFAULT_ERROR_SHARE = 0.015

# --- error codes ------------------------------------------------------------------------------

#: Codes that have their own signature in the catalog; drawn three times as often as the others.
CATALOG_CODES = (
    "0x8024402C", "0x80072EE2", "0x8024401C", "0x8024402F", "0x80070005", "0x80070422",
    "0x8024001E", "0x8024002E",
)
#: Other Windows Update / Windows failure codes (caught by the catch-all signature).
OTHER_CODES = (
    "0x80072EE7", "0x80072EFD", "0x80072F8F", "0x80244022", "0x80244017", "0x80244018", "0x80244010",
    "0x80240438", "0x80246008", "0x8024000B", "0x80240022", "0x80240FFF", "0x8024A105", "0x80070057",
    "0x800736B3", "0x80070643", "0x80073712", "0x800F0922", "0x80070426", "0x80240017",
)
#: Which codes fit which kind of episode.
NETWORK_CODES = frozenset({
    "0x8024402C", "0x80072EE2", "0x8024401C", "0x8024402F", "0x80072EE7", "0x80072EFD", "0x80072F8F",
    "0x80244022", "0x80244017", "0x80244018", "0x80244010", "0x80240438", "0x8024000B",
})
DOWNLOAD_CODES = frozenset({"0x80246008", "0x8024001E", "0x80072EE2", "0x80240438", "0x80070422", "0x8024A105"})
INSTALL_CODES = frozenset({
    "0x80070643", "0x800F0922", "0x80073712", "0x8024001E", "0x80070005", "0x800736B3", "0x80070057",
    "0x80240022", "0x80240FFF", "0x80240017",
})
SCAN_CODES = NETWORK_CODES | {"0x80070005", "0x8024002E", "0x80070422", "0x80070426"}

# --- template language --------------------------------------------------------------------------
# A template is text with `$slot` placeholders; slots are methods `s_<slot>` of _Host. `$X` is the
# current failure code (upper, no 0x) and `$x` the same in lower case.

_SLOT = re.compile(r"\$([a-zA-Z]\w*)")


@dataclass(frozen=True)
class Template:
    component: str
    fmt: str  # %-format string
    slots: tuple[str, ...]
    error: bool = False


def tpl(component: str, text: str, error: bool = False) -> Template:
    """Compile `text` with `$slot` placeholders into a %-format template."""
    slots = tuple(_SLOT.findall(text))
    fmt = _SLOT.sub("%s", text.replace("%", "%%"))
    return Template(component, fmt, slots, error)


# Windows 10 form: hand-written body templates (component, text, weight).
WIN10_BODY: tuple[tuple[str, str, int], ...] = (
    ("Agent", "Online = $yn; AllowCachedResults = $yn; Ignore download priority = $yn", 20),
    ("Agent", "Criteria = IsInstalled=0 AND DeploymentAction='Installation' OR IsInstalled=1 AND "
              "DeploymentAction='Uninstallation' AND IsHidden=0\"\"", 12),
    ("Agent", "ServiceID = {$svc} $svcname", 20),
    ("Agent", "Search Scope = {Machine}", 14),
    ("Agent", "Caller SID for Applicability: S-1-5-18", 10),
    ("Agent", "  Title = $title", 40),
    ("Agent", "  UpdateId = $uid.$rev", 40),
    ("Agent", "    Bundles $n updates:", 8),
    ("Agent", "      $uid.$rev", 20),
    ("Agent", "Effective power state: $power; IsOnAC: $yn.", 10),
    ("Agent", "Obtained a network PDC reference for callID {$guid} with No-Progress-Timeout set to $big; "
              "ActivationID: $n.", 8),
    ("Agent", "Released network PDC reference for callID {$guid}; ActivationID: $n.", 8),
    ("Agent", "Timer: $guid, Expires $date $clock, not idle-only, network-only", 10),
    ("Agent", "Deferring the sync for $n minutes because the machine is metered", 2),
    ("Agent", "Added update $uid.$rev to search result", 25),
    ("Agent", "Found $n updates and $n3 categories in search; evaluated appl. rules of $n3 out of $n4 "
              "deployed entities", 4),
    ("ComApi", "* START *   Search ClientId = $caller, ServiceId = $svc, Flags: 0X$flags (cV = $cv)", 10),
    ("ComApi", "Serializing CUpdate $uid.$rev, Last modified time $isotime", 25),
    ("ComApi", "Update serialization complete. BSTR byte length = $big", 25),
    ("ComApi", "XxxJobImpl: _EndXxx invoked (cV = $cv)", 10),
    ("ComApi", "ISusInternal:: DisconnectCall failed, hr=0x00000000", 1),
    ("ComApi", "GetUpdateCommitRequired call for update $uid.$rev from handler returned Commit required = $yn", 12),
    ("ComApi", "Install call complete (succeeded = $n, succeeded with errors = 0, failed = 0, cancelled = 0, "
               "unaccounted = 0", 4),
    ("DownloadManager", "Priority = $n, NetworkCostPolicy = $n, Interactive = $b01, Download on Battery = $b01, "
                        "Owner is system = 1, Proxy session id = $n, ServiceId = $svc.", 10),
    ("DownloadManager", "Updates to download = $n", 10),
    ("DownloadManager", "Handler returned total download size for update $uid.$rev (session data (null)) as $big",
     15),
    ("DownloadManager", "  Per-Update: $uid CDN prefix $n", 20),
    ("DownloadManager", "Download job $guid resumed.", 15),
    ("DownloadManager", "DO job initialized: JobId = {$guid}", 12),
    ("DownloadManager", "Update the URLs for DO Job $guid - Update $uid.$rev", 15),
    ("DownloadManager", "DO job {$guid} completed successfully, bytes total = $big, downloaded = $big", 10),
    ("DownloadManager", "Service Regulator is initializing for service {$svc}", 6),
    ("DownloadManager", "Service Regulation: {$svc} - Loaded sequence number $n4 for regulation category "
                        "PerUpdate.", 6),
    ("DownloadManager", "Progress: $pct% of update $uid.$rev, $big bytes of $big", 30),
    ("Misc", "Got $svc redir Client/Server URL: $url", 12),
    ("Misc", "Token Requested with 0 category IDs.", 8),
    ("Misc", "UUS: Session=wu.$module, Module=$module.dll, Version=$ver, Path=$wpath\\$module.dll", 6),
    ("Misc", "Load undocked module: UusId:wu.$module|hr:0x0|ModuleVer:$ver|LoadProps:3|Path:$wpath\\$module.dll",
     6),
    ("Misc", "Validating signature for $dlpath with dwProvFlags 0x$flags:", 10),
    ("Misc", "Infrastructure signed with Microsoft-issued certificate, file $dlpath", 10),
    ("SLS", "Get response for service $svc - forceExpire[$bool] asyncRefreshOnExpiry[$bool]", 30),
    ("SLS", "path used for cache lookup: /SLS/{$svc}/x64/$ver/0?CH=$n3&L=$locale&P=&PT=0x30&WUA=$ver", 30),
    ("SLS", "Retrieving SLS response from server using ETAG \"$b64\"", 10),
    ("SLS", "Making request with URL $url and send SLS events, cV=$cv", 10),
    ("SLS", "Persisting SLS response for service $svc to cache, size $big bytes", 6),
    ("Handler", "AppX GDR: New Deployment Operation", 8),
    ("Handler", "Staging package for update $uid [Required content only: $bool]", 8),
    ("Handler", "New StreamingDataSource created for update {$uid}", 8),
    ("Handler", "AppX package install complete for update $uid.$rev redownload = $bool", 6),
    ("Handler", "CBS package identity: Package_for_RollupFix~31bf3856ad364e35~amd64~~$ver", 6),
    ("Handler", "Requesting CBS session for update $uid.$rev, elapsed $ms ms", 6),
    ("IdleTimer", "WU operation (SR.$proc ID $n) started; operation # $n3; does use network; is not at background "
                  "priority (cV = $cv)", 12),
    ("IdleTimer", "WU operation (DL.$caller) stopped; operation # $n3; does use network; is at background "
                  "priority", 12),
    ("IdleTimer", "Non-protocol operation $n3 ended; $n remain", 6),
    ("UDP", "Deployment job Id $guid : NotifyClient ($n4)(0) called for update id $uid, code = Update progress, "
            "percent = $pct", 20),
    ("UDP", "Deployment job Id $guid : Initialized successfully.", 6),
    ("UDP", "Deployment job Id $guid : Update $uid.$rev state changed to Installed", 6),
    ("ProtocolTalker", "OK to reuse existing configuration", 8),
    ("ProtocolTalker", "Existing cookie is valid, just use it", 8),
    ("ProtocolTalker", "PTInfo: Server requested registration", 2),
    ("ProtocolTalker", "SyncUpdates round trips: $n", 6),
    ("ProtocolTalker", "ServiceId = {$svc}, Server URL = $url", 8),
    ("Deployment", "Deployment job Id $guid : Update $uid.$rev queued for install, priority $n", 6),
    ("Deployment", "Reboot required = $bool for update $uid.$rev", 4),
    ("Shared", "Power status changed", 4),
    ("Shared", "Network state: Connected = $bool, Cost = $n", 4),
    ("Metadata", "Fragment signing: update $uid.$rev verified with $n3 bytes", 6),
    ("Metadata", "Protocol talker: saving $n3 metadata fragments for $uid", 6),
    ("WebServices", "Auto proxy settings for this web service call.", 8),
    ("WebServices", "Web service call complete, $ms ms, $big bytes", 8),
    ("WebServices", "Proxy bypass list: <local>; server: $proxy", 4),
    ("Driver", "Matching hardware id PCI\\VEN_$hw&DEV_$hw&SUBSYS_$hex8 for update $uid.$rev", 6),
    ("DataStore", "Update $uid.$rev stored with $n3 bytes of metadata", 6),
    ("EEHandler", "Expression evaluation for $uid.$rev returned $bool", 6),
    ("Reporter", "Reporting event $n3 for update $uid.$rev, status $n", 6),
    ("Api", "* START * API: Search ClientId = $caller (cV = $cv)", 4),
)

#: Combinatorial body templates: a component, a verb, an object and a tail with variables.
COMBO_COMPONENTS = (
    "Agent", "ComApi", "DownloadManager", "Misc", "SLS", "Handler", "Deployment", "Metadata", "DataStore",
    "Shared", "IdleTimer", "WebServices",
)
COMBO_VERBS = (
    "Loaded", "Refreshed", "Validated", "Persisted", "Queued", "Released", "Evaluated", "Registered",
    "Deferred", "Resumed", "Cached", "Skipped", "Merged", "Expired",
)
COMBO_OBJECTS = (
    "service registration", "policy value", "client cookie", "settings blob", "download job", "install session",
    "metadata fragment", "handler state", "deployment record", "network cost profile", "update category",
    "EULA acceptance", "reboot flag", "scan result", "content range", "driver evaluation", "power request",
    "idle timer", "CBS session", "token cache", "applicability rule", "approval record",
)
COMBO_TAILS = (
    " for update $uid.$rev", " for service {$svc}", " (cV = $cv)", " in $ms ms", ", count = $n",
    ": $url", " from $dlpath", " with hr = 0x00000000", " [CallerId = $caller]", " ($n3 bytes)",
)
#: How many verb/object/tail combinations each form uses (a fixed, seed-independent choice).
COMBO_COUNT = 420

CLASSIC_BODY: tuple[tuple[str, str, int], ...] = (
    ("AU", "AU setting next detection timeout to $date $clock", 10),
    ("AU", "Successfully wrote event for AU health state:0", 12),
    ("AU", "AU finished delayed initialization", 4),
    ("AU", "  # Approval type: Scheduled (User preference)", 1),
    ("AU", "  # Will interact with non-admins (Non-admins are elevated (User preference))", 2),
    ("AU", "Triggering AU detection through DetectNow API", 4),
    ("AU", "AU setting pending client directive to 'Install Approval'", 3),
    ("AU", "#############", 6),
    ("AU", "## START ##  AU: Search for updates", 6),
    ("AU", "## END ##  AU: Search for updates [CallId = {$guid}]", 6),
    ("AU", "  # $n updates detected", 6),
    ("AU", "Obtained service token for session $n", 4),
    ("Agent", "  * Title = $title", 20),
    ("Agent", "  * UpdateId = {$uid}.$rev", 20),
    ("Agent", "  * Bundles $n updates:", 6),
    ("Agent", "  *   {$uid}.$rev", 15),
    ("Agent", "  * Added update {$uid}.$rev to search result", 20),
    ("Agent", "  * Online = $yn; Ignore download priority = $yn", 8),
    ("Agent", "  * ServiceID = {$svc} $svcname", 8),
    ("Agent", "  * Search Scope = {Machine}", 6),
    ("Agent", "WU client version $ver", 3),
    ("Agent", "Base directory: C:\\Windows\\SoftwareDistribution", 3),
    ("Agent", "Access type: No proxy", 3),
    ("Agent", "Network state: Connected", 5),
    ("Agent", "Update {$uid}.$rev is pruned out due to potential supersedence", 10),
    ("Agent", "Sending shutdown notification to client", 2),
    ("DnldMgr", "Asking handlers to generate non-range requests for update {$uid}.$rev", 8),
    ("DnldMgr", "Downloading from $url to $dlpath (full file).", 10),
    ("DnldMgr", "***********  DnldMgr: New download job [UpdateId = {$uid}.$rev]  ***********", 6),
    ("DnldMgr", "  * BITS job initialized, JobId = {$guid}", 6),
    ("DnldMgr", "  * Queueing update for download handler request generation.", 6),
    ("DnldMgr", "Preparing update for install, updateId = {$uid}.$rev.", 6),
    ("COMAPI", "-------------", 8),
    ("COMAPI", "-- START --  COMAPI: Search [ClientId = $caller]", 6),
    ("COMAPI", "---------", 8),
    ("COMAPI", "  - Online = $yn; Ignore download priority = $yn", 6),
    ("COMAPI", "  - Updates found = $n", 6),
    ("COMAPI", "<<-- SUBMITTED -- COMAPI: Search [ClientId = $caller]", 5),
    ("COMAPI", "--  END  --  COMAPI: Search [ClientId = $caller]", 6),
    ("Setup", "Checking for agent SelfUpdate", 5),
    ("Setup", "Client version: Core: $ver  Aux: $ver", 5),
    ("Setup", "  * IsUpdateRequired = No", 5),
    ("Setup", "SelfUpdate check completed.  SelfUpdate is NOT required.", 5),
    ("PT", "+++++++++++  PT: Synchronizing server updates  +++++++++++", 5),
    ("PT", "  + ServiceId = {$svc}, Server URL = $url", 5),
    ("PT", "Initializing simple targeting cookie, clientId = $guid, target group = , DNS name = $fqdn", 5),
    ("PT", "  Server URL = $url", 5),
    ("Report", "CWERReporter finishing event handling. (00000000)", 8),
    ("Report", "  * Computer Brand = $brand", 2),
    ("Report", "  * Locale ID = $lcid", 2),
    ("Report", "CWERReporter::HandleEvents - WER report upload completed with status 0x8", 3),
    ("Handler", ":: START ::  Handler: CBS Install", 4),
    ("Handler", ":::::::::", 6),
    ("Handler", "  : Updates to install = $n", 4),
    ("Handler", "::  END  ::  Handler: CBS Install", 4),
    ("Handler", "Completed install of CBS update with type=0, requiresReboot=0, installerError=0, hr=0x0", 4),
    ("DtaStor", "Update service properties: service is registered with AU", 3),
    ("DtaStor", "Default service for AU is {$svc}", 3),
    ("Service", "*********", 3),
)
CLASSIC_COMPONENTS = ("AU", "Agent", "DnldMgr", "COMAPI", "Setup", "PT", "Report", "Handler", "DtaStor", "Misc")
CLASSIC_BULLETS = ("", "  * ", "  # ", "  + ", "  - ")


def _combos(components: tuple[str, ...], bullets: tuple[str, ...] = ("",)) -> list[tuple[str, str, int]]:
    """A fixed spread of COMBO_COUNT verb x object x tail templates over `components`."""
    pick = random.Random(1234)  # part of the format, not of the seed: same templates for every file
    seen: set[tuple[int, int, int]] = set()
    out: list[tuple[str, str, int]] = []
    while len(out) < COMBO_COUNT:
        key = (pick.randrange(len(COMBO_VERBS)), pick.randrange(len(COMBO_OBJECTS)), pick.randrange(len(COMBO_TAILS)))
        if key in seen:
            continue
        seen.add(key)
        v, o, t = key
        text = f"{pick.choice(bullets)}{COMBO_VERBS[v]} {COMBO_OBJECTS[o]}{COMBO_TAILS[t]}"
        out.append((components[len(out) % len(components)], text, 1))
    return out


def _pool(body: tuple[tuple[str, str, int], ...], combos: list[tuple[str, str, int]]) -> tuple[list, list]:
    items = [(tpl(c, t), w) for c, t, w in (*body, *combos) if w > 0]
    cum, total = [], 0
    for _, w in items:
        total += w
        cum.append(total)
    return [t for t, _ in items], cum


WIN10_POOL = _pool(WIN10_BODY, _combos(COMBO_COMPONENTS))
CLASSIC_POOL = _pool(CLASSIC_BODY, _combos(CLASSIC_COMPONENTS, CLASSIC_BULLETS))

# Episode frames: (start lines, success end lines) per kind and form.
WIN10_START = {
    "scan": (tpl("Agent", "* START * Finding updates CallerId = $caller  Id = $opid (cV = $cv)"),),
    "download": (tpl("DownloadManager", "* START * Begin Downloading Updates [CallerId = $caller] "
                                        "[Call ID = {$callid}]"),),
    "install": (tpl("Agent", "* START * Installing updates CallerId = $caller Id = $opid (cV = $cv)"),
                tpl("Agent", "Updates to install = $n")),
}
WIN10_OK = {
    "scan": (tpl("ComApi", "* END *   Search ClientId = $caller, Updates found = $n, ServiceId = $svc (cV = $cv)"),
             tpl("Agent", "* END * Finding updates CallerId = $caller, Id = $opid, Exit code = 0x00000000 "
                          "(cV = $cv)"),
             tpl("ComApi", "Exit code = 0x00000000, Result code = 0x00000000 (cV = $cv)")),
    "download": (tpl("DownloadManager", "* END * Begin Downloading Updates [CallerId = $caller] "
                                        "[Call ID = {$callid}] [hr = 0x00000000]"),),
    "install": (tpl("Agent", "* END * Installing updates CallerId = $caller, Id = $opid, Exit code = 0x00000000 "
                             "(cV = $cv)"),
                tpl("ComApi", "Install call complete (succeeded = $n, succeeded with errors = 0, failed = 0, "
                              "cancelled = 0, unaccounted = 0")),
}
#: Failure cascades: (template, always emitted?) in order; optional steps are kept at random.
WIN10_FAIL = {
    "scan": (
        (tpl("Misc", "*FAILED* [$X] WinHttp: SendRequestWithAuthRetry using proxy failed for <$url>", True), False),
        (tpl("Misc", "*FAILED* [$X] Send request", True), False),
        (tpl("Misc", "*FAILED* [$X] Library download error. Will retry. Retry Counter: $n", True), False),
        (tpl("WebServices", "MapToSusHResult mapped Nws error 0x803d0006 to 0x$x", True), False),
        (tpl("WebServices", "*FAILED* [$X] WebService call failed during NwsCallWithRetries with a transient "
                            "error. Retrying after waiting $ms msecs. Retry Counter: $n", True), False),
        (tpl("WebServices", "Error 0x$x is considered transient", True), False),
        (tpl("WebServices", "*FAILED* [$X] Web service call. Current service auth scheme=0. Current Proxy auth "
                            "scheme=0.", True), True),
        (tpl("ProtocolTalker", "*FAILED* [$X] Sync of Updates", True), False),
        (tpl("ProtocolTalker", "*FAILED* [$X] SyncServerUpdatesInternal", True), True),
        (tpl("Agent", "*FAILED* [$X] wuauengcore.dll, C:\\__w\\1\\s\\src\\Client\\Engine\\Agent\\$cpp.cpp @$n4",
             True), False),
        (tpl("Agent", "* END * Finding updates CallerId = $caller, Id = $opid, Exit code = 0x$X (cV = $cv)", True),
         True),
        (tpl("ComApi", "Exit code = 0x00000000, Result code = 0x$X (cV = $cv)", True), False),
    ),
    "download": (
        (tpl("DownloadManager", "*FAILED* [$X] Connect to the DO service", True), False),
        (tpl("DownloadManager", "DO job {$guid} hit a transient error, updateId = $uid.$rev, hr = 0x$X", True),
         False),
        (tpl("DownloadManager", "*FAILED* [$X] Download job {$guid} failed for update $uid.$rev", True), True),
        (tpl("DownloadManager", "Exit Code: 0x80246008, Extended Code: 0x$X", True), False),
        (tpl("DownloadManager", "* END * Begin Downloading Updates [CallerId = $caller] [Call ID = {$callid}] "
                                "[hr = 0x$X]", True), True),
    ),
    "install": (
        (tpl("Handler", "*FAILED* [$X] CBS install of update $uid.$rev, session {$guid}", True), True),
        (tpl("Deployment", "*FAILED* [$X] Deployment job Id $guid : installing update $uid.$rev", True), False),
        (tpl("Agent", "*FAILED* [$X] wuauengcore.dll, C:\\__w\\1\\s\\src\\Client\\Engine\\Handler\\$cpp.cpp @$n4",
             True), False),
        (tpl("Agent", "* END * Installing updates CallerId = $caller, Id = $opid, Exit code = 0x$X (cV = $cv)",
             True), True),
        (tpl("ComApi", "Install call complete (succeeded = 0, succeeded with errors = 0, failed = $n, "
                       "cancelled = 0, unaccounted = 0", False), False),
    ),
}

CLASSIC_START = {
    "scan": (tpl("Agent", "*************"),
             tpl("Agent", "** START **  Agent: Finding updates [CallerId = $caller]"),
             tpl("Agent", "*********"),
             tpl("Agent", "  * Criteria = \"IsHidden=0 and IsInstalled=0 and DeploymentAction='Installation' and "
                          "IsAssigned=1 or IsHidden=0 and IsPresent=1 and DeploymentAction='Uninstallation'\"")),
    "download": (tpl("AU", "AU initiates download, updateId = {$uid}.$rev"),
                 tpl("DnldMgr", "*************"),
                 tpl("DnldMgr", "** START **  DnldMgr: Downloading updates [CallerId = $caller]"),
                 tpl("DnldMgr", "*********")),
    "install": (tpl("Agent", "*************"),
                tpl("Agent", "** START **  Agent: Installing updates [CallerId = $caller]"),
                tpl("Agent", "*********"),
                tpl("Agent", "  * Updates to install = $n")),
}
_REPORT = "REPORT EVENT: {$guid}\t$rts\t1\t"
CLASSIC_OK = {
    "scan": (tpl("Agent", "  * Found $n updates and $n3 categories in search; evaluated appl. rules of $n3 out of "
                          "$n4 deployed entities"),
             tpl("Agent", "*********"),
             tpl("Agent", "**  END  **  Agent: Finding updates [CallerId = $caller]"),
             tpl("Agent", "*************"),
             tpl("Report", _REPORT + "147\t101\t{00000000-0000-0000-0000-000000000000}\t0\t0\t$caller\tSuccess\t"
                                     "Software Synchronization\tWindows Update Client successfully detected $n "
                                     "updates.")),
    "download": (tpl("DnldMgr", "**  END  **  DnldMgr: Downloading updates [CallerId = $caller]"),
                 tpl("Report", _REPORT + "167\t101\t{$uid}\t$rev\t0\t$caller\tSuccess\tContent Download\t"
                                         "Download succeeded.")),
    "install": (tpl("Agent", "**  END  **  Agent: Installing updates [CallerId = $caller]"),
                tpl("Report", _REPORT + "183\t101\t{$uid}\t$rev\t0\t$caller\tSuccess\tContent Install\t"
                                        "Installation Successful: Windows successfully installed the following "
                                        "update: $title")),
}
CLASSIC_FAIL = {
    "scan": (
        (tpl("Misc", "WARNING: Send failed with hr = $x.", True), False),
        (tpl("Misc", "WARNING: SendRequest failed with hr = $x. Proxy List used: <$proxy> Bypass List used : "
                     "<(null)> Auth Schemes used : <>", True), False),
        (tpl("Misc", "WARNING: WinHttp: SendRequestUsingProxy failed for <$url>. error 0x$x", True), True),
        (tpl("PT", "  + Caller provided credentials = No", False), False),
        (tpl("PT", "WARNING: Sync of Updates: 0x$x", True), True),
        (tpl("PT", "WARNING: SyncServerUpdatesInternal failed: 0x$x", True), False),
        (tpl("Setup", "FATAL: IsUpdateRequired failed with error 0x$x", True), False),
        (tpl("Agent", "  * WARNING: Failed to synchronize, error = 0x$X", True), False),
        (tpl("Agent", "  * WARNING: Exit code = 0x$X", True), True),
        (tpl("Agent", "**  END  **  Agent: Finding updates [CallerId = $caller]", False), True),
        (tpl("AU", "  # WARNING: Search callback failed, result = 0x$X", True), False),
        (tpl("AU", "  # WARNING: Failed to find updates with error code $X", True), False),
        (tpl("Report", _REPORT + "148\t101\t{00000000-0000-0000-0000-000000000000}\t0\t$x\t$caller\tFailure\t"
                                 "Software Synchronization\tWindows Update Client failed to detect with error "
                                 "0x$x.", True), True),
    ),
    "download": (
        (tpl("DnldMgr", "WARNING: BITS job {$guid} failed, updateId = {$uid}.$rev, hr = 0x$X", True), True),
        (tpl("DnldMgr", "  * WARNING: Exit code = 0x$X", True), False),
        (tpl("DnldMgr", "**  END  **  DnldMgr: Downloading updates [CallerId = $caller]", False), True),
        (tpl("Report", _REPORT + "161\t101\t{$uid}\t$rev\t$x\t$caller\tFailure\tContent Download\tError: Download "
                                 "failed.", True), False),  # its HRESULT field is the failure code
    ),
    "install": (
        (tpl("Handler", "FATAL: CBS called Error with 0x$x, ", True), True),
        (tpl("Handler", "FATAL: Completed install of CBS update with type=0, requiresReboot=0, installerError=1, "
                        "hr=0x$x", True), False),
        (tpl("Agent", "WARNING: Failed to evaluate Installed rule, updateId = {$uid}.$rev, hr = $X", True), False),
        (tpl("Agent", "  * WARNING: Exit code = 0x$X", True), True),
        (tpl("Agent", "**  END  **  Agent: Installing updates [CallerId = $caller]", False), True),
        (tpl("Report", _REPORT + "182\t101\t{$uid}\t$rev\t$x\t$caller\tFailure\tContent Install\tInstallation "
                                 "Failure: Windows failed to install the following update with error 0x$x: $title.",
             True), True),
    ),
}
CLASSIC_BANNER = (
    tpl("Misc", "===========  Logging initialized (build: $ver, tz: $tz)  ==========="),
    tpl("Misc", "  = Process: C:\\Windows\\system32\\svchost.exe"),
    tpl("Misc", "  = Module: c:\\windows\\system32\\wuaueng.dll"),
    tpl("Service", "*************"),
    tpl("Service", "** START **  Service: Service startup"),
    tpl("Service", "*********"),
)
CLASSIC_EXIT = (tpl("Service", "**  END  **  Service: Service exit [Exit code = 0x240001]"),)
WIN10_BANNER = (tpl("Shared", "* START * Service startup"), tpl("Agent", "WU client version $ver"))
WIN10_EXIT = (tpl("Shared", "* END * Service exit Exit code = 0x240001"),)
WIN10_UNDECODED = tpl("", "Unknown( $n): GUID=$lguid (No Format Information found).")


def template_count(form: str = "mixed") -> int:
    """Distinct message templates a file of `form` can contain (body, episode frames, cascades)."""
    win10 = (len(WIN10_POOL[0]) + sum(len(v) for v in WIN10_START.values()) + sum(len(v) for v in WIN10_OK.values())
             + sum(len(v) for v in WIN10_FAIL.values()) + len(WIN10_BANNER) + len(WIN10_EXIT) + 1)
    classic = (len(CLASSIC_POOL[0]) + sum(len(v) for v in CLASSIC_START.values())
               + sum(len(v) for v in CLASSIC_OK.values()) + sum(len(v) for v in CLASSIC_FAIL.values())
               + len(CLASSIC_BANNER) + len(CLASSIC_EXIT))
    return {"win10": win10, "classic": classic}.get(form, win10 + classic)


# --- slot values ----------------------------------------------------------------------------------

CALLERS_WIN10 = ("UpdateOrchestrator", "MoUpdateOrchestrator", "Update;taskhostw", "Update;ScanForUpdates",
                 "AutomaticUpdates", "CcmExec", "WindowsUpdate;ScanForUpdatesForUser", "UpdateManagementAgent")
CALLERS_CLASSIC = ("AutomaticUpdates", "CcmExec", "WindowsUpdate", "MicrosoftUpdate", "UpdateManagement")
SVC_NAMES = ("Third party service", "Windows Update", "Microsoft Update", "Managed", "Windows Store")
CPP_FILES = ("ProtocolTalker", "ClientCallRecorder", "SearchAgent", "SyncServer", "InstallHandler", "CbsHandler")
MODULES = ("proxystubs.wups", "wuapicore", "wuauengcore", "wupscore", "updateagent")
BRANDS = ("Contoso Systems", "Fabrikam", "Litware", "Adventure Works", "Northwind")
TITLE_SHAPES_EN = (
    "$month Cumulative Update for Windows 10 Version 22H2 for x64-based Systems (KB$kb)",
    "$month Cumulative Update for Windows Server 2019 for x64-based Systems (KB$kb)",
    "$month Cumulative Update for Windows 11 Version 23H2 for x64-based Systems (KB$kb)",
    "$month Cumulative Update for .NET Framework 3.5, 4.8 and 4.8.1 for Windows Server 2022 (KB$kb)",
    "$month Servicing Stack Update for Windows Server 2016 for x64-based Systems (KB$kb)",
    "Windows Malicious Software Removal Tool x64 - v5.$n3 (KB$kb)",
    "Update for Windows Security platform - KB$kb (Version 1.0.$n4.$n3)",
    "Microsoft Edge-Stable Channel Version 12$n.0.$n4.$n (KB$kb)",
)
TITLE_SHAPES_DE = (
    "$month Kumulatives Update für Windows 10 Version 22H2 für x64-basierte Systeme (KB$kb)",
    "$month Kumulatives Update für Windows Server 2019 für x64-basierte Systeme (KB$kb)",
    "Windows-Tool zum Entfernen bösartiger Software x64 - v5.$n3 (KB$kb)",
)
TZS = ("+0000", "+0100", "+0200", "+0530", "-0500", "-0800", "+0900", "+1000")


def parse_size(text: str) -> int:
    """`50M`, `1G`, `250K`, `1500000` -> bytes (decimal units: 1M = 1,000,000 bytes)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)B?\s*", text.upper())
    if not m:
        raise ValueError(f"invalid size {text!r}: use e.g. 250K, 50M, 1G")
    return int(float(m.group(1)) * {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}[m.group(2)])


def size_label(n: int) -> str:
    """Inverse of parse_size for round numbers: 50000000 -> '50M'."""
    for unit, f in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= f and n % f == 0:
            return f"{n // f}{unit}"
    return str(n)


_TICKS = 10_000_000  # 100 ns ticks per second (the Win10 timestamp resolution)
_EPOCH_ORD = dt.date(1970, 1, 1).toordinal()


class _Host:
    """One machine's log: its pools of ids, its clock, its current session and episode."""

    def __init__(self, rng: random.Random, form: str, host: str) -> None:
        self.rng = rng
        self.form = form
        self.host = host
        self.datesep = rng.choices("/-.", weights=(80, 17, 3))[0] if form != "classic" else "-"
        self.locale = "de-DE" if rng.random() < 0.1 else "en-US"
        self.tzs = rng.choice(TZS)
        self.wsus = rng.random() < 0.5
        self.fqdn_name = f"{host.lower()}.corp.contoso.com"
        self.svcs = [self._guid() for _ in range(3)]
        shapes = TITLE_SHAPES_DE if self.locale == "de-DE" else TITLE_SHAPES_EN
        self.updates = []
        for _ in range(40):
            text = rng.choice(shapes)
            for name in _SLOT.findall(text):
                text = text.replace("$" + name, str(getattr(self, "s_" + name)()), 1)
            self.updates.append((self._guid(), text))
        self.urls = self._urls()
        year = rng.choice((2023, 2024, 2025))
        start = dt.datetime(year, rng.randrange(1, 13), rng.randrange(1, 29), rng.randrange(24), rng.randrange(60))
        self.t = int((start - dt.datetime(1970, 1, 1)).total_seconds()) * _TICKS + rng.randrange(_TICKS)
        self._day = self._sec = -1
        self._date = self._cdate = self._hms = ""
        self.cur_update = self.updates[0]
        self.code = "0x8024402C"
        self.caller = CALLERS_WIN10[0]
        self.opid = 1
        self.cv = self.callid = ""
        self.pid = "1000"
        self.tids = ["1"]
        self._choices: list[Template] = []
        self.slots: dict[str, Callable[[], object]] = {
            name[2:]: getattr(self, name) for name in dir(self) if name.startswith("s_")
        }

    # ids
    def _guid(self) -> str:
        h = f"{self.rng.getrandbits(128):032X}"
        if self.rng.random() < 0.04:  # error-like first segment: a trap for code extraction
            h = self.rng.choice(CATALOG_CODES)[2:] + h[8:]
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _urls(self) -> list[str]:
        rng = self.rng
        svc = self.svcs[0]
        urls = [
            "https://fe3cr.delivery.mp.microsoft.com/ClientWebService/client.asmx",
            "https://fe2cr.update.microsoft.com/v6/ClientWebService/client.asmx",
            f"https://slscr.update.microsoft.com/SLS/{{{svc}}}/x64/10.0.{rng.randrange(17763, 26100)}.1/0?CH=686"
            f"&L={self.locale}&P=&PT=0x30&WUA=10.0.19041.4239",
            f"http://tlu.dl.delivery.mp.microsoft.com/filestreamingservice/files/{self._guid().lower()}"
            f"?P1={rng.randrange(10**9, 10**10)}&P2=404&P3=2&P4={rng.getrandbits(96):024x}",
            "https://settings-win.data.microsoft.com/settings/v3.0/WSD/UpdateHealthTools",
        ]
        if self.wsus:
            port = rng.choice((8530, 8531))
            scheme = "https" if port == 8531 else "http"
            srv = f"{scheme}://wsus{rng.randrange(1, 9):02d}.corp.contoso.com:{port}"
            urls += [f"{srv}/ClientWebService/client.asmx", f"{srv}/SimpleAuthWebService/SimpleAuth.asmx",
                     f"{srv}/ReportingWebService/ReportingWebService.asmx"]
        return urls

    # slots: every `$name` in a template is self.s_name()
    def s_guid(self) -> str:
        return self._guid()

    def s_lguid(self) -> str:
        return self._guid().lower()

    def s_callid(self) -> str:
        return self.callid

    def s_uid(self) -> str:
        return self.cur_update[0]

    def s_title(self) -> str:
        return self.cur_update[1]

    def s_rev(self) -> int:
        return self.rng.choice((1, 1, 1, 200, 201, 202, 104))

    def s_svc(self) -> str:
        return self.svcs[self.rng.getrandbits(1)]

    def s_svcname(self) -> str:
        return self.rng.choice(SVC_NAMES)

    def s_cv(self) -> str:
        return self.cv

    def s_caller(self) -> str:
        return self.caller

    def s_opid(self) -> int:
        return self.opid

    def s_n(self) -> int:
        return self.rng.randrange(100)

    def s_n3(self) -> int:
        return self.rng.randrange(100, 10_000)

    def s_n4(self) -> int:
        return self.rng.randrange(1000, 65_536)

    def s_big(self) -> int:
        return self.rng.randrange(10**5, 10**9)

    def s_ms(self) -> int:
        return self.rng.randrange(1, 60_000)

    def s_pct(self) -> int:
        return self.rng.randrange(101)

    def s_yn(self) -> str:
        return "Yes" if self.rng.getrandbits(1) else "No"

    def s_bool(self) -> str:
        return "True" if self.rng.getrandbits(1) else "False"

    def s_b01(self) -> int:
        return self.rng.getrandbits(1)

    def s_flags(self) -> str:
        return self.rng.choice(("40010010", "8000000", "40000000", "10010"))

    def s_power(self) -> str:
        return self.rng.choice(("AC", "DC"))

    def s_date(self) -> str:
        self._refresh_clock()
        return self._cdate

    def s_isotime(self) -> str:
        return f"{self.s_date()}T{self.s_clock()}Z"

    def s_clock(self) -> str:
        return f"{self.rng.randrange(24):02d}:{self.rng.randrange(60):02d}:{self.rng.randrange(60):02d}"

    def s_url(self) -> str:
        return self.rng.choice(self.urls)

    def s_proxy(self) -> str:
        return self.rng.choice(("proxy.corp.contoso.com:8080", "10.20.0.15:3128", "webproxy01:80"))

    def s_dlpath(self) -> str:
        return f"C:\\Windows\\SoftwareDistribution\\Download\\{self.rng.getrandbits(128):032x}"

    def s_wpath(self) -> str:
        return "C:\\Windows\\uus\\packages\\preview\\AMD64"

    def s_module(self) -> str:
        return self.rng.choice(MODULES)

    def s_ver(self) -> str:
        return f"10.0.{self.rng.choice((17763, 19041, 19045, 20348, 22621, 22631))}.{self.rng.randrange(1000, 5000)}"

    def s_locale(self) -> str:
        return self.locale

    def s_b64(self) -> str:
        return f"{self.rng.getrandbits(96):024x}"

    def s_proc(self) -> str:
        return self.rng.choice(("taskhostw.exe", "MoUsoCoreWorker.exe", "svchost.exe", "CcmExec.exe"))

    def s_cpp(self) -> str:
        return self.rng.choice(CPP_FILES)

    def s_hw(self) -> str:
        return f"{self.rng.getrandbits(16):04X}"

    def s_hex8(self) -> str:
        return f"{self.rng.getrandbits(31):08X}"  # < 0x80000000: never an error-like run

    def s_kb(self) -> int:
        return self.rng.choice((5, 5, 5, 4)) * 10**6 + self.rng.randrange(10**6)

    def s_month(self) -> str:
        return f"{self.rng.randrange(2022, 2026)}-{self.rng.randrange(1, 13):02d}"

    def s_fqdn(self) -> str:
        return self.fqdn_name

    def s_brand(self) -> str:
        return self.rng.choice(BRANDS)

    def s_lcid(self) -> int:
        return 1031 if self.locale == "de-DE" else 1033

    def s_tz(self) -> str:
        return self.tzs

    def s_rts(self) -> str:
        self._refresh_clock()
        frac = self.t % _TICKS
        return f"{self._cdate} {self._hms}:{frac // 10_000:03d}{self.tzs}"

    def s_X(self) -> str:
        return self.code[2:]

    def s_x(self) -> str:
        return self.code[2:].lower()

    # clock
    def _refresh_clock(self) -> None:
        secs = self.t // _TICKS
        day = secs // 86400
        if day != self._day:
            self._day = day
            d = dt.date.fromordinal(_EPOCH_ORD + day)
            self._cdate = f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
            self._date = self._cdate.replace("-", self.datesep)
        if secs != self._sec:
            self._sec = secs
            s = secs % 86400
            self._hms = f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"

    def tick(self) -> None:
        r = self.rng.random()
        if r < 0.004:
            self.t += self.rng.randrange(_TICKS, 1200 * _TICKS)  # idle: a second to 20 minutes
        else:
            self.t += int(r * 400_000)  # 0-40 ms between lines of a burst

    # lines
    def render(self, t: Template, classic: bool) -> str:
        self.tick()
        self._refresh_clock()
        slots = self.slots
        msg = t.fmt % tuple(slots[s]() for s in t.slots) if t.slots else t.fmt
        tid = self.tids[self.rng.getrandbits(2) % len(self.tids)]
        frac = self.t % _TICKS
        if classic:
            return f"{self._cdate}\t{self._hms}:{frac // 10_000:03d}\t{self.pid}\t{tid}\t{t.component}\t{msg}"
        return f"{self._date} {self._hms}.{frac:07d} {self.pid} {tid} {t.component:<15} {msg}"

    def undecoded(self) -> str:
        msg = WIN10_UNDECODED.fmt % (self.s_n(), self.s_lguid())
        sep = self.datesep
        return f"1600{sep}12{sep}31 19:00:00.0000000 {self.pid} {self.tids[0]} {'':<15} {msg}"

    def body_template(self, classic: bool) -> Template:
        if not self._choices:
            pool, cum = CLASSIC_POOL if classic else WIN10_POOL
            self._choices = self.rng.choices(pool, cum_weights=cum, k=512)
            self._choices.reverse()
        return self._choices.pop()

    def new_session(self, classic: bool) -> None:
        rng = self.rng
        self._choices = []
        if classic:
            self.pid = f"{rng.randrange(400, 2000):>4}"
            self.tids = [f"{rng.randrange(0x80, 0x2000):>3x}" for _ in range(rng.randrange(2, 6))]
        else:
            self.pid = f"{rng.randrange(400, 20000):<5}"
            self.tids = [f"{rng.randrange(400, 200000 if rng.random() < 0.05 else 30000):<5}"
                         for _ in range(rng.randrange(2, 8))]

    def new_episode(self, classic: bool) -> None:
        rng = self.rng
        self.caller = rng.choice(CALLERS_CLASSIC if classic else CALLERS_WIN10)
        self.opid = rng.randrange(1, 500)
        self.cv = "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", k=16))
        self.cv += f".1.0.{rng.randrange(10)}"
        self.callid = self._guid()
        self.cur_update = rng.choice(self.updates)


def _pick_code(rng: random.Random, kind: str) -> str:
    fits = {"scan": SCAN_CODES, "download": DOWNLOAD_CODES, "install": INSTALL_CODES}[kind]
    pool = [c for c in CATALOG_CODES if c in fits] * 3 + [c for c in OTHER_CODES if c in fits]
    return rng.choice(pool)


def iter_lines(seed: int, form: str = "win10", host: str = "HOST",
               error_share: float = DEFAULT_ERROR_SHARE) -> Iterator[tuple[str, bool]]:
    """Endless (line, is_error) pairs for one host's log; the caller stops when it has enough.

    The error share is kept by a debt counter: every line adds `error_share` to the debt, and an
    episode ends in a failure cascade once the debt covers it, so any prefix of a few thousand
    lines is within a cascade's length of the target share.
    """
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}: use one of {', '.join(FORMS)}")
    rng = random.Random(f"{seed}:{form}:{host}")
    h = _Host(rng, form, host)
    debt = rng.uniform(0.0, 5.0)  # a random start, so short files are not biased towards fewer errors
    while True:
        classic = form == "classic" or (form == "mixed" and rng.random() < 0.4)
        h.new_session(classic)
        starts, oks, fails = (CLASSIC_START, CLASSIC_OK, CLASSIC_FAIL) if classic else (WIN10_START, WIN10_OK,
                                                                                        WIN10_FAIL)
        for t in CLASSIC_BANNER if classic else WIN10_BANNER:
            yield h.render(t, classic), False
        debt += error_share * len(CLASSIC_BANNER if classic else WIN10_BANNER)
        for _ in range(rng.randrange(10, 120)):  # episodes in this session
            h.new_episode(classic)
            kind = rng.choices(("scan", "download", "install"), weights=(6, 2, 2))[0]
            lines = [(t, False) for t in starts[kind]]
            for _ in range(int(rng.expovariate(1 / 28)) + 2):
                if not classic and rng.random() < 0.0005:
                    lines.append((None, False))
                else:
                    lines.append((h.body_template(classic), False))
            debt += error_share * len(lines)
            cascade = [(t, t.error) for t, always in fails[kind] if always or rng.random() < 0.45]
            n_err = sum(e for _, e in cascade)
            if debt >= n_err * rng.uniform(0.6, 1.4):
                h.code = _pick_code(rng, kind)
                lines += cascade
                debt += error_share * len(cascade) - n_err
            else:
                lines += [(t, False) for t in oks[kind]]
                debt += error_share * len(oks[kind])
            for t, err in lines:
                if t is None:
                    yield h.undecoded(), False
                else:
                    if rng.random() < 0.3:
                        h.cur_update = rng.choice(h.updates)
                    yield h.render(t, classic), err
        for t in CLASSIC_EXIT if classic else WIN10_EXIT:
            yield h.render(t, classic), False
        debt += error_share


@dataclass
class GenStats:
    """What a generated file holds; stored next to cached files so benchmarks need not recount."""

    path: str
    bytes: int
    lines: int
    error_lines: int
    form: str
    seed: int
    error_share: float
    version: int = GEN_VERSION

    @property
    def share(self) -> float:
        return self.error_lines / self.lines if self.lines else 0.0


def write_log(path: Path, size: int, *, form: str = "win10", seed: int = 1, host: str = "HOST",
              error_share: float = DEFAULT_ERROR_SHARE, crlf: bool = True, bom: bool | None = None) -> GenStats:
    """Write one log of about `size` bytes (stops at the first line that reaches it), in chunks.

    `bom=None` writes a UTF-8 BOM for the Windows 10 form only, as Get-WindowsUpdateLog does for
    logs decoded from more than ten ETL files; the classic form never has one.
    """
    nl = "\r\n" if crlf else "\n"
    if bom is None:
        bom = form == "win10"
    lines = errors = 0
    written = 3 if bom else 0
    buf: list[str] = []
    with open(path, "w", encoding="utf-8", newline="") as f:
        if bom:
            f.write("\ufeff")
        for line, err in iter_lines(seed, form, host, error_share):
            buf.append(line)
            lines += 1
            errors += err
            written += len(line) + len(nl)
            if len(buf) >= 4096:
                f.write(nl.join(buf) + nl)
                buf.clear()
            if written >= size:
                break
        if buf:
            f.write(nl.join(buf) + nl)
    return GenStats(str(path), path.stat().st_size, lines, errors, form, seed, error_share)


HOST_PREFIXES = ("SRV-APP", "SRV-SQL", "SRV-WEB", "WIN10-WS", "WIN11-WS", "DC", "SRV-FS", "RDS")


def host_name(i: int) -> str:
    """Deterministic host folder name for bundle member `i` (0-based)."""
    return f"{HOST_PREFIXES[i % len(HOST_PREFIXES)]}{i + 1:04d}"


@dataclass
class BundleStats:
    path: str
    files: int
    bytes: int
    lines: int
    error_lines: int
    form: str
    seed: int
    avg_size: int
    version: int = GEN_VERSION


def write_bundle(folder: Path, files: int = 2000, avg_size: int = 250_000, *, form: str = "mixed", seed: int = 1,
                 error_share: float = DEFAULT_ERROR_SHARE) -> BundleStats:
    """A fleet folder: `files` host subfolders, each with a WindowsUpdate.log of 20%..180% of `avg_size`.

    With form "mixed" each host gets one form (40% classic), as a real fleet of old and new
    Windows versions would; a few Windows 10 logs carry a BOM, as when more than ten ETLs were decoded.
    """
    rng = random.Random(f"bundle:{seed}:{form}")
    folder.mkdir(parents=True, exist_ok=True)
    total = lines = errors = 0
    for i in range(files):
        name = host_name(i)
        host_form = form if form != "mixed" else ("classic" if rng.random() < 0.4 else "win10")
        size = int(avg_size * rng.uniform(0.2, 1.8))
        (folder / name).mkdir(exist_ok=True)
        st = write_log(folder / name / "WindowsUpdate.log", size, form=host_form, seed=seed, host=name,
                       error_share=error_share, bom=host_form == "win10" and rng.random() < 0.3)
        total += st.bytes
        lines += st.lines
        errors += st.error_lines
    return BundleStats(str(folder), files, total, lines, errors, form, seed, avg_size)


# --- cache ------------------------------------------------------------------------------------------

def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def cached_log(cache_dir: Path, size: int, *, form: str = "win10", seed: int = 1,
               error_share: float = DEFAULT_ERROR_SHARE) -> tuple[GenStats, bool]:
    """(stats, reused): the cached file for these parameters, generating it first when absent.

    The sidecar JSON is written last, so a file left by an interrupted run is regenerated.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"wu-{form}-{size_label(size)}-s{seed}-e{round(error_share * 1000)}-g{GEN_VERSION}.log"
    side = _sidecar(path)
    if path.exists() and side.exists():
        data = json.loads(side.read_text())
        if data.get("bytes") == path.stat().st_size:
            return GenStats(**data), True
    tmp = path.with_name(path.name + ".part")
    st = write_log(tmp, size, form=form, seed=seed, host="BENCH-HOST", error_share=error_share)
    os.replace(tmp, path)
    st.path = str(path)
    side.write_text(json.dumps(asdict(st)))
    return st, False


def cached_bundle(cache_dir: Path, files: int = 2000, avg_size: int = 250_000, *, form: str = "mixed",
                  seed: int = 1, error_share: float = DEFAULT_ERROR_SHARE) -> tuple[BundleStats, bool]:
    """(stats, reused) for a cached fleet folder, generating it first when absent."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    name = f"bundle-{files}x{size_label(avg_size)}-{form}-s{seed}-e{round(error_share * 1000)}-g{GEN_VERSION}"
    folder = cache_dir / name
    side = cache_dir / f"{name}.json"
    if folder.is_dir() and side.exists():
        return BundleStats(**json.loads(side.read_text())), True
    if side.exists():
        side.unlink()
    st = write_bundle(folder, files, avg_size, form=form, seed=seed, error_share=error_share)
    side.write_text(json.dumps(asdict(st)))
    return st, False


# --- CLI ----------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write synthetic WindowsUpdate.log files for benchmarks.")
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("file", help="one log of a given size")
    f.add_argument("out", type=Path)
    f.add_argument("--size", default="50M", help="target size, e.g. 250K, 50M, 1G (decimal units)")
    f.add_argument("--form", choices=FORMS, default="win10")
    f.add_argument("--host", default="BENCH-HOST", help="host name (changes the content, not the shape)")
    f.add_argument("--lf", action="store_true", help="LF line ends instead of CRLF")
    b = sub.add_parser("bundle", help="a folder of host subfolders, one WindowsUpdate.log each")
    b.add_argument("out", type=Path)
    b.add_argument("--files", type=int, default=2000)
    b.add_argument("--avg-size", default="250K", help="average file size (each file is 20%%..180%% of it)")
    b.add_argument("--form", choices=FORMS, default="mixed")
    for sp in (f, b):
        sp.add_argument("--seed", type=int, default=1)
        sp.add_argument("--error-share", type=float, default=DEFAULT_ERROR_SHARE)
    args = p.parse_args(argv)
    if args.cmd == "file":
        st = write_log(args.out, parse_size(args.size), form=args.form, seed=args.seed, host=args.host,
                       error_share=args.error_share, crlf=not args.lf)
        print(f"{st.path}: {st.bytes:,} bytes, {st.lines:,} lines, {st.error_lines:,} error lines "
              f"({st.share:.2%})")
    else:
        bs = write_bundle(args.out, args.files, parse_size(args.avg_size), form=args.form, seed=args.seed,
                          error_share=args.error_share)
        print(f"{bs.path}: {bs.files:,} files, {bs.bytes:,} bytes, {bs.lines:,} lines, "
              f"{bs.error_lines:,} error lines ({bs.error_lines / max(bs.lines, 1):.2%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
