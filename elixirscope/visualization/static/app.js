// The cinema's shell: one state (view, run, cursor, window, selection) held in the URL's
// hash, so every view and moment is a link; the views follow it.
import * as runs from "./runs.js";
import * as timeline from "./timeline.js";
import * as actors from "./actors.js";
import * as stateView from "./state.js";
import * as flame from "./flame.js";
import * as requests from "./requests.js";
import * as query from "./query.js";
import * as findings from "./findings.js";

const VIEWS = { runs, timeline, actors, state: stateView, flame, requests, query, findings };
// other names a link may give a view: its tab's label ("Call tree" is the flame graph)
const ALIASES = { calltree: "flame", "call-tree": "flame", insights: "findings" };
const KEYS = ["view", "run", "t", "ev", "w0", "w1", "sel", "field", "req", "q", "chain", "fd"];

export const S = { view: "runs" };
export const ctx = { overview: null, base: 0n, live: null };
let current = null; // { name, run, mod, inst }

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  const out = {};
  for (const k of KEYS) if (p.get(k) !== null && p.get(k) !== "") out[k] = p.get(k);
  // a hand-edited link: a moment that is no number is left out, a view that is none or
  // needs a run it was not given is the runs list
  for (const k of ["t", "w0", "w1"]) if (out[k] !== undefined && !/^\d+$/.test(out[k])) delete out[k];
  if (!out.view) out.view = out.run ? "timeline" : "runs";
  if (ALIASES[out.view]) out.view = ALIASES[out.view];
  if (!VIEWS[out.view]) {  // said, not silently replaced
    out.unknown = `no view "${out.view}" in the cinema: the views are ${Object.keys(VIEWS).join(", ")}` +
      ` (calltree opens flame); showing ${out.run ? "the timeline" : "the runs"}`;
    out.view = out.run ? "timeline" : "runs";
  }
  if (!out.run && out.view !== "runs" && out.view !== "query") out.needsRun = true;  // the latest
  return out;
}

function writeHash(state) {
  const p = new URLSearchParams();
  for (const k of KEYS) if (state[k] !== undefined && state[k] !== null && state[k] !== "") p.set(k, state[k]);
  return "#" + p.toString();
}

// go({t: "...", view: "state"}) changes the state; null removes a key.
export function go(patch, { replace = false } = {}) {
  const next = { ...S };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null || v === undefined) delete next[k]; else next[k] = String(v);
  }
  if ("t" in patch && !("ev" in patch)) delete next.ev;  // the event a link named is at its t
  const hash = writeHash(next);
  if (hash === location.hash) return;
  if (replace) history.replaceState(null, "", hash); else history.pushState(null, "", hash);
  route();
}

// ---- the server
export async function api(path, params = {}, { signal } = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const res = await fetch(`/api/${path}${q.toString() ? "?" + q : ""}`, { signal, credentials: "same-origin" });
  const body = await res.json().catch((err) => {
    if (err.name === "AbortError" || signal?.aborted) throw err; // a newer window was asked for: not an error
    return { error: `the server answered ${res.status} without JSON` };
  });
  if (!res.ok || body.error) {
    const err = new Error(body.error || `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return body;
}

// a POST of a JSON body (the daemon's actions); an error answer throws, naming it
export async function post(path, body) {
  const res = await fetch(`/api/${path}`, {
    method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  const answer = await res.json().catch(() => ({ error: `the server answered ${res.status} without JSON` }));
  if (!res.ok || answer.error) {
    const err = new Error(answer.error || `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return answer;
}

// ---- times: the server sends nanoseconds since 1970 as strings; views draw offsets
// (Numbers, exact to the nanosecond within 104 days) from the run's first event.
export const rel = (ts) => (ts === null || ts === undefined ? null : Number(BigInt(ts) - ctx.base));
export const abs = (off) => (ctx.base + BigInt(Math.round(off))).toString();

export function fmtDur(ns) {
  if (ns === null || ns === undefined || isNaN(ns)) return "–";
  const a = Math.abs(ns);
  if (a < 1e3) return `${Math.round(ns)} ns`;
  if (a < 1e6) return `${(ns / 1e3).toFixed(a < 1e4 ? 2 : 1)} µs`;
  if (a < 1e9) return `${(ns / 1e6).toFixed(a < 1e7 ? 2 : 1)} ms`;
  return `${(ns / 1e9).toFixed(a < 1e10 ? 3 : 1)} s`;
}

// a size in bytes as a person reads it: 512 B, 3.0 KB, 20.0 MB (binary units, as du -h)
export function fmtBytes(n) {
  if (n === null || n === undefined || isNaN(n) || n < 0) return "?";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(1)} ${units[i]}`;
}

export function fmtClock(ts) {
  if (ts === null || ts === undefined) return "–";
  const big = BigInt(ts);
  const ms = Number(big / 1000000n);
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  const micro = Number((big / 1000n) % 1000000n);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(micro, 6)}`;
}

export const fmtRel = (off) => (off < 0 ? "−" + fmtDur(-off) : "+" + fmtDur(off));

export function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// a run's crashes as its header says them: a child's crash and its exit are marks of one
// crash (a crash marked without an exit, an untraced callback's, counts as one)
function crashCount(marks) {
  const exits = marks.filter((m) => m.kind === "exit").length;
  const n = exits || marks.length;
  return `${n} crash${n === 1 ? "" : "es"}`;
}

export function short(fn) {
  // the last two names, a nested function's `<locals>` not counted: `room.<locals>.go` of
  // `app.Gateway.room.<locals>.go` (`<locals>.go` said nothing of whose it is); a script's
  // own function by its name (`create_customer` of `__main__.create_customer`)
  const parts = String(fn).split(".");
  let from = parts.length - 2;
  if (from > 0 && parts[from] === "<locals>") from -= 1;
  if (from >= 0 && parts[from] === "__main__") from += 1;  // the script's own: its name says it
  return from > 0 ? parts.slice(from).join(".") : fn;
}

// a function's own name: `lookup` of `__main__.lookup`, `g` of `<locals>.g`
export function lastName(name) { return name.slice(name.lastIndexOf(".") + 1); }

let toastTimer = null;
// a line at the bottom for a few seconds: red for what went wrong, dim for a notice
export function toast(message, notice = false) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.classList.toggle("notice", notice);
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), 6000);
}

export function errorBox(host, err) {
  host.innerHTML = `<div class="error-box" data-error>${esc(err.message || err)}</div>`;
}

// a stable colour per function name
const PALETTE = ["#3d59a1", "#2f6f73", "#6b4f9e", "#4b6a2f", "#8a5a2b", "#315f8f", "#7a3f64", "#3f6f55", "#5a5f99", "#6a6a2a"];
// faint diagonal stripes: a call suspended at an await or a yield (a pattern per canvas)
const stripesOf = new WeakMap();
export function suspendedStripes(g) {
  let pattern = stripesOf.get(g);
  if (pattern) return pattern;
  const tile = document.createElement("canvas");
  tile.width = tile.height = 6;
  const t = tile.getContext("2d");
  t.strokeStyle = "#c0c6d438"; t.lineWidth = 1;
  t.beginPath(); t.moveTo(0, 0); t.lineTo(6, 6); t.moveTo(-1, 5); t.lineTo(1, 7); t.moveTo(5, -1); t.lineTo(7, 1); t.stroke();
  pattern = g.createPattern(tile, "repeat");
  stripesOf.set(g, pattern);
  return pattern;
}

export function colourOf(name) {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) | 0;
  return PALETTE[Math.abs(h) % PALETTE.length];
}

// ---- the run: its overview is loaded once per run, then views draw
async function loadRun(run) {
  if (ctx.overview && (ctx.overview.run.id === run || ctx.overview.run.id.startsWith(run))) return ctx.overview;
  const ov = await api(`runs/${encodeURIComponent(run)}/overview`, { partial: 1 });
  ctx.overview = ov;
  ctx.base = BigInt(ov.first_ts ?? 0);
  startLive(ov);
  watchReading(ov);
  return ov;
}

// ---- a run the server is still reading: the timeline shows what is read, the rest
// marked, and "reading N %" here; once all is read the view refreshes itself
function watchReading(ov) {
  clearTimeout(ctx.readingTimer);
  showReading(ov.reading);
  if (!ov.reading) return;
  const id = ov.run.id;
  const mine = () => ctx.overview && ctx.overview.run.id === id;
  const poll = async () => {
    if (!mine()) return;
    let next;
    try {
      next = await api(`runs/${id}/overview`, { partial: 1 });
    } catch (err) {
      toast(err.message);
      ctx.readingTimer = setTimeout(poll, 2000);
      return;
    }
    if (!mine()) return;
    if (next.reading) {
      ctx.overview.reading = next.reading;
      showReading(next.reading);
      if (current && current.inst && current.inst.reading) current.inst.reading(next.reading);
      ctx.readingTimer = setTimeout(poll, 600);
      return;
    }
    refreshOverview(next);
    showReading(null);
    refreshView();
  };
  ctx.readingTimer = setTimeout(poll, 400);
}

function showReading(reading) {
  const el = document.getElementById("reading");
  if (!reading) { el.hidden = true; el.textContent = ""; return; }
  el.hidden = false;
  el.textContent = `reading ${Math.floor(reading.fraction * 100)} %`;
  el.title = `the server has read ${reading.events_read.toLocaleString()} of ${reading.events.toLocaleString()} events of this run; the timeline shows what is read`;
}

// the view drawn again with the whole run (a view without refresh() is mounted again)
function refreshView() {
  if (current && current.inst && current.inst.refresh) { current.inst.refresh(); return; }
  if (current && current.inst && current.inst.destroy) current.inst.destroy();
  current = null;
  routed = null;
  route();
}

export function refreshOverview(ov) {
  ctx.overview = ov;
  showRunInfo();
}

function showRunInfo() {
  const ov = ctx.overview;
  const el = document.getElementById("runinfo");
  if (!ov || !S.run) { el.textContent = ""; return; }
  const r = ov.run;
  el.innerHTML = `run <b>${esc(r.short_id)}</b> · ${esc(r.command_text)} · ${ov.events.toLocaleString()} events · ` +
    `${fmtDur(r.duration_ns)}` + (r.dropped ? ` · <span class="bad">${r.dropped} dropped</span>` : "") +
    (ov.crashes.length ? ` · <span class="bad">${crashCount(ov.crashes)}</span>` : "");
}

function showCursor() {
  const el = document.getElementById("cursorinfo");
  el.textContent = S.t && ctx.overview ? `▸ cursor ${fmtClock(S.t)}  (${fmtRel(rel(S.t))})` : "";
}

// ---- live mode: the server tells us when the run grows (at most ~10 times a second)
function startLive(ov) {
  if (ctx.live) { ctx.live.close(); ctx.live = null; }
  const badge = document.getElementById("live");
  badge.hidden = true;
  if (!ov.run.open) return;
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/api/runs/${ov.run.id}/live`);
  ctx.live = ws;
  badge.hidden = false;
  badge.textContent = "● live";
  ws.onmessage = (e) => {
    const u = JSON.parse(e.data);
    if (u.type !== "grew") return;
    ctx.overview.events = u.events;
    ctx.overview.last_ts = u.last_ts;
    ctx.overview.run.open = u.open;
    showRunInfo();
    badge.textContent = u.open ? `● live · ${u.events.toLocaleString()} events` : "■ ended";
    if (current && current.inst && current.inst.grew) current.inst.grew(u);
  };
  ws.onclose = () => { if (ctx.live === ws) badge.textContent = "■ ended"; };
}

export function setLiveBadge(following) {
  const badge = document.getElementById("live");
  badge.classList.toggle("away", !following);
  badge.title = following ? "following the end" : "scrolled away: not following the end";
}

// ---- routing
let routed = null;
async function route() {
  if (location.hash === routed) return;
  routed = location.hash;
  const prev = { ...S };
  for (const k of Object.keys(S)) delete S[k];
  Object.assign(S, readHash());
  if (S.unknown) { toast(S.unknown); delete S.unknown; }
  if (S.needsRun) {  // a view of a run given none: the latest, as the command line reads
    delete S.needsRun;
    let latest = null;
    try { latest = (await api("runs")).runs[0] || null; } catch (err) { /* said below */ }
    if (latest) {
      toast(`no run given: showing the latest, ${latest.short_id} (${latest.command_text})`, true);
      routed = null;
      go({ run: latest.id }, { replace: true });
      return;
    }
    toast(`the ${S.view} view needs a run (run=…), and none is recorded here yet`);
    S.view = "runs";
  }
  const main = document.getElementById("main");
  for (const a of document.querySelectorAll("#tabs a")) {
    a.classList.toggle("on", a.dataset.view === S.view);
    a.classList.toggle("off", a.dataset.view !== "runs" && a.dataset.view !== "query" && !S.run);
    const p = { ...S, view: a.dataset.view };
    a.href = writeHash(p);
  }
  const mod = VIEWS[S.view] || runs;
  try {
    if (S.run) await loadRun(S.run); else ctx.overview = null;
  } catch (err) {
    current = null;
    errorBox(main, err);
    showRunInfo();
    return;
  }
  showRunInfo();
  showCursor();
  if (current && current.mod === mod && current.run === S.run && current.inst && current.inst.update) {
    current.inst.update(S, prev);
    return;
  }
  if (current && current.inst && current.inst.destroy) current.inst.destroy();
  main.innerHTML = "";
  current = { mod, run: S.run, inst: null };
  try {
    current.inst = await mod.mount(main, S);
  } catch (err) {
    errorBox(main, err);
  }
}

window.addEventListener("popstate", route);
window.addEventListener("hashchange", route);
route();
