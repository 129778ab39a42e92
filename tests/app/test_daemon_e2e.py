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
from daemons import LAYERS
from waiting import wait_until

from elixirscope.contracts import Request
from elixirscope.transport import RequestClient, RequestTimeout, free_tcp_port


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
    for path in ("foundation/config", "foundation/telemetry", "capture/ingest", "capture/writers/writer-1",
                 "capture/correlator", "api"):
        assert isinstance(pids[path], int) and _running(pids[path])
    text = d.console("tree")
    assert text.returncode == 0 and "capture/ingest" in text.stdout


def test_layer_requests_are_routed_and_answered(make_daemon):
    d = make_daemon()
    health = d.request("health", to_layer="capture")
    assert health.ok and health.data["path"] == "capture/ingest"
    unknown = d.request("frobnicate", to_layer="capture")
    assert unknown.error.code == "unknown_operation"
    assert d.request("health", to_layer="nowhere").error.code == "unknown_layer"
    done = d.console('send query health {}')
    assert done.returncode == 0 and "query/engine" in done.stdout
    # each actor reports on its own timer: wait for the writer's first report
    stats = wait_until(lambda: (r := d.request("stats")).ok
                       and "capture/writers/writer-1" in r.data["layers"].get("capture", {}) and r)
    assert stats.data["layers"]["capture"]["capture/writers/writer-1"]["uptime_s"] > 0


def test_kill_a_capture_child_restarts_all_of_capture_only(make_daemon):
    d = make_daemon()
    before = d.pids()
    done = d.console("kill capture/correlator")
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
        except RequestTimeout:
            return False  # the API endpoint itself is being restarted (it comes after capture)
        layers = ("capture", "instrumentation", "state_tracing", "code_analysis", "query",
                  "visualization", "ai", "api")
        return all(now.get(p) not in (None, middle[p]) for p in layers) and now
    after = wait_until(escalated, timeout=60)
    for path in ("foundation", "foundation/config", "foundation/telemetry"):
        assert after[path] == before[path], path
    status = d.request("status").data
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
    done = subprocess.run([sys.executable, "-m", "elixirscope", "console", "--connect", endpoint,
                           "--timeout", "0.5", "-c", "status"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and "is `elixirscope daemon` running" in done.stderr


def test_embedded_start_and_stop(tmp_path):
    import elixirscope

    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    app = elixirscope.start({"api.endpoint": endpoint, "node.name": "embedded",
                             "data_dir": str(tmp_path / "data")})
    try:
        system_pids = _tree_pids(app)
        with RequestClient(endpoint, timeout=10) as client:
            status = client.request(Request(operation="status", to_layer="app"))
        assert status.ok and status.data["node"] == "embedded" and status.data["pid"] == os.getpid()
        with pytest.raises(RuntimeError, match="already started"):
            elixirscope.start()
    finally:
        elixirscope.stop()
    wait_until(lambda: not any(_running(pid) for pid in system_pids), timeout=10)


def _tree_pids(app) -> set[int]:
    return {c.pid for c in psutil.Process().children(recursive=True)}
