"""Live trace/untrace of loaded code: recorded only while traced, code restored exactly."""

from __future__ import annotations

import sys

import pytest
from instr_support import drain

from elixirscope.instrument import live
from elixirscope.instrument.plan import PlanError

SOURCE = '''
import functools

def deco(func):
    @functools.wraps(func)
    def wrapper(*args):
        return func(*args)
    return wrapper

def helper(x, scale=[2]):
    return x * scale[0]

@deco
def decorated(x):
    return helper(x) + 1

def make_closure(k):
    def inner(x):
        return x + k
    return inner

closure = make_closure(10)

class Shape:
    @classmethod
    def unit(cls):
        return cls()
    @staticmethod
    def sides():
        return 4
    @property
    def area(self):
        self.seen = True
        return 1
    class Inner:
        def deep(self):
            return super().__repr__()[:1]
'''


@pytest.fixture
def loaded(tmp_path, monkeypatch):
    path = tmp_path / "instr_livemod.py"
    path.write_text(SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import instr_livemod

    yield instr_livemod
    for pattern in list(live._rules):
        live.untrace(pattern)
    sys.modules.pop("instr_livemod", None)


def exercise(mod):
    return (mod.decorated(3), mod.closure(1), mod.Shape.unit().area, mod.Shape.sides(),
            mod.Shape.Inner().deep())


def calls(events):
    return sorted(e[6] for e in events if e[0] == "call")


def test_trace_then_untrace_round_trip(loaded):
    codes = {f: f.__code__ for f in (loaded.helper, loaded.decorated.__wrapped__, loaded.closure,
                                     loaded.Shape.Inner.deep, loaded.Shape.area.fget)}
    expected = exercise(loaded)
    drain()
    names = live.trace("instr_livemod.*", "args")
    assert sorted(names) == sorted([
        "instr_livemod.deco", "instr_livemod.helper", "instr_livemod.decorated",
        "instr_livemod.make_closure", "instr_livemod.make_closure.<locals>.inner",
        "instr_livemod.Shape.unit", "instr_livemod.Shape.sides",
        "instr_livemod.Shape.area", "instr_livemod.Shape.Inner.deep"])
    assert live.traced()["instr_livemod.helper"] == "args"
    assert exercise(loaded) == expected
    events = drain()
    assert calls(events) == sorted([
        "instr_livemod.decorated", "instr_livemod.helper", "instr_livemod.Shape.unit",
        "instr_livemod.make_closure.<locals>.inner",
        "instr_livemod.Shape.area", "instr_livemod.Shape.sides", "instr_livemod.Shape.Inner.deep"])
    assert {"x": "3"} in [e[7] for e in events if e[0] == "call"]
    assert loaded.helper.__defaults__ == ([2],) and loaded.decorated.__wrapped__ is not None

    restored = live.untrace("instr_livemod.*")
    assert sorted(restored) == sorted(names)
    assert all(f.__code__ is code for f, code in codes.items())
    assert live.traced() == {}
    assert exercise(loaded) == expected
    assert calls(drain()) == []


def test_level_change_is_set_level_and_specific_rules_win(loaded):
    live.trace("instr_livemod.*", "boundaries")
    code = loaded.helper.__code__
    live.trace("instr_livemod.helper", "args")
    assert loaded.helper.__code__ is code       # no recompilation, only the level changed
    drain()
    loaded.helper(5)
    loaded.Shape.sides()
    events = [e for e in drain() if e[0] == "call"]
    assert [(e[6], e[7]) for e in events] == [("instr_livemod.helper", {"x": "5", "scale": "[2]"}),
                                              ("instr_livemod.Shape.sides", None)]
    assert live.untrace("instr_livemod.helper") == []   # still covered by the wider rule
    assert live.traced()["instr_livemod.helper"] == "boundaries"
    assert "instr_livemod.helper" in live.untrace("instr_livemod.*")


def test_closures_keep_working_when_their_maker_is_traced(loaded):
    live.trace("instr_livemod.make_closure", "args")
    made = loaded.make_closure(5)
    assert made(1) == 6 and made.__closure__[0].cell_contents == 5
    assert live.untrace("instr_livemod.make_closure") == ["instr_livemod.make_closure"]


def test_a_changed_source_file_is_refused_not_misapplied(loaded, tmp_path):
    path = tmp_path / "instr_livemod.py"
    path.write_text(SOURCE.replace("return x * scale[0]", "return x * scale[0] * 100"))
    assert "instr_livemod.helper" not in live.trace("instr_livemod.helper", "args")
    assert "changed since" in live.failures()["instr_livemod.helper"]
    assert loaded.helper(1) == 2


def test_bad_trace_arguments_raise_plan_errors(loaded):
    with pytest.raises(PlanError, match="expected one of none, boundaries, args, full"):
        live.trace("instr_livemod.*", "loud")
    with pytest.raises(PlanError, match="to stop tracing use untrace"):
        live.trace("instr_livemod.*", "none")
    assert live.untrace("never.traced.*") == []


def test_the_standard_library_and_elixirscope_itself_are_never_traced():
    assert live.trace("json.*", "args") == []
    assert live.trace("elixirscope.capture.*", "args") == []
    assert live.untrace("json.*") == [] and live.untrace("elixirscope.capture.*") == []
