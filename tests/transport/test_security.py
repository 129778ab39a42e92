"""CURVE + ZAP on the transport: only clients holding the node's client key get an answer."""

from __future__ import annotations

import os
import stat

import pytest
import zmq

from elixirscope.contracts import Request
from elixirscope.transport import (
    KeyProblem,
    KeyRefused,
    Operations,
    RequestClient,
    RequestServer,
    ensure_keys,
    load_keys,
    security,
    serve_with,
)

WAIT = 3.0  # the wait a refused client gets before it gives up (a hang guard, not asserted)


@pytest.fixture
def node_keys(tmp_path):
    keys = ensure_keys(tmp_path / "keys")
    serve_with(keys)
    yield keys
    serve_with(None)


def _server():
    handled: list[Request] = []

    def echo(request: Request):
        handled.append(request)
        return request.params
    return RequestServer("tcp://127.0.0.1:0", Operations("foundation", {"echo": echo}),
                         layer="foundation"), handled


def test_keys_are_made_once_owner_only_and_reloaded_the_same(tmp_path):
    first = ensure_keys(tmp_path / "keys")
    again = ensure_keys(tmp_path / "keys")
    assert (first.server_public, first.client_public) == (again.server_public, again.client_public)
    assert first.client_public in first.authorized
    for path in (tmp_path / "keys").rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    client = load_keys(tmp_path / "keys")
    assert client.server_secret is None and client.server_public == first.server_public


def test_a_client_with_the_key_is_answered(node_keys):
    server, handled = _server()
    with server, RequestClient(server.endpoint, timeout=WAIT,
                               keys=load_keys(node_keys.directory)) as client:
        response = client.request(Request(operation="echo", to_layer="foundation", params={"a": 1}))
    assert response.ok and response.data == {"a": 1} and len(handled) == 1
    assert security.auth_stats()["accepted"] >= 1


def test_a_client_without_a_key_or_with_another_nodes_key_is_never_heard(node_keys, tmp_path):
    server, handled = _server()
    stranger = ensure_keys(tmp_path / "other-node")
    refused_before = security.auth_stats()["refused"]
    with server:
        # plain: no CURVE at all - the handshake never completes
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(server.endpoint)
        from elixirscope.contracts import encode
        sock.send_multipart([b"", encode(Request(operation="echo", to_layer="foundation"))])
        assert sock.poll(int(WAIT * 1000)) == 0
        sock.close(linger=0)
        # CURVE with the wrong node's client key: refused by ZAP
        forged = security.Keys(stranger.directory, node_keys.server_public,
                               stranger.client_public, stranger.client_secret)
        for refused_ends in (False, True):  # a refused key is not a refused connection
            with RequestClient(server.endpoint, timeout=WAIT, keys=forged,
                               refused_ends=refused_ends) as client, \
                    pytest.raises(KeyRefused, match="refused this client's key.*--keys DIR"):
                client.request(Request(operation="echo", to_layer="foundation"))
    assert handled == []
    assert security.auth_stats()["refused"] > refused_before


def test_missing_or_open_keys_are_a_clear_error(tmp_path):
    with pytest.raises(KeyProblem, match="no key at .*server.key.*--keys DIR"):
        load_keys(tmp_path / "nowhere")
    keys = ensure_keys(tmp_path / "keys")
    secret = keys.directory / "client.key_secret"
    os.chmod(secret, 0o644)
    with pytest.raises(KeyProblem, match="readable by others.*chmod 600"):
        load_keys(keys.directory)
