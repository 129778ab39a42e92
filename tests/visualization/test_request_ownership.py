"""Which request made a query or an HTTP call, when a recorded callee joins its caller's
chain (``traceparent``) and both requests span one moment."""

from __future__ import annotations

from types import SimpleNamespace

from elixirscope.visualization.views import made_by_request


def _request(rid: str, start: int, end: int | None, lane: int, chain: str = "c") -> dict:
    return {"id": rid, "start": start, "end": end, "lane": lane, "chain": chain}


def _query(start: int, lane: int, chain: str = "c") -> dict:
    return {"kind": "query", "start": start, "end": start + 1, "lane": lane, "chain": chain}


def test_a_query_belongs_to_the_request_on_its_own_thread_else_the_innermost():
    caller = _request("quote", 0, 100, lane=1)
    callee = _request("price", 10, 60, lane=2)  # answered the caller's HTTP call
    other = _request("other", 0, 100, lane=3, chain="d")
    q_caller = _query(55, lane=1)  # the caller's cache write as the callee's reqend lags
    q_callee = _query(20, lane=2)
    q_worker = _query(30, lane=9)  # a sync handler's worker thread: the innermost request
    q_after = _query(80, lane=9)
    q_outside = _query(150, lane=1)
    q_other = _query(50, lane=3, chain="d")
    model = SimpleNamespace(requests=[caller, other, callee], last_ts=200,
                            queries=[q_caller, q_callee, q_worker, q_after, q_outside, q_other])
    made = made_by_request(model)
    assert made == {"quote": [q_caller, q_after], "price": [q_callee, q_worker], "other": [q_other]}


def test_an_unfinished_request_spans_to_the_end_of_the_run():
    running = _request("r", 10, None, lane=1)
    model = SimpleNamespace(requests=[running], last_ts=500, queries=[_query(5, 1), _query(400, 1)])
    assert made_by_request(model) == {"r": [_query(400, 1)]}
