"""Runs of records take the short way through ``diff`` (``state.records``): it must see
exactly what a full capture sees, whatever happens to the records between two walks.

The states here hold enough records side by side (in a dict and in a list) for
the short way to be taken, then suffer random edits chosen to break its
assumptions: a field changing type (``1`` -> ``True`` -> ``1.0``), NaN, a
sensitive field, a record replaced by an equal copy, moved, shared (a Ref) or
given a nested container, a field added, removed or re-added (its order moves),
a record of another type among them. At every step the mirror, the old state
with the delta applied, and the new state with it undone equal a fresh capture.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from elixirscope.state import records
from elixirscope.state.capture import StateLimits, capture, diff
from elixirscope.state.delta import apply, decode_delta, encode_delta, invert
from elixirscope.state.nodes import decode_node, encode_node, nodes_equal, to_plain

LIMITS = StateLimits(max_depth=6, max_items=50, max_string=6)


@dataclass
class Rec:
    name: str
    count: int = 0
    ok: bool | None = None


class Bare:
    def __init__(self, v: Any) -> None:
        self.v = v


class Slotted:
    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v


FIELDS = ("name", "count", "ok", "password", "x")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, 1.0, -0.5, float("nan"), 2**70, 4111111111111111]),
    st.text(max_size=8),
)


def record(data: st.DataObject, kind: int | None = None) -> Any:
    kind = data.draw(st.integers(0, 3)) if kind is None else kind
    if kind == 0:
        return {
            f: data.draw(scalars)
            for f in data.draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True))
        }
    if kind == 1:
        return Rec(data.draw(st.text(max_size=3)), data.draw(st.integers(0, 3)))
    if kind == 2:
        return Bare(data.draw(scalars))
    return Slotted(data.draw(scalars))


def start(data: st.DataObject) -> dict:
    kind = data.draw(st.integers(0, 2))
    n = data.draw(st.integers(records.RUN, records.RUN + 4))
    runs = {
        "by_key": {f"k{i}": record(data, kind) for i in range(n)},
        "rows": [record(data, kind) for _ in range(n)],
    }
    first = data.draw(
        st.sampled_from(["by_key", "rows"])
    )  # which run a shared record is seen in first
    return {first: runs.pop(first), **runs}


def fields_of(rec: Any) -> dict | None:
    if isinstance(rec, dict):
        return rec
    if isinstance(rec, (Rec, Bare)):
        return vars(rec)
    return None


def edit(data: st.DataObject, root: dict) -> None:
    where = data.draw(st.sampled_from(["by_key", "rows"]))
    run = root[where]
    if not run:
        run_keys: list = []
    else:
        run_keys = list(run) if isinstance(run, dict) else list(range(len(run)))
    how = data.draw(st.integers(0, 11))
    if not run_keys:
        how = 5
    pick = data.draw(st.sampled_from(run_keys)) if run_keys else None
    rec = run[pick] if run_keys else None
    fields = fields_of(rec) if rec is not None else None
    if how <= 2 and fields is not None:  # one field to a scalar (often of another type)
        fields[data.draw(st.sampled_from(FIELDS))] = data.draw(scalars)
    elif how == 3 and fields:  # a field goes, or goes and comes back last
        name = data.draw(st.sampled_from(list(fields)))
        value = fields.pop(name)
        if data.draw(st.booleans()):
            fields[name] = value
    elif how == 4:  # replaced by an equal copy, or by a record of another type
        run[pick] = copy.copy(rec) if data.draw(st.booleans()) else record(data)
    elif how == 5:  # a record more (inserted in the middle of the list)
        if isinstance(run, dict):
            run[data.draw(st.sampled_from(["k0", "new", "k3"]))] = record(data)
        else:
            run.insert(data.draw(st.integers(0, len(run))), record(data))
    elif how == 6:  # a record less
        del run[pick]
    elif how == 7:  # shared: the same record in the other run too, or twice here
        other = root[data.draw(st.sampled_from(["by_key", "rows"]))]
        if isinstance(other, dict):
            other[data.draw(st.sampled_from(["k1", "k2", "shared"]))] = rec
        else:
            other.insert(data.draw(st.integers(0, len(other))), rec)
    elif how == 8 and fields is not None:  # a nested container, maybe a cycle
        fields["x"] = data.draw(st.sampled_from([[], {"a": 1}, root, rec]))
    elif how == 9 and isinstance(run, list) and len(run) > 1:  # two records swap places
        i, j = data.draw(st.integers(0, len(run) - 1)), data.draw(st.integers(0, len(run) - 1))
        run[i], run[j] = run[j], run[i]
    elif how == 10:  # a non-record among them
        run[pick] = data.draw(scalars)
    elif fields is not None:  # the same value again: nothing changes
        for name, value in list(fields.items()):
            fields[name] = value


def check_step(mirror: Any, root: dict, stored: bytes) -> tuple[Any, bytes]:
    shadow = capture(root, LIMITS)
    mirror, ops = diff(mirror, root, LIMITS)
    assert nodes_equal(mirror, shadow), (to_plain(mirror), to_plain(shadow))
    delta = encode_delta(ops)
    rebuilt = apply(decode_node(stored), decode_delta(delta))
    assert nodes_equal(rebuilt, shadow), (to_plain(rebuilt), to_plain(shadow))
    undone = apply(decode_node(encode_node(rebuilt)), invert(decode_delta(delta)))
    assert nodes_equal(undone, decode_node(stored))
    return mirror, encode_node(rebuilt)


@given(st.data())
def test_runs_of_records_diff_as_a_full_capture_sees_them(data: st.DataObject) -> None:
    root = start(data)
    mirror = capture(root, LIMITS)
    stored = encode_node(mirror)
    mirror, stored = check_step(mirror, root, stored)  # the first walk leaves shadows
    for _ in range(data.draw(st.integers(1, 10))):
        for _ in range(data.draw(st.integers(0, 3))):
            edit(data, root)
        mirror, stored = check_step(mirror, root, stored)


def test_one_field_of_many_records_is_one_put() -> None:
    state = {
        "users": {f"u{i}": {"name": f"n{i}", "score": i} for i in range(100)},
        "orders": [Rec(f"o{i}", i) for i in range(100)],
    }
    mirror = capture(state)
    for _ in range(2):  # the walk after the first uses the shadows
        state["users"]["u42"]["score"] = True
        state["orders"][7].count += 1
        mirror, ops = diff(mirror, state)
        assert [(type(o).__name__, o.path) for o in ops] == [
            ("Put", ["users", "u42", "score"]),
            ("Put", ["orders", 7, "count"]),
        ]
        assert nodes_equal(mirror, capture(state))
        state["users"]["u42"]["score"] = 42
        state["orders"][7].count -= 1
        mirror, ops = diff(mirror, state)
        assert len(ops) == 2 and nodes_equal(mirror, capture(state))
    mirror, ops = diff(mirror, state)
    assert ops == []


def test_a_record_shared_after_the_run_becomes_a_ref_and_back() -> None:
    rows = [{"i": i} for i in range(20)]
    state: dict = {"rows": rows}
    mirror = capture(state)
    diff(mirror, state)
    state = {"first": rows[5], "rows": rows}  # seen before the run: rows[5] is a Ref to it
    mirror, _ = diff(mirror, state)
    assert to_plain(mirror)["rows"][5] == {"$ref": "first"}
    del state["first"]
    mirror, _ = diff(mirror, state)
    assert nodes_equal(mirror, capture(state))
    assert to_plain(mirror)["rows"][5] == {"i": 5}


def test_a_record_of_a_dict_run_seen_first_elsewhere_is_a_ref() -> None:
    by_key = {f"k{i}": Rec(f"r{i}") for i in range(20)}
    state: dict = {"rows": [], "by_key": by_key}
    mirror = capture(state)
    mirror, _ = diff(mirror, state)
    state["rows"].append(by_key["k3"])
    mirror, _ = diff(mirror, state)
    assert to_plain(mirror)["by_key"]["k3"] == {"$ref": "rows[0]"}
    assert nodes_equal(mirror, capture(state))


def test_records_appended_and_dropped_are_splices_only() -> None:
    log = [Rec(f"e{i}", i) for i in range(50)]
    state = {"log": log}
    mirror = capture(state)
    for n in range(3):
        log.append(Rec(f"new{n}"))
        del log[0]
        log[20].count += 100
        mirror, ops = diff(mirror, state)
        assert [(type(o).__name__, o.path) for o in ops] == [
            ("Splice", ["log"]),
            ("Put", ["log", 20, "count"]),
            ("Splice", ["log"]),
        ]
        assert nodes_equal(mirror, capture(state))


def test_no_program_code_runs_when_records_change() -> None:
    calls: list[str] = []

    class Loud:
        def __eq__(self, other: object) -> bool:
            calls.append("eq")
            return True

        def __hash__(self) -> int:
            calls.append("hash")
            return 1

        def __repr__(self) -> str:
            calls.append("repr")
            return "loud"

    class LoudInt(int):
        def __eq__(self, other: object) -> bool:
            calls.append("int eq")
            return True

        __hash__ = int.__hash__

    rows = [{"k": i, "s": "x"} for i in range(12)]
    objs = [Rec(f"r{i}", i) for i in range(12)]
    by_key = {f"k{i}": {"v": i} for i in range(12)}
    state = {"rows": rows, "objs": objs, "by_key": by_key}
    mirror = capture(state)
    for edit_one in (
        lambda: rows[3].__setitem__("k", Loud()),
        lambda: rows[4].__setitem__("k", LoudInt(4)),
        lambda: setattr(objs[5], "count", LoudInt(5)),
        lambda: vars(objs[6]).__setitem__(Loud(), 1),
        lambda: by_key["k7"].__setitem__(Loud(), 2),
        lambda: by_key.__setitem__("k8", Loud()),
    ):
        mirror, _ = diff(mirror, state)  # a shadow from the walk before
        edit_one()  # (inserting a Loud key hashes it: that is the test's own doing)
        calls.clear()
        mirror, _ = diff(mirror, state)
        assert calls == []
        assert nodes_equal(mirror, capture(state))
