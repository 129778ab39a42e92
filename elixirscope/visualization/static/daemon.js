// The running daemon's supervision tree and its actions (only when the cinema is served by
// a daemon): select a worker, then kill (with a reason) or restart it; trace or untrace a
// function pattern. Every action is asked for first: the server answers what would happen
// and a one-time code, shown in a dialog whose Cancel has the focus; only Confirm sends
// the code back, and the daemon's answer is shown.
import { api, post, esc } from "./app.js";

export async function mountDaemon(el) {
  let info;
  try { info = await api("daemon"); } catch (err) { return; }
  if (!info.connected) return; // over a data dir: no actions offered
  el.hidden = false;
  el.innerHTML = `<h2>Running daemon <span class="dim mono">${esc(info.endpoint)}</span> <button id="dm-refresh" title="read the daemon's tree again">↻</button></h2>
    <div id="dm-tree" class="tree"><span class="dim">reading the daemon's tree…</span></div>
    <div class="dm-actions">
      <div>selected: <b id="dm-sel" class="mono">none</b></div>
      <input id="dm-reason" placeholder="reason for the kill" maxlength="200">
      <button id="dm-kill" disabled>Kill…</button> <button id="dm-restart" disabled>Restart…</button>
    </div>
    <div class="dm-actions">
      <input id="dm-pattern" placeholder="pattern, e.g. myapp.orders.*" maxlength="200">
      <select id="dm-level"><option>boundaries</option><option>args</option><option>full</option></select>
      <button id="dm-trace">Trace…</button> <button id="dm-untrace">Untrace…</button>
    </div>
    <div id="dm-result" class="mono dm-result" hidden></div>
    <dialog id="dm-dialog"><h3 id="dm-title"></h3><dl id="dm-facts"></dl><p id="dm-what"></p>
      <p class="dim" id="dm-expiry"></p>
      <div class="dm-buttons"><button id="dm-cancel" autofocus>Cancel</button> <button id="dm-confirm" class="danger">Confirm</button></div></dialog>`;
  let selected = null;
  const $ = (sel) => el.querySelector(sel);

  async function drawTree() {
    try {
      const t = await api("daemon/tree");
      $("#dm-tree").innerHTML = "<ul>" + t.root.children.map(node).join("") + "</ul>";
      for (const a of el.querySelectorAll("#dm-tree a.dm-actor")) a.addEventListener("click", () => select(a.dataset.path));
      if (selected) select(selected);
    } catch (err) { $("#dm-tree").innerHTML = `<div class="error-box">${esc(err.message)}</div>`; }
  }
  function node(n) {
    const label = n.kind === "worker"
      ? `<a class="dm-actor" data-path="${esc(n.path)}">${esc(n.path)}</a>` : `<span>${esc(n.path)}</span>`;
    return `<li data-path="${esc(n.path)}">${n.kind === "supervisor" ? "▾" : "•"} ${label}
      <span class="dim">pid ${esc(n.pid ?? "–")}</span>
      <span class="pill ${n.restarts ? "orange" : ""} dm-restarts" data-path="${esc(n.path)}">↻ ${n.restarts}</span>
      ${n.children && n.children.length ? "<ul>" + n.children.map(node).join("") + "</ul>" : ""}</li>`;
  }
  function select(path) {
    selected = path;
    for (const a of el.querySelectorAll("#dm-tree a.dm-actor")) a.classList.toggle("on", a.dataset.path === path);
    $("#dm-sel").textContent = path;
    $("#dm-kill").disabled = $("#dm-restart").disabled = false;
  }

  function show(text, bad = false) {
    const r = $("#dm-result");
    r.hidden = false;
    r.classList.toggle("bad", bad);
    r.textContent = text;
  }

  async function act(action, body) {
    let proposed;
    try { proposed = await post(`daemon/${action}`, body); } catch (err) { show(err.message, true); return; }
    const w = proposed.would;
    const dialog = $("#dm-dialog");
    $("#dm-title").textContent = `${action} — confirm`;
    const facts = action === "kill" || action === "restart"
      ? [["actor", w.path], ["pid", w.pid], ["supervisor", `${w.supervisor} (${w.strategy})`], ...(action === "kill" ? [["reason", w.reason]] : [])]
      : [["pattern", w.pattern], ...(action === "trace" ? [["level", w.level]] : [])];
    $("#dm-facts").innerHTML = facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd class="mono" data-fact="${esc(k)}">${esc(v)}</dd>`).join("");
    $("#dm-what").textContent = `This will ${w.what}.`;
    $("#dm-expiry").textContent = `The confirmation is good for ${proposed.expires_in_s} s.`;
    const choice = await new Promise((resolve) => {
      const done = (v) => () => { dialog.close(); resolve(v); };
      $("#dm-cancel").onclick = done(false);
      $("#dm-confirm").onclick = done(true);
      dialog.oncancel = () => resolve(false); // Escape
      dialog.showModal();
      $("#dm-cancel").focus();
    });
    if (!choice) { show(`${action} cancelled: nothing was done`); return; }
    try {
      const done = await post(`daemon/${action}`, { ...body, confirm: proposed.confirm });
      show(`${action} done; the daemon answered: ${JSON.stringify(done.daemon)}`);
    } catch (err) { show(err.message, true); }
    setTimeout(drawTree, 500);
  }

  $("#dm-kill").addEventListener("click", () => act("kill", { path: selected, reason: $("#dm-reason").value }));
  $("#dm-restart").addEventListener("click", () => act("restart", { path: selected }));
  $("#dm-trace").addEventListener("click", () => act("trace", { pattern: $("#dm-pattern").value, level: $("#dm-level").value }));
  $("#dm-untrace").addEventListener("click", () => act("untrace", { pattern: $("#dm-pattern").value }));
  $("#dm-refresh").addEventListener("click", drawTree);
  await drawTree();
}
