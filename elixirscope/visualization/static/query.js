// Query box: ESQL over the run, the answer as a table; each row links to its moment.
import { api, ctx, S, go, fmtClock, fmtDur, esc, errorBox } from "./app.js";

// each is run against a recording by tests/visualization/test_query_examples.py
const EXAMPLES = ["calls where duration > 1ms", "exceptions", "calls where status = 'error'", "messages",
  "states where error != null", "function, count(*), p95(duration) from calls group by function"];

// right-aligned, as the command line's table has them
const NUMERIC = new Set(["int", "duration", "number"]);

export async function mount(host, state) {
  host.innerHTML = `<div class="view" style="flex-direction:column">
    <div class="q-box"><textarea id="q-text" spellcheck="false" placeholder="calls of 'shop.*' where duration > 1ms"></textarea>
      <div style="display:flex;flex-direction:column;gap:6px"><button id="q-run">Run ⏎</button><span class="dim mono" style="font-size:11px">ctrl+enter</span></div></div>
    <div class="q-meta">ESQL: try ${EXAMPLES.map((e) => `<a class="q-ex">${esc(e)}</a>`).join(" · ")}</div>
    <div class="q-meta" id="q-meta"></div>
    <div class="pane grow" id="q-out"></div></div>`;
  const text = host.querySelector("#q-text");
  text.value = state.q || "";
  const submit = () => go({ q: text.value.trim() || null });
  host.querySelector("#q-run").onclick = submit;
  text.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); } });
  for (const a of host.querySelectorAll(".q-ex")) a.onclick = () => { text.value = a.textContent; submit(); };
  const v = { last: null, update: (s) => { if (s.q !== v.last) { text.value = s.q || ""; run(host, s, v); } } };
  await run(host, state, v);
  return v;
}

async function run(host, state, v) {
  v.last = state.q;
  const out = host.querySelector("#q-out");
  if (!state.q) { out.innerHTML = ""; return; }
  out.innerHTML = `<div class="empty">running…</div>`;
  let d;
  const meta = host.querySelector("#q-meta");
  try { d = await api("esql", { q: state.q, run: state.run }); }
  catch (err) { meta.textContent = "the query was refused:"; errorBox(out, err); return; }
  meta.textContent = `${d.count} row${d.count === 1 ? "" : "s"}${d.more ? " (more matched; add `limit N` or narrow it)" : ""}`;
  if (!d.rows.length) { out.innerHTML = `<div class="empty">no rows match${d.hint ? `: ${esc(d.hint)}` : ""}</div>`; return; }
  const cell = (v, kind) => kind === "time" && v !== null ? fmtClock(v)
    : kind === "duration" && typeof v === "number" ? fmtDur(v)  // as the command line shows it
    : typeof v === "object" && v !== null ? JSON.stringify(v) : v ?? "–";
  // a cell the server says reads otherwise than its value (an HTTP attempt that got no
  // response: `timeout`, as the command line's table says)
  const shown = new Map((d.shown || []).map(([i, j, text]) => [`${i}:${j}`, text]));
  const text = (x, i, j) => shown.get(`${i}:${j}`) ?? cell(x, d.kinds[j]);
  out.innerHTML = `<table><thead><tr><th></th>${d.columns.map((c, j) => `<th class="${NUMERIC.has(d.kinds[j]) ? "num" : ""}">${esc(c)}</th>`).join("")}</tr></thead><tbody>` +
    d.rows.map((row, i) => `<tr class="q-row">
      <td>${d.moments[i] !== null && d.run ? `<a class="q-moment" data-i="${i}" title="open this moment">▶</a>` : ""}</td>
      ${row.map((x, j) => `<td class="${shown.has(`${i}:${j}`) ? "bad" : ""} ${NUMERIC.has(d.kinds[j]) ? "num" : ""}" title="${esc(text(x, i, j))}">${esc(text(x, i, j))}</td>`).join("")}</tr>`).join("") + `</tbody></table>`;
  // a row with a moment opens it, clicked anywhere (its ▶ says which rows have one)
  for (const a of out.querySelectorAll("a.q-moment")) {
    const open = () => {
      const t = d.moments[+a.dataset.i];
      const actorCol = d.columns.indexOf("actor");
      const actor = actorCol >= 0 ? d.rows[+a.dataset.i][actorCol] : null;
      const ev = (d.events || [])[+a.dataset.i] || null;  // the row's event: its call selected
      go({ view: actor ? "state" : "timeline", run: d.run, t, ev: actor ? null : ev, w0: null, w1: null, sel: actor ? `actor:${actor}` : null });
    };
    const row = a.closest("tr");
    row.classList.add("pick");
    row.onclick = open;
  }
}
