"""Where calls come from and where errors were raised, on both hooks runtimes.

A call event carries its function's file and def line (registered constants), an
exception event the line it was raised at and its bounded traceback, a method's
receiver is recorded by its class, and a coroutine call in a task names the task.
"""

from __future__ import annotations

import asyncio

from hooks_support import as_structs, define

from elixirscope.capture import hooks
from elixirscope.contracts.trace import TRACEBACK_LIMIT, FunctionEntry, FunctionError


def test_calls_carry_the_functions_file_and_line(rec):
    fid = hooks.register("srcmod", "work", "boundaries", 1.0, "/src/srcmod.py", 42, "function")
    ns = define(
        """
def work():
    with __elixirscope__.call(FID):
        return 1
""".replace("FID", str(fid)),
    )
    ns["work"]()
    entry = as_structs(rec.ring.drain())[0]
    assert type(entry) is FunctionEntry
    assert (entry.file, entry.line, entry.task) == ("/src/srcmod.py", 42, None)


def test_an_error_records_the_line_it_was_raised_at_and_its_traceback(rec):
    ns = define(
        """
def deep(n):
    if n == 0:
        raise KeyError("gone")
    return deep(n - 1)

def outer():
    with __elixirscope__.call({outer}):
        return deep(30)
""",
        outer="function",
    )
    try:
        ns["outer"]()
    except KeyError:
        pass
    error = as_structs(rec.ring.drain())[-1]
    assert type(error) is FunctionError and error.exc_type == "KeyError"
    assert error.line == 4  # `raise KeyError` in the compiled source
    assert len(error.traceback) == TRACEBACK_LIMIT  # bounded: the innermost frames
    assert error.traceback[-1] == "<test>:4:deep"
    assert all(frame.startswith("<test>:") for frame in error.traceback)


def test_an_error_raised_in_the_call_itself_names_its_line(rec):
    ns = define(
        """
def f():
    with __elixirscope__.call({f}):
        x = 1
        raise ValueError(x)
""",
        f="function",
    )
    try:
        ns["f"]()
    except ValueError:
        pass
    error = as_structs(rec.ring.drain())[-1]
    assert (error.line, error.traceback) == (5, ["<test>:5:f"])


def test_a_methods_receiver_is_recorded_by_its_class(rec):
    class OrderDesk:
        def __init__(self) -> None:
            self.secret_field = "do not show me"

    ns = define(
        """
def handle(self, request):
    with __elixirscope__.call_args({handle}, ("self", "request"), (self, request)):
        return request

def make(cls):
    with __elixirscope__.call_args({make}, ("cls",), (cls,)):
        return cls()
""",
        level="args", handle="function", make="function",
    )
    ns["handle"](OrderDesk(), {"n": 1})
    ns["make"](OrderDesk)
    calls = [e for e in as_structs(rec.ring.drain()) if type(e) is FunctionEntry]
    assert calls[0].args == {"self": "<OrderDesk>", "request": "{'n': 1}"}
    assert calls[1].args == {"cls": "<OrderDesk>"}


def test_a_coroutine_call_in_a_task_names_the_task(rec):
    ns = define(
        """
async def job():
    with __elixirscope__.call({job}):
        return 1

def plain():
    with __elixirscope__.call({plain}):
        return 2
""",
        job="coroutine", plain="function",
    )

    async def main() -> None:
        await asyncio.create_task(ns["job"](), name="fetch-orders")
        ns["plain"]()

    asyncio.run(main())
    calls = [e for e in as_structs(rec.ring.drain()) if type(e) is FunctionEntry]
    assert [(c.function.rsplit(".", 1)[1], c.task) for c in calls] == [
        ("job", "fetch-orders"), ("plain", None)]


def test_events_recorded_before_these_fields_still_decode():
    old = [("call", 1, 10, 7, None, 0, "m.f", None),
           ("exception", 2, 20, 7, None, 0, 1, "m.f", 10, "ValueError", "bad")]
    entry, error = as_structs(old)
    assert (entry.file, entry.line, entry.task) == (None, 0, None)
    assert (error.line, error.traceback) == (0, None)
