"""Detectors tell requests apart by the request they ran in: an in-process client's
requests all join its chain (traceparent), and were lumped into one N+1 and no race."""

from __future__ import annotations

import itertools

from elixirscope.ai.nplusone import detect_n_plus_one
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.contracts.trace import REQUEST_FUNCTION, decode_batch, encode_batch
from elixirscope.store._events import StoredEvent

T0 = 1_700_000_000_000_000_000
SQL = "SELECT title FROM books WHERE author_id = ?"


def _recording(requests: int, per_request: int, sql: str = SQL) -> Recording:
    ids, ts = itertools.count(1), itertools.count(T0, 1000)
    events: list[tuple] = []
    drive = next(ids)
    events.append(("call", drive, next(ts), 1, "c1", 0, "app.drive", None, "/app/m.py", 3))
    for _ in range(requests):
        req = next(ids)
        events.append(("call", req, next(ts), 1, "c1", drive, REQUEST_FUNCTION, None, None, 0))
        events.append(("req", next(ids), next(ts), 1, "c1", req, "http", "GET", "/books", None,
                       None, -1, None, None, None, None, None))  # fmt: skip
        for _ in range(per_request):
            events.append(("query", next(ids), next(ts), 1, "c1", req, "sqlite", None, sql, None,
                           10, 1, "/app/m.py", 9, "app.handler", None, "", 0))  # fmt: skip
        events.append(("return", next(ids), next(ts), 1, "c1", drive, req, REQUEST_FUNCTION,
                       100, None))  # fmt: skip
    frame = encode_batch(node="n1", pid=7, program="m.py", producer="n1:7:1", seq=1,
                         sent_ts=next(ts), dropped=0, events=events)  # fmt: skip
    batch = decode_batch(frame)
    stored = [StoredEvent(e, batch.node, batch.pid, batch.program, batch.producer)
              for e in batch.events]  # fmt: skip
    return Recording("r1", stored)


def test_an_n_plus_one_is_counted_per_request_not_per_shared_chain():
    recording = _recording(requests=4, per_request=6)
    found = detect_n_plus_one(recording, InsightSettings())
    assert [f.title for f in found] == [f"N+1 queries: 6 x `{SQL}`"] * 4  # not one of 24
    assert {recording.unit_of(se) for se in recording.of("query")} == {
        f"request {n} of chain c1" for n in (2, 11, 20, 29)
    }


def test_queries_of_requests_below_the_rule_are_no_n_plus_one():
    assert detect_n_plus_one(_recording(requests=10, per_request=2), InsightSettings()) == []


def test_a_schemas_introspection_is_no_n_plus_one():
    """Django's migrate asks sqlite_master of each table: the catalog, not the rows."""
    catalog = "SELECT name, type FROM sqlite_master WHERE type in ('table', 'view') AND name = ?"
    assert detect_n_plus_one(_recording(1, 6, catalog), InsightSettings()) == []
