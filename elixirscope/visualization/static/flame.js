// Call tree / flame graph: stacks merged by function path, width by total time; a table
// of the functions with the most self time beside. The whole run, or one chain.
import { api, ctx, S, go, fmtDur, esc, short, lastName, colourOf, suspendedStripes, errorBox } from "./app.js";

const H = 19;

export async function mount(host, state) {
  host.innerHTML = `<div class="view"><div class="grow tl-wrap">
      <div class="tl-tools"><span id="fl-title"></span><span class="sp"></span><button id="fl-all">whole run</button><button id="fl-up">⤴ zoom out</button></div>
      <div class="grow flame-canvas"><canvas id="fl"></canvas><div class="tip" hidden></div></div></div>
    <div class="side pane"><h2>Most self time</h2><div id="fl-self"></div></div></div>`;
  const v = { focus: 0, nodes: null, update: (s, p) => { if (s.chain !== p.chain) load(host, s, v); } };
  host.querySelector("#fl-all").onclick = () => go({ chain: null });
  host.querySelector("#fl-up").onclick = () => { if (v.nodes) focus(host, v, v.nodes[v.focus].parent >= 0 ? v.nodes[v.focus].parent : 0); };
  await load(host, state, v);
  window.addEventListener("resize", () => paint(host, v));
  return v;
}

async function load(host, state, v) {
  let d;
  try { d = await api(`runs/${ctx.overview.run.id}/calltree`, { chain: state.chain }); }
  catch (err) { errorBox(host.querySelector(".flame-canvas"), err); return; }
  const byId = new Map();
  for (const n of d.nodes) { n.children = []; byId.set(n.id, n); }
  for (const n of d.nodes) if (n.parent >= 0 && byId.has(n.parent)) byId.get(n.parent).children.push(n);
  v.nodes = Object.fromEntries(d.nodes.map((n) => [n.id, n]));
  v.title = (d.chain ? `chain ${d.chain.slice(0, 12)}` : "whole run") +
    ` · ${d.calls.toLocaleString()} calls · ${fmtDur(v.nodes[0].total)} in its top-level calls` +
    // concurrent ones (an event loop's tasks, threads) add up to more than the run took
    (!d.chain && v.nodes[0].total > Number(BigInt(ctx.overview.last_ts) - BigInt(ctx.overview.first_ts)) ? " (some ran at once)" : "") +
    (d.folded ? ` · ${d.folded} small nodes left out` : "");
  focus(host, v, 0);
  bind(host, v);
}

// the graph drawn from node `id` down; the title says where, the table counts only under it
function focus(host, v, id) {
  v.focus = id;
  const at = v.nodes[id];
  host.querySelector("#fl-title").textContent = v.title +
    (id ? ` · in ${short(at.function)} (${fmtDur(at.total)}, ${at.calls.toLocaleString()} call${at.calls === 1 ? "" : "s"})` : "");
  const agg = new Map();
  const walk = (n) => {
    if (n.id && !n.suspended) {  // time suspended is no function's
      const a = agg.get(n.function) || { self: 0, total: 0, calls: 0 };
      a.self += n.self; a.total += n.total; a.calls += n.calls; agg.set(n.function, a);
    }
    for (const k of n.children) walk(k);
  };
  walk(at);
  const top = [...agg.entries()].sort((a, b) => b[1].self - a[1].self).slice(0, 40);
  host.querySelector("#fl-self").innerHTML = `<table class="fl-table"><thead><tr><th>function</th><th class="num">self</th><th class="num">calls</th></tr></thead><tbody>` +
    top.map(([f, a]) => `<tr title="${esc(f)} · total ${fmtDur(a.total)}"><td><bdi dir="ltr">${esc(short(f))}</bdi></td><td class="num">${fmtDur(a.self)}</td><td class="num">${a.calls.toLocaleString()}</td></tr>`).join("") + "</tbody></table>";
  paint(host, v);
}

function layout(v, w) {
  const out = [];
  const root = v.nodes[v.focus];
  const walk = (n, x, width, depth) => {
    out.push({ n, x, w: width, depth });
    let cx = x;
    const kids = [...n.children].sort((a, b) => b.total - a.total);
    // callees that ran at once (an event loop's tasks) may add up to more than their
    // caller's time: then they share its width in proportion, never wider than it
    const whole = Math.max(n.total, kids.reduce((sum, k) => sum + k.total, 0));
    for (const k of kids) {
      const kw = whole ? (k.total / whole) * width : 0;
      if (kw >= 0.5) walk(k, cx, kw, depth + 1);
      cx += kw;
    }
  };
  walk(root, 0, w, 0);
  return out;
}

function paint(host, v) {
  const c = host.querySelector("#fl");
  if (!c || !v.nodes) return;
  const dpr = window.devicePixelRatio || 1, w = c.clientWidth, h = c.clientHeight;
  c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
  const g = c.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.fillStyle = "#0f1117"; g.fillRect(0, 0, w, h);
  v.boxes = layout(v, w);
  g.font = "11px ui-monospace, monospace"; g.textBaseline = "middle";
  for (const b of v.boxes) {
    const y = 6 + b.depth * H;
    g.fillStyle = b.n.id === 0 ? "#2a3040" : b.n.suspended ? "#1b2130" : b.n.errors ? "#8c3545" : colourOf(b.n.function);
    g.fillRect(b.x, y, Math.max(0.5, b.w - 1), H - 2);
    if (b.n.suspended) { g.fillStyle = suspendedStripes(g); g.fillRect(b.x, y, Math.max(0.5, b.w - 1), H - 2); }
    if (b.w > 30) {
      g.fillStyle = "#e6e9f0";
      const name = b.n.id === 0 ? "all" : b.n.suspended ? "suspended" : short(b.n.function);
      const own = lastName(name);
      const label = [`${name} ${fmtDur(b.n.total)}`, name, `${own} ${fmtDur(b.n.total)}`, own].find((t) => g.measureText(t).width <= b.w - 8);
      if (label) g.fillText(label, b.x + 4, y + H / 2 - 1);
    }
  }
  c.dataset.nodes = v.boxes.length;
}

function bind(host, v) {
  const c = host.querySelector("#fl"), tip = host.querySelector(".tip");
  if (c.__bound) return;
  c.__bound = true;
  const hit = (e) => {
    const r = c.getBoundingClientRect(), x = e.clientX - r.left, y = e.clientY - r.top;
    return (v.boxes || []).find((b) => x >= b.x && x < b.x + b.w && y >= 6 + b.depth * H && y < 6 + (b.depth + 1) * H);
  };
  c.addEventListener("mousemove", (e) => {
    const b = hit(e);
    if (!b) { tip.hidden = true; return; }
    const r = c.getBoundingClientRect();
    tip.hidden = false; tip.style.left = Math.min(e.clientX - r.left + 12, c.clientWidth - 360) + "px"; tip.style.top = e.clientY - r.top + 12 + "px";
    tip.textContent = b.n.suspended
      ? `suspended ${fmtDur(b.n.total)}: at its awaits or yields, no recorded callee running (a lock, a sleep, I/O)`
      : `${b.n.function}\ntotal ${fmtDur(b.n.total)} · self ${fmtDur(b.n.self)} · ${b.n.calls} call${b.n.calls === 1 ? "" : "s"}` + (b.n.errors ? ` · ${b.n.errors} raised` : "");
  });
  c.addEventListener("mouseleave", () => (tip.hidden = true));
  c.addEventListener("click", (e) => { const b = hit(e); if (b && !b.n.suspended) focus(host, v, b.n.id); });
}
