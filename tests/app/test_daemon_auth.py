"""A daemon's endpoints hear only clients holding its key: a bare socket can neither steer
it (kill, config set) nor feed or drain its data plane. Real daemon, real sockets."""

from __future__ import annotations

import os
import stat
import time

import zmq
from waiting import wait_until

from elixirscope.contracts import Request, encode
from elixirscope.transport import CreditSender, load_keys

SILENCE = 3.0  # how long a refused client listens for an answer that must never come


def _bare_request(endpoint: str, request: Request) -> bool:
    """Send ``request`` from a socket with no key; True if anything at all came back."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    try:
        sock.connect(endpoint)
        sock.send_multipart([b"", encode(request)])
        return bool(sock.poll(int(SILENCE * 1000)))
    finally:
        sock.close(linger=0)


def test_keys_are_made_owner_only_on_first_start(make_daemon):
    d = make_daemon()
    assert stat.S_IMODE(d.keys_dir.stat().st_mode) == 0o700
    for path in d.keys_dir.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_a_client_without_the_key_cannot_steer_the_daemon(make_daemon):
    d = make_daemon()
    before = d.pids()
    for request in (Request(operation="kill", to_layer="app", params={"path": "query/engine"}),
                    Request(operation="config_set", to_layer="app",
                            params={"path": "logging.level", "value": "debug"})):
        assert not _bare_request(d.endpoint, request)
    assert d.pids() == before
    # (retried: on a busy machine the API's own call to the config server may time out)
    level = wait_until(lambda: (r := d.request("config_get", path="logging.level")).ok and r,
                       timeout=60)
    assert level.data["value"] == "info"
    # the console, holding the key, is heard
    assert d.console("status").returncode == 0


def test_a_sender_without_the_key_gets_no_credit_and_stores_nothing(make_daemon):
    d = make_daemon()
    ingest = d.request("endpoint", to_layer="capture").data["ingest"]
    sender = CreditSender(ingest, policy="drop_newest", queue_batches=4, stream="stranger")
    try:
        deadline = time.monotonic() + SILENCE
        while time.monotonic() < deadline and sender.stats.credits_received == 0:
            sender.send(b"not even a batch", 1)
            time.sleep(0.05)
        assert sender.stats.credits_received == 0
    finally:
        sender.close(timeout=1.0)
    assert d.request("stats", to_layer="capture").data["batches_in"] == 0


def test_the_key_files_are_what_a_client_needs(make_daemon):
    d = make_daemon()
    keys = load_keys(d.keys_dir)
    assert keys.server_secret is None and keys.client_secret
    assert os.path.exists(d.keys_dir / "server.key_secret")  # only the node reads this one


def test_without_curve_only_loopback_endpoints_are_allowed(tmp_path):
    import subprocess
    import sys

    from elixirscope.transport import free_tcp_port

    config = tmp_path / "open.toml"
    config.write_text(f"data_dir = {str(tmp_path / 'data')!r}\n[security]\ncurve = false\n"
                      "[network]\nallow_remote = true\n")  # so it is curve = false that refuses
    done = subprocess.run(
        [sys.executable, "-m", "elixirscope", "daemon", "--config", str(config),
         "--api", f"tcp://0.0.0.0:{free_tcp_port()}", "--admin-port", str(free_tcp_port())],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode != 0
    assert "api.endpoint" in done.stderr and "security.curve" in done.stderr
