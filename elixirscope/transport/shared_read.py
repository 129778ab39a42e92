"""``SharedRead``: one read in flight, shared by everyone who asks for it meanwhile.

Why: a cheap question asked often (the API's ``status`` asks the application
supervisor for its children) must not cost one call per asker. Under a flood
of such questions each would queue its own call behind the others, so the
answer would come later the more people ask - and a caller polling for
liveness would see a loaded daemon as a dead one. With a shared read, the
first asker starts the read and every later one waits for that same answer:
at most one call is ever outstanding, whatever the number of askers.

The askers waiting are bounded by ``max_waiting``; one past it is told
``"full"`` and answered by its server at once from what it knows already.
Every asker that joined is handed back exactly once, by :meth:`settle`.
"""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

__all__ = ["SharedRead"]

Waiter = TypeVar("Waiter")

Joined = Literal["start", "wait", "full"]


class SharedRead(Generic[Waiter]):
    """The askers of one read; see the module doc."""

    __slots__ = ("_waiting", "max_waiting", "reads_started", "refused")

    def __init__(self, max_waiting: int = 1024) -> None:
        if isinstance(max_waiting, bool) or not isinstance(max_waiting, int) or max_waiting < 1:
            raise ValueError(f"max_waiting must be an int >= 1, got {max_waiting!r}")
        self.max_waiting = max_waiting
        self._waiting: list[Waiter] | None = None  # None: no read in flight
        self.reads_started = 0
        self.refused = 0

    @property
    def in_flight(self) -> bool:
        return self._waiting is not None

    @property
    def waiting(self) -> int:
        return len(self._waiting or ())

    def join(self, waiter: Waiter) -> Joined:
        """``"start"``: no read is in flight, the caller starts one (the waiter waits for
        it); ``"wait"``: the waiter waits for the read in flight; ``"full"``: too many
        wait already, the waiter was not taken."""
        if self._waiting is None:
            self._waiting = [waiter]
            self.reads_started += 1
            return "start"
        if len(self._waiting) >= self.max_waiting:
            self.refused += 1
            return "full"
        self._waiting.append(waiter)
        return "wait"

    def start_unasked(self) -> bool:
        """Start a read nobody waits for yet (to have an answer ready); False if one is in flight."""
        if self._waiting is not None:
            return False
        self._waiting = []
        self.reads_started += 1
        return True

    def settle(self) -> list[Waiter]:
        """The read in flight has ended (answered or failed): everyone who waited for it."""
        waiting, self._waiting = self._waiting or [], None
        return waiting
