// Runs: every recording in the data dir, newest first; open one. Its errors are what failed
// for someone (5xx answers, uncaught exceptions, crashes), 4xx answers and the exceptions
// raised (handled ones too) apart in grey; a run not counted yet is counted as the server
// reads it ahead, and the list asks again meanwhile.
import { api, esc, fmtDur, fmtClock, go, errorBox } from "./app.js";

function fmtDate(ts) {
  if (ts === null || ts === undefined) return "";
  const d = new Date(Number(BigInt(ts) / 1000000n));
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

// a run's errors: how many, and what they are in its title; "…" while not counted yet
function errorsCell(r) {
  const o = r.outcomes;
  if (!o) return `<td class="num dim" title="not counted yet: the server reads the run">…</td>`;
  const parts = [
    o.server_errors ? `${o.server_errors} server error${o.server_errors > 1 ? "s" : ""} (${Object.entries(o.statuses).map(([s, n]) => `${s}×${n}`).join(" ")})` : "",
    o.uncaught ? `${o.uncaught} uncaught exception${o.uncaught > 1 ? "s" : ""}` : "",
    o.crashes ? `${o.crashes} crash${o.crashes > 1 ? "es" : ""}` : "",
  ].filter(Boolean);
  const title = parts.length ? parts.join(", ") : "no 5xx answer, uncaught exception or crash";
  return `<td class="num ${o.errors ? "bad" : "dim"}" title="${esc(title)}">${o.errors.toLocaleString()}</td>`;
}

const POLLS = 60;  // at most this many times the list asks again while runs are counted

export async function mount(host) {
  host.innerHTML = `<div class="view"><div class="pane grow" id="runs"><div class="empty">reading runs…</div></div></div>`;
  const pane = host.querySelector("#runs");
  await show(pane, 0);
  return { destroy: () => clearTimeout(pane.timer) };
}

async function show(pane, polls) {
  let data;
  try { data = await api("runs"); } catch (err) { errorBox(pane, err); return; }
  if (!pane.isConnected) return;
  if (!data.runs.length) {
    pane.innerHTML = `<div class="empty">No runs under <code>${esc(data.data_dir)}</code> yet: record one with <code>elixirscope run script.py</code>.</div>`;
    return;
  }
  const rows = data.runs.map((r) => `
    <tr class="pick run-row" data-run="${esc(r.id)}">
      <td><a>${esc(r.short_id)}</a>${r.open ? ' <span class="pill green">recording</span>' : ""}</td>
      <td>${esc(fmtDate(r.started_ns ?? r.first_ts))} ${esc(fmtClock(r.started_ns ?? r.first_ts))}</td>
      <td title="${esc(r.command_text)}">${esc(r.command_text)}</td>
      <td class="num">${r.events.toLocaleString()}</td>
      <td class="num ${r.dropped ? "bad" : "dim"}">${r.dropped.toLocaleString()}</td>
      ${errorsCell(r)}
      <td class="num dim" title="requests answered 4xx: the client's error, not the program's">${r.outcomes ? r.outcomes.client_errors.toLocaleString() : "…"}</td>
      <td class="num dim" title="exceptions raised, also those the program handled (a 404's, a retried timeout)">${r.exceptions.toLocaleString()}</td>
      <td class="num">${r.processes}</td>
      <td class="num">${fmtDur(r.duration_ns)}</td>
      <td class="num ${r.exit_status ? "bad" : "dim"}">${r.exit_status ?? "–"}</td>
    </tr>`).join("");
  pane.innerHTML = `<h2>Runs <span class="mono dim" style="text-transform:none;letter-spacing:0;font-weight:400">in ${esc(data.data_dir)}</span></h2>
    <table><thead><tr><th>run</th><th>started</th><th>command</th><th class="num">events</th>
    <th class="num">dropped</th><th class="num" title="5xx answers, uncaught exceptions, crashes">errors</th>
    <th class="num" title="requests answered 4xx">4xx</th><th class="num" title="raised, handled or not">exceptions</th><th class="num">procs</th><th class="num">duration</th><th class="num">exit</th></tr></thead>
    <tbody>${rows}</tbody></table>
    <p class="dim mono" id="runs-counted">errors: answers 5xx, exceptions no code caught, crashes · 4xx: answers the client got wrong · exceptions: every one raised, handled or not</p>`;
  for (const tr of pane.querySelectorAll("tr.run-row")) {
    tr.addEventListener("click", () => go({ view: "timeline", run: tr.dataset.run, t: null, w0: null, w1: null, sel: null }));
  }
  if (data.counting && polls < POLLS) pane.timer = setTimeout(() => show(pane, polls + 1), 1000);
}
