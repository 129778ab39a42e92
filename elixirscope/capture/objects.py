"""Object state at level ``full``: each ``self.<name> = ...`` recorded with the whole object.

The rewriter puts ``__elixirscope__.attr(FID, self, "name")`` after every
assignment to an attribute of ``self`` in a method traced at level ``full``;
both hooks runtimes (C and Python) then record an ``AttributeChange`` that
carries, besides the new value's text, the object's state as structure: an
:class:`ObjectStates` (one per hooks binding, so one per recorder and process
run: a fork or a new recording starts again with whole states) keeps a
``state.tracker.StateTracker`` keyed by the object's *identity*,
``module.Qualname@0x7f...`` (its class and ``id``), and :meth:`ObjectStates.record`
turns the object's fields into ``(obj, seq, key, delta)`` exactly as an actor's
state is (a keyframe first, then deltas). The cause of a change is the call
that assigned the attribute: the event's ``call_id``.

An identity is an address, and CPython reuses the address of an object that
died. So an object's mirror is forgotten when it dies (a weak reference's
callback notes it; the next record forgets it), and a new object at the same
address starts with a whole state (``seq`` 0). An object that cannot be weakly
referenced (``__slots__`` without ``__weakref__``) is not seen dying: a later
object of the same class at the same address continues its timeline (its first
change is still exact: a delta from the mirror). At most ``max_objects``
objects are watched; past it the least recently changed is forgotten.

Nothing here runs the program's code (``state.capture`` reads fields through
the builtin descriptors), and a record made while another is under way in
the same thread (a signal handler's) is skipped: ``None``, the event is then
recorded without structure.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from elixirscope.capture.values import _full_name
from elixirscope.state.capture import DEFAULT_LIMITS, StateLimits
from elixirscope.state.tracker import MAX_TARGETS, StateTracker

__all__ = ["ObjectStates", "identity"]

ObjectState = tuple[str, int, bytes | None, bytes | None]


def identity(obj: object) -> str:
    """``module.Qualname@0x...``: the object's class and address (no program code runs)."""
    return f"{_full_name(type(obj))}@{id(obj):#x}"


class ObjectStates:
    """The mirrors of the objects whose attributes were assigned, by identity."""

    def __init__(
        self, limits: StateLimits = DEFAULT_LIMITS, max_objects: int = MAX_TARGETS
    ) -> None:
        if type(max_objects) is not int or max_objects < 1:
            raise ValueError(f"Expected `max_objects` an int >= 1, got {max_objects!r}")
        self.tracker = StateTracker(limits)
        self.max_objects = max_objects
        self._watched: dict[str, Any] = {}  # identity -> weakref (None: not weakly referenceable)
        self._dead: list[str] = []  # identities whose object died, to forget at the next record
        self._lock = threading.RLock()
        self._busy = False

    def record(self, obj: object) -> ObjectState | None:
        """``(identity, seq, key, delta)`` for ``obj``'s fields now; None when skipped."""
        with self._lock:
            if self._busy:  # re-entered in this thread (a signal handler): skip
                return None
            self._busy = True
            try:
                self._forget_dead()
                target = identity(obj)
                watched = self._watched
                if target in watched:
                    watched[target] = watched.pop(target)  # most recent last
                else:
                    self._watch(obj, target)
                seq, key, delta, _ = self.tracker.record(target, obj)
                return target, seq, key, delta
            finally:
                self._busy = False

    def __len__(self) -> int:
        return len(self._watched)

    def _watch(self, obj: object, target: str) -> None:
        watched = self._watched
        while len(watched) >= self.max_objects:
            oldest = next(iter(watched))
            del watched[oldest]
            self.tracker.forget(oldest)
        try:
            ref: Any = weakref.ref(obj, _Died(self._dead, target))
        except TypeError:  # not weakly referenceable
            ref = None
        watched[target] = ref

    def _forget_dead(self) -> None:
        dead = self._dead
        while dead:
            target = dead.pop()
            ref = self._watched.get(target, False)
            if ref is False or (ref is not None and ref() is not None):
                continue  # forgotten already, or a newer object with that identity
            del self._watched[target]
            self.tracker.forget(target)


class _Died:
    """A weak reference's callback: notes that the object of ``target`` died."""

    __slots__ = ("dead", "target")

    def __init__(self, dead: list[str], target: str) -> None:
        self.dead = dead
        self.target = target

    def __call__(self, _ref: Any) -> None:
        self.dead.append(self.target)
