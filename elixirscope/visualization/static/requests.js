// Request waterfall: the run's requests; one request with its handler's calls and its
// database queries, transaction steps and HTTP calls in place, N+1 shapes (5+ similar
// queries) flagged. An HTTP attempt says its number (a retry is attempt 2) and, when the
// service it called was recorded too (this run or another of the data dir), the request
// it began there under it, linked, with how long it ran after the attempt gave up; a
// request whose caller was recorded names it.
import { api, ctx, S, go, rel, fmtDur, fmtRel, fmtBytes, esc, short, errorBox } from "./app.js";

export async function mount(host, state) {
  host.innerHTML = `<div class="view"><div class="side left pane" style="width:560px"><h2>Requests</h2><div id="rq-list"></div></div>
    <div class="grow pane" id="rq-main"><div class="empty">pick a request</div></div></div>`;
  const v = { update: (s, p) => { if (s.req !== p.req) load(host, s); } };
  await load(host, state);
  return v;
}

// a request's time as recorded (what calltree, summary and ESQL say), else its events' span
const took = (r) => (r.duration != null ? r.duration : rel(r.end) - rel(r.start));

async function load(host, state) {
  let d;
  try { d = await api(`runs/${ctx.overview.run.id}/requests`, { request: state.req }); }
  catch (err) { errorBox(host.querySelector("#rq-main"), err); return; }
  const list = host.querySelector("#rq-list");
  // each request by its own path (requests of one route told apart), its route in the title
  list.innerHTML = d.requests.length ? `<table class="rq-table"><colgroup><col style="width:70px"><col><col style="width:66px"><col style="width:78px"><col style="width:42px"><col style="width:52px"></colgroup><thead><tr><th>method</th><th>path</th><th>status</th><th class="num">took</th><th class="num" title="database queries">db</th><th class="num" title="outgoing HTTP attempts">http</th></tr></thead><tbody>` + d.requests.map((r) => `<tr class="pick rq-row${r.id === state.req ? " on" : ""}" data-id="${esc(r.id)}">
      <td>${esc(r.method)}</td><td title="${esc(r.path + (r.route && r.route !== r.path ? `  (route ${r.route})` : "") + (r.http_failed ? `\n${r.http_failed} outgoing HTTP attempt${r.http_failed > 1 ? "s" : ""} failed (no answer, or 5xx)` : ""))}">${r.http_failed ? `<span class="bad" title="outgoing HTTP attempts failed">⚠ </span>` : ""}${esc(r.path)}</td>
      <td class="${r.status >= 500 || r.error ? "bad" : r.status >= 400 ? "dim" : "good"}">${r.status || "–"}</td>
      <td class="num">${r.end ? fmtDur(took(r)) : "open"}</td><td class="num dim">${r.queries}q</td><td class="num dim">${r.http ? `${r.http}×` : ""}</td></tr>`).join("") + `</tbody></table>`
    : `<div class="dim">no web requests were recorded in this run</div>`;
  markFindings(host, d);
  for (const tr of list.querySelectorAll("tr.rq-row")) tr.onclick = () => go({ req: tr.dataset.id, t: d.requests.find((r) => r.id === tr.dataset.id).start });
  const main = host.querySelector("#rq-main");
  if (!d.request) { main.innerHTML = `<div class="empty">${d.requests.length ? "pick a request" : "no requests"}</div>`; return; }
  const r = d.request;
  // the request's own call is the request's row itself (it begins just before the request
  // is recorded): not a row of its own; the calls under it one level up
  const own = d.calls.find((c) => c.function === "elixirscope.web.request");
  const calls = d.calls.filter((c) => c !== own).map((c) => ({ ...c, depth: Math.max(0, c.depth - (own ? own.depth + 1 : 0)) }));
  const t0 = Math.min(rel(r.start), ...calls.map((c) => rel(c.start)));
  // a callee's request may go on after this one answered (its caller gave up): drawn whole
  const callees = d.queries.filter((q) => q.callee && q.callee.end).map((q) => rel(q.callee.end));
  const t1 = Math.max(rel(r.end), t0 + 1, ...calls.map((c) => rel(c.end)), ...callees);
  const span = t1 - t0;
  // a call's time suspended at its awaits and yields: striped over its bar
  const gapsOf = (s, e, gaps) => (gaps || []).map(([a, b]) => `<i class="gap" style="left:${(a / Math.max(1, rel(e) - rel(s))) * 100}%;width:${((b - a) / Math.max(1, rel(e) - rel(s))) * 100}%"></i>`).join("");
  const bar = (s, e, cls, gaps) => `<div class="bar ${cls}" style="left:${((rel(s) - t0) / span) * 100}%;width:${Math.max(0.2, ((rel(e) - rel(s)) / span) * 100)}%">${gapsOf(s, e, gaps)}</div>`;
  const items = [];
  // its sizes as recorded: what came in (a body) and what went out
  const sizes = [r.request_bytes ? `in ${fmtBytes(r.request_bytes)}` : "", r.response_bytes != null ? `out ${fmtBytes(r.response_bytes)}` : ""].filter(Boolean).join(", ");
  items.push({ s: r.start, html: `<div class="wf-row"><div class="name" title="${esc(sizes)}"><b>${esc(r.method)} ${esc(r.path)}</b> → ${r.status}${sizes ? ` <span class="dim rq-size">· ${sizes}</span>` : ""}</div><div class="track">${bar(r.start, r.end, "req")}</div><div class="dur">${fmtDur(took(r))}</div></div>` });
  // a task the handler left running may begin after the answer was sent: said so
  const after = (c) => (r.end && BigInt(c.start) > BigInt(r.end) ? ` <span class="dim">· after the answer</span>` : "");
  for (const c of calls) items.push({ s: c.start, depth: c.depth, html: `<div class="wf-row" data-ts="${c.start}"><div class="name" title="${esc(c.function)}">${"&nbsp;".repeat(c.depth * 2)}${esc(short(c.function))}${after(c)}</div>
    <div class="track" title="${c.suspended ? `suspended ${fmtDur(c.suspended)} at its awaits / yields (striped)` : ""}">${bar(c.start, c.end, c.status === "raised" ? "raised" : "", c.gaps)}</div><div class="dur">${fmtDur(rel(c.end) - rel(c.start))}</div></div>` });
  // a query, transaction step or HTTP attempt sits one level below the call that made it
  const depthOf = new Map(calls.map((c) => [c.row, c.depth]));
  if (own) depthOf.set(own.row, -1);
  // an attempt's status (and what came back) or why none came: `timeout`, as ESQL says
  const outcome = (q) => q.kind !== "http" ? (q.error ? ` !! ${q.error.split("\n")[0]}` : "")
    : ` → ${q.rows || (q.timeout ? "timeout" : q.error ? q.error.split(":")[0] : "no response")}` +
      (q.rows && q.bytes != null ? ` · ${fmtBytes(q.bytes)}` : "");
  // which attempt a call retried is (as calltree says it), first: a long URL is cut after
  const retried = new Set(d.queries.filter((q) => q.attempt > 1).map((q) => q.statement));
  const which = (q) => (q.attempt && retried.has(q.statement) ? `attempt ${q.attempt} · ` : "");
  // the program's line that made it: its file's name in the row, the whole path on hover
  const madeAt = (q) => (q.location ? ` <span class="dim rq-at">· ${esc(q.location.split("/").pop())}</span>` : "");
  for (const q of d.queries) {
    const failed = q.error || (q.kind === "http" && q.rows >= 500);
    const said = which(q) + q.statement + outcome(q);
    items.push({ s: q.start, indent: true, under: depthOf.get(q.call_row), html: `<div class="wf-row ${q.n_plus_one ? "nplus1" : ""} ${q.kind === "http" ? "wf-http" : ""}" data-ts="${q.start}"><div class="name ${failed ? "bad" : ""}" title="${esc(said + (q.location ? `  (${q.location})` : ""))}">%INDENT%${q.n_plus_one ? "⚠ " : ""}${esc(said)}${madeAt(q)}</div>
    <div class="track">${bar(q.start, q.end, failed ? "raised" : q.kind)}</div><div class="dur">${q.kind === "tx" && q.end === q.start ? "" : fmtDur(rel(q.end) - rel(q.start))}</div></div>` +
      (q.callee ? calleeRows(q, d.run, bar, t0, span) : "") });
  }
  // a WebSocket's steps at their moments: accepted, each message in (⇠) and out (⇢) with its
  // size and preview, its close; under the request, at the handler's level
  const arrow = { in: "⇠ in", out: "⇢ out", accept: "✓ accept", close: "✕ close", disconnect: "✕ disconnect" };
  for (const f of d.frames || []) {
    const what = `${arrow[f.kind] || f.kind}${f.size != null ? ` ${fmtBytes(f.size)}` : ""}${f.code ? ` (code ${f.code})` : ""}`;
    items.push({ s: f.ts, indent: true, under: 0, html: `<div class="wf-row ws-frame" data-ts="${f.ts}"><div class="name" title="${esc(what + (f.preview ? "  " + f.preview : ""))}">%INDENT%<span class="ws-${esc(f.kind)}">${esc(what)}</span>${f.preview ? ` <span class="dim as-is">${esc(f.preview.slice(0, 80))}</span>` : ""}</div>
    <div class="track"><div class="tick" style="left:${((rel(f.ts) - t0) / span) * 100}%"></div></div><div class="dur"></div></div>` });
  }
  if (d.frames_left_out) items.push({ s: r.end || r.start, html: `<div class="wf-row"><div class="name dim">… ${d.frames_left_out} more steps of the connection (ESQL: websockets where request = ${esc(r.id.split("/").pop())})</div><div class="track"></div><div class="dur"></div></div>` });
  items.sort((a, b) => (BigInt(a.s) < BigInt(b.s) ? -1 : BigInt(a.s) > BigInt(b.s) ? 1 : 0));
  let depth = 0;  // its call's depth, else (made outside the calls listed) the call's before it
  for (const i of items) { if (i.depth !== undefined) depth = i.depth; else if (i.indent) i.html = i.html.replaceAll("%INDENT%", "&nbsp;".repeat(((i.under ?? depth) + 1) * 2)); }
  const nq = d.queries.filter((q) => q.kind === "query").length;
  const nh = d.queries.filter((q) => q.kind === "http").length;
  const httpCalls = nh ? ` · ${nh} http call${nh === 1 ? "" : "s"}` : "";
  const route = r.route && r.route !== r.path ? ` (${esc(r.route)})` : "";
  // a time keeps its unit's case (ms, not MS) in the upper-cased heading
  main.innerHTML = `<h2>${esc(r.method)} <span class="as-is">${esc(r.path)}${route}</span> · <span class="as-is">${fmtRel(t0)}</span> · ${nq} quer${nq === 1 ? "y" : "ies"}${httpCalls}${sizes ? ` · <span class="as-is">${sizes}</span>` : ""}</h2>
    ${r.caller ? callerLine(r.caller, d.run) : ""}
    <div id="rq-findings" data-req="${esc(r.id)}"></div>
    ${d.n_plus_one.map((n) => `<div class="pill red nplus1-flag" style="margin:4px 0">N+1: ${n.count}× <code>${esc(n.shape.slice(0, 120))}</code></div>`).join("<br>")}
    ${r.error ? `<div class="bad mono">${esc(r.error)}</div>` : ""}
    ${compareControl(d, r)}
    <div style="margin-top:10px">${items.map((i) => i.html).join("")}</div>`;
  wireCompare(main, d, r);
  for (const row of main.querySelectorAll(".wf-row[data-ts]")) row.onclick = () => go({ t: row.dataset.ts });
  // another run's request (or this run's): its own waterfall; a caller's attempt: its moment
  const away = { t: null, w0: null, w1: null, sel: null, chain: null, ev: null };
  for (const a of main.querySelectorAll("a.rq-callee")) {
    a.onclick = (e) => { e.stopPropagation(); go({ ...away, view: "requests", run: a.dataset.run, req: a.dataset.req }); };
  }
  const up = main.querySelector("a.rq-caller");
  if (up) up.onclick = () => go({ ...away, view: "timeline", run: up.dataset.run, req: null, t: up.dataset.ts, ev: up.dataset.ev });
}

// Compare this request with another (`elixirscope diff --chains PRODUCER#ID …`: each the
// request's own part of its chain): its route's first, the nearest in time first; the other
// is A, this one B (as `insights` suggests: the answered request against the failed one).
function comparable(d, r) {
  const mine = d.requests.find((o) => o.id === r.id);
  if (!mine) return [];
  const near = (o) => Math.abs(Number(BigInt(o.start) - BigInt(mine.start)));
  return d.requests.filter((o) => o.id !== mine.id)
    .sort((a, b) => ((a.route || a.path) !== (mine.route || mine.path)) - ((b.route || b.path) !== (mine.route || mine.path)) || near(a) - near(b))
    .slice(0, 200);
}

function compareControl(d, r) {
  const others = comparable(d, r);
  if (!others.length) return "";
  const option = (o) => `<option value="${esc(o.id)}">${esc(`${o.method} ${o.path} → ${o.status || "–"} · ${o.end ? fmtDur(took(o)) : "open"}`)}</option>`;
  return `<div class="rq-compare">compare with <select id="rq-vs"><option value="">another request…</option>${others.map(option).join("")}</select>
    <span class="dim">what differs, call by call: arguments, returns, exceptions, queries, HTTP calls</span></div>
    <pre id="rq-diff" class="rq-diff" hidden></pre>`;
}

function wireCompare(main, d, r) {
  const vs = main.querySelector("#rq-vs");
  if (!vs) return;
  const out = main.querySelector("#rq-diff");
  let asked = 0;  // the latest choice's answer is shown, not an earlier one's that came late
  vs.onchange = async () => {
    const mine = ++asked;
    if (!vs.value) { out.hidden = true; return; }
    out.hidden = false;
    out.textContent = "comparing…";
    let said;
    try { said = (await api(`runs/${ctx.overview.run.id}/diff`, { a: vs.value, b: r.id })).text; }
    catch (err) { said = `could not compare: ${err.message}`; }
    if (mine === asked) out.textContent = said;
  };
}

// which run a request of another process is in: "this run", or its program and short id
const runName = (run, program, here) => (run === here ? "this run" : `${program || "run"} ${String(run || "?").slice(0, 8)}`);

// the request an HTTP attempt began in a recorded callee, under the attempt: its route,
// status and time (its bar on the same time axis, the part after the attempt gave up
// hatched), linked to its waterfall; calltree's note when it answered no one
function calleeRows(q, here, bar, t0, span) {
  const c = q.callee, where = runName(c.run, c.program, here);
  const what = `${c.method} ${c.route || c.path} → ${c.status || (c.end ? "no answer" : "open")}`;
  const after = c.note && c.end ? `<div class="bar after" style="left:${((rel(q.end) - t0) / span) * 100}%;width:${Math.max(0.2, ((rel(c.end) - rel(q.end)) / span) * 100)}%"></div>` : "";
  const link = c.run ? `<a class="rq-callee" data-run="${esc(c.run)}" data-req="${esc(c.request)}" title="open this request in ${esc(where)}">${esc(what)}</a>` : esc(what);
  return `<div class="wf-row wf-callee"><div class="name" title="${esc(`${c.method} ${c.path} (route ${c.route || "–"}) → ${c.status || "–"}, recorded in ${where}`)}">%INDENT%&nbsp;&nbsp;↳ <span class="dim">${esc(c.run === here ? where : c.program || where)} ·</span> ${link}</div>
    <div class="track">${bar(c.start, c.end ?? c.start, "callee")}${after}</div><div class="dur">${c.duration != null ? fmtDur(c.duration) : "–"}</div></div>` +
    (c.note ? `<div class="wf-note dim">%INDENT%&nbsp;&nbsp;&nbsp;&nbsp;${esc(c.note)}</div>` : "");
}

// the run's findings (the Findings view's: insights' detectors), asked once a run and size:
// a request holding one (its moment or a repeat's) is marked in the list with the worst
// one's severity, and the request shown names each, linked to it in the Findings view
const SEVERITIES = ["high", "medium", "low"];
let findingsAsked = null;  // { key, byRequest: Promise<Map<request id, finding[]>> }

function findingsByRequest() {
  const ov = ctx.overview, key = `${ov.run.id}:${ov.events}`;
  if (!findingsAsked || findingsAsked.key !== key) {
    const byRequest = api(`runs/${ov.run.id}/findings`).then((d) => {
      const by = new Map();
      for (const f of d.findings) for (const id of f.requests || []) by.set(id, [...(by.get(id) || []), f]);
      return by;
    }, (err) => ({ error: err.message }));
    findingsAsked = { key, byRequest };
  }
  return findingsAsked.byRequest;
}

async function markFindings(host, d) {
  const by = await findingsByRequest();
  if (by.error) {  // the list stands without the marks; the request shown says why
    const slot = host.querySelector("#rq-findings");
    if (slot) slot.innerHTML = `<div class="dim mono">findings could not be read: ${esc(by.error)}</div>`;
    return;
  }
  for (const tr of host.querySelectorAll("tr.rq-row")) {
    const found = by.get(tr.dataset.id);
    if (!found || tr.querySelector(".rq-finding")) continue;
    const worst = SEVERITIES.find((s) => found.some((f) => f.severity === s)) || "low";
    tr.children[1].insertAdjacentHTML("afterbegin", `<span class="rq-finding sev-${worst}" title="${esc(found.map((f) => `${f.severity}: ${f.title}`).join("\n"))}">⚑ </span>`);
  }
  const slot = host.querySelector("#rq-findings");
  if (!d.request || !slot || slot.dataset.req !== d.request.id) return;
  slot.innerHTML = (by.get(d.request.id) || []).map((f) => `<div class="rq-finding-line"><span class="pill sev-${f.severity}">${f.severity}</span> ` +
    `${esc(f.title)} <a class="rq-to-finding" data-id="${esc(f.id)}">in Findings →</a></div>`).join("");
  for (const a of slot.querySelectorAll("a.rq-to-finding")) a.onclick = () => go({ view: "findings", fd: a.dataset.id, req: null });
}

// the recorded HTTP attempt that made this request (its caller's), linked to its moment
function callerLine(c, here) {
  const got = c.status || (c.timeout ? "timeout" : c.error ? c.error.split(":")[0] : "no response");
  return `<div class="rq-called-by mono">called by <a class="rq-caller" data-run="${esc(c.run || "")}" data-ts="${esc(c.ts)}" data-ev="${esc(`${c.producer}:${c.event_id}`)}">${esc(runName(c.run, c.program, here))}: ${esc(c.method)} ${esc(c.url)}</a>` +
    ` → ${esc(String(got))}${c.attempt > 1 ? ` · attempt ${c.attempt}` : ""} <span class="dim">after ${fmtDur(c.duration)}</span>` +
    (c.note ? `<div class="dim">${esc(c.note)}</div>` : "") + `</div>`;
}
