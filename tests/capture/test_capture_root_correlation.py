"""A root call without a correlation id starts a chain of its own (both runtimes).

A recorded call with no active traced caller, in a context with no correlation
id, gets a fresh id (32 lowercase hex chars) on its entry and on everything
recorded while it is active; it is dropped when it returns. An id set in the
context always wins. Functions are written in the exact shape the rewriter emits.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading

import msgspec
import pytest
from hooks_support import RUNTIMES, as_structs, define
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elixirscope.capture import (
    _select,
    correlation,
    current_correlation_id,
    hooks,
    recorder,
    wrap,
)
from elixirscope.capture.actors import ActorTracer

HEX32 = re.compile(r"[0-9a-f]{32}")


def _use(accelerated: bool) -> recorder.Recorder:
    hooks.uninstall()
    recorder.uninstall()
    r = recorder.install(ring_size=1 << 14, accelerated=accelerated)
    assert hooks.install().accelerated is accelerated
    return r


@pytest.fixture(params=RUNTIMES)
def rec(request, monkeypatch):
    monkeypatch.delenv("ELIXIRSCOPE_NO_SPEEDUPS", raising=False)
    yield _use(request.param)
    hooks.uninstall()
    recorder.uninstall()


NESTED = """
def leaf(x):
    with __elixirscope__.call({leaf}):
        if x < 0:
            raise ValueError("negative")
        return current_correlation_id()

def root(x):
    with __elixirscope__.call({root}):
        mine = current_correlation_id()
        return mine, leaf(x), leaf(x + 1)
"""


def test_sequential_root_calls_get_different_ids_dropped_on_return(rec):
    ns = define_root(NESTED, root="function", leaf="function")
    assert current_correlation_id() is None
    first, *_ = ns["root"](1)
    assert current_correlation_id() is None  # dropped when the root returned
    second, *_ = ns["root"](1)
    assert HEX32.fullmatch(first) and HEX32.fullmatch(second) and first != second
    events = as_structs(rec.ring.drain())
    assert len(events) == 12
    assert [e.correlation_id for e in events] == [first] * 6 + [second] * 6
    assert hooks.stats()["hook_errors"] == 0


def test_nested_calls_exits_and_errors_share_the_roots_id(rec):
    ns = define_root(NESTED, root="function", leaf="function")
    mine, in_leaf, in_leaf2 = ns["root"](1)
    assert mine == in_leaf == in_leaf2
    with pytest.raises(ValueError):
        ns["root"](-1)
    events = as_structs(rec.ring.drain())
    ok, failed = events[:6], events[6:]
    assert {e.correlation_id for e in ok} == {mine}
    assert [type(e).__name__ for e in failed] == [
        "FunctionEntry", "FunctionEntry", "FunctionError", "FunctionError",
    ]
    (other,) = {e.correlation_id for e in failed}
    assert HEX32.fullmatch(other) and other != mine


def test_an_explicit_correlation_wins_and_the_chain_resumes_after_it(rec):
    ns = define_root(
        """
def leaf():
    with __elixirscope__.call({leaf}):
        return current_correlation_id()

def root():
    with __elixirscope__.call({root}):
        before = leaf()
        with correlation("explicit-inner"):
            inside = leaf()
        return before, inside, leaf()
""",
        root="function", leaf="function",
    )
    ns["correlation"] = correlation
    with correlation("explicit-outer"):
        assert ns["root"]() == ("explicit-outer", "explicit-inner", "explicit-outer")
    cids = [e[4] for e in rec.ring.drain()]
    assert cids == ["explicit-outer"] * 3 + ["explicit-inner"] * 2 + ["explicit-outer"] * 3

    before, inside, after = ns["root"]()
    assert HEX32.fullmatch(before) and after == before and inside == "explicit-inner"
    cids = [e[4] for e in rec.ring.drain()]
    assert cids == [before] * 3 + ["explicit-inner"] * 2 + [before] * 3


def test_each_thread_gets_its_own_chain_and_wrap_carries_it(rec):
    ns = define_root(NESTED, root="function", leaf="function")
    seen: dict[str, tuple] = {}
    together = threading.Barrier(4)  # all alive at once: four distinct thread idents

    def work(key: str) -> None:
        together.wait()
        seen[key] = ns["root"](1)
        together.wait()

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [seen[f"t{i}"][0] for i in range(4)]
    assert all(HEX32.fullmatch(c) for c in ids) and len(set(ids)) == 4
    assert all(len(set(seen[k])) == 1 for k in seen)  # nested calls share their root's
    by_thread: dict[int, set] = {}
    for e in rec.ring.drain():
        by_thread.setdefault(e[3], set()).add(e[4])
    assert sorted(c for cids in by_thread.values() for c in cids) == sorted(ids)
    assert all(len(cids) == 1 for cids in by_thread.values())

    # a thread started with wrap() inside a root call runs in (a copy of) its chain
    carried = define_root(
        """
def root():
    with __elixirscope__.call({root}):
        t = Thread(target=wrap(lambda: out.append(leaf())))
        t.start()
        t.join()
        return current_correlation_id()

def leaf():
    with __elixirscope__.call({leaf}):
        return current_correlation_id()
""",
        root="function", leaf="function",
    )
    carried.update(Thread=threading.Thread, wrap=wrap, out=[])
    mine = carried["root"]()
    assert carried["out"] == [mine] and {e[4] for e in rec.ring.drain()} == {mine}


GEN = """
def gen(n):
    with __elixirscope__.gen_call({gen}):
        for i in range(n):
            __elixirscope__.resumed({gen}, (yield __elixirscope__.yielding({gen}, 0, i)))
            seen.append(current_correlation_id())

def consumer(g):
    with __elixirscope__.call({consumer}):
        mine = current_correlation_id()
        return mine, next(g), current_correlation_id()
"""


def test_a_root_generator_keeps_its_id_across_resumes(rec):
    ns = define_root(GEN, gen="generator", consumer="function")
    ns["seen"] = []
    g = ns["gen"](3)
    assert next(g) == 0
    assert current_correlation_id() is None  # suspended: its id is not the caller's
    mine, value, after = ns["consumer"](g)  # resumed inside another root's chain
    assert value == 1 and after == mine
    assert list(g) == [2]
    events = rec.ring.drain()
    gen_events = [e for e in events if (e[6] if e[0] == "call" else e[7]).endswith(".gen")]
    assert [e[0] for e in gen_events] == [
        "call", "yield", "resume", "yield", "resume", "yield", "resume", "return",
    ]
    (gen_id,) = {e[4] for e in gen_events}
    assert HEX32.fullmatch(gen_id) and gen_id != mine
    assert ns["seen"] == [gen_id] * 3  # the resumed generator sees its own id
    consumer = [e[4] for e in events if e not in gen_events]
    assert consumer == [mine, mine]
    assert hooks.stats()["stack_mismatches"] == 0


def test_a_root_coroutine_keeps_its_id_across_awaits(rec):
    ns = define_root(
        """
async def main():
    with __elixirscope__.call({main}):
        ids = [current_correlation_id()]
        for _ in range(2):
            __elixirscope__.resumed({main}, await __elixirscope__.awaiting({main}, 0, asyncio.sleep(0)))
            ids.append(current_correlation_id())
        return ids
""",
        main="coroutine",
    )
    ns["asyncio"] = asyncio
    a = asyncio.run(ns["main"]())
    b = asyncio.run(ns["main"]())
    assert len(set(a)) == 1 and len(set(b)) == 1 and a[0] != b[0] and HEX32.fullmatch(a[0])
    cids = [e[4] for e in rec.ring.drain()]
    assert cids == [a[0]] * 6 + [b[0]] * 6  # call, 2 x (yield, resume), return


def test_emit_attrs_and_actor_messages_inside_a_root_carry_its_id(rec):
    ns = define_root(
        """
class Account:
    def __init__(self, balance):
        with __elixirscope__.call_args({init}, ('self', 'balance'), (self, balance)):
            self.balance = balance
            __elixirscope__.attr({init}, self, 'balance')
            emit("custom", "opened", {{}})
            self.trace = tracer.sending("account", "bank", ("opened", balance))
""",
        level="full", init="function",
    )
    tracer = ActorTracer()
    ns.update(emit=rec.emit, tracer=tracer)
    account = ns["Account"](10)
    events = as_structs(rec.ring.drain())
    assert [type(e).__name__ for e in events] == [
        "FunctionEntry", "AttributeChange", "CustomEvent", "MessageSend", "FunctionExit",
    ]
    (mine,) = {e.correlation_id for e in events}
    assert HEX32.fullmatch(mine) and account.trace[1] == mine and tracer.errors == 0

    # the receiver runs under the message's id: its root call does not start a chain
    def receive() -> None:
        with tracer.receiving("bank", ("opened", 10), account.trace):
            ns["Account"](20)

    worker = threading.Thread(target=receive)
    worker.start()
    worker.join()
    assert {e[4] for e in rec.ring.drain()} == {mine} and tracer.errors == 0


def test_unrecorded_roots_start_no_chain(rec):
    ns = define_root(NESTED, root="function", leaf="function")
    hooks.set_level(ns["fids"]["root"], "boundaries", 0.0)
    assert ns["root"](1) == (None, None, None)  # sampled out: nothing recorded, no id
    assert rec.ring.drain() == []
    hooks.set_level(ns["fids"]["root"], "none")  # untraced: the leaves are the roots
    _, first, second = ns["root"](1)
    assert HEX32.fullmatch(first) and HEX32.fullmatch(second) and first != second
    assert [e[4] for e in rec.ring.drain()] == [first, first, second, second]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depths=st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=8))
def test_every_event_of_a_root_carries_its_id_and_roots_differ(rec, depths):
    """Property: for any sequence of root calls of any depth, one fresh id per root."""
    ns = define_root(
        """
def down(n):
    with __elixirscope__.call({down}):
        if n:
            down(n - 1)
""",
        down="function",
    )
    rec.ring.drain()
    for depth in depths:
        ns["down"](depth)
    events = rec.ring.drain()
    assert len(events) == sum(2 * (d + 1) for d in depths)
    at, chains = 0, []
    for depth in depths:
        span = events[at : at + 2 * (depth + 1)]
        at += len(span)
        (cid,) = {e[4] for e in span}
        chains.append(cid)
    assert all(HEX32.fullmatch(c) for c in chains) and len(set(chains)) == len(chains)


def _trace_shape(accelerated: bool) -> list:
    """One scenario's events with ids named by order of appearance (ids differ per run)."""
    _use(accelerated)
    rec = recorder.get_recorder()
    ns = define_root(GEN + NESTED, gen="generator", consumer="function", root="function",
                leaf="function")
    ns["seen"] = []
    g = ns["gen"](2)
    next(g)
    ns["consumer"](g)
    ns["root"](1)
    with correlation("set"):
        ns["root"](1)
    list(g)
    names: dict = {}
    out = [
        (e[0], names.setdefault(e[4], f"chain-{len(names)}") if e[4] != "set" else "set")
        for e in rec.ring.drain()
    ]
    hooks.uninstall()
    recorder.uninstall()
    return out


@pytest.mark.skipif(_select._module is None, reason="C accelerator not built")
def test_c_and_python_chain_the_same_events(monkeypatch):
    monkeypatch.delenv("ELIXIRSCOPE_NO_SPEEDUPS", raising=False)
    c = _trace_shape(True)
    assert c == _trace_shape(False)
    assert len({name for _, name in c}) == 4  # gen, consumer, root, and "set"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_never_repeats_the_parents_ids(rec):
    ns = define_root(NESTED, root="function", leaf="function")
    parent_first = ns["root"](1)[0]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the same number of roots as the parent from here on
        try:
            os.write(w, msgspec.json.encode([ns["root"](1)[0] for _ in range(3)]))
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    child = msgspec.json.decode(data)
    parent = [ns["root"](1)[0] for _ in range(3)]
    assert all(HEX32.fullmatch(c) for c in child) and len(set(child)) == 3
    assert not set(child) & set(parent + [parent_first])


def define_root(src: str, level: str = "boundaries", sampling: float = 1.0, **kinds: str) -> dict:
    return define(src, level, sampling, names={"current_correlation_id": current_correlation_id},
                  **kinds)
