"""Aggregates answered from the call columns agree with the row evaluator, row for row and in
the same order: random aggregate queries over a real recording and over a store of two shards
whose calls begin in one and end in the other; the side files follow the store as it grows."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from effort import examples
from esql_recordings import T0, frame, record_split, split_batches
from hypothesis import given, settings
from hypothesis import strategies as st

from elixirscope.query import esql
from elixirscope.store import EventStore


@pytest.fixture(scope="module")
def split_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("esql-columns")
    record_split(data)
    return data


# ---------------------------------------------------------------- random aggregates

TEXTS = {
    "function": ["price", "shop.*", "*e*", "Till.ring", "nosuch", "__main__.*", "render"],
    "module": ["shop", "db", "__main__", "s*", "nosuch"],
    "status": ["ok", "error", "cancelled", "running", "r*"],
    "kind": ["call", "return"],
}
DURATIONS = ["0", "1us", "900ns", "2500ns", "1.5ms", "3000.5ns", "10ms", "-5ns"]
OPS = ["=", "!=", "<", "<=", ">", ">="]


def atoms(pids: list[int]) -> st.SearchStrategy[str]:
    texts = [
        st.builds(lambda f, v: f"{f} = '{v}'", st.just(f), st.sampled_from(vs))
        for f, vs in TEXTS.items()
    ]
    numbers = [
        st.builds(
            lambda f, op, v: f"{f} {op} {v}",
            st.sampled_from(["duration"]),
            st.sampled_from(OPS),
            st.sampled_from(DURATIONS),
        ),
        st.builds(lambda op, v: f"end {op} {v}", st.sampled_from(OPS), st.integers(T0, T0 + 10**7)),
        st.builds(
            lambda lo, span: f"(time between {lo} and {lo + span} or function = 'x')",
            st.integers(T0, T0 + 2 * 10**6),
            st.integers(0, 10**6),
        ),
        st.builds(
            lambda f, n: f"{f} is {'not ' if n else ''}null",
            st.sampled_from(["duration", "end", "module"]),
            st.booleans(),
        ),
        st.builds(
            lambda ps: f"pid in ({', '.join(map(str, ps))})",
            st.lists(st.sampled_from(pids), min_size=1, max_size=3),
        ),
        st.builds(
            lambda ps: f"pid not in ({', '.join(map(str, ps))})",
            st.lists(st.sampled_from(pids), min_size=1, max_size=2),
        ),
    ]
    return st.one_of(texts + numbers)


def conditions(pids: list[int]) -> st.SearchStrategy[str]:
    return st.recursive(
        atoms(pids),
        lambda inner: st.one_of(
            st.builds(lambda a, b: f"({a} and {b})", inner, inner),
            st.builds(lambda a, b: f"({a} or {b})", inner, inner),
            st.builds(lambda a: f"not ({a})", inner),
        ),
        max_leaves=4,
    )


AGGREGATES = [
    "count(*)",
    "count(duration)",
    "count(module)",
    "sum(duration)",
    "avg(duration)",
    "min(duration)",
    "max(duration)",
    "p50(duration)",
    "p95(duration)",
    "p99(duration)",
    "min(time)",
    "max(end)",
    "p95(end)",
    "avg(time)",
    "min(function)",
    "max(status)",
    "count(end)",
]
GROUPS = ["function", "module", "pid", "status", "kind", "node", "producer"]


@st.composite
def aggregate_queries(draw, pids: list[int]) -> str:
    group = draw(st.lists(st.sampled_from(GROUPS), unique=True, max_size=2))
    aggs = draw(st.lists(st.sampled_from(AGGREGATES), unique=True, min_size=1, max_size=4))
    columns = group + aggs
    text = ", ".join(columns) + " from calls"
    if draw(st.booleans()):
        text += f" where {draw(conditions(pids))}"
    if group:
        text += f" group by {', '.join(group)}"
    if draw(st.booleans()):
        key = draw(st.sampled_from(columns))
        text += f" order by {key}{draw(st.sampled_from(['', ' desc']))}"
    if draw(st.booleans()):
        text += f" limit {draw(st.integers(1, 5))}"
    return text


def both(query: str, data: Path) -> tuple[list, list, str]:
    by_columns = esql.run(query, data, timeout=None)
    rows_c = list(by_columns.tuples())
    by_rows = esql.run(query, data, timeout=None, columns=False)
    rows_r = list(by_rows.tuples())
    return rows_c, rows_r, by_columns.explain.get("engine", "")


@settings(max_examples=examples(120, 1200), deadline=None)
@given(data=st.data())
def test_random_aggregates_from_columns_equal_rows_over_two_shards(split_data, data):
    query = data.draw(aggregate_queries([1000, 1001, 1002, 7]))
    rows_c, rows_r, engine = both(query, split_data)
    assert engine == "columns", (query, engine)
    assert rows_c == rows_r, query


@settings(max_examples=examples(60, 600), deadline=None)
@given(data=st.data())
def test_random_aggregates_from_columns_equal_rows_over_a_recording(shop_data, data):
    with EventStore.open(shop_data, readonly=True) as store:
        pids = sorted({se.pid for se in store.query(limit=50)})
    query = data.draw(aggregate_queries(pids + [1]))
    rows_c, rows_r, engine = both(query, shop_data)
    assert engine in ("columns", "rows (a time range is read from the store's time index)")
    assert rows_c == rows_r, query


def test_the_split_store_has_calls_across_shards(split_data):
    assert len(list((split_data / "events").glob("*.sqlite3"))) == 2
    rows_c, rows_r, engine = both("status, count(*) from calls group by status", split_data)
    assert engine == "columns" and rows_c == rows_r
    assert {s for s, _n in rows_c} == {"ok", "error", "cancelled", "running"}


def test_queries_the_columns_cannot_answer_read_rows(split_data):
    for query, why in [
        ("function, count(*) from calls where time > 5 group by function", "time range"),
        ("function, count(*) from calls where depth > 1 group by function", "depth"),
        ("thread, count(*) from calls group by thread", "thread"),
        ("count(*) from calls where args.x = 1", "path"),
    ]:
        result = esql.run(query, split_data, timeout=None)
        list(result.tuples())
        assert result.explain["engine"].startswith("rows") and why in result.explain["engine"]


def test_side_files_follow_the_store_as_it_grows(tmp_path):
    record_split(tmp_path, seed=3, producers=1, calls=100)
    query = "function, count(*), max(duration) from calls group by function order by function"
    first, rows, _ = both(query, tmp_path)
    assert first == rows
    sides = sorted((tmp_path / "columns").iterdir())
    assert len(sides) == 2
    (tmp_path / "columns" / "shard-099").mkdir()  # of a shard no longer in the store
    versions = [json.loads((s / "meta.json").read_text())["version"] for s in sides]
    with EventStore.open(tmp_path) as store:  # a writer takes over a shard: a new function
        store.append(
            frame(
                "n1:9:1",
                9,
                1,
                [
                    ("call", 1, T0 + 5, 1, "c", 0, "late.fn", None),
                    ("return", 2, T0 + 99, 1, "c", 0, 1, "late.fn", 94, "1"),
                ],
            )
        )
    again, rows, engine = both(query, tmp_path)
    assert engine == "columns" and again == rows
    assert ("late.fn", 1, 94) in again and len(again) == len(first) + 1
    sides = sorted((tmp_path / "columns").iterdir())
    now = [json.loads((s / "meta.json").read_text())["version"] for s in sides]
    assert len(now) == 2 and sum(a == b for a, b in zip(now, versions, strict=True)) == 1


def test_a_batch_sent_to_two_writers_gives_one_answer(tmp_path):
    batch = frame(
        "n1:5:1",
        5,
        1,
        [
            ("call", 1, T0 + 1, 1, "c", 0, "f", None),
            ("return", 2, T0 + 9, 1, "c", 0, 1, "f", 8, "1"),
        ],
    )
    one, two = EventStore.open(tmp_path), EventStore.open(tmp_path)
    one.append(batch)
    two.append(batch)
    one.close()
    two.close()
    rows_c, rows_r, engine = both("count(*) from calls", tmp_path)
    assert rows_c == rows_r == [(1,)] and engine == "columns"


def test_pairs_are_found_with_ids_too_large_for_one_key():
    import numpy as np

    from elixirscope.query.esql.callcolumns import _find_pairs

    big = 2**61
    ep = np.array([0, 0, 1, 1, 3], dtype=np.int64)
    ei = np.array([5, big, 2, big + 1, 7], dtype=np.int64)
    xp = np.array([1, 0, 3, 2, 0, 1], dtype=np.int64)
    xi = np.array([big + 1, 5, 8, 2, big, 2], dtype=np.int64)
    assert _find_pairs(ep, ei, xp, xi).tolist() == [3, 0, -1, -1, 1, 2]
    small = _find_pairs(ep, ei % 100, xp, xi % 100)
    assert small.tolist() == [3, 0, -1, -1, 1, 2]


GROWING = [
    "function, status, count(*), max(duration), p50(duration) from calls group by function, status",
    "pid, count(*), min(time), max(end) from calls where status != 'running' group by pid",
    "count(*), sum(duration) from calls where function = '*e*' or duration > 2000ns",
]


@pytest.mark.parametrize("seed", [1, 2])
def test_a_growing_shard_s_columns_are_extended_not_built_again(tmp_path, seed):
    """Calls begun before a step end after it: each step's answer is the rows', and the
    side file is extended with the new chunks only."""
    rng = random.Random(seed)
    batches = split_batches(rng, producers=2, calls=300)
    ordered = sorted(batches, key=lambda b: (b.seq, rng.random()))  # producers interleaved
    cut = [0, len(ordered) // 4, len(ordered) // 2, 3 * len(ordered) // 4, len(ordered)]
    for step in range(4):
        with EventStore.open(tmp_path) as store:  # one shard, taken over at each step
            for batch in ordered[cut[step] : cut[step + 1]]:
                store.append(batch)
        for query in GROWING:
            rows_c, rows_r, engine = both(query, tmp_path)
            assert engine == "columns" and rows_c == rows_r, (step, query)
        (side,) = (tmp_path / "columns").iterdir()
        assert json.loads((side / "meta.json").read_text())["extended"] == step


def test_find_names_many_parents_from_the_columns(tmp_path):
    """Over 64 parents: their names come from the call columns, not a second read."""
    from esql_recordings import all_events

    split_data = tmp_path / "data"
    record_split(split_data, seed=3, calls=3000)

    from elixirscope.contracts.trace import FunctionEntry, FunctionError, FunctionExit

    events = all_events(split_data)
    entries = {(se.producer, se.event.id): se.event for se in events if type(se.event) is FunctionEntry}
    groups: dict = {}
    for se in events:
        ev = se.event
        if type(ev) is FunctionEntry:
            key = (se.producer, ev.parent_id, ev.function)
        elif type(ev) in (FunctionExit, FunctionError) and (se.producer, ev.call_id) not in entries:
            key = (se.producer, ev.parent_id, ev.function)  # a call whose entry was not stored
        else:
            continue
        groups[key] = groups.get(key, 0) + 1

    def parent(producer: str, parent_id: int) -> str:
        if not parent_id:
            return "(top level)"
        entry = entries.get((producer, parent_id))
        return entry.function if entry is not None else f"(call #{parent_id})"

    expected = sorted((parent(p, i), f, n) for (p, i, f), n in groups.items() if n >= 2)
    assert len({(p, i) for (p, i, _f), n in groups.items() if i and n >= 2}) > 64
    rows = esql.run("find repeated calls >= 2", split_data, cache=False)
    assert sorted((r["parent"], r["function"], r["calls"]) for r in rows) == expected
    assert (split_data / "columns").is_dir()  # what named them


# ---------------------------------------------------------------- any split of the batches


def decoded(table) -> list[tuple]:
    """A table's rows with names for codes (codes differ between tables of the same calls)."""
    a = table.arrays
    names = ("start", "end", "duration", "status", "emit_id", "call_id", "entry")
    return [
        (table.functions[int(a["function"][i])], table.origins[int(a["origin"][i])])
        + tuple(int(a[n][i]) for n in names)
        for i in range(len(table))
    ]


@st.composite
def growth(draw) -> tuple[list, list[object]]:
    """A store's batches (producers interleaved) and the steps it is written in: the
    batches of each step, or ``"prune"`` (its oldest batches deleted)."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    batches = split_batches(rng, producers=draw(st.integers(1, 3)), calls=draw(st.integers(5, 120)))
    ordered = sorted(batches, key=lambda b: (b.seq, rng.random()))
    cuts = sorted(draw(st.lists(st.integers(0, len(ordered)), max_size=5)))
    bounds = [0, *cuts, len(ordered)]
    steps: list[object] = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        steps.append(ordered[lo:hi])
        if draw(st.integers(0, 9)) == 0:
            steps.append("prune")
    return ordered, steps


@settings(max_examples=examples(10, 250), deadline=None)
@given(grown=growth(), data=st.data())
def test_columns_extended_over_any_split_equal_columns_built_at_once_and_the_rows(grown, data):
    """The side file after every step (extended when only batches were added, built again
    after a prune; at once, or in steps of a few chunks as the daemon keeps it) holds the
    calls a build of the whole shard holds, in the same order, and random aggregates over
    it answer as the rows do."""
    import tempfile

    from elixirscope.query.esql.callcolumns import build_shard, call_columns, refresh

    _ordered, steps = grown
    budget = data.draw(st.one_of(st.none(), st.integers(1, 4)), label="chunks a step")
    with tempfile.TemporaryDirectory() as where:
        root = Path(where)
        before = None
        for step in steps:
            if step == "prune":
                before = None
                with EventStore.open(root, retention_max_bytes=1) as store:
                    store.prune()
            else:
                with EventStore.open(root) as store:  # one shard, taken over at each step
                    for batch in step:
                        store.append(batch)
            with EventStore.open(root, readonly=True) as store:
                if budget is not None:  # as the daemon keeps them: bounded steps first
                    while not refresh(store, str(root), budget)[0]:
                        pass
                table, how = call_columns(store, str(root))
                assert budget is None or how == "current"
                ((path, version),) = store.shard_versions().items()
                whole = build_shard(store, path)
            assert decoded(table) == decoded(whole)
            assert (table.exact, table.why) == (whole.exact, whole.why)
            if step != "prune" and before is not None:  # only batches added: extended
                grew = 1 if step else 0  # in steps of a few chunks: extended at each
                assert (
                    table.extended == before + grew
                    if budget is None
                    else table.extended >= before + grew
                )
            before = table.extended if version[2] else None  # no chunk yet: built
        query = data.draw(aggregate_queries([1000, 1001, 1002, 7]))
        rows_c, rows_r, engine = both(query, root)
        assert engine == "columns" and rows_c == rows_r, query
