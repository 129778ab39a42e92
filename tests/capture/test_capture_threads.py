"""Thread names and thread links: a thread or executor task started inside a
recorded call is linked to that call; every thread is named once (both runtimes)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hooks_support import RUNTIMES, as_structs, define

from elixirscope.capture import hooks, recorder, threads
from elixirscope.capture.session import start_capture
from elixirscope.contracts.trace import FunctionEntry, ThreadStart


@pytest.fixture(params=RUNTIMES)
def session(request, monkeypatch):
    """A real capture session into a callable sink; the events, decoded, as it ships them."""
    monkeypatch.delenv("ELIXIRSCOPE_NO_SPEEDUPS", raising=False)
    hooks.uninstall()
    recorder.uninstall()
    recorder.install(ring_size=1 << 14, accelerated=request.param)
    shipped: list = []
    from elixirscope.contracts.trace import decode_batch

    s = start_capture(sink=lambda frame, n: shipped.extend(decode_batch(frame).events))
    s.shipped = shipped
    yield s
    s.stop()
    hooks.uninstall()
    recorder.uninstall()
    assert not threads.installed()


def _worker_code():
    return define(
        """
def work(x):
    with __elixirscope__.call({work}):
        return x + 1

def spawn(pool):
    with __elixirscope__.call({spawn}):
        t = threading.Thread(target=work, args=(1,), name="T-worker")
        t.start()
        t.join()
        return pool.submit(work, 2).result()
""",
        names={"threading": threading}, work="function", spawn="function",
    )


def test_a_thread_and_an_executor_task_started_in_a_call_are_linked_to_it(session):
    ns = _worker_code()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pool") as pool:
        assert ns["spawn"](pool) == 3
    session.stop()
    events = session.shipped
    spawn = next(e for e in events if type(e) is FunctionEntry and e.function.endswith(".spawn"))
    links = [e for e in events if type(e) is ThreadStart and e.parent_id == spawn.id]
    assert [(link.kind, link.name) for link in links] == [("thread", "T-worker"), ("task", "pool_0")]
    for link in links:
        assert link.correlation_id == spawn.correlation_id
        assert link.spawner_thread == spawn.thread
        assert link.chain and link.chain != spawn.correlation_id
        # the thread's (task's) work runs under the new chain, on the new thread
        work = [e for e in events if type(e) is FunctionEntry and e.correlation_id == link.chain]
        assert [w.function.rsplit(".", 1)[1] for w in work] == ["work"]
        assert work[0].thread == link.thread != spawn.thread
    # the pool's worker thread itself is named but not linked (its tasks are)
    pool_thread = [e for e in events if type(e) is ThreadStart and e.kind == "thread"
                   and e.name == "pool_0"]
    assert pool_thread and pool_thread[0].chain is None and pool_thread[0].parent_id == 0


def test_threads_running_and_started_outside_calls_are_named_not_linked(session):
    t = threading.Thread(target=time.sleep, args=(0,), name="plain-thread")
    t.start()
    t.join()
    session.stop()
    named = {e.name: e for e in session.shipped if type(e) is ThreadStart}
    assert named["MainThread"].thread == threading.main_thread().ident
    assert named["plain-thread"].chain is None and named["plain-thread"].parent_id == 0
    assert not any(name.startswith("elixirscope") for name in named)


def test_the_program_sees_no_difference(session):
    results: list = []

    def target(a, *, b):
        results.append((a, b, threading.current_thread().name))
        raise_in = ValueError("from the thread")
        return raise_in

    ns = define(
        """
def spawn():
    with __elixirscope__.call({spawn}):
        t = threading.Thread(target=target, args=(1,), kwargs={{"b": 2}}, name="same")
        t.start()
        t.join()
        with ThreadPoolExecutor(1) as pool:
            fut = pool.submit(divmod, 7, 0)
            return fut.exception()
""",
        names={"threading": threading, "target": target, "ThreadPoolExecutor": ThreadPoolExecutor},
        spawn="function",
    )
    exc = ns["spawn"]()
    assert results == [(1, 2, "same")]
    assert type(exc) is ZeroDivisionError


def test_uninstalled_threads_record_nothing(rec):
    threads.uninstall()
    t = threading.Thread(target=time.sleep, args=(0,))
    t.start()
    t.join()
    assert not [e for e in as_structs(rec.ring.drain()) if type(e) is ThreadStart]


def test_work_given_its_context_joins_the_callers_chain_instead(session):
    from elixirscope.capture.context import run_in_context, wrap

    ns = define(
        """
def work(x):
    with __elixirscope__.call({work}):
        return x

def spawn(pool):
    with __elixirscope__.call({spawn}):
        t = threading.Thread(target=wrap(work), args=(1,))
        t.start()
        t.join()
        return pool.submit(run_in_context(work, 2)).result()
""",
        names={"threading": threading, "wrap": wrap, "run_in_context": run_in_context},
        work="function", spawn="function",
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert ns["spawn"](pool) == 2
    session.stop()
    events = session.shipped
    spawn = next(e for e in events if type(e) is FunctionEntry and e.function.endswith(".spawn"))
    assert not [e for e in events if type(e) is ThreadStart and e.chain]
    works = [e for e in events if type(e) is FunctionEntry and e.function.endswith(".work")]
    assert [(w.correlation_id, w.parent_id) for w in works] == [(spawn.correlation_id, spawn.id)] * 2
