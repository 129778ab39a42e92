"""Deltas reconstruct what a full capture sees: random mutations of nested state.

At every step the diffed mirror, the old state with the delta applied, and the
new state with the delta undone all equal a fresh capture (the shadow model)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from elixirscope.state.capture import StateLimits, capture, diff
from elixirscope.state.delta import apply, decode_delta, encode_delta, invert
from elixirscope.state.nodes import decode_node, encode_node, nodes_equal, to_plain


@dataclass
class Item:
    name: str
    count: int = 0
    notes: list = field(default_factory=list)


class Plain:
    def __init__(self, x: Any) -> None:
        self.x = x


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=8),
)


def containers(live: Any) -> list[Any]:
    """Every mutable container reachable from ``live`` (each once)."""
    found: list[Any] = []
    seen: set[int] = set()
    stack = [live]
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        if isinstance(v, (dict, list, set, Item, Plain)):
            seen.add(id(v))
            found.append(v)
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, Item):
            stack.append(v.notes)
        elif isinstance(v, Plain):
            stack.append(v.x)
    return found


def fresh(data: st.DataObject, depth: int = 0) -> Any:
    choice = data.draw(st.integers(0, 7 if depth < 3 else 0))
    if choice == 0 or choice > 6:
        return data.draw(scalars)
    if choice == 1:
        return {
            data.draw(st.text(max_size=4)): fresh(data, depth + 1)
            for _ in range(data.draw(st.integers(0, 3)))
        }
    if choice == 2:
        return [fresh(data, depth + 1) for _ in range(data.draw(st.integers(0, 4)))]
    if choice == 3:
        return set(
            data.draw(st.lists(st.one_of(st.integers(-5, 5), st.text(max_size=3)), max_size=4))
        )
    if choice == 4:
        return Item(
            data.draw(st.text(max_size=4)), data.draw(st.integers(0, 9)), [fresh(data, depth + 1)]
        )
    if choice == 5:
        return tuple(fresh(data, depth + 1) for _ in range(data.draw(st.integers(0, 3))))
    return Plain(fresh(data, depth + 1))


def mutate(data: st.DataObject, root: dict) -> None:
    pool = containers(root)
    target = data.draw(st.sampled_from(pool))
    how = data.draw(st.integers(0, 5))
    if how == 5:  # share an existing container, or make a cycle
        value: Any = data.draw(st.sampled_from(pool))
    else:
        value = fresh(data)
    if isinstance(target, dict):
        keys = list(target)
        if keys and how in (0, 1):
            del target[data.draw(st.sampled_from(keys))]
        else:
            target[data.draw(st.one_of(st.text(max_size=4), st.integers(0, 3)))] = value
    elif isinstance(target, list):
        if target and how == 0:
            del target[data.draw(st.integers(0, len(target) - 1))]
        elif target and how == 1:
            target[data.draw(st.integers(0, len(target) - 1))] = value
        else:
            target.insert(data.draw(st.integers(0, len(target))), value)
    elif isinstance(target, set):
        item = data.draw(st.one_of(st.integers(-5, 5), st.text(max_size=3)))
        (target.discard if how < 2 else target.add)(item)
    elif isinstance(target, Item):
        if how < 2:
            target.count += 1
        else:
            target.notes = value if isinstance(value, list) else [value]
    else:
        target.x = value


@given(st.data())
def test_every_delta_reconstructs_the_shadow(data: st.DataObject) -> None:
    limits = StateLimits(max_depth=6, max_items=50, max_string=6)
    root: dict = {"items": [Item("a")], "meta": {"v": 1}}
    mirror = capture(root, limits)
    stored = encode_node(mirror)
    for _ in range(data.draw(st.integers(1, 12))):
        mutate(data, root)
        shadow = capture(root, limits)
        mirror, ops = diff(mirror, root, limits)
        assert nodes_equal(mirror, shadow), (to_plain(mirror), to_plain(shadow))
        delta = encode_delta(ops)
        rebuilt = apply(decode_node(stored), decode_delta(delta))
        assert nodes_equal(rebuilt, shadow), (to_plain(rebuilt), to_plain(shadow))
        undone = apply(decode_node(encode_node(rebuilt)), invert(decode_delta(delta)))
        assert nodes_equal(undone, decode_node(stored))
        stored = encode_node(rebuilt)


def test_an_unchanged_state_costs_no_op() -> None:
    state = {"rows": [{"id": i, "name": f"n{i}", "ok": None} for i in range(200)], "t": (1, 2)}
    mirror = capture(state)
    mirror, ops = diff(mirror, state)
    assert ops == []
    state["rows"][150]["name"] = "changed"
    mirror, ops = diff(mirror, state)
    assert [(type(o).__name__, o.path) for o in ops] == [("Put", ["rows", 150, "name"])]


def test_an_insert_in_the_middle_is_one_splice() -> None:
    state = {"xs": [{"k": i} for i in range(100)]}
    mirror = capture(state)
    state["xs"].insert(50, {"k": "new"})
    mirror, ops = diff(mirror, state)
    assert [(type(o).__name__, o.path, o.index) for o in ops] == [("Splice", ["xs"], 50)]


def test_cycles_and_shared_references_are_refs() -> None:
    a: dict = {"name": "a"}
    state = {"first": a, "again": a, "list": [a]}
    state["me"] = state
    plain = to_plain(capture(state))
    assert plain["again"] == {"$ref": "first"}
    assert plain["list"] == [{"$ref": "first"}]
    assert plain["me"] == {"$ref": "$"}


def test_the_programs_own_code_never_runs() -> None:
    calls: list[str] = []

    class Loud:
        def __init__(self) -> None:
            self.v = 1

        def __repr__(self) -> str:
            calls.append("repr")
            return "loud"

        def __eq__(self, other: object) -> bool:
            calls.append("eq")
            return True

        __hash__ = object.__hash__

        @property
        def p(self) -> int:
            calls.append("property")
            return 1

    state = {"x": Loud(), "xs": [Loud(), Loud()], "k": {Loud(): 1}}
    mirror = capture(state)
    state["xs"].insert(1, Loud())
    diff(mirror, state)
    assert calls == []


def test_limits_mark_what_they_cut() -> None:
    limits = StateLimits(max_depth=2, max_items=3, max_string=5)
    plain = to_plain(
        capture({"deep": {"deeper": {"x": 1}}, "many": list(range(10)), "s": "abcdefgh"}, limits)
    )
    assert plain["deep"]["deeper"] == {"$cut": "dict", "size": 1}
    assert plain["many"] == [0, 1, 2, {"$more": 7}]
    assert plain["s"] == {"$cut": "str", "size": 8, "preview": "abcde"}


def test_sensitive_names_are_redacted() -> None:
    state = {"password": "hunter2", "user": type("U", (), {})()}
    state["user"].api_token = "t0k"
    state["pair"] = ("secret", "x")
    plain = to_plain(capture(state))
    assert plain["password"] == "<redacted>"
    assert plain["user"]["api_token"] == "<redacted>"
    assert plain["pair"] == {"$tuple": ["secret", "<redacted>"]}
    assert "hunter2" not in repr(plain) and "t0k" not in repr(plain)


def test_a_deepcopy_of_the_state_captures_the_same() -> None:
    state = {"a": [1, 2, {"b": {3, 4}}], "c": Item("x", 2, [1.5])}
    assert nodes_equal(capture(state), capture(copy.deepcopy(state)))


def test_a_path_into_what_a_limit_cut_says_so() -> None:
    from elixirscope.state.nodes import PathError, node_at, parse_path

    tree = capture({"deep": {"deeper": {"x": 1}}, "s": "abcdefgh"}, StateLimits(max_depth=2, max_string=16))
    try:
        node_at(tree, parse_path("deep.deeper.x"))
    except PathError as exc:
        assert "deep.deeper.x: deep.deeper was not recorded in full (a dict of 1, cut by a limit" in str(exc)
    else:
        raise AssertionError("no error")
