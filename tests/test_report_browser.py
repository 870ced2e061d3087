"""report.html in a real browser: Debian's headless Chromium, driven by Playwright.

The browser comes from `tests/setup_browser.sh` (run by `.ci/run` and the README's test
command); nothing is downloaded at run time. Every test fails when the page is blank, throws or
logs an error, or asks for anything that is not the file itself. Screenshots are kept in
tests/artifacts/ (ignored by git).
"""

from __future__ import annotations

import io
import json
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from conftest import REPO, SAMPLES, run_cli
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from umtriage.pipeline.html_report import (
    MAX_EVIDENCE_CHARS,
    MAX_EVIDENCE_LINES,
    MAX_PAGE_INCIDENTS,
    write_report,
    write_script_json,
)
from umtriage.pipeline.incidents import INCIDENT_SCHEMA
from umtriage.pipeline.updates import UPDATE_SCHEMA

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "tests" / "artifacts"


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[BrowserContext]:
    """Chromium with a fresh profile folder (Playwright passes it as --user-data-dir)."""
    assert CHROMIUM.exists(), "no /usr/bin/chromium: run tests/setup_browser.sh (the test set-up) first"
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), args=FLAGS, headless=True,
            viewport={"width": 1280, "height": 900})
        yield context
        context.close()


class Watched:
    """A page whose console errors, uncaught exceptions, dialogs and requests are recorded."""

    def __init__(self, browser: BrowserContext, report: Path, timeout_ms: int = 30_000):
        self.page: Page = browser.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.route("**/*", self._route)
        self.url = report.resolve().as_uri()
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready='1']", timeout=timeout_ms)  # fails on a blank page

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _route(self, route) -> None:
        url = route.request.url
        self.requests.append(url)
        if url.startswith("file://"):
            route.continue_()
        else:  # the page must not need the network: blocked here, and the test fails below
            route.abort()

    def check_clean(self) -> None:
        assert self.errors == [], f"errors on the console: {self.errors}"
        assert self.dialogs == [], f"the page opened dialogs: {self.dialogs}"
        outside = [u for u in self.requests if not u.startswith("file://")]
        assert outside == [], f"the page asked the network for {outside}"
        assert self.requests == [self.url], self.requests

    def host_rows(self) -> list[str]:
        return self.page.locator("#host-table tbody tr td.host").all_text_contents()


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "out"
    r = run_cli("scan", str(SAMPLES), "-o", str(out), "-q")
    assert r.returncode == 0, r.stderr
    return out / "report.html"


def test_sample_report_shows_hosts_timeline_cards_and_search(browser: BrowserContext, sample_report: Path) -> None:
    w = Watched(browser, sample_report)
    page = w.page
    assert w.host_rows() == ["arc-win08", "aum-lnx07", "hyb-worker03", "lnx-db06", "lnx-web04", "srv-wsus01",
                             "win-sql05", "win10-app02", "win11-app09"]
    # the fleet overview and the timeline are drawn: plotly's SVG with bars / lines in it
    assert page.locator("#overview-chart svg.main-svg").count() >= 1
    assert page.locator("#overview-chart .point path").count() >= 1
    # open a host: its timeline (incidents and update attempts) and incident cards; a card opens on
    # click to show cause, fix, evidence, doc link
    page.locator("#host-table tbody tr", has_text="srv-wsus01").click()
    assert page.locator("#detail-title").text_content().startswith("srv-wsus01")
    out = sample_report.parent
    traces = (pl.read_parquet(out / "incidents.parquet").filter(pl.col("host") == "srv-wsus01")["severity"].n_unique()
              + pl.read_parquet(out / "updates.parquet").filter(pl.col("host") == "srv-wsus01")["state"].n_unique())
    assert traces >= 4  # one line per incident severity and per update state
    expect(page.locator("#timeline .scatterlayer .trace")).to_have_count(traces)
    assert page.locator("#timeline .scatterlayer path.js-line").count() >= 1
    cards = page.locator("#cards .card")
    incidents = pl.read_parquet(sample_report.parent / "incidents.parquet")
    assert cards.count() == incidents.filter(pl.col("host") == "srv-wsus01").height >= 3
    access = page.locator("#cards .card", has_text="0x80070005").first
    assert not access.locator(".card-body").is_visible()
    access.locator(".card-head").click()
    body = access.locator(".card-body")
    assert body.is_visible()
    assert len(body.locator(".cause").text_content()) > 40 and len(body.locator(".fix").text_content()) > 40
    assert "80070005" in " ".join(body.locator("pre.evidence").all_text_contents())
    assert body.locator("a.doc").get_attribute("href").startswith("https://learn.microsoft.com/")
    # updates of that host, with the failed KB
    update_rows = page.locator("#update-table tbody tr").all_text_contents()
    assert any("KB5034275" in r and "failed" in r and "0x80070005" in r for r in update_rows)
    # search narrows the host list: by name, and by a KB that failed on three hosts
    page.fill("#search", "lnx-")
    expect(page.locator("#host-table tbody tr")).to_have_count(2)
    assert w.host_rows() == ["lnx-db06", "lnx-web04"]
    page.fill("#search", "kb5034275")
    expect(page.locator("#match-count")).to_have_text(re.compile(r"^3 of "))
    assert w.host_rows() == ["hyb-worker03", "srv-wsus01", "win-sql05"]
    page.fill("#search", "")
    expect(page.locator("#host-table tbody tr")).to_have_count(9)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-samples.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000  # a drawn page, not a blank one
    print(f"screenshot: {shot}")
    w.check_clean()


EVIL_HOST = "evil<img src=x onerror=alert(1)>\"'"
EVIL_TEXT = "<script>alert(1)</script> \"double\" 'single' </script><!--"


def test_log_text_with_markup_and_quotes_cannot_run_or_break_the_page(browser: BrowserContext, tmp_path: Path) -> None:
    folder = tmp_path / "in" / EVIL_HOST
    folder.mkdir(parents=True)
    uid = "1A2B3C4D-5E6F-4A1B-8C2D-3E4F5A6B7C8D"
    (folder / "WindowsUpdate.log").write_text(
        f"2024/05/14 09:40:00.0000000 7340  6120  Misc            *FAILED* [80072EE2] {EVIL_TEXT}\n"
        f"2024/05/14 09:42:00.1000200 7340  6120  ComApi          Deserialized installable update {EVIL_TEXT} "
        f"(KB5037768), UpdateID = {{{uid}.1}}, CallbackInfo cookie length = 0\n"
        f"2024/05/14 09:55:11.3500000 7340  9992  Agent           LogHistory called. idUpdate={{{uid}}}.1, "
        "resultMapped=80070643, resultUnMapped=0\n", encoding="utf-8")
    out = tmp_path / "out"
    r = run_cli("scan", str(tmp_path / "in"), "-o", str(out), "-q")
    assert r.returncode == 0, r.stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    # in the HTML text: the markup never appears as markup, and the JSON block holds no `<`
    assert "<script>alert(1)" not in html and "<img src=x" not in html and "<!--" not in html
    data_block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in data_block and ">" not in data_block
    data = json.loads(data_block)
    assert data["hosts"][0]["host"] == EVIL_HOST
    # in the browser: nothing ran, nothing was injected, the text is shown as text
    w = Watched(browser, out / "report.html")
    page = w.page
    assert page.evaluate("document.querySelectorAll('script').length") == 3  # data, plotly.js, the page's own
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert w.host_rows() == [EVIL_HOST]
    page.locator("#cards .card-head").first.click()
    evidence = " ".join(page.locator("#cards pre.evidence").all_text_contents())
    assert EVIL_TEXT in evidence
    assert any(EVIL_TEXT in t for t in page.locator("#update-table tbody td").all_text_contents())
    page.fill("#search", "onerror")
    expect(page.locator("#match-count")).to_have_text(re.compile(r"^1 of "))
    w.check_clean()


def _fleet(n_hosts: int, per_host: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A synthetic fleet: per host more incidents than the page keeps, with long evidence."""
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    rows = []
    for h in range(n_hosts):
        for k in range(per_host):
            rows.append({
                "incident_id": f"{h:05d}-{k:02d}", "host": f"host{h:05d}", "signature_id": f"sig-{k % 7}",
                "scenario": "hresult", "code": "0x8024402C", "code_name": "WU_E_PT_WINHTTP_NAME_NOT_RESOLVED",
                "title": f"problem {k}", "severity": ("high", "medium", "low")[k % 3],
                "first_seen": t0 + timedelta(hours=k), "last_seen": t0 + timedelta(hours=k, minutes=5), "count": 2,
                "sources": ["a.log"], "evidence": ["x" * 5000] * 5, "score": 100.0, "cause": "c", "resolution": "r",
                "doc_url": "https://learn.microsoft.com/x", "resolved_at": None, "current": k == per_host - 1 and h % 2 == 0,
            })
    inc = pl.DataFrame(rows, schema=INCIDENT_SCHEMA)
    return inc, pl.DataFrame(schema=UPDATE_SCHEMA)


def test_thousands_of_hosts_render_one_page_of_rows_and_stay_bounded(browser: BrowserContext, tmp_path: Path) -> None:
    inc, upd = _fleet(3000, 20)
    report = write_report(tmp_path, inc, upd, {"files": 3000, "lines": 10, "incidents": inc.height})
    html = report.read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', html, re.S).group(1))
    assert len(data["hosts"]) == 3000
    kept = [i for rows in data["incidents"].values() for i in rows]
    per_host = MAX_PAGE_INCIDENTS // 3000  # 6: the page shares its incident budget among the hosts
    assert {len(rows) for rows in data["incidents"].values()} == {per_host}
    assert max(len(i["evidence"]) for i in kept) == MAX_EVIDENCE_LINES
    assert max(len(e) for i in kept for e in i["evidence"]) <= MAX_EVIDENCE_CHARS
    # cause and fix once per signature and code (7 signatures in all), not once per card
    assert set(data["texts"]) == {i["text"] for i in kept} and len(data["texts"]) <= 7
    # 60,000 incidents with 25 KB of evidence each (1.5 GB) make a page of a few MB
    assert report.stat().st_size < 16 << 20
    w = Watched(browser, report)
    page = w.page
    assert page.locator("#host-table tbody tr").count() == 50
    assert page.locator("#page").text_content() == "page 1 of 60"
    page.click("#next")
    assert w.host_rows()[0] == "host00050"
    assert page.locator("#incident-note").text_content().startswith(f"showing the {per_host} worst of 20")
    page.select_option("#state-filter", "recovered")
    expect(page.locator("#match-count")).to_have_text("1500 of 3000 hosts")
    w.check_clean()


def test_the_checks_catch_a_page_that_needs_the_network_or_throws(browser: BrowserContext, sample_report: Path,
                                                                  tmp_path: Path) -> None:
    """The same checks on spoilt copies of the sample report: each one must fail."""
    html = sample_report.read_text(encoding="utf-8")
    spoilt = {
        "network": html.replace("</body>", '<img src="https://example.invalid/pixel.png"></body>'),
        "throws": html.replace("</body>", "<script>throw new Error('broken page')</script></body>"),
    }
    for name, text in spoilt.items():
        page = tmp_path / f"{name}.html"
        page.write_text(text.replace("default-src 'none'; ", ""), encoding="utf-8")  # let the request out
        w = Watched(browser, page)
        w.page.wait_for_timeout(300)
        with pytest.raises(AssertionError):
            w.check_clean()
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    with pytest.raises(PlaywrightTimeout):
        Watched(browser, blank, timeout_ms=2_000)


def test_the_page_data_streamed_in_pieces_is_the_escaped_json_of_the_whole() -> None:
    # written piece by piece (bounded memory for big fleets), it must be exactly the JSON of the
    # data with every <, > and & escaped, whichever piece boundaries fall inside strings
    rng = random.Random(3)
    data = {"hosts": [{"host": f"h{i}", "now": "".join(rng.choice("<>&a\"\\é\u2028/ ") for _ in range(rng.randint(0, 50))),
                       "n": i, "codes": ["0x80070005"] * (i % 3)} for i in range(3000)], "title": "</script><b>"}
    whole = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    want = whole.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()
    for piece in (1, 7, 1 << 16):
        f = io.BytesIO()
        write_script_json(data, f, piece)
        assert f.getvalue() == want
    assert b"<" not in want and json.loads(want) == data


def test_page_slots_escape_text_keep_markup_and_refuse_unknown_names() -> None:
    from markupsafe import Markup
    from umtriage.pipeline.html_report import fill_slots

    page = fill_slots("<title>{{ title }}</title><p>{{ n }}</p><script>{{ js }}</script>",
                      {"title": "<script>alert('x')</script> & \"q\"", "n": 3, "js": Markup("a < b && c")})
    assert page == ("<title>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;q&#34;</title><p>3</p>"
                    "<script>a < b && c</script>")
    with pytest.raises(KeyError):
        fill_slots("{{ missing }}", {})
