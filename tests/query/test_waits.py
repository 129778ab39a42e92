"""Where coroutines waited (``query.waits``, summary's Waits table), read from real
recordings: a lock's line first, an awaited coroutine's wait left to its own awaits, an
await ended by an exception or a cancel; and the stretches a coroutine ran."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import msgspec
import pytest
from cli_subprocess import elixirscope

from elixirscope.contracts.trace import (
    REQUEST_FUNCTION,
    FunctionEntry,
    FunctionExit,
    GeneratorResume,
    GeneratorYield,
)
from elixirscope.query.waits import Waits

LOCKED = textwrap.dedent(
    """
    import asyncio


    class Inventory:
        def __init__(self):
            self.lock = asyncio.Lock()
            self.stock = {"apple": 5}

        async def reserve(self, item):
            async with self.lock:
                await asyncio.sleep(0.1)  # slow work under the lock
                self.stock[item] -= 1
                return self.stock[item]


    async def fetch_price(item):
        await asyncio.sleep(0.02)
        return 3


    async def order(inv, item):
        price = await fetch_price(item)
        left = await inv.reserve(item)
        return price, left


    async def impatient():
        try:
            await asyncio.wait_for(asyncio.sleep(5), 0.05)
        except asyncio.TimeoutError:
            pass
        await asyncio.sleep(0.01)


    async def forever():
        await asyncio.sleep(10)


    async def main():
        inv = Inventory()
        await asyncio.gather(*(order(inv, "apple") for _ in range(4)), impatient())
        task = asyncio.create_task(forever())
        await asyncio.sleep(0.05)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


    asyncio.run(main())
    """
)


def _line(text: str) -> int:
    (n,) = [i for i, line in enumerate(LOCKED.splitlines(), 1) if text in line]
    return n


@pytest.mark.parametrize("level", ["boundaries", "args"])
def test_the_lock_is_where_the_time_was_waited(tmp_path: Path, level: str) -> None:
    (tmp_path / "shop.py").write_text(LOCKED)
    elixirscope("run", "--data-dir", "data", "--level", level, "shop.py", cwd=tmp_path)
    report = json.loads(elixirscope("summary", "--data-dir", "data", "--json", cwd=tmp_path))
    waits = {(w["function"].rpartition(".")[2], int(w["at"].rpartition(":")[2])): w
             for w in report["waits"]}
    lock = waits[("reserve", _line("async with self.lock"))]
    under = waits[("reserve", _line("await asyncio.sleep(0.1)"))]
    # four orders queue on the lock: 0 + 0.1 + 0.2 + 0.3 s waited to enter it, and each
    # exit (an await too) costs nothing; the work under it 4 x 0.1 s
    assert lock["count"] == 8 and 0.55e9 < lock["total_ns"] < 6e9  # generous: a busy machine
    assert 0.28e9 < lock["max_ns"] < 4e9
    assert under["count"] == 4 and under["total_ns"] >= 0.4e9
    assert report["waits"][0] is not None and (
        report["waits"][0]["at"], report["waits"][1]["at"]) == (lock["at"], under["at"])
    # an await of a recorded coroutine is that coroutine's time, told at its own awaits
    assert not any(fn == "order" for fn, _ in waits)
    assert waits[("fetch_price", _line("await asyncio.sleep(0.02)"))]["count"] == 4
    # a timeout handled inside the call: no resume was recorded, its wait ends at the
    # call's next event (its next await)
    timed_out = waits[("impatient", _line("await asyncio.wait_for"))]
    assert timed_out["count"] == 1 and 0.04e9 < timed_out["max_ns"] < 5e9
    assert waits[("impatient", _line("await asyncio.sleep(0.01)"))]["count"] == 1
    # a task cancelled at its await: waited until it ended
    cancelled = waits[("forever", _line("await asyncio.sleep(10)"))]
    assert cancelled["count"] == 1 and 0.04e9 < cancelled["max_ns"] < 5e9
    if level == "args":
        assert lock["awaited"] is not None
    # ESQL: a resume's wait and the line it resumed from, as the table counts them
    q = (f"count(*), sum(waited), max(waited) from resumes "
         f"where location = 'shop.py:{_line('async with self.lock')}' and step = 'await'")
    rows = json.loads(elixirscope("query", "--data-dir", "data", "--json", q, cwd=tmp_path))
    assert [list(r.values()) for r in rows["rows"]] == [[8, lock["total_ns"], lock["max_ns"]]]
    text = elixirscope("summary", "--data-dir", "data", cwd=tmp_path)
    table = text.split("Waits (await lines by the time their awaits took, most first)", 1)[1]
    first = table.splitlines()[2]
    assert first.split()[:3] == [f"shop.py:{_line('async with self.lock')}", "Inventory.reserve",
                                 "8"]


def _entry(id_: int, parent: int, ts: int, task: str | None = "T") -> FunctionEntry:
    return FunctionEntry(id=id_, ts=ts, thread=1, correlation_id=None, parent_id=parent,
                         function="f", file="f.py", line=1, task=task)


def _yield(id_: int, call: int, ts: int, line: int, awaiting: bool = True) -> GeneratorYield:
    return GeneratorYield(id=id_, ts=ts, thread=1, correlation_id=None, parent_id=0,
                          call_id=call, function="f", line=line, awaiting=awaiting)


def _resume(id_: int, call: int, ts: int) -> GeneratorResume:
    return GeneratorResume(id=id_, ts=ts, thread=1, correlation_id=None, parent_id=0,
                           call_id=call, function="f")


def _exit(id_: int, call: int, ts: int, duration: int) -> FunctionExit:
    return FunctionExit(id=id_, ts=ts, thread=1, correlation_id=None, parent_id=0,
                        call_id=call, function="f", duration_ns=duration)


def test_stretches_are_the_runs_between_suspensions() -> None:
    w = Waits(min_stretch_ns=50)
    w.entered("p", _entry(1, 0, 0))
    w.suspended("p", _yield(2, 1, 100, line=3))  # ran 100 from its start
    w.resumed("p", _resume(3, 1, 130))  # waited 30 at line 3
    w.suspended("p", _yield(4, 1, 160, line=5))  # ran 30: under the floor
    w.resumed("p", _resume(5, 1, 170))
    w.ended("p", _exit(6, 1, 400, 400))  # ran 230 from line 5 to its end
    assert [(s.from_line, s.to_line, s.duration_ns, s.start, s.end) for s in w.stretches] == [
        (0, 3, 100, (1, 0), (2, 100)), (5, 0, 230, (5, 170), (6, 400))]
    assert [(s.line, s.count, s.total_ns, s.max_ns) for s in w.by_time()] == [
        (3, 1, 30, 30), (5, 1, 10, 10)]


def test_a_request_s_own_call_and_a_generator_are_not_cut() -> None:
    w = Waits(min_stretch_ns=1)
    request = msgspec.structs.replace(_entry(1, 0, 0), function=REQUEST_FUNCTION)
    w.entered("p", request)  # the integration's coroutine: its awaits are not recorded
    w.ended("p", _exit(2, 1, 500, 500))
    w.entered("p", _entry(3, 0, 600, task=None))  # a generator: its yields wait for no one
    w.suspended("p", _yield(4, 3, 700, line=2, awaiting=False))
    w.resumed("p", _resume(5, 3, 900))
    w.ended("p", _exit(6, 3, 950, 350))
    assert w.stretches == [] and w.sites == {}


def test_a_coroutine_that_never_awaited_ran_whole() -> None:
    """An ``async def`` handler calling a blocking function, no await in it: one stretch."""
    w = Waits(min_stretch_ns=100)
    w.entered("p", _entry(1, 0, 0))
    w.ended("p", _exit(2, 1, 300, 300))
    assert [(s.from_line, s.to_line, s.duration_ns) for s in w.stretches] == [(0, 0, 300)]


def test_an_async_generator_pulled_by_a_wait_takes_its_time() -> None:
    """``async for x in pages()``: each ``__anext__`` is an await of the consumer that
    resumes the generator (in the consumer's task): the wait is the generator's, told at
    its own awaits; a task the consumer started, resumed meanwhile, takes nothing."""
    w = Waits()
    w.entered("p", _entry(1, 0, 0))  # the consumer, in task T
    w.suspended("p", _yield(2, 1, 10, line=9))  # the first __anext__
    w.entered("p", _entry(3, 1, 11))  # the generator begins: T too
    w.suspended("p", _yield(4, 3, 12, line=3, awaiting=False))  # it yields an item
    w.resumed("p", _resume(5, 1, 13))
    w.suspended("p", _yield(6, 1, 20, line=9))  # the second __anext__
    w.resumed("p", _resume(7, 3, 21))  # resumes the generator: no entry this time
    w.suspended("p", _yield(8, 3, 60, line=4))  # which awaits I/O for 40
    w.resumed("p", _resume(9, 3, 100))
    w.suspended("p", _yield(10, 3, 101, line=3, awaiting=False))
    w.resumed("p", _resume(11, 1, 102))
    w.entered("p", msgspec.structs.replace(_entry(12, 1, 110), task="background"))
    w.suspended("p", _yield(13, 12, 111, line=20))
    w.suspended("p", _yield(14, 1, 120, line=10))  # the consumer waits on something else
    w.resumed("p", _resume(15, 12, 130))  # while the task it started runs: not its wait
    w.resumed("p", _resume(16, 1, 150))
    assert {(site.function, site.line): site.total_ns for site in w.sites.values()} == {
        ("f", 4): 40, ("f", 20): 19, ("f", 10): 30}


def test_a_yield_is_no_wait_but_ends_a_stretch() -> None:
    w = Waits()
    w.entered("p", _entry(1, 0, 0))  # an async generator
    w.suspended("p", _yield(2, 1, 10, line=4, awaiting=False))
    w.resumed("p", _resume(3, 1, 1000))
    w.ended("p", _exit(4, 1, 1010, 1010))
    assert w.sites == {}
    assert [(s.from_line, s.to_line) for s in w.stretches] == [(0, 4), (4, 0)]


def test_an_await_that_raised_ends_at_the_calls_next_event() -> None:
    """No resume is recorded for an await that raised: a call the coroutine then makes on
    its own thread says it runs again, so the wait ended there (a callee begun on another
    thread, the function handed to ``to_thread``, says nothing of it)."""
    w = Waits()
    w.entered("p", _entry(1, 0, 0))
    w.suspended("p", _yield(2, 1, 10, line=7))
    w.entered("p", msgspec.structs.replace(_entry(3, 1, 20, task=None), thread=2))
    w.ended("p", _exit(4, 3, 60, 40))
    w.entered("p", _entry(5, 1, 80, task=None))  # on its thread: it runs again
    w.ended("p", _exit(6, 5, 90, 10))
    w.ended("p", _exit(7, 1, 100, 100))
    assert [(s.line, s.count, s.total_ns) for s in w.by_time()] == [(7, 1, 70)]


TIMED_OUT = textwrap.dedent(
    """
    import asyncio


    async def fetch_quote():
        await asyncio.sleep(5)


    async def quote():
        try:
            await asyncio.wait_for(fetch_quote(), 0.1)
        except asyncio.TimeoutError:
            pass
        await asyncio.sleep(0.01)
        return 3


    async def eta():
        try:
            return await asyncio.wait_for(fetch_quote(), 0.05)
        except asyncio.TimeoutError:
            return None  # handled, and nothing awaited after it


    async def main():
        await quote()
        await eta()


    asyncio.run(main())
    """
)


def test_calltree_says_an_await_raised_into_its_call(tmp_path: Path) -> None:
    """A timeout handled in the call: the except clause records the await's resume with
    the exception's type, so the tree says it waited, then raised, and the call went on."""
    (tmp_path / "quote.py").write_text(TIMED_OUT)
    elixirscope("run", "--data-dir", "data", "quote.py", cwd=tmp_path)
    found = json.loads(elixirscope("events", "--data-dir", "data", "--json", cwd=tmp_path))
    chain = next(e["correlation_id"] for e in found["events"] if e.get("correlation_id"))
    tree = elixirscope("calltree", "--data-dir", "data", chain, cwd=tmp_path).splitlines()
    lines = TIMED_OUT.splitlines()
    quote, eta = (f"quote.py:{lines.index(text) + 1}" for text in (
        "        await asyncio.wait_for(fetch_quote(), 0.1)",
        "        return await asyncio.wait_for(fetch_quote(), 0.05)"))
    for at, waited in ((quote, "[waited 10"), (eta, "[waited 5")):
        (i,) = [i for i, t in enumerate(tree) if at in t and "await" in t]
        assert tree[i].strip() == f"· await  {at}", tree[i]
        resume = next(t for t in tree[i + 1:] if "· resume" in t)
        said = "· resume !! TimeoutError (raised into it; handled in the call)  " + waited
        assert resume.strip().startswith(said), resume
    assert any(t.strip().startswith("· resume  [waited") for t in tree)  # the sleep after


FAILED_ENTER = textwrap.dedent(
    """\
    import asyncio


    class Pool:
        async def __aenter__(self):
            raise OSError("no connection")

        async def __aexit__(self, *exc):
            return False


    async def query():
        async with Pool():
            return 1


    async def main():
        try:
            await query()
        except OSError:
            return None


    asyncio.run(main())
    """
)


def test_calltree_says_whether_an_exception_raised_into_a_call_ended_it(tmp_path: Path) -> None:
    """An ``async with`` whose ``__aenter__`` raised: its implicit await is resumed by the
    exception, which ended the call (``query``); its caller's await, resumed by the same
    exception, handled it (``main``)."""
    (tmp_path / "pool.py").write_text(FAILED_ENTER)
    elixirscope("run", "--data-dir", "data", "pool.py", cwd=tmp_path)
    found = json.loads(elixirscope("events", "--data-dir", "data", "--json", cwd=tmp_path))
    chain = next(e["correlation_id"] for e in found["events"] if e.get("correlation_id"))
    tree = [t.strip() for t in elixirscope("calltree", "--data-dir", "data", chain,
                                           cwd=tmp_path).splitlines()]
    resumes = [t.split("  [")[0] for t in tree if t.startswith("· resume")]
    assert resumes == [
        "· resume !! OSError (raised into it; the call ended by it)",
        "· resume !! OSError (raised into it; handled in the call)"], tree


def test_a_stretch_counts_the_other_tasks_it_held_up() -> None:
    w = Waits(min_stretch_ns=50)
    w.entered("p", msgspec.structs.replace(_entry(1, 0, 0), task="A"))
    w.suspended("p", _yield(2, 1, 5, line=3))  # A waits
    w.entered("p", msgspec.structs.replace(_entry(3, 0, 10), task="B"))
    w.suspended("p", _yield(4, 3, 11, line=8))  # B awaits a coroutine of its own ...
    w.entered("p", msgspec.structs.replace(_entry(5, 3, 12), task="B"))
    w.ended("p", _exit(6, 5, 200, 188))  # ... which ran 188 without an await: A held up
    w.resumed("p", _resume(7, 3, 201))
    w.ended("p", _exit(8, 3, 210, 200))
    w.resumed("p", _resume(9, 1, 220))
    w.ended("p", _exit(10, 1, 400, 400))  # A alone by then: held no one up
    assert [(s.call_id, s.other_tasks) for s in w.stretches] == [(5, 1), (1, 0)]
    # a task gathered by another: the gathering one awaits it, it is not held up by it
    w = Waits(min_stretch_ns=50)
    w.entered("p", msgspec.structs.replace(_entry(1, 0, 0), task="main"))
    w.suspended("p", _yield(2, 1, 5, line=3))  # await gather(child())
    w.entered("p", msgspec.structs.replace(_entry(3, 1, 10), task="child"))
    w.ended("p", _exit(4, 3, 200, 190))  # ran 190 without an await
    assert [(s.call_id, s.other_tasks) for s in w.stretches] == [(3, 0)]


def test_a_gather_of_a_coroutine_and_a_sleep_counts_what_the_coroutine_left() -> None:
    """``await gather(recorded(), asyncio.sleep(0.8))``: the recorded coroutine's 0.3 s are
    told at its own awaits; the 0.7 s after it ended are the gather's own wait. An await
    of a recorded coroutine alone leaves nothing worth counting."""
    ms = 1_000_000
    w = Waits()
    w.entered("p", _entry(1, 0, 0))
    w.suspended("p", _yield(2, 1, 0, line=5))  # await gather(...)
    w.entered("p", msgspec.structs.replace(_entry(3, 1, 1 * ms), task="Task-2"))
    w.suspended("p", _yield(4, 3, 2 * ms, line=9))
    w.resumed("p", _resume(5, 3, 300 * ms))
    w.ended("p", _exit(6, 3, 300 * ms, 299 * ms))
    w.resumed("p", _resume(7, 1, 1000 * ms))  # the sleep ended
    w.suspended("p", _yield(8, 1, 1001 * ms, line=6))  # await recorded()
    w.entered("p", _entry(9, 1, 1001 * ms + 10))
    w.ended("p", _exit(10, 9, 1100 * ms, 99 * ms))
    w.resumed("p", _resume(11, 1, 1100 * ms + 20))
    w.ended("p", _exit(12, 1, 1101 * ms, 1101 * ms))
    assert {site.line: site.total_ns for site in w.sites.values()} == {5: 700 * ms, 9: 298 * ms}


COUNTER = textwrap.dedent(
    """
    from elixirscope.runtime import GenServer, Reply


    class Counter(GenServer):
        def init(self, args):
            return 0

        def handle_call(self, request, from_, state):
            return Reply(state + 1, state + 1)
    """
)

EXECUTOR = textwrap.dedent(
    """
    import asyncio, contextvars
    from concurrent.futures import ThreadPoolExecutor

    from counter import Counter
    from elixirscope.runtime import Runtime


    async def bump(rt, pool, counter):  # the actor's callback runs on the pool's thread
        ctx = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(pool, ctx.run, rt.call, counter, 1)


    pool = ThreadPoolExecutor(1)
    rt = pool.submit(Runtime, "simpleSystemBase").result()
    counter = pool.submit(rt.start, Counter).result()
    print(asyncio.run(bump(rt, pool, counter)))
    pool.submit(rt.shutdown).result()
    """
)


def test_an_await_of_work_on_another_thread_that_returned_did_not_raise(tmp_path: Path) -> None:
    """The function an executor ran in the awaiting call's context is a call in its tree, on
    the pool's thread, during the await: not the awaiting call going on after its await
    raised."""
    (tmp_path / "pool.py").write_text(EXECUTOR)
    (tmp_path / "counter.py").write_text(COUNTER)
    elixirscope("run", "--data-dir", "data", "pool.py", cwd=tmp_path)
    found = json.loads(elixirscope("events", "--data-dir", "data", "--json", cwd=tmp_path))
    chain = next(e["correlation_id"] for e in found["events"] if e.get("function") == "__main__.bump")
    tree = elixirscope("calltree", "--data-dir", "data", chain, cwd=tmp_path)
    assert "Counter.handle_call(" in tree and "· resume" in tree, tree
    assert "then raised" not in tree, tree
