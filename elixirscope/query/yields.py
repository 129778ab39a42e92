"""Where each generator stands at its yields, as a recording's events come.

A generator suspended at a plain ``yield`` (not an ``await``) hands control to its
consumer: the time until its resume is the consumer's, not its own. A plain
``yield`` left with no resume (the next step is an ``await``, or the call's end)
means the consumer threw an exception in there (a ``@contextmanager``'s ``with``
body, a web framework's dependency whose request failed): an exception the call
then ends by came from its consumer, not from the call. A ``finally``'s or an
``async with``'s awaits after it are no resume of it; a plain ``yield`` of its own
since is (the consumer went on).

``summary`` (time at yields, exceptions counted where raised), ESQL (``thrown_in``,
a resume's ``yield``) and ``calltree`` (the yield marked ``thrown in here``) read
the steps through this one class, so they agree on what was thrown in.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

__all__ = ["YieldSteps"]


class YieldSteps:
    """Each generator's last yield while suspended, and the plain yield it left unresumed.

    Feed it a call's ``GeneratorYield`` (:meth:`yielded`), ``GeneratorResume``
    (:meth:`resumed`) and end (:meth:`ended`) in the order they happened, keyed by
    the call (``(producer, call id)``). Events need ``ts`` and ``awaiting``.
    """

    __slots__ = ("_at", "_left")

    def __init__(self) -> None:
        self._at: dict[Hashable, Any] = {}  # call -> the yield it is suspended at
        self._left: dict[Hashable, Any] = {}  # call -> its plain yield no resume followed

    def yielded(self, call: Hashable, ev: Any) -> int:
        """A yield (or an ``await``'s suspension) of ``call``; the ns it had spent at a
        plain yield it left without a resume (0 if none)."""
        was = self._at.get(call)
        spent = 0
        if was is not None and not was.awaiting:
            self._left[call] = was
            spent = ev.ts - was.ts
        if not ev.awaiting:  # a yield of its own: the consumer went on
            self._left.pop(call, None)
        self._at[call] = ev
        return spent

    def resumed(self, call: Hashable, ts: int) -> int:
        """``call`` resumed at ``ts``; the ns it spent at a plain yield (0: an await's)."""
        was = self._at.pop(call, None)
        return ts - was.ts if was is not None and not was.awaiting else 0

    def ended(self, call: Hashable, ts: int) -> int:
        """``call`` ended at ``ts`` (forgotten); the ns it spent at a plain yield it was
        still suspended at (the exception thrown in there ended it)."""
        self._left.pop(call, None)
        return self.resumed(call, ts)

    def suspended_at(self, call: Hashable) -> Any:
        """The yield ``call`` is suspended at, or None."""
        return self._at.get(call)

    def thrown_in_at(self, call: Hashable) -> Any:
        """The plain yield an exception ending ``call`` now would have been thrown in at
        by its consumer (suspended there, or left there unresumed), or None."""
        at = self._at.get(call)
        return at if at is not None and not at.awaiting else self._left.get(call)
