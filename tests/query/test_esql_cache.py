"""The result cache: the same question over the same store is answered once; a store that grows
is asked again; memory stays within its bytes. And a query stops when its caller cancels it."""

from __future__ import annotations

import threading

import pytest
from esql_recordings import T0, frame, record_split

from elixirscope.query import esql
from elixirscope.query.esql.cache import Answer, ResultCache
from elixirscope.store import EventStore

AGGREGATE = "function, count(*), p95(duration) from calls group by function order by function"


@pytest.fixture
def data(tmp_path):
    record_split(tmp_path, seed=11, producers=2, calls=300)
    return tmp_path


def answer(query: str, data, cache) -> tuple[list, dict]:
    result = esql.run(query, data, timeout=None, cache=cache)
    rows = list(result.tuples())
    return rows, result.explain


def test_the_same_question_is_answered_from_the_cache(data):
    cache = ResultCache()
    first, explain = answer(AGGREGATE, data, cache)
    assert explain["cache"] == "miss" and len(cache) == 1
    spaced = "function ,  count(*), p95( duration )\n from calls  group by function order by function"
    again, explain = answer(spaced, data, cache)
    assert again == first and explain["cache"] == "hit" and explain["engine"] == "columns"
    assert cache.hits == 1
    other, explain = answer(AGGREGATE + " desc", data, cache)
    assert explain["cache"] == "miss"
    upper, explain = answer(AGGREGATE.replace("function,", "function as F,", 1)[: -len("function")] + "F", data, cache)
    assert explain["cache"] == "miss"  # the column is named as written
    quoted, explain = answer("calls of 'Render' limit 3", data, cache)
    assert explain["cache"] == "miss"
    assert answer("calls of 'render' limit 3", data, cache)[1]["cache"] == "miss"


def test_a_store_that_grew_is_read_again_and_older_answers_dropped(data):
    cache = ResultCache()
    before, _ = answer(AGGREGATE, data, cache)
    answer("calls limit 5", data, cache)
    assert len(cache) == 2
    with EventStore.open(data) as store:
        store.append(
            frame(
                "n1:9:1",
                9,
                1,
                [
                    ("call", 1, T0 + 5, 1, "c", 0, "zz.late", None),
                    ("return", 2, T0 + 99, 1, "c", 0, 1, "zz.late", 94, "1"),
                ],
            )
        )
    after, explain = answer(AGGREGATE, data, cache)
    assert explain["cache"] == "miss"
    assert after == before + [("zz.late", 1, 94)]
    assert len(cache) == 1  # the answers of the older store are gone


def test_memory_stays_within_its_bytes_oldest_out_first(data):
    probe = ResultCache()
    answer("calls limit 20", data, probe)
    one = probe.bytes
    cache = ResultCache(max_bytes=int(one * 2.5), max_entry_bytes=one * 2)
    for n in (20, 21, 22, 23):
        answer(f"calls where duration >= {n}ns limit 20", data, cache)
        assert cache.bytes <= cache.max_bytes
    assert len(cache) == 2
    assert answer("calls where duration >= 23ns limit 20", data, cache)[1]["cache"] == "hit"
    assert answer("calls where duration >= 20ns limit 20", data, cache)[1]["cache"] == "miss"


def test_what_is_not_kept(data):
    cache = ResultCache(max_entry_bytes=2000)
    answer("calls", data, cache)  # larger than an entry may be
    assert len(cache) == 0
    result = esql.run("calls limit 50", data, timeout=None, cache=cache)
    next(result.tuples())  # the reader stops early
    result.close()
    assert len(cache) == 0
    answer("count(*) from calls where time > 10d ago", data, cache)  # depends on the clock
    assert len(cache) == 0
    answer("count(*) from calls", data, False)
    assert len(cache) == 0


def test_sizes_are_checked():
    with pytest.raises(ValueError, match="sizes >= 0"):
        ResultCache(max_bytes=-1)
    cache = ResultCache(max_bytes=100)
    assert not cache.put("d", 1, "k", Answer([], [], (), {}, "", [], 101))


def test_a_cancelled_query_stops_with_a_clear_error(data):
    cancel = threading.Event()
    result = esql.run("events", data, timeout=None, cache=False, cancel=cancel)
    rows = result.tuples()
    next(rows)
    cancel.set()
    with pytest.raises(esql.EsqlCancelled, match="cancelled"):
        for _ in rows:
            pass
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(esql.EsqlCancelled):
        list(esql.run(AGGREGATE, data, timeout=None, cache=False, cancel=cancel))
