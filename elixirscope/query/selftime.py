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

A call's recorded I/O — the queries, transaction steps and HTTP attempts made in it
(``io``: their durations, each read when it ended) — is time it waited on a database
or a service, not time it ran: it is left out too, unless the call was suspended when
it ended (an awaited driver's query: that time is in ``waited`` already).

self = duration − waited − those callees' time − its I/O, never below zero (a callee
on another thread may run while its caller runs too). A coroutine is a call
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
    __slots__ = ("caller", "waiting_since", "waited", "callees", "awaited", "io", "held")

    def __init__(self, caller: Key | None, awaited: bool) -> None:
        self.caller = caller  # when begun while its caller ran: its time is not the caller's
        self.awaited = awaited  # a coroutine: its caller waited for it whole
        self.waiting_since = -1  # ts of its yield while suspended, else -1
        self.waited = 0
        self.callees = 0  # running time of callees begun while it ran
        self.io = 0  # its queries', transaction steps' and HTTP attempts' time while it ran
        self.held: list[tuple[int, int]] = []  # (ended, ns) of those ended while suspended

    def settle(self, ts: int) -> None:
        """The suspension ended at ``ts``: I/O held as ended in it, but at ``ts`` itself,
        was run time."""
        self.io += sum(max(0, ns) for ended, ns in self.held if ended == ts)
        self.held.clear()


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

    def io(self, producer: str, call: int, ts: int, duration: int) -> None:
        """A query, transaction step or HTTP attempt of ``duration`` ns made in ``call``,
        which ended at ``ts``: not its own time, unless it ended inside a suspension (an
        awaited driver's: in the wait already). Ended at the very ns a suspension begins
        or ends, it counts as run time whatever the order the two events were read in."""
        c = self._open.get((producer, call)) if call else None
        if c is None:
            return
        if c.waiting_since < 0 or c.waiting_since == ts:
            c.io += max(0, duration)
        else:
            c.held.append((ts, duration))

    def resumed(self, producer: str, call: int, ts: int) -> None:
        c = self._open.get((producer, call))
        if c is not None and c.waiting_since >= 0:
            c.waited += max(0, ts - c.waiting_since)
            c.waiting_since = -1
            c.settle(ts)

    def ended(self, producer: str, call: int, ts: int, duration: int) -> int:
        """The self time of the call that ended at ``ts`` after ``duration`` ns (its
        duration itself when its entry was not read)."""
        c = self._open.pop((producer, call), None)
        if c is None:
            return max(0, duration)
        if c.waiting_since >= 0:  # closed at a yield (a generator's close, a cancelled task)
            c.waited += max(0, ts - c.waiting_since)
            c.settle(ts)
        if c.caller is not None:
            up = self._open.get(c.caller)
            if up is not None:
                up.callees += duration if c.awaited else max(0, duration - c.waited)
        return max(0, duration - c.waited - c.callees - c.io)

    def still_open(self) -> list[Key]:
        """The calls entered and not ended, callees after their callers (in entry order)."""
        return list(self._open)
