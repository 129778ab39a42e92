"""A recorded request's receive and send run in the context the request arrived in
(``asgi._PyStepsIn``, and the same in C, ``_speedups.StepsIn``): every step of the
awaited server call sees that context, what it starts inherits it, its result and
errors come back unchanged, and the awaiting task's own context is left alone."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from elixirscope.capture import _select
from elixirscope.integrations import asgi

IMPLEMENTATIONS = [pytest.param(asgi._PyStepsIn, id="python")]
if _select.speedups() is not None:
    IMPLEMENTATIONS.append(pytest.param(_select.speedups().StepsIn, id="c"))

where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="nowhere")


def _arrived() -> contextvars.Context:
    ctx = contextvars.copy_context()
    ctx.run(where.set, "arrived")
    return ctx


@pytest.fixture(params=IMPLEMENTATIONS)
def steps_in(request):
    return request.param


def test_each_step_runs_in_the_context_and_the_result_comes_back(steps_in):
    seen: list[str] = []

    async def server_send(message: str) -> str:
        seen.append(where.get())
        await asyncio.sleep(0)  # suspends: the next step must be in the context again
        seen.append(where.get())
        return message.upper()

    async def main() -> tuple[str, str]:
        where.set("request")
        sent = await steps_in(server_send("done"), _arrived())
        return sent, where.get()

    assert asyncio.run(main()) == ("DONE", "request")
    assert seen == ["arrived", "arrived"]


def test_what_a_step_starts_inherits_the_context_not_the_requests(steps_in):
    async def server_send() -> asyncio.Task:
        return asyncio.get_running_loop().create_task(asyncio.sleep(0, result=where.get()))

    async def main() -> str:
        where.set("request")
        started = await steps_in(server_send(), _arrived())
        return await started

    assert asyncio.run(main()) == "arrived"


def test_errors_and_cancellation_pass_through_in_the_context(steps_in):
    caught: list[str] = []

    async def failing() -> None:
        await asyncio.sleep(0)
        raise KeyError("gone")

    async def waiting() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            caught.append(where.get())  # thrown in while it waits: in the context too
            raise

    async def main() -> None:
        with pytest.raises(KeyError, match="gone"):
            await steps_in(failing(), _arrived())
        task = asyncio.create_task(waiter())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async def waiter() -> None:
        await steps_in(waiting(), _arrived())

    asyncio.run(main())
    assert caught == ["arrived"]


def test_not_an_awaitable_is_refused(steps_in):
    with pytest.raises((TypeError, AttributeError)):  # C when made, Python when awaited
        steps_in(42, _arrived()).__await__().__next__()
