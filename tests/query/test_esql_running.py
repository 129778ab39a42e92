"""Queries run beside the Query layer: each on its own thread, cancellable by key; and a real
daemon that keeps answering while a long query reads, and stops it when asked."""

from __future__ import annotations

import threading

import pytest
from daemons import make_daemon  # noqa: F401 - the fixture
from esql_recordings import record_split
from waiting import wait_until

from elixirscope.query.esql import EsqlCancelled
from elixirscope.query.esql.running import RunningQueries


def test_queries_run_on_threads_and_stop_when_cancelled():
    queries = RunningQueries(limit=2)
    release = threading.Event()

    def waits(cancel: threading.Event) -> str:
        while not cancel.is_set():
            if release.wait(0.01):
                return "done"
        raise EsqlCancelled("the query was cancelled before it ended")

    queries.start("a", waits)
    queries.start("b", waits)
    with pytest.raises(ValueError, match="2 queries are running already"):
        queries.start("c", waits)
    with pytest.raises(ValueError, match="already running"):
        queries.start("a", waits)
    assert {r["request"] for r in queries.running()} == {"a", "b"}
    assert queries.cancel("a") == ["a"] and queries.cancel("nosuch") == []
    ended = wait_until(lambda: queries.finished() or None, timeout=30)
    assert [(e.key, type(e.error)) for e in ended] == [("a", EsqlCancelled)]
    release.set()
    ended = wait_until(lambda: queries.finished() or None, timeout=30)
    assert [(e.key, e.value, e.error) for e in ended] == [("b", "done", None)]
    assert len(queries) == 0 and queries.finished() == []
    with pytest.raises(ValueError, match="limit"):
        RunningQueries(limit=0)


def test_a_daemon_cancels_a_running_query_and_answers_meanwhile(make_daemon, tmp_path):  # noqa: F811
    # recorded before the daemon starts (the store it then opens): see the note on issue 12
    # about a SIGBUS once seen when a test process wrote into a running daemon's data dir
    record_split(tmp_path / "node-a-data", seed=5, producers=4, calls=100_000)
    d = make_daemon()
    assert d.data_dir == tmp_path / "node-a-data"
    slow = "count(*) from calls where depth > 50 and args.x = 1"
    answers: list = []

    # a bad parameter is answered at once, with what is wrong
    bad = d.request("esql", "query", timeout=30, query=slow, nonsense=1)
    assert bad.status == "error" and "nonsense" in bad.error.message
    bad = d.request("esql_cancel", "query", timeout=30, request=3)
    assert bad.status == "error" and "request id" in bad.error.message

    def asking() -> None:
        answers.append(d.request("esql", "query", timeout=120, query=slow))

    asker = threading.Thread(target=asking)
    asker.start()
    try:
        running = wait_until(
            lambda: d.request("esql_running", "query", timeout=30).data["running"] or None,
            timeout=60,
        )
        assert d.request("health", "query", timeout=30).ok  # answering while it reads
        cancelled = d.request("esql_cancel", "query", timeout=30, request=running[0]["request"])
        assert cancelled.data["cancelled"] == [running[0]["request"]]
    finally:
        asker.join(120)
    (response,) = answers
    assert response.status == "error" and response.error.code == "invalid_params"
    assert "cancelled" in response.error.message
    assert d.request("esql_running", "query", timeout=30).data["running"] == []
    assert d.request("esql_cancel", "query", timeout=30).data["cancelled"] == []
