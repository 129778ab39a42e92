"""Which request made a query or an HTTP call: the one whose own call encloses it in the
call tree, also when requests share a chain (``traceparent``) and overlap in time."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from elixirscope.visualization.views import made_by_request


def _request(rid: str, start: int, end: int | None, lane: int, call_row: int = -1,
             chain: str = "c") -> dict:  # fmt: skip
    return {"id": rid, "start": start, "end": end, "lane": lane, "chain": chain,
            "call_row": call_row}  # fmt: skip


def _query(start: int, lane: int, call_row: int = -1, chain: str = "c") -> dict:
    return {"kind": "query", "start": start, "end": start + 1, "lane": lane, "chain": chain,
            "call_row": call_row}  # fmt: skip


def test_a_query_belongs_to_the_request_whose_call_encloses_it():
    """Rows: 0 drive (the in-process client), 1 and 3 two requests' own calls (both in the
    client's chain, overlapping), 2 and 4 their handlers, 5 a helper under handler 2."""
    parent = np.array([-1, 0, 1, 0, 3, 2])
    first = _request("first", 10, 100, lane=1, call_row=1)
    second = _request("second", 20, 90, lane=1, call_row=3)  # begun later, ended sooner
    in_first = _query(50, lane=1, call_row=5)  # inside second's span: still the first's
    in_second = _query(60, lane=1, call_row=4)
    client_own = _query(55, lane=1, call_row=0)  # the client's, in no request
    model = SimpleNamespace(chains=[], spawned={}, detached={}, requests=[first, second], last_ts=200, parent=parent,
                            queries=[in_first, in_second, client_own])  # fmt: skip
    assert made_by_request(model) == {"first": [in_first], "second": [in_second]}


def test_one_outside_recorded_calls_goes_to_a_request_spanning_it():
    caller = _request("quote", 0, 100, lane=1)
    callee = _request("price", 10, 60, lane=2)
    other = _request("other", 0, 100, lane=3, chain="d")
    q_caller = _query(55, lane=1)  # the caller's as the callee's reqend lags: its thread's
    q_callee = _query(20, lane=2)
    q_worker = _query(30, lane=9)  # on no request's thread: the innermost
    q_after = _query(80, lane=9)
    q_outside = _query(150, lane=1)
    q_other = _query(50, lane=3, chain="d")
    model = SimpleNamespace(chains=[], spawned={}, detached={}, requests=[caller, other, callee], last_ts=200, parent=np.array([]),
                            queries=[q_caller, q_callee, q_worker, q_after, q_outside, q_other])  # fmt: skip
    made = made_by_request(model)
    assert made == {"quote": [q_caller, q_after], "price": [q_callee, q_worker], "other": [q_other]}
    running = _request("r", 10, None, lane=1)
    model = SimpleNamespace(chains=[], spawned={}, detached={}, requests=[running], last_ts=500, parent=np.array([]),
                            queries=[_query(5, 1), _query(400, 1)])  # fmt: skip
    assert made_by_request(model) == {"r": [_query(400, 1)]}
