"""Session and REPL helpers: what the prompt and completion learn, quietly."""

from __future__ import annotations

import io
import threading

import zmq

from elixirscope.console import Session
from elixirscope.console.commands import app_request
from elixirscope.console.repl import Completer, history_path, prompt
from elixirscope.console.session import (
    EXIT_OK,
    EXIT_UNREACHABLE,
    tree_paths,
    unreachable_message,
)
from elixirscope.transport import RequestServer, bind, free_tcp_port


def test_the_prompt_shows_the_endpoint_until_status_names_the_node(daemon):
    out, err = io.StringIO(), io.StringIO()
    with Session(daemon.endpoint, out=out, err=err) as session:
        assert prompt(session) == f"elixirscope[{daemon.endpoint}]> "
        assert session.execute("status") == 0
        assert prompt(session) == "elixirscope[es-test@localhost]> "


def test_a_tree_answer_is_kept_for_path_completion(daemon):
    with Session(daemon.endpoint, out=io.StringIO()) as session:
        session.execute("tree")
        assert session.tree_paths[:3] == ["capture", "capture/ingest", "capture/writer"]
        assert "" not in session.tree_paths


def test_quiet_fetch_returns_none_and_prints_nothing_when_unreachable():
    out, err = io.StringIO(), io.StringIO()
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    with Session(endpoint, timeout=0.1, out=out, err=err) as session:
        assert session.fetch(app_request("status")) is None
    assert out.getvalue() == err.getvalue() == ""


def test_a_daemon_that_stopped_is_said_at_once_and_reached_again_when_back(daemon):
    """The session's one client, once connected: while the daemon is stopped a command
    ends at once (a wait of 600 s would otherwise run), and reaches it once it is back."""
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    err = io.StringIO()
    with Session(endpoint, timeout=600, out=io.StringIO(), err=err) as session:
        with RequestServer(endpoint, daemon.fake, layer="api"):
            assert session.execute("status") == EXIT_OK
        assert session.execute("status") == EXIT_UNREACHABLE
        assert session.execute("layers") == EXIT_UNREACHABLE
        with RequestServer(endpoint, daemon.fake, layer="api"):
            assert session.execute("status") == EXIT_OK
    first, then = err.getvalue().splitlines()
    # the first command may still go out on the closing connection: then it was lost
    lost = unreachable_message(endpoint, 600, refused=True, lost=True)
    assert first in (then, lost)
    assert then == (
        f"no daemon at {endpoint}: the connection was refused (start one with "
        "`elixirscope daemon`, or pass --connect)"
    )


def _take_one_and_go_away(endpoint: str) -> threading.Thread:
    """A daemon (a CURVE server, as the real one) that takes one request and goes away
    without answering; the thread that does it."""
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    bind(sock, endpoint)

    def serve() -> None:
        try:
            if sock.poll(10_000):
                sock.recv_multipart()
        finally:
            sock.close(linger=0)
            context.term()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_daemon_that_went_away_with_the_command_unanswered_says_so(daemon):
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    err = io.StringIO()
    with Session(endpoint, timeout=600, out=io.StringIO(), err=err) as session:
        gone = _take_one_and_go_away(endpoint)
        assert session.execute("restart capture/ingest") == EXIT_UNREACHABLE
        gone.join(10)
        with RequestServer(endpoint, daemon.fake, layer="api"):
            assert session.execute("status") == EXIT_OK
    assert err.getvalue() == (
        f"the daemon at {endpoint} went away before answering: its connection closed and is "
        "now refused, so the command may or may not have run (start it again with "
        "`elixirscope daemon`, or pass --connect)\n"
    )


def test_tree_paths_of_a_bad_shape_is_empty():
    assert tree_paths({"root": "nope"}) == [] and tree_paths(None) == []


def test_history_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ELIXIRSCOPE_HISTORY", str(tmp_path / "h"))
    assert history_path() == tmp_path / "h"
    monkeypatch.delenv("ELIXIRSCOPE_HISTORY")
    assert history_path().name == ".elixirscope_history"


def test_config_completion_offers_sections_and_keys_and_only_updatable_ones_for_set():
    every = Completer._config_paths()
    updatable = Completer._config_paths(updatable_only=True)
    assert "capture" in every and "capture.batch_size" in every
    assert "capture.batch_size" in updatable and "node.name" not in updatable
    assert set(updatable) <= set(every)
