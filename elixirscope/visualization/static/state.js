// State inspector: an actor's (or object's) state at the cursor, what its last change
// changed highlighted, step back / forward one change, and why a field holds its value.
import { api, ctx, S, go, rel, fmtRel, fmtClock, esc, errorBox } from "./app.js";

export async function mount(host, state) {
  host.innerHTML = `<div class="view">
    <div class="side left pane"><h2>Actors &amp; objects</h2><div id="st-targets" class="targets"></div></div>
    <div class="grow pane" id="st-main"><div class="empty">reading state…</div></div>
    <div class="side pane"><h2>What caused this change</h2><div id="st-cause" class="cause dim">–</div>
      <h2>Why is this value here</h2><div id="st-why" class="why dim">click a field of the state</div></div></div>`;
  const view = { last: null, update: (s, p) => load(host, s, view) };
  await load(host, state, view);
  return view;
}

function target(state) {
  if (state.sel && state.sel.startsWith("actor:")) return state.sel.slice(6);
  return null;
}

async function load(host, state, view) {
  const params = { target: target(state) };
  if (state.t) params.at = state.t;
  if (state.field) params.field = state.field;
  const key = JSON.stringify(params);
  if (view.last === key) return;
  view.last = key;
  let d;
  try {
    d = await api(`runs/${ctx.overview.run.id}/state`, params);
  } catch (err) {
    // before the target's first state: show its first change instead of an error
    if (params.at && /did not exist yet|no state yet/.test(err.message)) {
      try { d = await api(`runs/${ctx.overview.run.id}/state`, { target: params.target, change: 1 }); d.note = err.message; }
      catch (e2) { errorBox(host.querySelector("#st-main"), e2); return; }
    } else { errorBox(host.querySelector("#st-main"), err); return; }
  }
  render(host, d, state);
}

function render(host, d, state) {
  const targets = host.querySelector("#st-targets");
  targets.innerHTML = (d.targets || []).map((t) => `<a class="${t === d.target ? "on" : ""}" data-t="${esc(t)}">${esc(t)}</a>`).join("") ||
    `<span class="dim">no state recorded in this run</span>`;
  for (const a of targets.querySelectorAll("a")) a.onclick = () => go({ sel: `actor:${a.dataset.t}`, field: null });
  const main = host.querySelector("#st-main");
  if (!d.target) { main.innerHTML = `<div class="empty">No actor or object state was recorded in this run.</div>`; return; }
  const changed = new Map((d.diff || []).map((x) => [x.path, x]));
  // thousands of changes (an object a pool's threads write): those around this one, the
  // first and the last, the crashes; the others said by how many they are
  const near = shownChanges(d.history, d.change);
  const strip = near.map((h) => typeof h === "number" ? `<span class="dim" title="${h} changes not shown: step, or pick one below">… ${h} …</span>` :
    `<a class="${h.change === d.change ? "on" : ""} ${h.error ? "err" : ""}" data-ts="${h.ts}"
      title="${esc(h.callback)}${h.error ? " raised " + esc(h.error) : ""} at ${fmtRel(rel(h.ts))}${h.thread ? " on " + esc(h.thread) : ""}">${h.change}</a>`).join("");
  main.innerHTML = `
    <div class="st-head">
      <button id="st-prev" ${d.change <= 1 ? "disabled" : ""} title="the change before">◀ step back</button>
      <button id="st-next" ${d.change >= d.changes ? "disabled" : ""} title="the change after">step forward ▶</button>
      <span class="title" id="st-title">${esc(d.target)} · change ${d.change} of ${d.changes}</span>
      ${d.history.some((h) => h.error) ? `<button id="st-crash" title="the state just before the last crash">⇤ before the crash</button>` : ""}
    </div>
    <div class="mono dim" id="st-moment">${fmtClock(d.ts)} (${fmtRel(rel(d.ts))}) · ${esc(d.callback)}${d.message ? " " + esc(d.message) : ""}</div>
    ${d.raised ? `<div class="mono bad" id="st-error">raised ${esc(d.raised)}</div>` : ""}
    ${d.note ? `<div class="mono dim">${esc(d.note)}</div>` : ""}
    <div class="strip" title="every change of this target; click to go there">${strip}</div>
    <h2>State ${d.diff && d.diff.length ? `<span class="pill orange">${d.diff.length} changed by this change</span>` : d.change > 1 ? `<span class="pill">unchanged by this change</span>` : ""}</h2>
    <div class="st-tree" id="st-state">${node(d.state, changed)}</div>
    <h2>Every change ${near.length < d.history.length ? `<span class="pill">${d.history.length} in all: those around change ${d.change} shown</span>` : ""}</h2>
    <table class="st-history"><tbody>${near.map((h) => typeof h === "number" ? `<tr><td></td><td colspan="5" class="dim">… ${h} more changes</td></tr>` :
      `<tr class="pick ${h.change === d.change ? "on" : ""}" data-ts="${h.ts}">
      <td class="num dim">${h.change}</td><td class="dim">${fmtRel(rel(h.ts))}</td><td class="dim">${esc(h.thread || "")}</td><td>${esc(h.callback)}</td>
      <td title="${esc(h.message || "")}">${esc(h.message || "")}</td><td class="bad">${h.error ? "raised " + esc(h.error) : ""}</td></tr>`).join("")}</tbody></table>`;
  const at = (change) => { const h = d.history.find((x) => x.change === change); if (h) go({ t: h.ts, sel: `actor:${d.target}` }); };
  main.querySelector("#st-prev").onclick = () => at(d.change - 1);
  main.querySelector("#st-next").onclick = () => at(d.change + 1);
  const crash = main.querySelector("#st-crash");
  if (crash) crash.onclick = async () => {
    try {
      const b = await api(`runs/${ctx.overview.run.id}/state`, { target: d.target, before_crash: 1 });
      go({ t: b.ts, sel: `actor:${d.target}` });
    } catch (err) { errorBox(main, err); }
  };
  for (const tr of main.querySelectorAll(".st-history tr.pick")) tr.onclick = () => go({ t: tr.dataset.ts, sel: `actor:${d.target}` });
  for (const a of main.querySelectorAll(".strip a")) a.onclick = () => go({ t: a.dataset.ts, sel: `actor:${d.target}` });
  for (const k of main.querySelectorAll(".st-tree .k")) k.onclick = () => go({ field: k.dataset.path, sel: `actor:${d.target}`, t: d.ts });
  host.querySelector("#st-cause").textContent = d.cause ? d.cause.text : "–";
  host.querySelector("#st-why").textContent = d.why ? d.why.text : "click a field of the state";
}

const AROUND = 40;

// the changes shown of a long history: the first, the last, those within AROUND of the
// current one and every crash; a run of changes left out is its count (a number)
export function shownChanges(history, current) {
  if (history.length <= 2 * AROUND + 20) return history;
  const out = [];
  let gap = 0;
  for (const h of history) {
    const keep = h.change === 1 || h.change === history.length || h.error || Math.abs(h.change - current) <= AROUND;
    if (!keep) { gap++; continue; }
    if (gap) { out.push(gap); gap = 0; }
    out.push(h);
  }
  if (gap) out.push(gap);
  return out;
}

// a recorded value as the server draws it (state.render.outline), with the CLI's labels: a
// container by its type and size (`tuple (2)`, `dict (3)`; an object by its class's name) and
// its children by their keys as Python writes them (`'vin': `, `0: `, a field's `name=`);
// anything else by its text. Each key names its field's path for `why`.
const KINDS = { str: "v-str", int: "v-num", float: "v-num" };

function node(n, changed, depth = 0) {
  if (!n.children) return `<span class="${KINDS[n.type] || "v-other"}">${esc(n.text)}</span>`;
  const pad = "&nbsp;".repeat((depth + 1) * 2);
  const lines = n.children.map((c) => {
    const x = changed.get(c.path);
    const cls = x ? (x.kind === "added" ? "added" : "changed") : "";
    let old = x && x.kind === "changed" && x.old !== null && x.old.length <= 60 ? `<span class="old">${esc(x.old)}</span>` : "";
    if (x && x.note) old += ` <span class="dim note">${esc(x.note)}</span>`;  // Thespian's doing, not the actor's
    return `${pad}<span class="k" data-path="${esc(c.path)}">${esc(c.key)}</span>${esc(c.sep)}<span class="${cls}" data-changed="${x ? "1" : ""}">${node(c, changed, depth + 1)}</span>${old}`;
  });
  if (n.more) lines.push(`${pad}<span class="dim">… ${n.more} more</span>`);
  return `<span class="dim" title="${esc(n.type)}">${esc(n.label)}</span><br>${lines.join("<br>")}`;
}
