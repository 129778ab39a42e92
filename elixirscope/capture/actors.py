"""Capture for the runtime's GenServers: state around callbacks, sends linked to receives.

``enable_actor_capture()`` installs an :class:`ActorTracer` as the runtime's
tracer (``elixirscope.runtime.observe.TRACER``); from then on, in this process
and in processes forked from it (actor processes of a ``multiprocTCPBase``
system started afterwards):

- every GenServer callback records a ``StateChange``: the actor's state after
  it as structure — a delta from the previous state, and now and then the
  whole state (``elixirscope.state.tracker``) — with the message it handled
  (``message_id``) and, when it raised, the error; the state before is the
  previous change's, so a callback that mutates its state in place is seen
  exactly (nothing is rendered before it runs);
- every call/cast (GenServer ``cast``/``call_async``, ``Runtime.call``/
  ``cast``) and info (``Runtime.send``) records a ``MessageSend`` with a fresh
  ``message_id`` under the sender's correlation id (a new one if it has none)
  and carries ``(message_id, correlation_id, hlc_ts, sender)`` in the runtime's
  envelope; the receiving GenServer records ``MessageReceive`` with the same
  ``message_id``, merges the HLC (so the receive sorts after the send on any
  node), and runs the callback under that correlation id — its function
  events and the messages it sends join the sender's chain;
- the reply to a ``call_async`` (a call from an actor) is a ``MessageSend``
  from the server to the caller whose ``message_id`` is the call's and
  ``REPLY_SUFFIX``, and the caller's ``MessageReceive`` of it; the caller's
  ``handle_info(CallResult)`` runs in its chain, so its ``StateChange`` names
  the reply. A reply to a client's ``Runtime.call`` is not recorded (no actor
  receives it), nor are failures, timeouts and ``Down`` (no actor sent them).

Events go to the process Recorder (``recorder.current()``); with none
installed nothing is recorded. Values are safe text (``capture.values``).
Every method swallows its own errors (counted in ``errors``): capture never
disturbs an actor.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from typing import Any

from elixirscope.capture import recorder
from elixirscope.capture.context import correlation, current_correlation_id, new_correlation_id
from elixirscope.capture.sampled import SampledOut
from elixirscope.capture.values import address_text, safe_repr
from elixirscope.contracts.trace import REGISTERED, REPLY_SUFFIX, UNDELIVERED
from elixirscope.runtime import observe
from elixirscope.state.capture import DEFAULT_LIMITS, StateLimits
from elixirscope.state.tracker import KEY_EVERY, StateTracker

__all__ = [
    "ActorTracer",
    "actor_capture_enabled",
    "disable_actor_capture",
    "enable_actor_capture",
]

_NOTHING = nullcontext()
SAMPLED_OUT = ""
"""The message id a trace carries when its sender's chain was left out by the sampler."""
_handling: ContextVar[str | None] = ContextVar("elixirscope_handling", default=None)
"""The ``message_id`` of the message being handled in this context."""


class ActorTracer:
    """The runtime's :class:`~elixirscope.runtime.observe.Tracer`, recording trace events.

    ``record_own``: record ElixirScope's own actors too (``observe.tracer_for``).
    """

    def __init__(
        self,
        limit: int = 200,
        record_own: bool = False,
        state_limits: StateLimits = DEFAULT_LIMITS,
        keyframe_every: int = KEY_EVERY,
    ) -> None:
        self.limit = limit
        self.record_own = record_own
        self.state_limits = state_limits
        self.keyframe_every = keyframe_every
        self.errors = 0
        self.last_error = ""
        self._tracker: StateTracker | None = None
        self._tracker_for: tuple[Any, int] = (None, 0)

    # ------------------------------------------------------------------ state

    def begin(self, actor: str, callback: str, message: Any, state: Any) -> Any:
        try:
            rec = recorder.recording()
            if rec is None:
                return None
            return (rec, actor, callback, self._text(message), _handling.get())
        except Exception as exc:  # noqa: BLE001
            return self._failed(exc)

    def end(self, token: Any, state_after: Any, error: BaseException | None = None) -> None:
        try:
            rec, actor, callback, message, message_id = token
            tracker = self.tracker(rec)
            if callback == "init":
                tracker.forget(actor)  # a new incarnation (a restart): a whole state again
            seq, key, delta, _ = tracker.record(actor, state_after)
            rec.emit(
                "state",
                actor,
                callback,
                message,
                None,
                self._text(state_after),
                seq,
                key,
                delta,
                message_id,
                None if error is None else _error_text(error),
                None if error is None else _raised_at(error),
            )
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    def tracker(self, rec: Any) -> StateTracker:
        """The mirrors of this recording in this process (new after a fork or a new run:
        each starts again with whole states)."""
        owner = (rec, os.getpid())
        if self._tracker is None or self._tracker_for != owner:
            self._tracker = StateTracker(self.state_limits, self.keyframe_every)
            self._tracker_for = owner
        return self._tracker

    # ------------------------------------------------------------------ messages

    def sending(self, sender: str | None, target: Any, message: Any) -> Any:
        try:
            rec = recorder.current()
            if rec is None:
                return None
            return self._send(rec, sender, target, message, None, None)
        except Exception as exc:  # noqa: BLE001
            return self._failed(exc)

    def replying(self, sender: str | None, target: Any, value: Any, call: Any) -> Any:
        """The reply to a call an actor made (its trace's sender is that actor): a send
        whose id is the call's and ``REPLY_SUFFIX``, in the chain the server is in (else
        the call's). A call from a client (``Runtime.call``: no sender) gets nothing: no
        actor would record the reply's receipt, and a send never received would look
        like a message stuck in a mailbox."""
        try:
            call_id, call_cid, _ts, caller = call
            if caller is None:
                return None
            rec = recorder.current()
            if rec is None:
                return None
            if call_id == SAMPLED_OUT:  # the call's chain was left out: its answer too
                return (SAMPLED_OUT, call_cid, rec.clock.now(), sender)
            return self._send(rec, sender, target, value, call_id + REPLY_SUFFIX, call_cid)
        except Exception as exc:  # noqa: BLE001
            return self._failed(exc)

    def _send(
        self,
        rec: Any,
        sender: str | None,
        target: Any,
        message: Any,
        message_id: str | None,
        cid: str | None,
    ) -> Any:
        """Record a send (a fresh id unless given) under the current chain, else ``cid``,
        else a new one; returns its trace."""
        if recorder.sampled_out.get():  # the receiver leaves it out too
            return (SAMPLED_OUT, current_correlation_id(), rec.clock.now(), sender)
        if message_id is None:
            message_id = new_correlation_id()
        cid = current_correlation_id() or cid or new_correlation_id()
        with correlation(cid):
            rec.emit("send", message_id, sender, address_text(target), self._text(message))
        return (message_id, cid, rec.clock.now(), sender)

    def receiving(self, actor: str, message: Any, trace: Any) -> AbstractContextManager[Any]:
        try:
            rec = recorder.current()
            if rec is None:
                return _NOTHING
            return _Received(self, rec, actor, message, trace)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)
            return _NOTHING

    def received(self, actor: str, message: Any, trace: Any) -> None:
        """The receive alone (no state, no chain entered): a supervisor answers a call in
        a job over several messages, and the registry is ElixirScope's own — a message the
        program sent them still says who got it."""
        try:
            rec = recorder.current()
            if rec is None:
                return
            message_id, _cid, ts, sender = trace
            rec.clock.observe(ts)
            if message_id != SAMPLED_OUT:
                body = self._text(_content(message))
                rec.emit("receive", message_id, actor, sender, body)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    def lifecycle(
        self, kind: str, data: dict[str, Any], chain: str | None = None, address: Any = None
    ) -> None:
        """Supervision as trace events: child started -> spawn, exited -> exit, restarted ->
        restart (a start and a restart with the child's address); in ``chain`` when given (a
        crash's: its exit and restart are what it caused, whichever message the supervisor
        was handling when it heard of it)."""
        tag = _LIFECYCLE_TAGS.get(kind)
        if tag is None:
            return
        try:
            rec = recorder.current()
            if rec is None:
                return
            path, pid, sup = data.get("child_path") or "", data.get("pid"), data.get("supervisor")
            where = None if address is None else address_text(address)
            with correlation(chain) if chain else nullcontext():
                if tag == "spawn":
                    rec.emit("spawn", path, pid, sup, where)
                elif tag == "restart":
                    rec.emit("restart", path, pid, _reason_text(data.get("reason")), sup, where)
                else:
                    rec.emit(tag, path, pid, _reason_text(data.get("reason")), sup)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    def chain(self) -> str | None:
        """The correlation chain the running code is recorded in (None: none)."""
        return current_correlation_id()

    def named(self, actor: str, name: str) -> None:
        """A registered name, as the custom event ``REGISTERED`` (the store indexes it
        under both names, so ``elixirscope state NAME`` finds the actor)."""
        try:
            rec = recorder.current()
            if rec is not None:
                rec.emit("custom", REGISTERED, {"actor": actor, "name": name})
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    def undelivered(self, message: Any, to: Any, cause: str, why: str) -> None:
        """A message dropped undelivered, as the custom event ``UNDELIVERED`` in its send's
        chain, naming the send by its id (so a send with no receive says why)."""
        try:
            rec = recorder.current()
            trace = getattr(message, "trace", None)
            if rec is None or not isinstance(trace, tuple) or trace[0] == SAMPLED_OUT:
                return
            message_id, cid, ts, _sender = trace
            rec.clock.observe(ts)
            data = {
                "message_id": message_id,
                "kind": _MESSAGE_KINDS.get(type(message).__name__, "info"),
                "to": to if isinstance(to, str) else address_text(to),
                "cause": cause,
                "why": why,
            }
            with correlation(cid) if cid else nullcontext():
                rec.emit("custom", UNDELIVERED, data)
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


_MESSAGE_KINDS = {"Call": "call", "Cast": "cast", "Info": "info"}

_LIFECYCLE_TAGS = {
    "child_started": "spawn",
    "child_exited": "exit",
    "child_terminated": "exit",
    "child_restarted": "restart",
}


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {safe_repr(error.args[0] if len(error.args) == 1 else error.args, 200)}"


_OWN_FILES = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_EXAMPLES = _OWN_FILES + "examples" + os.sep  # programs, not ElixirScope


def _raised_at(error: BaseException) -> str | None:
    """``file:line:function`` of the innermost frame of ``error``'s traceback that is the
    program's (not ElixirScope's runtime or capture); None when there is none."""
    try:
        tb, found = error.__traceback__, None
        while tb is not None:
            code = tb.tb_frame.f_code
            name = code.co_filename
            if not name.startswith(_OWN_FILES) or name.startswith(_EXAMPLES):
                found = (code.co_filename, tb.tb_lineno, code.co_qualname)
            tb = tb.tb_next
        return None if found is None else f"{found[0]}:{found[1]}:{found[2]}"
    except Exception:  # noqa: BLE001 - a strange traceback: no place rather than no event
        return None


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

    __slots__ = ("actor", "handling", "message", "rec", "scope", "trace", "tracer")

    def __init__(self, tracer: ActorTracer, rec: Any, actor: str, message: Any, trace: Any) -> None:
        self.tracer, self.rec, self.actor, self.message, self.trace = (
            tracer,
            rec,
            actor,
            message,
            trace,
        )
        self.scope: Any = None
        self.handling: Any = None

    def __enter__(self) -> None:
        try:
            message_id, cid, ts, sender = self.trace
            self.rec.clock.observe(ts)  # the receive sorts after the send, on any node
            if message_id == SAMPLED_OUT:  # sent from a chain the sampler left out
                self.scope = SampledOut().__enter__()
                return
            scope = correlation(cid)
            scope.__enter__()
            self.scope = scope
            self.handling = _handling.set(message_id)
            body = _content(self.message)
            self.rec.emit("receive", message_id, self.actor, sender, self.tracer._text(body))
        except Exception as exc:  # noqa: BLE001
            self.tracer._failed(exc)

    def __exit__(self, *exc_info: object) -> None:
        handling, self.handling = self.handling, None
        if handling is not None:
            _handling.reset(handling)
        scope, self.scope = self.scope, None
        if scope is not None:
            try:
                scope.__exit__(None, None, None)  # restore; the exception is not ours
            except Exception as exc:  # noqa: BLE001
                self.tracer._failed(exc)


def _content(envelope: Any) -> Any:
    """What a Call/Cast/Info/Reply carries (the runtime's frozen dataclasses: plain fields)."""
    fields = type(envelope).__dict__.get("__dataclass_fields__", {})
    for name in ("request", "message", "value"):
        if name in fields:
            return vars(envelope).get(name)
    return envelope


def enable_actor_capture(
    limit: int = 200,
    *,
    record_own: bool = False,
    state_limits: StateLimits = DEFAULT_LIMITS,
    keyframe_every: int = KEY_EVERY,
) -> ActorTracer:
    """Trace GenServer state and messages in this process (and processes forked later);
    ElixirScope's own actors (registry, layers) only with ``record_own``; states within
    ``state_limits``, whole every ``keyframe_every`` changes."""
    current = observe.TRACER
    if isinstance(current, ActorTracer):
        current.limit = limit
        current.record_own = record_own
        current.state_limits = state_limits
        current.keyframe_every = keyframe_every
        current._tracker = None  # the next change starts again with the new settings
        return current
    tracer = ActorTracer(limit, record_own, state_limits, keyframe_every)
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
