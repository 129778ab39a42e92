// Runs: every recording in the data dir, newest first; open one.
import { api, esc, fmtDur, fmtClock, go, errorBox } from "./app.js";

function fmtDate(ts) {
  if (ts === null || ts === undefined) return "";
  const d = new Date(Number(BigInt(ts) / 1000000n));
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

export async function mount(host) {
  host.innerHTML = `<div class="view"><div class="pane grow" id="runs"><div class="empty">reading runs…</div></div></div>`;
  const pane = host.querySelector("#runs");
  let data;
  try { data = await api("runs"); } catch (err) { errorBox(pane, err); return {}; }
  if (!data.runs.length) {
    pane.innerHTML = `<div class="empty">No runs under <code>${esc(data.data_dir)}</code> yet: record one with <code>elixirscope run script.py</code>.</div>`;
    return {};
  }
  const rows = data.runs.map((r) => `
    <tr class="pick run-row" data-run="${esc(r.id)}">
      <td><a>${esc(r.short_id)}</a>${r.open ? ' <span class="pill green">recording</span>' : ""}</td>
      <td>${esc(fmtDate(r.started_ns ?? r.first_ts))} ${esc(fmtClock(r.started_ns ?? r.first_ts))}</td>
      <td title="${esc(r.command_text)}">${esc(r.command_text)}</td>
      <td class="num">${r.events.toLocaleString()}</td>
      <td class="num ${r.dropped ? "bad" : "dim"}">${r.dropped.toLocaleString()}</td>
      <td class="num ${r.exceptions ? "bad" : "dim"}">${r.exceptions.toLocaleString()}</td>
      <td class="num">${r.processes}</td>
      <td class="num">${fmtDur(r.duration_ns)}</td>
      <td class="num ${r.exit_status ? "bad" : "dim"}">${r.exit_status ?? "–"}</td>
    </tr>`).join("");
  pane.innerHTML = `<h2>Runs <span class="mono dim" style="text-transform:none;letter-spacing:0;font-weight:400">in ${esc(data.data_dir)}</span></h2>
    <table><thead><tr><th>run</th><th>started</th><th>command</th><th class="num">events</th>
    <th class="num">dropped</th><th class="num">errors</th><th class="num">procs</th><th class="num">duration</th><th class="num">exit</th></tr></thead>
    <tbody>${rows}</tbody></table>`;
  for (const tr of pane.querySelectorAll("tr.run-row")) {
    tr.addEventListener("click", () => go({ view: "timeline", run: tr.dataset.run, t: null, w0: null, w1: null, sel: null }));
  }
  return {};
}
