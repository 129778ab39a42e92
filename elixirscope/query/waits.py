"""Where coroutines waited, and where they kept their event loop from running anything else.

Read from a run's events in time order. Only coroutines and async generators
running in an asyncio task count (a call recorded with its task,
``FunctionEntry.task``): a generator suspended at a ``yield`` waits for its
consumer, not on anything.

- A *wait* is the time from a call's ``await`` (a ``GeneratorYield`` with
  ``awaiting``: an explicit ``await``, or an ``async for``'s or ``async with``'s) to
  its ``resume``, or to the call's end when it ended there (an exception out of the
  await, a cancelled task). An await that raised and was handled inside the call has
  no resume (one is recorded for a value only): its wait is taken to end at the
  call's next event — its next suspension, a call it made on its thread, its end — a
  little late, by the handler's time. A wait during which a recorded coroutine of
  its own began (the coroutine it awaited, tasks it gathered) is that callee's time,
  told where the callee waited — so is an async generator of its own task resumed
  during the wait (each ``__anext__`` of an ``async for``): it is not counted, so no
  time counts twice, but for what is left after the last of those coroutines ended
  (``LEFT_OVER_NS`` or more: a ``gather`` of one and a sleep). A function it handed
  to a thread (``asyncio.to_thread``'s) waits on nothing: the wait for it is
  counted.
- A *stretch* is the time a coroutine ran on its loop without giving it back:
  from its start or a resume to its next suspension or its end. Its loop ran
  nothing else meanwhile — no other request, no timer — whatever the calls
  inside it were (asyncio's debug mode warns of the same at 100 ms). A coroutine
  with no await ran whole as one (an ``async def`` handler calling a blocking
  function). A web request's own call, whose awaits are not recorded (the
  integration's, not rewritten code), is not cut into stretches.

Sites are keyed by function and line (the line of the ``await``, or for a
stretch the lines it ran from and to).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from elixirscope.contracts.trace import (
    REQUEST_FUNCTION,
    FunctionEntry,
    FunctionError,
    FunctionExit,
    GeneratorResume,
    GeneratorYield,
)

__all__ = ["EVENT_TYPES", "Stretch", "WaitSite", "Waits"]

EVENT_TYPES = ("call", "return", "exception", "yield", "resume")
"""The types of the events :class:`Waits` reads (as stored: ``StoredEvent.type``)."""

HELD_NS = 100_000_000
"""A stretch this long (asyncio's debug-mode warning: 100 ms) held its loop: a wait of
another task on its thread that overlapped it counts that time as ``held_ns``."""

LEFT_OVER_NS = 1_000_000
"""A wait its recorded coroutines covered counts for what is left after the last of them
ended (an ``asyncio.gather`` of one and a sleep) when that is at least this long."""

Key = tuple[str, int]  # (producer, call id)


@dataclass
class WaitSite:
    """The waits at one ``await``: how many, their time, the longest."""

    function: str
    file: str | None
    line: int
    awaited: str | None  # what it awaited, at level args (the first one recorded)
    count: int = 0
    total_ns: int = 0
    max_ns: int = 0
    correlation_id: str | None = None  # the longest's chain
    held_ns: int = 0  # of total_ns, while another task held the loop (HELD_NS or longer)


@dataclass
class Stretch:
    """A coroutine running on its loop from ``from_line`` (0: its start) to ``to_line``
    (0: its end) without a suspension, for ``duration_ns``."""

    function: str
    file: str | None
    from_line: int
    to_line: int
    duration_ns: int
    producer: str
    call_id: int
    start: tuple[int, int]  # (event id, ts) of the entry or resume it began at
    end: tuple[int, int]  # of the yield or exit it ended at
    thread: int
    correlation_id: str | None
    other_tasks: int = 0  # recorded tasks with a call open on its thread meanwhile: held up


@dataclass
class _Open:
    call: int
    parent: int
    function: str
    file: str | None
    task: str | None  # its asyncio task's name (None: not a coroutine in one)
    thread: int
    running_since: int  # ts, -1 while suspended
    running_from: tuple[int, int, int]  # (line, event id, ts) it began running at
    waiting: tuple[int, int, int, bool, str | None] | None = None  # (line, id, ts, await, what)
    callee_began: bool = False  # a recorded coroutine of its own began during the wait
    covered_until: int = -1  # ... and the latest end of those, by the wait's end
    pulled: bool = False  # an async generator of its task resumed during the wait
    in_wait_of: int = 0  # the yield of its caller's wait it began in (0: none)
    steps: int = 0
    stretches: list[Stretch] = field(default_factory=list)


class Waits:
    """Feed a run's events in time order; read :attr:`sites` and :attr:`stretches` (and
    with ``by_call``, :attr:`calls`: each call's counted waits, ``(line, ns)``)."""

    def __init__(self, min_stretch_ns: int | None = 0, by_call: bool = False) -> None:
        """``min_stretch_ns``: the stretches kept are at least this long (None: none is,
        for a reader of the waits alone — each stretch kept names the tasks it held up)."""
        self.min_stretch_ns = min_stretch_ns
        self.sites: dict[tuple[str, int], WaitSite] = {}
        self.stretches: list[Stretch] = []  # of at least min_stretch_ns
        self.calls: dict[Key, list[tuple[int, int]]] | None = {} if by_call else None
        self._open: dict[Key, _Open] = {}
        # each thread's stretches of HELD_NS or more, in order of end: (start, end, task)
        self._held: dict[tuple[str, int], list[tuple[int, int, str | None]]] = {}

    def feed(self, se) -> None:  # noqa: ANN001 - a StoredEvent
        """One stored event of any type (those of calls and suspensions are read)."""
        ev = se.event
        kind = type(ev)
        if kind is FunctionEntry:
            self.entered(se.producer, ev)
        elif kind is GeneratorYield:
            self.suspended(se.producer, ev)
        elif kind is GeneratorResume:
            self.resumed(se.producer, ev)
        elif kind is FunctionExit or kind is FunctionError:
            self.ended(se.producer, ev)

    def entered(self, producer: str, ev) -> None:  # noqa: ANN001 - a FunctionEntry
        up = self._open.get((producer, ev.parent_id)) if ev.parent_id else None
        in_wait_of = 0
        if up is not None and up.waiting is not None:
            if ev.task is not None:
                up.callee_began = True
                in_wait_of = up.waiting[1]
            elif ev.thread == up.thread:  # it runs again: its await raised, was handled
                self._wait(up, producer, ev)
                up.waiting = None
        if ev.task is None:  # not a coroutine in a task: nothing of it is read
            return
        c = _Open(
            ev.id, ev.parent_id, ev.function, ev.file, ev.task, ev.thread, ev.ts, (0, ev.id, ev.ts)
        )
        c.in_wait_of = in_wait_of
        self._open[(producer, ev.id)] = c

    def suspended(self, producer: str, ev) -> None:  # noqa: ANN001 - a GeneratorYield
        c = self._open.get((producer, ev.call_id))
        if c is None or c.task is None:
            return
        c.steps += 1
        if c.running_since >= 0:
            self._stretch(c, producer, ev.line, ev)
        elif c.waiting is not None:  # its await raised and was handled: no resume
            self._wait(c, producer, ev)
        c.waiting = (ev.line, ev.id, ev.ts, ev.awaiting, ev.value)
        c.callee_began, c.covered_until, c.pulled = False, -1, False
        c.running_since = -1

    def resumed(self, producer: str, ev) -> None:  # noqa: ANN001 - a GeneratorResume
        c = self._open.get((producer, ev.call_id))
        if c is None or c.task is None:
            return
        up = self._open.get((producer, c.parent)) if c.parent else None
        if up is not None and up.waiting is not None and up.task == c.task:
            up.pulled = True  # an async generator its `async for` pulls from
        c.steps += 1
        if c.waiting is not None:
            self._wait(c, producer, ev)
            c.running_from = (c.waiting[0], ev.id, ev.ts)
        else:
            c.running_from = (0, ev.id, ev.ts)
        c.waiting = None
        c.running_since = ev.ts

    def ended(self, producer: str, ev) -> None:  # noqa: ANN001
        """A call returned or raised (``ev``: its FunctionExit or FunctionError)."""
        c = self._open.pop((producer, ev.call_id), None)
        if c is None or c.task is None:
            return
        up = self._open.get((producer, c.parent)) if c.in_wait_of else None
        if up is not None and up.waiting is not None and up.waiting[1] == c.in_wait_of:
            up.covered_until = max(up.covered_until, ev.ts)  # it ended within that wait
        cut = c.steps or c.function != REQUEST_FUNCTION  # a request's awaits are not recorded
        if c.waiting is not None:  # ended at the await: an exception out of it, a cancel
            self._wait(c, producer, ev)
        elif c.running_since >= 0 and cut:
            self._stretch(c, producer, 0, ev)
        if cut:
            self.stretches.extend(c.stretches)

    def _wait(self, c: _Open, producer: str, ev) -> None:  # noqa: ANN001 - what ended it
        """The wait ``c`` was in ended at ``ev`` (its resume, or its call's end)."""
        assert c.waiting is not None
        line, _, since, awaiting, what = c.waiting
        if not awaiting or c.pulled:
            return
        waited = max(0, ev.ts - since)
        if c.callee_began:  # the coroutines it awaited tell their time: what is left
            if c.covered_until < 0:  # still running at the wait's end: all of it theirs
                return
            waited = max(0, ev.ts - max(since, c.covered_until))
            if waited < LEFT_OVER_NS:
                return
        site = self.sites.get((c.function, line))
        if site is None:
            site = self.sites[(c.function, line)] = WaitSite(c.function, c.file, line, what)
        if self.calls is not None:
            self.calls.setdefault((producer, c.call), []).append((line, waited))
        site.count += 1
        site.total_ns += waited
        site.held_ns += self._held_during(producer, c, ev.ts - waited, ev.ts)
        if waited > site.max_ns or site.count == 1:
            site.max_ns = waited
            site.correlation_id = ev.correlation_id

    def _held_during(self, producer: str, c: _Open, since: int, until: int) -> int:
        """How much of ``[since, until]`` other tasks held ``c``'s loop, in stretches of
        :data:`HELD_NS` or more."""
        held = 0
        for start, end, task in reversed(self._held.get((producer, c.thread), ())):
            if end <= since:
                break
            if task != c.task:
                held += max(0, min(end, until) - max(start, since))
        return held

    def _stretch(self, c: _Open, producer: str, to_line: int, ev) -> None:  # noqa: ANN001
        """``c`` stopped running at ``ev`` (a yield at ``to_line``, or its end: 0)."""
        ran = ev.ts - c.running_since
        if ran >= HELD_NS:
            self._held.setdefault((producer, c.thread), []).append((c.running_since, ev.ts, c.task))
        if self.min_stretch_ns is not None and ran >= self.min_stretch_ns:
            line, start_id, start_ts = c.running_from
            mine = {c.task, None}  # its task and its callers' (awaiting it): none held up
            up = self._open.get((producer, c.parent)) if c.parent else None
            for _ in range(256):  # a damaged recording's loop of parents ends here
                if up is None:
                    break
                mine.add(up.task)
                up = self._open.get((producer, up.parent)) if up.parent else None
            others = {
                o.task
                for (p, _), o in self._open.items()
                if p == producer and o.thread == c.thread and o.task not in mine
            }
            c.stretches.append(Stretch(
                c.function, c.file, line, to_line, ran, producer, c.call,
                (start_id, start_ts), (ev.id, ev.ts), ev.thread, ev.correlation_id, len(others),
            ))  # fmt: skip

    def by_time(self) -> list[WaitSite]:
        """The wait sites, most time waited first."""
        return sorted(self.sites.values(), key=lambda s: (-s.total_ns, s.function, s.line))
