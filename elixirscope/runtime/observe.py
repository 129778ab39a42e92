"""Observe every GenServer callback: the hook the state tracer plugs into.

Each invocation of ``init``, ``handle_call``, ``handle_cast``, ``handle_info``
or ``terminate`` can be seen as one :class:`CallbackRecord` — actor, callback,
message, state before and after, result, duration, exception. Observers are
per OS process (an actor runs in its own process on multiproc bases, so an
observer registered before the system starts is inherited by fork).

Cost when nobody observes: one truth test of a module-level list per callback.
An observer that raises is counted in ``observer_errors`` and never disturbs
the actor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CallbackRecord",
    "add_callback_observer",
    "observer_errors",
    "remove_callback_observer",
]


@dataclass(frozen=True, slots=True)
class CallbackRecord:
    actor: str  # the actor's path in the tree, or its address
    actor_class: str
    callback: str
    message: Any
    state_before: Any
    state_after: Any
    result: Any
    duration_ns: int
    exception: BaseException | None


Observer = Callable[[CallbackRecord], None]

OBSERVERS: list[Observer] = []
_errors = [0]


def add_callback_observer(observer: Observer) -> None:
    """Call ``observer(record)`` after every GenServer callback in this process."""
    if observer not in OBSERVERS:
        OBSERVERS.append(observer)


def remove_callback_observer(observer: Observer) -> bool:
    try:
        OBSERVERS.remove(observer)
        return True
    except ValueError:
        return False


def observer_errors() -> int:
    """How many times an observer raised (the actor carried on each time)."""
    return _errors[0]


def notify(record: CallbackRecord) -> None:
    for observer in tuple(OBSERVERS):
        try:
            observer(record)
        except Exception:  # noqa: BLE001 - an observer must never break the actor
            _errors[0] += 1
