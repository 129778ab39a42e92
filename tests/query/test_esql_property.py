"""Random valid ESQL queries agree with a naive evaluator: a plain Python filter over every
stored event of the same recording (no planner, no pushdown, no streaming)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

import pytest
from effort import examples
from esql_recordings import all_events, plain_calls
from hypothesis import given, settings
from hypothesis import strategies as st

from elixirscope.contracts.trace import FunctionEntry, ThreadStart
from elixirscope.query import esql


@dataclass
class World:
    data: Any
    events: list
    calls: list[dict]
    depth_of: dict  # (producer, event id) -> enclosing calls
    thread_names: dict
    times: list[int]
    durations: list[int]


@pytest.fixture(scope="module")
def world(shop_data) -> World:
    events = all_events(shop_data)
    calls = plain_calls(events)
    entries = {(se.producer, se.event.id): se.event for se in events if type(se.event) is FunctionEntry}
    depth_of = {}
    for se in events:
        n, parent = 0, se.event.parent_id
        while parent and (se.producer, parent) in entries:
            n += 1
            parent = entries[(se.producer, parent)].parent_id
        depth_of[(se.producer, se.event.id)] = n
    names = {se.event.thread: se.event.name for se in events if type(se.event) is ThreadStart}
    return World(
        shop_data,
        events,
        calls,
        depth_of,
        names,
        sorted({se.event.ts for se in events}),
        sorted({c["duration"] for c in calls}),
    )


# ---------------------------------------------------------------- the naive meaning


def name_is(pattern: str, name: str | None) -> bool:
    if name is None:
        return False
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name, "*." + pattern)


def number_op(op: str, value: Any, literal: float) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return op == "!="
    holds = {
        "=": value == literal,
        "<": value < literal,
        "<=": value <= literal,
        ">": value > literal,
        ">=": value >= literal,
    }
    return not holds["="] if op == "!=" else holds[op]


def text_is(pattern: str, value: Any) -> bool:
    if value is None:
        return False
    return fnmatch.fnmatchcase(value if isinstance(value, str) else repr(value), pattern)


def call_fields(world: World, c: dict) -> dict:
    return {
        "function": c["function"],
        "duration": c["duration"],
        "return": c["return"],
        "item": c["args"].get("item"),
        "depth": c["depth"],
        "time": c["start"],
        "type": c["error"],
        "thread": world.thread_names.get(c["thread"], str(c["thread"])),
        "ancestors": c["ancestors"],
    }


def event_fields(world: World, se: Any) -> dict:
    ev = se.event
    return {
        "function": getattr(ev, "function", None),
        "duration": getattr(ev, "duration_ns", None),
        "kind": se.type,
        "depth": world.depth_of[(se.producer, ev.id)],
        "time": ev.ts,
        "thread": world.thread_names.get(ev.thread, str(ev.thread)),
        "type": getattr(ev, "exc_type", None),
    }


def holds(cond: tuple, f: dict) -> bool:
    what = cond[0]
    if what == "and":
        return holds(cond[1], f) and holds(cond[2], f)
    if what == "or":
        return holds(cond[1], f) or holds(cond[2], f)
    if what == "not":
        return not holds(cond[1], f)
    if what == "function":
        return name_is(cond[1], f["function"])
    if what in ("duration", "return", "depth", "time"):
        return number_op(cond[1], f[what], cond[2])
    if what == "null":
        return (f[cond[1]] is None) != cond[2]
    if what in ("item", "type", "thread", "kind"):
        return text_is(cond[1], f[what])
    if what == "inside":
        return any(name_is(cond[1], a) for a in f["ancestors"])
    raise AssertionError(cond)


def written(cond: tuple) -> str:
    what = cond[0]
    if what in ("and", "or"):
        return f"({written(cond[1])} {what} {written(cond[2])})"
    if what == "not":
        return f"not {written(cond[1])}"
    if what == "function":
        return f"function = '{cond[1]}'"
    if what == "duration":
        return f"duration {cond[1]} {cond[2]}ns"
    if what in ("return", "depth", "time"):
        return f"{what} {cond[1]} {cond[2]}"
    if what == "null":
        return f"{cond[1]} is {'not ' if cond[2] else ''}null".replace("item ", "args.item ")
    if what == "item":
        return f"args.item = '{cond[1]}'"
    if what in ("type", "thread", "kind"):
        return f"{what} = '{cond[1]}'"
    if what == "inside":
        return f"inside '{cond[1]}'"
    raise AssertionError(cond)


# ---------------------------------------------------------------- random queries

OPS = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
FUNCTIONS = st.sampled_from(
    ["price", "*line*", "Till.*", "__main__.fetch", "d*", "nosuch", "*", "checkout", "lookup"]
)


def conditions(world: World, source: str) -> st.SearchStrategy[tuple]:
    atoms = [
        st.tuples(st.just("function"), FUNCTIONS),
        st.tuples(st.just("duration"), OPS, st.sampled_from(world.durations)),
        st.tuples(st.just("depth"), OPS, st.integers(0, 5)),
        st.tuples(st.just("time"), OPS, st.sampled_from(world.times)),
        st.tuples(st.just("thread"), st.sampled_from(["back-office", "MainThread", "*Thread"])),
        st.tuples(st.just("type"), st.sampled_from(["KeyError", "ValueError", "*Error"])),
        st.tuples(st.just("null"), st.sampled_from(["duration", "type"]), st.booleans()),
    ]
    if source == "calls":
        atoms += [
            st.tuples(st.just("return"), OPS, st.sampled_from([0, 4.5, 6, 10, 12, 25])),
            st.tuples(st.just("item"), st.sampled_from(["tea", "jam", "t*", "coffee"])),
            st.tuples(st.just("inside"), st.sampled_from(["checkout", "lookup", "main", "worker"])),
            st.tuples(st.just("null"), st.sampled_from(["return", "item"]), st.booleans()),
        ]
    else:
        atoms.append(
            st.tuples(st.just("kind"), st.sampled_from(["call", "return", "exception", "yield", "thread"]))
        )
    return st.recursive(
        st.one_of(atoms),
        lambda inner: st.one_of(
            st.tuples(st.just("and"), inner, inner),
            st.tuples(st.just("or"), inner, inner),
            st.tuples(st.just("not"), inner),
        ),
        max_leaves=5,
    )


@st.composite
def queries(draw, world: World) -> tuple[str, list[int]]:
    source = draw(st.sampled_from(["calls", "events"]))
    cond = draw(conditions(world, source))
    ordered = draw(st.booleans()) and source == "calls"
    limit = draw(st.one_of(st.none(), st.integers(1, 12)))
    if source == "calls":
        rows = [(c["id"], c["duration"], c["start"]) for c in world.calls if holds(cond, call_fields(world, c))]
    else:
        rows = [
            (se.event.id, getattr(se.event, "duration_ns", None), se.event.ts)
            for se in world.events
            if holds(cond, event_fields(world, se))
        ]
    text = f"id from {source} where {written(cond)}"
    if ordered:
        text += " order by duration desc"
        rows.sort(key=lambda r: -r[1])  # stable: ties keep their order of start
    if limit is not None:
        text += f" limit {limit}"
        rows = rows[:limit]
    return text, [r[0] for r in rows]


@settings(max_examples=examples(150, 1500))
@given(data=st.data())
def test_random_queries_agree_with_a_plain_filter(world, data):
    text, expected = data.draw(queries(world))
    got = [row["id"] for row in esql.run(text, world.data)]
    assert got == expected, text


@settings(max_examples=examples(60, 600))
@given(data=st.data())
def test_random_aggregates_agree_with_a_plain_count(world, data):
    cond = data.draw(conditions(world, "calls"))
    text = f"function, count(*), sum(duration), max(duration) from calls where {written(cond)} group by function"
    expected: dict[str, list[int]] = {}
    for c in world.calls:
        if holds(cond, call_fields(world, c)):
            expected.setdefault(c["function"], []).append(c["duration"])
    got = {
        r["function"]: (r["count(*)"], r["sum(duration)"], r["max(duration)"])
        for r in esql.run(text, world.data)
    }
    assert got == {f: (len(d), sum(d), max(d)) for f, d in expected.items()}, text
