"""The hooks: entry/exit/error records, ret identity, generators, sampling, errors swallowed.

Functions are written in the exact shape the rewriter emits (hooks_api.md), so
these tests need nothing but the capture runtime. Every test runs on both the
pure-Python hooks and the C accelerator.
"""

from __future__ import annotations

import builtins
import os
import sys

import msgspec
import pytest
from hooks_support import as_structs, define

from elixirscope.capture import current_call_id, hooks, recorder


def test_entry_exit_and_error_records(rec):
    ns = define(
        """
def inner(x):
    with __elixirscope__.call({inner}):
        if x < 0:
            raise ValueError("negative: " + str(x))
        return x * 2

def outer(x):
    with __elixirscope__.call({outer}):
        return inner(x) + 1
""",
        inner="function", outer="function",
    )
    assert ns["outer"](3) == 7
    with pytest.raises(ValueError, match="negative: -1") as info:
        ns["outer"](-1)
    assert info.traceback[-1].name == "inner"  # re-raised unchanged
    events = as_structs(rec.ring.drain())
    kinds = [(type(e).__name__, e.function) for e in events]
    mod = next(iter(ns["fids"])) and ns["__name__"]
    assert kinds == [
        ("FunctionEntry", f"{mod}.outer"), ("FunctionEntry", f"{mod}.inner"),
        ("FunctionExit", f"{mod}.inner"), ("FunctionExit", f"{mod}.outer"),
        ("FunctionEntry", f"{mod}.outer"), ("FunctionEntry", f"{mod}.inner"),
        ("FunctionError", f"{mod}.inner"), ("FunctionError", f"{mod}.outer"),
    ]
    o_in, i_in, i_out, o_out = events[:4]
    assert o_in.parent_id == 0 and i_in.parent_id == o_in.id
    assert i_out.call_id == i_in.id and i_out.parent_id == o_in.id
    assert o_out.call_id == o_in.id and o_out.duration_ns >= i_out.duration_ns > 0
    assert o_out.result is None  # boundaries: no values
    assert [e.id for e in events] == sorted({e.id for e in events})
    assert [e.ts for e in events] == sorted({e.ts for e in events})
    err = events[6]
    assert (err.exc_type, err.message, err.call_id) == ("ValueError", "negative: -1", events[5].id)
    assert hooks.stats()["hook_errors"] == 0 and current_call_id() == 0


def test_args_level_records_arguments_and_result_identity(rec):
    ns = define(
        """
def f(a, b=1, *args, password, **kw):
    with __elixirscope__.call_args({f}, ('a', 'b', 'args', 'password', 'kw'), (a, b, args, password, kw)):
        if a is None:
            return
        return __elixirscope__.ret({f}, [a, b])
""",
        level="args", f="function",
    )
    out = ns["f"](5, 2, 3, password="hunter2", z=1)
    assert out == [5, 2]
    assert ns["f"](None, password="x") is None
    sentinel = object()
    assert hooks.get_hooks().ret(ns["fids"]["f"], sentinel) is sentinel  # identity
    entry, exit_, entry2, exit2 = as_structs(rec.ring.drain())
    assert entry.args["a"] == "5" and entry.args["args"] == "(3,)"
    assert entry.args["password"] != "'hunter2'"  # redacted by values.py
    assert exit_.result == "[5, 2]" and exit2.result == "None"


def test_generator_yield_resume_restores_the_callers_stack(rec):
    ns = define(
        """
def gen(n):
    with __elixirscope__.gen_call({gen}):
        for i in range(n):
            got = __elixirscope__.resumed({gen}, (yield __elixirscope__.yielding({gen}, 4, i)))
            ids.append(current_call_id())

def consumer():
    with __elixirscope__.call({consumer}):
        me = current_call_id()
        g = gen(3)
        seen = [next(g)]
        assert current_call_id() == me  # the suspended generator is not on our stack
        seen.append(g.send("hello"))
        assert current_call_id() == me
        g.close()  # GeneratorExit at the yield: a normal exit
        return seen, me
""",
        level="args", gen="generator", consumer="function",
    )
    ns["ids"], ns["current_call_id"] = [], current_call_id
    seen, me = ns["consumer"]()
    assert seen == [0, 1]
    events = as_structs(rec.ring.drain())
    names = [type(e).__name__ for e in events]
    assert names == [
        "FunctionEntry", "FunctionEntry", "GeneratorYield", "GeneratorResume", "GeneratorYield",
        "FunctionExit", "FunctionExit",
    ]
    g_entry = events[1]
    assert g_entry.parent_id == me and ns["ids"] == [g_entry.id]
    assert events[2].line == events[4].line == 4  # the yield's line; a resume has none
    assert not events[2].awaiting  # a yield hands a value on: it waits for no one
    assert events[3].value == "'hello'" and events[2].value == "0"
    assert all(e.call_id == g_entry.id for e in events[2:6])
    assert events[5].call_id == g_entry.id  # closed: FunctionExit, not FunctionError
    assert hooks.stats()["suspended_generators"] == 0 and hooks.stats()["stack_mismatches"] == 0


def test_abandoned_generator_raising_records_an_error(rec):
    ns = define(
        """
def gen():
    with __elixirscope__.gen_call({gen}):
        __elixirscope__.resumed({gen}, (yield __elixirscope__.yielding({gen}, 0, 1)))
        raise KeyError("k")
""",
        gen="generator",
    )
    g = ns["gen"]()
    next(g)
    with pytest.raises(KeyError):
        next(g)
    events = as_structs(rec.ring.drain())
    assert type(events[-1]).__name__ == "FunctionError" and events[-1].exc_type == "KeyError"


def test_sampling_zero_records_nothing_under_the_root(rec):
    ns = define(
        """
def child():
    with __elixirscope__.call({child}):
        return current_call_id()

def root():
    with __elixirscope__.call({root}):
        return child()
""",
        root="function", child="function",
    )
    ns["current_call_id"] = current_call_id
    hooks.set_level(ns["fids"]["root"], "boundaries", 0.0)
    assert ns["root"]() == 0
    assert rec.ring.drain() == []
    assert hooks.stats()["sampled_out"] == 2
    ns["child"]()  # a root of its own at rate 1.0: recorded
    assert len(rec.ring.drain()) == 2


def test_level_none_at_runtime_is_transparent(rec):
    ns = define(
        """
def mid():
    with __elixirscope__.call({mid}):
        return leaf()

def leaf():
    with __elixirscope__.call({leaf}):
        return current_call_id()

def top():
    with __elixirscope__.call({top}):
        return current_call_id(), mid()
""",
        top="function", mid="function", leaf="function",
    )
    ns["current_call_id"] = current_call_id
    hooks.set_level(ns["fids"]["mid"], "none")
    top_id, leaf_id = ns["top"]()
    events = rec.ring.drain()
    assert {e[6].rsplit(".", 1)[1] for e in events if e[0] == "call"} == {"top", "leaf"}
    leaf_entry = next(e for e in events if e[1] == leaf_id)
    assert leaf_entry[5] == top_id  # parent skips the untraced mid


def test_hook_errors_are_swallowed_and_counted(rec):
    h = hooks.get_hooks()
    with h.call(10**6):  # unknown fid: recorded nowhere, the block still runs
        x = 1
    assert x == 1
    ns = define(
        """
def f():
    with __elixirscope__.call_args({f}, ('a',), (1,)):
        return __elixirscope__.ret({f}, 42)
""",
        level="args", f="function",
    )

    class Boom:
        def capture_args(self, names, values):
            raise RuntimeError("values broke")

        def safe_repr(self, obj, limit=200):
            raise RuntimeError("repr broke")

        def safe_attr(self, obj, name, limit=200):
            raise RuntimeError("attr broke")

    # a fresh hooks object whose value capture fails on every call
    if rec.accelerated:
        broken = hooks._c_hooks_class()(hooks._functions, Boom())
        for fid, info in enumerate(hooks._functions):
            if info is not None:
                broken.update_function(fid, info)
    else:
        from elixirscope.capture._pyhooks import PyHooks

        broken = PyHooks(hooks._functions, Boom())
    broken.bind(recorder.get_recorder())
    builtins.__elixirscope__ = broken
    try:
        assert ns["f"]() == 42
    finally:
        hooks.uninstall()
    assert broken.stats()["hook_errors"] >= 2
    assert "broke" in broken.stats()["last_error"]
    events = [e for e in rec.ring.drain() if e[0] in ("call", "return")]
    assert [e[0] for e in events][-2:] == ["call", "return"]  # still recorded, without values


def test_inert_hooks_when_uninstalled(rec):
    ns = define(
        """
def f(a):
    with __elixirscope__.call({f}):
        return __elixirscope__.ret({f}, a)
""",
        f="function",
    )
    hooks.uninstall()
    assert builtins.__elixirscope__ is hooks.INERT and not hooks.installed()
    assert ns["f"](5) == 5
    assert rec.ring.drain() == []
    assert hooks.install() is hooks.install()  # idempotent


def test_attr_records_self_assignments_at_full(rec):
    ns = define(
        """
class Account:
    def __init__(self, balance):
        with __elixirscope__.call_args({init}, ('self', 'balance'), (self, balance)):
            self.balance = balance
            __elixirscope__.attr({init}, self, 'balance')
            self.token = "s3cret"
            __elixirscope__.attr({init}, self, 'token')
""",
        level="full", init="function",
    )
    ns["Account"](10)
    attrs = [e for e in as_structs(rec.ring.drain()) if type(e).__name__ == "AttributeChange"]
    assert [(a.name, a.value) for a in attrs][0] == ("balance", "10")
    assert attrs[1].value != "'s3cret'"  # sensitive name redacted


def test_register_is_idempotent_and_validates():
    a = hooks.register("m_reg", "f", "args", 0.5, "f.py", 3, "function")
    assert hooks.register("m_reg", "f", "full", 1.0, "f.py", 3, "function") == a
    info = hooks.function(a)
    assert (info.name, info.level, info.sampling) == ("m_reg.f", "full", 1.0)
    with pytest.raises(ValueError, match=r"Expected `kind` one of .*got 'lambda'"):
        hooks.register("m_reg", "g", "args", 1.0, "f.py", 1, "lambda")
    with pytest.raises(ValueError, match=r"Expected `level` one of .*got 'all'"):
        hooks.register("m_reg", "g", "all", 1.0, "f.py", 1, "function")
    with pytest.raises(ValueError, match=r"Expected `sampling` a number in \[0, 1\], got 2"):
        hooks.set_level(a, "args", 2)
    with pytest.raises(ValueError, match=r"Expected `fid` an id returned by register"):
        hooks.function(0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_gets_a_fresh_recorder(rec):
    ns = define(
        """
def f():
    with __elixirscope__.call({f}):
        return 1
""",
        f="function",
    )
    ns["f"]()
    parent_producer = rec.producer
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            ns["f"]()
            child = recorder.get_recorder()
            events = child.ring.drain()
            out = msgspec.json.encode([child.producer, child.pid, [list(e) for e in events]])
            os.write(w, out)
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.waitpid(pid, 0)
    producer, child_pid, events = msgspec.json.decode(data)
    assert producer != parent_producer and child_pid == pid
    assert [e[:2] for e in events] == [["call", 1], ["return", 2]]
    assert len(rec.ring.drain()) == 2  # the parent's own events stay in the parent


def test_speedups_can_be_disabled_by_environment(monkeypatch):
    monkeypatch.setenv("ELIXIRSCOPE_NO_SPEEDUPS", "1")
    hooks.uninstall()
    recorder.uninstall()
    try:
        assert recorder.install().accelerated is False
        assert hooks.install().accelerated is False
    finally:
        hooks.uninstall()
        recorder.uninstall()
    assert sys.modules["elixirscope.capture._select"].disabled() is True
