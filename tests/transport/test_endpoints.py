"""Endpoint parsing, binding and the errors that name what to change."""

from __future__ import annotations

import os
import socket

import pytest
import zmq

from elixirscope.transport import (
    ACCEPTED_FORMS,
    Endpoint,
    EndpointError,
    EndpointInUse,
    bind,
    connect,
    exposure,
    free_tcp_port,
    parse_endpoint,
)


@pytest.fixture
def zsocket():
    sockets = []

    def make(kind=zmq.ROUTER):
        sock = zmq.Context.instance().socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sockets.append(sock)
        return sock

    yield make
    for sock in sockets:
        sock.close(linger=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp://127.0.0.1:5555", Endpoint("tcp", host="127.0.0.1", port=5555)),
        ("tcp://:5555", Endpoint("tcp", host="127.0.0.1", port=5555)),
        ("tcp://127.0.0.1:0", Endpoint("tcp", host="127.0.0.1", port=None)),
        ("tcp://*:*", Endpoint("tcp", host="*", port=None)),
        ("tcp://[::1]:80", Endpoint("tcp", host="[::1]", port=80)),
        ("tcp://db.example.com:6000", Endpoint("tcp", host="db.example.com", port=6000)),
        ("ipc:///tmp/es.sock", Endpoint("ipc", path="/tmp/es.sock")),
        ("ipc://@abstract", Endpoint("ipc", path="@abstract")),
    ],
)
def test_accepted_forms_parse(text, expected):
    assert parse_endpoint(text) == expected


def test_endpoint_prints_as_a_zmq_address():
    assert str(parse_endpoint("tcp://:0")) == "tcp://127.0.0.1:*"
    assert str(parse_endpoint("ipc:///run/x")) == "ipc:///run/x"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("127.0.0.1:5555", "no tcp:// or ipc:// prefix"),
        ("udp://127.0.0.1:5555", "unsupported transport 'udp'"),
        ("inproc://x", "unsupported transport 'inproc'"),
        ("tcp://127.0.0.1", "missing :PORT"),
        ("tcp://127.0.0.1:http", "port must be 1-65535, 0 or *, got 'http'"),
        ("tcp://127.0.0.1:70000", "port must be 1-65535, 0 or *, got '70000'"),
        ("tcp://::1:5555", "bad host '::1' (put IPv6 addresses in brackets)"),
        ("ipc://", "missing PATH"),
        ("ipc://" + "x" * 200, "PATH is longer than 107 bytes (a Unix socket limit)"),
    ],
)
def test_bad_endpoints_name_the_string_and_the_accepted_forms(text, why):
    with pytest.raises(EndpointError) as caught:
        parse_endpoint(text)
    assert str(caught.value) == f"Invalid endpoint {text!r}: {why}; expected {ACCEPTED_FORMS}"
    assert caught.value.endpoint == text


def test_non_string_endpoint_is_refused():
    with pytest.raises(EndpointError, match=r"Invalid endpoint 5555: expected `str`, got `int`"):
        parse_endpoint(5555)


def test_bind_returns_the_actual_port(zsocket):
    actual = bind(zsocket(), "tcp://127.0.0.1:0")
    host, port = actual.removeprefix("tcp://").rsplit(":", 1)
    assert host == "127.0.0.1" and 1 <= int(port) <= 65535


def test_bind_ipc_returns_the_path(zsocket, tmp_path):
    path = tmp_path / "a.sock"
    assert bind(zsocket(), f"ipc://{path}") == f"ipc://{path}"


def test_binding_a_taken_tcp_port_raises_endpoint_in_use(zsocket):
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    bind(zsocket(), endpoint)
    with pytest.raises(EndpointInUse) as caught:
        bind(zsocket(), endpoint)
    assert str(caught.value) == (
        f"{endpoint} is already in use by another process; "
        "choose another port or stop the process holding it"
    )


def test_binding_a_served_ipc_path_raises_instead_of_stealing_it(zsocket, tmp_path):
    endpoint = f"ipc://{tmp_path}/served.sock"
    bind(zsocket(), endpoint)
    with pytest.raises(EndpointInUse, match="already in use"):
        bind(zsocket(), endpoint)


def test_a_stale_ipc_file_is_replaced(zsocket, tmp_path):
    path = tmp_path / "stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: what a crashed process leaves
    assert bind(zsocket(), f"ipc://{path}") == f"ipc://{path}"


def test_binding_over_a_regular_file_is_refused(zsocket, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("keep me")
    with pytest.raises(EndpointError, match="exists and is not a socket"):
        bind(zsocket(), f"ipc://{path}")
    assert path.read_text() == "keep me"


def test_binding_in_a_missing_directory_says_so(zsocket, tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(EndpointError) as caught:
        bind(zsocket(), f"ipc://{missing}/x.sock")
    assert str(caught.value) == (
        f"Cannot bind ipc://{missing}/x.sock: directory {str(missing)!r} does not exist; "
        "create it first or choose another path"
    )


def test_binding_a_foreign_address_says_it_is_not_local(zsocket):
    with pytest.raises(EndpointError, match="not a loopback address.*network.allow_remote"):
        bind(zsocket(), "tcp://192.0.2.1:5555")  # refused before ZeroMQ is asked
    exposure.allow_remote_binds(True)
    try:
        with pytest.raises(EndpointError, match="is not an address or interface of this machine"):
            bind(zsocket(), "tcp://192.0.2.1:5555")  # TEST-NET-1: never assigned to a host
    finally:
        exposure.allow_remote_binds(False)


def test_connecting_to_a_wildcard_port_teaches_the_fix(zsocket):
    with pytest.raises(EndpointError) as caught:
        connect(zsocket(zmq.DEALER), "tcp://127.0.0.1:0")
    assert "only make sense for bind" in str(caught.value)
    assert "its .endpoint attribute" in str(caught.value)


def test_free_tcp_port_is_bindable(zsocket):
    port = free_tcp_port()
    assert bind(zsocket(), f"tcp://127.0.0.1:{port}") == f"tcp://127.0.0.1:{port}"


def test_ports_picked_before_any_is_bound_are_distinct(monkeypatch):
    # A node picks its ingest, forward and control ports, then binds them: a random
    # pick that repeats an earlier one (nothing holds it yet) must be skipped.
    from elixirscope.transport import endpoints

    first = free_tcp_port()
    other = free_tcp_port()
    picks = iter([first, first, other, first, other])
    fallback = endpoints._random.randrange
    monkeypatch.setattr(
        endpoints._random, "randrange", lambda low, high: next(picks, None) or fallback(low, high)
    )
    monkeypatch.setattr(endpoints, "_handed_out", {first: None})
    chosen = [free_tcp_port() for _ in range(3)]
    assert first not in chosen
    assert len(set(chosen)) == 3


def test_ipc_path_limit_counts_bytes_not_characters():
    # 36 three-byte characters = 108 bytes: over the limit although only 36 characters
    with pytest.raises(EndpointError, match="longer than 107 bytes"):
        parse_endpoint("ipc://" + "\u20ac" * 36)
    assert os.fsencode("\u20ac") == b"\xe2\x82\xac"
