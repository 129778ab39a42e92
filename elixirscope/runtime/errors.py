"""Errors a caller of the runtime can meet, each saying what to do about it."""

from __future__ import annotations

from typing import Any

from elixirscope.runtime.reasons import ExitReason

__all__ = ["BadRequest", "CallError", "CallTimeout", "MessageRefused", "StartError"]


class CallTimeout(TimeoutError):
    """No reply within the timeout: the actor is busy, blocked, or gone."""

    def __init__(self, address: Any, request: Any, timeout: float) -> None:
        super().__init__(
            f"call to {address} timed out after {timeout} s (request {request!r}); "
            "the actor may be overloaded, blocked in a callback, or no longer running"
        )
        self.address, self.request, self.timeout = address, request, timeout

    def __reduce__(self) -> tuple[Any, ...]:  # a relayed failure crosses processes
        return (type(self), (self.address, self.request, self.timeout))


class CallError(RuntimeError):
    """The actor exited (or was not running) before it replied; ``reason`` says why."""

    def __init__(self, address: Any, request: Any, reason: ExitReason) -> None:
        why = "no such actor" if reason.kind == "noproc" else "the actor exited"
        super().__init__(f"call to {address} failed, {why}: {reason} (request {request!r})")
        self.address, self.request, self.reason = address, request, reason

    def __reduce__(self) -> tuple[Any, ...]:  # a relayed failure crosses processes
        return (type(self), (self.address, self.request, self.reason))


class MessageRefused(RuntimeError):
    """A message could not be delivered: something in it is not allowed between actors
    (see :mod:`elixirscope.runtime.pickle_allowlist`); the text names it and what allows it.
    Raised by a call whose request - or whose reply - was refused, instead of a timeout."""

    def __init__(self, why: str) -> None:
        super().__init__(why)


class StartError(RuntimeError):
    """An actor's init failed or did not answer; ``reason`` is its exit reason."""

    def __init__(self, what: str, reason: ExitReason | str) -> None:
        super().__init__(f"could not start {what}: {reason}")
        self.what, self.reason = what, reason


class BadRequest(ValueError):
    """A call an actor does not understand; it answered this and kept running."""
