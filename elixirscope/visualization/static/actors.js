// Actor lanes: a sequence chart (one column per actor, one row per message or mark, in
// order of time): arrows from send to receive, labelled; crashes and restarts marked; the
// supervision tree beside it with restart counts. Served by a daemon, the daemon's live
// tree and its actions come first (daemon.js).
import { mountDaemon } from "./daemon.js";
import { api, ctx, S, go, rel, abs, fmtRel, fmtDur, fmtClock, esc, errorBox } from "./app.js";

const WIDE = 190, NARROW = 120, ROWH = 30, TOP = 46, LEFT = 96;
let COL = WIDE;  // narrower, down to NARROW, when that fits every actor in the pane

export async function mount(host, state) {
  host.innerHTML = `<div class="view"><div class="grow pane" id="ac-chart"><div class="empty">reading messages…</div></div>
    <div class="side pane"><div id="ac-daemon" hidden></div><h2>Supervision tree (recorded)</h2><div id="ac-tree" class="tree"></div>
    <h2>Messages</h2><div id="ac-count" class="dim mono"></div>
    <label id="ac-registry-box" class="dim mono" hidden><input type="checkbox" id="ac-registry"> <span></span></label></div></div>`;
  const view = { update: (s, p) => { if (s.t !== p.t) drawCursor(host, s); } };
  mountDaemon(host.querySelector("#ac-daemon"));
  // the whole run when it fits in one answer, else the timeline's window; the program's
  // calls to the registry (whereis, register) only when asked for
  const windowed = ctx.overview.messages > 2000 && state.w0 && state.w1;
  const read = async (registry) => {
    let d;
    const params = { ...(windowed ? { t0: state.w0, t1: state.w1 } : {}), registry: registry ? 1 : 0 };
    try { d = await api(`runs/${ctx.overview.run.id}/messages`, params); } catch (err) { errorBox(host.querySelector("#ac-chart"), err); return; }
    draw(host, d, state);
    const box = host.querySelector("#ac-registry-box");
    box.hidden = !d.registry_calls;
    box.querySelector("span").textContent = `show the ${d.registry_calls} calls to the registry (whereis, register)`;
    box.querySelector("input").checked = d.registry_shown;
  };
  host.querySelector("#ac-registry").onchange = (e) => read(e.target.checked);
  await read(false);
  return view;
}

function draw(host, d, state) {
  const lanes = [...d.lanes].sort((a, b) => (b === "(program)") - (a === "(program)"));
  const chart = host.querySelector("#ac-chart");
  if (!lanes.length || (!d.messages.length && !d.marks.length)) {
    // actors that only changed state (a WebSocket handler's) have no row here: say where they are
    const named = lanes.filter((l) => l !== "(program)");
    chart.innerHTML = named.length
      ? `<div class="empty">${named.length} actor${named.length === 1 ? "" : "s"} recorded (${esc(named.slice(0, 3).join(", "))}${named.length > 3 ? ", …" : ""}), with no messages between them, crashes or restarts in this window: their state changes are in the State view and on the timeline</div>`
      : `<div class="empty">no actors recorded in this run: the GenServers of <code>elixirscope.runtime</code> show here, their messages, crashes and restarts (their state changes in the State view). A plain Thespian <code>Actor</code> shows here too (under <code>elixirscope run</code>, <code>integrations.thespian</code>).</div>`;
    host.querySelector("#ac-tree").innerHTML = tree(d.tree);
    return;
  }
  const room = (chart.clientWidth || 1000) - LEFT - 48;
  COL = Math.max(NARROW, Math.min(WIDE, Math.floor(room / lanes.length)));
  const col = new Map(lanes.map((l, i) => [l, i]));
  const rows = [];
  for (const m of d.messages) rows.push({ kind: "msg", ts: m.send_ts, m });
  for (const k of d.marks) rows.push({ kind: k.kind, ts: k.ts, k });
  rows.sort((a, b) => { const x = BigInt(a.ts) - BigInt(b.ts); return x < 0n ? -1 : x > 0n ? 1 : 0; });
  // the heads in an SVG of their own that stays on top while the rows scroll under it
  // as wide as the pane at least: a mark's label beside the rightmost lane is not clipped
  const W = Math.max(LEFT + lanes.length * COL + 20, (chart.clientWidth || 0) - 8), H = rows.length * ROWH + 20;
  const cx = (name) => LEFT + (col.get(name) ?? 0) * COL + COL / 2;
  let head = `<svg class="seq" width="${W}" height="${TOP}" xmlns="http://www.w3.org/2000/svg">`;
  let svg = `<svg class="seq" width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg">
    <defs><marker id="arr" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
    <path d="M0,0 L10,5 L0,10 z" fill="#7aa2f7"/></marker>
    <marker id="arr-lost" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#5b6377"/></marker></defs>`;
  lanes.forEach((l, i) => {
    const x = LEFT + i * COL + COL / 2;
    head += `<line class="lifeline" x1="${x}" y1="${TOP - 10}" x2="${x}" y2="${TOP}"/>
      <rect x="${x - COL / 2 + 8}" y="8" width="${COL - 16}" height="24" rx="4" fill="#1c212c" stroke="#2a3040"/>
      <text class="lane-head" x="${x}" y="24" text-anchor="middle">${esc(head_label(l))}</text><title>${esc(l)}</title>`;
    svg += `<line class="lifeline" x1="${x}" y1="0" x2="${x}" y2="${H - 10}"/>`;
  });
  head += `</svg>`;
  rows.forEach((r, i) => {
    const y = i * ROWH + ROWH / 2;
    svg += `<g class="row" data-ts="${r.ts}"><rect class="hit" x="0" y="${y - ROWH / 2}" width="${W}" height="${ROWH}" fill="transparent"/>
      <text class="row-time" x="6" y="${y + 4}">${esc(fmtRel(rel(r.ts)))}</text>`;
    if (r.kind === "msg") {
      const m = r.m, x1 = cx(m.from), x2 = cx(m.to);
      const lost = m.receive_ts === null;
      const dir = x2 >= x1 ? 1 : -1;
      const self = x1 === x2;
      const path = self ? `M${x1},${y - 6} C${x1 + 50},${y - 14} ${x1 + 50},${y + 10} ${x1 + 4},${y + 6}`
        : `M${x1 + dir * 4},${y} L${x2 - dir * 6},${y}`;
      svg += `<path class="msg-arrow${lost ? " lost" : ""}${m.dropped ? " dropped" : ""}${m.unsent ? " unsent" : ""}" data-message="${esc(m.message_id)}" d="${path}" fill="none" marker-end="url(#${lost ? "arr-lost" : "arr"})"/>
        <text class="msg-label" x="${(x1 + x2) / 2 + (self ? 40 : 0)}" y="${y - 5}" text-anchor="middle">${esc(m.label.length > 46 ? m.label.slice(0, 45) + "…" : m.label)}</text>
        <title>${esc(m.from)} → ${esc(m.to)}: ${esc(m.label)}\n${m.unsent ? "received " + fmtClock(m.receive_ts) + "\nno recorded process sent it: Thespian's own, or from outside the recording" : "sent " + fmtClock(m.send_ts) + (lost ? (m.dropped ? "\nnever delivered: the runtime dropped it (" + esc(m.dropped) + ")" : "\nno receive recorded") : "\nreceived after " + fmtDur(rel(m.receive_ts) - rel(m.send_ts)))}</title>`;
    } else {
      const k = r.k, x = cx(k.actor);
      const cls = `${k.kind}-mark`;
      if (k.kind === "crash") svg += `<path class="${cls}" d="M${x - 7},${y - 7} L${x + 7},${y + 7} M${x + 7},${y - 7} L${x - 7},${y + 7}" stroke="#f7768e" stroke-width="3"/>`;
      else if (k.kind === "raised") svg += `<path class="${cls}" d="M${x - 6},${y - 5} L${x + 6},${y - 5} L${x},${y + 6} z" fill="#ff9e64"/>`;
      else if (k.kind === "restart") svg += `<circle class="${cls}" cx="${x}" cy="${y}" r="6"/>`;
      else if (k.kind === "exit") svg += `<rect class="${cls}" x="${x - 6}" y="${y - 6}" width="12" height="12"/>`;
      else if (k.kind === "stop") svg += `<rect class="${cls}" x="${x - 4}" y="${y - 4}" width="8" height="8" fill="#8b93a7"/>`;
      else svg += `<circle class="${cls}" cx="${x}" cy="${y}" r="4"/>`;
      svg += `<text class="msg-label" x="${x + 12}" y="${y + 4}" fill="${k.kind === "crash" ? "#f7768e" : k.kind === "raised" ? "#ff9e64" : ""}">${esc(k.label.length > 60 ? k.label.slice(0, 59) + "…" : k.label)}</text><title>${esc(k.label)}</title>`;
    }
    svg += `</g>`;
  });
  svg += `<line class="cursor" id="ac-cursor" x1="0" x2="${W}" y1="-10" y2="-10"/></svg>`;
  chart.innerHTML = `<div class="seq-head">${head}</div>${svg}`;
  chart.__rows = rows;
  for (const g of chart.querySelectorAll("g.row")) g.addEventListener("click", () => go({ t: g.dataset.ts }));
  host.querySelector("#ac-count").textContent = `${d.messages.length} shown` +
    (d.left_out ? `, ${d.left_out} more in the window` : "") + ` · ${d.messages.filter((m) => m.receive_ts === null).length} without a recorded receive` +
    (d.messages.some((m) => m.dropped) ? ` (${d.messages.filter((m) => m.dropped).length} dropped undelivered by the runtime, red)` : "") +
    (d.messages.some((m) => m.unsent) ? ` · ${d.messages.filter((m) => m.unsent).length} without a recorded send (dotted)` : "");
  host.querySelector("#ac-tree").innerHTML = tree(d.tree);
  drawCursor(host, state);
}

// a lane's name within its head: a plain Thespian actor's (`Ledger@ActorAddr-/A~a~a`) as
// class@address without Thespian's prefix, so its class stays in view; the rest cut at the left
function head_label(l) {
  const room = Math.floor(COL / 7.5);
  const name = l.includes("@ActorAddr-") ? l.replace("@ActorAddr-", "@") : l;
  return name.length > room ? "…" + name.slice(-room + 1) : name;
}

function tree(nodes) {
  if (!nodes.length) return `<span class="dim">no supervisor recorded</span>`;
  // gone: crashed (red), or stopped normally by its supervisor (dim)
  return "<ul>" + nodes.map((n) => `<li class="${n.alive ? "" : n.exits ? "dead" : "stopped"}">${n.children.length ? "▾" : "•"} ${esc(n.path)}
    ${n.restarts ? `<span class="pill orange restarts" data-path="${esc(n.path)}">↻ ${n.restarts}</span>` : ""}
    ${n.exits ? `<span class="pill red" title="${esc(n.last_reason || "")}">✖ ${n.exits}</span>` : ""}
    ${n.stops && !n.exits ? `<span class="pill dim" title="${esc(n.last_reason || "")}">■ stopped</span>` : ""}
    ${n.children.length ? tree(n.children) : ""}</li>`).join("") + "</ul>";
}

function drawCursor(host, state) {
  const chart = host.querySelector("#ac-chart");
  const line = host.querySelector("#ac-cursor");
  if (!line || !chart.__rows) return;
  if (!state.t) { line.setAttribute("y1", -10); line.setAttribute("y2", -10); return; }
  const t = BigInt(state.t);
  let i = chart.__rows.findIndex((r) => BigInt(r.ts) > t);
  if (i < 0) i = chart.__rows.length;
  const y = i * ROWH;
  line.setAttribute("y1", y); line.setAttribute("y2", y);
}
