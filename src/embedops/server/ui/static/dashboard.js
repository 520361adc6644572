// The embedops dashboard: one page, five views, all data from the service's JSON API.
// The API key lives in sessionStorage only (this tab, until it closes or signs out).
"use strict";

const KEY_NAME = "embedops-api-key";
const REFRESH_MS = 5000;
const PAGES = ["overview", "quality", "migrations", "dead-letters", "search"];
const PLOT_CONFIG = { displayModeBar: false, responsive: true };
let session = null;
let refreshTimer = null;

// --- helpers ---------------------------------------------------------------------------

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const headers = { "Accept": "application/json" };
  const key = sessionStorage.getItem(KEY_NAME);
  if (key) headers["Authorization"] = "Bearer " + key;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET", headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { raw: text }; }
  if (!response.ok) {
    const message = (data && data.error && data.error.message) || response.statusText;
    throw new ApiError(response.status, message);
  }
  return data;
}

function showError(err) {
  if (err instanceof ApiError && err.status === 401) { showLogin(err.message); return; }
  $("error").textContent = err.message || String(err);
}

function table(node, columns, rows) {
  node.replaceChildren(el("thead", {}, el("tr", {}, ...columns.map((c) => el("th", { text: c })))));
  const body = el("tbody");
  for (const row of rows) body.append(el("tr", {}, ...row.map((cell) => el("td", {}, cell))));
  node.append(body);
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return n.toFixed(i ? 1 : 0) + " " + units[i];
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "unknown";
  if (seconds < 90) return seconds.toFixed(0) + " s";
  if (seconds < 5400) return (seconds / 60).toFixed(0) + " min";
  return (seconds / 3600).toFixed(1) + " h";
}

function isAdmin() {
  return session && (!session.auth_required || session.scopes.includes("admin"));
}

function times(t) { return t.map((s) => new Date(s * 1000)); }

function plot(id, title, traces, layout = {}) {
  const base = {
    title: { text: title, font: { size: 14 } }, margin: { l: 55, r: 55, t: 36, b: 36 },
    height: 260, legend: { orientation: "h", y: -0.25 }, xaxis: { type: "date" },
  };
  return Plotly.react($(id), traces, Object.assign(base, layout), PLOT_CONFIG);
}

function line(x, y, name, extra = {}) {
  return Object.assign({ x, y, name, type: "scatter", mode: "lines+markers",
                         marker: { size: 4 } }, extra);
}

// --- sign in ---------------------------------------------------------------------------

function showLogin(message) {
  session = null;
  stopRefresh();
  $("login").hidden = false;
  $("nav").hidden = true;
  $("signout").hidden = true;
  $("who").textContent = "";
  for (const page of PAGES) $("page-" + page).hidden = true;
  $("login-error").textContent = message || "";
}

async function signIn(event) {
  event.preventDefault();
  sessionStorage.setItem(KEY_NAME, $("login-key").value.trim());
  try {
    await loadSession();
  } catch (err) {
    sessionStorage.removeItem(KEY_NAME);  // a refused key is not kept
    session = null;
    $("login-error").textContent = "refused: " + err.message;
    return;
  }
  $("login-key").value = "";
  route();
}

async function loadSession() {
  session = await api("/ui/api/session");
  $("login").hidden = true;
  $("nav").hidden = false;
  $("signout").hidden = !session.auth_required;
  $("who").textContent = session.auth_required
    ? "key " + session.key_id + " (" + session.scopes.join(", ") + ")"
    : "no API keys configured: open access";
  for (const button of document.querySelectorAll("button.admin")) {
    button.disabled = !isAdmin();
    button.title = isAdmin() ? "" : "needs a key with the admin scope";
  }
}

function signOut() {
  sessionStorage.removeItem(KEY_NAME);
  showLogin("signed out");
}

// --- routing ---------------------------------------------------------------------------

function stopRefresh() {
  if (refreshTimer !== null) { clearInterval(refreshTimer); refreshTimer = null; }
}

async function route() {
  if (!session) return;
  stopRefresh();
  $("error").textContent = "";
  const page = PAGES.includes(location.hash.slice(1)) ? location.hash.slice(1) : "overview";
  for (const name of PAGES) $("page-" + name).hidden = name !== page;
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.page === page);
  }
  const render = { "overview": renderOverview, "quality": renderQuality,
                   "migrations": renderMigrations, "dead-letters": renderDeadLetters,
                   "search": renderSearchTargets }[page];
  try {
    await render();
    document.body.dataset.loaded = page;
  } catch (err) { showError(err); }
  if (page === "overview" || page === "migrations") {
    refreshTimer = setInterval(() => render().catch(showError), REFRESH_MS);
  }
}

// --- overview --------------------------------------------------------------------------

async function renderOverview() {
  const [now, s] = await Promise.all([api("/ui/api/overview"),
                                      api("/ui/api/series?minutes=60")]);
  const alerts = $("alerts");
  alerts.replaceChildren(...now.alerts.map((a) => el("p", { class: "alert " + a.level },
                                                      a.level + ": " + a.reason)));
  const memory = now.memory;
  $("cards").replaceChildren(
    card("queue depth", now.queue_depth), card("indexing lag", duration(now.indexing_lag_s)),
    card("index memory", bytes(memory.index_bytes) + " of " + bytes(memory.budget_bytes) +
         " (" + (100 * memory.share).toFixed(1) + "%)"),
    card("dead letters", now.dead_letters), card("active alerts", now.alerts.length),
    ...now.migrations.map((m) => card("migration " + m.alias,
                                      m.phase + " " + m.documents_done + "/" + m.documents_total)));
  table($("collections-table"),
        ["collection", "points", "documents", "model", "dim", "dtype", "index memory", "aliases"],
        now.collections.map((c) => [c.name, c.points, c.documents, c.model, c.dim, c.dtype,
                                    bytes(c.index_bytes), c.aliases.join(", ")]));
  table($("aliases-table"), ["alias", "collection"], Object.entries(now.aliases));
  const breakers = Object.entries(now.breakers);
  table($("breakers-table"), ["endpoint", "state"],
        breakers.length ? breakers : [["(no API embedder in use)", ""]]);
  const x = times(s.t);
  const budget = memory.budget_bytes;
  await plot("plot-memory", "Index memory, % of the budget (" + bytes(budget) + ")",
             [line(x, s.memory_share.map((v) => 100 * v), "index memory %")],
             { yaxis: { title: { text: "%" }, rangemode: "tozero",
                        range: [0, Math.max(100, ...s.memory_share.map((v) => 110 * v))] },
               shapes: [hline(100 * memory.warn_share, "#d97706", "dash"), hline(100, "#dc2626")],
               annotations: [{ xref: "paper", x: 0, y: 100 * memory.warn_share,
                               text: "80% warning", showarrow: false, yanchor: "bottom",
                               xanchor: "left", font: { color: "#d97706", size: 11 } }] });
  await plot("plot-queue", "Queue depth and indexing lag",
             [line(x, s.queue_depth, "queued writes"),
              line(x, s.indexing_lag_s, "lag (s)", { yaxis: "y2" })],
             { yaxis: { title: { text: "writes" }, rangemode: "tozero" },
               yaxis2: { title: { text: "seconds" }, overlaying: "y", side: "right",
                         rangemode: "tozero" } });
  await plot("plot-throughput", "Throughput (vectors/s stored)",
             [line(x, s.vectors_per_s, "vectors/s"),
              ...Object.entries(s.points).map(([name, ys]) =>
                line(x, ys, "points " + name, { yaxis: "y2", mode: "lines" }))],
             { yaxis: { title: { text: "vectors/s" }, rangemode: "tozero" },
               yaxis2: { title: { text: "points" }, overlaying: "y", side: "right",
                         rangemode: "tozero" } });
  await plot("plot-errors", "429 and 5xx rates (per second)",
             [line(x, s.http_429_per_s, "served 429"), line(x, s.http_5xx_per_s, "served 5xx"),
              line(x, s.api_429_per_s, "API embedder 429"),
              line(x, s.api_5xx_per_s, "API embedder 5xx")],
             { yaxis: { title: { text: "per second" }, rangemode: "tozero" } });
}

function card(label, value) {
  return el("div", { class: "card" }, el("div", { class: "label", text: label }),
            el("div", { class: "value", text: String(value) }));
}

function hline(y, color, dash = "solid") {
  return { type: "line", xref: "paper", x0: 0, x1: 1, y0: y, y1: y,
           line: { color, width: 1.5, dash } };
}

// --- quality ---------------------------------------------------------------------------

async function renderQuality() {
  const data = await api("/ui/api/quality?runs=500");
  const box = $("canaries");
  if (!data.canaries.length) {
    box.replaceChildren(el("p", { text: "No canary yet: `embedops canary create NAME`." }));
    return;
  }
  box.replaceChildren(...data.canaries.map((c) => el("div", { class: "canary" },
    el("h3", { text: c.name + " → " + c.collection + " (" + c.queries + " queries)" }),
    el("div", { class: "plot", id: "plot-canary-" + c.name }),
    el("h4", { text: "Latest evaluation" }), el("table", { id: "eval-" + c.name }))));
  for (const c of data.canaries) {
    const x = c.runs.map((r) => r.ran_at);
    const shapes = [];
    const annotations = [];
    if (c.baseline_recall !== null) {
      const floor = c.baseline_recall - c.threshold_points / 100;
      shapes.push({ type: "rect", xref: "paper", x0: 0, x1: 1, y0: floor, y1: c.baseline_recall,
                    fillcolor: "rgba(217, 119, 6, 0.15)", line: { width: 0 } },
                  hline(c.baseline_recall, "#2563eb", "dot"), hline(floor, "#dc2626", "dash"));
      annotations.push({ xref: "paper", x: 1, y: floor, xanchor: "right", yanchor: "top",
                         showarrow: false, font: { size: 11, color: "#dc2626" },
                         text: "alert below " + floor.toFixed(3) + " (" + c.threshold_points +
                               " points under the baseline)" });
    }
    if (c.baseline_ndcg !== null) shapes.push(hline(c.baseline_ndcg, "#16a34a", "dot"));
    await plot("plot-canary-" + c.name, "recall@10 and nDCG@10 per run", [
      line(x, c.runs.map((r) => r.recall), "recall@10", {
        marker: { size: 7, color: c.runs.map((r) => (r.alert ? "#dc2626" : "#2563eb")) } }),
      line(x, c.runs.map((r) => r.ndcg), "nDCG@10", { marker: { size: 5, color: "#16a34a" } }),
    ], { shapes, annotations, yaxis: { title: { text: "score" } } });
    table($("eval-" + c.name), ["metric", "value"],
          Object.entries(c.latest_metrics).map(([k, v]) => [k, Number(v).toFixed(4)]));
  }
}

// --- migrations ------------------------------------------------------------------------

const ACTIONS = { swap: ["ready", "rolled_back"], rollback: ["swapped"],
                  finalize: ["swapped", "rolled_back"] };

async function renderMigrations() {
  const data = await api("/ui/api/migrations");
  const box = $("migrations");
  if (!data.migrations.length) {
    box.replaceChildren(el("p", { text: "No migration: `embedops migrate start ALIAS --to MODEL`." }));
    return;
  }
  box.replaceChildren(...data.migrations.map(migrationView));
}

function migrationView(m) {
  const total = m.documents_total || 0;
  const done = m.documents_done || 0;
  const progress = el("div", { class: "progress" },
    el("progress", { value: String(done), max: String(Math.max(total, 1)) }),
    el("span", { text: done + " / " + total + " documents" +
      (m.rate_chunks_per_second ? ", " + m.rate_chunks_per_second + " chunks/s" : "") +
      (m.phase === "backfilling" ? ", ETA " + duration(m.eta_seconds) : "") }));
  const buttons = Object.entries(ACTIONS).map(([action, phases]) => el("button", {
    type: "button", class: "admin" + (action === "finalize" ? " danger" : ""),
    "data-action": action, disabled: !isAdmin() || !phases.includes(m.phase),
    onclick: () => migrationAction(m.alias, action) }, action));
  return el("div", { class: "migration", "data-alias": m.alias },
    el("h3", {}, m.alias + " ", el("span", { class: "phase " + m.phase, text: m.phase })),
    el("p", { text: m.live + " → " + m.shadow + " (" + m.model + ", " + m.dtype + ")" }),
    progress, evaluationView(m.evaluation), el("p", {}, ...buttons));
}

function evaluationView(report) {
  if (!report || !report.live || !report.shadow) {
    return el("p", { text: "Not evaluated yet: POST /admin/migrations/{alias}/evaluate." });
  }
  const keys = Object.keys(report.live).filter((k) => typeof report.live[k] === "number" &&
                                                      typeof report.shadow[k] === "number");
  const node = el("table", { class: "evaluation" });
  table(node, ["metric", "live (" + report.live.model + ")", "shadow (" + report.shadow.model + ")"],
        keys.map((k) => [k, report.live[k], report.shadow[k]]));
  return el("div", {}, node, el("p", { class: report.gate_passed ? "ok" : "error",
    text: "gate " + (report.gate_passed ? "passed" : "not passed") }));
}

async function migrationAction(alias, action) {
  if (!confirm(action + " the migration of " + alias + "?")) return;
  try {
    await api("/admin/migrations/" + encodeURIComponent(alias) + "/" + action,
              { method: "POST", body: action === "swap" ? { force: false } : undefined });
    await renderMigrations();
  } catch (err) { showError(err); }
}

// --- dead letters ----------------------------------------------------------------------

async function renderDeadLetters() {
  const data = await api("/ui/api/dead-letters");
  const rows = data.dead_letters.map((d) => [
    d.collection, d.doc_id, d.stage, d.reason, d.attempts, d.last_seen,
    el("span", { class: "detail", title: d.detail, text: d.detail.slice(0, 80) }),
    el("span", {},
       el("button", { type: "button", class: "admin retry", "data-doc": d.doc_id,
                      disabled: !isAdmin(),
                      onclick: () => deadLetterAction("retry", d.collection, [d.doc_id]) },
          "Retry"),
       el("button", { type: "button", class: "admin danger purge", "data-doc": d.doc_id,
                      disabled: !isAdmin(),
                      onclick: () => deadLetterAction("purge", d.collection, [d.doc_id]) },
          "Purge")),
  ]);
  table($("dead-letters-table"),
        ["collection", "doc id", "stage", "reason", "attempts", "last seen", "detail", ""],
        rows.length ? rows : [["(none)", "", "", "", "", "", "", ""]]);
}

async function deadLetterAction(action, collection, docIds) {
  const what = docIds ? docIds.join(", ") : "every dead letter";
  if (action === "purge" && !confirm("Purge " + what + "? This forgets them.")) return;
  try {
    const body = { collection, doc_ids: docIds };
    const result = await api("/ui/api/dead-letters/" + action, { method: "POST", body });
    $("dl-result").textContent = action === "retry"
      ? "retried " + result.retried + " source files; " + result.remaining + " left" +
        (result.skipped.length ? "; skipped " + result.skipped.length + ": " +
         result.skipped[0].reason : "")
      : "purged " + result.purged;
    await renderDeadLetters();
  } catch (err) { showError(err); }
}

// --- search ----------------------------------------------------------------------------

async function renderSearchTargets() {
  const [cols, aliases] = await Promise.all([api("/collections"), api("/aliases")]);
  const select = $("search-target");
  const chosen = select.value;
  select.replaceChildren(
    ...Object.entries(aliases.aliases).map(([alias, target]) =>
      el("option", { value: alias, text: alias + " (alias → " + target + ")" })),
    ...cols.collections.map((c) => el("option", { value: c.name,
                                                  text: c.name + " (" + c.model + ")" })));
  if (chosen) select.value = chosen;
}

async function search(event) {
  event.preventDefault();
  const target = $("search-target").value;
  const query = $("search-query").value;
  const filter = $("search-filter").value.trim();
  const body = { query, k: Number($("search-k").value) || 10 };
  if (filter) body.filter = filter;
  $("search-status").textContent = "searching…";
  try {
    const data = await api("/collections/" + encodeURIComponent(target) + "/search",
                           { method: "POST", body });
    $("search-status").textContent = data.hits.length + (data.hits.length === 1 ? " hit" : " hits") +
      " in " + data.collection;
    $("search-results").replaceChildren(...data.hits.map((h) => el("li", { class: "hit" },
      el("div", { class: "hit-head" }, el("strong", { text: h.doc_id }),
         " · chunk " + h.id + " · score " + h.score.toFixed(4)),
      ...(isImage(h) ? [thumbnail(data.collection, h.doc_id)] : []),
      el("div", { class: "hit-text" }, ...highlighted(h.text || "", query)))));
  } catch (err) {
    $("search-status").textContent = "";
    showError(err);
  }
}

function isImage(hit) {
  return Boolean(hit.payload && hit.payload.kind === "image");
}

function thumbnail(collection, docId) {
  // Fetched with the key (an <img src> cannot send it), shown from a blob URL.
  const img = el("img", { class: "thumb", alt: docId });
  const headers = {};
  const key = sessionStorage.getItem(KEY_NAME);
  if (key) headers["Authorization"] = "Bearer " + key;
  const path = "/ui/api/thumbnails/" + encodeURIComponent(collection) + "/" +
    docId.split("/").map(encodeURIComponent).join("/");
  fetch(path, { headers })
    .then((r) => (r.ok ? r.blob() : Promise.reject(new Error(r.statusText))))
    .then((blob) => { img.src = URL.createObjectURL(blob); img.dataset.loaded = "1"; })
    .catch(() => { img.replaceWith(el("span", { class: "thumb-missing",
                                                text: "(image source unavailable)" })); });
  return img;
}

function highlighted(text, query) {
  // The spans of the text that match a query word (two letters or more), marked.
  const words = [...new Set(query.toLowerCase().match(/[\p{L}\p{N}]{2,}/gu) || [])];
  if (!words.length) return [text];
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp("(" + escaped.join("|") + ")", "giu");
  const out = [];
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    out.push(text.slice(last, match.index), el("mark", { text: match[0] }));
    last = match.index + match[0].length;
  }
  out.push(text.slice(last));
  return out;
}

// --- start -----------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", async () => {
  $("login-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("search-form").addEventListener("submit", search);
  $("dl-retry-all").addEventListener("click", () => deadLetterAction("retry", null, null));
  $("dl-purge-all").addEventListener("click", () => deadLetterAction("purge", null, null));
  window.addEventListener("hashchange", route);
  if (typeof Plotly === "undefined") {
    $("error").textContent = "the charting library (plotly.js) did not load";
  }
  try {
    await loadSession();
  } catch (err) {
    showLogin(sessionStorage.getItem(KEY_NAME) ? "the stored key was refused" : "");
    return;
  }
  route();
});
