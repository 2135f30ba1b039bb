// The sidecar's status page: reads /slo every few seconds and renders it. No framework.
"use strict";

const REFRESH_MS = Number(new URLSearchParams(location.search).get("refresh")) || 5000;
const PHASES = ["handshake", "agent_started", "agent_thinking", "tool_pair", "agent_completed"];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

const pct = (v, digits = 3) => (v === null || v === undefined ? "no data" : `${(v * 100).toFixed(digits)} %`);
const num = (v, digits = 2) => (v === null || v === undefined ? "no data" : v.toFixed(digits));
const mib = (v) => (v === null || v === undefined ? "?" : `${(v / 1048576).toFixed(1)} MiB`);
const ms = (s) => `${(s * 1000).toFixed(0)} ms`;

function verdict(passed) {
  if (passed === null || passed === undefined) return el("span", { class: "muted" }, "no data");
  return passed ? el("span", { class: "ok" }, "pass") : el("span", { class: "bad" }, "fail");
}

function renderSlos(slos) {
  const body = document.querySelector("#slos tbody");
  body.replaceChildren(...slos.map((s) => {
    const firing = Object.entries(s.alerts).filter(([, on]) => on).map(([sev]) => sev);
    const budget = s.error_budget_remaining;
    return el("tr", { "data-slo": s.name },
      el("td", {}, s.name),
      el("td", {}, pct(s.objective, 1)),
      el("td", {}, `${pct(s.sli.window)} (${s.window})`),
      el("td", { class: budget === null ? "muted" : budget < 0 ? "bad" : budget < 0.25 ? "warn" : "ok" },
        pct(budget, 1)),
      ...["5m", "1h", "6h", "1d", "3d"].map((w) => el("td", {}, num(s.burn_rate[w]))),
      el("td", { class: firing.length ? "bad" : "ok" }, firing.length ? firing.join(", ") : "none"));
  }));
}

function renderCriteria(criteria) {
  const body = document.querySelector("#criteria tbody");
  body.replaceChildren(...criteria.map((c) =>
    el("tr", {}, el("td", {}, c.name), el("td", {}, c.figure), el("td", {}, verdict(c.passed)))));
}

function renderProbes(probes, scrape) {
  const list = document.getElementById("probes");
  const names = Object.keys(probes);
  list.replaceChildren(...(names.length ? names.map((name) => {
    const p = probes[name];
    return el("li", { "data-probe": name, class: p.up ? "ok" : "bad" },
      `${name}: ${p.up ? "up" : "down"} in ${ms(p.duration_s)} (${p.detail})`);
  }) : [el("li", { class: "muted" }, "not probed yet")]));
  const s = document.getElementById("scrape");
  s.textContent = scrape.ok === null ? "metrics: not scraped yet"
    : scrape.ok ? "metrics: scraped" : `metrics: scrape failed (${scrape.error})`;
  s.className = scrape.ok === false ? "bad" : "muted";
}

function renderMemory(m) {
  const box = document.getElementById("memory");
  const state = m.state;
  const share = m.limit_bytes ? Math.min(1, m.rss_bytes / m.limit_bytes) : null;
  const bar = el("div", { class: `bar ${state}` }, el("span", { style: `width:${share === null ? 0 : share * 100}%` }));
  const growth = m.growth_bytes_per_second;
  box.replaceChildren(
    el("p", { class: state === "ok" ? "ok" : state === "unknown" ? "muted" : state === "warning" ? "warn" : "bad",
      "data-state": state }, `state: ${state}`),
    el("p", {}, `RSS ${mib(m.rss_bytes)}${m.uss_bytes ? `, USS ${mib(m.uss_bytes)}` : ""} of `
      + (m.limit_bytes ? mib(m.limit_bytes) : "no limit")),
    bar,
    el("p", {}, growth === null ? "trend: not enough samples yet"
      : `trend: ${(growth / 1024).toFixed(2)} KiB/s` + (m.seconds_to_limit === null ? ""
        : `, limit in ${(m.seconds_to_limit / 60).toFixed(0)} min`)),
    el("p", { class: "muted" }, m.error ? `target: ${m.error}` : `target: ${m.target}`),
  );
}

function renderCanary(canary) {
  const body = document.querySelector("#canary tbody");
  if (!canary.enabled) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "5", class: "muted" }, "canary disabled (no identity to sign with)")));
    return;
  }
  const runs = canary.recent.slice().reverse();
  body.replaceChildren(...(runs.length ? runs.map((r) => el("tr", { "data-outcome": r.outcome },
    el("td", {}, new Date(r.started_at * 1000).toLocaleTimeString()),
    el("td", { class: r.outcome === "success" ? "ok" : "bad" }, r.outcome),
    el("td", {}, r.phase),
    el("td", {}, el("span", { class: "phases" }, ...PHASES.filter((p) => p in r.phases)
      .map((p) => el("span", { "data-phase": p }, `${p} ${ms(r.phases[p])}`)))),
    el("td", { class: "muted" }, r.detail))) : [el("tr", {}, el("td", { colspan: "5", class: "muted" }, "no run yet"))]));
}

function renderTraces(traces) {
  const state = document.getElementById("traces-state");
  const body = document.querySelector("#traces tbody");
  const empty = (text) => body.replaceChildren(el("tr", {}, el("td", { colspan: "5", class: "muted" }, text)));
  if (!traces.enabled) {
    state.textContent = "";
    empty("not read: the sidecar has no operator identity");
    return;
  }
  state.textContent = traces.ok === null ? "not read yet"
    : traces.ok ? "" : `could not read the backend's traces (${traces.error})`;
  state.className = traces.ok === false ? "bad" : "muted";
  if (traces.kept === false) {
    empty("the backend sends its spans to an exporter (OTLP): see them there");
    return;
  }
  if (!traces.runs.length) {
    empty("no run yet");
    return;
  }
  body.replaceChildren(...traces.runs.map((r) => el("tr", { "data-run": r.run_id || "", "data-status": r.status },
    el("td", {}, new Date(r.started_at * 1000).toLocaleTimeString()),
    el("td", { class: "muted", title: `trace ${r.trace_id}` }, (r.run_id || "?").slice(0, 8)),
    el("td", {}, `${r.duration_ms.toFixed(1)} ms`),
    el("td", { class: r.status === "ok" ? "ok" : "bad" }, r.status === "ok" ? "ok" : `error: ${r.error}`),
    el("td", {}, el("span", { class: "phases" }, ...admission(r), ...r.spans.map((s) => el("span",
      { "data-span": s.name, class: s.status === "ok" ? "" : "bad", title: s.error || "" },
      `${s.name} +${s.offset_ms.toFixed(1)} ${s.duration_ms.toFixed(1)} ms`)))))));
}

// The run's first stretch: from its chat frame to its admission's commit.
function admission(run) {
  if (run.admitted_ms === null || run.admitted_ms === undefined) return [];
  return [el("span", { "data-span": "admission" }, `admission ${run.admitted_ms.toFixed(1)} ms`)];
}

async function refresh() {
  const fresh = document.getElementById("freshness");
  try {
    const response = await fetch("/slo", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const doc = await response.json();
    document.getElementById("target").textContent = `backend ${doc.target_url}`;
    renderSlos(doc.slos);
    renderCriteria(doc.criteria);
    renderProbes(doc.probes, doc.scrape);
    renderMemory(doc.memory);
    renderCanary(doc.canary);
    renderTraces(doc.traces);
    fresh.textContent = `updated ${new Date().toLocaleTimeString()}`;
    fresh.className = "muted";
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
  } catch (error) {
    fresh.textContent = `sidecar unreachable: ${error.message}`;
    fresh.className = "bad";
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
