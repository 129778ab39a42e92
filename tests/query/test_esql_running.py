"""Queries run beside the Query layer: each on its own thread, cancellable by key; and a real
daemon that keeps answering while a long query reads, and stops it when asked."""

from __future__ import annotations

import threading

import pytest
from daemons import make_daemon  # noqa: F401 - the fixture
from esql_recordings import record_split
from waiting import wait_until

from elixirscope.contracts import Request
from elixirscope.query.esql import EsqlCancelled
from elixirscope.query.esql.running import RunningQueries
from elixirscope.transport import RequestClient, load_keys


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


def test_a_cancel_that_lands_is_the_outcome_and_an_ended_query_is_not_cancellable():
    queries = RunningQueries(limit=2)
    checked, release = threading.Event(), threading.Event()

    def past_its_last_check(cancel: threading.Event) -> str:
        checked.set()
        release.wait(30)  # a hang guard: the test releases it
        return "rows"

    queries.start("a", past_its_last_check)
    checked.wait(30)
    assert queries.cancel("a") == ["a"]
    release.set()
    ended = wait_until(lambda: queries.finished() or None, timeout=30)
    assert [(e.key, e.value, type(e.error)) for e in ended] == [("a", None, EsqlCancelled)]

    queries.start("b", lambda cancel: "rows")
    # ended, not yet collected: no longer running, nothing to cancel
    wait_until(lambda: queries.running() == [], timeout=30)
    assert queries.cancel("b") == [] and queries.cancel() == []
    assert [(e.key, e.value, e.error) for e in queries.finished()] == [("b", "rows", None)]


def test_a_daemon_cancels_a_running_query_and_answers_meanwhile(make_daemon, tmp_path):  # noqa: F811
    # recorded before the daemon starts (the store it then opens): see the note on issue 12
    # about a SIGBUS once seen when a test process wrote into a running daemon's data dir
    # many events (a query long enough to cancel) in few transactions (quick to write)
    record_split(tmp_path / "node-a-data", seed=5, producers=4, calls=100_000, sizes=(2000, 4000))
    d = make_daemon()
    assert d.data_dir == tmp_path / "node-a-data"
    slow = "count(*) from calls where depth > 50 and args.x = 1"
    answers: list = []

    def ask(operation: str, **params):
        """The query layer's answer, asked again while the endpoint says "unavailable"
        (its look-up of the layer timed out on a loaded machine: it says try again)."""
        def answered():
            r = d.request(operation, "query", timeout=120, **params)
            return None if not r.ok and r.error.code == "unavailable" else r
        return wait_until(answered, timeout=300)

    def asking() -> None:  # no query timeout: a loaded machine must not end it first
        def answered():
            with RequestClient(d.endpoint, timeout=600, keys=load_keys(d.keys_dir)) as client:
                r = client.request(Request(operation="esql", to_layer="query",
                                           params={"query": slow, "timeout": None}))
            return None if not r.ok and r.error.code == "unavailable" else r
        answers.append(wait_until(answered, timeout=600))

    # a bad parameter is answered at once, with what is wrong
    bad = ask("esql", query=slow, nonsense=1)
    assert bad.status == "error" and "nonsense" in bad.error.message
    bad = ask("esql_cancel", request=3)
    assert bad.status == "error" and "request id" in bad.error.message

    def cancelling() -> list:
        """Ask, and cancel while it reads: the ids cancelled ([] when it ended first)."""
        asker = threading.Thread(target=asking)
        asker.start()
        try:
            running = wait_until(lambda: ask("esql_running").data["running"] or None, timeout=300)
            assert ask("health").ok  # answering while it reads
            return ask("esql_cancel", request=running[0]["request"]).data["cancelled"]
        finally:
            asker.join(600)

    # a cancel that names the query is its outcome; one that comes after it ended names
    # nothing (the query answered): then again, until one lands (a hang guard of 5 tries)
    for _ in range(5):
        if cancelling():
            break
        assert answers.pop().ok
    else:
        raise AssertionError("every query ended before its cancel")
    (response,) = answers
    assert response.status == "error" and response.error.code == "invalid_params"
    assert "cancelled" in response.error.message
    assert ask("esql_running").data["running"] == []
    assert ask("esql_cancel").data["cancelled"] == []
