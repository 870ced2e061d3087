"""A labelled fleet of log bundles for measuring accuracy (issue 4, "Measured accuracy").

`generate(dest)` writes one folder per host (SRV-0001, ...) holding the logs such a machine
leaves behind: WindowsUpdate.log (classic or Get-WindowsUpdateLog form), Operations Manager and
System event exports (wevtutil XML, RenderedXml, Event Viewer CSV/TXT, Export-Csv, Copy details,
Get-WinEvent JSON), Linux omsupdatemgmt.log and worker.log, and plain job output or portal text.

Most lines are ordinary background. Into it go the failures of the troubleshooting guide, in
the variants real logs produce (case, spacing, wrapping, exception chains, truncation, typos,
variable ids, the message inside a longer description), and look-alikes that must stay silent
(success exit codes, GUIDs that start like an HRESULT, benign sentences close to an error).

Labels are the (host, scenario, code) triples a correct scan reports. They come from what was
written: each injected record says which signature's message it carries and which codes it holds
(as written, after its variants). The catalog only supplies declared facts (scenario, codes,
source families, explain_only, generic) and the documented rules: a phrase hit reports the
signature's single code, else the record's first code, else none; catch-alls give way to a
specific signature on the same record; a failure code nothing explains becomes `wu-error`.
The matcher is never run here. Everything is drawn from one seeded RNG, so the same seed gives
the same bytes.
"""

from __future__ import annotations

import json
import math
import random
import re
import string
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

from umtriage.patterns.catalog import Catalog, Signature, load_catalog

Triple = tuple[str, str, str | None]

#: Where a record can go; each slot is one file kind with one source family.
SLOT_FAMILY = {
    "wu-etw": "windowsupdate",
    "wu-classic": "windowsupdate",
    "event": "event4502",
    "text": "text",
    "oms": "omsupdatemgmt",
    "worker": "workerlog",
}
PROFILE_SLOTS = {
    "win-modern": ("wu-etw", "event", "text"),
    "win-classic": ("wu-classic", "event", "text"),
    "linux": ("oms", "worker", "text"),
}
#: Host profiles, dealt in turn: of every eight hosts three run Linux, three modern and two classic Windows.
PROFILE_CYCLE = ("win-modern", "linux", "win-classic", "win-modern", "linux", "win-modern", "win-classic", "linux")

# --- records and labels ------------------------------------------------------------------


@dataclass
class Rec:
    """One record to write: its message, what it carries, and where variants may act."""

    text: str
    sigs: tuple[str, ...] = ()  # signature ids whose message the text carries
    tokens: tuple[str, ...] = ()  # code spellings as written (`[8024402C]`, `hr = 80072ee2`, ...)
    core: tuple[int, int] | None = None  # span of the error text; None = whole text
    component: str = ""  # WindowsUpdate component, or worker.log component
    dotnet: bool = False  # a .NET exception text: may gain inner exceptions
    event: tuple[int, str, int] | None = None  # (event id, provider, level) in event exports
    shape: str = ""  # event description shape: module, workflow, plain
    variants: tuple[str, ...] = ()


@dataclass(frozen=True)
class Injection:
    """One injected record, for debugging misses: where it went and what it should yield."""

    host: str
    source: str
    kind: str  # error, distractor, explain-only
    template: str
    variants: tuple[str, ...]
    text: str
    expected: frozenset[tuple[str, str | None]]


@dataclass
class Labels:
    """Expected (host, scenario, code) triples of a generated corpus, and how they came about."""

    expected: set[Triple] = field(default_factory=set)
    injections: list[Injection] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def scenarios(self) -> set[str]:
        return {s for _, s, _ in self.expected}

    def to_json(self, path: Path) -> None:
        """Write the labels and injections as JSON (for looking at a corpus by hand)."""
        data = {
            "hosts": self.hosts,
            "files": self.files,
            "expected": sorted([list(t) for t in self.expected], key=lambda t: (t[0], t[1], t[2] or "")),
            "injections": [
                {**inj.__dict__, "expected": sorted([list(e) for e in inj.expected], key=str),
                 "variants": list(inj.variants)}
                for inj in self.injections
            ],
        }
        path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def normalise_host(name: str) -> str:
    """The host key a scan reports: lower-case short name."""
    n = name.strip().lower()
    return n if re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}", n) else n.split(".", 1)[0]


def code_of(token: str) -> str:
    """Normalised code of a spelling: `[8024402C]`, `hr = 80072ee2`, `0x8024001e`, `-2145124322`."""
    dec = re.search(r"-21[0-4]\d{7}", token)
    if dec:
        return f"0x{int(dec.group()) + (1 << 32):08X}"
    hx = re.findall(r"[0-9a-fA-F]{8}", token.replace("0x", " ").replace("0X", " "))
    return "0x" + hx[-1].upper()


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def codes_in(rec: Rec) -> list[str]:
    """Codes the record still holds after its variants, in order of appearance."""
    body = _squash(rec.text)
    found = []
    for tok in rec.tokens:
        pos = body.find(_squash(tok))
        if pos >= 0:
            found.append((pos, code_of(tok)))
    out: list[str] = []
    for _, code in sorted(found):
        if code not in out:
            out.append(code)
    return out


class Expect:
    """What a correct scan reports for one record, from the catalog's declared semantics."""

    def __init__(self, catalog: Catalog):
        self.sigs = {s.id: s for s in catalog.active() if not s.explain_only}
        self.by_code: dict[str, list[Signature]] = {}
        for s in self.sigs.values():
            for c in s.codes:
                self.by_code.setdefault(c, []).append(s)
        self.fallback = self.sigs.get("wu-error")

    def record(self, rec: Rec, family: str) -> frozenset[tuple[str, str | None]]:
        codes = codes_in(rec)
        hits: list[tuple[Signature, str | None]] = []
        for c in codes:
            hits += [(s, c) for s in self.by_code.get(c, ()) if s.applies_to(family)]
        for sid in rec.sigs:
            s = self.sigs.get(sid)
            if s is None or not s.applies_to(family):
                continue  # explain-only knowledge, or a family the signature does not read
            hits.append((s, s.codes[0] if len(s.codes) == 1 else (codes[0] if codes else None)))
        if any(not s.generic for s, _ in hits):
            hits = [(s, c) for s, c in hits if not s.generic]
        if self.fallback is not None and all(c is not None for _, c in hits):
            claimed = {c for _, c in hits}
            hits += [(self.fallback, c) for c in codes if c not in claimed]
        return frozenset((s.scenario, c) for s, c in hits)


# --- variable parts ------------------------------------------------------------------------

_B64 = string.ascii_letters + string.digits + "+/"
UPDATE_TITLES = (
    "2024-{m:02d} Cumulative Update for Windows Server 2019 for x64-based Systems ({kb})",
    "2024-{m:02d} Cumulative Update for Windows Server 2016 for x64-based Systems ({kb})",
    "2024-{m:02d} Cumulative Update for Microsoft server operating system version 21H2 for x64-based Systems ({kb})",
    "2024-{m:02d} Servicing Stack Update for Windows Server 2016 for x64-based Systems ({kb})",
    "2024-{m:02d} Cumulative Update for .NET Framework 3.5, 4.7.2 and 4.8 for Windows Server 2019 for x64 ({kb})",
    "2024-{m:02d} Security Monthly Quality Rollup for Windows Server 2012 R2 for x64-based Systems ({kb})",
    "2024-{m:02d} Security Only Quality Update for Windows Server 2008 R2 for x64-based Systems ({kb})",
    "Windows Malicious Software Removal Tool x64 - v5.1{m:02d} ({kb})",
    "Update for Microsoft Defender Antivirus antimalware platform - KB4052623 (Version 4.18.2404{m}.4)",
    "Security Update for Microsoft Office 2016 ({kb}) 64-Bit Edition",
)
APT_PACKAGES = ("libssl3", "openssl", "linux-image-generic", "libc6", "curl", "libcurl4", "bash", "tzdata", "sudo",
                "python3.10", "openssh-server", "libsystemd0", "systemd", "vim-common", "libxml2", "git")
YUM_PACKAGES = ("openssl-libs", "kernel", "glibc", "curl", "bash", "tzdata", "sudo", "python3-libs", "systemd",
                "openssh", "libxml2", "nss", "ca-certificates", "git")
CALLERS = ("UpdateOrchestrator", "MoUpdateOrchestrator", "AutomaticUpdates", "Update;ScanForUpdates",
           "UpdateManagementAction", "wusa", "Windows Defender")
AUTOMATION_ACCOUNTS = ("aa-patching-weu", "contoso-automation", "aa-prod-updates", "fabrikam-aa", "aa-ops-neu")
RESOURCE_GROUPS = ("rg-patching", "rg-ops-prod", "rg-mgmt", "rg-infra-weu")
WSUS_SERVERS = ("wsus01.contoso.local", "wsus-prod.fabrikam.corp", "sccm01.contoso.local", "wsus.corp.contoso.com")
DISTROS = {"apt": "Ubuntu 22.04.4 LTS (jammy)", "yum": "CentOS Linux 7 (Core)", "zypper": "SUSE Linux Enterprise 15 SP5"}


class Gen:
    """Random variable parts for one host; `sub(template)` fills `$name` placeholders."""

    def __init__(self, rng: random.Random, host: str, fleet: dict[str, str]):
        self.rng = rng
        self.host = host
        self.fixed = {"host": host, "HOST": host.upper(), **fleet}
        self.fixed["ws"] = self.guid()
        self.fixed["wsus"] = rng.choice(WSUS_SERVERS)
        self.fixed["aa"] = fleet["aa"]
        self.fixed["pm"] = rng.choice(("apt", "apt", "yum", "zypper"))

    # values -------------------------------------------------------------------------------
    def guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def GUID(self) -> str:
        return self.guid().upper()

    def errguid(self) -> str:
        """A GUID whose first group reads like a failure HRESULT (a classic false friend)."""
        head = self.rng.choice(("8024402C", "80070005", "8024001E", "80072EE2", "8024401C", "80070422", "80244022"))
        return head + self.GUID()[8:]

    def kb(self) -> str:
        return f"KB{self.rng.randint(4052000, 5039999)}"

    def n(self) -> str:
        return str(self.rng.randint(0, 40))

    def big(self) -> str:
        return str(self.rng.randint(100, 9000))

    def cv(self) -> str:
        head = "".join(self.rng.choice(_B64) for _ in range(16))
        return head + "." + ".".join(str(self.rng.randint(0, 9)) for _ in range(self.rng.randint(2, 5)))

    def title(self) -> str:
        return self.rng.choice(UPDATE_TITLES).format(m=self.rng.randint(1, 12), kb=self.kb())

    def ip(self) -> str:
        return f"10.{self.rng.randint(0, 250)}.{self.rng.randint(0, 250)}.{self.rng.randint(2, 250)}"

    def url(self) -> str:
        return self.rng.choice((
            f"https://{self.fixed['wsus']}:8531/ClientWebService/client.asmx",
            f"http://{self.fixed['wsus']}:8530/SimpleAuthWebService/SimpleAuth.asmx",
            "https://fe2cr.update.microsoft.com/v6/ClientWebService/client.asmx",
            f"https://slscr.update.microsoft.com/SLS/{{{self.GUID()}}}/x64/10.0.17763.5830/0",
            "https://login.live.com/ppsecure/deviceaddcredential.srf",
        ))

    def pkg(self) -> str:
        return self.rng.choice(YUM_PACKAGES if self.fixed["pm"] == "yum" else APT_PACKAGES)

    def pkgver(self) -> str:
        r = self.rng
        return f"{r.randint(1, 5)}.{r.randint(0, 20)}.{r.randint(0, 30)}-{r.randint(0, 9)}ubuntu{r.randint(1, 9)}.{r.randint(1, 20)}"

    def cid(self) -> str:
        return self.rng.choice(CALLERS)

    def pid(self) -> str:
        return str(self.rng.randint(900, 32000))

    def sec(self) -> str:
        return str(self.rng.randint(1, 59))

    def pmcmd(self) -> str:
        pkgs = " ".join(sorted({self.pkg() for _ in range(self.rng.randint(1, 3))}))
        return {
            "apt": f"sudo apt-get -y --only-upgrade true install {pkgs}",
            "yum": f"sudo yum -y install --skip-broken {pkgs}",
            "zypper": f"sudo zypper --non-interactive update {pkgs}",
        }[self.fixed["pm"]]

    def __getitem__(self, key: str) -> str:
        if key in self.fixed:
            return self.fixed[key]
        return str(getattr(self, key)())

    def sub(self, template: str) -> str:
        return string.Template(template).substitute(self)


# --- background (ordered blocks, several hundred templates with variable parts) --------------
#
# Background comes in blocks as the writers emit them (a search session, a download, a job's
# life cycle); `?` marks a line that is there only sometimes. Between blocks, single lines.

ETW_BLOCKS: tuple[tuple[str, ...], ...] = (
    (  # a scan
        "Agent|* START * Finding updates CallerId = $cid  Id = $n (cV = $cv)",
        "Agent|Online = Yes; AllowCachedResults = No; Ignore download priority = No",
        "Agent|Criteria = IsInstalled=0 and DeploymentAction='Installation' or IsInstalled=0 and DeploymentAction='OptionalInstallation' or IsPresent=1 and DeploymentAction='Uninstallation'\"\"",
        "Agent|ServiceID = {$GUID} Third party service",
        "Agent|Search Scope = {Machine}",
        "Agent|Caller SID for Applicability: S-1-5-18",
        "?Agent|RegisterService is set",
        "?Misc|Got WSUS Client/Server URL: https://$wsus:8531/ClientWebService/client.asmx\"\"",
        "ProtocolTalker|OK to reuse existing configuration",
        "ProtocolTalker|Existing cookie is valid, just use it",
        "?ProtocolTalker|PTInfo: Server requested registration",
        "ProtocolTalker|Calling SyncUpdates on server $wsus, with server cookie, with $big installed non-leaf updates",
        "ProtocolTalker|SyncUpdates returned $n new updates and $n out-of-scope updates",
        "ProtocolTalker|SyncUpdates round trips: $n",
        "?ProtocolTalker|Sync of Extended Info: Server = $wsus, Total = $n, Returned = $n",
        "?Metadata|Protocol Talker: Download has been fetched successfully.",
        "?DataStore|Merged $n updates, $n categories into the data store",
        "Agent|Found $n updates and $big categories in search; evaluated appl. rules of $big out of $big deployed entities",
        "?Agent|Added update $GUID.200 to search result",
        "?Agent|Bundle $GUID.$n deferred to next search, so far deferred $n times",
        "Agent|* END * Finding updates CallerId = $cid, Id = $n, Exit code = 0x00000000 (cV = $cv)",
    ),
    (  # the COM API side of a scan
        "ComApi|* START *   Search ClientId = $cid, ServiceId = $GUID, Flags: 0X40010010 (cV = $cv)",
        "?ComApi|Federated Search: Starting search against 1 service(s) (cV = $cv)",
        "ComApi|Updates found = $n",
        "?ComApi|Federated Search: Search completed (cV = $cv)",
        "ComApi|Exit code = 0x00000000, Result code = 0x00000000 (cV = $cv)",
        "ComApi|* END *   Search ClientId = $cid, Updates found = $n, ServiceId = $GUID (cV = $cv)",
        "?ComApi|ISusInternal:: DisconnectCall succeeded",
    ),
    (  # service start
        "Shared|* START * Service startup",
        "?Agent|Processing auto property changes for 0 services",
        "Misc|Got WSUS Client/Server URL: https://$wsus:8531/ClientWebService/client.asmx\"\"",
        "?Misc|Got WSUS SimpleTargeting URL: https://$wsus:8531",
        "?Misc|Got WSUS Reporting URL: https://$wsus:8531/ReportingWebService/WebService.asmx",
        "Shared|Network state: Connected",
        "Shared|Effective power state: AC",
        "?IdleTimer|Non-AoAc machine.  Aoac operations will be ignored.",
        "?Misc|LoadHistoryEventFromRegistry completed",
        "?Agent|Timer: 29A863E7-8609-4D1E-B7CD-5668F857F1DB, Expires 2024-05-1$n 03:12:44, not idle-only, not network-only",
    ),
    (  # service stop
        "IdleTimer|Idle timer disabled in preparation for service shutdown",
        "?Agent|Sending shutdown notification to client",
        "Shared|* END * Service exit Exit code = 0x240001",
    ),
    (  # service list and configuration
        "SLS|Get response for service $GUID - forceExpire[False] asyncRefreshOnExpiry[True]",
        "SLS|path used for cache lookup: /SLS/{$GUID}/x64/10.0.17763.5830/0?CH=$big&L=en-US&P=&PT=0x7&WUA=10.0.17763.5830",
        "SLS|Retrieving SLS response from server...",
        "SLS|Making request with URL HTTPS://slscr.update.microsoft.com/SLS/{$GUID}/x64/10.0.17763.5830/0?CH=$big&L=en-US",
        "?WebServices|Auto proxy settings for this web service call.",
        "?WebServices|Checking for Proxy settings... Found 0 proxy entries.",
        "SLS|Successfully retrieved SLS response from server.",
    ),
    (  # a download
        "ComApi|* START *   Download ClientId = $cid",
        "DownloadManager|Updates to download = $n",
        "DownloadManager|Title = $title",
        "DownloadManager|Download job {$GUID} created for update {$GUID}.$n",
        "?DownloadManager|Received power state change notification: Old: <unknown>; New: AC.",
        "?UDP|Started download of update $GUID.$n",
        "DownloadManager|DO job {$GUID} hash validation succeeded. File: C:\\Windows\\SoftwareDistribution\\Download\\$n\\$GUID",
        "DownloadManager|Download job {$GUID} completed.",
        "?DownloadManager|Preparing update for install, updateId = {$GUID}.$n.",
        "ComApi|* END *   Download ClientId = $cid",
    ),
    (  # an install
        "ComApi|* START *   Install ClientId = $cid",
        "Agent|* START *  Installing updates CallerId = $cid",
        "Agent|Updates to install = $n",
        "Agent|Title = $title",
        "Agent|UpdateId = {$GUID}.$n",
        "Deployment|Deployment job Id $GUID : Update $GUID.$n : Install started",
        "?Handler|Handler initialized: CBS",
        "Handler|CBS package identity: Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.$big.1.$n",
        "?Handler|Requesting post-reboot reporting for package Package_for_RollupFix~31bf3856ad364e35~amd64~~17763.$big.1.$n.",
        "Deployment|Deployment job Id $GUID : Update $GUID.$n : Install finished successfully",
        "Agent|Install call complete (succeeded = $n, succeeded with errors = 0, failed = 0, cancelled = 0, unaccounted = 0",
        "Agent|Reboot required = False",
        "Agent|* END *  Installing updates CallerId = $cid",
        "ComApi|* END *   Install ClientId = $cid",
    ),
    (  # idle timer bracket around an operation
        "IdleTimer|WU operation (CSearchCall::Init ID $n) started; operation # $big; does use network: 1, is at background priority: 0",
        "?WebServices|Web service call succeeded. ServiceId = $GUID",
        "?Metadata|Fragment signing policy: $big",
        "?Metadata|Found $n cached updates",
        "IdleTimer|WU operation (CSearchCall::Init ID $n, operation # $big) stopped; does use network: 1, is at background priority: 0",
    ),
)
ETW_SINGLES: tuple[str, ...] = (
    "Misc|Validating signature for C:\\Windows\\SoftwareDistribution\\SelfUpdate\\wuident.cab with dwProvFlags 0x00000080:",
    "Misc|Infrastructure signed with the Microsoft Root Certificate.",
    "Misc|Microsoft signed: Yes",
    "Misc|Token Requested with 0 category IDs.",
    "Misc|Bypass proxy list from WinHttp: <local>",
    "Agent|Obtained a service pointer for the update service.",
    "Agent|Adding timer: ",
    "Agent|Exit code = 0x00000000",
    "Agent|Deployment job Id $GUID : Update $GUID.$n succeeded",
    "ComApi|* START *   Search ClientId = $cid, ServiceId = $GUID, Flags: 0X8000000 (cV = $cv)",
    "ProtocolTalker|Initializing simple targeting cookie, clientId = $GUID, target group = , DNS name = $host.contoso.local",
    "ProtocolTalker|Server URL = https://$wsus:8531/SimpleAuthWebService/SimpleAuth.asmx",
    "Shared|Power status changed",
    "DownloadManager|Power state change detected. Source now: AC.",
    "WebServices|Cached cookie has expired or new PID is available",
    "DataStore|Data store: $n updates with expired metadata",
    "EEHandler|Expression evaluated: true",
    "Driver|Matched driver to device PCI\\VEN_15AD&DEV_07B0",
)

CLASSIC_BLOCKS: tuple[tuple[str, ...], ...] = (
    (  # Automatic Updates starts
        "AU|###########  AU: Initializing Automatic Updates  ###########",
        "AU|  # WSUS server: http://$wsus:8530",
        "AU|  # Detection frequency: 22",
        "AU|  # Approval type: Pre-install notify (Policy)",
        "AU|  # Auto-install minor updates: Yes (User preference)",
        "AU|  # Will interact with non-admins (Non-admins are elevated (User preference))",
        "?AU|Initializing featured updates",
        "?AU|Found $n cached featured updates",
        "AU|Successfully wrote event for AU health state:0",
        "AU|AU finished delayed initialization",
    ),
    (  # a search
        "AU|#############",
        "AU|## START ##  AU: Search for updates",
        "AU|#########",
        "AU|<<## SUBMITTED ## AU: Search for updates  [CallId = {$GUID} ServiceId = {3DA21691-E39D-4DA6-8A4B-B43877BCB1B7}]",
        "Agent|*************",
        "Agent|** START **  Agent: Finding updates [CallerId = AutomaticUpdates]",
        "Agent|*********",
        "Agent|  * Online = Yes; Ignore download priority = No",
        "Agent|  * Criteria = \"IsHidden=0 and IsInstalled=0 and DeploymentAction='Installation' and IsAssigned=1 or IsHidden=0 and IsPresent=1 and DeploymentAction='Uninstallation' and IsAssigned=1\"",
        "Agent|  * ServiceID = {3DA21691-E39D-4DA6-8A4B-B43877BCB1B7} Managed",
        "Agent|  * Search Scope = {Machine}",
        "Setup|Checking for agent SelfUpdate",
        "Setup|Client version: Core: 7.6.7600.320  Aux: 7.6.7600.320",
        "Misc|Validating signature for C:\\Windows\\SoftwareDistribution\\SelfUpdate\\wuident.cab:",
        "Misc| Microsoft signed: NA",
        "Misc| Infrastructure signed: Yes",
        "Setup|Determining whether a new setup handler needs to be downloaded",
        "?Setup|SelfUpdate handler is not found.  It will be downloaded",
        "Setup|Evaluating applicability of setup package \"WUClient-SelfUpdate-ActiveX~31bf3856ad364e35~amd64~~7.6.7600.320\"",
        "Setup|Setup package \"WUClient-SelfUpdate-Core-TopLevel~31bf3856ad364e35~amd64~~7.6.7600.320\" is already installed.",
        "Setup|SelfUpdate check completed.  SelfUpdate is NOT required.",
        "PT|+++++++++++  PT: Synchronizing server updates  +++++++++++",
        "PT|  + ServiceId = {3DA21691-E39D-4DA6-8A4B-B43877BCB1B7}, Server URL = http://$wsus:8530/ClientWebService/client.asmx",
        "?PT|+++++++++++  PT: Synchronizing extended update info  +++++++++++",
        "?PT|  + ServiceId = {3DA21691-E39D-4DA6-8A4B-B43877BCB1B7}, Server URL = http://$wsus:8530/ClientWebService/client.asmx",
        "Agent|  * Found $n updates and $big categories in search; evaluated appl. rules of $big out of $big deployed entities",
        "Agent|*********",
        "Agent|**  END  **  Agent: Finding updates [CallerId = AutomaticUpdates]",
        "Agent|*************",
        "AU|>>##  RESUMED  ## AU: Search for updates [CallId = {$GUID} ServiceId = {3DA21691-E39D-4DA6-8A4B-B43877BCB1B7}]",
        "AU|  # $n updates detected",
        "AU|#########",
        "AU|##  END  ##  AU: Search for updates  [CallId = {$GUID} ServiceId = {3DA21691-E39D-4DA6-8A4B-B43877BCB1B7}]",
        "AU|#############",
        "AU|AU setting next detection timeout to 2024-05-1$n 07:14:02",
        "Report|REPORT EVENT: {$GUID}\t2024-05-1$n 03:1$n:44:171+0100\t1\t147\t101\t{00000000-0000-0000-0000-000000000000}\t0\t0\tAutomaticUpdates\tSuccess\tSoftware Synchronization\tWindows Update Client successfully detected $n updates.",
    ),
    (  # the COM API side of a search
        "COMAPI|-------------",
        "COMAPI|-- START --  COMAPI: Search [ClientId = AutomaticUpdates]",
        "COMAPI|---------",
        "COMAPI|  - Online = Yes; Ignore download priority = No",
        "COMAPI|  - Criteria = \"IsHidden=0 and IsInstalled=0\"",
        "COMAPI|  - ServiceID = {3DA21691-E39D-4DA6-8A4B-B43877BCB1B7}",
        "COMAPI|<<-- SUBMITTED -- COMAPI: Search [ClientId = AutomaticUpdates]",
        "COMAPI|>>--  RESUMED  -- COMAPI: Search [ClientId = AutomaticUpdates]",
        "COMAPI|  - Updates found = $n",
        "COMAPI|  - Exit code = 0x00000000",
        "COMAPI|--  END  --  COMAPI: Search [ClientId = AutomaticUpdates]",
    ),
    (  # a download
        "DnldMgr|***********  DnldMgr: New download job [UpdateId = {$GUID}.$n]  ***********",
        "DnldMgr|  * BITS job initialized, JobId = {$GUID}",
        "DnldMgr|  * Downloading from http://$wsus:8530/Content/$n/$GUID.cab to C:\\Windows\\SoftwareDistribution\\Download\\$guid (full file).",
        "?DnldMgr|Asking handlers to reconcile their sandboxes",
    ),
    (  # an install
        "Agent|*************",
        "Agent|** START **  Agent: Installing updates [CallerId = AutomaticUpdates]",
        "Agent|*********",
        "Agent|  * Updates to install = $n",
        "Agent|  * Title = $title",
        "Agent|  * UpdateId = {$GUID}.$n",
        "Agent|  * Bundles 1 updates:",
        "Agent|  *   {$GUID}.$n",
        "Handler|:::::::::::::",
        "Handler|:: START ::  Handler: CBS Install",
        "Handler|:::::::::",
        "Handler|  : Updates to install = 1",
        "Handler|Starting install of CBS update {$GUID}",
        "Handler|CBS package identifier: Package_for_KB$big~31bf3856ad364e35~amd64~~6.1.1.3",
        "Handler|Completed install of CBS update with type=0, requiresReboot=0, installerError=0, hr=0x0",
        "Handler|::  END  ::  Handler: CBS Install",
        "Agent|*********",
        "Agent|**  END  **  Agent: Installing updates [CallerId = AutomaticUpdates]",
        "Report|REPORT EVENT: {$GUID}\t2024-05-1$n 03:2$n:12:003+0100\t1\t183\t101\t{$GUID}\t$n\t0\tAutomaticUpdates\tSuccess\tContent Install\tInstallation Successful: Windows successfully installed the following update: $title",
    ),
    (  # service start and stop
        "Service|*************",
        "Service|** START **  Service: Service startup",
        "Service|*********",
        "Agent|  * WU client version 7.6.7600.320",
        "Agent|  * Base directory: C:\\Windows\\SoftwareDistribution",
        "Agent|  * Access type: No proxy",
        "Agent|  * Network state: Connected",
        "DtaStor|Update service properties: service is registered with AU",
        "?DtaStor|Default service for AU is {3DA21691-E39D-4DA6-8A4B-B43877BCB1B7}",
        "?DnldMgr|Download manager restoring $n downloads",
        "Report|***********  Report: Initializing static reporting data  ***********",
        "Report|  * OS Version = 6.1.7601.1.0.196880",
        "Report|  * OS Product Type = 0x00000007",
        "Report|  * Computer Brand = VMware, Inc.",
        "Report|CWERReporter::Init succeeded",
    ),
)
CLASSIC_SINGLES: tuple[str, ...] = (
    "AU|AU setting next sqm report timeout to 2024-05-1$n 07:14:02",
    "AU|Triggering AU detection through DetectNow API",
    "AU|Triggering Online detection (interactive)",
    "AU|Featured notifications is disabled.",
    "AU|AU received policy change subscription event",
    "AU|Setting AU scheduled install time to 2024-05-1$n 03:00:00",
    "Agent|Checking for updated auth cab for service 7971f918-a847-4430-9279-4a52d1efe18d at https://fe2.update.microsoft.com/v6/",
    "Agent|Sending shutdown notification to client",
    "Agent|Client Call Recorder finished delayed initialization",
    "Service|**  END  **  Service: Service exit [Exit code = 0x240001]",
    "PT|Server URL = http://$wsus:8530/SimpleAuthWebService/SimpleAuth.asmx",
    "PT|Initializing simple targeting cookie, clientId = $guid, target group = , DNS name = $host.contoso.local",
)

TEXT_WIN_BLOCKS: tuple[tuple[str, ...], ...] = (
    (
        "Update deployment monthly-windows-$n started on $host.",
        "?Starting runbook Patch-MicrosoftOMSComputer on $host.",
        "?Patch-MicrosoftOMSComputer job $guid is running on hybrid worker group ${host}_$ws.",
        "?Pre-script completed: Stop-AppPool.ps1",
        "Classifications: Critical, Security, UpdateRollup, Definition",
        "?Excluded KBs: $kb",
        "Starting update assessment on $host.",
        "Searching for applicable updates...",
        "Found $n updates applicable to this machine.",
        "Downloading update: $title",
        "Installing update: $title",
        "Update installed: $title  Result: Succeeded",
        "?Installation result for $kb: Succeeded",
        "Total updates: $n, installed: $n, failed: 0, not attempted: 0",
        "Reboot required: No",
        "?Post-script completed: Start-AppPool.ps1",
        "Machine status: Succeeded",
        "Update deployment monthly-windows-$n completed on $host.",
        "Job completed in $n minutes $sec seconds.",
    ),
    (
        "Computer: $host  OSType: Windows  Solutions: updates",
        "Heartbeat received from $host for solutions: security, updates, changeTracking",
        "Last assessment: 2024-05-1$n 03:00:41 UTC",
        "Compliance state: Compliant",
        "Update agent readiness: Ready",
        "?Hybrid Worker version 7.3.1417.0 is registered with account $aa.",
        "?The machine is connected to workspace $ws.",
    ),
    (
        "Output: Windows Update service is running.",
        "Checking the WUServer registry value... https://$wsus:8531",
        "UseWUServer = 1",
        "Restart pending: False",
        "Windows Update Agent version: 10.0.17763.5830",
    ),
)
TEXT_WIN_SINGLES: tuple[str, ...] = (
    "Runbook job queued. Job id: $guid",
    "Reboot setting: IfRequired",
    "Installation status: Succeeded",
    "Included KBs: none",
    "Assessment completed: $n critical and $n security updates missing.",
    "Maintenance window: 120 minutes",
    "Remaining maintenance window: $n minutes",
)

TEXT_LINUX_BLOCKS: tuple[tuple[str, ...], ...] = (
    (
        "Update deployment monthly-linux-$n started on $host.",
        "Patch-MicrosoftOMSLinuxComputer job $guid is running on $host.",
        "Classifications: Critical, Security",
        "Package manager: $pm",
        "Found $n packages to update.",
        "Installing package $pkg ($pkgver)",
        "Package $pkg updated to $pkgver.",
        "Reboot required: False",
        "Machine status: Succeeded",
        "Update deployment monthly-linux-$n completed on $host.",
        "Job completed in $n minutes $sec seconds.",
    ),
    (
        "Starting update assessment on $host.",
        "Heartbeat received from $host for solutions: updates, changeTracking",
        "Compliance state: Compliant",
    ),
)
TEXT_LINUX_SINGLES: tuple[str, ...] = ("Maintenance window: 120 minutes", "Installing package $pkg ($pkgver)")

#: omsupdatemgmt.log: lines starting with TAB or `|TAB` continue the record above them.
OMS_BLOCKS: tuple[tuple[str, ...], ...] = (
    (
        "Starting patch operation. [Runbook=PatchMicrosoftOMSLinuxComputer][Operation=Installation]",
        "\tDEBUG: Configuration: maintenanceWindow=PT2H, rebootSetting=IfRequired, classifications=Critical,Security",
        "\tVERBOSE: Computer=$host, Distribution=$distro",
        "Maintenance window ends at 2024-05-1$n 03:50:07 UTC.",
        "Package manager detected: $pm",
        "Refreshing the package list.",
        "?\tDEBUG: apt-get update returned 0",
        "?\tVERBOSE: Package list refreshed in $sec seconds.",
        "Checking package manager health before patch installation.",
        "Computing the list of packages to install.",
        "?Applying exclusions: none",
        "Found $n packages to install: $pkg, $pkg, $pkg",
        "Installing package: $pkg ($pkgver)",
        "Package manager returned code 0 for command: $pmcmd",
        "|\tReading package lists...",
        "|\tBuilding dependency tree...",
        "|\tReading state information...",
        "|\tGet:$n http://azure.archive.ubuntu.com/ubuntu jammy-updates/main amd64 $pkg amd64 $pkgver [$big kB]",
        "|\tFetched $big kB in 1s ($big kB/s)",
        "|\tUnpacking $pkg ($pkgver) over ($pkgver) ...",
        "|\tSetting up $pkg ($pkgver) ...",
        "?|\tProcessing triggers for man-db (2.10.2-1) ...",
        "?|\tProcessing triggers for libc-bin (2.35-0ubuntu3.7) ...",
        "Package installed successfully: $pkg ($pkgver)",
        "Time remaining in maintenance window: $n minutes.",
        "Reboot setting: IfRequired",
        "Reboot required: False",
        "Patch installation completed. Succeeded: $n, Failed: 0, Not attempted: 0.",
        "Writing update run progress to /var/opt/microsoft/omsagent/log/urp.log",
        "Operation status was marked as succeeded.",
    ),
    (
        "Starting patch operation. [Runbook=PatchMicrosoftOMSLinuxComputer][Operation=Assessment]",
        "\tVERBOSE: Computer=$host, Distribution=$distro",
        "Package manager detected: $pm",
        "Refreshing the package list.",
        "?|\tLoaded plugins: fastestmirror, langpacks",
        "Assessment found $n security and $n other updates.",
        "Operation status was marked as succeeded.",
    ),
    (
        "Installing package: $pkg ($pkgver)",
        "|\tResolving Dependencies",
        "|\t--> Running transaction check",
        "|\t---> Package $pkg.x86_64 0:$pkgver will be updated",
        "|\tComplete!",
        "Package installed successfully: $pkg ($pkgver)",
    ),
)

WORKER_BLOCKS: tuple[tuple[str, ...], ...] = (
    (
        "worker|Worker starting. [workerVersion=1.7.5.0]",
        "worker|Worker general telemetry. [workerVersion=1.7.5.0][workerType=auto-registered][username=nxautomation][oms_agent_id=$guid]",
        "worker|Worker python telemetry. [pythonVersion=3.10.12]",
        "worker|Worker system telemetry. [distribution=$distro]",
    ),
    (
        "worker|Get sandbox actions found 1 new action(s).",
        "worker|Starting sandbox process. [sandboxId=$guid]",
        "worker|Sandbox process started. [sandboxId=$guid][pId=$pid]",
        "worker|Worker started tracking sandbox. [sandboxId=$guid]",
        "sandbox|Sandbox process starting. [sandboxId=$guid][pId=$pid][workerType=auto-registered]",
        "sandbox|Job created. [sandboxId=$guid][jobId=$guid]",
        "sandbox|Job loaded. [sandboxId=$guid][jobId=$guid]",
        "sandbox|Job started. [sandboxId=$guid][jobId=$guid][runbookDefinitionKind=5][runbookName=PatchMicrosoftOMSLinuxComputer][runbookVersionId=]",
        "sandbox|Job state changed to running. [jobId=$guid]",
        "?sandbox|Runbook runtime trace: patch run started on $host",
        "sandbox|Job state changed to completed. [jobId=$guid]",
        "sandbox|Job execution time recorded. [jobId=$guid][executionTimeInSeconds=$big]",
        "sandbox|Job unloaded. [sandboxId=$guid][jobId=$guid]",
        "worker|Sandbox process exited. [sandboxId=$guid][pId=$pid][exitCode=0]",
        "worker|Worker stopped tracking sandbox. [sandboxId=$guid]",
    ),
    (
        "worker|[DEBUG] Polling JRDS for sandbox actions.",
        "worker|Get sandbox actions found 0 new action(s).",
    ),
    (
        "worker|[WARNING] JRDS answered after $n retries.",
        "worker|Get sandbox actions found 0 new action(s).",
    ),
)

OPSMGR_BACKGROUND = (
    (1210, "HealthService", 4, 'New configuration became active. Management group "AOI-$ws", configuration id:"{$GUID}".'),
    (7026, "HealthService", 4, 'The Health Service\'s host process has started successfully for management group "AOI-$ws".'),
    (7028, "HealthService", 4, "The Health Service has downloaded secure configuration for management group AOI-$ws, and processing the configuration succeeded."),
    (1206, "HealthService", 4, 'The Health Service has validated all RunAs accounts for management group "AOI-$ws".'),
    (1201, "HealthService", 4, 'New Management Pack with id:"Microsoft.IntelligencePacks.UpdateAssessment", version:"7.2.$big.0" received.'),
    (1200, "HealthService", 4, 'New Management Pack(s) requested. Management group "AOI-$ws", configuration id:"{$GUID}".'),
    (4500, "Health Service Modules", 4, "Hybrid runbook worker registration check completed for workspace $ws."),
    (1102, "HealthService", 4, 'Rule/Monitor "Microsoft.IntelligencePacks.UpdateAssessment.$n" running for instance "$host.contoso.local" with id:"{$GUID}" started.'),
)

SYSTEM_BACKGROUND = (
    (43, "Microsoft-Windows-WindowsUpdateClient", 4, "Installation Started: Windows has started installing the following update: $title"),
    (19, "Microsoft-Windows-WindowsUpdateClient", 4, "Installation Successful: Windows successfully installed the following update: $title"),
    (44, "Microsoft-Windows-WindowsUpdateClient", 4, "Windows Update started downloading an update."),
    (7036, "Service Control Manager", 4, "The Windows Update service entered the running state."),
    (7036, "Service Control Manager", 4, "The Windows Modules Installer service entered the stopped state."),
    (7036, "Service Control Manager", 4, "The Background Intelligent Transfer Service service entered the running state."),
    (7040, "Service Control Manager", 4, "The start type of the Background Intelligent Transfer Service service was changed from auto start to demand start."),
    (6005, "EventLog", 4, "The Event log service was started."),
    (6006, "EventLog", 4, "The Event log service was stopped."),
    (12, "Microsoft-Windows-Kernel-General", 4, "The operating system started at system time 2024-05-1${n}T03:2${n}:41.500000000Z."),
    (1014, "Microsoft-Windows-DNS-Client", 3, "Name resolution for the name $wsus timed out after none of the configured DNS servers responded."),
)


def background_lines(g: Gen, blocks: Sequence[Sequence[str]], singles: Sequence[str], count: int) -> list[str]:
    """About `count` filled lines: whole blocks in order, with single lines between them."""
    out: list[str] = []
    while len(out) < count:
        if singles and g.rng.random() < 0.3:
            out.append(g.sub(g.rng.choice(singles)))
            continue
        for line in g.rng.choice(blocks):
            if line.startswith("?"):
                if g.rng.random() < 0.5:
                    continue
                line = line[1:]
            out.append(g.sub(line))
    return out


# --- look-alikes (must stay silent) ----------------------------------------------------------

DISTRACTORS: dict[str, tuple[str, ...]] = {
    "wu-etw": (
        "ComApi|* START *   Search ClientId = UpdateOrchestrator, ServiceId = $errguid, Flags: 0X40010010 (cV = $cv)",
        "Agent|Added service $errguid to sequential scan list",
        "DownloadManager|Download job {$errguid} completed.",
        "Agent|Service {$errguid} is registered with Automatic Updates",
        "ComApi|Queued call {$errguid} for job completion",
        "WebServices|Auto proxy settings for this web service call. ServiceId = $errguid",
        "Agent|* END * Finding updates CallerId = $cid, Id = $n, Exit code = 0x00000000 (cV = $cv)",
        "ComApi|Exit code = 0x00000000, Result code = 0x00000000 (cV = $cv)",
        "Shared|* END * Service exit Exit code = 0x240001",
        "Agent|Exit code = 0x00240006",
        "Deployment|Deployment job Id $errguid : Update $GUID.200 : Install finished successfully",
    ),
    "wu-classic": (
        "AU|  # Approval type: Pre-install notify (Policy)",
        "AU|  # Approval type: Pre-download notify (User preference)",
        "COMAPI|  - Exit code = 0x00000000",
        "Agent|  * Added update {$errguid}.200 to search result",
        "DnldMgr|  * BITS job initialized, JobId = {$errguid}",
        "Service|**  END  **  Service: Service exit [Exit code = 0x240001]",
        "Handler|Completed install of CBS update with type=0, requiresReboot=0, installerError=0, hr=0x0",
        "Report|  * OS Product Type = 0x00000007",
    ),
    "text": (
        "Machine registration completed successfully for account $aa.",
        "The Update solution was enabled successfully on workspace $ws.",
        "Resource provider 'Microsoft.Automation' is registered for subscription $sub.",
        "Data collection resumed after the daily limit was reset.",
        "Runbook Patch-MicrosoftOMSComputer started on hybrid worker group ${host}_$ws.",
        "The update deployment completed within the maintenance window.",
        "Configure automatic updating: 3 - Auto download and notify for install",
        "Windows Update API call returned HRESULT S_OK for the search.",
        "Update run finished. Exit code = 0x00000000, Result code = 0x00000000",
        "Update $errguid was installed successfully.",
        "Job state changed to completed.",
        "Classifications selected for this deployment: Critical, Security",
        "Update Management is enabled on this virtual machine. $n critical updates are missing.",
        "IsSuperseded                          : False",
        "The subscription '$sub' is linked to the current tenant '$guid'.",
    ),
    "event": (
        "7028:HealthService|The Health Service has downloaded secure configuration for management group AOI-$ws, and processing the configuration succeeded.",
        "19:Microsoft-Windows-WindowsUpdateClient|Installation Successful: Windows successfully installed the following update: $title",
        "7040:Service Control Manager|The start type of the Windows Update service was changed from disabled to demand start.",
        "7036:Service Control Manager|The Windows Update service entered the running state.",
        "4500:Health Service Modules|Hybrid worker registration for workspace $ws completed. Worker id: {$errguid}.",
    ),
    "text-linux": (
        "Job state changed to completed.",
        "Classifications selected for this deployment: Critical, Security",
        "The update deployment completed within the maintenance window.",
        "Package manager returned code 0 for command: $pmcmd",
        "Data collection resumed after the daily limit was reset.",
        "Machine status: Succeeded",
    ),
    "oms": (
        "Checking package manager health before patch installation.",
        "Package manager returned code 0 for command: $pmcmd",
        "Classifications selected for this deployment: Critical, Security",
        "Invoking package manager to install $n packages.",
        "Operation status was marked as succeeded.",
    ),
    "worker": (
        "sandbox|Job state changed to completed. [jobId=$guid]",
        "sandbox|Job state changed to running. [jobId=$guid]",
        "worker|Sandbox process exited. [sandboxId=$guid][pId=$pid][exitCode=0]",
        "worker|Sandbox process started. [sandboxId=$guid][pId=$pid]",
    ),
}

#: Knowledge-only messages (explain_only signatures) and other non-incidents that real logs carry.
EXPLAIN_ONLY: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "wu-classic": (("AU|  # Found no download approved updates.", ("wsus-not-approved",)),),
    "wu-etw": (("ComApi|Title = Security Intelligence Update for Microsoft Defender Antivirus - KB2267602 (Version 1.411.$big.0)",
                ("kb2267602-missing",)),),
    "text": (
        ("IsSuperseded                          : True", ("superseded-update",)),
        ("This update has been replaced by the following updates: $title", ("updates-superseded",)),
        ("Definition Update for Windows Defender Antivirus - KB2267602 (Definition 1.277.$big.0)", ("kb2267602-missing",)),
    ),
}


# --- failures (the scenarios of the troubleshooting guide) -----------------------------------

NETWORK_CODES = ("8024402C", "8024401C", "8024402F", "80072EE2")
SERVICE_CODES = ("80070422", "8024002E", "8024001E")
KNOWN_CODES = (*NETWORK_CODES, *SERVICE_CODES, "80070005")
UNKNOWN_NETWORK = ("80244022", "80240438", "80072EE7", "80072EFE", "80072F8F", "80244018", "80244010")
UNKNOWN_OTHER = ("80246008", "800706BA", "80070057", "800736B3", "8024000B", "80070426", "80240022", "8024200D")
UNKNOWN_INSTALL = ("800F0922", "80070643", "80073712", "8024200D", "800F081F")

ETW_NETWORK = (
    "WebServices|*FAILED* [{C}] Web service call. Current service auth scheme=0. Current Proxy auth scheme=0.",
    "Misc|*FAILED* [{C}] WinHttp: SendRequestWithAuthRetry using proxy failed for <$url>",
    "ProtocolTalker|*FAILED* [{C}] SyncServerUpdatesInternal failed",
    "ProtocolTalker|*FAILED* [{C}] Sync of Updates",
    "Misc|*FAILED* [{C}] Library download error. Will retry. Retry Counter: $n",
    "WebServices|*FAILED* [{C}] WebService call failed during NwsCallWithRetries with a transient error. Retrying after waiting 2000 msecs. Retry Counter: $n",
    "Agent|*FAILED* [{C}] Synchronize",
)
ETW_OTHER = (
    "DownloadManager|*FAILED* [{C}] Connect to the DO service",
    "DownloadManager|*FAILED* [{C}] Connect to BITS",
    "Agent|*FAILED* [{C}] Search for updates",
    "Agent|*FAILED* [{C}] Install call failed",
    "Agent|*FAILED* [{C}] Method failed [CAgentUpdateManager::FindUpdates:$big]",
    "Agent|*FAILED* [{C}] wuauengcore.dll, C:\\__w\\1\\s\\src\\Client\\Engine\\Agent\\ClientCallRecorder.cpp @2117",
    "Deployment|*FAILED* [{C}] Deployment job Id $GUID : Installing for Top level update id $GUID.200, bundled update id $GUID.200",
)
ETW_SUMMARY = (
    "Agent|* END * Finding updates CallerId = $cid, Id = $n, Exit code = 0x{C} (cV = $cv)",
    "ComApi|Exit code = 0x00000000, Result code = 0x{C} (cV = $cv)",
    "Agent|Exit code = 0x{C}",
)
CLASSIC_NETWORK = (
    "Misc|WARNING: Send failed with hr = {c}.",
    "Misc|WARNING: SendRequest failed with hr = {c}. Proxy List used: <(null)> Bypass List used : <(null)> Auth Schemes used : <>",
    "Misc|WARNING: WinHttp: SendRequestUsingProxy failed for <$url>. error 0x{c}",
    "PT|WARNING: PTError: 0x{c}",
    "PT|WARNING: Sync of Updates: 0x{c}",
    "PT|WARNING: SyncServerUpdatesInternal failed: 0x{c}",
    "Agent|  * WARNING: Failed to synchronize, error = 0x{C}",
    "Setup|FATAL: IsUpdateRequired failed with error 0x{c}",
)
CLASSIC_OTHER = (
    "Agent|WARNING: WU client failed Searching for update with error 0x{c}",
    "Handler|FATAL: CBS called Error with 0x{c}, ",
    "Handler|FATAL: UH: 0x{c}: EvaluateApplicability failed in CCbs::EvaluateApplicability",
    "Agent|WARNING: Failed to evaluate Installed rule, updateId = {$GUID}.202, hr = {c}",
    "DnldMgr|WARNING: BITS job {$GUID} failed, updateId = {$GUID}.201, hr = 0x{C}, BG_ERROR_CONTEXT=5",
    "COMAPI|WARNING: Operation failed due to earlier error, hr=0x{C}",
)
CLASSIC_SUMMARY = (
    "Agent|  * WARNING: Exit code = 0x{C}",
    "AU|#WARNING: Search callback failed, result = 0x{C}",
    "AU|#WARNING: Failed to find updates with error code {C}",
)

ALREADY_REGISTERED = ('Unable to Register Machine for Patch Management, Registration Failed with Exception '
                      'System.InvalidOperationException: {"Message":"Machine is already registered to a different account."}')
JSON_ERRORS = ("Error parsing positive infinity value.",
               "Unexpected character encountered while parsing value: <. Path '', line 0, position 0.",
               "Error parsing positive infinity value. Path '', line 1, position 1.")
INNER_EXCEPTIONS = (
    " ---> System.Net.WebException: Unable to connect to the remote server",
    " ---> System.IO.IOException: Unable to read data from the transport connection: An existing connection was forcibly closed by the remote host.",
    " ---> System.Security.Authentication.AuthenticationException: The remote certificate is invalid according to the validation procedure.",
    " ---> System.Net.Sockets.SocketException: A connection attempt failed because the connected party did not properly respond after a period of time, or established connection failed because connected host has failed to respond $ip:443",
)
STACK_LINES = (  # a .NET trace, innermost first; a variant keeps its last few frames
    "   at System.Net.HttpWebRequest.EndGetResponse(IAsyncResult asyncResult)",
    "   at System.Net.Http.HttpClientHandler.GetResponseCallback(IAsyncResult ar)",
    "   --- End of inner exception stack trace ---",
    "   at System.Runtime.CompilerServices.TaskAwaiter.ThrowForNonSuccess(Task task)",
    "   at System.Runtime.CompilerServices.TaskAwaiter.HandleNonSuccessAndDebuggerNotification(Task task)",
    "   at Microsoft.EnterpriseManagement.HealthService.AzureAutomation.HybridAgent.Registration.RegisterAsync(Uri endpoint, String workspaceId)",
)

Maker = Callable[[Gen, str], list[Rec]]


def _rec(text: str, core_text: str | None = None, **kw) -> Rec:
    """A Rec whose core is the first occurrence of `core_text` (default: the whole text)."""
    core = None
    if core_text is not None:
        start = text.find(core_text)
        assert start >= 0, (core_text, text)
        core = (start, start + len(core_text))
    return Rec(text, core=core, **kw)


def _wu_lines(g: Gen, slot: str, code: str, pools: tuple[Sequence[str], Sequence[str]]) -> list[Rec]:
    """A cascade of WindowsUpdate.log lines for one code: a few detail lines, often a summary."""
    detail, summary = pools
    rng = g.rng
    chosen = rng.sample(list(detail), k=min(len(detail), rng.randint(1, 3)))
    if rng.random() < 0.7:
        chosen.append(rng.choice(summary))
    out = []
    for spec in chosen:
        comp, msg = spec.split("|", 1)
        text = g.sub(msg.replace("{C}", code).replace("{c}", code.lower()))
        tok = re.search(rf"\[{code}\]|0x{code}|hr = {code}|code {code}", text, re.IGNORECASE)
        assert tok is not None, text
        out.append(Rec(text, tokens=(tok.group(),), component=comp))
    return out


def _wu_pools(slot: str, code: str) -> tuple[Sequence[str], Sequence[str]]:
    network = code in NETWORK_CODES or code in UNKNOWN_NETWORK
    if slot == "wu-etw":
        return (ETW_NETWORK if network else ETW_OTHER), ETW_SUMMARY
    return (CLASSIC_NETWORK if network else CLASSIC_OTHER), CLASSIC_SUMMARY


def t_wu_known(g: Gen, slot: str) -> list[Rec]:
    code = g.rng.choice(KNOWN_CODES)
    return _wu_lines(g, slot, code, _wu_pools(slot, code))


def t_wu_unknown(g: Gen, slot: str) -> list[Rec]:
    code = g.rng.choice(UNKNOWN_NETWORK + UNKNOWN_OTHER)
    return _wu_lines(g, slot, code, _wu_pools(slot, code))


def t_wu_nws_map(g: Gen, slot: str) -> list[Rec]:
    nws = g.rng.choice(("803d0006", "803d0010", "803d0014"))
    text = f"MapToSusHResult mapped Nws error 0x{nws} to 0x8024401c"
    recs = [Rec(text, tokens=(f"0x{nws}", "0x8024401c"), component="WebServices")]
    return recs + _wu_lines(g, slot, "8024401C", (ETW_NETWORK, ETW_SUMMARY))


def t_au_scheduled(g: Gen, slot: str) -> list[Rec]:
    kind = g.rng.choice(("Scheduled (Policy)", "Scheduled (User preference)"))
    block = [
        ("AU", "###########  AU: Initializing Automatic Updates  ###########"),
        ("AU", f"  # WSUS server: http://{g['wsus']}:8530"),
        ("AU", "  # Detection frequency: 22"),
        ("AU", f"  # Approval type: {kind}"),
        ("AU", f"  # Scheduled install day/time: Every day at {g.rng.randint(1, 5)}:00"),
        ("AU", "  # Auto-install minor updates: Yes (User preference)"),
    ]
    return [Rec(m, sigs=("updates-nodeployment",) if "Approval" in m else (), component=c,
                core=(m.index("Approval"), len(m)) if "Approval" in m else None) for c, m in block]


def t_gpo_au4(g: Gen, slot: str) -> list[Rec]:
    text = g.rng.choice((
        "Configure automatic updating: 4 - Auto download and schedule the install",
        "    Configure automatic updating:   4 - Auto download and schedule the install",
        "Configure Automatic Updates: Enabled. Configure automatic updating: 4 - Auto download and schedule the install. Scheduled install day: 0 - Every day",
    ))
    core = "Configure automatic updating:"
    start = text.index(core)
    return [Rec(text, sigs=("updates-nodeployment",), core=(start, text.index("install", start) + 7))]


def t_portal_hresult(g: Gen, slot: str) -> list[Rec]:
    code = g.rng.choice(KNOWN_CODES + UNKNOWN_NETWORK)
    exc = g.rng.choice(("Exception from HRESULT", "Exception from HRESULT", "Exception form HRESULT"))
    core = f"{exc}: 0x{code}"
    text = g.rng.choice((
        "{core}",
        "Windows update API failed to assess the machine for available updates. Error:{core}, Hresult:0",
        "Not assessed. {core}",
        "Operation could not be completed. ({core})",
        "Update assessment failed on $host: {core}",
    ))
    text = g.sub(text.replace("{core}", core))
    if slot == "event":
        text = _registration(g, f"System.Runtime.InteropServices.COMException: {core}")
    return [_rec(text, core, sigs=("hresult-exception",), tokens=(f"0x{code}",), dotnet=True)]


def t_service_disabled(g: Gen, slot: str) -> list[Rec]:
    msg = "The service cannot be started, either because it is disabled or because it has no enabled devices associated with it."
    if g.rng.random() < 0.6:
        text = f"{msg} (Exception from HRESULT: 0x80070422)"
        return [_rec(text, msg, sigs=("hresult-80070422", "hresult-exception"), tokens=("0x80070422",), dotnet=True)]
    if slot == "event":
        text = f"System.Runtime.InteropServices.COMException (0x80070422): {msg}"
        return [_rec(text, msg, sigs=("hresult-80070422",), tokens=("0x80070422",), dotnet=True)]
    text = f'Exception calling "Search" with "1" argument(s): "{msg}"'
    return [_rec(text, msg, sigs=("hresult-80070422",), dotnet=True)]


def _registration(g: Gen, exc: str) -> str:
    return "Unable to Register Machine for Patch Management, Registration Failed with Exception " + exc


def t_already_registered(g: Gen, slot: str) -> list[Rec]:
    core = "Machine is already registered to a different account."
    return [_rec(ALREADY_REGISTERED, core, sigs=("machine-already-registered",), dotnet=True)]


def t_tls(g: Gen, slot: str) -> list[Rec]:
    cant = g.rng.choice(("can't", "cannot"))
    core = f"The client and server {cant} communicate, because they do not possess a common algorithm"
    win32 = g.rng.choice(("System.ComponentModel.Win32Exception: ", "System.ComponentModel.Win32Exception (0x80004005): "))
    text = _registration(g, "System.Net.Http.HttpRequestException: An error occurred while sending the request. ---> "
                            "System.Net.WebException: The underlying connection was closed: An unexpected error occurred "
                            f"on a receive. ---> {win32}{core}")
    tokens = ("0x80004005",) if "0x" in win32 else ()
    return [_rec(text, core, sigs=("machine-unable-to-communicate-tls", "machine-unable-to-communicate-http"),
                 tokens=tokens, dotnet=True)]


def t_json(g: Gen, slot: str) -> list[Rec]:
    text = _registration(g, "Newtonsoft.Json.JsonReaderException: " + g.rng.choice(JSON_ERRORS))
    core = "Registration Failed with Exception Newtonsoft.Json.JsonReaderException"
    return [_rec(text, core, sigs=("machine-unable-to-communicate-json",), dotnet=True)]


def t_proxy_cert(g: Gen, slot: str) -> list[Rec]:
    lead = g.rng.choice(("Contact", "Please contact"))
    core = "was not issued by a certificate authority used for Microsoft services"
    text = (f"The certificate presented by the service {g['ws']}.oms.opinsights.azure.com {core}. {lead} your network "
            "administrator to see if they are running a proxy that intercepts TLS/SSL communication.")
    if g.rng.random() < 0.4:
        text += " The article KB3126513 has additional troubleshooting information for connectivity issues."
    return [_rec(text, core, sigs=("machine-unable-to-communicate-cert",))]


def t_access_denied(g: Gen, slot: str) -> list[Rec]:
    if g.rng.random() < 0.5:
        core = "Access is denied. (Exception form HRESULT: 0x80070005(E_ACCESSDENIED))"
        text = core
    else:
        core = "Access is denied. (Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))"
        text = _registration(g, "System.UnauthorizedAccessException: " + core)
    return [_rec(text, core, sigs=("machine-unable-to-communicate-access-denied", "hresult-exception"),
                 tokens=("0x80070005",), dotnet=True)]


def t_http(g: Gen, slot: str) -> list[Rec]:
    core = "Registration Failed with Exception System.Net.Http.HttpRequestException: An error occurred while sending the request"
    inner = g.rng.choice((
        " ---> System.Net.WebException: Unable to connect to the remote server ---> System.Net.Sockets.SocketException: "
        "A connection attempt failed because the connected party did not properly respond after a period of time $ip:443",
        " ---> System.Net.WebException: The remote name could not be resolved: '$aa.agentsvc.azure-automation.net'",
        " ---> System.Net.WebException: Unable to connect to the remote server ---> System.Net.Sockets.SocketException "
        "(0x80004005): No connection could be made because the target machine actively refused it $ip:443",
    ))
    text = "Unable to Register Machine for Patch Management, " + core + "." + g.sub(inner)
    tokens = ("0x80004005",) if "0x80004005" in text else ()
    return [_rec(text, core, sigs=("machine-unable-to-communicate-http",), tokens=tokens, dotnet=True)]


def t_selfsigned(g: Gen, slot: str) -> list[Rec]:
    ns = g.rng.choice(("AgentService.HybridRegistration. PowerShell.Certificates", "AgentService.HybridRegistration.PowerShell.Certificates"))
    core = "CertificateCreationException: Failed to create a self-signed certificate"
    text = _registration(g, f"{ns}.{core}. ---> System.UnauthorizedAccessException: Access is denied.")
    return [_rec(text, core, sigs=("unable-to-create-selfsigned-cert",), dotnet=True)]


def t_install_failure(g: Gen, slot: str) -> list[Rec]:
    code = g.rng.choice(("8024001E", "80070005", *UNKNOWN_INSTALL))
    title = g.title() if g.rng.random() < 0.8 else "Security Intelligence Update for Microsoft Defender Antivirus - KB2267602 (Version 1.411.213.0)"
    text = f"Installation Failure: Windows failed to install the following update with error 0x{code}: {title}."
    sigs = ("machines-dont-install-updates",) + (("kb2267602-missing",) if "KB2267602" in title else ())
    return [Rec(text, sigs=sigs, tokens=(f"0x{code}",), event=(20, "Microsoft-Windows-WindowsUpdateClient", 2))]


def t_failed_to_enable(g: Gen, slot: str) -> list[Rec]:
    core = "Error details: Failed to enable the Update solution"
    text = g.rng.choice((core, f"Deployment failed. {core}. Please try again later.",
                         f"{core} (correlation id {g.guid()})", f"{core}."))
    return [_rec(text, core, sigs=("failed-to-enable-update-solution",))]


def t_rp_register(g: Gen, slot: str) -> list[Rec]:
    core = "Unable to register Automation Resource Provider for subscriptions"
    subs = g["sub"] if g.rng.random() < 0.7 else f"{g['sub']}, {g.guid()}"
    text = g.rng.choice((f"Error details: {core}: {subs}", f"Error details: {core}:", f"{core}: {subs}"))
    return [_rec(text, core, sigs=("rp-register",))]


def t_components(g: Gen, slot: str) -> list[Rec]:
    core = ("The components for the 'Update Management' solution have been enabled, and now this virtual machine is "
            "being configured")
    tail = g.rng.choice((". Please be patient, as this can sometimes take up to 15 minutes.", ".", ""))
    lead = g.rng.choice(("", f"{g.host}: ", "Update Management: "))
    return [_rec(lead + core + tail, core, sigs=("components-enabled-not-working",))]


def t_multi_tenant(g: Gen, slot: str) -> list[Rec]:
    core = (f"however the current tenant '{g.guid()}' is not authorized to access linked subscription '{g.guid()}'")
    text = (f"The client has permission to perform action 'Microsoft.Compute/virtualMachines/write' on scope "
            f"'/subscriptions/{g['sub']}/resourceGroups/{g.rng.choice(RESOURCE_GROUPS)}/providers/Microsoft.Automation/"
            f"automationAccounts/{g['aa']}/softwareUpdateConfigurations/monthly-windows-{g.n()}', {core}.")
    return [_rec(text, core, sigs=("multi-tenant",))]


def t_failed_to_start(g: Gen, slot: str) -> list[Rec]:
    a = "Failed to start the runbook. Check the parameters passed. RunbookName Patch-MicrosoftOMSComputer"
    b = "You have requested to create a runbook job on a hybrid worker group that does not exist"
    text = g.rng.choice((f"{a}. Exception {b}.", f"Exception {b}.", f"{g.host}  Failed to start  {a}. Exception {b}."))
    return [_rec(text, b, sigs=("failed-to-start",))]


def t_overquota(g: Gen, slot: str) -> list[Rec]:
    core = "Data collection stopped due to daily limit of free data reached. Ingestion status = OverQuota"
    stamp = f"2024-05-{g.rng.randint(10, 28)}T00:{g.rng.randint(10, 59)}:31.117Z"
    text = g.rng.choice((core, f"{stamp}  Data Collection Status  Warning  {core}", f"Operation: {core}"))
    return [_rec(text, core, sigs=("nologs-daily-quota", "nologs"))]


def t_mw_exceeded(g: Gen, slot: str) -> list[Rec]:
    if slot == "oms" or (slot == "text" and g.rng.random() < 0.4):
        core = g.rng.choice(("Stopped patch installation as it is past the maintenance window cutoff time",
                             "maintenance window exceeded"))
        text = (f"{core}." if core.startswith("Stopped") else
                f"ERROR: Operation status was marked as failed because: [X] a failure occurred during the operation  [X] {core} ")
        return [_rec(text, core, sigs=("mw-exceeded",))]
    text = g.rng.choice(("Machine status: MaintenanceWindowExceeded", "$host    Failed    MaintenanceWindowExceeded",
                         "The update run on $host ended with status MaintenanceWindowExceeded."))
    text = g.sub(text)
    return [_rec(text, "MaintenanceWindowExceeded", sigs=("mw-exceeded",))]


def t_dpkg(g: Gen, slot: str) -> list[Rec]:
    sudo = g.rng.choice(("sudo ", ""))
    core = f"E: dpkg was interrupted, you must manually run '{sudo}dpkg --configure -a' to correct the problem"
    if slot == "oms":
        text = (f"[ERROR] Package manager was invoked using: {g.pmcmd()} - Return code from package manager: 100 - Output "
                f"from package manager: \n|\tReading package lists...\n|\t{core}.")
        return [_rec(text, core, sigs=("linux-dpkg-interrupted",))]
    return [_rec(f"{core}.", core, sigs=("linux-dpkg-interrupted",))]


def t_pm_unhealthy(g: Gen, slot: str) -> list[Rec]:
    if g.rng.random() < 0.5:
        core = "The package manager on this machine is not in a healthy state"
        text = (f"[ERROR] YOU NEED TO TAKE ACTION TO PROCEED. {core}, and Patch Management cannot proceed successfully. "
                "Before the next Patch Operation, please run the following command and perform any configuration steps "
                "necessary on the machine to return it to a healthy state: sudo dpkg --configure -a")
    else:
        core = "Package manager on machine is not healthy"
        text = f"WARNING: {core}. To fix, please run: sudo dpkg --configure -a"
    return [_rec(text, core, sigs=("linux-package-manager-unhealthy",))]


def t_unexpected_rc(g: Gen, slot: str) -> list[Rec]:
    rc = {"apt": 100, "yum": 1, "zypper": g.rng.choice((4, 8, 104))}[g["pm"]]
    tool = "apt-cache" if g["pm"] == "apt" and g.rng.random() < 0.25 else "package manager"
    cmd = "sudo apt-cache policy " + g.pkg() if tool == "apt-cache" else g.pmcmd()
    core = f"Unexpected return code ({rc}) from {tool} on command:"
    lead = g.rng.choice(("ERROR: ", "", "[ERROR] "))
    return [_rec(f"{lead}{core} {cmd}", core, sigs=("linux-unexpected-return-code",))]


def t_classification(g: Gen, slot: str) -> list[Rec]:
    core = ("Classification-based patching is only supported on YUM if the computer is independently configured to "
            "receive classification information")
    tail = g.rng.choice((".Please remove classifications from update deployments to CentOS machines to bypass this error.",
                         ".", ". Please remove classifications from update deployments to CentOS machines to bypass this error."))
    lead = g.rng.choice(("", "ERROR: "))
    return [_rec(lead + core + tail, core, sigs=("linux-classification",))]


def _job_fields(g: Gen) -> str:
    return (f"[subscriptionId={g['sub']}][accountId={g['aa_id']}][accountName={g['aa']}][sandboxId={g.guid()}]"
            f"[jobId={g.guid()}][runbookDefinitionKind=9][runbookName=PatchMicrosoftOMSLinuxComputer][runbookVersionId=]")


def t_job_failed(g: Gen, slot: str) -> list[Rec]:
    exc, extra = g.rng.choice((
        ("Python script returned non-zero exit code", ()),
        ("Patch operation failed: maintenance window exceeded", ("mw-exceeded",)),
        ("ImportError: No module named configparser", ()),
        ("Timeout while waiting for the package manager lock", ()),
    ))
    text = f"Job state changed to failed. {_job_fields(g)}[exception={exc}]"
    return [_rec(text, "Job state changed to failed", sigs=("linux-job-failed", *extra), component="sandbox")]


def t_sandbox_crashed(g: Gen, slot: str) -> list[Rec]:
    exc = g.rng.choice(("ImportError: No module named configparser", "", "MemoryError",
                        "OSError: [Errno 28] No space left on device"))
    text = f"Sandbox process crashed. [sandboxId={g.guid()}][pId={g.pid()}][exitCode={g.rng.choice((1, -9, 137))}][exception={exc}]"
    return [_rec(text, "Sandbox process crashed", sigs=("linux-sandbox-crashed",), component="worker")]


#: template id -> (slots it can be written to, maker). Slot choice per injection is random.
TEMPLATES: dict[str, tuple[tuple[str, ...], Maker]] = {
    "wu-known-code": (("wu-etw", "wu-classic"), t_wu_known),
    "wu-unknown-code": (("wu-etw", "wu-classic"), t_wu_unknown),
    "wu-nws-mapping": (("wu-etw",), t_wu_nws_map),
    "au-scheduled": (("wu-classic",), t_au_scheduled),
    "gpo-au4": (("text",), t_gpo_au4),
    "portal-hresult": (("text", "event"), t_portal_hresult),
    "service-disabled": (("text", "event"), t_service_disabled),
    "already-registered": (("event", "event", "text"), t_already_registered),
    "tls": (("event", "event", "text"), t_tls),
    "json": (("event", "event", "text"), t_json),
    "proxy-cert": (("event", "event", "text"), t_proxy_cert),
    "access-denied": (("event", "text"), t_access_denied),
    "http": (("event", "event", "text"), t_http),
    "selfsigned": (("event", "event", "text"), t_selfsigned),
    "install-failure": (("event",), t_install_failure),
    "failed-to-enable": (("text",), t_failed_to_enable),
    "rp-register": (("text",), t_rp_register),
    "components": (("text",), t_components),
    "multi-tenant": (("text",), t_multi_tenant),
    "failed-to-start": (("text",), t_failed_to_start),
    "overquota": (("text",), t_overquota),
    "mw-exceeded": (("text", "oms"), t_mw_exceeded),
    "dpkg": (("oms", "text"), t_dpkg),
    "pm-unhealthy": (("oms", "text"), t_pm_unhealthy),
    "unexpected-rc": (("oms", "oms", "text"), t_unexpected_rc),
    "classification": (("oms", "text"), t_classification),
    "job-failed": (("worker", "worker", "text"), t_job_failed),
    "sandbox-crashed": (("worker", "worker", "text"), t_sandbox_crashed),
}
#: Templates whose messages only a Windows machine (or its portal page) shows, and only a Linux one.
LINUX_ONLY = {"dpkg", "pm-unhealthy", "unexpected-rc", "classification", "job-failed", "sandbox-crashed"}
WINDOWS_ONLY = {"wu-known-code", "wu-unknown-code", "wu-nws-mapping", "au-scheduled", "gpo-au4", "portal-hresult",
                "service-disabled", "already-registered", "tls", "json", "proxy-cert", "access-denied", "http",
                "selfsigned", "install-failure"}


# --- variants ---------------------------------------------------------------------------------

TYPOS = (("from", "form"), ("receive", "recieve"), ("occurred", "occured"), ("registered", "registred"),
         ("certificate", "certifcate"), ("communicate", "comunicate"), ("available", "availible"),
         ("interrupted", "interupted"), ("successfully", "succesfully"), ("subscriptions", "subscriptons"),
         ("configured", "configred"), ("Exception", "Excpetion"), ("process", "proces"), ("tenant", "tennant"))
SLOT_VARIANTS = {
    "text": ("case", "spacing", "typo", "truncate", "wrap", "embed", "chain"),
    "event": ("case", "spacing", "typo", "wrap", "chain", "stack"),
    "oms": ("case", "spacing", "typo", "wrap"),
    "worker": ("case", "spacing", "typo", "wrap"),
    "wu-etw": (),  # the agent writes its own text: codes vary in case by template, not by copy
    "wu-classic": ("spacing",),
}
TEXT_EMBED = (
    "Update deployment 'monthly-$n' failed on $host. {msg}",
    "$host: {msg}",
    "Status: Failed. Message: {msg} Correlation ID: $guid",
    "{msg} (Activity ID: $guid)",
    "Exception: {msg}",
)


def _protected(rec: Rec) -> list[bool]:
    """Characters variants must not touch: the code spellings."""
    mask = [False] * len(rec.text)
    low = rec.text.lower()
    for tok in rec.tokens:
        for m in re.finditer(re.escape(tok.lower()), low):
            for i in range(m.start(), m.end()):
                mask[i] = True
    return mask


def _core(rec: Rec) -> tuple[int, int]:
    return rec.core if rec.core is not None else (0, len(rec.text))


def _splice(rec: Rec, start: int, end: int, new: str) -> Rec:
    """Replace text[start:end], keeping the core span aligned."""
    text = rec.text[:start] + new + rec.text[end:]
    cs, ce = _core(rec)
    delta = len(new) - (end - start)
    if start < cs:
        cs += delta
    if end <= ce:
        ce += delta
    return Rec(**{**rec.__dict__, "text": text, "core": (cs, max(cs, ce))})


def v_case(g: Gen, rec: Rec) -> Rec:
    cs, ce = _core(rec)
    part = rec.text[cs:ce]
    part = g.rng.choice((part.upper(), part.lower(), part.title()))
    return _splice(rec, cs, ce, part)


def v_spacing(g: Gen, rec: Rec) -> Rec:
    cs, ce = _core(rec)
    prot = _protected(rec)
    spots = [i for i in range(cs, ce) if rec.text[i] == " " and not prot[i]]
    for i in sorted(g.rng.sample(spots, k=min(len(spots), g.rng.randint(1, 4))), reverse=True):
        rec = _splice(rec, i, i + 1, g.rng.choice(("  ", "   ", "\t", " \t")))
    return rec


def v_typo(g: Gen, rec: Rec) -> Rec:
    cs, ce = _core(rec)
    prot = _protected(rec)
    options = []
    for good, bad in TYPOS:
        for m in re.finditer(rf"\b{good}\b", rec.text[cs:ce]):
            s, e = cs + m.start(), cs + m.end()
            if not any(prot[s:e]):
                options.append((s, e, bad))
    if not options:
        return rec
    s, e, bad = g.rng.choice(options)
    return _splice(rec, s, e, bad)


def v_truncate(g: Gen, rec: Rec) -> Rec:
    """Cut the text inside its error core, keeping at least 70% of the core and of the whole text."""
    cs, ce = _core(rec)
    keep = cs + math.ceil((ce - cs) * g.rng.uniform(0.7, 0.97))
    keep = max(keep, math.ceil(0.7 * len(rec.text)))
    if keep >= len(rec.text) - 1:
        return rec
    out = Rec(**{**rec.__dict__, "text": rec.text[:keep].rstrip() + g.rng.choice(("...", "…", "", " ..."))})
    out.core = (cs, min(ce, len(out.text)))
    return out


def v_wrap(g: Gen, rec: Rec) -> Rec:
    """Break the text into lines of 60 to 100 characters at spaces (never inside a code)."""
    width = g.rng.randint(60, 100)
    prot = _protected(rec)
    text, out, last = rec.text, [], 0
    col = 0
    for i, ch in enumerate(text):
        col += 1
        if ch == " " and col >= width and not prot[i]:
            out.append(text[last:i])
            last, col = i + 1, 0
    out.append(text[last:])
    if len(out) == 1:
        return rec
    return Rec(**{**rec.__dict__, "text": "\n".join(out), "core": None})


def v_embed(g: Gen, rec: Rec) -> Rec:
    wrapper = g.sub(g.rng.choice(TEXT_EMBED).replace("{msg}", "\x00"))
    pre, post = wrapper.split("\x00")
    cs, ce = _core(rec)
    return Rec(**{**rec.__dict__, "text": pre + rec.text + post, "core": (cs + len(pre), ce + len(pre))})


def v_chain(g: Gen, rec: Rec) -> Rec:
    """One more inner exception at the end of an existing ` ---> ` chain."""
    if " ---> " not in rec.text:
        return rec
    return Rec(**{**rec.__dict__, "text": rec.text + g.sub(g.rng.choice(INNER_EXCEPTIONS))})


def v_stack(g: Gen, rec: Rec) -> Rec:
    """The stack trace .NET prints under an exception (the last frames)."""
    if not rec.dotnet:
        return rec
    frames = STACK_LINES[-g.rng.randint(2, len(STACK_LINES)):]
    return Rec(**{**rec.__dict__, "text": rec.text + "\n" + "\n".join(frames)})


VARIANTS: dict[str, Callable[[Gen, Rec], Rec]] = {
    "embed": v_embed, "chain": v_chain, "stack": v_stack, "typo": v_typo, "case": v_case, "spacing": v_spacing,
    "truncate": v_truncate, "wrap": v_wrap,
}
#: Chance of each variant per injected record (applied in this order).
VARIANT_RATE = {"embed": 0.3, "chain": 0.3, "stack": 0.4, "typo": 0.1, "case": 0.12, "spacing": 0.15,
                "truncate": 0.1, "wrap": 0.15}
#: Plain text is one record per line: wrapping there is rarer (a copy through mail or a ticket).
TEXT_WRAP_RATE = 0.04


def apply_variants(g: Gen, rec: Rec, slot: str) -> Rec:
    allowed = SLOT_VARIANTS[slot]
    done = []
    for name, rate in VARIANT_RATE.items():
        if name == "wrap" and slot == "text":
            rate = TEXT_WRAP_RATE
        if name in allowed and g.rng.random() < rate:
            new = VARIANTS[name](g, rec)
            if new.text != rec.text:
                done.append(name)
            rec = new
    rec.variants = tuple(done)
    return rec


# --- writers ------------------------------------------------------------------------------------


@dataclass
class Clock:
    """Monotonic local time for one file."""

    now: datetime

    def tick(self, rng: random.Random, max_s: float = 90) -> datetime:
        self.now += timedelta(seconds=rng.uniform(0.001, max_s))
        return self.now


def _crlf(lines: Iterable[str]) -> str:
    return "".join(line + "\r\n" for line in lines)


def _encode(text: str, encoding: str) -> bytes:
    if encoding == "utf-16":
        return b"\xff\xfe" + text.encode("utf-16-le")
    if encoding == "utf-8-bom":
        return b"\xef\xbb\xbf" + text.encode("utf-8")
    if encoding == "cp1252":
        return text.encode("cp1252", errors="replace")
    if encoding == "ascii":
        return text.encode("ascii", errors="replace")
    return text.encode("utf-8")


def write_wu_etw(items: list[Rec], g: Gen, clock: Clock) -> bytes:
    sep = g.rng.choice(("/", "/", "/", "-", "."))
    pid, tid = g.rng.randint(900, 12000), g.rng.randint(900, 20000)
    lines = []
    for rec in items:
        t = clock.tick(g.rng, 20)
        if g.rng.random() < 0.02:
            pid, tid = g.rng.randint(900, 12000), g.rng.randint(900, 20000)
        stamp = t.strftime(f"%Y{sep}%m{sep}%d %H:%M:%S.") + f"{t.microsecond:06d}{g.rng.randint(0, 9)}"
        lines.append(f"{stamp} {pid:<5} {tid:<5} {rec.component:<15} {rec.text}")
    if g.rng.random() < 0.3:  # an event whose format the decoder did not know
        lines.insert(g.rng.randint(0, len(lines)), f"1600/12/31 19:00:00.0000000 {pid:<5} {tid:<5} {'':<15} Unknown( 15): "
                     f"GUID={g.errguid().lower()} (No Format Information found).")
    enc = g.rng.choice(("utf-8", "utf-8", "utf-8-bom", "utf-16"))
    newline = "\n" if g.rng.random() < 0.15 else "\r\n"
    return _encode("".join(line + newline for line in lines), enc)


def write_wu_classic(items: list[Rec], g: Gen, clock: Clock) -> bytes:
    pid, tid = g.rng.randint(400, 1900), g.rng.randint(0x100, 0x1fff)
    tz = g.rng.choice(("+0100", "+0200", "-0500", "+0530", "+0000"))
    mangled = g.rng.random() < 0.1  # copied through a web page: tabs became spaces
    lines = []

    def emit(comp: str, msg: str) -> None:
        t = clock.tick(g.rng, 15)
        stamp = t.strftime("%Y-%m-%d\t%H:%M:%S:") + f"{t.microsecond // 1000:03d}"
        line = f"{stamp}\t{pid:>4}\t{tid:>4x}\t{comp}\t{msg}"
        lines.append(re.sub(r"\t+", "  ", line) if mangled else line)

    emit("Misc", f"===========  Logging initialized (build: 7.6.7600.320, tz: {tz})  ===========")
    for rec in items:
        if g.rng.random() < 0.01:
            pid = g.rng.randint(400, 1900)
            emit("Misc", f"===========  Logging initialized (build: 7.6.7600.320, tz: {tz})  ===========")
        emit(rec.component, rec.text)
    return _encode(_crlf(lines), "cp1252")


def write_text(items: list[Rec], g: Gen, clock: Clock) -> bytes:
    style = g.rng.choice(("none", "iso", "isoz", "us"))
    header = g.rng.choice((f"Job output - {g.host}", f"Update deployment results for {g.host}",
                           f"Notes from the portal, {g.host}", "Output", f"Copied from Azure portal ({g.host})"))
    lines = [header, ""]
    for rec in items:
        t = clock.tick(g.rng, 40)
        prefix = {
            "none": "",
            "iso": t.strftime("%Y-%m-%d %H:%M:%S") + "  ",
            "isoz": t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z ",
            "us": f"{t.month}/{t.day}/{t.year} {t.hour % 12 or 12}:{t.minute:02d}:{t.second:02d} "
                  f"{'AM' if t.hour < 12 else 'PM'}  ",
        }[style]
        parts = rec.text.split("\n")
        lines.append(prefix + parts[0])
        lines.extend(parts[1:])
    enc = g.rng.choice(("utf-8", "utf-8", "utf-8-bom", "utf-16"))
    return _encode(_crlf(lines), enc)


def write_oms(items: list[Rec], g: Gen, clock: Clock) -> bytes:
    lines = [""]
    stamp = clock.tick(g.rng, 1).strftime("%Y-%m-%d %H:%M:%S")
    lines.append(f"{stamp}> " + "-" * 128)
    for rec in items:
        parts = rec.text.split("\n")
        if parts[0].startswith(("\t", "|\t")):  # a continuation line of the record before
            lines.extend(parts)
            continue
        stamp = clock.tick(g.rng, 30).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{stamp}> {parts[0]}")
        lines.extend(parts[1:])
    lines[-1] += "<Log file was closed.>"
    return "\n".join(lines).encode("utf-8")


def write_worker(items: list[Rec], g: Gen, clock: Clock) -> bytes:
    worker_pid, sandbox_pid = g.rng.randint(900, 3000), g.rng.randint(3000, 40000)
    lines = []
    for rec in items:
        parts = rec.text.split("\n")
        pid = worker_pid if rec.component == "worker" else sandbox_pid
        stamp = clock.tick(g.rng, 60).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{stamp} ({pid}){rec.component or 'worker'} : {parts[0]}")
        lines.extend(parts[1:])
    return "".join(line + "\n" for line in lines).encode("utf-8")


# --- event exports ---------------------------------------------------------------------------

EVENT_NS = "http://schemas.microsoft.com/win/2004/08/events/event"
RULE = "Microsoft.IntelligencePacks.AzureAutomation.HybridAgent.Init"
MODULE = "Microsoft.EnterpriseManagement.HealthService.AzureAutomation.HybridAgent"
LEVEL_WORDS = {1: "Critical", 2: "Error", 3: "Warning", 4: "Information"}
OPSMGR_PROVIDERS = ("HealthService", "Health Service Modules")


@dataclass
class Ev:
    event_id: int
    provider: str
    level: int
    utc: datetime
    record_id: int
    channel: str
    message: str
    data: tuple[str, ...]
    computer: str
    rendered: bool = True  # False: the message DLL was missing where the export was made


def make_4502(g: Gen, rec: Rec, t: datetime, rid: int, computer: str) -> Ev:
    """A 4502 in one of the two shapes log-formats.md §2 describes (or the bare exception)."""
    mg, inst = f"AOI-{g['ws']}", "{" + g.GUID() + "}"
    shape = rec.shape or g.rng.choice(("module", "module", "workflow"))
    rec.shape = shape
    if shape == "module":
        msg = (f'A module of type "{MODULE}" reported an exception {rec.text} which was running as part of rule '
               f'"{RULE}" running for instance "{computer}" with id:"{inst}" in management group "{mg}".')
        return Ev(4502, "HealthService", 2, t, rid, "Operations Manager", msg, (mg, RULE, computer, MODULE, rec.text, inst),
                  computer)
    msg = (f"{rec.text}\n\nOne or more workflows were affected by this.\n\nWorkflow name: {RULE}\n"
           f"Instance name: {computer}\nInstance ID: {inst}\nManagement group: {mg}")
    return Ev(4502, "Health Service Modules", g.rng.choice((2, 3)), t, rid, "Operations Manager", msg,
              (rec.text, RULE, computer, inst, mg), computer)


def _us_time(t: datetime) -> str:
    return f"{t.month}/{t.day}/{t.year} {t.hour % 12 or 12}:{t.minute:02d}:{t.second:02d} {'AM' if t.hour < 12 else 'PM'}"


def _q(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _event_xml(e: Ev, rendered: bool, q: str = "'") -> list[str]:
    stamp = e.utc.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    qual = 49152 if e.level <= 2 else 32768 if e.level == 3 else 0
    out = [
        f"<Event xmlns={q}{EVENT_NS}{q}>",
        f"<System><Provider Name={q}{e.provider}{q}/>",
        f"<EventID Qualifiers={q}{qual}{q}>{e.event_id}</EventID>",
        f"<Level>{e.level}</Level><Task>1</Task><Keywords>0x80000000000000</Keywords>",
        f"<TimeCreated SystemTime={q}{stamp}{q}/>",
        f"<EventRecordID>{e.record_id}</EventRecordID>",
        f"<Channel>{e.channel}</Channel><Computer>{escape(e.computer)}</Computer><Security/></System>",
        "<EventData>",
        *[f"<Data>{escape(d)}</Data>" for d in e.data],
        "</EventData>",
    ]
    if rendered:
        out += [f"<RenderingInfo Culture={q}en-US{q}>", f"<Message>{escape(e.message)}</Message>",
                f"<Level>{LEVEL_WORDS[e.level]}</Level><Task>None</Task><Opcode/><Channel/><Provider/>",
                "<Keywords><Keyword>Classic</Keyword></Keywords></RenderingInfo>"]
    out.append("</Event>")
    return out


def shown_message(e: Ev) -> str:
    """The description Event Viewer shows: the message, or its stand-in when the DLL was missing."""
    if e.rendered:
        return e.message
    return (f"The description for Event ID {e.event_id} from source {e.provider} cannot be found. Either the component "
            "that raises this event is not installed on your local computer or the installation is corrupted. You can "
            "install or repair the component on the local computer.\n\nIf the event originated on another computer, the "
            "display information had to be saved with the event.\n\nThe following information was included with the "
            "event: \n\n" + "\n".join(e.data))


def events_wevtutil(evs: list[Ev], g: Gen) -> bytes:
    return _encode(_crlf("".join(_event_xml(e, False)) for e in evs), "utf-8")


def events_rendered(evs: list[Ev], g: Gen) -> bytes:
    return _encode(_crlf(line for e in evs for line in _event_xml(e, e.rendered, '"')), "utf-8-bom")


def events_viewer(evs: list[Ev], g: Gen, tab: bool = False) -> bytes:
    sep = "\t" if tab else ","
    rows = [sep.join(("Level", "Date and Time", "Source", "Event ID", "Task Category"))]
    for e in reversed(evs):
        rows.append(sep.join((LEVEL_WORDS[e.level], _us_time(e.utc), e.provider, str(e.event_id), "None"))
                    + sep + _q(shown_message(e).replace("\n", "\r\n")))
    return _encode(_crlf(rows), "utf-16" if tab else "utf-8-bom")


PS_COLUMNS = ("Message", "Id", "Version", "Qualifiers", "Level", "Task", "Opcode", "Keywords", "RecordId",
              "ProviderName", "ProviderId", "LogName", "ProcessId", "ThreadId", "MachineName", "UserId", "TimeCreated",
              "LevelDisplayName", "TaskDisplayName", "Properties")


def events_exportcsv(evs: list[Ev], g: Gen, culture: bool = False) -> bytes:
    sep = ";" if culture else ","
    lines = [] if culture else ["#TYPE System.Diagnostics.Eventing.Reader.EventLogRecord"]
    lines.append(sep.join(_q(c) for c in PS_COLUMNS))
    for e in evs:
        when = e.utc.strftime("%d.%m.%Y %H:%M:%S") if culture else _us_time(e.utc)
        values = {
            "Message": e.message.replace("\n", "\r\n") if e.rendered else "", "Id": str(e.event_id), "Version": "",
            "Qualifiers": "49152", "Level": str(e.level), "Task": "1", "Opcode": "", "Keywords": "36028797018963968",
            "RecordId": str(e.record_id), "ProviderName": e.provider, "ProviderId": "", "LogName": e.channel,
            "ProcessId": "2716", "ThreadId": "4032", "MachineName": e.computer, "UserId": "", "TimeCreated": when,
            "LevelDisplayName": LEVEL_WORDS[e.level], "TaskDisplayName": "None",
            "Properties": "System.Collections.Generic.List`1[System.Diagnostics.Eventing.Reader.EventProperty]",
        }
        lines.append(sep.join(_q(values[c]) for c in PS_COLUMNS))
    return _encode(_crlf(lines), "utf-8" if culture else "ascii")


def events_copydetails(evs: list[Ev], g: Gen) -> bytes:
    lines: list[str] = []
    for e in evs:
        lines += [f"Log Name:      {e.channel}", f"Source:        {e.provider}", f"Date:          {_us_time(e.utc)}",
                  f"Event ID:      {e.event_id}", "Task Category: None", f"Level:         {LEVEL_WORDS[e.level]}",
                  "Keywords:      Classic", "User:          N/A", f"Computer:      {e.computer}", "Description:",
                  *shown_message(e).split("\n")]
        if g.rng.random() < 0.5:
            lines += ["Event Xml:", *_event_xml(e, False, '"')]
        lines.append("")
    return _encode(_crlf(lines), "utf-8")


def events_json(evs: list[Ev], g: Gen, ps7: bool = False) -> bytes:
    objs = []
    for e in evs:
        when = (e.utc + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+01:00" if ps7 else \
            f"/Date({int(e.utc.timestamp() * 1000)})/"
        objs.append({
            "Id": e.event_id, "Version": None, "Qualifiers": 49152, "Level": e.level, "Task": 1, "Opcode": None,
            "Keywords": 36028797018963968, "RecordId": e.record_id, "ProviderName": e.provider, "LogName": e.channel,
            "ProcessId": 2716, "ThreadId": 4032, "MachineName": e.computer, "TimeCreated": when,
            "LevelDisplayName": LEVEL_WORDS[e.level], "Properties": [{"Value": d} for d in e.data],
            "Message": e.message.replace("\n", "\r\n") if e.rendered else None,
        })
    text = json.dumps(objs, indent=4).replace("\n", "\r\n")
    if ps7:
        return _encode(text, "utf-8")
    return _encode(text.replace('"/Date(', '"\\/Date(').replace(')/"', ')\\/"') + "\r\n", "utf-16")


EVENT_FORMS: dict[str, tuple[str, Callable[[list[Ev], Gen], bytes]]] = {
    "wevtutil": ("xml", events_wevtutil),
    "rendered": ("xml", events_rendered),
    "viewer-csv": ("csv", events_viewer),
    "viewer-txt": ("txt", lambda evs, g: events_viewer(evs, g, tab=True)),
    "exportcsv": ("csv", events_exportcsv),
    "exportcsv-culture": ("csv", lambda evs, g: events_exportcsv(evs, g, culture=True)),
    "copydetails": ("txt", events_copydetails),
    "json51": ("json", events_json),
    "json7": ("json", lambda evs, g: events_json(evs, g, ps7=True)),
}


def restart_event(g: Gen, t: datetime, rid: int, computer: str) -> Ev:
    """System event 1074: a restart by Windows Update, with its (planned) shutdown reason code."""
    proc = g.rng.choice(("C:\\Windows\\system32\\svchost.exe", "C:\\Windows\\System32\\MoUsoCoreWorker.exe",
                         "C:\\Windows\\servicing\\TrustedInstaller.exe"))
    host = computer.split(".")[0].upper()
    msg = (f"The process {proc} ({host}) has initiated the restart of computer {host} on behalf of user NT AUTHORITY\\SYSTEM "
           "for the following reason: Operating System: Service pack (Planned)\n Reason Code: 0x80020010\n"
           " Shutdown Type: restart\n Comment: ")
    data = (f"{proc} ({host})", host, "Operating System: Service pack (Planned)", "0x80020010", "restart", "",
            "NT AUTHORITY\\SYSTEM")
    return Ev(1074, "User32", 4, t, rid, "System", msg, data, computer)


# --- one host --------------------------------------------------------------------------------


@dataclass
class FilePlan:
    """Background records of one file, with injections inserted among them."""

    slot: str
    path: str
    items: list[Rec] = field(default_factory=list)
    injected: list[tuple[str, str, Rec]] = field(default_factory=list)  # (kind, template, rec)
    written_to: dict[int, str] = field(default_factory=dict)  # id(rec) -> file, when a slot has several


class HostBuilder:
    """Writes one host's folder and reports its injections."""

    def __init__(self, g: Gen, profile: str, expect: Expect, index: int):
        self.g = g
        self.rng = g.rng
        self.profile = profile
        self.expect = expect
        self.index = index
        self.plans: dict[str, FilePlan] = {}
        self.system_events = profile != "linux" and self.rng.random() < 0.35
        self.computer = self.rng.choice((g.host, g.host, f"{g.host}.contoso.local", g.host.lower()))

    # background ---------------------------------------------------------------------------
    def background(self, slot: str) -> list[Rec]:
        g, rng = self.g, self.rng
        if slot in ("wu-etw", "wu-classic", "worker"):
            blocks, singles, count = {
                "wu-etw": (ETW_BLOCKS, ETW_SINGLES, rng.randint(400, 1600)),
                "wu-classic": (CLASSIC_BLOCKS, CLASSIC_SINGLES, rng.randint(300, 1200)),
                "worker": (WORKER_BLOCKS, (), rng.randint(50, 220)),
            }[slot]
            return [Rec(m, component=c) for c, _, m in (x.partition("|") for x in background_lines(g, blocks, singles, count))]
        if slot == "text":
            linux = self.profile == "linux"
            blocks, singles = (TEXT_LINUX_BLOCKS, TEXT_LINUX_SINGLES) if linux else (TEXT_WIN_BLOCKS, TEXT_WIN_SINGLES)
            return [Rec(m) for m in background_lines(g, blocks, singles, rng.randint(20, 120))]
        if slot == "oms":
            out: list[Rec] = []
            for line in background_lines(g, OMS_BLOCKS, (), rng.randint(80, 320)):
                if line.startswith(("\t", "|\t")) and out:
                    out[-1].text += "\n" + line
                else:
                    out.append(Rec(line))
            return out
        if slot == "event":
            return [Rec(g.sub(m), event=(i, p, lv)) for i, p, lv, m in rng.choices(OPSMGR_BACKGROUND, k=rng.randint(8, 30))]
        raise ValueError(slot)

    def file_for(self, slot: str) -> FilePlan:
        if slot not in self.plans:
            rng = self.rng
            path = {
                "wu-etw": rng.choice(("WindowsUpdate.log", "Desktop/WindowsUpdate.log", "Windows/WindowsUpdate.log")),
                "wu-classic": rng.choice(("WindowsUpdate.log", "Windows/WindowsUpdate.log")),
                "text": rng.choice(("job-output.txt", "portal-error.txt", "job-output.txt", "notes.txt")),
                "oms": rng.choice(("omsupdatemgmt.log", "var/opt/microsoft/omsagent/run/automationworker/omsupdatemgmt.log")),
                "worker": rng.choice(("worker.log", "var/opt/microsoft/omsagent/run/automationworker/worker.log")),
                "event": "OperationsManager",
            }[slot]
            plan = FilePlan(slot, path, self.background(slot))
            self.plans[slot] = plan
        return self.plans[slot]

    # injections ---------------------------------------------------------------------------
    def inject(self, kind: str, template: str, slot: str, recs: list[Rec]) -> None:
        plan = self.file_for(slot)
        recs = [apply_variants(self.g, r, slot) if kind == "error" else r for r in recs]
        pos = self.rng.randint(0, len(plan.items))
        plan.items[pos:pos] = recs
        plan.injected += [(kind, template, r) for r in recs]

    def inject_error(self, template: str) -> None:
        slots, maker = TEMPLATES[template]
        slots = tuple(s for s in slots if s in PROFILE_SLOTS[self.profile])
        slot = self.rng.choice(slots)
        self.inject("error", template, slot, maker(self.g, slot))

    def inject_distractor(self) -> None:
        slot = self.rng.choice(PROFILE_SLOTS[self.profile])
        pool = "text-linux" if slot == "text" and self.profile == "linux" else slot
        if pool in EXPLAIN_ONLY and self.rng.random() < 0.3:
            spec, sigs = self.rng.choice(EXPLAIN_ONLY[pool])
            kind = "explain-only"
        else:
            spec, sigs, kind = self.rng.choice(DISTRACTORS[pool]), (), "distractor"
        comp, _, msg = spec.rpartition("|")
        rec = Rec(self.g.sub(msg), sigs=sigs, component=comp)
        if slot == "event":
            eid, prov = comp.split(":")
            rec = Rec(rec.text, event=(int(eid), prov, 4))
        self.inject(kind, "look-alike", slot, [rec])

    # output -------------------------------------------------------------------------------
    def write(self, root: Path, labels: Labels) -> None:
        host_dir = root / self.g.host
        for slot, plan in self.plans.items():
            clock = Clock(datetime(2024, self.rng.randint(1, 11), self.rng.randint(1, 28), self.rng.randint(0, 23),
                                   self.rng.randint(0, 59), tzinfo=UTC))
            if slot == "event":
                self._write_events(host_dir, plan, clock, labels)
                continue
            writer = {"wu-etw": write_wu_etw, "wu-classic": write_wu_classic, "text": write_text, "oms": write_oms,
                      "worker": write_worker}[slot]
            data = writer(plan.items, self.g, clock)
            path = host_dir / plan.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            labels.files.append(f"{self.g.host}/{plan.path}")
            self._label(plan, f"{self.g.host}/{plan.path}", labels)

    def _write_events(self, host_dir: Path, plan: FilePlan, clock: Clock, labels: Labels) -> None:
        """Operations Manager export (and sometimes a System export); records split by event log."""
        g, rng = self.g, self.rng
        forms = list(EVENT_FORMS)
        form = forms[(self.index + rng.randint(0, 1)) % len(forms)]
        opsmgr, system = [], []
        rid = rng.randint(1000, 90000)
        for rec in plan.items:
            t = clock.tick(rng, 600)
            rid += 1
            if rec.event is None:
                ev = make_4502(g, rec, t, rid, self.computer)
                ev.rendered = form in ("exportcsv", "exportcsv-culture") or rng.random() >= 0.12
            else:
                eid, prov, lvl = rec.event
                channel = "Operations Manager" if prov in OPSMGR_PROVIDERS else "System"
                ev = Ev(eid, prov, lvl, t, rid, channel, rec.text, (rec.text,), self.computer)
            (opsmgr if ev.channel == "Operations Manager" else system).append(ev)
            plan.written_to[id(rec)] = ev.channel
        if system or self.system_events:
            for _ in range(rng.randint(10, 40)):
                eid, prov, lvl, m = rng.choice(SYSTEM_BACKGROUND)
                system.append(Ev(eid, prov, lvl, clock.tick(rng, 900), rid + rng.randint(1, 9999), "System", g.sub(m),
                                 (g.sub(m),), self.computer))
            if self.system_events:
                for _ in range(rng.randint(1, 3)):
                    system.append(restart_event(g, clock.tick(rng, 900), rid + rng.randint(1, 9999), self.computer))
            system.sort(key=lambda e: e.utc)
        files = {}
        for log, evs in (("Operations Manager", opsmgr), ("System", system)):
            if not evs:
                continue
            ext, writer = EVENT_FORMS[form]
            rel = f"{log.replace(' ', '')}-{form}.{ext}"
            files[log] = f"{g.host}/{rel}"
            path = host_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(writer(evs, g))
            labels.files.append(f"{g.host}/{rel}")
            form = forms[(forms.index(form) + 3) % len(forms)]
        plan.written_to = {k: files[v] for k, v in plan.written_to.items()}
        self._label(plan, "", labels)

    def _label(self, plan: FilePlan, source: str, labels: Labels) -> None:
        family = SLOT_FAMILY[plan.slot]
        host = normalise_host(self.g.host)
        for kind, template, rec in plan.injected:
            source = plan.written_to.get(id(rec), source)
            exp = self.expect.record(rec, family)
            labels.expected |= {(host, s, c) for s, c in exp}
            labels.injections.append(Injection(self.g.host, source, kind, template, rec.variants, rec.text[:300], exp))


# --- the fleet ---------------------------------------------------------------------------------


class Deck:
    """Deals template ids so that every one comes up before any repeats (deterministic)."""

    def __init__(self, rng: random.Random, ids: Sequence[str]):
        self.rng, self.ids, self.cards = rng, sorted(ids), []

    def draw(self) -> str:
        if not self.cards:
            self.cards = list(self.ids)
            self.rng.shuffle(self.cards)
        return self.cards.pop()


def _deck_ids(profile: str) -> list[str]:
    out = []
    for tid, (slots, _) in TEMPLATES.items():
        if profile == "linux" and tid in WINDOWS_ONLY:
            continue
        if profile != "linux" and tid in LINUX_ONLY:
            continue
        if any(s in PROFILE_SLOTS[profile] for s in slots):
            out.append(tid)
    return out


def generate(dest: Path, *, seed: int = 7, hosts: int = 40) -> Labels:
    """Write a fleet of `hosts` host folders under `dest`; return what a correct scan must report."""
    dest.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"corpus-{seed}")
    expect = Expect(load_catalog())
    fleet = {"sub": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "aa": rng.choice(AUTOMATION_ACCOUNTS),
             "aa_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
    decks = {p: Deck(random.Random(f"deck-{seed}-{p}"), _deck_ids(p)) for p in PROFILE_SLOTS}
    labels = Labels()
    for i in range(hosts):
        name = f"SRV-{i + 1:04d}"
        hrng = random.Random(f"host-{seed}-{i}")
        profile = PROFILE_CYCLE[i % len(PROFILE_CYCLE)]
        g = Gen(hrng, name, fleet)
        g.fixed["distro"] = DISTROS[g.fixed["pm"]]
        builder = HostBuilder(g, profile, expect, i)
        for slot in PROFILE_SLOTS[profile]:
            builder.file_for(slot)
        for _ in range(hrng.randint(6, 12)):
            builder.inject_error(decks[profile].draw())
        for _ in range(hrng.randint(5, 12)):
            builder.inject_distractor()
        builder.write(dest, labels)
        labels.hosts.append(name)
    return labels


# --- scoring ---------------------------------------------------------------------------------


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass
class Score:
    per_scenario: dict[str, Counts]
    overall: Counts
    false_positives: list[Triple]
    false_negatives: list[Triple]


def found_triples(incidents: Path) -> set[Triple]:
    """(host, scenario, code) of every incident in a scan's incidents.parquet."""
    import polars as pl

    df = pl.read_parquet(incidents, columns=["host", "scenario", "code"])
    return {(normalise_host(h), s, c) for h, s, c in df.iter_rows()}


def score(expected: set[Triple], found: set[Triple]) -> Score:
    """Precision and recall on (host, scenario, code), per scenario and overall."""
    def key(t: Triple) -> tuple[str, str, str]:
        return t[0], t[1], t[2] or ""

    per: dict[str, Counts] = {}
    for t in expected | found:
        c = per.setdefault(t[1], Counts())
        if t in expected and t in found:
            c.tp += 1
        elif t in found:
            c.fp += 1
        else:
            c.fn += 1
    overall = Counts(sum(c.tp for c in per.values()), sum(c.fp for c in per.values()), sum(c.fn for c in per.values()))
    return Score(dict(sorted(per.items())), overall, sorted(found - expected, key=key), sorted(expected - found, key=key))
