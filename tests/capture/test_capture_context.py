"""Correlation ids and parent call ids across threads and asyncio tasks (both runtimes)."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from elixirscope.capture import (
    correlation,
    current_call_id,
    current_correlation_id,
    hooks,
    run_in_context,
    wrap,
)


def traced(name: str, kind: str = "function"):
    """Register ``ctx_test.<name>`` and return its fid."""
    return hooks.register("ctx_test", name, "boundaries", 1.0, __file__, 1, kind)


def test_correlation_nests_and_restores():
    assert current_correlation_id() is None
    with correlation("outer") as outer:
        assert outer == "outer" == current_correlation_id()
        with correlation() as inner:
            assert len(inner) == 32 and current_correlation_id() == inner
        assert current_correlation_id() == "outer"
    assert current_correlation_id() is None


def test_correlation_rejects_a_bad_id():
    with pytest.raises(ValueError, match=r"Expected `cid` a non-empty str or None, got 42"):
        with correlation(42):  # type: ignore[arg-type]
            pass


def test_a_new_thread_starts_with_none_and_wrap_carries_it():
    seen: dict[str, object] = {}
    with correlation("c-thread"):
        plain = threading.Thread(target=lambda: seen.update(plain=current_correlation_id()))
        carried = threading.Thread(target=wrap(lambda: seen.update(wrapped=current_correlation_id())))
        plain.start(), carried.start()
        plain.join(), carried.join()
        with ThreadPoolExecutor(2) as pool:
            seen["pool"] = pool.submit(run_in_context(current_correlation_id)).result()
    assert seen == {"plain": None, "wrapped": "c-thread", "pool": "c-thread"}


def test_wrap_rejects_a_non_callable():
    with pytest.raises(TypeError, match="Expected a callable, got 3"):
        wrap(3)  # type: ignore[arg-type]


def test_parent_ids_across_threads(rec):
    fid = traced("outer")
    seen: dict[str, int] = {}

    def in_thread(key: str) -> None:
        seen[key] = current_call_id()

    with __elixirscope__.call(fid):  # noqa: F821 - the hooks builtin
        me = current_call_id()
        t1 = threading.Thread(target=in_thread, args=("plain",))
        t2 = threading.Thread(target=wrap(in_thread), args=("wrapped",))
        t1.start(), t2.start()
        t1.join(), t2.join()
    assert me > 0 and seen == {"plain": 0, "wrapped": me}
    assert current_call_id() == 0


def test_gather_of_tasks_each_with_its_own_correlation(rec):
    """Each task: own correlation, its calls nested under the call that gathered them."""
    outer_fid, task_fid, inner_fid = traced("main", "coroutine"), traced("task", "coroutine"), traced("leaf")

    def leaf() -> None:
        with __elixirscope__.call(inner_fid):  # noqa: F821
            pass

    async def task(i: int) -> tuple[str, int]:
        with correlation(f"task-{i}") as cid:
            with __elixirscope__.call(task_fid):  # noqa: F821
                mine = current_call_id()
                for _ in range(3):
                    __elixirscope__.resumed(  # noqa: F821
                        task_fid, await __elixirscope__.awaiting(task_fid, 0, asyncio.sleep(0))  # noqa: F821
                    )
                    assert current_call_id() == mine and current_correlation_id() == cid
                    leaf()
                return cid, mine

    async def main() -> tuple[int, list]:
        with __elixirscope__.call(outer_fid):  # noqa: F821
            me = current_call_id()
            results = await asyncio.gather(*(task(i) for i in range(4)))
            assert current_call_id() == me
            return me, results

    main_id, results = asyncio.run(main())
    events = rec.ring.drain()
    calls = {e[1]: e for e in events if e[0] == "call"}
    for cid, task_call in results:
        assert calls[task_call][5] == main_id  # parent: the call that gathered
        assert calls[task_call][4] == cid
        leaves = [e for e in calls.values() if e[6] == "ctx_test.leaf" and e[5] == task_call]
        assert len(leaves) == 3 and all(e[4] == cid for e in leaves)
    exits = [e for e in events if e[0] == "return"]
    assert len(exits) == len(calls) == 1 + 4 + 12
    # main is a root call in a context without an id: it starts a chain of its own
    (main_in,) = [e for e in events if e[0] == "call" and e[6] == "ctx_test.main"]
    (main_out,) = [e for e in events if e[0] == "return" and e[7] == "ctx_test.main"]
    assert re.fullmatch(r"[0-9a-f]{32}", main_in[4]) and main_out[4] == main_in[4]
    assert main_in[4] not in {cid for cid, _ in results}


def test_task_created_then_creator_returns_keeps_the_snapshot(rec):
    """create_task copies the context: the task's parent is the creator even after it returned."""
    creator_fid, child_fid = traced("creator"), traced("child", "coroutine")

    async def child() -> int:
        with __elixirscope__.call(child_fid):  # noqa: F821
            return current_call_id()

    def create() -> tuple[int, asyncio.Task]:
        with __elixirscope__.call(creator_fid):  # noqa: F821
            return current_call_id(), asyncio.get_running_loop().create_task(child())

    async def main() -> tuple[int, int]:
        creator_id, t = create()
        assert current_call_id() == 0
        await t
        return creator_id, t.result()

    creator_id, child_id = asyncio.run(main())
    calls = {e[1]: e for e in rec.ring.drain() if e[0] == "call"}
    assert calls[child_id][5] == creator_id


def test_copied_context_is_a_snapshot_of_the_stack(rec):
    a, b = traced("a"), traced("b")
    with __elixirscope__.call(a):  # noqa: F821
        a_id = current_call_id()
        snap = contextvars.copy_context()
        with __elixirscope__.call(b):  # noqa: F821
            b_id = current_call_id()
            assert snap.run(current_call_id) == a_id
            snap.run(lambda: __elixirscope__.call(b).__enter__())  # noqa: F821 - push in the copy
            in_copy = snap.run(current_call_id)
            assert current_call_id() == b_id  # the copy's push is not ours
        assert current_call_id() == a_id
    assert in_copy not in (a_id, b_id, 0)
    assert current_call_id() == 0


def test_a_context_that_ends_leaves_no_cycle_for_the_collector(rec):
    """A context's call stack goes with it, by reference counting: a server makes a
    context a request, and a cycle each would pile up until the collector ran."""
    fid = traced("in_context")

    def request() -> None:
        with __elixirscope__.call(fid):  # noqa: F821
            with correlation("c-request"):  # a set of another variable forks the stack
                with __elixirscope__.call(fid):  # noqa: F821
                    pass

    contextvars.copy_context().run(request)
    gc.collect()
    gc.disable()
    try:
        for _ in range(300):
            contextvars.copy_context().run(request)
        unreachable = gc.collect()
    finally:
        gc.enable()
    assert unreachable < 30, f"{unreachable} objects in cycles after 300 contexts"
    assert len([e for e in rec.ring.drain() if e[0] == "call"]) == 2 * 301
