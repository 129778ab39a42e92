"""A call's self time: the time it ran itself, read from its events in time order.

A synchronous call's self time is its duration less its recorded callees'. A
coroutine or a generator is different: at an ``await`` (or a ``yield``) it is
suspended, and while it waits its event loop runs other tasks — or its consumer
runs, for a generator. Counting that wait as the call's own would rank a
heartbeat that sleeps a minute first among "most self time". So:

- the time between a call's ``yield`` event and its ``resume`` (or its end,
  when it was closed at the yield) is *waited*, not its own;
- a callee begun while its caller was waiting (the coroutine it awaits, a task
  it started, which runs on the loop while it waits) is inside that wait, so it
  is not subtracted again; a callee begun while the caller ran is, whole when
  it is a coroutine (awaited: the caller waited as long, its own awaits not
  recorded — a web request's own call, a framework's coroutine), else for the
  time the callee itself ran (a generator's time suspended at its yields is its
  consumer's, the caller's own).

self = duration − waited − those callees' time, never below zero (a callee on
another thread may run while its caller runs too). A coroutine is a call
recorded with its asyncio task (``FunctionEntry.task``). A call whose
suspensions were not recorded (the rewriter records them at ``args`` and above
for a coroutine's ``await``) is read as a synchronous one, as before.

The run model of the cinema computes the same column with arrays
(``visualization.runparts``); the tests hold it to this reader.
"""

from __future__ import annotations

__all__ = ["SelfTime"]

Key = tuple[str, int]  # (producer, call id)


class _Open:
    __slots__ = ("caller", "waiting_since", "waited", "callees", "awaited")

    def __init__(self, caller: Key | None, awaited: bool) -> None:
        self.caller = caller  # when begun while its caller ran: its time is not the caller's
        self.awaited = awaited  # a coroutine: its caller waited for it whole
        self.waiting_since = -1  # ts of its yield while suspended, else -1
        self.waited = 0
        self.callees = 0  # running time of callees begun while it ran


class SelfTime:
    """Feed a call's events in time order; :meth:`ended` returns its self time."""

    __slots__ = ("_open",)

    def __init__(self) -> None:
        self._open: dict[Key, _Open] = {}

    def entered(self, producer: str, call: int, parent: int, coroutine: bool = False) -> None:
        up = self._open.get((producer, parent)) if parent else None
        running = up is not None and up.waiting_since < 0
        self._open[(producer, call)] = _Open((producer, parent) if running else None, coroutine)

    def suspended(self, producer: str, call: int, ts: int) -> None:
        c = self._open.get((producer, call))
        if c is not None and c.waiting_since < 0:
            c.waiting_since = ts

    def resumed(self, producer: str, call: int, ts: int) -> None:
        c = self._open.get((producer, call))
        if c is not None and c.waiting_since >= 0:
            c.waited += max(0, ts - c.waiting_since)
            c.waiting_since = -1

    def ended(self, producer: str, call: int, ts: int, duration: int) -> int:
        """The self time of the call that ended at ``ts`` after ``duration`` ns (its
        duration itself when its entry was not read)."""
        c = self._open.pop((producer, call), None)
        if c is None:
            return max(0, duration)
        if c.waiting_since >= 0:  # closed at a yield (a generator's close, a cancelled task)
            c.waited += max(0, ts - c.waiting_since)
        if c.caller is not None:
            up = self._open.get(c.caller)
            if up is not None:
                up.callees += duration if c.awaited else max(0, duration - c.waited)
        return max(0, duration - c.waited - c.callees)

    def still_open(self) -> list[Key]:
        """The calls entered and not ended, callees after their callers (in entry order)."""
        return list(self._open)
