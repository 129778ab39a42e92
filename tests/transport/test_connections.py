"""Connections to a bound socket: a silent one is closed after the handshake timeout, and
every kind of connection is counted - real ZeroMQ and real TCP sockets on loopback."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest
import zmq
from waiting import wait_until

from elixirscope.transport import bind, ensure_keys, security
from elixirscope.transport.connections import (
    DEFAULT_HANDSHAKE_TIMEOUT_S,
    ConnectionWatch,
    handshake_timeout,
    set_handshake_timeout,
)


@pytest.fixture
def quick_handshakes():
    set_handshake_timeout(0.3)
    yield
    set_handshake_timeout(DEFAULT_HANDSHAKE_TIMEOUT_S)


def _counted(watch: ConnectionWatch, **least: int) -> bool:
    watch.read()
    return all(getattr(watch.stats, name) >= n for name, n in least.items())


def test_silent_connections_are_closed_and_counted(quick_handshakes):
    context = zmq.Context()
    server = context.socket(zmq.ROUTER)
    endpoint = bind(server, "tcp://127.0.0.1:0")
    assert server.getsockopt(zmq.HANDSHAKE_IVL) == 300
    watch = ConnectionWatch(server)
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    try:
        silent = [socket.create_connection((host, int(port)), timeout=30) for _ in range(5)]
        for sock in silent:  # hung up on by the server (after its greeting)
            while sock.recv(4096):
                pass
            sock.close()
        wait_until(lambda: _counted(watch, accepted=5, handshakes_failed=5, closed=5))
        assert (watch.stats.open, watch.stats.handshakes_completed) == (0, 0)
        client = context.socket(zmq.DEALER)
        client.connect(endpoint)
        client.send(b"hello")
        assert server.recv_multipart()[1] == b"hello"
        wait_until(lambda: _counted(watch, handshakes_completed=1))
        assert watch.stats.open == 1 and watch.stats.peak_open >= 1
        client.close(0)
        wait_until(lambda: _counted(watch, closed=6))
        assert watch.stats.open == 0
    finally:
        watch.close()
        server.close(0)
        context.term()


def test_a_refused_key_is_counted(tmp_path):
    keys = ensure_keys(tmp_path / "keys")
    context = zmq.Context()
    server = context.socket(zmq.ROUTER)
    security.secure_server(server, keys)
    endpoint = bind(server, "tcp://127.0.0.1:0")
    watch = ConnectionWatch(server)
    stranger = context.socket(zmq.DEALER)
    public, secret = zmq.curve_keypair()
    security.secure_client(stranger, replace(keys, client_public=public, client_secret=secret))
    try:
        stranger.connect(endpoint)
        stranger.send(b"let me in")
        wait_until(lambda: _counted(watch, keys_refused=1))
        assert watch.stats.handshakes_completed == 0
        assert not server.poll(100)  # nothing of it reached the socket
    finally:
        stranger.close(0)
        watch.close()
        server.close(0)
        context.term()


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), True, "5"])
def test_the_handshake_timeout_is_a_positive_number_of_seconds(bad):
    with pytest.raises(ValueError, match="handshake timeout must be a number of seconds > 0"):
        set_handshake_timeout(bad)
    assert handshake_timeout() == DEFAULT_HANDSHAKE_TIMEOUT_S
