"""A long-running writer's memory: what it remembers per request stays bounded.

A recorded server writes a new correlation id with nearly every request; the
writer's cache of key ids must not keep one entry per request it ever served
(the soak of ``scripts/bench_web.py`` grew by it).
"""

from __future__ import annotations

import pytest

from elixirscope.capture._pyhooks import chain_ids
from elixirscope.store import EventStore
from elixirscope.store._shard import _CORRELATION_CACHE_MAX

REQUESTS = 3 * _CORRELATION_CACHE_MAX + 500
PER_BATCH = 1000


_CHAINS = chain_ids()
_MADE: dict[int, str] = {}


def cid_of(n: int) -> str:
    """Request ``n``'s correlation: a header's id for the even ones, ElixirScope's own
    chain id (a chain key: ``chain_keys``) for the odd ones."""
    if n % 2 == 0:
        return f"req-{n:06d}"
    if n not in _MADE:
        _MADE[n] = _CHAINS()
    return _MADE[n]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A writer that stored REQUESTS requests, each its own correlation, some of them
    split over two batches (the call in one, the return in the next)."""
    from recorded_batches import Recorder

    root = tmp_path_factory.mktemp("served")
    store = EventStore.open(root)
    rec = Recorder()
    sizes = []
    for n in range(REQUESTS):
        cid = cid_of(n)
        call = rec.call("app.handle", cid, path=str(n))
        if n % PER_BATCH == PER_BATCH - 1:  # this request's return goes in the next batch
            store.append(rec.batch())
            sizes.append(store._writable().cached_keys())
        rec.ret(call, "app.handle", "200", cid)
    store.append(rec.batch())
    sizes.append(store._writable().cached_keys())
    yield store, sizes, root
    store.close()


def test_the_key_cache_stays_bounded_however_many_requests(served):
    _store, sizes, _root = served
    bound = 2 * _CORRELATION_CACHE_MAX + 100  # two generations, and the few other keys
    assert max(sizes) <= bound < REQUESTS
    assert sizes[-1] < REQUESTS


@pytest.mark.parametrize("n", [0, 1, 999, 1000, _CORRELATION_CACHE_MAX, REQUESTS - 1, REQUESTS - 2])
def test_every_request_is_found_by_its_correlation_once_forgotten(served, n):
    store, _sizes, root = served
    found = store.query(correlation_id=cid_of(n))
    assert [type(se.event).__name__ for se in found] == ["FunctionEntry", "FunctionExit"]


def test_each_correlation_is_one_key(served):
    store, _sizes, root = served
    conn = store._writable().conn
    rows = conn.execute("SELECT count(*), count(DISTINCT value) FROM key WHERE kind IN ('c', 'C')")
    assert rows.fetchone() == (REQUESTS, REQUESTS)


def test_a_writer_keeps_a_small_page_cache_and_readers_a_large_one(served):
    """SQLite's page cache fills up to its size: a writer's, kept by a recorded server
    for as long as it runs, is a few MB; a reader's (queries, then closed) is larger."""
    store, _sizes, root = served
    writer_kb = -store._writable().conn.execute("PRAGMA cache_size").fetchone()[0]
    with EventStore.open(root, readonly=True) as reader:
        reader.query(correlation_id="req-000000")
        (shard,) = reader._shards()
        reader_kb = -shard.conn.execute("PRAGMA cache_size").fetchone()[0]
    assert 0 < writer_kb <= 8_000 < reader_kb
