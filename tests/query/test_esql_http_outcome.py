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
    assert table[-4].split()[-3:] == ["attempt", "code", "duration"]
    assert [line.split()[-4:-2] for line in table[-3:]] == [
        ["1", "timeout"], ["2", "ConnectError"], ["3", "200"]]
    assert list(csv_lines(report["columns"], report["rows"]))[1].split(",")[4] == ""
    # a number compares with numbers only: no response is no code
    assert esql_report(str(tmp_path), "count(*) from http where code >= 0",
                       all_runs=True)["rows"] == [[1]]
    assert esql_report(str(tmp_path), "attempt from http where code = null",
                       all_runs=True)["rows"] == [[1], [2]]
