"""Findings read over ``--daemon`` point their next commands at the daemon, as the read
was: the daemon wrote them for its own data dir, which the reader may not have."""

from __future__ import annotations

from types import SimpleNamespace

from elixirscope.cli.insights import _daemon_commands


def test_the_commands_to_run_next_read_through_the_daemon() -> None:
    report = {
        "text": "    look    elixirscope calltree --data-dir /srv/es/data --run 0156 a373",
        "findings": [{"commands": ["elixirscope events --data-dir /srv/es/data --type http"]}],
    }
    args = SimpleNamespace(daemon="tcp://10.0.0.5:7001", keys="/home/me/keys")
    out = _daemon_commands(report, args)
    via = "--daemon tcp://10.0.0.5:7001 --keys /home/me/keys"
    assert out["text"] == f"    look    elixirscope calltree {via} --run 0156 a373"
    assert out["findings"][0]["commands"] == [f"elixirscope events {via} --type http"]
    bare = _daemon_commands({"text": "x --data-dir /d y"}, SimpleNamespace(daemon="ipc://s", keys=None))
    assert bare["text"] == "x --daemon ipc://s y"
