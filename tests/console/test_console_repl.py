"""The interactive console in a real terminal (pexpect): commands, errors, history."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect
from waiting import wait_until

from elixirscope.transport import free_tcp_port

REPO = Path(__file__).resolve().parents[2]
PROMPT = "elixirscope[es-test@localhost]> "


def _spawn(endpoint: str, history: Path, *extra: str) -> pexpect.spawn:
    env = dict(os.environ, ELIXIRSCOPE_HISTORY=str(history), TERM="dumb", LC_ALL="C.UTF-8")
    return pexpect.spawn(
        sys.executable,
        ["-m", "elixirscope.console", "--connect", endpoint, *extra],
        cwd=str(REPO),
        env=env,
        encoding="utf-8",
        timeout=10,
        dimensions=(40, 200),
    )


def test_a_session_runs_commands_reports_mistakes_and_keeps_history(daemon, tmp_path):
    history = tmp_path / "history"
    child = _spawn(daemon.endpoint, history)
    try:
        child.expect_exact(f"connected to es-test@localhost at {daemon.endpoint}")
        child.expect_exact(PROMPT)
        child.sendline("status")
        child.expect(r"capture\s+capture\s+running\s+4303\s+0")
        child.expect_exact(PROMPT)
        child.sendline("stauts")
        child.expect_exact("unknown command 'stauts'; did you mean 'status'?")
        child.expect_exact(PROMPT)
        child.send("tre\t\r")  # Tab completes the only command starting with "tre"
        child.expect(r"capture/ingest\s+worker")
        child.expect_exact(PROMPT)
        child.send("restart capture/in\t\r")  # tree paths complete too
        child.expect_exact("restart capture/ingest (pid 4304 -> 4308)")
        child.expect_exact(PROMPT)
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert history.read_text().splitlines()[-5:] == [
        "status",
        "stauts",
        "tree",
        "restart capture/ingest",
        "quit",
    ]


def test_ctrl_d_leaves_and_an_unreachable_daemon_is_reported_not_fatal(tmp_path):
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    child = _spawn(endpoint, tmp_path / "history", "--timeout", "0.2")
    try:
        child.expect_exact(f"no daemon at {endpoint}: the connection was refused")
        child.expect_exact(f"elixirscope[{endpoint}]> ")
        child.sendline("layers")
        child.expect_exact(f"no daemon at {endpoint}: the connection was refused")
        child.expect_exact(f"elixirscope[{endpoint}]> ")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_ctrl_c_during_a_query_asks_the_daemon_to_cancel_it_and_keeps_the_session(
    daemon, tmp_path
):
    child = _spawn(daemon.endpoint, tmp_path / "history")
    received = daemon.fake.received
    try:
        child.expect_exact(PROMPT)
        child.sendline("query calls where duration > 1s")
        wait_until(lambda: any(r.operation == "esql" for r in received), timeout=30)
        (asked,) = [r for r in received if r.operation == "esql"]
        child.sendintr()
        child.expect_exact("interrupted; the daemon may still act on it")
        daemon.fake.esql_release.set()  # the server then serves the cancel
        cancels = wait_until(
            lambda: [r for r in received if r.operation == "esql_cancel"] or None, timeout=30
        )
        assert [(c.to_layer, c.params) for c in cancels] == [("query", {"request": asked.id})]
        child.expect_exact(PROMPT)
        child.sendline("status")  # the late answer to the query is not taken for this one
        child.expect(r"capture\s+capture\s+running\s+4303\s+0")
        child.expect_exact(PROMPT)
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        daemon.fake.esql_release.set()
        child.close()
    assert child.exitstatus == 0
