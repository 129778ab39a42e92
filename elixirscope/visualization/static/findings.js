// Findings: the run's defects as `elixirscope insights` finds them (the same detectors,
// order and folding), grouped by severity, as an issue list: each with what, where, how
// often, the fix, and links to its moment (the timeline, the call that holds it selected),
// its request (the waterfall) or its chain (the call tree).
import { api, ctx, go, esc, fmtClock, fmtRel, rel, errorBox } from "./app.js";

const SEVERITIES = ["high", "medium", "low"];

export async function mount(host, state) {
  host.innerHTML = `<div class="view"><div class="pane grow" id="fd"><div class="empty" id="fd-wait">running the detectors over this run…</div></div></div>`;
  const pane = host.querySelector("#fd");
  let d;
  try { d = await api(`runs/${ctx.overview.run.id}/findings`); }
  catch (err) { errorBox(pane, err); return {}; }
  pane.innerHTML = header(d) + failures(d) + (d.findings.length ? groups(d) : nothing(d));
  bind(pane, d);
  focus(pane, state.fd);
  return { update: (s, p) => { if (s.fd !== p.fd) focus(pane, s.fd); } };
}

// a finding a link named (`fd`: its id, or one of its repeats'): scrolled to and outlined
function focus(pane, id) {
  for (const el of pane.querySelectorAll(".fd-item.fd-focus")) el.classList.remove("fd-focus");
  if (!id) return;
  const el = [...pane.querySelectorAll(".fd-item")].find((a) => a.dataset.id === id || (a.dataset.repeats || "").split(" ").includes(id));
  if (!el) return;
  el.classList.add("fd-focus");
  el.scrollIntoView({ block: "center" });
}

function header(d) {
  const n = d.findings.length;
  const seen = d.findings.reduce((a, f) => a + f.occurrences, 0);
  const said = SEVERITIES.filter((s) => d.counts[s]).map((s) => `<span class="sev-${s}">${d.counts[s]} ${s}</span>`).join(", ");
  return `<h2>Findings <span class="as-is dim" id="fd-summary">· ${n} finding${n === 1 ? "" : "s"}` +
    (seen > n ? ` (${seen} occurrences)` : "") + (said ? `: ${said}` : "") +
    ` · ${d.events.toLocaleString()} events read by ${d.detectors.length} detectors</span></h2>`;
}

// a detector that failed: said, not hidden (the others' findings are still shown)
function failures(d) {
  const errors = Object.entries(d.errors || {});
  return errors.map(([name, why]) => `<div class="fd-failed" data-detector="${esc(name)}">the <b>${esc(name)}</b> detector failed: ` +
    `<span class="mono">${esc(why)}</span> — its findings are missing</div>`).join("");
}

function nothing(d) {
  return `<div class="fd-none" id="fd-none"><b>No findings</b> in this run.<br><span class="dim">Looked for ${esc(d.looked_for)}.</span></div>`;
}

function groups(d) {
  return SEVERITIES.map((s) => {
    const group = d.findings.filter((f) => f.severity === s);
    if (!group.length) return "";
    return `<section class="fd-group"><h3 class="sev-${s}">${s} (${group.length})</h3>` + group.map(one).join("") + `</section>`;
  }).join("");
}

function one(f) {
  const o = f.open || {};
  const links = [];
  if (o.ev) links.push(`<a class="fd-open" data-ts="${esc(o.ts)}" data-ev="${esc(o.ev)}" data-sel="${o.row ?? ""}">open the moment in the timeline →</a>`);
  if (o.request) links.push(`<a class="fd-request" data-req="${esc(o.request)}" data-ts="${esc(o.ts)}">its request's waterfall →</a>`);
  if (o.chain) links.push(`<a class="fd-chain" data-chain="${esc(o.chain)}">call tree of its chain →</a>`);
  const m = f.moment;
  const rows = [];
  for (const w of f.where) rows.push(["where", esc(w)]);
  if (m) rows.push(["moment", `event ${m.id} (${esc(m.type)}) at ${fmtClock(m.ts)} <span class="dim">${fmtRel(rel(m.ts))}</span>` +
    (m.note ? ` <span class="dim">· ${esc(m.note)}</span>` : "") +
    (f.evidence.length > 1 ? ` <span class="dim">· ${f.evidence.length} events of evidence</span>` : "")]);
  if (f.repeats.length) rows.push(["again", again(f)]);
  rows.push(["fix", esc(f.fix)]);
  return `<article class="fd-item sev-${f.severity}" data-id="${esc(f.id)}" data-kind="${esc(f.kind)}" data-repeats="${esc(f.repeats.map((r) => r.id).join(" "))}">
    <div class="fd-head"><span class="pill fd-sev sev-${f.severity}">${f.severity}</span>
      <a class="fd-title" title="open its moment">${esc(f.title)}</a>
      ${f.occurrences > 1 ? `<span class="pill fd-times" title="the same defect seen ${f.occurrences} times in this run">×${f.occurrences}</span>` : ""}
      <span class="sp"></span><span class="dim mono">${esc(f.kind)} · ${esc(f.id)}</span></div>
    <p class="fd-expl">${esc(f.explanation)}</p>
    <div class="kv fd-kv">${rows.map(([k, v]) => `<div>${k}</div><div>${v}</div>`).join("")}</div>
    <div class="fd-links">${links.join("")}${o.why ? `<span class="bad mono">${esc(o.why)}</span>` : ""}</div>
  </article>`;
}

// the repeats: each its own moment (the worst is the one shown above)
function again(f) {
  const n = f.repeats.length;
  const each = f.repeats.slice(0, 12).map((r) => r.moment
    ? `<a class="fd-again" data-ts="${esc(r.moment.ts)}" data-ev="${esc(`${r.moment.producer}:${r.moment.id}`)}" title="${esc(r.title)}">${esc(r.id)} ${fmtRel(rel(r.moment.ts))}</a>`
    : `<span class="dim">${esc(r.id)}</span>`);
  const seen = [f, ...f.repeats].filter((r) => r.moment).map((r) => BigInt(r.moment.ts)).sort((a, b) => (a < b ? -1 : 1));
  const span = seen.length > 1 ? `, from ${fmtClock(seen[0])} to ${fmtClock(seen[seen.length - 1])}` : "";
  return `${n} more time${n === 1 ? "" : "s"} in this run${span}: ${each.join(" · ")}` +
    (n > 12 ? ` · <span class="dim">${n - 12} more</span>` : "");
}

function bind(pane, d) {
  const moment = (a) => go({ view: "timeline", t: a.dataset.ts, ev: a.dataset.ev, sel: a.dataset.sel ? `call:${a.dataset.sel}` : null, w0: null, w1: null });
  for (const a of pane.querySelectorAll("a.fd-open, a.fd-again")) a.onclick = () => moment(a);
  for (const t of pane.querySelectorAll("a.fd-title")) {
    const open = t.closest(".fd-item").querySelector("a.fd-open");
    if (open) t.onclick = () => moment(open); else t.removeAttribute("title");
  }
  for (const a of pane.querySelectorAll("a.fd-request")) a.onclick = () => go({ view: "requests", req: a.dataset.req, t: a.dataset.ts });
  for (const a of pane.querySelectorAll("a.fd-chain")) a.onclick = () => go({ view: "flame", chain: a.dataset.chain });
}
