"""EventStore.stream: the same events as query(limit=None), in the same order, read one
chunk at a time (a reader that stops early reads no more), across writers' shards."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elixirscope.store import EventStore
from elixirscope.store.errors import QueryError


def _key(se):
    return (se.event.ts, se.producer, se.event.id)


@pytest.fixture
def two_writers(tmp_path, recorder):
    """Two writers (two shards), overlapping in time, many small batches, several chains."""
    rng = random.Random(7)
    a, b = recorder("n1:100:1", "n1", 100), recorder("n2:200:1", "n2", 200)
    b._ts = a._ts + 500  # interleaved in time
    with EventStore.open(tmp_path) as one, EventStore.open(tmp_path) as two:
        for _ in range(40):
            for rec, store in ((a, one), (b, two)):
                for _ in range(rng.randint(1, 6)):
                    cid = rng.choice(["c1", "c2", "c3"])
                    call = rec.call(rng.choice(["m.f", "m.g", "n.h"]), cid=cid)
                    rec.ret(call, "m.f", "1", cid=cid)
                store.append(rec.batch())
    return tmp_path


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"order": "desc"},
        {"correlation_id": "c2"},
        {"function": "m.*"},
        {"type": "return", "order": "desc"},
        {"producer": "n2:200:1", "function": "*h"},
    ],
)
def test_stream_gives_what_query_gives_in_the_same_order(two_writers, filters):
    with EventStore.open(two_writers, readonly=True) as store:
        whole = store.query(limit=None, **filters)
        streamed = list(store.stream(**filters))
    assert [_key(se) for se in streamed] == [_key(se) for se in whole]
    assert len(whole) > 0


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])  # read-only
@given(st.integers(0, 2**20), st.integers(0, 2**20))
def test_stream_respects_a_time_range(two_writers, lo, hi):
    with EventStore.open(two_writers, readonly=True) as store:
        first = store.query(limit=1)[0].event.ts
        since, until = first + min(lo, hi) * 10, first + max(lo, hi) * 10
        whole = store.query(limit=None, since=since, until=until)
        assert [_key(se) for se in store.stream(since=since, until=until)] == [_key(se) for se in whole]


def test_a_reader_that_stops_reads_no_further_chunks(two_writers):
    with EventStore.open(two_writers, readonly=True) as store:
        chunks = []
        every = store.stream(check=lambda: chunks.append(1))
        for _ in every:
            pass
        total = len(chunks)
        chunks.clear()
        stream = store.stream(check=lambda: chunks.append(1))
        next(stream)
        stream.close()
        assert 0 < len(chunks) <= 3 < total


def test_check_can_stop_a_stream(two_writers):
    def stop():
        raise TimeoutError("enough")

    with EventStore.open(two_writers, readonly=True) as store:
        with pytest.raises(TimeoutError, match="enough"):
            list(store.stream(check=stop))


def test_stream_refuses_a_limit_and_bad_filters(two_writers):
    with EventStore.open(two_writers, readonly=True) as store:
        with pytest.raises(QueryError, match="stop iterating"):
            list(store.stream(limit=5))
        with pytest.raises(QueryError, match="unknown query filter"):
            list(store.stream(colour="red"))


def test_indexed_values_lists_what_a_read_could_find(two_writers):
    with EventStore.open(two_writers, readonly=True) as store:
        assert store.indexed_values("function") == ["m.f", "m.g", "n.h"]
        assert store.indexed_values("correlation", prefix="c", limit=2) == ["c1", "c2"]
        assert store.indexed_values("producer") == ["n1:100:1", "n2:200:1"]
        with pytest.raises(QueryError, match="unknown index kind 'colour'"):
            store.indexed_values("colour")
