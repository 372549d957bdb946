// The operations-centre page: sign in, load what the party may see from the /v1 API, draw it, keep it live over
// the event stream. All times UTC; altitudes metres above WGS84 (feet shown alongside); coordinates WGS84.

import { api, ApiError, claims, fullInbox, openStream, session, signIn } from "./api.js";
import { dayKey, esc, fmtClock, fmtTime, footprintPoints } from "./geo.js";
import { legend, MapView } from "./situation-map.js";
import { NoticeForm } from "./notice.js";
import { deliveryHtml, deliverySubject, operationHtml, siteHtml } from "./render.js";

const $ = (id) => document.getElementById(id);
const BASEMAP_URL = "/static/basemap/countries-50m.geojson";

const state = {
  party: null,
  parties: new Map(),
  operations: [],
  sites: [],
  inbox: [],
  outcomeConflicts: [],
  tracks: new Map(),
  alerts: [],
  day: null,
  dayChosen: false,
  minute: 0,
  wholeDay: true,
  stops: [],
  fitted: false,
};

const map = new MapView($("mapview"));
legend($("map-legend"), map);
window.forewarnMap = map; // for tests and the console: screenPoint(lon, lat), fit(points)
const form = new NoticeForm(map, {
  party: () => state.party,
  onOutcome: (outcome) => { state.outcomeConflicts = outcome ? outcome.conflicts : []; renderMap(); },
  onFiled: () => refresh(),
});

// ---------------------------------------------------------------------------------------------- sign in / out
$("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("signin-error").textContent = "";
  try {
    session.token = await signIn($("client-id").value.trim(), $("client-secret").value);
    $("client-secret").value = "";
    await start();
  } catch (err) {
    $("signin-error").textContent = err instanceof ApiError ? `sign-in refused: ${err.message}` : String(err);
  }
});

$("token-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("signin-error").textContent = "";
  try {
    const token = $("token-input").value.trim();
    claims(token);
    session.token = token;
    $("token-input").value = "";
    await start();
  } catch (err) {
    session.token = null;
    $("signin-error").textContent = `token refused: ${err.message || err}`;
  }
});

$("signout").addEventListener("click", () => signOut());
window.addEventListener("forewarn:unauthenticated", (e) => {
  if (!state.party) return;
  signOut();
  const err = e.detail && e.detail.error;
  $("signin-error").textContent = `signed out: ${err ? err.message : "the token was refused"} (sign in again)`;
});

function signOut() {
  for (const stop of state.stops) stop();
  state.stops = [];
  session.token = null;
  Object.assign(state, { party: null, operations: [], sites: [], inbox: [], outcomeConflicts: [], alerts: [],
                         dayChosen: false, fitted: false });
  state.tracks.clear();
  $("app").hidden = true;
  $("who").hidden = true;
  $("signin").hidden = false;
  form.reset();
}

async function start() {
  const c = claims(session.token);
  state.party = c.sub;
  try {
    await api("/v1/health");
    await refresh();
  } catch (err) {
    session.token = null;
    throw err;
  }
  $("who-party").textContent = state.party;
  $("who-name").textContent = state.parties.get(state.party)?.name ?? "";
  $("signin").hidden = true;
  $("app").hidden = false;
  $("who").hidden = false;
  form.reset();
  map.update();
  fitToOperations();
  for (const channel of ["primary", "backup"]) {
    state.stops.push(openStream(channel, onStreamEvent, (on) => {
      $("stream-state").textContent = on ? "stream live" : "stream off";
      $("stream-state").className = `pill ${on ? "on" : "off"}`;
    }));
  }
  // moving tracks (own and those of bound parties): GET /v1/tracks/stream, one "track" event per new position
  state.stops.push(openStream("tracks", onStreamEvent, () => {}, "/v1/tracks/stream"));
}

// ---------------------------------------------------------------------------------------------- data
async function refresh() {
  const [parties, operations, sites, inbox] = await Promise.all([
    api("/v1/parties"), operationsOrNote(), api("/v1/sites"), fullInbox(),
  ]);
  state.parties = new Map(parties.map((p) => [p.id, p]));
  state.operations = operations;
  state.sites = sites;
  state.inbox = inbox;
  for (const d of inbox) if (d.payload && d.payload.type === "alert") addAlert(d.payload, d.created_at);
  renderAll();
}

/** The operations this party may see; for the operator's admin token (bound by no agreement) the service answers
 * 403 "admin_sees_no_operations": say so on the page instead of showing an empty sky. */
async function operationsOrNote() {
  const note = $("view-note");
  try {
    const operations = await api("/v1/operations");
    note.hidden = true;
    return operations;
  } catch (err) {
    const error = err.body && err.body.error;
    if (err.status !== 403 || !error || !error.details || error.details.reason !== "admin_sees_no_operations") throw err;
    note.textContent = `No operations are shown to this token: ${error.message}.`;
    note.hidden = false;
    return [];
  }
}

let refreshTimers = [];
/** Reload after a stream event, and once more when the worker has recorded the send (first send fixes the lead time). */
function refreshSoon() {
  for (const t of refreshTimers) clearTimeout(t);
  refreshTimers = [250, 1500].map((ms) => setTimeout(() => refresh().catch((e) => console.warn(e)), ms));
}

function onStreamEvent(ev) {
  const data = ev.data;
  const payload = data && data.payload ? data.payload : data;
  if (payload && payload.type === "track") {
    onTrack(payload);
    return;
  }
  if (payload && payload.type === "alert") addAlert(payload, data.created_at || payload.t);
  refreshSoon();
}

function onTrack(t) {
  const id = t.party_id ? `${t.party_id}/${t.track_id}` : t.track_id;
  const prev = state.tracks.get(id);
  const trail = prev ? [...prev.trail, [t.lon_deg, t.lat_deg]].slice(-60) : [[t.lon_deg, t.lat_deg]];
  state.tracks.set(id, { ...t, trail });
  renderTracks();
}

function addAlert(payload, at) {
  // a delivered alert is {"type": "alert", "alert": {...}} (forewarn.tracks.alerts); older shapes are flat
  const a = payload && payload.alert ? { ...payload.alert, type: "alert" } : payload;
  const key = a.alert_id || a.id || `${a.kind || ""}|${a.t || at}|${a.track_id || ""}|${a.message || ""}`;
  if (state.alerts.some((x) => x.key === key)) return;
  state.alerts.push({ ...a, key, at: a.at || a.t || at });
}

function alertPosition(a) {
  if (Array.isArray(a.point)) return a.point;
  if (typeof a.lon_deg === "number" && typeof a.lat_deg === "number") return [a.lon_deg, a.lat_deg];
  if (a.position && typeof a.position.lon_deg === "number") return [a.position.lon_deg, a.position.lat_deg];
  return null;
}

// ---------------------------------------------------------------------------------------------- time filter
/** The day the slider scrubs: the chosen one, or (when "all days" is chosen) the default day. */
function sliderDay() {
  return state.day === "all" || state.day === "upcoming" ? defaultDay() : state.day;
}

/** "upcoming": volumes not yet over (end after now); "all": every volume; else a UTC day (whole or at the slider). */
function isRange() {
  return state.day === "all" || state.day === "upcoming";
}

function dayStart() {
  return Date.parse(`${sliderDay()}T00:00:00Z`);
}

function visibleVolume(v) {
  const s = Date.parse(v.start);
  const e = Date.parse(v.end);
  if (state.day === "all") return true;
  if (state.day === "upcoming") return e > Date.now();
  if (state.wholeDay) return s < dayStart() + 86400000 && e > dayStart();
  const t = dayStart() + state.minute * 60000;
  return s <= t && t < e;
}

function allDays() {
  const days = new Set([dayKey(new Date())]);
  for (const op of state.operations) {
    for (const v of op.volumes) {
      for (let t = Date.parse(v.start.slice(0, 10) + "T00:00:00Z"); t < Date.parse(v.end); t += 86400000) {
        days.add(dayKey(new Date(t)));
        if (days.size > 60) break;
      }
    }
  }
  return [...days].sort();
}

/** Today (UTC) when a live operation touches it, else the first day of the most recently notified operation. */
function defaultDay() {
  const live = state.operations.filter((o) => o.state !== "cancelled" && o.notified_at);
  const today = dayKey(new Date());
  const t0 = Date.parse(`${today}T00:00:00Z`);
  const touchesToday = live.some((o) => o.volumes.some((v) => Date.parse(v.start) < t0 + 86400000 && Date.parse(v.end) > t0));
  if (!live.length || touchesToday) return today;
  const latest = live.reduce((a, b) => (a.notified_at >= b.notified_at ? a : b));
  const starts = latest.volumes.map((v) => v.start).sort();
  return starts[0].slice(0, 10);
}

/** The day the page opens on: "now and upcoming" while an operation is not over yet; when every operation is in
 * the past (the built-in 2015 scenario), the latest UTC day that has activity. */
function openingDay() {
  const live = state.operations.filter((o) => o.state !== "cancelled");
  const ends = live.flatMap((o) => o.volumes.map((v) => Date.parse(v.end))).filter((t) => Number.isFinite(t));
  if (!ends.length || ends.some((t) => t > Date.now())) return "upcoming";
  return dayKey(new Date(Math.max(...ends) - 1));
}

function renderTimebar() {
  const days = allDays();
  if (!state.dayChosen) state.day = openingDay();
  if (!isRange() && !days.includes(state.day)) days.push(state.day);
  $("day").replaceChildren(...["upcoming", "all", ...days].map((d) => {
    const o = document.createElement("option");
    o.value = d;
    o.textContent = { upcoming: "now and upcoming", all: "all days" }[d] || d;
    o.selected = d === state.day;
    return o;
  }));
  $("whole-day").checked = state.wholeDay;
  $("slider").value = state.minute;
  const hh = String(Math.floor(state.minute / 60)).padStart(2, "0");
  const mm = String(state.minute % 60).padStart(2, "0");
  $("whole-day").disabled = isRange();
  $("slider-time").textContent = state.day === "all" ? "every operation" : state.day === "upcoming" ? "not yet over"
    : state.wholeDay ? `whole day ${state.day}` : `${state.day} ${hh}:${mm} UTC`;
  renderTicks();
}

$("day").addEventListener("change", () => { state.day = $("day").value; state.dayChosen = true; renderAll(); });

// The daily report (GET /v1/reports/DAY.html, the party's own view): fetched with the token, opened as a page.
$("report-button").addEventListener("click", async () => {
  const day = /^\d{4}-\d{2}-\d{2}$/.test(state.day || "") ? state.day : new Date().toISOString().slice(0, 10);
  const win = window.open("", "_blank");
  try {
    const r = await fetch(`/v1/reports/${day}.html`, { headers: { Authorization: `Bearer ${session.token}` } });
    if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => null));
    const url = URL.createObjectURL(new Blob([await r.text()], { type: "text/html" }));
    if (win) win.location = url; else window.location = url;
  } catch (e) {
    if (win) win.close();
    alert(`report for ${day}: ${e.message || e}`);
  }
});
$("whole-day").addEventListener("change", () => { state.wholeDay = $("whole-day").checked; renderAll(); });
$("slider").addEventListener("input", () => {
  state.minute = Number($("slider").value);
  if (isRange()) {
    state.day = defaultDay();
    state.dayChosen = true;
  }
  state.wholeDay = false;
  renderTimebar();
  renderMap();
});

// ---------------------------------------------------------------------------------------------- events
function timelineEvents() {
  const ev = [];
  for (const op of state.operations) {
    if (op.notified_at) {
      const who = op.party_id === state.party ? "you" : op.party_id;
      ev.push({ t: op.notified_at, kind: "notice", text: `notice by ${who}: ${op.id} (${op.activity_class}, ${op.state})` });
    }
  }
  for (const d of state.inbox) {
    const p = d.payload || {};
    const op = p.operation ? p.operation.id : p.operation_id || "";
    const from = p.from_party || "";
    if (p.type === "escalation") {
      ev.push({ t: d.created_at, kind: "escalation", text: `escalation (backup) of unacknowledged notice ${op} from ${from}` });
    } else if (p.type === "alert") {
      continue;
    } else {
      const late = d.late ? " — LATE" : "";
      ev.push({ t: d.created_at, kind: "delivery", text: `delivery ${p.kind || p.type || ""} ${op} from ${from}${late}` });
    }
    if (d.acked_at) ev.push({ t: d.acked_at, kind: "ack", text: `acknowledged: ${op || deliverySubject(p)}` });
    if (d.escalated_at) ev.push({ t: d.escalated_at, kind: "escalation", text: `escalated (not acknowledged in time): ${deliverySubject(p)}` });
  }
  for (const a of state.alerts) {
    ev.push({ t: a.at, kind: "alert", text: `alert: ${a.message || a.kind || a.alert_type || "alert"}${a.track_id ? ` (${a.track_id})` : ""}` });
  }
  return ev.filter((e) => e.t).sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
}

function renderTimeline() {
  const list = $("timeline-list");
  const events = timelineEvents().reverse(); // newest first
  list.replaceChildren(...events.map((e) => {
    const li = document.createElement("li");
    li.className = `ev ${e.kind}`;
    li.innerHTML = `<time>${esc(fmtTime(e.t))}</time> <span class="tag ${e.kind}">${esc(e.kind)}</span> ${esc(e.text)}`;
    li.addEventListener("click", () => jumpTo(e.t));
    return li;
  }));
  if (!events.length) list.innerHTML = `<li class="muted">No events yet.</li>`;
}

function jumpTo(iso) {
  const d = new Date(iso);
  state.day = dayKey(d);
  state.dayChosen = true;
  state.minute = d.getUTCHours() * 60 + d.getUTCMinutes();
  state.wholeDay = false;
  renderAll();
}

new ResizeObserver(() => { if (state.party) renderTicks(); }).observe($("ticks"));

function renderTicks() {
  const svg = $("ticks");
  svg.replaceChildren();
  const w = svg.clientWidth || 600;
  const ns = "http://www.w3.org/2000/svg";
  for (let h = 0; h <= 24; h += 3) {
    const x = (h / 24) * w;
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", Math.min(Math.max(x, 8), w - 8));
    t.setAttribute("y", 26);
    t.setAttribute("class", "hour");
    t.textContent = `${String(h).padStart(2, "0")}`;
    svg.appendChild(t);
  }
  const start = dayStart();
  for (const e of timelineEvents()) {
    const ms = Date.parse(e.t) - start;
    if (ms < 0 || ms >= 86400000) continue;
    const line = document.createElementNS(ns, "line");
    const x = (ms / 86400000) * w;
    Object.entries({ x1: x, x2: x, y1: 2, y2: 14, class: `tick ${e.kind}` }).forEach(([k, v]) => line.setAttribute(k, v));
    const title = document.createElementNS(ns, "title");
    title.textContent = `${fmtTime(e.t)} ${e.text}`;
    line.appendChild(title);
    line.addEventListener("click", () => jumpTo(e.t));
    svg.appendChild(line);
  }
  if (!state.wholeDay && !isRange()) {
    const x = (state.minute / 1440) * w;
    const cur = document.createElementNS(ns, "line");
    Object.entries({ x1: x, x2: x, y1: 0, y2: 16, class: "cursor-line" }).forEach(([k, v]) => cur.setAttribute(k, v));
    svg.appendChild(cur);
  }
}

// ---------------------------------------------------------------------------------------------- map

function allConflicts() {
  const out = [...state.outcomeConflicts];
  for (const d of state.inbox) for (const c of (d.payload && d.payload.conflicts) || []) out.push(c);
  return out;
}

function renderMap() {
  for (const layer of ["sites", "others", "own", "conflicts", "alerts", "labels"]) map.clear(layer);
  const conflicts = allConflicts();
  const inConflict = new Map(); // operation id -> set of volume indexes
  for (const c of conflicts) {
    for (const ref of [c.a, c.b]) {
      if (!inConflict.has(ref.operation_id)) inConflict.set(ref.operation_id, new Set());
      inConflict.get(ref.operation_id).add(ref.volume_index);
    }
  }
  for (const site of state.sites) {
    const point = site.point || site.polygon?.[0];
    if (site.polygon) map.polygon("sites", site.polygon, "site-area");
    if (site.point && site.buffer_m > 0) map.footprint("sites", { kind: "circle", center: site.point, radius_m: site.buffer_m }, "site-buffer");
    if (point) {
      map.marker("sites", point, "site", 4, { "data-site": site.id });
      map.label("sites", point, site.name, "label site-label", 11, 7, 12);
    }
  }
  for (const op of state.operations) {
    if (op.state === "cancelled") continue;
    const own = op.party_id === state.party;
    op.volumes.forEach((v, i) => {
      if (!visibleVolume(v)) return;
      const cls = `vol ${own ? "own" : "others"} st-${op.state}${inConflict.get(op.id)?.has(i) ? " conflicted" : ""}`;
      map.footprint(own ? "own" : "others", v.footprint, cls, { "data-op": op.id, "data-volume": i });
      const pts = footprintPoints(v.footprint);
      if (i === 0) map.label(own ? "own" : "others", pts[0], op.id, `label op-label ${own ? "own" : "others"}`, 12);
      if (inConflict.get(op.id)?.has(i)) {
        map.footprint("conflicts", v.footprint, "conflict-outline", { "data-op": op.id, "data-volume": i });
      }
    });
  }
  const seen = new Set();
  const shown = (ref) => {
    const op = state.operations.find((o) => o.id === ref.operation_id);
    const v = op && op.volumes[ref.volume_index];
    return !v || (op.state !== "cancelled" && visibleVolume(v));
  };
  for (const c of conflicts) {
    if (!shown(c.a) || !shown(c.b)) continue;
    const key = `${c.a.operation_id}/${c.b.operation_id}/${c.overlap.point}`;
    if (seen.has(key)) continue;
    seen.add(key);
    map.marker("conflicts", c.overlap.point, "conflict-point", 6, { "data-conflict": `${c.a.operation_id}|${c.b.operation_id}` });
  }
  for (const a of state.alerts) {
    const p = alertPosition(a);
    if (!p) continue;
    map.triangle("alerts", p, "alert-marker", 9);
    map.label("alerts", p, a.message || a.kind || "alert", "label alert-label", 11);
  }
  renderTracks();
  form.renderDraft();
  map.update();
}

function renderTracks() {
  map.clear("tracks");
  for (const t of state.tracks.values()) {
    if (t.trail.length > 1) map.line("tracks", t.trail, "track-trail");
    const own = t.party_id === state.party;
    map.marker("tracks", [t.lon_deg, t.lat_deg], `track ${own ? "own" : "others"}`, 4, { "data-track": t.track_id });
    const alt = typeof t.alt_m === "number" ? ` ${Math.round(t.alt_m)} m` : "";
    map.label("tracks", [t.lon_deg, t.lat_deg], `${t.track_id}${alt}`, "label track-label", 11, 7, 4);
  }
  map.update();
}

function fitToOperations() {
  const pts = [];
  for (const op of state.operations) {
    if (op.state === "cancelled") continue;
    for (const v of op.volumes) if (visibleVolume(v)) pts.push(...footprintPoints(v.footprint));
  }
  for (const s of state.sites) if (s.point) pts.push(s.point);
  if (pts.length) map.fit(pts);
  else map.fit([[35, 32], [45, 38]]);
}

map.onMove = ([lon, lat]) => {
  $("cursor").textContent = `${lat.toFixed(3)}°N ${lon.toFixed(3)}°E (WGS84)`;
};

map.onClick = (lonlat, e) => {
  if (form.drawing) {
    form.addPoint(lonlat);
    return;
  }
  const hits = document.elementsFromPoint(e.clientX, e.clientY);
  // every operation drawn under the click (own first), not the conflict overlay
  const ids = [...new Set(hits.map((n) => n.closest && n.closest("#layer-own [data-op], #layer-others [data-op]"))
    .filter((n) => n).map((n) => n.dataset.op))];
  const ops = ids.map((id) => state.operations.find((o) => o.id === id)).filter((o) => o)
    .sort((a, b) => (b.party_id === state.party) - (a.party_id === state.party));
  const siteNode = hits.find((n) => n.dataset && n.dataset.site);
  const info = $("map-info");
  if (ops.length) {
    info.innerHTML = `<button type="button" class="close" aria-label="close">×</button>`
      + ops.map((op) => `<article class="info-op">${operationHtml(op, state.party)}</article>`).join("");
    info.hidden = false;
  } else if (siteNode) {
    const site = state.sites.find((s) => s.id === siteNode.dataset.site);
    info.innerHTML = `<button type="button" class="close" aria-label="close">×</button>${siteHtml(site)}`;
    info.hidden = false;
  } else {
    info.hidden = true;
  }
  const close = info.querySelector(".close");
  if (close) close.addEventListener("click", () => { info.hidden = true; });
};

$("zoom-in").addEventListener("click", () => map.zoomBy(1.6));
$("zoom-out").addEventListener("click", () => map.zoomBy(1 / 1.6));
$("zoom-fit").addEventListener("click", () => fitToOperations());

// ---------------------------------------------------------------------------------------------- panels
function renderInbox() {
  const list = $("inbox-list");
  const items = [...state.inbox].sort((a, b) => b.seq - a.seq).filter((d) => !(d.payload && d.payload.type === "track"));
  const open = items.filter((d) => !d.acked_at && d.payload?.type !== "escalation").length;
  $("inbox-count").textContent = open ? String(open) : "";
  if (!items.length) {
    list.innerHTML = `<p class="empty">No deliveries.</p>`;
    return;
  }
  list.innerHTML = items.map((d) => deliveryHtml(d, state.party)).join("");
  for (const button of list.querySelectorAll("button.ack")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      button.textContent = "acknowledging…";
      try {
        await api(`/v1/deliveries/${encodeURIComponent(button.dataset.delivery)}/ack`, { method: "POST" });
        await refresh();
      } catch (err) {
        button.disabled = false;
        button.textContent = `Acknowledge (failed: ${err.message})`;
      }
    });
  }
  for (const link of list.querySelectorAll("[data-show-op]")) {
    link.addEventListener("click", () => showOperation(link.dataset.showOp));
  }
}

function showOperation(id) {
  const op = state.operations.find((o) => o.id === id)
    || state.inbox.map((d) => d.payload && d.payload.operation).find((o) => o && o.id === id);
  if (!op) return;
  const pts = op.volumes.flatMap((v) => footprintPoints(v.footprint));
  map.fit(pts);
  const first = op.volumes.map((v) => v.start).sort()[0];
  if (first && !state.wholeDay) jumpTo(first);
}

function renderOperations() {
  const live = state.operations.filter((o) => o.state !== "cancelled");
  const ops = [...live].sort((a, b) => (a.party_id === state.party ? -1 : 0) - (b.party_id === state.party ? -1 : 0)
    || String(b.notified_at).localeCompare(String(a.notified_at)));
  $("ops-list").innerHTML = ops.length
    ? ops.map((op) => `<article class="item op" data-op-item="${esc(op.id)}">${operationHtml(op, state.party)}</article>`).join("")
    : `<p class="empty">No operations visible to ${esc(state.party)}.</p>`;
  for (const item of $("ops-list").querySelectorAll("[data-op-item]")) {
    item.addEventListener("click", () => showOperation(item.dataset.opItem));
  }
  $("sites-list").innerHTML = state.sites.length
    ? state.sites.map((s) => `<article class="item site">${siteHtml(s)}</article>`).join("")
    : `<p class="empty">No protected sites visible.</p>`;
}

function renderAll() {
  renderTimebar();
  renderMap();
  renderInbox();
  renderOperations();
  renderTimeline();
  if (!state.fitted && !$("app").hidden) {
    state.fitted = true;
    fitToOperations();
  }
}

for (const tab of document.querySelectorAll("#tabs [data-tab]")) {
  tab.addEventListener("click", () => {
    for (const t of document.querySelectorAll("#tabs [data-tab]")) t.classList.toggle("active", t === tab);
    for (const p of document.querySelectorAll("[data-panel]")) p.hidden = p.dataset.panel !== tab.dataset.tab;
  });
}

setInterval(() => {
  $("clock").textContent = `${fmtClock(new Date().toISOString())} UTC`;
}, 1000);

// ---------------------------------------------------------------------------------------------- basemap
async function loadBasemap() {
  map.graticule();
  const note = $("basemap-status");
  try {
    const r = await fetch(BASEMAP_URL);
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    map.basemap(await r.json());
    note.hidden = true;
    document.body.dataset.basemap = "loaded";
  } catch (err) {
    note.textContent = "basemap not installed: run npm ci && npm run basemap";
    note.hidden = false;
    document.body.dataset.basemap = "missing";
  }
  map.update();
}

loadBasemap();
if (session.token) {
  start().catch(() => signOut());
}
