"""The daemon as a real subprocess, steered by the console as a client.

Each test starts its own daemon on free ports (API and Thespian admin) with a
user config file in tmp_path, and always stops it by the pid it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from daemons import LAYERS, Unavailable
from waiting import wait_until

from elixirscope.contracts import Request
from elixirscope.transport import RequestClient, RequestTimeout, ensure_keys, free_tcp_port


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_status_and_tree(make_daemon):
    d = make_daemon()
    status = d.console_json("status")
    assert status["node"] == "node-a" and status["pid"] == d.proc.pid
    assert [layer["name"] for layer in status["layers"]] == LAYERS
    tree = d.console_json("tree")["root"]
    strategies = {n["id"]: n["strategy"] for n in tree["children"] if n["kind"] == "supervisor"}
    assert strategies == {"foundation": "one_for_one", "capture": "one_for_all",
                          "instrumentation": "one_for_one", "state_tracing": "rest_for_one",
                          "code_analysis": "one_for_one", "query": "one_for_one",
                          "visualization": "one_for_one", "ai": "one_for_one"}
    pids = d.pids()
    for path in ("foundation/registry", "foundation/config", "foundation/telemetry", "capture/ingest",
                 "capture/writers/writer-1", "query/correlator", "api"):
        assert isinstance(pids[path], int) and _running(pids[path])
    foundation = next(n for n in tree["children"] if n["id"] == "foundation")
    ids = [c["id"] for c in foundation["children"]]
    assert ids[0] == "registry" and {"config", "telemetry"} <= set(ids)  # the registry starts first
    text = d.console("tree")
    assert text.returncode == 0 and "capture/ingest" in text.stdout and "foundation/registry" in text.stdout


def test_layer_requests_are_routed_and_answered(make_daemon):
    d = make_daemon()
    health = d.request("health", to_layer="capture")
    assert health.ok and health.data["path"] == "capture/ingest"
    unknown = d.request("frobnicate", to_layer="capture")
    assert unknown.error.code == "unknown_operation"
    assert d.request("health", to_layer="nowhere").error.code == "unknown_layer"
    done = d.console('send query health {}')
    assert done.returncode == 0 and "query/engine" in done.stdout
    # the AI layer's engine answers findings (none in a store with nothing recorded)
    insights = d.request("insights", to_layer="ai")
    assert insights.ok and insights.data["findings"] == []
    done = subprocess.run([sys.executable, "-m", "elixirscope", "insights", "--daemon", d.endpoint,
                           "--keys", str(d.keys_dir)], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and "no findings" in done.stdout, done.stderr
    assert d.request("explain", to_layer="ai", target="x").error.code == "invalid_params"
    # each actor reports on its own timer: wait for the writer's first report
    stats = wait_until(lambda: (r := d.request("stats")).ok
                       and "capture/writers/writer-1" in r.data["layers"].get("capture", {}) and r)
    assert stats.data["layers"]["capture"]["capture/writers/writer-1"]["uptime_s"] > 0


def test_stats_show_the_queue_lengths_of_every_actor(make_daemon):
    d = make_daemon()
    paths = set(d.pids()) | {""}  # every supervisor and worker, and the application root

    def every_actor_reported():
        mailboxes = _stats(d).get("mailboxes", {})
        return paths <= set(mailboxes) and mailboxes
    mailboxes = wait_until(every_actor_reported, timeout=30)
    for path in ("foundation/registry", "capture", "capture/ingest", "api"):
        row = mailboxes[path]
        assert row["depth"] >= 0 and row["max"] >= row["depth"] and row["outbox_max"] >= 0, (path, row)
    text = d.console("stats")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("MAILBOX OF"))
    assert any(line.split()[0] == "foundation/registry" for line in lines[header + 1:])


def test_killing_the_read_only_correlator_never_touches_the_data_path(make_daemon):
    """The correlator only reads: it lives in Query, and its death restarts it alone."""
    d = make_daemon()
    before = d.pids()
    assert d.console("kill query/correlator").returncode == 0
    after = wait_until(lambda: (now := d.pids())["query/correlator"] not in (None, before["query/correlator"])
                       and now, timeout=30)
    assert {p for p in after if after[p] != before[p]} == {"query/correlator"}


def test_kill_a_capture_child_restarts_all_of_capture_only(make_daemon):
    d = make_daemon()
    before = d.pids()
    done = d.console("kill capture/ingest")
    assert done.returncode == 0, done.stderr

    def settled():
        now = d.pids()
        capture = [p for p in now if p.startswith("capture/")]
        return all(now[p] not in (None, before[p]) for p in capture) and now
    after = wait_until(settled, timeout=30)
    for path in ("foundation/config", "foundation/telemetry", "query/engine", "api"):
        assert after[path] == before[path], path


def test_kill_a_foundation_child_restarts_only_it(make_daemon):
    d = make_daemon()
    before = d.pids()
    assert d.console("kill foundation/telemetry").returncode == 0
    after = wait_until(lambda: (now := d.pids())["foundation/telemetry"] not in (None, before["foundation/telemetry"]) and now, timeout=30)
    changed = {p for p in after if after[p] != before[p]}
    assert changed == {"foundation/telemetry"}


def test_kill_the_registry_restarts_only_it_and_everything_still_works(make_daemon):
    """foundation/registry is an ordinary child: killed, it alone restarts, and the tree follows it."""
    d = make_daemon()
    before = _tree_json_pids(d)
    assert d.console("kill foundation/registry").returncode == 0

    def restarted():
        now = _tree_json_pids(d)
        return now["foundation/registry"][0] not in (None, before["foundation/registry"][0]) and now
    after = wait_until(restarted, timeout=30)
    assert {p for p in after if after[p][0] != before[p][0]} == {"foundation/registry"}
    assert after["foundation/registry"][1:] == (1, "running")

    # names are back (config get/set find the ConfigServer), and changes are still published
    done = wait_until(lambda: (r := d.console("config set instrumentation.sampling_rate 0.5")).returncode == 0
                      and r, timeout=30)
    assert "-> 0.5" in done.stdout
    wait_until(lambda: _stats(d).get("config_changes") == 1)
    assert d.console("status").returncode == 0
    # lifecycle events still reach TelemetryService: the registry's own restart (held by its
    # supervisor, replayed by the new registry), and a later kill elsewhere
    assert d.console("kill query/engine").returncode == 0
    wait_until(lambda: d.pids()["query/engine"] not in (None, before["query/engine"][0]), timeout=30)
    supervision = wait_until(lambda: (s := _stats(d).get("supervision", {})).get("query", {})
                             .get("child_restarted") == 1 and s)
    assert supervision["foundation"]["child_restarted"] == 1
    mailboxes = wait_until(lambda: "foundation/registry" in (m := _stats(d).get("mailboxes", {})) and m)
    assert mailboxes["foundation/registry"]["depth"] >= 0


def test_layer_intensity_exceeded_restarts_it_and_the_layers_after(make_daemon):
    d = make_daemon(config="[supervision]\nmax_restarts = 1\nmax_seconds = 60.0\n")
    before = d.pids()
    d.request("kill", path="capture/ingest")
    wait_until(lambda: d.pids().get("capture/ingest") not in (None, before["capture/ingest"]))
    middle = d.pids()
    d.request("kill", path="capture/ingest")  # the second restart in the window: capture gives up

    def escalated():
        try:
            now = d.pids()
        except (RequestTimeout, Unavailable):
            return False  # the API endpoint, or a layer it asks, is being restarted
        layers = ("capture", "instrumentation", "state_tracing", "code_analysis", "query",
                  "visualization", "ai", "api")
        return all(now.get(p) not in (None, middle[p]) for p in layers) and now
    after = wait_until(escalated, timeout=60)
    for path in ("foundation", "foundation/config", "foundation/telemetry"):
        assert after[path] == before[path], path
    # a status whose layers were read now (on a loaded machine one may be a stale view)
    status = wait_until(lambda: (r := d.request("status")).ok and "layers_stale" not in r.data
                        and r.data)
    restarts = {layer["name"]: layer["restarts"] for layer in status["layers"]}
    assert restarts["foundation"] == 0 and restarts["capture"] == 1 and restarts["api"] == 1


def test_config_set_whitelisted_and_refused(make_daemon):
    d = make_daemon()
    done = d.console("config set instrumentation.sampling_rate 0.25", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["new"] == 0.25
    assert d.console_json("config get instrumentation.sampling_rate")["value"] == 0.25
    refused = d.console("config set api.endpoint tcp://127.0.0.1:1")
    assert refused.returncode == 1
    assert "not_updatable" in refused.stderr
    bad = d.console("config set instrumentation.sampling_rate 7")
    assert bad.returncode == 1 and "invalid_value" in bad.stderr


def test_hot_reload_of_the_user_file(make_daemon):
    d = make_daemon(config='[logging]\nlevel = "info"\n')
    d.config.write_text(f'data_dir = {str(d.data_dir)!r}\n[logging]\nlevel = "debug"\n')
    wait_until(lambda: d.request("config_get", path="logging.level").data["value"] == "debug", timeout=30)


def test_sigterm_stops_everything(make_daemon):
    d = make_daemon()
    pids = set(d.pids().values()) | d.descendants
    started = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=90) == 0
    assert time.monotonic() - started < 90  # bounded (a hang guard, not a performance figure)
    wait_until(lambda: not any(_running(pid) for pid in pids), timeout=10)
    assert "daemon stopped" in d.log.read_text()


def test_a_taken_port_fails_at_once_and_two_nodes_run_side_by_side(make_daemon):
    a = make_daemon("node-a")
    port = int(a.endpoint.rsplit(":", 1)[1])
    clash = make_daemon("node-b", api_port=port, ready=False)
    assert clash.proc.wait(timeout=60) == 1
    assert f"127.0.0.1:{port} is already in use" in clash.log.read_text()
    b = make_daemon("node-c")
    assert a.request("status").data["node"] == "node-a"
    assert b.request("status").data["node"] == "node-c"
    assert set(a.pids().values()).isdisjoint(b.pids().values())


def test_unreachable_daemon_and_bad_commands_in_the_console(tmp_path):
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    keys = ensure_keys(tmp_path / "keys").directory
    done = subprocess.run([sys.executable, "-m", "elixirscope", "console", "--connect", endpoint,
                           "--keys", str(keys), "--timeout", "0.5", "-c", "status"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and f"no daemon at {endpoint}: the connection was refused" in (
        done.stderr
    )
    done = subprocess.run([sys.executable, "-m", "elixirscope", "console", "--connect", endpoint,
                           "--keys", str(tmp_path / "none"), "-c", "status"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no key at" in done.stderr and "--keys DIR" in done.stderr


def test_embedded_start_and_stop(tmp_path):
    import elixirscope

    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    before = _tree_pids()  # other tests' session-wide servers are children too
    elixirscope.start({"api.endpoint": endpoint, "node.name": "embedded",
                       "data_dir": str(tmp_path / "data")})
    try:
        system_pids = _tree_pids() - before
        with RequestClient(endpoint, timeout=10) as client:
            status = client.request(Request(operation="status", to_layer="app"))
        assert status.ok and status.data["node"] == "embedded" and status.data["pid"] == os.getpid()
        with pytest.raises(RuntimeError, match="already started"):
            elixirscope.start()
    finally:
        elixirscope.stop()
    wait_until(lambda: not any(_running(pid) for pid in system_pids), timeout=30)  # a hang guard


def _stats(d) -> dict:
    """The stats data, or {} while the daemon cannot answer them yet (e.g. a registry restarting)."""
    response = d.request("stats")
    return response.data if response.ok else {}


def _tree_json_pids(d) -> dict[str, tuple]:
    """path -> (pid, restarts, status) of every actor, as the console's `tree --json` shows them."""
    out = {}

    def walk(node):
        if node["path"]:
            out[node["path"]] = (node["pid"], node["restarts"], node["status"])
        for child in node.get("children", []):
            walk(child)
    walk(d.console_json("tree")["root"])
    return out


def _tree_pids() -> set[int]:
    return {c.pid for c in psutil.Process().children(recursive=True)}


def test_foundation_event_store_prunes_idle_shards_and_follows_retention(make_daemon):
    """A shard no writer holds (a finished run) is pruned by foundation/event_store;
    a retention change at run time reaches it; `send PATH` reaches one actor."""
    from elixirscope.contracts.trace import decode_batch, encode_batch
    from elixirscope.store import EventStore

    d = make_daemon(config="[store]\nmax_age_hours = 0.0\nmax_size_mb = 0\n"
                                   "prune_interval_s = 3600.0\n")
    hour = 3600 * 10**9
    now = time.time_ns()
    run = EventStore.open(d.data_dir)  # claims a shard the daemon's writers do not hold
    for seq, ts in ((1, now - 3 * hour), (2, now)):
        frame = encode_batch(node="n", pid=1, program="finished.py", producer="run", seq=seq,
                             sent_ts=ts, dropped=0,
                             events=[("custom", seq, ts, 1, None, 0, "tick", {})])
        run.append(decode_batch(frame), frame)
    run.close()

    def prune():
        return d.console_json("send foundation/event_store prune")
    assert prune() == {"shards": 0, "batches_deleted": 0, "events_deleted": 0}  # no retention
    assert d.console_json("config set store.max_age_hours 1")["new"] == 1.0
    wait_until(lambda: prune()["batches_deleted"] == 1)
    stats = d.console_json("send foundation/event_store stats")
    assert stats["store"]["events"] == 1 and stats["retention"]["max_age_hours"] == 1.0
    assert stats["pruned"]["events_deleted"] == 1
    unknown = d.console("send foundation/nobody stats")
    assert unknown.returncode != 0 and "no child 'nobody' under foundation" in unknown.stdout + unknown.stderr
