"""Observe every GenServer callback: the hook the state tracer plugs into.

Each invocation of ``init``, ``handle_call``, ``handle_cast``, ``handle_info``
or ``terminate`` can be seen as one :class:`CallbackRecord` — actor, callback,
message, state before and after, result, duration, exception. Observers are
per OS process (an actor runs in its own process on multiproc bases, so an
observer registered before the system starts is inherited by fork).

Cost when nobody observes: one truth test of a module-level list per callback.
An observer that raises is counted in ``observer_errors`` and never disturbs
the actor.

A :class:`Tracer` (at most one, :data:`TRACER`; ``elixirscope.capture.actors``
installs it) sees more than an observer: each callback *before* it runs (so a
state the callback mutates in place is rendered as it was) and every
call/cast/info the runtime sends and receives (and the reply to a call an
actor made with ``call_async``), to link them. A tracer's methods must never raise.

ElixirScope's own actors (a GenServer class with ``internal = True``: the
registry, the daemon's layers) are not traced unless the tracer's
``record_own`` is true: :func:`tracer_for` is the tracer an actor uses.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "CallbackRecord",
    "Tracer",
    "set_tracer",
    "tracer_for",
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


class Tracer(Protocol):
    """Capture's view of the runtime (see the module doc)."""

    def begin(self, actor: str, callback: str, message: Any, state: Any) -> Any:
        """A callback is about to run; returns a token for :meth:`end` (None: not traced)."""

    def end(self, token: Any, state_after: Any, error: BaseException | None = None) -> None:
        """The callback whose :meth:`begin` returned ``token`` finished, or raised ``error``."""

    def sending(self, sender: str | None, target: Any, message: Any) -> Any:
        """A call/cast/info is leaving; returns what travels with it (None: nothing)."""

    def replying(self, sender: str | None, target: Any, value: Any, call: Any) -> Any:
        """A server answers a call that arrived with the trace ``call``; returns what travels
        with the reply (None: nothing, as when the call came from a client that is not an
        actor: no receipt would be recorded to link it to)."""

    def receiving(self, actor: str, message: Any, trace: Any) -> AbstractContextManager[Any]:
        """The actor took a traced message; the handling runs inside the returned context."""

    def received(self, actor: str, message: Any, trace: Any) -> None:
        """An actor whose handling is not traced (a supervisor's job, ElixirScope's own
        registry) took a traced message: only who got it, for the send's receiver."""

    def lifecycle(
        self, kind: str, data: dict[str, Any], chain: str | None = None, address: Any = None
    ) -> None:
        """A supervisor published lifecycle event ``kind`` (child_started, child_exited, ...);
        ``chain``: the chain that caused it (the child's crash), else the current one;
        ``address``: a started (or restarted) child's actor address."""

    def chain(self) -> str | None:
        """The correlation chain the code running now is recorded in (None: none)."""

    def named(self, actor: str, name: str) -> None:
        """The actor registered the unique name ``name`` (readers then find it by it)."""

    def undelivered(self, message: Any, to: Any, cause: str, why: str) -> None:
        """A traced call/cast/info could not be delivered and was dropped: sent to ``to``, a
        name nobody held (``cause`` ``"name"``) or an actor that had exited (``"exited"``,
        a dead letter); ``why`` says it in words."""


TRACER: Tracer | None = None

PUBSUB: Any = None
"""While pub/sub is recorded (``elixirscope.integrations.pubsub``): its recorder, whose
``publishing(actor, key, payload)`` records a publish and returns the link its
deliveries carry. None (the default) costs ``dispatch`` one test."""

PLAIN_ACTORS_UNWRAP_INFO = False
"""True while a plain Thespian actor is handed what a traced ``m.Info`` carries, not the
``Info`` (``elixirscope.integrations.thespian_actors`` on, which links its receive by the
trace). Only then may a raw message to an address of either kind travel in one
(``System.send``): otherwise a plain actor would get an ``Info`` instead of its message."""


def tracer_for(actor: Any) -> Tracer | None:
    """The tracer for ``actor``'s callbacks and messages: None for ElixirScope's own
    actors unless the tracer records them (``record_own``)."""
    tracer = TRACER
    if tracer is None or not getattr(type(actor), "internal", False):
        return tracer
    return tracer if getattr(tracer, "record_own", False) else None


def set_tracer(tracer: Tracer | None) -> Tracer | None:
    """Install ``tracer`` (None removes it) in this process; returns the previous one."""
    global TRACER
    previous, TRACER = TRACER, tracer
    return previous
