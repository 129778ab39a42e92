"""Recorded GenServer state against a shadow the test keeps: rebuilt at every message.

A real GenServer (simpleSystemBase) applies random mutations of nested state —
dicts, lists with inserts and deletes in the middle, sets, dataclasses, shared
references and cycles — one per call; the test applies each to its own copy.
After every message, the state rebuilt from the recording (keyframes plus
deltas) equals a fresh capture of the copy, and stepping back and forth over
the whole timeline gives the same states as rebuilding each one."""

from __future__ import annotations

import copy
import itertools
import threading
from typing import Any

import pytest
from effort import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from statefuls import Card, Mutable, mutate

from elixirscope.capture import actors, session
from elixirscope.contracts.trace import StateChange, decode_batch
from elixirscope.runtime import Runtime
from elixirscope.state.capture import capture
from elixirscope.state.nodes import encode_node, nodes_equal, to_plain
from elixirscope.state.timeline import ABSENT, Stepper, Timeline


class Collector:
    def __init__(self) -> None:
        self.events: list = []
        self.lock = threading.Lock()

    def __call__(self, frame: bytes, count: int) -> None:
        batch = decode_batch(frame)
        with self.lock:
            self.events.extend(batch.events)


@pytest.fixture(scope="module")
def recorded():
    out = Collector()
    sess = session.start_capture(sink=out)
    actors.enable_actor_capture()
    rt = Runtime("simpleSystemBase")
    try:
        yield rt, sess, out
    finally:
        rt.shutdown()
        actors.disable_actor_capture()
        sess.stop()


def containers(root: Any) -> list[tuple[list, Any]]:
    """(path, container) of every mutable container, at the first path it is reached by."""
    found: list[tuple[list, Any]] = []
    seen: set[int] = set()
    queue: list[tuple[list, Any]] = [([], root)]
    while queue:
        path, v = queue.pop(0)
        if id(v) in seen or not isinstance(v, (dict, list, set, Card)):
            continue
        seen.add(id(v))
        found.append((path, v))
        if isinstance(v, dict):
            queue.extend(([*path, k], x) for k, x in v.items())
        elif isinstance(v, list):
            queue.extend(([*path, i], x) for i, x in enumerate(v))
        elif isinstance(v, Card):
            queue.extend(([*path, k], getattr(v, k)) for k in ("title", "owner", "marks"))
    return found


_names = itertools.count()
scalars = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=6))


def value(data: st.DataObject, depth: int = 0) -> Any:
    kind = data.draw(st.integers(0, 4 if depth < 2 else 0))
    if kind == 0:
        return data.draw(scalars)
    if kind == 1:
        return {
            data.draw(st.text(max_size=3)): value(data, depth + 1)
            for _ in range(data.draw(st.integers(0, 2)))
        }
    if kind == 2:
        return [value(data, depth + 1) for _ in range(data.draw(st.integers(0, 3)))]
    if kind == 3:
        return set(data.draw(st.lists(st.integers(0, 9), max_size=3)))
    return Card(data.draw(st.text(max_size=4)), data.draw(scalars))


def mutation(data: st.DataObject, shadow: Any) -> tuple:
    pool = containers(shadow)
    path, target = data.draw(st.sampled_from(pool))
    how = data.draw(st.integers(0, 4))
    if how == 4:  # a shared reference, or a cycle when the source is an ancestor
        source_path, _ = data.draw(st.sampled_from(pool))
        key = _key(data, target)
        if key is not None:
            return ("share", path, key, source_path)
    if isinstance(target, set):
        return ("add" if how < 3 else "discard", path, data.draw(st.integers(0, 9)))
    if isinstance(target, list):
        if target and how == 0:
            return ("del", path, data.draw(st.integers(0, len(target) - 1)))
        if target and how == 1:
            return ("set", path, data.draw(st.integers(0, len(target) - 1)), value(data))
        return ("insert", path, data.draw(st.integers(0, len(target))), value(data))
    if isinstance(target, dict) and target and how == 0:
        return ("del", path, data.draw(st.sampled_from(list(target))))
    return ("set", path, _key(data, target) or "k", value(data))


def _key(data: st.DataObject, target: Any) -> Any:
    if isinstance(target, Card):
        return data.draw(st.sampled_from(["owner", "marks", "title"]))
    if isinstance(target, dict):
        return data.draw(st.one_of(st.text(max_size=3), st.integers(0, 3)))
    if isinstance(target, list) and target:
        return data.draw(st.integers(0, len(target) - 1))
    return None


@settings(max_examples=examples(25, 300))
@given(st.data())
def test_the_rebuilt_state_equals_the_shadow_at_every_message(
    recorded, data: st.DataObject
) -> None:
    rt, sess, out = recorded
    initial = {"cards": [Card("first", "ann")], "tags": {1, 2}, "meta": {"v": 1}}
    shadow = copy.deepcopy(initial)
    name = f"mutable-{next(_names)}"
    actor = rt.start(Mutable, copy.deepcopy(initial), path=name)
    expected = [capture(shadow)]
    for _ in range(data.draw(st.integers(1, 10))):
        op = mutation(data, shadow)
        assert rt.call(actor, copy.deepcopy(op)) == "ok"
        mutate(shadow, op)
        expected.append(capture(shadow))
    sess.flush(10)
    timeline = Timeline.of_events(name, [e for e in out.events if isinstance(e, StateChange)])
    assert len(timeline) == len(expected)
    for i, want in enumerate(expected):
        assert nodes_equal(timeline.state(i), want), (
            i,
            to_plain(timeline.state(i)),
            to_plain(want),
        )
    stepper = Stepper(timeline, len(timeline) - 1)
    for i in range(len(timeline) - 2, -1, -1):
        assert encode_node(stepper.prev()) == encode_node(timeline.state(i))
    for i in range(1, len(timeline)):
        assert encode_node(stepper.next()) == encode_node(timeline.state(i))


def test_many_changes_stay_rebuildable_across_keyframes(recorded) -> None:
    rt, sess, out = recorded
    actor = rt.start(Mutable, {"xs": []}, path="long-lived")
    for i in range(300):
        rt.call(actor, ("insert", ["xs"], i // 2, {"n": i}))
    sess.flush(10)
    timeline = Timeline.of_events(
        "long-lived", [e for e in out.events if isinstance(e, StateChange)]
    )
    keys = [c.index for c in timeline if c.event.key is not None]
    assert keys[0] == 0 and len(keys) >= 300 // 64  # keyframes bound every rebuild
    live: dict = {"xs": []}
    for i in range(300):
        live["xs"].insert(i // 2, {"n": i})
    assert to_plain(timeline.state(300)) == to_plain(capture(live))


def test_the_last_n_of_a_history_are_its_tail(recorded) -> None:
    rt, sess, out = recorded
    actor = rt.start(Mutable, {"xs": [], "n": {"v": 0}}, path="tail-history")
    for i in range(150):
        rt.call(actor, ("insert", ["xs"], 0, i) if i % 3 else ("set", ["n"], "v", i))
    sess.flush(10)
    timeline = Timeline.of_events(
        "tail-history", [e for e in out.events if isinstance(e, StateChange)]
    )

    def rows(history: list) -> list:
        return [
            (
                h.change.index,
                encode_node(h.old) if h.old is not ABSENT else None,
                encode_node(h.new),
            )
            for h in history
        ]

    for path, every in [((), True), (("n", "v"), False), (("xs",), False), (("xs", 0), False)]:
        whole = timeline.history(path, every=every)
        for last in (1, 7, 50, 1000):
            assert rows(timeline.history(path, every=every, last=last)) == rows(whole[-last:]), (
                path,
                last,
            )
