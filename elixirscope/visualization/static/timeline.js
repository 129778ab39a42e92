// Timeline: a lane per thread of each process, calls as nested slices on a canvas.
// Wheel zooms (whole run down to a microsecond), drag pans, the scrubber moves the
// cursor. Only the visible window is asked of the server, which summarises it when it
// holds too many calls; while a run records, the view follows its end unless scrolled away.
// While the server is still reading the run, the view shows what is read (the rest of the
// run's extent hatched, "not read yet") and draws itself again as more is read.
// Lanes with nothing in the window (a threaded server's finished request threads) fold
// into a thin strip each run of them; a link naming an event (ev=PRODUCER:ID) selects the
// call that holds it and scrolls its lane into view. A lane's head is its label's strip,
// then its marks' (never drawn over each other); the overview strip above the axis shows
// the whole run: the calls running and the errors along it, the window outlined.
import { api, ctx, S, go, rel, abs, fmtDur, fmtRel, fmtClock, fmtBytes, esc, short, lastName, colourOf, suspendedStripes, toast, setLiveBadge } from "./app.js";

// a lane: its label's strip (LABEL), its marks' (HEAD - LABEL), then its calls' rows
const ROW = 17, LABEL = 16, HEAD = 30, AXIS = 22, GAP = 8, MIN_SPAN = 500, STRIP = 16;
const MARK_COLOURS = { crash: "#f7768e", exit: "#ff9e64", stop: "#8b93a7", restart: "#9ece6a", spawn: "#2ac3de", state: "#7aa2f7",
  error: "#ff9e64", raised: "#ff9e64", cancelled: "#8b93a7", request: "#bb9af7", query: "#2ac3de", http: "#bb9af7", process: "#e0af68" };

export async function mount(host, state) {
  const ov = ctx.overview;
  host.innerHTML = `
  <div class="view">
    <div class="grow tl-wrap">
      <div class="tl-tools"><span id="tl-window"></span><span class="sp"></span>
        <span id="tl-detail"></span>
        <button id="tl-idle" hidden title="lanes with no call or mark in this window are folded into strips"></button>
        <button id="tl-all" title="the whole run">⤢ whole run</button>
        <button id="tl-cursor" title="centre the window on the cursor">◎ cursor</button></div>
      <div class="scrubber" title="click or drag: move the cursor"><canvas id="tl-scrub"></canvas></div>
      <div class="tl-canvas"><canvas id="tl-main"></canvas><div class="tip" hidden></div></div>
    </div>
    <div class="side pane" id="tl-side">
      <h2>Selection</h2><div id="tl-sel" class="dim">click a call</div>
      <h2>Crashes &amp; restarts</h2><div id="tl-marks" class="marklist"></div>
      <h2>Legend</h2><div class="dim mono" style="line-height:1.8">
        <span style="color:#f7768e">▼</span> crash &nbsp; <span style="color:#ff9e64">▼</span> exit / error &nbsp; <span style="color:#8b93a7">■</span> stopped (normal, shutdown) &nbsp; <span style="color:#8b93a7">▼</span> call cancelled &nbsp;
        <span style="color:#9ece6a">●</span> restart &nbsp; <span style="color:#2ac3de">●</span> spawn &nbsp; <span style="color:#7aa2f7">◆</span> state change<br>
        <span style="color:#bb9af7">▮</span> request / http &nbsp; <span style="color:#2ac3de">▮</span> query<br>
        <span style="color:#e0af68">▶</span> process started (┆ to its lanes; click: its calls) &nbsp; <span style="color:#e0af68">▷</span> work handed to a process pool (click: its calls)<br>
        <span class="wait-swatch"></span> a call suspended at an await / yield<br>
        wheel: zoom · drag: pan · click: cursor</div>
    </div>
  </div>`;
  const tl = new Timeline(host, ov);
  tl.fromState(state);
  return tl;
}

class Timeline {
  constructor(host, ov) {
    this.host = host;
    this.ov = ov;
    this.canvas = host.querySelector("#tl-main");
    this.scrub = host.querySelector("#tl-scrub");
    this.tip = host.querySelector(".tip");
    this.data = null;
    this.laneDepth = new Map();
    this.scrollY = 0;
    this.following = !!ov.run.open;
    this.pending = null;
    this.seq = 0;
    this.stats = { fetches: 0, lastFetchMs: 0, lastDrawMs: 0 };
    window.__esTimeline = this;
    this.bind();
    this.showMarks();
    this.resize = () => this.draw();
    window.addEventListener("resize", this.resize);
  }

  end() { return Math.max(rel(ctx.overview.last_ts), 1); }

  fromState(state) {
    const end = this.end();
    const from = Math.max(0, rel(ctx.overview.active_ts ?? ctx.overview.first_ts));
    const pad = Math.max((end - from) * 0.02, 1000);
    this.v0 = state.w0 ? rel(state.w0) : from - pad;
    this.v1 = state.w1 ? rel(state.w1) : end + pad;
    if (!(this.v1 > this.v0)) { this.v0 = 0; this.v1 = end; }
    this.cursor = state.t ? rel(state.t) : null;
    this.sel = state.sel || null;
    if (state.t && !state.w0) {  // a link to a moment: zoomed in around it, not the whole run
      const span = Math.min(this.v1 - this.v0, Math.max(MIN_SPAN * 20, (end - from) * 0.05));
      this.v0 = this.cursor - span / 2; this.v1 = this.cursor + span / 2;
      this.remember();
    }
    this.fetch();
    this.draw();
    this.showSel();
    if (state.ev && state.t) this.seek(state);
  }

  update(state, prev) {
    const moved = state.w0 !== prev.w0 || state.w1 !== prev.w1;
    if (moved && state.w0 && state.w1 && (rel(state.w0) !== Math.round(this.v0) || rel(state.w1) !== Math.round(this.v1))) {
      this.v0 = rel(state.w0); this.v1 = rel(state.w1); this.fetch();
    }
    this.cursor = state.t ? rel(state.t) : null;
    if (state.t !== prev.t && this.cursor !== null && (this.cursor < this.v0 || this.cursor > this.v1)) this.centreOn(this.cursor, true);
    this.sel = state.sel || null;
    this.draw();
    this.showSel();
    if (state.ev && state.t && (state.ev !== prev.ev || state.t !== prev.t)) this.seek(state);
  }

  // a link naming an event (ev=PRODUCER:ID, t its time): the server says which call holds
  // it (the call itself, or the one it happened in) and on which lane; that call is
  // selected, the window zoomed in until it is wide enough to see and click, and its lane
  // scrolled into view once the window's lanes are laid out
  async seek(state) {
    const key = `${state.ev}@${state.t}`;
    this.seeking = key;
    let m;
    try {
      m = await api(`runs/${ctx.overview.run.id}/moment`, { ev: state.ev, t: state.t });
    } catch (err) {
      if (this.seeking === key) toast(`the link's event ${state.ev}: ${err.message}`);
      return;
    }
    if (this.seeking !== key || window.__esTimeline !== this) return;
    this.moment = m;
    this.scrollTarget = m.lane;
    const s = m.slice;
    if (!s) {
      this.fetch();
      return;
    }
    s.s = rel(s.start); s.e = rel(s.end);
    this.selected = s;
    this.mark = null;
    const at = rel(m.ts), lo = Math.min(s.s, at), hi = Math.max(s.e, at);
    const span = this.v1 - this.v0;
    if (!state.w0 && Math.max(s.e - s.s, 1) < span / 40) {  // too narrow to see: zoomed in on it
      const next = Math.max((s.e - s.s) * 24, (hi - lo) * 1.3, MIN_SPAN * 4);
      this.v0 = (lo + hi) / 2 - next / 2; this.v1 = this.v0 + next;
    } else if (!state.w0 && hi - lo > span * 0.9) {  // wider than the window: all of it shown
      const pad = (hi - lo) * 0.06;
      this.v0 = lo - pad; this.v1 = hi + pad;
    } else if (hi < this.v0 || lo > this.v1) {
      this.centreOn((lo + hi) / 2, false);
    }
    this.fetch();
    go({ sel: `call:${s.row}`, w0: abs(this.v0), w1: abs(this.v1) }, { replace: true });
  }

  // the lane of the event a link named, scrolled into view (once its window is drawn)
  reveal() {
    if (this.scrollTarget === undefined || this.scrollTarget === null || !this.data) return;
    const lane = this.lanes().find((l) => l.index === this.scrollTarget);
    this.scrollTarget = null;
    if (!lane) return;
    const h = this.canvas.clientHeight;
    if (lane.y < AXIS || lane.y + lane.h > h) this.scrollY = Math.max(0, lane.y + this.scrollY - AXIS - 4);
    this.canvas.dataset.revealed = lane.index;
    this.draw();
  }

  // the server read more of the run: the window asked again; all of it: the marks too
  reading() { this.fetch(); }

  // the run read whole: its overview strip (the whole run's activity) drawn at once, the
  // window asked for again
  refresh() {
    this.ov = ctx.overview;
    this.showMarks();
    this.drawScrub();
    this.fetch();
  }

  // the spans of the run's extent (offsets) not read yet, while it is read
  unread() {
    const r = this.data && this.data.reading;
    if (!r) return [];
    const out = [];
    let at = rel(ctx.overview.first_ts);
    for (const [a, b] of r.read) {
      if (rel(a) > at) out.push([at, rel(a)]);
      at = Math.max(at, rel(b));
    }
    if (this.end() > at) out.push([at, this.end()]);
    return out;
  }

  destroy() {
    window.removeEventListener("resize", this.resize);
    if (this.pending) this.pending.abort();
    if (window.__esTimeline === this) window.__esTimeline = null;
  }

  // ---- the window
  centreOn(off, fetch = true) {
    const span = this.v1 - this.v0;
    this.v0 = off - span / 2; this.v1 = off + span / 2;
    if (fetch) { this.fetch(); this.remember(); }
  }

  zoom(factor, frac = 0.5) {
    const span = this.v1 - this.v0;
    const whole = this.end() * 1.2 + 1000;
    const next = Math.min(Math.max(span * factor, MIN_SPAN), whole);
    const at = this.v0 + span * frac;
    this.v0 = at - next * frac; this.v1 = this.v0 + next;
    this.after();
  }

  pan(frac) {
    const d = (this.v1 - this.v0) * frac;
    this.v0 += d; this.v1 += d;
    this.after();
  }

  after() {
    const end = this.end();
    this.following = !!ctx.overview.run.open && this.v1 >= end - (this.v1 - this.v0) * 0.02;
    if (ctx.overview.run.open) setLiveBadge(this.following);
    this.draw();
    this.fetch();
    this.remember();
  }

  remember() {
    clearTimeout(this.rememberTimer);
    this.rememberTimer = setTimeout(() => go({ w0: abs(this.v0), w1: abs(this.v1) }, { replace: true }), 250);
  }

  grew() {
    this.followActivity();
    if (!this.following) { this.drawScrub(); return; }
    const span = this.v1 - this.v0;
    this.v1 = this.end() + span * 0.01; this.v0 = this.v1 - span;
    this.fetch();
    this.draw();
  }

  // a recording run's overview strip follows it: its histogram asked again, at most every 2 s
  async followActivity() {
    const now = performance.now();
    if (this.activityAsked && now - this.activityAsked < 2000) return;
    this.activityAsked = now;
    const id = ctx.overview.run.id;
    try {
      const ov = await api(`runs/${id}/overview`, { partial: 1 });
      if (ctx.overview.run.id !== id) return;
      ctx.overview.activity = ov.activity;
      this.drawScrub();
    } catch (err) { /* the next growth asks again */ }
  }

  // ---- the server: only the visible window, the newest request wins
  fetch() {
    this.wantFetch = true;
    cancelAnimationFrame(this.fetchFrame);
    this.fetchFrame = requestAnimationFrame(() => this.doFetch());
  }

  async doFetch() {
    if (this.pending) this.pending.abort();
    this.wantFetch = false;
    const ctl = new AbortController();
    this.pending = ctl;
    const seq = ++this.seq;
    const began = performance.now();
    const w = this.canvas.clientWidth || 1200;
    try {
      const d = await api(`runs/${ctx.overview.run.id}/timeline`, {
        t0: abs(Math.floor(this.v0)), t1: abs(Math.ceil(this.v1)), px: Math.max(100, Math.round(w)), partial: 1,
      }, { signal: ctl.signal });
      if (seq !== this.seq) return;
      for (const s of d.slices) {
        s.s = rel(s.start); s.e = rel(s.end);
        if (s.started_by) { s.started_by.s = rel(s.started_by.start); s.started_by.e = rel(s.started_by.end); }
      }
      for (const s of d.summaries) { s.s = rel(s.start); s.e = rel(s.end); }
      for (const m of d.marks) m.x = rel(m.ts);
      for (const s of [...d.slices, ...d.summaries]) {
        this.laneDepth.set(s.lane, Math.max(this.laneDepth.get(s.lane) ?? 0, s.tier));
      }
      this.data = d;
      this.stats.fetches++;
      this.stats.lastFetchMs = performance.now() - began;
      this.pending = null;
      this.painted = seq;
      this.reveal();
      this.draw();
      this.showSel();  // a call selected by the link the view opened with: its data is here now
    } catch (err) {
      if (err.name !== "AbortError") toast(err.message);
    }
  }

  // ---- layout
  // a lane per thread of each process (calls), then one per actor (its state changes,
  // crashes and restarts); the thread lanes with nothing in the window (no call, no mark)
  // folded, each run of them one strip, unless shown (the strip or the tool's button)
  lanes() {
    const lanes = (this.data ? this.data.lanes : ctx.overview.lanes) || [];
    const busy = this.showIdle ? null : this.busyLanes();
    let y = AXIS - this.scrollY;
    const out = [];
    let idle = [];
    const fold = () => {
      if (!idle.length) return;
      const n = idle.length;
      const which = n > 1 ? `${idle[0].label} … ${idle[n - 1].name}` : idle[0].label;
      out.push({ strip: true, lanes: idle, index: `idle:${out.length}`, y, top: y, h: STRIP,
        label: `${n} lane${n > 1 ? "s" : ""} idle in this window · ${which}` });
      y += STRIP;
      idle = [];
    };
    for (const lane of lanes) {
      if (busy && !busy.has(lane.index)) { idle.push(lane); continue; }
      fold();
      const depth = (this.laneDepth.get(lane.index) ?? 0) + 1;
      const l = { ...lane, y, top: y + HEAD, h: HEAD + depth * ROW + GAP };
      out.push(l);
      y += l.h;
    }
    fold();
    for (const actor of ctx.overview.actors.filter((a) => a !== "(program)")) {
      out.push({ actor, label: `actor ${actor}`, index: `actor:${actor}`, y, top: y + HEAD, h: HEAD + ROW + GAP });
      y += HEAD + ROW + GAP;
    }
    return out;
  }

  // the lanes with a call, a summary or a mark in the window drawn (null: none drawn yet)
  busyLanes() {
    const d = this.data;
    if (!d) return null;
    if (!d.busy) {
      d.busy = new Set();
      for (const s of d.slices) d.busy.add(s.lane);
      for (const s of d.summaries) d.busy.add(s.lane);
      for (const m of d.marks) d.busy.add(m.lane);
    }
    return d.busy;
  }

  idleCount() {
    const busy = this.busyLanes();
    return busy ? ((this.data && this.data.lanes) || []).filter((l) => !busy.has(l.index)).length : 0;
  }

  // lanes taller than the canvas: a scrollbar on its right edge (drag it, or drag the
  // canvas up and down), the lanes kept from scrolling past their end
  paintScrollbar(g, lanes, w, h) {
    const last = lanes[lanes.length - 1];
    const total = last ? last.y + last.h + this.scrollY - AXIS : 0, seen = h - AXIS;
    this.vbar = null;
    if (total <= seen) { if (this.scrollY) { this.scrollY = 0; this.draw(); } return; }
    const max = total - seen;
    if (this.scrollY > max) { this.scrollY = max; this.draw(); return; }
    const thumb = Math.max(24, (seen * seen) / total);
    const y = AXIS + (this.scrollY / max) * (seen - thumb);
    g.fillStyle = "#1b2030"; g.fillRect(w - 9, AXIS, 9, seen);
    g.fillStyle = "#4a5266"; g.fillRect(w - 8, y, 7, thumb);
    this.vbar = { x: w - 10, y, thumb, seen, max };
  }

  // the marks in each lane's head: errors, restarts, state changes, processes started
  paintMarks(g, d, lanes, byLane, w) {
    for (const m of d.marks) {
      const l = byLane.get(m.lane); if (!l) continue;
      const x = this.x(m.x, w);
      if (x < -5 || x > w + 5) continue;
      g.fillStyle = MARK_COLOURS[m.kind] || "#888";
      const y = l.y + LABEL + 8;  // the glyphs' strip, under the label's
      if (m.kind === "crash" || m.kind === "exit" || m.kind === "error" || m.kind === "raised" || m.kind === "cancelled") {
        g.beginPath(); g.moveTo(x - 5, y - 5); g.lineTo(x + 5, y - 5); g.lineTo(x, y + 3); g.fill();
        if (m.kind === "crash") { g.globalAlpha = 0.5; g.fillRect(x - 0.5, l.top, 1, l.h - HEAD - GAP); g.globalAlpha = 1; }
      } else if (m.kind === "restart" || m.kind === "spawn") {  // the legend's ●, not a query's ▮
        g.beginPath(); g.arc(x, y - 1, 4, 0, Math.PI * 2); g.fill();
      } else if (m.kind === "state") {
        g.beginPath(); g.moveTo(x, y - 5); g.lineTo(x + 3.5, y - 1); g.lineTo(x, y + 3); g.lineTo(x - 3.5, y - 1); g.fill();
      } else if (m.kind === "pool_task") {  // ▷: handed to a process pool (its chain: the task's calls)
        g.strokeStyle = MARK_COLOURS.process; g.lineWidth = 1.5;
        g.beginPath(); g.moveTo(x - 3, y - 6); g.lineTo(x + 5, y - 1); g.lineTo(x - 3, y + 4); g.closePath(); g.stroke();
        g.lineWidth = 1;
      } else if (m.kind === "process") {
        g.beginPath(); g.moveTo(x - 3, y - 6); g.lineTo(x + 5, y - 1); g.lineTo(x - 3, y + 4); g.fill();
        // ┆ down (or up) to the first lane of the process it started
        const pid = /\(pid (\d+)\)$/.exec(m.label);
        const child = pid && lanes.find((c) => !c.actor && String(c.pid) === pid[1] && c.producer !== l.producer);
        if (child) {
          const y2 = child.y + LABEL + 7;  // its marks' strip
          g.save(); g.strokeStyle = MARK_COLOURS.process; g.setLineDash([3, 3]); g.globalAlpha = 0.8;
          g.beginPath(); g.moveTo(x, y + 4); g.lineTo(x, y2); g.lineTo(x + 8, y2); g.stroke(); g.restore();
        }
      } else {
        g.fillRect(x - 1, y - 5, 3, 8);
      }
    }
  }

  x(off, w) { return ((off - this.v0) / (this.v1 - this.v0)) * w; }

  // ---- drawing
  draw() {
    cancelAnimationFrame(this.drawFrame);
    this.drawFrame = requestAnimationFrame(() => this.paint());
  }

  paint() {
    const began = performance.now();
    const c = this.canvas, dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (!w || !h) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); }
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = "#0f1117"; g.fillRect(0, 0, w, h);
    const lanes = this.lanes();
    const byLane = new Map(lanes.map((l) => [l.index, l]));
    // lanes
    for (const [i, l] of lanes.entries()) {
      if (l.strip) {  // folded idle lanes: a thin band, dashed
        g.fillStyle = "#0b0d12"; g.fillRect(0, l.y, w, l.h);
        g.save(); g.strokeStyle = "#2a3040"; g.setLineDash([3, 4]);
        g.beginPath(); g.moveTo(0, l.y + 0.5); g.lineTo(w, l.y + 0.5); g.moveTo(0, l.y + l.h - 0.5); g.lineTo(w, l.y + l.h - 0.5); g.stroke();
        g.restore();
        continue;
      }
      g.fillStyle = i % 2 ? "#11141c" : "#0f1117";
      g.fillRect(0, l.y, w, l.h);
      g.strokeStyle = "#1e2433"; g.beginPath(); g.moveTo(0, l.y + l.h - 0.5); g.lineTo(w, l.y + l.h - 0.5); g.stroke();
    }
    const d = this.data;
    let drawn = 0;
    if (d) {
      g.font = "11px ui-monospace, monospace";
      g.textBaseline = "middle";
      for (const s of d.summaries) {
        const l = byLane.get(s.lane); if (!l) continue;
        const x0 = Math.max(-2, this.x(s.s, w)), x1 = Math.min(w + 2, this.x(s.e, w));
        const y = l.top + s.tier * ROW;
        g.fillStyle = colourOf(s.function); g.globalAlpha = 0.55;
        g.fillRect(x0, y + 1, Math.max(1, x1 - x0), ROW - 2); g.globalAlpha = 1;
        if (s.errors) { g.fillStyle = "#f7768e"; g.fillRect(x0, y + ROW - 3, Math.max(1, x1 - x0), 2); }
        if (x1 - x0 > 40) {
          g.fillStyle = "#c0c6d4";
          const name = short(s.function);
          fitText(g, fitting(g, [`${s.count}× ${name}`, `${s.count}× ${lastName(name)}`], x1 - x0 - 8), x0 + 4, y + ROW / 2, x1 - x0 - 8);
        }
        drawn++;
      }
      for (const s of d.slices) {
        const l = byLane.get(s.lane); if (!l) continue;
        const x0 = Math.max(-2, this.x(s.s, w)), x1 = Math.min(w + 2, this.x(s.e, w));
        const y = l.top + s.tier * ROW;
        if (y + ROW < 0 || y > h) continue;
        const selected = this.sel === `call:${s.row}`;
        // a call that raised, or a request answered with a server error (a 504 the handler
        // chose raised nothing), in red
        const failed = s.status === "raised" || (s.request && verdict(s.request).cls === "bad");
        g.fillStyle = failed ? "#8c3545" : colourOf(s.function);
        g.fillRect(x0, y + 1, Math.max(1, x1 - x0 - 0.5), ROW - 2);
        // its time suspended at awaits and yields: the bar darkened and hatched there
        for (const [a, b] of s.gaps || []) {
          const g0 = Math.max(x0, this.x(s.s + a, w)), g1 = Math.min(x1, this.x(s.s + b, w));
          if (g1 - g0 < 1) continue;
          g.fillStyle = "rgba(12,14,20,0.5)"; g.fillRect(g0, y + 1, g1 - g0, ROW - 2);
          g.fillStyle = suspendedStripes(g); g.fillRect(g0, y + 1, g1 - g0, ROW - 2);
        }
        if (selected) { g.strokeStyle = "#e0af68"; g.lineWidth = 2; g.strokeRect(x0 + 1, y + 2, Math.max(1, x1 - x0 - 2), ROW - 4); g.lineWidth = 1; }
        const room = Math.min(x1, w) - Math.max(x0, 0) - 8;
        if (room > 24) {
          g.fillStyle = "#e6e9f0";
          const asked = d.requests && d.requests[s.row];  // a web request's bar: its method and path
          const name = asked || short(s.function);
          fitText(g, fitting(g, [`${name}  ${fmtDur(s.e - s.s)}`, name, asked ? name : lastName(name)], room), Math.max(x0, 0) + 4, y + ROW / 2, room);
        }
        drawn++;
      }
      // actor lanes: each change a tick, each crash a red band to the restart
      for (const m of d.marks) {
        if (!m.actor) continue;
        const l = byLane.get(`actor:${m.actor}`); if (!l) continue;
        const x = this.x(m.x, w);
        if (x < -40 || x > w + 5) continue;
        const y = l.top;
        g.fillStyle = MARK_COLOURS[m.kind] || "#888";
        if (m.kind === "crash" || m.kind === "exit" || m.kind === "raised") {
          g.beginPath(); g.moveTo(x - 6, y + 1); g.lineTo(x + 6, y + 1); g.lineTo(x, y + ROW - 2); g.fill();
        } else if (m.kind === "stop") {  // stopped normally (shutdown): a grey square, no crash
          g.fillRect(x - 4, y + ROW / 2 - 4, 8, 8);
        } else if (m.kind === "restart" || m.kind === "spawn") {
          g.beginPath(); g.arc(x, y + ROW / 2, 5, 0, Math.PI * 2); g.fill();
        } else {  // a state change: the legend's diamond
          const c = y + ROW / 2;
          g.beginPath(); g.moveTo(x, c - 6); g.lineTo(x + 4.5, c); g.lineTo(x, c + 6); g.lineTo(x - 4.5, c); g.fill();
        }
      }
    }
    // the selected task's link back to the call that started it (which had returned when
    // it began: it is drawn as a root), as Perfetto draws a flow
    const chosen = d && d.slices.find((s) => this.sel === `call:${s.row}` && s.started_by);
    const from = chosen && byLane.get(chosen.started_by.lane), to = chosen && byLane.get(chosen.lane);
    if (from && to) {
      const up = chosen.started_by;
      const xa = this.x(up.e, w), ya = from.top + up.tier * ROW + ROW / 2;
      const xb = this.x(chosen.s, w), yb = to.top + chosen.tier * ROW + ROW / 2;
      g.save(); g.strokeStyle = "#e0af68"; g.fillStyle = "#e0af68"; g.setLineDash([4, 3]);
      g.beginPath(); g.moveTo(xa, ya); g.bezierCurveTo(xa + 30, ya, xb - 30, yb, xb, yb); g.stroke();
      g.setLineDash([]); g.beginPath(); g.arc(xa, ya, 3, 0, Math.PI * 2); g.fill();
      g.beginPath(); g.moveTo(xb, yb); g.lineTo(xb - 7, yb - 4); g.lineTo(xb - 7, yb + 4); g.fill();
      g.restore();
    }
    // what the server has not read yet: hatched, said so
    const unread = this.unread();
    for (const [a, b] of unread) {
      const x0 = Math.max(0, this.x(a, w)), x1 = Math.min(w, this.x(b, w));
      if (x1 <= x0) continue;
      g.fillStyle = hatch(g); g.fillRect(x0, AXIS, x1 - x0, h - AXIS);
      if (x1 - x0 > 90) {
        g.fillStyle = "#e0af68"; g.font = "12px ui-monospace, monospace"; g.textBaseline = "middle";
        g.fillText("not read yet", x0 + 10, h - 14);
      }
    }
    this.canvas.dataset.unread = unread.length;
    // lane labels, in their own strip at the top of the lane (the marks' is under it)
    g.font = "600 11px ui-monospace, monospace"; g.textBaseline = "alphabetic";
    for (const l of lanes) {
      if (l.strip) {
        g.font = "italic 10px ui-monospace, monospace";
        g.fillStyle = "#6b7388"; g.fillText(`▸ ${l.label}`, 8, l.y + 11.5);
        g.font = "600 11px ui-monospace, monospace";
        continue;
      }
      const tw = g.measureText(l.label).width;
      g.fillStyle = "#0f1117e6"; g.fillRect(0, l.y + 1, tw + 16, LABEL - 1);
      g.fillStyle = "#8b93a7"; g.fillText(l.label, 8, l.y + 12);
    }
    if (d) this.paintMarks(g, d, lanes, byLane, w);
    // axis
    g.fillStyle = "#161a23"; g.fillRect(0, 0, w, AXIS);
    g.strokeStyle = "#2a3040"; g.beginPath(); g.moveTo(0, AXIS - 0.5); g.lineTo(w, AXIS - 0.5); g.stroke();
    const span = this.v1 - this.v0;
    g.fillStyle = "#8b93a7"; g.font = "10px ui-monospace, monospace"; g.textBaseline = "middle";
    // ticks far enough apart for their labels: a deep zoom's are long (+876,417,500 ns)
    let step = niceStep(span / Math.max(1, w / 110));
    for (let i = 0; i < 8; i++) {
      const widest = Math.max(g.measureText(axisLabel(this.v0, step)).width, g.measureText(axisLabel(this.v1, step)).width);
      if (step * w / Math.max(span, 1e-9) >= widest + 16) break;
      step = niceStep(step * 1.01);
    }
    let drawnTo = -Infinity;  // the right end of the last label drawn
    for (let t = Math.ceil(this.v0 / step) * step; t <= this.v1; t += step) {
      const x = this.x(t, w);
      g.fillRect(x, AXIS - 6, 1, 6);
      const label = axisLabel(t, step);  // the last one left of its tick when it would be cut
      const room = w - 12 - (x + 3);
      const lw = g.measureText(label).width;
      const at = lw <= room ? x + 3 : x - 3 - lw;
      if (at >= drawnTo + 6) {  // never over the one before
        g.fillText(label, at, AXIS / 2 - 1);
        drawnTo = at + lw;
      }
      g.globalAlpha = 0.06; g.fillRect(x, AXIS, 1, h); g.globalAlpha = 1;
    }
    // cursor
    if (this.cursor !== null) {
      const x = this.x(this.cursor, w);
      g.fillStyle = "#e0af68"; g.fillRect(x - 0.5, 0, 1.5, h);
      g.beginPath(); g.moveTo(x - 5, 0); g.lineTo(x + 5, 0); g.lineTo(x, 7); g.fill();
    }
    this.paintScrollbar(g, lanes, w, h);
    this.canvas.dataset.drawn = drawn;
    const idle = this.idleCount();
    this.canvas.dataset.idle = this.showIdle ? 0 : idle;
    this.canvas.dataset.strips = lanes.filter((l) => l.strip).length;
    const idleButton = this.host.querySelector("#tl-idle");
    idleButton.hidden = !idle;
    idleButton.textContent = this.showIdle ? `fold ${idle} idle lane${idle > 1 ? "s" : ""}` : `show ${idle} idle lane${idle > 1 ? "s" : ""}`;
    this.canvas.dataset.detail = d ? d.detail : "";
    this.host.querySelector("#tl-window").textContent = `window ${axisLabel(this.v0, span / 10)} … ${axisLabel(this.v1, span / 10)}  (${fmtDur(span)})`;
    this.host.querySelector("#tl-detail").textContent = d
      ? `${d.calls_in_window.toLocaleString()} calls in view` + (d.detail === "summary" ? " · summarised" : "") +
        (d.calls_left_out ? ` · ${d.calls_left_out.toLocaleString()} below row ${d.deepest_shown + 1} not drawn` : "") : "loading…";
    this.drawScrub();
    this.stats.lastDrawMs = performance.now() - began;
    if (d && this.stats.firstPaint === undefined) this.stats.firstPaint = performance.now();
    if (d && !d.reading && this.stats.wholePaint === undefined) this.stats.wholePaint = performance.now();
    if (d && !this.wantFetch && this.painted === this.seq && this.waiting) {
      const waiting = this.waiting; this.waiting = [];
      for (const resolve of waiting) resolve(performance.now());
    }
  }

  // resolves once the window asked last is drawn with its data (for measurements)
  settled() {
    return new Promise((resolve) => {
      this.waiting = [...(this.waiting || []), resolve];
      this.draw();
    });
  }

  drawScrub() {
    const c = this.scrub, dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (!w) return;
    c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = "#161a23"; g.fillRect(0, 0, w, h);
    const end = this.end();
    const X = (off) => (off / end) * (w - 2) + 1;
    this.paintActivity(g, X, h);
    for (const m of ctx.overview.crashes) { g.fillStyle = "#f7768e"; g.fillRect(X(rel(m.ts)), 3, 2, h - 6); }
    for (const m of ctx.overview.restarts) { g.fillStyle = "#9ece6a"; g.fillRect(X(rel(m.ts)), 3, 2, h - 6); }
    for (const [u0, u1] of this.unread()) { g.fillStyle = hatch(g); g.fillRect(X(u0), 0, Math.max(1, X(u1) - X(u0)), h); }
    const a = X(this.v0), b = X(this.v1);
    g.fillStyle = "#7aa2f71c"; g.fillRect(a, 1, Math.max(2, b - a), h - 2);
    g.strokeStyle = "#7aa2f7"; g.strokeRect(a + 0.5, 1.5, Math.max(2, b - a) - 1, h - 3);
    if (this.cursor !== null) { g.fillStyle = "#e0af68"; g.fillRect(X(this.cursor) - 1, 0, 2, h); }
  }

  // the whole run's activity under the window's outline: the calls running along it (a
  // bar per pixel column, the most of the bins it covers, log-scaled: a burst and a lull
  // both show) and its errors in red (5xx answers, uncaught exceptions, crashes), from
  // the overview's histogram
  paintActivity(g, X, h) {
    const act = ctx.overview.activity, c = this.scrub;
    c.dataset.busy = c.dataset.failed = 0;
    if (!act || !act.calls.length) return;
    const n = act.calls.length, a0 = rel(act.first_ts), per = (rel(act.last_ts) - a0) / n;
    const calls = new Map(), errors = new Set();
    act.calls.forEach((count, i) => {
      if (!count) return;
      const x0 = Math.floor(X(a0 + i * per)), x1 = Math.max(x0 + 1, Math.floor(X(a0 + (i + 1) * per)));
      for (let x = x0; x < x1; x++) calls.set(x, Math.max(calls.get(x) || 0, count));
    });
    act.errors.forEach((count, i) => { if (count) errors.add(Math.floor(X(a0 + (i + 0.5) * per))); });
    const top = Math.log1p(Math.max(...calls.values(), 1)), room = h - 6;
    g.fillStyle = "#5a78c8";
    for (const [x, count] of calls) {
      const bar = Math.max(1, Math.round((room * Math.log1p(count)) / top));
      g.fillRect(x, h - 3 - bar, 1, bar);
    }
    g.fillStyle = "#f7768e";
    for (const x of errors) g.fillRect(x - 1, 2, 2, h - 4);
    c.dataset.busy = calls.size; c.dataset.failed = errors.size;
  }

  // ---- input
  bind() {
    const c = this.canvas;
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = c.getBoundingClientRect();
      const frac = (e.clientX - r.left) / r.width;
      if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) this.pan((e.deltaX || e.deltaY) / 800);
      else this.zoom(Math.pow(1.0015, e.deltaY), frac);
    }, { passive: false });
    let drag = null;
    c.addEventListener("pointerdown", (e) => {
      const r = c.getBoundingClientRect();
      const bar = this.vbar && e.clientX - r.left >= this.vbar.x ? this.vbar : null;
      drag = { x: e.clientX, y: e.clientY, v0: this.v0, v1: this.v1, sy: this.scrollY, moved: false, bar };
      c.setPointerCapture(e.pointerId);
    });
    c.addEventListener("pointermove", (e) => {
      if (!drag) { this.hover(e); return; }
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (drag.bar) {  // the scrollbar's thumb: the lanes move the other way, faster
        const b = drag.bar;
        drag.moved = true;
        this.scrollY = Math.min(b.max, Math.max(0, drag.sy + (dy * b.max) / Math.max(1, b.seen - b.thumb)));
        this.draw();
        return;
      }
      if (Math.abs(dx) + Math.abs(dy) > 3) { drag.moved = true; c.classList.add("drag"); this.tip.hidden = true; }
      if (!drag.moved) return;
      const per = (drag.v1 - drag.v0) / c.clientWidth;
      this.v0 = drag.v0 - dx * per; this.v1 = drag.v1 - dx * per;
      this.scrollY = Math.max(0, drag.sy - dy);
      this.draw();
    });
    c.addEventListener("pointerup", (e) => {
      c.classList.remove("drag");
      const d = drag; drag = null;
      if (!d) return;
      if (d.bar) return;
      if (d.moved) { this.after(); return; }
      this.click(e);
    });
    c.addEventListener("pointerleave", () => (this.tip.hidden = true));
    this.host.querySelector("#tl-all").onclick = () => {
      const end = this.end(); this.v0 = -end * 0.01; this.v1 = end * 1.01; this.after();
    };
    this.host.querySelector("#tl-idle").onclick = () => { this.showIdle = !this.showIdle; this.draw(); };
    this.host.querySelector("#tl-cursor").onclick = () => { if (this.cursor !== null) { this.centreOn(this.cursor); this.draw(); } };
    const scrub = (e) => {
      const r = this.scrub.getBoundingClientRect();
      const off = Math.max(0, Math.min(1, (e.clientX - r.left) / r.width)) * this.end();
      this.cursor = off;
      if (off < this.v0 || off > this.v1) this.centreOn(off);
      this.draw();
      return off;
    };
    let scrubbing = false;
    this.scrub.addEventListener("pointerdown", (e) => { scrubbing = true; this.scrub.setPointerCapture(e.pointerId); scrub(e); });
    this.scrub.addEventListener("pointermove", (e) => { if (scrubbing) scrub(e); });
    this.scrub.addEventListener("pointerup", (e) => {
      if (!scrubbing) return;
      scrubbing = false;
      go({ t: abs(scrub(e)), w0: abs(this.v0), w1: abs(this.v1) }, { replace: true });
    });
  }

  at(e) {
    const r = this.canvas.getBoundingClientRect();
    const px = e.clientX - r.left, py = e.clientY - r.top, w = r.width;
    const off = this.v0 + (px / w) * (this.v1 - this.v0);
    const lane = this.lanes().find((l) => py >= l.y && py < l.y + l.h);
    let hit = null, mark = null;
    if (lane && lane.strip) return { off, px, py, hit, mark, strip: lane };
    if (lane && this.data) {
      const tier = Math.floor((py - lane.top) / ROW);
      const tol = 2 * (this.v1 - this.v0) / w;
      const on = (s) => s.lane === lane.index && s.tier === tier;
      hit = this.data.slices.find((s) => on(s) && s.s <= off && off <= s.e) ||
        this.data.slices.find((s) => on(s) && s.s - tol <= off && off <= s.e + tol) ||
        this.data.summaries.find((s) => on(s) && s.s <= off && off <= s.e);
      if (lane.actor) {
        const near = 6 * (this.v1 - this.v0) / w;
        mark = this.data.marks.find((m) => m.actor === lane.actor && Math.abs(m.x - off) <= near);
      } else if (py >= lane.y + LABEL && py < lane.top + 2) {  // the marks' strip
        const near = 6 * (this.v1 - this.v0) / w;
        mark = this.data.marks.find((m) => m.lane === lane.index && Math.abs(m.x - off) <= near);
      }
    }
    return { off, px, py, hit, mark };
  }

  hover(e) {
    const { px, py, hit, mark, strip } = this.at(e);
    const tip = this.tip;
    if (!hit && !mark && !strip) { tip.hidden = true; return; }
    tip.hidden = false;
    tip.style.left = Math.min(px + 14, this.canvas.clientWidth - 340) + "px";
    tip.style.top = py + 14 + "px";
    if (strip) tip.textContent = `${strip.lanes.length} lane${strip.lanes.length > 1 ? "s" : ""} with no call or mark in this window:\n` +
      strip.lanes.slice(0, 8).map((l) => l.label).join("\n") + (strip.lanes.length > 8 ? "\n…" : "") + "\nclick: show every idle lane";
    else if (mark) tip.textContent = `${mark.kind.replace("_", " ")}: ${mark.label}\n${fmtClock(mark.ts)}`;
    else if (hit.count) tip.textContent = `${hit.count.toLocaleString()} calls (the longest ${hit.function})\n${fmtDur(hit.e - hit.s)} · zoom in for each`;
    else if (hit.request) tip.textContent = requestTip(hit);
    else tip.textContent = `${hit.function}\n${fmtDur(hit.e - hit.s)} · ${hit.status}${hit.chain ? "\nchain " + hit.chain.slice(0, 12) : ""}`;
  }

  click(e) {
    const { off, hit, mark, strip } = this.at(e);
    if (strip) { this.showIdle = true; this.draw(); return; }
    const t = mark ? mark.ts : abs(off);
    const patch = { t, w0: abs(this.v0), w1: abs(this.v1), ev: null };  // no longer the link's event
    this.mark = hit ? null : mark;  // a mark clicked: the selection pane says what it is
    if (hit && !hit.count) { patch.sel = `call:${hit.row}`; this.selected = hit; }
    else if (mark && mark.actor) patch.sel = `actor:${mark.actor}`;
    else if (mark && (mark.kind === "process" || mark.kind === "pool_task") && mark.chain) { go({ view: "flame", chain: mark.chain }); return; }
    else patch.sel = null;  // nothing, or a mark: the pane shows the mark
    if (hit && hit.count) { this.zoom(0.2, (off - this.v0) / (this.v1 - this.v0)); }
    go(patch);
  }

  showSel() {
    const el = this.host.querySelector("#tl-sel");
    const s = this.selected && this.sel === `call:${this.selected.row}` ? this.selected
      : this.data && this.sel ? this.data.slices.find((x) => `call:${x.row}` === this.sel) : null;
    if (!s && this.mark) {
      const m = this.mark;
      el.innerHTML = `<div class="kv"><div>mark</div><div>${esc(m.kind)}</div>
        <div data-what>what</div><div data-what>${esc(m.label)}</div><div>at</div><div>${fmtClock(m.ts)}</div>
        ${m.chain ? `<div>chain</div><div>${esc(m.chain.slice(0, 16))}</div>` : ""}</div>
        ${m.chain ? `<p><a id="tl-flame">call tree of this chain →</a></p>` : ""}`;
      const link = el.querySelector("#tl-flame");
      if (link) link.onclick = () => go({ view: "flame", chain: m.chain });
      if (m.kind === "query" || m.kind === "http") this.showMadeDetails(el, m);
      return;
    }
    if (!s) { el.innerHTML = `<span class="dim">click a call</span>`; return; }
    if (s.request) { this.showRequest(el, s); return; }
    el.innerHTML = `<div class="kv">
      <div>function</div><div>${esc(s.function)}</div>
      <div>duration</div><div>${fmtDur(s.e - s.s)}</div>
      ${s.self !== undefined ? `<div>self</div><div>${fmtDur(s.self)}</div>` : ""}
      ${s.suspended ? `<div>suspended</div><div>${fmtDur(s.suspended)} <span class="dim">at its awaits / yields (hatched)</span></div>` : ""}
      ${(s.waited_at || []).length ? `<div>waited at</div><div>${s.waited_at.map(([line, ns, awaited]) =>
        `${awaited ? "await" : "yield"} line ${line || "?"} · ${fmtDur(ns)}`).join("<br>")}</div>` : ""}
      <div>status</div><div class="${s.status === "raised" ? "bad" : ""}">${s.status}</div>
      <div>started</div><div>${fmtClock(s.start)}</div>
      <div>chain</div><div>${esc((s.chain || "–").slice(0, 16))}</div>
      ${s.started_by ? `<div>started by</div><div><a id="tl-starter">${esc(short(s.started_by.function))}</a>
        <span class="dim">· a task it left running: it had returned ${fmtDur(s.s - s.started_by.e)} before this began (the dashed link)</span></div>` : ""}
      ${s.left_running ? `<div>left running</div><div>${s.left_running} task${s.left_running > 1 ? "s" : ""}
        <span class="dim">begun after it returned, drawn apart (select one for its link here)</span></div>` : ""}</div>
      <p>${s.chain ? `<a id="tl-flame">call tree of this chain →</a>` : ""}</p>`;
    const link = el.querySelector("#tl-flame");
    if (link) link.onclick = () => go({ view: "flame", chain: s.chain });
    const starter = el.querySelector("#tl-starter");
    if (starter) starter.onclick = () => this.selectStarter(s);
    this.showCallDetails(el, s);
  }

  // a web request's own call: the request it is — every request runs in the same recorded
  // function, whose arguments and return value say nothing of it — and its waterfall
  showRequest(el, s) {
    const r = s.request, said = verdict(r);
    const url = (text) => esc(text).replaceAll("/", "/<wbr>");  // a long path breaks at its slashes
    const rows = [
      ["request", `${esc(r.method)} ${url(r.path)}${r.query ? `?${esc(r.query)}` : ""}`],
      ["route", r.route ? url(r.route) : `<span class="dim">${r.status === 404 ? "none matched" : "–"}</span>`],
      ["status", `<span class="${said.cls}">${r.status || "–"} · ${said.text}</span>`],
      ["duration", fmtDur(r.duration ?? s.e - s.s)],
      ...(r.error ? [["exception", `<span class="bad">${esc(r.error)}</span>`]] : []),
      ["sizes", `in ${fmtBytes(r.request_bytes)} · out ${fmtBytes(r.response_bytes)}`],
      ["client", esc(r.client || "–")],
      ["started", fmtClock(s.start)],
      ["chain", esc((s.chain || "–").slice(0, 16))],
    ];
    el.innerHTML = `<div class="kv" id="tl-request">${rows.map(([k, v]) => `<div>${k}</div><div data-k="${k}">${v}</div>`).join("")}</div>
      <p><a id="tl-waterfall">its waterfall →</a>${s.chain ? ` &nbsp; <a id="tl-flame">call tree of this chain →</a>` : ""}</p>`;
    el.querySelector("#tl-waterfall").onclick = () => go({ view: "requests", req: r.id, t: s.start });
    const link = el.querySelector("#tl-flame");
    if (link) link.onclick = () => go({ view: "flame", chain: s.chain });
  }

  // the call that started the selected task: selected, the window widened to show both
  selectStarter(s) {
    const up = s.started_by;
    const v0 = Math.min(this.v0, up.s - (s.e - up.s) * 0.05), v1 = Math.max(this.v1, s.e + (s.e - up.s) * 0.05);
    go({ sel: `call:${up.row}`, t: up.start, w0: abs(v0), w1: abs(v1), ev: null });
  }

  // the call's arguments, outcome (its return value, or the exception), line and task:
  // read by ESQL from the chunks around its start (the timeline's slices do not carry them)
  async showCallDetails(el, s) {
    const key = `call:${s.row}`;
    const lanes = (this.data && this.data.lanes) || ctx.overview.lanes || [];
    const lane = lanes.find((l) => l.index === s.lane);
    if (!lane) return;
    const more = document.createElement("div");
    more.className = "kv"; more.id = "tl-sel-more";
    more.innerHTML = `<div>args</div><div class="dim">reading…</div>`;
    el.querySelector(".kv").after(more);
    let row = this.detailsCache && this.detailsCache[key];
    if (!row) {
      const q = `args, outcome, location, task from calls where time >= ${s.start} and time <= ${s.start}` +
        ` and id = ${s.call_id} and producer = '${lane.producer.replaceAll("'", "''")}'`;
      try {
        const d = await api("esql", { q, run: ctx.overview.run.id });
        row = d.rows[0] ? Object.fromEntries(d.columns.map((c, i) => [c, d.rows[0][i]])) : {};
      } catch (err) { row = { error: err.message }; }
      this.detailsCache = { [key]: row };
    }
    if (this.sel !== key || !more.isConnected) return;  // another selection meanwhile
    if (row.args === null) row.args = "not recorded (the call's level is boundaries)";
    if (typeof row.outcome === "string" && row.outcome.trim() === "->") row.outcome = "returned (its value not recorded)";
    const shown = (v) => (v === null || v === undefined || v === "" ? "–"
      : typeof v === "object" && !Array.isArray(v) ? Object.entries(v).map(([k, x]) => `${k}=${x}`).join(", ") || "–"
      : typeof v === "object" ? JSON.stringify(v) : String(v));
    more.innerHTML = row.error ? `<div>details</div><div class="bad">${esc(row.error)}</div>` :
      ["args", "outcome", "location", "task"].filter((k) => k in row && (k !== "task" || row[k]))
        .map((k) => `<div>${k}</div><div class="${k === "outcome" && String(row[k]).startsWith("!!") ? "bad" : ""}">${esc(shown(row[k]))}</div>`).join("");
  }

  // a query's or an HTTP attempt's mark: how long it took, what came back and the
  // program's line that made it — read by ESQL by its event id (marks carry a label only)
  async showMadeDetails(el, m) {
    const more = document.createElement("div");
    more.className = "kv"; more.id = "tl-mark-more";
    more.innerHTML = `<div>details</div><div class="dim">reading…</div>`;
    el.querySelector(".kv").after(more);
    const fields = m.kind === "query" ? "statement, parameters, duration, rows, error, location, caller"
      : "url, method, code, attempt, duration, error, location, caller";
    const q = `${fields} from ${m.kind === "query" ? "queries" : "http"} where time >= ${m.ts} and time <= ${m.ts}` +
      ` and id = ${m.event_id} and producer = '${m.producer.replaceAll("'", "''")}'`;
    let row;
    try {
      const d = await api("esql", { q, run: ctx.overview.run.id });
      row = d.rows[0] ? Object.fromEntries(d.columns.map((c, i) => [c, d.rows[0][i]])) : null;
    } catch (err) { row = { error: err.message, failed: true }; }
    if (this.mark !== m || !more.isConnected) return;  // another selection meanwhile
    if (!row) { more.innerHTML = `<div>details</div><div class="dim">not found in the recording</div>`; return; }
    if (row.failed) { more.innerHTML = `<div>details</div><div class="bad">${esc(row.error)}</div>`; return; }
    const made = row.location ? `<span title="${esc(row.location)}">${esc(row.location.split("/").pop())}</span>` +
      (row.caller ? ` <span class="dim">in ${esc(short(row.caller))}</span>` : "")
      : `<span class="dim">not recorded (no line of the program's made it)</span>`;
    const rows = m.kind === "query" ? [
      ["statement", esc(row.statement)],
      ...(row.parameters ? [["parameters", esc(row.parameters)]] : []),
      ["took", fmtDur(row.duration)],
      ["rows", row.rows === null || row.rows < 0 ? "–" : row.rows.toLocaleString()],
    ] : [
      ["request", `${esc(row.method)} ${esc(row.url)}`],
      ["took", fmtDur(row.duration)],
      ["status", row.code ? String(row.code) : `<span class="bad">no response</span>`],
      ["attempt", String(row.attempt)],
    ];
    if (row.error) rows.push(["error", `<span class="bad">${esc(row.error)}</span>`]);
    rows.push(["made at", made]);
    more.innerHTML = rows.map(([k, v]) => `<div>${k}</div><div data-k="${k}">${v}</div>`).join("");
    for (const what of el.querySelectorAll("[data-what]")) what.remove();  // said whole above
  }

  showMarks() {
    const el = this.host.querySelector("#tl-marks");
    const marks = [...ctx.overview.crashes, ...ctx.overview.restarts].sort((a, b) => (BigInt(a.ts) < BigInt(b.ts) ? -1 : 1));
    if (!marks.length) { el.innerHTML = `<span class="dim">none recorded</span>`; return; }
    el.innerHTML = marks.map((m, i) => `<button class="mark-${m.kind}" data-i="${i}" title="${esc(m.label)}">
      ${m.kind === "restart" ? "↻" : "✖"} ${fmtRel(rel(m.ts))} ${esc(m.label)}</button>`).join("");
    for (const b of el.querySelectorAll("button")) {
      b.onclick = () => {
        const m = marks[+b.dataset.i];
        const span = Math.min(this.v1 - this.v0, Math.max(this.end() * 0.2, 2000));
        const at = rel(m.ts);
        this.v0 = at - span / 2; this.v1 = at + span / 2;
        this.fetch();
        go({ t: m.ts, w0: abs(this.v0), w1: abs(this.v1), sel: m.actor ? `actor:${m.actor}` : null, ev: null });
      };
    }
  }
}

// what a request's answer was: ok, a client's error (4xx), a server error (5xx, or no
// answer because its handler raised)
function verdict(r) {
  if (r.status >= 500 || (!r.status && r.error)) return { text: r.status ? "server error" : "no answer: its handler raised", cls: "bad" };
  if (r.status >= 400) return { text: "client error", cls: "dim" };
  if (!r.status) return { text: "no answer recorded", cls: "dim" };
  return { text: "ok", cls: "good" };
}

// a request's bar hovered: the request, not the function every request runs in
function requestTip(s) {
  const r = s.request;
  return `${r.method} ${r.path}${r.status ? ` -> ${r.status}` : ""}` + (r.route && r.route !== r.path ? `\nroute ${r.route}` : "") +
    `\n${fmtDur(r.duration ?? s.e - s.s)} · ${verdict(r).text}` + (r.error ? `\n${r.error}` : "");
}

// diagonal stripes: what is not read yet
function hatch(g) {
  const tile = document.createElement("canvas");
  tile.width = tile.height = 8;
  const t = tile.getContext("2d");
  t.strokeStyle = "#e0af6840"; t.lineWidth = 2;
  t.beginPath(); t.moveTo(0, 8); t.lineTo(8, 0); t.moveTo(-2, 2); t.lineTo(2, -2); t.moveTo(6, 10); t.lineTo(10, 6); t.stroke();
  return g.createPattern(tile, "repeat");
}

// the text, cut with an ellipsis to fit `room` pixels (never squeezed)
// the first of the labels (longest first) that fits whole, else the last, to be cut
function fitting(g, labels, room) {
  return labels.find((t) => g.measureText(t).width <= room) ?? labels[labels.length - 1];
}

function fitText(g, text, x, y, room) {
  if (g.measureText(text).width <= room) { g.fillText(text, x, y); return; }
  let lo = 0, hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (g.measureText(text.slice(0, mid) + "…").width <= room) lo = mid; else hi = mid - 1;
  }
  if (lo >= 2) g.fillText(text.slice(0, lo) + "…", x, y);
}

// a tick's offset in the unit of the ticks' step, precise enough to tell ticks apart
// at any zoom (+20,002 µs rather than +20.0 ms eight times over)
function axisLabel(t, step) {
  const [unit, size] = step >= 1e9 ? ["s", 1e9] : step >= 1e6 ? ["ms", 1e6] : step >= 1e3 ? ["µs", 1e3] : ["ns", 1];
  const decimals = Math.max(0, Math.ceil(-Math.log10(step / size) - 1e-9));
  const value = t / size;
  return (t < 0 ? "−" : "+") + Math.abs(value).toLocaleString("en-US", { minimumFractionDigits: decimals, maximumFractionDigits: decimals }) + " " + unit;
}

function niceStep(raw) {
  const p = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1))));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}
