"""Attribute changes at level full carry the object's state as structure (both runtimes):
every change rebuilds to the object's fields at that moment, C and Python record the same."""

from __future__ import annotations

import copy
import gc
import re

import pytest
from hooks_support import as_structs, define

from elixirscope.capture import hooks, recorder
from elixirscope.capture.objects import ObjectStates, identity
from elixirscope.contracts.trace import AttributeChange
from elixirscope.state.nodes import to_plain
from elixirscope.state.timeline import Timeline

SOURCE = """
snapshots = []


def snap(obj):
    snapshots.append(copy.deepcopy(vars(obj)))


class Account:
    def __init__(self, owner):
        with __elixirscope__.call_args({init}, ('self', 'owner'), (self, owner)):
            self.owner = owner
            __elixirscope__.attr({init}, self, 'owner')
            snap(self)
            self.balance = 0
            __elixirscope__.attr({init}, self, 'balance')
            snap(self)
            self.history = []
            __elixirscope__.attr({init}, self, 'history')
            snap(self)
            self.api_token = "s3cret"
            __elixirscope__.attr({init}, self, 'api_token')
            snap(self)

    def deposit(self, amount):
        with __elixirscope__.call_args({deposit}, ('self', 'amount'), (self, amount)):
            self.history.append(amount)  # in place: seen at the next assignment
            self.balance = self.balance + amount
            __elixirscope__.attr({deposit}, self, 'balance')
            snap(self)
            self.meta = {{"last": amount, "count": len(self.history)}}
            __elixirscope__.attr({deposit}, self, 'meta')
            snap(self)
"""


def _run(rec) -> tuple[list, list, str]:
    ns = define(SOURCE, level="full", names={"copy": copy}, init="function", deposit="function")
    account = ns["Account"]("ada")
    for amount in (5, 7, 11):
        account.deposit(amount)
    events = [e for e in as_structs(rec.ring.drain()) if type(e) is AttributeChange]
    return events, ns["snapshots"], identity(account)


def _expected(fields: dict, cls: str) -> dict:
    out = {"$class": cls, **fields}
    if "api_token" in out:
        out["api_token"] = "<redacted>"
    return out


def test_each_attribute_change_rebuilds_the_objects_fields(rec):
    events, snapshots, target = _run(rec)
    assert len(events) == len(snapshots) == 4 + 2 * 3
    assert {e.obj for e in events} == {target}
    assert re.fullmatch(r"hooks_test_\d+\.Account@0x[0-9a-f]+", target)
    assert [e.seq for e in events] == list(range(len(events)))
    assert events[0].key is not None and events[0].delta is None  # the first: a whole state
    assert all(e.delta is not None for e in events[1:])  # then what each assignment changed
    timeline = Timeline.of_events(target, events)
    cls = target.rsplit("@", 1)[0]
    for i, fields in enumerate(snapshots):
        assert to_plain(timeline.state(i)) == _expected(fields, cls), i
    assert events[3].value == "<redacted>"
    change = timeline.changes[4]
    assert change.callback.endswith(".deposit") and change.message == "balance = 5"
    assert change.call_id == events[4].call_id and change.message_id is None


def test_c_and_python_record_the_same_object_states(monkeypatch):
    monkeypatch.delenv("ELIXIRSCOPE_NO_SPEEDUPS", raising=False)
    from hooks_support import RUNTIMES

    if len(RUNTIMES) < 2:
        pytest.skip("the C accelerator is not built")
    recorded = []
    for accelerated in (True, False):
        hooks.uninstall()
        recorder.uninstall()
        rec = recorder.install(ring_size=1 << 12, accelerated=accelerated)
        hooks.install()
        try:
            events, _, target = _run(rec)
        finally:
            hooks.uninstall()
            recorder.uninstall()
        module = target.split(".")[0].encode()  # hooks_test_NNNNNN: one length whatever N
        recorded.append(
            [
                (
                    e.function.split(".", 1)[1],
                    e.name,
                    e.value,
                    e.obj.replace(target, "OBJ"),
                    e.seq,
                    e.key and e.key.replace(module, b"M"),
                    e.delta,
                )
                for e in events
            ]
        )
    assert recorded[0] == recorded[1]


def test_an_object_that_dies_is_forgotten_and_its_address_starts_over():
    class Point:
        def __init__(self, x):
            self.x = x

    states = ObjectStates()
    first = Point(1)
    target, seq, key, delta = states.record(first)
    assert (seq, delta) == (0, None) and key is not None
    first.x = 2
    _, seq, key, delta = states.record(first)
    assert seq == 1 and key is None and delta is not None
    assert len(states) == 1
    del first
    gc.collect()
    again = Point(3)
    found = states.record(again)
    assert found is not None
    # dead objects are forgotten at the next record: only the live one is watched
    assert len(states) == 1 and len(states.tracker) == 1
    assert found[1] == 0  # a first capture, whatever address it got


def test_objects_without_weak_references_are_bounded():
    class Slotted:
        __slots__ = ("v",)

        def __init__(self, v):
            self.v = v

    states = ObjectStates(max_objects=3)
    kept = [Slotted(i) for i in range(10)]
    for obj in kept:
        states.record(obj)
    assert len(states) == 3 and len(states.tracker) == 3
    # the most recently changed are the ones kept: their next change is a delta
    kept[-1].v = 99
    assert states.record(kept[-1])[1] == 1


def test_object_state_reads_no_program_code():
    class Touchy:
        def __init__(self):
            object.__setattr__(self, "a", [1, 2])

        def __getattribute__(self, name):
            raise AssertionError("program code ran")

        def __repr__(self):
            raise AssertionError("program code ran")

    states = ObjectStates()
    target, seq, key, _ = states.record(Touchy())
    assert target.split("@")[0].endswith("Touchy") and seq == 0 and key
