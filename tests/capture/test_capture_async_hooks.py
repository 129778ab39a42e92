"""The implicit awaits of ``async for`` / ``async with``: ``async_iter`` / ``async_with``.

Coroutines are written in the rewriter's exact shape; every test runs on both the
pure-Python hooks and the C accelerator. What is checked: one suspension and one
resume per implicit await, under the coroutine's own call, with the program's
values, exceptions and tracebacks passed through unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import traceback

import pytest
from hooks_support import as_structs, define

from elixirscope.capture import async_proxies, hooks


async def numbers(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i


class Manager:
    def __init__(self, suppress=False):
        self.suppress, self.seen = suppress, []

    async def __aenter__(self):
        await asyncio.sleep(0)
        return "entered"

    async def __aexit__(self, et, ev, tb):
        await asyncio.sleep(0)
        self.seen.append((et, ev, tb))
        return self.suppress


class Failing:
    """``__anext__`` fails at the second item."""

    def __init__(self):
        self.n = 0

    def __aiter__(self):
        return self

    async def __anext__(self):
        await asyncio.sleep(0)
        self.n += 1
        if self.n == 2:
            raise ValueError("second item")
        return self.n


def _steps(events, call_id):
    """(kind, value) of the yields/resumes, asserting they all belong to ``call_id``."""
    steps = [e for e in events if type(e).__name__ in ("GeneratorYield", "GeneratorResume")]
    assert {e.call_id for e in steps} == {call_id}
    return [(type(e).__name__[9:], e.value) for e in steps]


def _clean(stats):
    assert stats["stack_mismatches"] == 0 and stats["hook_errors"] == 0


def test_async_for_and_async_with_record_each_implicit_await(rec):
    ns = define(
        """
async def co():
    with __elixirscope__.call_args({co}, (), ()):
        seen = []
        async for x in __elixirscope__.async_iter({co}, 5, numbers(3)):
            seen.append(x)
        async with __elixirscope__.async_with({co}, 7, manager) as got:
            seen.append(got)
        return __elixirscope__.ret({co}, seen)
""",
        level="args", co="coroutine", names={"numbers": numbers, "manager": Manager()},
    )
    assert asyncio.run(ns["co"]()) == [0, 1, 2, "entered"]
    assert ns["manager"].seen == [(None, None, None)]
    events = as_structs(rec.ring.drain())
    assert [type(e).__name__ for e in events] == (
        ["FunctionEntry"] + ["GeneratorYield", "GeneratorResume"] * 6 + ["FunctionExit"])
    entry, exit_ = events[0], events[-1]
    assert exit_.call_id == entry.id and exit_.result == "[0, 1, 2, 'entered']"
    steps = _steps(events, entry.id)
    # one suspension + resume per __anext__ (the 4th ends the loop), then __aenter__, __aexit__
    assert [value for kind, value in steps if kind == "Resume"] == [
        "0", "1", "2", "StopAsyncIteration()", "'entered'", "False"]
    yields = [value for kind, value in steps if kind == "Yield"]
    assert yields[:4] == ["<async_generator numbers>"] * 4  # what it waits on, not its asend
    assert yields[4:] == ["<coroutine Manager.__aenter__>", "<coroutine Manager.__aexit__>"]
    # each suspension at its statement's line, the constant the rewriter passes
    assert [(e.line, e.awaiting) for e in events if type(e).__name__ == "GeneratorYield"] == (
        [(5, True)] * 4 + [(7, True)] * 2)
    _clean(hooks.stats())


def test_boundaries_level_records_the_steps_without_values(rec):
    ns = define(
        """
async def co():
    with __elixirscope__.call({co}):
        async with __elixirscope__.async_with({co}, 0, Manager()):
            return [x async for x in __elixirscope__.async_iter({co}, 0, numbers(2))]
""",
        co="coroutine", names={"numbers": numbers, "Manager": Manager},
    )
    assert asyncio.run(ns["co"]()) == [0, 1]
    events = as_structs(rec.ring.drain())
    steps = _steps(events, events[0].id)
    assert steps == [("Yield", None), ("Resume", None)] * 5
    _clean(hooks.stats())


def test_async_generator_body_interleaves_its_own_yields(rec):
    ns = define(
        """
async def agen():
    with __elixirscope__.gen_call_args({agen}, (), ()):
        async for x in __elixirscope__.async_iter({agen}, 0, numbers(2)):
            __elixirscope__.resumed({agen}, (yield __elixirscope__.yielding({agen}, 0, x * 10)))

async def consume():
    with __elixirscope__.call({consume}):
        return [v async for v in agen()]
""",
        level="args", agen="async_generator", consume="coroutine",
        names={"numbers": numbers},
    )
    assert asyncio.run(ns["consume"]()) == [0, 10]
    events = as_structs(rec.ring.drain())
    agen_entry = next(e for e in events if type(e).__name__ == "FunctionEntry"
                      and e.function.endswith(".agen"))
    steps = _steps([e for e in events if getattr(e, "call_id", None) == agen_entry.id
                    and type(e).__name__ != "FunctionExit"], agen_entry.id)
    assert [(k, v) for k, v in steps if not (k == "Yield" and v.startswith("<"))] == [
        ("Resume", "0"), ("Yield", "0"), ("Resume", "None"),
        ("Resume", "1"), ("Yield", "10"), ("Resume", "None"),
        ("Resume", "StopAsyncIteration()")]
    _clean(hooks.stats())
    assert hooks.stats()["suspended_generators"] == 0


def test_errors_pass_through_with_the_programs_traceback(rec):
    ns = define(
        """
async def co(it):
    with __elixirscope__.call_args({co}, ('it',), (it,)):
        total = 0
        async for x in __elixirscope__.async_iter({co}, 0, it):
            total += x
        return __elixirscope__.ret({co}, total)
""",
        level="args", co="coroutine",
    )
    with pytest.raises(ValueError, match="second item") as info:
        asyncio.run(ns["co"](Failing()))
    names = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert names[-2:] == ["co", "__anext__"]  # no frame of the proxies
    assert not any(f.filename == async_proxies.__file__
                   for f in traceback.extract_tb(info.value.__traceback__))
    events = as_structs(rec.ring.drain())
    steps = _steps(events, events[0].id)
    assert [v for k, v in steps if k == "Resume"] == ["1", "ValueError('second item')"]
    # raised into the call, as an explicit await's exception is (not a value it got)
    resumes = [e for e in events if type(e).__name__ == "GeneratorResume"]
    assert [r.raised for r in resumes] == [None, "ValueError"]
    assert type(events[-1]).__name__ == "FunctionError" and events[-1].exc_type == "ValueError"
    _clean(hooks.stats())


def test_aexit_gets_the_exception_and_its_verdict_is_kept(rec):
    ns = define(
        """
async def co(manager, exc):
    with __elixirscope__.call({co}):
        async with __elixirscope__.async_with({co}, 0, manager):
            raise exc
        return __elixirscope__.ret({co}, "suppressed")
""",
        co="coroutine",
    )
    exc = KeyError("k")
    suppressing = Manager(suppress=1)  # truthy, not True: passed back as is
    assert asyncio.run(ns["co"](suppressing, exc)) == "suppressed"
    ((et, ev, tb),) = suppressing.seen
    assert et is KeyError and ev is exc and tb is exc.__traceback__
    assert traceback.extract_tb(tb)[-1].name == "co"
    passing = Manager(suppress=0)
    with pytest.raises(KeyError) as info:
        asyncio.run(ns["co"](passing, KeyError("again")))
    assert passing.seen[0][1] is info.value
    _clean(hooks.stats())


def test_cancellation_inside_an_implicit_await(rec):
    ns = define(
        """
async def co(started):
    with __elixirscope__.call({co}):
        async with __elixirscope__.async_with({co}, 0, Manager()):
            async for x in __elixirscope__.async_iter({co}, 0, forever()):
                started.set()
""",
        co="coroutine", names={"Manager": Manager},
    )

    async def forever():
        while True:
            await asyncio.sleep(0)
            yield 1

    ns["forever"] = forever

    async def main():
        started = asyncio.Event()
        task = asyncio.get_running_loop().create_task(ns["co"](started))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    events = as_structs(rec.ring.drain())
    assert type(events[-1]).__name__ == "FunctionError"
    assert events[-1].exc_type == "asyncio.exceptions.CancelledError"
    steps = _steps(events, events[0].id)
    kinds = [k for k, _ in steps]
    assert kinds == ["Yield", "Resume"] * (len(kinds) // 2)  # every suspension resumed
    raised = [e.raised for e in events if type(e).__name__ == "GeneratorResume" and e.raised]
    # raised into it at the `async for`'s await; the `async with`'s exit then ran as usual
    assert raised == ["asyncio.exceptions.CancelledError"], raised
    _clean(hooks.stats())


def test_objects_without_the_protocol_come_back_unchanged(rec):
    h = hooks.get_hooks()
    plain = [1, 2]
    assert h.async_iter(1, 0, plain) is plain
    assert h.async_with(1, 0, plain) is plain
    assert h.async_iter(1, 0, numbers(0)) is not None


def test_inert_hooks_return_the_argument(rec):
    hooks.uninstall()
    gen, manager = numbers(1), Manager()
    assert hooks.INERT.async_iter(1, 0, gen) is gen
    assert hooks.INERT.async_with(1, 0, manager) is manager
    assert rec.ring.drain() == []


def test_hook_failures_are_counted_not_raised(rec):
    class Broken:
        errors: list = []

        def awaiting(self, fid, *args):
            raise RuntimeError("awaiting broke")

        resumed = awaiting

        def note_error(self, exc):
            self.errors.append(str(exc))

    async def run():
        return [x async for x in async_proxies.async_iter(Broken(), 1, 0, numbers(2))]

    assert asyncio.run(run()) == [0, 1]
    assert Broken.errors == ["awaiting broke"] * 6
    h = hooks.get_hooks()
    before = h.stats()["hook_errors"]
    h.note_error(RuntimeError("counted"))
    assert h.stats()["hook_errors"] == before + 1
    assert "counted" in h.stats()["last_error"]


async def fails():
    await asyncio.sleep(0)
    raise KeyError("gone")


def test_an_exception_thrown_in_at_an_await_and_caught_is_that_awaits_resume(rec):
    """The await's ``resumed`` never runs when the awaitable raised: the ``except``
    clause's ``caught`` records the resume, with the exception's type; a call made in
    the clause is the coroutine's child. An exception raised with no await pending, or
    after the await was resumed, records nothing."""
    ns = define(
        """
async def co():
    with __elixirscope__.call_args({co}, (), ()):
        try:
            __elixirscope__.resumed({co}, await __elixirscope__.awaiting({co}, 5, fails()))
        except KeyError:
            __elixirscope__.caught({co})
            helper()
        try:
            __elixirscope__.resumed({co}, await __elixirscope__.awaiting({co}, 10, asyncio.sleep(0)))
            raise ValueError("no await pending")
        except ValueError:
            __elixirscope__.caught({co})
        return __elixirscope__.ret({co}, "done")


def helper():
    with __elixirscope__.call_args({helper}, (), ()):
        return __elixirscope__.ret({helper}, 1)
""",
        level="args", co="coroutine", helper="function",
        names={"fails": fails, "asyncio": asyncio},
    )
    assert asyncio.run(ns["co"]()) == "done"
    events = as_structs(rec.ring.drain())
    entry = events[0]
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["FunctionEntry", "GeneratorYield", "GeneratorResume", "FunctionEntry",
                     "FunctionExit", "GeneratorYield", "GeneratorResume", "FunctionExit"]
    thrown, helper_call = events[2], events[3]
    assert thrown.call_id == entry.id and thrown.raised == "KeyError"
    assert thrown.value == "KeyError('gone')"
    assert helper_call.parent_id == entry.id  # under the coroutine, back on its stack
    assert events[6].raised is None and events[6].value == "None"  # a plain resume
    _clean(hooks.stats())


def test_an_exception_thrown_into_a_generator_and_caught_is_its_resume(rec):
    ns = define(
        """
def gen():
    with __elixirscope__.gen_call_args({gen}, (), ()):
        try:
            __elixirscope__.resumed({gen}, (yield __elixirscope__.yielding({gen}, 5, 1)))
        except ValueError:
            __elixirscope__.caught({gen})
            __elixirscope__.resumed({gen}, (yield __elixirscope__.yielding({gen}, 8, 2)))
""",
        level="args", gen="generator",
    )
    g = ns["gen"]()
    assert next(g) == 1 and g.throw(ValueError("stop")) == 2
    g.close()
    events = as_structs(rec.ring.drain())
    resumes = [e for e in events if type(e).__name__ == "GeneratorResume"]
    assert [(r.raised, r.value) for r in resumes][0] == ("ValueError", "ValueError('stop')")
    _clean(hooks.stats())


def test_an_except_after_a_with_suppressed_the_awaits_exception_is_no_resume_of_it(rec):
    """A ``with`` that suppressed the exception an await raised leaves no resume and its
    coroutine still flagged at the await: a later ``except`` clause, handling an exception
    raised since on another line, records nothing for that await."""
    ns = define(
        """
async def co():
    with __elixirscope__.call_args({co}, (), ()):
        with contextlib.suppress(KeyError):
            __elixirscope__.resumed({co}, await __elixirscope__.awaiting({co}, 5, fails()))
        try:
            raise ValueError("raised since")
        except ValueError:
            __elixirscope__.caught({co})
        __elixirscope__.resumed({co}, await __elixirscope__.awaiting({co}, 10, asyncio.sleep(0)))
        return __elixirscope__.ret({co}, "done")
""",
        level="args", co="coroutine",
        names={"fails": fails, "asyncio": asyncio, "contextlib": contextlib},
    )
    assert asyncio.run(ns["co"]()) == "done"
    events = as_structs(rec.ring.drain())
    assert [(type(e).__name__, getattr(e, "raised", None)) for e in events] == [
        ("FunctionEntry", None), ("GeneratorYield", None), ("GeneratorYield", None),
        ("GeneratorResume", None), ("FunctionExit", None)]
    _clean(hooks.stats())


def test_a_generator_resumed_by_a_suppressed_throw_is_back_on_its_stack_at_its_next_except(rec):
    """A generator whose ``with`` suppressed the exception thrown in at its ``yield`` runs
    on with no resume recorded; an ``except`` clause handling another exception puts it back
    on the stack with a plain resume (not that exception's), so a call made there is its."""
    ns = define(
        """
def gen():
    with __elixirscope__.gen_call_args({gen}, (), ()):
        with contextlib.suppress(KeyError):
            __elixirscope__.resumed({gen}, (yield __elixirscope__.yielding({gen}, 5, 1)))
        try:
            raise ValueError("raised since")
        except ValueError:
            __elixirscope__.caught({gen})
            helper()
        __elixirscope__.resumed({gen}, (yield __elixirscope__.yielding({gen}, 11, 2)))


def helper():
    with __elixirscope__.call_args({helper}, (), ()):
        return __elixirscope__.ret({helper}, 1)
""",
        level="args", gen="generator", helper="function", names={"contextlib": contextlib},
    )
    g = ns["gen"]()
    assert next(g) == 1 and g.throw(KeyError("suppressed")) == 2
    g.close()
    events = as_structs(rec.ring.drain())
    entry = events[0]
    resumes = [e for e in events if type(e).__name__ == "GeneratorResume"]
    assert [(r.raised, r.value) for r in resumes] == [(None, "None")]
    helper_call = next(e for e in events if type(e).__name__ == "FunctionEntry" and e.id != entry.id)
    assert helper_call.parent_id == entry.id
    _clean(hooks.stats())


def test_every_hook_the_rewriter_writes_is_on_every_hooks_object(rec):
    """Rewritten code runs on whichever ``__elixirscope__`` is installed, the inert one too
    once recording stopped: each must answer every name the rewriter generates."""
    import re

    from elixirscope.instrument import rewriter

    written = set(re.findall(r'_hook(?:_spanning)?\(\s*"(\w+)"', open(rewriter.__file__).read()))
    written |= {"call", "call_args", "gen_call", "gen_call_args"}
    assert {"caught", "resumed", "awaiting", "async_iter", "async_with"} <= written
    for hooks_object in (hooks.get_hooks(), hooks.INERT):
        missing = sorted(name for name in written if not callable(getattr(hooks_object, name, None)))
        assert missing == [], (type(hooks_object).__name__, missing)
    assert hooks.INERT.caught(1) is None
