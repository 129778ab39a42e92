"""Session and REPL helpers: what the prompt and completion learn, quietly."""

from __future__ import annotations

import io

from elixirscope.console import Session
from elixirscope.console.commands import app_request
from elixirscope.console.repl import Completer, history_path, prompt
from elixirscope.console.session import tree_paths
from elixirscope.transport import free_tcp_port


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
