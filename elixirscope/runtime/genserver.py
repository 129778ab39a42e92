"""GenServer: a stateful actor with OTP's callback contract.

Callbacks and what they return (anything else crashes the actor with a
reason that says what was expected, like OTP's ``bad_return_value``)::

    init(args)                         -> state | Stop(reason) | Ignore()
    handle_call(request, from_, state) -> Reply(value, state)
                                        | NoReply(state)   # reply later: self.reply(from_, v)
                                        | Stop(reason, state, reply=v)
    handle_cast(message, state)        -> state | Stop(reason, state)
    handle_info(message, state)        -> state | Stop(reason, state)
    terminate(reason, state)           -> ignored

``handle_info`` receives timers (``send_after``), ``Down`` from monitors,
``ChildExit`` from spawned children, ``CallResult`` from ``call_async``, and
any other message. An exception in any callback is an abnormal exit whose
reason carries the exception; callers waiting on a reply get ``CallFailed``
at once instead of a timeout. A ``call_async`` still unanswered after
``MONITOR_AFTER`` monitors its server, so even a ``kill -9`` ends it with a
failed ``CallResult`` (the monitor is removed when the answer comes).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from elixirscope.runtime import messages as m
from elixirscope.runtime import observe
from elixirscope.runtime.errors import CallError, CallTimeout, MessageRefused
from elixirscope.runtime.process import MONITOR_AFTER, ProcessActor
from elixirscope.runtime.reasons import ExitReason
from elixirscope.runtime.results import NO_REPLY, Ignore, NoReply, Reply, Stop

__all__ = ["CallRef", "GenServer", "Ignore", "NoReply", "Reply", "Stop"]

log = logging.getLogger("elixirscope.runtime")
_NO_REPLY = "no reply within"
"""How a call_async's timeout reads in its failed CallResult (a relay makes it CallTimeout)."""


def _traced(msg: Any) -> bool:
    """A Call/Cast/Info/Reply carrying a capture trace (identity tests: no user __eq__ runs)."""
    t = type(msg)
    return (t is m.Call or t is m.Cast or t is m.Info or t is m.Reply) and msg.trace is not None


@dataclass(frozen=True)
class CallRef:
    """Who is waiting for a reply: pass it to ``reply`` to answer later."""

    caller: Any
    ref: str


class BadReturn(TypeError):
    """A callback returned a shape outside its contract."""


class GenServer(ProcessActor):
    """Subclass and implement the callbacks; see the module docstring."""

    state: Any = None
    internal = False  # ElixirScope's own actor: left out of recordings (observe.tracer_for)
    unwraps_info = True  # a traced Info is unwrapped in _deliver (a recorded delivery's too)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[str, Any] = {}  # call ref -> caller, for calls not yet answered
        self._call_traces: dict[str, Any] = {}  # pending call ref -> its capture trace, if traced
        self._outgoing: dict[str, Any] = {}  # call_async ref -> server address
        self._call_monitors: dict[str, str] = {}  # monitor ref -> call_async ref it watches for
        # call_async ref -> (the caller its answer goes to, server, request, timeout): relays
        self._relays: dict[str, tuple[CallRef, Any, Any, float]] = {}

    # ----------------------------------------------------------- callbacks
    def init(self, args: Any) -> Any:
        return args

    def handle_call(self, request: Any, from_: CallRef, state: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not handle calls (got {request!r})")

    def handle_cast(self, message: Any, state: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not handle casts (got {message!r})")

    def handle_info(self, message: Any, state: Any) -> Any:
        log.debug("%s ignored %r", self.path or type(self).__name__, message)
        return state

    def terminate(self, reason: ExitReason, state: Any) -> None:
        return None

    # ------------------------------------------------------------- helpers
    def reply(self, from_: CallRef, value: Any) -> bool:
        """Answer a call that returned NoReply; False if that caller was already answered."""
        caller = self._pending.pop(from_.ref, None)
        if caller is None:
            return False
        trace = None
        if self._call_traces:  # the call came traced: capture may link its reply
            call = self._call_traces.pop(from_.ref, None)
            tracer = observe.tracer_for(self)
            if call is not None and tracer is not None:
                trace = tracer.replying(self.path or None, caller, value, call)
        self.send(caller, m.Reply(from_.ref, value, trace))
        return True

    def call(self, address: Any, request: Any, timeout: float = 5.0) -> Any:
        """Not here: an actor handles one message at a time, so a callback cannot wait for
        another actor's reply (it would arrive in this actor's own mailbox, behind the
        callback waiting for it). Said plainly rather than as a missing attribute."""
        raise TypeError(
            f"{type(self).__name__}.call: a GenServer cannot wait inside a callback for "
            f"another actor's reply (the reply would queue behind the callback). Use "
            f"self.call_async(address, request) and handle its CallResult in handle_info "
            f"(return NoReply(state) from handle_call, then self.reply(from_, value)); "
            f"rt.call is for code outside actors"
        )

    def call_async(
        self, address: Any, request: Any, timeout: float = 5.0, *, reply_to: CallRef | None = None
    ) -> str:
        """Call another actor without blocking; a CallResult with the ref reaches handle_info.

        ``address`` may be a registered name: the registry passes the call to its owner,
        and a name nobody holds fails the call with ``noproc``.

        ``reply_to``: the ``from_`` of a call this one serves (its ``handle_call`` returned
        ``NoReply``): the answer goes straight to that caller instead of ``handle_info`` —
        the value, or the failure as its ``rt.call`` would raise it (``CallError``,
        ``CallTimeout``) — what a callback that cannot wait for a call does instead."""
        ref = uuid.uuid4().hex
        self._outgoing[ref] = address
        if reply_to is not None:
            self._relays[ref] = (reply_to, address, request, timeout)
        tracer = observe.tracer_for(self)
        trace = None if tracer is None else tracer.sending(self.path or None, address, request)
        self.send(address, m.Call(ref, request, trace, caller=self.myAddress))
        self._wakeup(timeout, ("call_timeout", ref, timeout))
        if timeout > MONITOR_AFTER and not isinstance(address, str):
            # still unanswered then: watch the server, as gen:call does (a name is not watched)
            self._wakeup(MONITOR_AFTER, ("call_monitor", ref))
        return ref

    def whereis(self, name: str, timeout: float = 5.0) -> Any:
        """Not here, as :meth:`call`: the registry's answer would queue behind the callback."""
        raise TypeError(
            f"{type(self).__name__}.whereis: a GenServer cannot wait inside a callback for "
            f"the registry's answer. Call or cast to the name itself - "
            f"self.call_async({name!r}, request), self.cast({name!r}, message) - or ask for "
            f"its address with self.whereis_async({name!r}) and take the CallResult "
            f"(value: the address, or None) in handle_info; rt.whereis is for code outside actors"
        )

    def whereis_async(self, name: str, timeout: float = 5.0) -> str:
        """Ask the registry for ``name``'s owner; a CallResult with the ref (its value the
        address, or None) reaches handle_info."""
        registry = self.registry
        if registry is None:  # none up: said at once, not after the timeout
            ref = uuid.uuid4().hex
            self._outgoing[ref] = name
            self._wakeup(0, ("call_failed", ref, f"no registry is up to find {name!r}"))
            return ref
        return self.call_async(registry, ("whereis", name), timeout)

    def _call_ended(self, ref: str) -> Any:
        """Forget an outgoing call (and its monitor); its server's address, None if unknown."""
        address = self._outgoing.pop(ref, None)
        for mref, watched in list(self._call_monitors.items()):
            if watched == ref:
                del self._call_monitors[mref]
                self.demonitor(mref)
        return address

    def cast(self, address: Any, message: Any) -> None:
        """``address`` may be a registered name (a cast to a name nobody holds is dropped,
        as OTP's is, and counted in the registry's ``unrouted``)."""
        tracer = observe.tracer_for(self)
        trace = None if tracer is None else tracer.sending(self.path or None, address, message)
        self.send(address, m.Cast(message, trace))

    # --------------------------------------------------------- base hooks
    def _start(self, args: Any) -> Any:
        result = self._invoke("init", args, self.init, args, before=None)
        if not isinstance(result, (Stop, Ignore)):
            self.state = result
        return result

    def _terminate(self, reason: ExitReason) -> None:
        self._invoke("terminate", reason, self.terminate, reason, self.state)

    def _fail_pending(self, reason: ExitReason) -> None:
        for ref, caller in self._pending.items():
            self.send(caller, m.CallFailed(ref, reason))
        self._pending.clear()
        self._call_traces.clear()

    def _send_refused(self, message: Any, why: str, receiver: Any) -> None:
        """A call whose request was refused fails at once; a reply that was refused is
        replaced by :class:`MessageRefused`, so neither caller waits out its timeout."""
        if isinstance(message, m.Call) and self._call_ended(message.ref) is not None:
            self._info(m.CallResult(message.ref, ok=False, reason=why))
        elif isinstance(message, m.Reply) and not isinstance(message.value, MessageRefused):
            refused = MessageRefused(f"the reply to this call could not be delivered: {why}")
            self.send(receiver, m.Reply(message.ref, refused, message.trace))  # its recorded send
        else:
            super()._send_refused(message, why, receiver)

    def _on_link_exit(self, address: Any, reason: ExitReason) -> None:
        self._info(m.ChildExit(address, reason))

    def _on_child_ack(self, address: Any, ack: m.InitAck) -> None:
        self._info(ack)

    def _on_wakeup(self, payload: Any) -> None:
        if payload[0] == "call_timeout" and self._call_ended(payload[1]) is not None:
            reason = f"{_NO_REPLY} {payload[2]} s"
            self._info(m.CallResult(payload[1], ok=False, reason=reason))
        elif payload[0] == "call_failed" and self._call_ended(payload[1]) is not None:
            self._info(m.CallResult(payload[1], ok=False, reason=payload[2]))
        elif payload[0] == "call_monitor" and payload[1] in self._outgoing:
            self._call_monitors[self.monitor(self._outgoing[payload[1]])] = payload[1]

    def _on_message(self, msg: Any, sender: Any) -> None:
        tracer = observe.tracer_for(self)
        if tracer is not None and _traced(msg):
            with tracer.receiving(self._actor_name(), msg, msg.trace):
                try:
                    self._deliver(msg, sender)
                except BaseException:  # a crash: its exit is told in this message's chain
                    self._crash_chain = tracer.chain()
                    raise
        else:
            if observe.TRACER is not None and _traced(msg):  # one of ElixirScope's own
                observe.TRACER.received(self._actor_name(), msg, msg.trace)
            self._deliver(msg, sender)

    def _deliver(self, msg: Any, sender: Any) -> None:
        if type(msg) is m.Info:  # a raw message, traced: what it carries is the info
            msg = msg.message
        if isinstance(msg, m.Call):
            self._call(msg, sender)
        elif isinstance(msg, m.Cast):
            self._noreply("handle_cast", msg.message, self.handle_cast)
        elif isinstance(msg, (m.Reply, m.CallFailed)) and msg.ref in self._outgoing:
            self._call_ended(msg.ref)
            if isinstance(msg, m.Reply):
                self._info(m.CallResult(msg.ref, ok=True, value=msg.value))
            else:
                self._info(m.CallResult(msg.ref, ok=False, reason=msg.reason))
        elif isinstance(msg, m.Down) and msg.ref in self._call_monitors:
            ref = self._call_monitors.pop(msg.ref)
            if self._call_ended(ref) is not None:
                self._info(m.CallResult(ref, ok=False, reason=msg.reason))
        else:
            self._info(msg)

    # ------------------------------------------------------------ dispatch
    def _call(self, msg: m.Call, sender: Any) -> None:
        if msg.caller is not None and self._registry.is_registry(sender):
            sender = msg.caller  # a call to our registered name, passed on by the registry
        from_ = CallRef(sender, msg.ref)
        self._pending[msg.ref] = sender
        if msg.trace is not None:
            self._call_traces[msg.ref] = msg.trace
        result = self._invoke(
            "handle_call", msg.request, self.handle_call, msg.request, from_, self.state
        )
        if isinstance(result, Reply):
            self.state = result.state
            self.reply(from_, result.value)
        elif isinstance(result, NoReply):
            self.state = result.state
        elif isinstance(result, Stop):
            self.state = result.state
            if result.reply is not NO_REPLY:
                self.reply(from_, result.reply)
            self._exit(ExitReason.coerce(result.reason))
        else:
            raise BadReturn(
                "handle_call must return Reply(value, state), NoReply(state) or "
                f"Stop(reason, state); got {result!r}"
            )

    def _info(self, message: Any) -> None:
        if type(message) is m.CallResult and message.ref in self._relays:
            self._relay(message)
            return
        self._noreply("handle_info", message, self.handle_info)

    def _relay(self, result: m.CallResult) -> None:
        """A relayed call's answer, to the caller it was made for (see ``call_async``)."""
        from_, address, request, timeout = self._relays.pop(result.ref)
        if result.ok:
            self.reply(from_, result.value)
        elif isinstance(result.reason, ExitReason):
            self.reply(from_, CallError(address, request, result.reason))
        elif str(result.reason).startswith(_NO_REPLY):  # our own timeout's (_on_wakeup)
            self.reply(from_, CallTimeout(address, request, timeout))
        else:  # refused, or no registry up to find a name: said as it was
            self.reply(from_, CallError(address, request, ExitReason("noproc", str(result.reason))))

    def _noreply(self, callback: str, message: Any, fn: Any) -> None:
        result = self._invoke(callback, message, fn, message, self.state)
        if isinstance(result, Stop):
            self.state = result.state
            self._exit(ExitReason.coerce(result.reason))
        elif isinstance(result, (Reply, NoReply)):
            raise BadReturn(
                f"{callback} must return the new state or Stop(reason, state); got {result!r}"
            )
        else:
            self.state = result

    def _invoke(
        self, callback: str, message: Any, fn: Any, *args: Any, before: Any = NO_REPLY
    ) -> Any:
        """Run a callback; tell observers what it saw and did (near free when none)."""
        tracer = observe.tracer_for(self)
        if tracer is None and not observe.OBSERVERS:
            return fn(*args)
        state_before = self.state if before is NO_REPLY else before
        # rendered before the callback runs: it may mutate the state in place; terminate's
        # reason recorded as it reads ('shutdown'), not as its five fields, most empty
        token = (
            None
            if tracer is None
            else tracer.begin(
                self._actor_name(),
                callback,
                str(message) if callback == "terminate" else message,
                state_before,
            )
        )
        started = time.perf_counter_ns()
        try:
            result = fn(*args)
        except BaseException as exc:
            if tracer is not None and token is not None:
                tracer.end(token, state_before, exc)
            self._observed(callback, message, state_before, state_before, None, started, exc)
            raise
        if callback == "terminate":
            after = state_before
        elif isinstance(result, (Reply, NoReply, Stop)):
            after = result.state
        else:
            after = None if isinstance(result, Ignore) else result
        if tracer is not None and token is not None:
            tracer.end(token, after)
        self._observed(callback, message, state_before, after, result, started, None)
        return result

    def _actor_name(self) -> str:
        return self.path or str(self.myAddress)

    def _observed(self, callback, message, before, after, result, started, exc) -> None:  # noqa: ANN001
        observe.notify(
            observe.CallbackRecord(
                actor=self.path or str(self.myAddress),
                actor_class=f"{type(self).__module__}.{type(self).__qualname__}",
                callback=callback,
                message=message,
                state_before=before,
                state_after=after,
                result=result,
                duration_ns=time.perf_counter_ns() - started,
                exception=exc,
            )
        )
