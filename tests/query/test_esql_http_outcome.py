"""An HTTP attempt that got no response has no status code: ESQL's ``code`` is null in
JSON and CSV, and a table says why (``timeout``, or the exception's type) - never a 0
that reads like a real code."""

from __future__ import annotations

from esql_recordings import T0, frame

from elixirscope.contracts.trace import HttpCall
from elixirscope.query.esql import esql_report
from elixirscope.query.esql.render import csv_lines
from elixirscope.store.eventstore import EventStore


def attempt(n: int, status: int, error: str | None = None, timeout: bool = False) -> HttpCall:
    return HttpCall(id=n, ts=T0 + n * 1000, thread=1, correlation_id="c", parent_id=0,
                    library="httpx", method="POST", url="http://mail/send", attempt=n,
                    status=status, duration_ns=1000, error=error, timeout=timeout)


def test_an_attempt_without_a_response_shows_why_not_a_code(tmp_path):
    store = EventStore.open(tmp_path)
    try:
        store.append(frame("n1:7:1", 7, 1, [
            attempt(1, 0, "ReadTimeout: timed out", timeout=True),
            attempt(2, 0, "ConnectError: [Errno 111] Connection refused"),
            attempt(3, 200),
        ]))
    finally:
        store.close()
    report = esql_report(str(tmp_path), "http where attempt >= 1", all_runs=True)
    assert [r[report["columns"].index("code")] for r in report["rows"]] == [None, None, 200]
    table = report["text"].splitlines()
    assert table[-4].split()[-4:] == ["attempt", "code", "duration", "location"]
    assert [line.split()[-5:-3] for line in table[-3:]] == [
        ["1", "timeout"], ["2", "ConnectError"], ["3", "200"]]
    assert list(csv_lines(report["columns"], report["rows"]))[1].split(",")[4] == ""
    # a number compares with numbers only: no response is no code
    assert esql_report(str(tmp_path), "count(*) from http where code >= 0",
                       all_runs=True)["rows"] == [[1]]
    assert esql_report(str(tmp_path), "attempt from http where code = null",
                       all_runs=True)["rows"] == [[1], [2]]


def test_trace_context_timeouts_and_ignored_traceparents_are_fields(tmp_path):
    from elixirscope.contracts.trace import RequestStart

    sent = HttpCall(id=9, ts=T0 + 9000, thread=1, correlation_id="c", parent_id=0,
                    library="urllib3", method="GET", url="http://up/x", attempt=1, status=200,
                    duration_ns=10, trace_id="ab" * 16, span_id="cd" * 8)  # fmt: skip
    bad = RequestStart(id=10, ts=T0 + 10_000, thread=1, correlation_id="d", parent_id=0,
                       protocol="http", method="GET", path="/p", client="127.0.0.1:5",
                       traceparent_error="traceparent 'x' is not version-traceid-spanid-flags")  # fmt: skip
    store = EventStore.open(tmp_path)
    try:
        store.append(frame("n1:7:1", 7, 1, [attempt(1, 0, "ReadTimeout: t", timeout=True),
                                            attempt(2, 200), sent, bad]))  # fmt: skip
    finally:
        store.close()

    def rows(query: str) -> list:
        return esql_report(str(tmp_path), query, all_runs=True)["rows"]

    assert rows("attempt from http where timeout = true") == [[1]]
    assert rows("library, span_id from http where trace_id = 'abab*'") == [["urllib3", "cd" * 8]]
    assert rows("client from events where traceparent_error is not null") == [["127.0.0.1:5"]]
