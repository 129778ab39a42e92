"""No single message crashes anything: each frame that once crashed an actor or a
layer, sent over a real socket to a real daemon by a client with no credentials.

After each: a clear error (naming what is wrong) where there is a reply, the
refusal counted where there is none, and every actor of the tree with the same
pid and restart count as before.
"""

from __future__ import annotations

import os
import signal
import socket
import struct

import msgspec
from hostile import (
    U64,
    Raw,
    batch,
    batch_with_deep_custom_data,
    batch_with_raw_dropped,
    deep_list,
    hello,
    request_frame,
    restarts,
    wire,
)
from waiting import wait_until

from elixirscope.transport import load_keys
from elixirscope.transport.exceptions import RequestTimeout

PATIENT = "[api]\nrequest_timeout_s = 30.0\n"  # a loaded machine is slow, not broken


def _unchanged(d, before) -> None:
    after = restarts(d.request("tree", timeout=60).data)
    assert after == before, {p: (before.get(p), v) for p, v in after.items() if before.get(p) != v}


def _capture_stats(d) -> dict:
    """The Capture layer's counters as `stats capture` shows them, by actor path."""
    # (asked again until the layer's first metrics report has reached telemetry)
    response = wait_until(lambda: (r := d.request("stats", layer="capture", timeout=60)).ok and r,
                          timeout=60)
    return response.data["layers"].get("capture", {})


def test_hostile_requests_get_clear_errors_and_restart_nothing(make_daemon):
    d = make_daemon(config=PATIENT)
    before = restarts(d.request("tree", timeout=60).data)
    with Raw(d.endpoint, keys=load_keys(d.keys_dir)) as raw:
        for timeout in (1e308, float("inf"), float("nan"), -1.0):
            reply = raw.ask(request_frame("status", timeout=timeout))
            assert reply.error.code == "malformed_request"
            assert "$.timeout" in reply.error.message, reply.error.message

        reply = raw.ask(request_frame("config_get", params={"path": "x" * 10**6}))
        assert reply.error.code == "limit_exceeded"
        assert "$.params.path" in reply.error.message and "65,536" in reply.error.message

        long_path = "capture." + "y" * 60_000  # within the limits: the ConfigServer answers at once
        reply = raw.ask(request_frame("config_get", params={"path": long_path}))
        assert reply.error.code == "unknown_key", reply.error

        reply = raw.ask(request_frame("status", params={"a": msgspec.Raw(deep_list(100_000))}))
        assert reply.error.code == "malformed_request" and "nested too deeply" in reply.error.message

        reply = raw.ask(request_frame("status", params={"a": msgspec.Raw(deep_list(100))}))
        assert reply.error.code == "limit_exceeded" and "nested more than 32" in reply.error.message

        reply = raw.ask(request_frame("x" * 300, to_layer="app"))
        assert reply.error.code == "malformed_request" and "$.operation" in reply.error.message

        reply = raw.ask(b"\x00" * (2 << 20))  # over api.max_request_bytes
        assert reply.error.code == "limit_exceeded"
        assert "1,048,576 (setting api.max_request_bytes)" in reply.error.message

        # the events filters that overflowed SQLite, 40 times each (40 restarted whole layers)
        for _ in range(40):
            for params, field in (({"until": 2**63}, "until"), ({"since": "9" * 30}, "since"),
                                  ({"since": "9" * 400 + "s"}, "since")):
                reply = raw.ask(request_frame("events", to_layer="query", params=params))
                assert reply is not None and reply.status == "error", reply
                assert field in reply.error.message, reply.error.message
    _unchanged(d, before)
    assert d.request("status").ok


def test_busy_is_answered_rather_than_queued(make_daemon):
    d = make_daemon(config=PATIENT + "max_in_flight_per_client = 1\n")
    before = restarts(d.request("tree", timeout=60).data)
    with Raw(d.endpoint, keys=load_keys(d.keys_dir)) as raw:
        for _ in range(200):
            raw.socket.send_multipart([b"", request_frame("tree")])
        replies = [raw.answer() for _ in range(200)]
    assert all(r is not None for r in replies)  # every request has exactly one answer
    codes = {r.status if r.ok else r.error.code for r in replies}
    assert codes <= {"ok", "busy"}, codes
    for reply in replies:
        if not reply.ok:
            assert "max_in_flight_per_client 1" in reply.error.message
    _unchanged(d, before)


def _asked_again(ask, attempts: int = 4):  # noqa: ANN001, ANN202
    """``ask()`` (each on a new connection), asked again when no answer came: once in CI
    (2026-12-05, the full suite) a fresh client's status after the flood below had no
    answer within 60 s, never seen with this test alone nor under CPU load (why is not
    known: the issue's note says so). An endpoint that stops answering still fails the
    test, after four asks."""
    for attempt in range(attempts):
        try:
            return ask()
        except RequestTimeout:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def test_status_jumps_the_queue_of_heavy_requests(make_daemon):
    """64 requests wait on a stopped layer (the endpoint's every slot); status, health and
    the endpoint's stats are still answered, before any of the 64 - and a flood of status
    from one connection is answered whole, never busy."""
    d = make_daemon(config=PATIENT)
    keys = load_keys(d.keys_dir)
    layer = d.request("health", to_layer="query", timeout=60).data["path"]
    pid = d.pids()[layer]
    heavy = [Raw(d.endpoint, keys=keys) for _ in range(8)]
    # status answers from the endpoint's last read of the layers; with none read yet it is
    # "unavailable" - and a loaded machine can make the first reads (0.5 s each) time out
    wait_until(lambda: (s := d.request("status", timeout=60)).ok and "layers_stale" not in s.data,
               timeout=120)
    os.kill(pid, signal.SIGSTOP)  # its requests can finish only after SIGCONT
    try:
        for raw in heavy:
            for _ in range(8):  # api.max_in_flight_per_client
                raw.send([b"", request_frame("health", to_layer="query", timeout=600.0)])
        wait_until(lambda: d.request("stats", to_layer="api", timeout=60).data["in_flight"] == 64,
                   timeout=120)
        with Raw(d.endpoint, keys=keys) as late:
            assert late.ask(request_frame("tree")).error.code == "busy"  # the slots are full
            for _ in range(500):
                late.send([b"", request_frame("status")])
            floods = [late.answer(timeout=120) for _ in range(500)]
        assert all(r is not None and r.ok for r in floods), {r.error.code for r in floods if r and not r.ok}
        status = _asked_again(lambda: d.request("status", timeout=30))
        assert status.ok and status.data["requests_in_flight"] == 64
        assert [layer["name"] for layer in status.data["layers"]][-1] == "api"
        stale = status.data.get("layers_stale")  # Thespian's sends wait behind the stopped layer's
        assert stale is None or "the application supervisor did not answer" in stale["reason"]
        assert _asked_again(lambda: d.request("health", to_layer="api", timeout=30)).ok
        assert not any(raw.socket.poll(0) for raw in heavy)  # none of the 64 has finished
    finally:
        os.kill(pid, signal.SIGCONT)
    answers = [raw.answer(timeout=120) for raw in heavy for _ in range(8)]
    assert all(a is not None and a.ok for a in answers)
    for raw in heavy:
        raw.close()


def test_hostile_batches_are_refused_counted_and_restart_nothing(make_daemon):
    d = make_daemon(config=PATIENT)
    ingest = d.request("endpoint", to_layer="capture").data["ingest"]
    before = restarts(d.request("tree", timeout=60).data)
    with Raw(ingest, keys=load_keys(d.keys_dir)) as host:
        host.send(hello(U64))  # struct.error once killed the ingest thread
        host.send(wire(U64, 1, batch()))
        host.send(wire(1, 2**32 - 1, batch()))  # claims 4 billion events, holds one
    ingest_stats = wait_until(lambda: (s := _ingest(d))["receiver_malformed"] >= 2
                              and s["batches_refused"] >= 1 and s, timeout=30)
    assert "beyond the largest a stream may use" in ingest_stats["receiver_last_error"]
    assert "claims 4,294,967,295 events" in ingest_stats["last_error"]

    poison = [
        batch_with_deep_custom_data(100_000),
        batch_with_deep_custom_data(200),
        batch_with_raw_dropped(msgspec.msgpack.encode(-1)),
        batch_with_raw_dropped(b"\xcf" + struct.pack("!Q", U64)),
        batch(function="f" * (48 << 20)),
    ]
    with Raw(ingest, keys=load_keys(d.keys_dir)) as host:
        host.send(hello(1, "poison"))
        for seq, payload in enumerate(poison, start=1):
            host.send(wire(seq, 1, payload))
        host.send(wire(len(poison) + 1, 1, batch(seq=99, producer="honest:1:1")))
        wait_until(lambda: _writers(d, "malformed") >= len(poison)
                   and _writers(d, "batches_written") >= 1, timeout=60)
    assert _ingest(d)["handoff_batches_malformed"] >= len(poison)
    _unchanged(d, before)


def test_silent_connections_are_closed_and_their_descriptors_freed(make_daemon):
    """300 raw TCP connections to the ingest that never say a byte: each holds one of the
    ingest process's descriptors until network.handshake_timeout_s (5 s by default), then
    the daemon closes it - the count of the process's open descriptors returns to where
    it was. (Opening them takes about a second: the listen backlog is 100.)"""
    d = make_daemon(config=PATIENT)
    ingest = d.request("endpoint", to_layer="capture", timeout=60).data["ingest"]
    host, port = ingest.removeprefix("tcp://").rsplit(":", 1)
    pid = d.pids()["capture/ingest"]

    def descriptors() -> int:
        return len(os.listdir(f"/proc/{pid}/fd"))
    before = restarts(d.request("tree", timeout=60).data)
    baseline = descriptors()
    silent = [socket.create_connection((host, int(port)), timeout=60) for _ in range(300)]
    try:
        wait_until(lambda: descriptors() >= baseline + 300, timeout=60)  # each one held one
        for sock in silent:  # the daemon hangs up on each (after its own greeting)
            while sock.recv(4096):
                pass
        wait_until(lambda: descriptors() <= baseline, timeout=60)
    finally:
        for sock in silent:
            sock.close()
    stats = wait_until(lambda: (s := _ingest(d))["connections_handshakes_failed"] >= 300 and s,
                       timeout=60)
    assert stats["connections_accepted"] >= 300 and stats["connections_peak_open"] >= 300
    assert stats["connections_open"] == 0 and stats["connections_closed"] >= 300
    with Raw(ingest, keys=load_keys(d.keys_dir)) as real_host:  # a host that speaks is heard
        real_host.send(hello(0, "after"))
        assert real_host.socket.poll(60_000)  # its credit
    assert _ingest(d)["connections_handshakes_completed"] >= 1
    _unchanged(d, before)


def _ingest(d) -> dict:
    """capture/ingest's own stats (its loop, receiver and hand-off counters, last errors)."""
    response = d.request("stats", to_layer="capture", timeout=60)
    assert response.ok, response.error
    return response.data


def _writers(d, counter: str) -> int:
    return sum(row.get(counter, 0) for path, row in _capture_stats(d).items() if "/writer-" in path)
