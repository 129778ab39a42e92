"""Capture for the runtime's GenServers: state around callbacks, sends linked to receives.

``enable_actor_capture()`` installs an :class:`ActorTracer` as the runtime's
tracer (``elixirscope.runtime.observe.TRACER``); from then on, in this process
and in processes forked from it (actor processes of a ``multiprocTCPBase``
system started afterwards):

- every GenServer callback records a ``StateChange`` (actor, callback,
  message, before, after) — ``before`` is rendered *before* the callback runs,
  since a callback may mutate its state in place; a callback that raises
  records the state as it then is as ``after``;
- every call/cast (GenServer ``cast``/``call_async``, ``Runtime.call``/
  ``cast``) and info (``Runtime.send``) records a ``MessageSend`` with a fresh
  ``message_id`` under the sender's correlation id (a new one if it has none)
  and carries ``(message_id, correlation_id, hlc_ts, sender)`` in the runtime's
  envelope; the receiving GenServer records ``MessageReceive`` with the same
  ``message_id``, merges the HLC (so the receive sorts after the send on any
  node), and runs the callback under that correlation id — its function
  events and the messages it sends join the sender's chain.

Events go to the process Recorder (``recorder.current()``); with none
installed nothing is recorded. Values are safe text (``capture.values``).
Every method swallows its own errors (counted in ``errors``): capture never
disturbs an actor.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from elixirscope.capture import recorder
from elixirscope.capture.context import correlation, current_correlation_id, new_correlation_id
from elixirscope.capture.values import safe_repr
from elixirscope.runtime import observe

__all__ = [
    "ActorTracer",
    "actor_capture_enabled",
    "disable_actor_capture",
    "enable_actor_capture",
]

_NOTHING = nullcontext()


class ActorTracer:
    """The runtime's :class:`~elixirscope.runtime.observe.Tracer`, recording trace events.

    ``record_own``: record ElixirScope's own actors too (``observe.tracer_for``).
    """

    def __init__(self, limit: int = 200, record_own: bool = False) -> None:
        self.limit = limit
        self.record_own = record_own
        self.errors = 0
        self.last_error = ""

    # ------------------------------------------------------------------ state

    def begin(self, actor: str, callback: str, message: Any, state: Any) -> Any:
        try:
            rec = recorder.current()
            if rec is None:
                return None
            return (rec, actor, callback, self._text(message), self._text(state))
        except Exception as exc:  # noqa: BLE001
            return self._failed(exc)

    def end(self, token: Any, state_after: Any) -> None:
        try:
            rec, actor, callback, message, before = token
            rec.emit("state", actor, callback, message, before, self._text(state_after))
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    # ------------------------------------------------------------------ messages

    def sending(self, sender: str | None, target: Any, message: Any) -> Any:
        try:
            rec = recorder.current()
            if rec is None:
                return None
            message_id = uuid.uuid4().hex
            cid = current_correlation_id() or new_correlation_id()
            with correlation(cid):
                rec.emit("send", message_id, sender, _address(target), self._text(message))
            return (message_id, cid, rec.clock.now(), sender)
        except Exception as exc:  # noqa: BLE001
            return self._failed(exc)

    def receiving(self, actor: str, message: Any, trace: Any) -> AbstractContextManager[Any]:
        try:
            rec = recorder.current()
            if rec is None:
                return _NOTHING
            return _Received(self, rec, actor, message, trace)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)
            return _NOTHING

    def lifecycle(self, kind: str, data: dict[str, Any]) -> None:
        """Supervision as trace events: child started -> spawn, exited -> exit, restarted -> restart."""
        tag = _LIFECYCLE_TAGS.get(kind)
        if tag is None:
            return
        try:
            rec = recorder.current()
            if rec is None:
                return
            path, pid, sup = data.get("child_path") or "", data.get("pid"), data.get("supervisor")
            if tag == "spawn":
                rec.emit("spawn", path, pid, sup)
            else:
                rec.emit(tag, path, pid, _reason_text(data.get("reason")), sup)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    # ------------------------------------------------------------------ helpers

    def _text(self, value: Any) -> str:
        return safe_repr(value, self.limit)

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        return None

    def __repr__(self) -> str:
        return f"<ActorTracer errors={self.errors}>"


_LIFECYCLE_TAGS = {
    "child_started": "spawn",
    "child_exited": "exit",
    "child_terminated": "exit",
    "child_restarted": "restart",
}


def _reason_text(reason: Any) -> str:
    """An ExitReason's dict as one line: ``exception KeyError: 'coffee'``, ``shutdown``."""
    if not isinstance(reason, dict):
        return "restarted" if reason is None else str(reason)
    text = reason.get("kind", "?")
    if reason.get("exc_type"):
        text += f" {reason['exc_type']}: {reason.get('message', '')}"
    elif reason.get("detail"):
        text += f" {reason['detail']}"
    return text


class _Received:
    """The handling of one traced message: under its correlation id, after its receive."""

    __slots__ = ("actor", "message", "rec", "scope", "trace", "tracer")

    def __init__(self, tracer: ActorTracer, rec: Any, actor: str, message: Any, trace: Any) -> None:
        self.tracer, self.rec, self.actor, self.message, self.trace = (
            tracer,
            rec,
            actor,
            message,
            trace,
        )
        self.scope: Any = None

    def __enter__(self) -> None:
        try:
            message_id, cid, ts, sender = self.trace
            self.rec.clock.observe(ts)  # the receive sorts after the send, on any node
            scope = correlation(cid)
            scope.__enter__()
            self.scope = scope
            body = _content(self.message)
            self.rec.emit("receive", message_id, self.actor, sender, self.tracer._text(body))
        except Exception as exc:  # noqa: BLE001
            self.tracer._failed(exc)

    def __exit__(self, *exc_info: object) -> None:
        scope, self.scope = self.scope, None
        if scope is not None:
            try:
                scope.__exit__(None, None, None)  # restore; the exception is not ours
            except Exception as exc:  # noqa: BLE001
                self.tracer._failed(exc)


def _content(envelope: Any) -> Any:
    """What a Call/Cast/Info carries (the runtime's frozen dataclasses: plain fields)."""
    fields = type(envelope).__dict__.get("__dataclass_fields__", {})
    name = "request" if "request" in fields else "message"
    return vars(envelope).get(name) if name in fields else envelope


def _address(target: Any) -> str:
    """An actor address as text (Thespian's own ``str``; never the program's objects)."""
    if type(target) is str:
        return target
    try:
        return str(target)
    except Exception:  # noqa: BLE001
        return safe_repr(target)


def enable_actor_capture(limit: int = 200, *, record_own: bool = False) -> ActorTracer:
    """Trace GenServer state and messages in this process (and processes forked later);
    ElixirScope's own actors (registry, layers) only with ``record_own``."""
    current = observe.TRACER
    if isinstance(current, ActorTracer):
        current.limit = limit
        current.record_own = record_own
        return current
    tracer = ActorTracer(limit, record_own)
    observe.set_tracer(tracer)
    return tracer


def disable_actor_capture() -> bool:
    """Stop tracing; False if actor capture was not on."""
    if isinstance(observe.TRACER, ActorTracer):
        observe.set_tracer(None)
        return True
    return False


def actor_capture_enabled() -> bool:
    return isinstance(observe.TRACER, ActorTracer)
