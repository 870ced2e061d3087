// umtriage report: draws the page from the JSON block. Text from the logs only ever goes in
// through textContent (never innerHTML), so it is shown, not run.
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const PAGE_SIZE = 50;
  const STATE_COLOR = { failing: "#c62828", failed: "#c62828", pending_reboot: "#ef8f00", recovered: "#1e88e5",
    downloaded: "#1e88e5", found: "#90a4ae", healthy: "#2e7d32", installed: "#2e7d32", excluded: "#8a949e",
    not_selected: "#b0b8c0" };
  const SEV_COLOR = { critical: "#8e0000", high: "#c62828", medium: "#ef8f00", low: "#1e88e5", info: "#8a949e" };
  const PLOT_CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["toImage"] };
  let page = 0;
  let shown = DATA.hosts;
  let selected = null;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function when(iso) { return iso ? iso.replace("T", " ").replace(/(\.\d+)?Z$/, "").slice(0, 16) : "–"; }
  function searchText(h) {
    const parts = [h.host, h.state, h.now || "", h.fix || "", h.codes.join(" ")];
    for (const u of DATA.updates[h.host] || []) parts.push(u.kb || "", u.title || "", u.update || "");
    return parts.join(" ").toLowerCase();
  }
  const HAYSTACK = new Map(DATA.hosts.map((h) => [h.host, searchText(h)]));

  // -- fleet overview ----------------------------------------------------------------------
  function drawOverview() {
    const byState = DATA.states.map((s) => DATA.hosts.filter((h) => h.state === s).length);
    Plotly.newPlot("overview-chart", [{
      type: "bar", x: DATA.states.map((s) => s.replace("_", " ")), cliponaxis: false, y: byState,
      marker: { color: DATA.states.map((s) => STATE_COLOR[s]) }, text: byState.map(String), textposition: "auto",
      hovertemplate: "%{x}: %{y} hosts<extra></extra>",
    }], { title: { text: "Hosts by current state" }, margin: { t: 40, b: 70, l: 40, r: 10 }, height: 280 },
    PLOT_CONFIG);
    const ustates = ["installed", "failed", "pending_reboot", "downloaded", "found", "excluded", "not_selected"];
    const counts = ustates.map((s) => DATA.hosts.reduce((n, h) => n + (h.updates[s] || 0), 0));
    Plotly.newPlot("updates-chart", [{
      type: "bar", x: ustates.map((s) => s.replace("_", " ")), y: counts,
      marker: { color: ustates.map((s) => STATE_COLOR[s]) }, text: counts.map(String), textposition: "auto",
      hovertemplate: "%{x}: %{y} host × update<extra></extra>",
    }], { title: { text: "Updates by state (host × update)" }, margin: { t: 40, b: 70, l: 40, r: 10 }, height: 280 },
    PLOT_CONFIG);
  }

  // -- host list: filtered, searched, one page of rows at a time ---------------------------
  function applyFilter() {
    const q = document.getElementById("search").value.trim().toLowerCase();
    const st = document.getElementById("state-filter").value;
    shown = DATA.hosts.filter((h) => (!st || h.state === st) && (!q || HAYSTACK.get(h.host).includes(q)));
    page = 0;
    drawHosts();
  }
  function severityText(sev) {
    return ["critical", "high", "medium", "low", "info"].filter((s) => sev[s]).map((s) => sev[s] + " " + s).join(", ");
  }
  function drawHosts() {
    const body = document.querySelector("#host-table tbody");
    body.replaceChildren();
    const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
    page = Math.min(page, pages - 1);
    for (const h of shown.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE)) {
      const tr = el("tr");
      tr.dataset.host = h.host;
      if (h.host === selected) tr.classList.add("selected");
      tr.append(el("td", "host", h.host));
      const st = el("td"); st.append(el("span", "state " + h.state, h.state.replace("_", " "))); tr.append(st);
      tr.append(el("td", null, severityText(h.severities) || "none"));
      tr.append(el("td", null, when(h.last)));
      tr.append(el("td", null, h.now || "–"));
      tr.append(el("td", null, h.fix || "–"));
      tr.append(el("td", null, Object.entries(h.updates).map(([k, v]) => v + " " + k.replace("_", " ")).join(", ") || "–"));
      tr.addEventListener("click", () => openHost(h.host));
      body.append(tr);
    }
    document.getElementById("page").textContent = "page " + (page + 1) + " of " + pages;
    document.getElementById("match-count").textContent = shown.length + " of " + DATA.hosts.length + " hosts";
    document.getElementById("prev").disabled = page === 0;
    document.getElementById("next").disabled = page >= pages - 1;
  }

  // -- one host: timeline, incident cards, updates -----------------------------------------
  function label(text, n) { return text.length > n ? text.slice(0, n - 1) + "…" : text; }
  function drawTimeline(host, incidents, updates) {
    const traces = [];
    for (const sev of Object.keys(SEV_COLOR)) {
      const x = [], y = [], text = [];
      for (const i of incidents.filter((i) => i.sev === sev && i.first)) {
        const lab = label(i.sig + (i.code ? " " + i.code : ""), 40);
        x.push(i.first, i.last || i.first, null); y.push(lab, lab, null);
        const t = i.title + " (x" + i.count + ")"; text.push(t, t, null);
      }
      if (x.length) traces.push({ type: "scatter", mode: "lines+markers", name: "incident: " + sev, x, y, text,
        line: { width: 8, color: SEV_COLOR[sev] }, marker: { size: 9, color: SEV_COLOR[sev] },
        hovertemplate: "%{text}<br>%{x}<extra></extra>", connectgaps: false });
    }
    for (const st of Object.keys(STATE_COLOR)) {
      const x = [], y = [], text = [];
      for (const u of updates.filter((u) => u.state === st && u.last)) {
        const lab = label("update " + (u.kb || u.title || u.update), 40);
        x.push(u.first || u.last, u.last, null); y.push(lab, lab, null);
        const t = (u.title || u.update) + ": " + st + (u.hr ? " " + u.hr : ""); text.push(t, t, null);
      }
      if (x.length) traces.push({ type: "scatter", mode: "lines+markers", name: "update: " + st.replace("_", " "),
        x, y, text, line: { width: 3, dash: "dot", color: STATE_COLOR[st] },
        marker: { size: 10, symbol: "diamond", color: STATE_COLOR[st] },
        hovertemplate: "%{text}<br>%{x}<extra></extra>" });
    }
    const rows = new Set(traces.flatMap((t) => t.y.filter((v) => v !== null))).size;
    Plotly.react("timeline", traces, {
      title: { text: "Timeline of " + host + " (UTC)" }, height: Math.max(260, 90 + rows * 26),
      margin: { t: 40, l: 260, r: 20, b: 40 }, xaxis: { type: "date" }, yaxis: { automargin: true, type: "category" },
      legend: { orientation: "h", y: -0.2 }, showlegend: true,
    }, PLOT_CONFIG);
  }

  function card(i) {
    const t = DATA.texts[i.text] || {};
    const c = el("div", "card " + i.sev);
    c.dataset.incident = i.id;
    const head = el("div", "card-head");
    head.append(el("span", "sev " + i.sev, i.sev));
    head.append(el("strong", null, i.title));
    if (i.current) head.append(el("span", "now", "current"));
    head.append(el("span", "meta", "x" + i.count + " · " + when(i.first) + " → " + when(i.last) +
      (i.resolved ? " · resolved " + when(i.resolved) : "")));
    const body = el("div", "card-body");
    body.hidden = true;
    body.append(el("h4", null, "Cause"), el("p", "cause", t.cause || "–"));
    body.append(el("h4", null, "Fix"), el("div", "fix", t.fix || "–"));
    body.append(el("h4", null, "Evidence"));
    for (const line of i.evidence) body.append(el("pre", "evidence", line));
    if (i.sources.length) body.append(el("p", "note", "from " + i.sources.join(", ")));
    if (t.doc && /^https:\/\//.test(t.doc)) {
      const a = el("a", "doc", "Troubleshooting article");
      a.href = t.doc; a.target = "_blank"; a.rel = "noopener noreferrer";
      const p = el("p"); p.append(a); body.append(p);
    }
    head.addEventListener("click", () => { body.hidden = !body.hidden; c.classList.toggle("open", !body.hidden); });
    c.append(head, body);
    return c;
  }

  function openHost(host) {
    selected = host;
    const h = DATA.hosts.find((x) => x.host === host);
    const incidents = DATA.incidents[host] || [];
    const updates = DATA.updates[host] || [];
    const detail = document.getElementById("detail");
    detail.hidden = false;
    document.getElementById("detail-title").textContent = host + " — " + h.state.replace("_", " ");
    document.getElementById("incident-note").textContent = h.incidents > incidents.length
      ? "showing the " + incidents.length + " worst of " + h.incidents + " incidents (all are in incidents.parquet)" : "";
    const cards = document.getElementById("cards");
    cards.replaceChildren(...incidents.map(card));
    if (!incidents.length) cards.append(el("p", "note", "no incidents"));
    const ub = document.querySelector("#update-table tbody");
    ub.replaceChildren();
    for (const u of updates) {
      const tr = el("tr");
      tr.append(el("td", null, u.kb || u.update), el("td", null, u.title || "–"), el("td", null, u.cls || "–"));
      const st = el("td"); st.append(el("span", "state " + u.state, u.state.replace("_", " "))); tr.append(st);
      tr.append(el("td", null, u.attempts), el("td", null, u.hr || "–"), el("td", null, when(u.last)));
      ub.append(tr);
    }
    drawTimeline(host, incidents, updates);
    drawHosts();
    detail.scrollIntoView({ block: "start" });
  }

  function init() {
    const sel = document.getElementById("state-filter");
    for (const s of DATA.states) {
      const opt = el("option", null, s.replace("_", " "));
      opt.value = s;
      sel.append(opt);
    }
    let timer = null;
    document.getElementById("search").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(applyFilter, 120); });
    sel.addEventListener("change", applyFilter);
    document.getElementById("prev").addEventListener("click", () => { page -= 1; drawHosts(); });
    document.getElementById("next").addEventListener("click", () => { page += 1; drawHosts(); });
    drawOverview();
    drawHosts();
    const worst = DATA.hosts.find((h) => h.state === "failing") || DATA.hosts[0];
    if (worst) openHost(worst.host);
    window.scrollTo(0, 0);
    document.body.dataset.ready = "1";
  }
  init();
})();
