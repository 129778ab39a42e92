"""A WebSocket handler's state, recorded after each message: the LiveView analogue.

A handler declares its state once the connection is open, with
:func:`track_state` — a class-based handler its own attributes, named
(``track_state(self, fields=("tasks", "viewers"))`` in Starlette's
``WebSocketEndpoint.on_connect``: the endpoint's own ``scope``, ``receive``
and ``send`` are the framework's, not state), a function handler any object
or dict it keeps its state in (``track_state(state)``: all of it). From then on the
connection is recorded as an actor is: a ``state`` event
(:class:`~elixirscope.contracts.trace.StateChange`, the structure of
``elixirscope.state``: a keyframe, then deltas) for ``connect`` (as declared),
then one ``message`` after each message the handler received (taken when the
handler asks for the next one, or ends: the state that message left), with
the message's preview, and one ``push`` when the handler sends a frame while
handling no message (a server push, LiveView's ``handle_info``) and its state
changed, with the frame's preview. Its ``actor`` is ``websocket PATH #ID`` (``ID`` the
request's ``req`` event), so ``elixirscope state`` and the time-travel views
read a connection as they read an actor.

The state is read as actor state is (``state.capture``: fields through the
builtin descriptors, bounded by the state limits); none of the program's code
runs. With nothing recording, or outside a recorded WebSocket connection,
:func:`track_state` returns its argument and does nothing else.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

from elixirscope.capture import recorder
from elixirscope.contracts.trace import websocket_actor
from elixirscope.integrations.recording import current_request, swallowed
from elixirscope.state.tracker import StateTracker

__all__ = ["ConnectionState", "track_state"]

T = TypeVar("T")

_tracker: list[Any] = [None, None]  # [StateTracker, (recorder, pid)]


def _tracker_of(rec: Any) -> StateTracker:
    """The mirrors of this recording in this process (as actor capture keeps them)."""
    owner = (rec, os.getpid())
    if _tracker[0] is None or _tracker[1] != owner:
        _tracker[0], _tracker[1] = StateTracker(), owner
    return _tracker[0]


class ConnectionState:
    """The state one connection's handler declared, and the message it is handling."""

    __slots__ = ("rec", "actor", "obj", "fields", "handling", "shown")

    def __init__(self, rec: Any, actor: str, obj: Any, fields: tuple[str, ...] | None) -> None:
        self.rec = rec
        self.actor = actor
        self.obj = obj
        self.fields = fields
        self.handling: str | None = None  # the preview of the message being handled
        self.shown: str | None = None  # the state last recorded, as shown

    def value(self) -> Any:
        """What is recorded: the object, or its named attributes as a dict (read from
        its ``__dict__``, so no property or ``__getattr__`` of the program runs)."""
        if self.fields is None:
            return self.obj
        try:
            own = object.__getattribute__(self.obj, "__dict__")
        except AttributeError:
            own = {}
        return {name: own.get(name) for name in self.fields}

    def record(self, callback: str, message: str | None, changed_only: bool = False) -> None:
        try:
            from elixirscope.capture.values import safe_repr

            value = self.value()
            shown = safe_repr(value)
            if changed_only and shown == self.shown:
                return  # (a change past the shown bounds is in the next message's delta)
            self.shown = shown
            seq, key, delta, _ = _tracker_of(self.rec).record(self.actor, value)
            self.rec.emit(
                "state",
                self.actor,
                callback,
                message,
                None,
                shown,
                seq,
                key,
                delta,
                None,
                None,
            )
        except Exception as exc:  # noqa: BLE001 - never the host's problem
            swallowed(exc)

    def received(self, preview: str | None) -> None:
        """The handler asks for its next message: the previous one is handled."""
        self.settle()
        self.handling = preview

    def settle(self) -> None:
        """Record the state the message being handled left (when one is)."""
        if self.handling is not None:
            message, self.handling = self.handling, None
            self.record("message", message)

    def sent(self, preview: str | None) -> None:
        """The handler sends a frame no received message asked for (a push, the
        ``handle_info`` analogue): the state it left, when it changed."""
        if self.handling is None:
            self.record("push", preview, changed_only=True)

    def close(self) -> None:
        self.settle()
        try:
            _tracker_of(self.rec).forget(self.actor)
        except Exception as exc:  # noqa: BLE001
            swallowed(exc)


def track_state(obj: T, fields: tuple[str, ...] | list[str] | None = None) -> T:
    """Declare ``obj`` (or, with ``fields``, those attributes of it) the state of the
    WebSocket connection being handled here; returns ``obj``. Recorded as
    ``connect`` now and after each message from then on."""
    try:
        req = current_request.get()
        rec = recorder.recording()
        if req is None or rec is None or not req.active or req.protocol != "websocket":
            return obj
        names = None if fields is None else tuple(str(name) for name in fields)
        state = ConnectionState(rec, websocket_actor(req.path, req.start_id), obj, names)
        req.ws_state = state
        state.record("connect", None)
    except Exception as exc:  # noqa: BLE001
        swallowed(exc)
    return obj
