"""Plain Thespian actors, recorded: each send and receive, linked, and the actor's state
after each message.

A plain Thespian actor (``thespian.actors.Actor``, not a GenServer of
``elixirscope.runtime``, whose messages and state the runtime's tracer records) sends
the program's own objects, with no envelope of ours to carry a link. So :func:`enable`
wraps Thespian's own steps and changes nothing that is sent:

- ``Actor.send`` records a ``send`` (from the actor's name, to the target's address,
  the message's safe text) in the sender's chain (a new one if it has none);
- on ``simpleSystemBase`` (every actor in the caller's thread) the ``PendingSend``
  Thespian queues the send as takes the send's trace, and
  ``_callActorWithMessage`` records the ``receive`` with the send's id and runs the
  handling in the sender's chain: the links are exact;
- on the multiprocess bases (one process an actor) ``ActorManager._handleOneMessage``
  records the ``receive``. Only the message crosses the processes, so both sides name a
  message by one recipe (:func:`message_id`): a digest of the sender's address, the
  receiver's, the message's place among those sent between the two and its text. A
  message Thespian could not deliver moves the places of the later ones between the same
  two actors: their digests then differ (the text is in them), so those receives stand
  unlinked rather than linked to the wrong send. Each handling starts a chain of its own.
- after each message it handled, the actor's state (its fields, without the ``_myRef``
  and ``_receive`` Thespian keeps on it) as a ``state`` event, as a GenServer's is
  recorded: a delta from the previous one, whole every so often; the first message is
  preceded by the state ``__init__`` left; the callback is the ``receiveMsg_<Type>``
  an ``ActorTypeDispatcher`` ran, else ``receiveMessage``. On ``simpleSystemBase`` a
  message that raised carries its error and the program's line (Thespian hands it
  again, a change each time, then returns it to its sender as a ``PoisonMessage``, a
  receive of its own).
- between a plain actor and a GenServer the runtime traces, the program's messages
  (not the runtime's envelopes, which its tracer links by the trace they carry) are
  linked the same way: a GenServer's ``self.send`` is recorded under its path, and a
  GenServer is handed what it receives in the runtime's traced ``Info`` (the trace
  naming its send), which it unwraps before ``handle_info`` as it does any; a plain
  actor is handed what an ``Info`` carries (``System.send`` wraps a raw message in one
  while this is on: ``observe.PLAIN_ACTORS_UNWRAP_INFO``).

An actor is named ``Class@address`` (``Counter@ActorAddr-/A~a``); ``elixirscope state
Counter`` finds it when it is the only ``Counter``. Thespian's own actors and messages
(``ActorExitRequest``, ``WakeupMessage``, ``ChildActorExited``...) are recorded as
receives, each with an id of its own (Thespian sends them, not ``Actor.send``).

Every step swallows its own errors (counted in :data:`STATS`): the message is sent and
handled exactly as it would be. ``elixirscope run`` enables this once the program imports
``thespian.actors``, unless ``integrations.thespian = false``; in code, :func:`enable`
before the actor system starts (its actor processes are forked with it on).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import sys
import threading
from collections.abc import Callable
from typing import Any

from elixirscope.capture import recorder
from elixirscope.capture.context import correlation, current_correlation_id, new_correlation_id
from elixirscope.capture.values import address_text, safe_repr
from elixirscope.contracts.trace import REGISTERED
from elixirscope.runtime import observe
from elixirscope.runtime.messages import Info
from elixirscope.state.capture import DEFAULT_LIMITS, FRAMEWORK_FIELDS, StateLimits
from elixirscope.state.tracker import KEY_EVERY, StateTracker

__all__ = ["STATS", "actor_name", "disable", "enable", "enabled", "message_id"]

STATS: dict[str, Any] = {"sent": 0, "received": 0, "unlinked": 0, "errors": 0, "last_error": ""}
MESSAGE_LIMIT = 200
MAX_PAIRS = 100_000
"""Pairs of actors whose messages one process numbers; beyond, a new pair's are unlinked
(counted in ``STATS["unlinked"]``), so a program creating actors without end keeps a
bounded table."""
CALLBACK = "receiveMessage"
FIRST = "__init__"


def _failed(exc: BaseException) -> None:
    STATS["errors"] += 1
    STATS["last_error"] = f"{type(exc).__name__}: {exc}"


def message_id(sender: str, receiver: str, place: int, text: str) -> str:
    """The id both sides give the ``place``-th message (from 0) ``sender`` sent
    ``receiver`` (addresses as text), whose safe text is ``text``."""
    key = f"{sender}\0{receiver}\0{place}\0{text}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def actor_name(instance: Any) -> str:
    """``Class@address``: how the recording names a plain Thespian actor."""
    return f"{type(instance).__qualname__}@{address_text(instance.myAddress)}"


def _program_actor(instance: Any) -> bool:
    """An actor of the program's: not Thespian's own, not a GenServer of the runtime."""
    t = type(instance)
    return not getattr(t, "traced_by_runtime", False) and not t.__module__.startswith("thespian.")


def _global_name(actor: Any) -> str | None:
    """The ``globalName`` the actor was created with, read from Thespian's records: its
    actor manager's on a multiprocess base, the system's table on ``simpleSystemBase``."""
    ref = vars(actor).get("_myRef")
    name = getattr(ref, "globalName", None)
    if isinstance(name, str):
        return name
    system = getattr(ref, "_system", None)  # the ActorSystem, whose base keeps the table
    table = getattr(getattr(system, "_systemBase", system), "_globalNames", None)
    address = getattr(ref, "_addr", None)
    if isinstance(table, dict) and address is not None:
        for known, where in list(table.items()):
            if where is address or where == address:
                return known if isinstance(known, str) else None
    return None


def _handler(actor_class: type, message_class: type) -> str:
    dispatcher = next(
        (
            c
            for c in actor_class.__mro__
            if c.__name__ == "ActorTypeDispatcher" and c.__module__ == "thespian.actors"
        ),
        None,
    )
    own = getattr(actor_class, "receiveMessage", None)
    if dispatcher is None or own is not dispatcher.__dict__.get("receiveMessage"):
        return CALLBACK  # not a dispatcher, or one whose receiveMessage is the program's
    for each in message_class.__mro__:
        if hasattr(actor_class, "receiveMsg_" + each.__name__):
            return "receiveMsg_" + each.__name__
    return (
        "receiveUnrecognizedMessage"
        if hasattr(actor_class, "receiveUnrecognizedMessage")
        else CALLBACK
    )


def _thespians(message: Any) -> bool:
    """One of Thespian's messages (its own ``send`` paths, never ``Actor.send`` alone)."""
    return type(message).__module__.startswith("thespian.")


_RUNTIME_MESSAGES = Info.__module__


def _runtimes(message: Any) -> bool:
    """One of the runtime's envelopes (``Cast``, ``Info``...): its tracer links them by the
    trace they carry, so neither side counts them among a pair's messages."""
    return type(message).__module__ == _RUNTIME_MESSAGES


def _counted(message: Any) -> bool:
    """A message both sides of a pair count, to name it by its place: the program's own."""
    return not _thespians(message) and not _runtimes(message)


def _runtime_actor(actor: Any) -> bool:
    """A GenServer (or other process) of the runtime: its envelopes are its tracer's."""
    return getattr(type(actor), "traced_by_runtime", False)


def _runtime_name(actor: Any) -> str:
    """A runtime actor's name as its tracer records it: its path, else its address."""
    named = getattr(actor, "_actor_name", None)
    return named() if callable(named) else getattr(actor, "path", "") or str(actor.myAddress)


def _sent_trace(envelope: Any) -> tuple | None:
    """The trace a runtime envelope carries, when it links a receive to its send (not
    one the sampler left out: its id is empty, ``capture.actors.SAMPLED_OUT``; that
    module is not imported here, as it installs the runtime's tracer once imported)."""
    trace = getattr(envelope, "trace", None)
    if type(trace) is tuple and len(trace) == 4 and trace[0]:
        return trace
    return None


def _carried(message: Any) -> Any:
    """What a plain actor is handed: a traced ``Info``'s message (``System.send`` wraps a
    raw message so when a plain actor may get it), any other message as it is."""
    return message.message if type(message) is Info else message


def _takes_info(actor: Any, message: Any) -> bool:
    """A program's message to a GenServer the runtime traces, handed to it in a traced
    ``Info`` (its receive then linked to the send, as a GenServer's envelopes are)."""
    return (
        getattr(type(actor), "unwraps_info", False)
        and _counted(message)
        and observe.tracer_for(actor) is not None
    )


class _Places:
    """Each pair's count of messages so far, on one side (bounded by :data:`MAX_PAIRS`)."""

    def __init__(self) -> None:
        self._next: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def take(self, sender: str, receiver: str) -> int | None:
        pair = (sender, receiver)
        with self._lock:
            place = self._next.get(pair)
            if place is None:
                if len(self._next) >= MAX_PAIRS:
                    return None
                place = 0
            self._next[pair] = place + 1
        return place


class _Outgoing(threading.local):
    """The trace of the send this thread is making (None: none), for the record Thespian
    makes of it; a class default, so that reading it when unset costs no exception."""

    trace: Any = None


class ThespianRecorder:
    """What the wrapped steps record through; one a process (forked children share it)."""

    def __init__(self, state_limits: StateLimits, keyframe_every: int) -> None:
        self.state_limits, self.keyframe_every = state_limits, keyframe_every
        self._tracker: StateTracker | None = None
        self._tracker_for: tuple[Any, int] = (None, 0)
        self.sent = _Places()
        self.received = _Places()
        self.outgoing = _Outgoing()  # Actor.send -> the PendingSend / TransmitIntent it makes
        self.names: dict[str, str] = {}  # address -> name, of the actors this process named
        self._callbacks: dict[tuple[type, type], str] = {}

    def callback(self, actor: Any, message: Any) -> str:
        """The method that handled ``message``: an ``ActorTypeDispatcher``'s
        ``receiveMsg_<Type>`` (the message's class or the nearest base it has one for,
        as Thespian looks), else ``receiveMessage``."""
        key = (type(actor), type(message))
        found = self._callbacks.get(key)
        if found is None:
            found = _handler(*key)
            if len(self._callbacks) < MAX_PAIRS:
                self._callbacks[key] = found
        return found

    def tracker(self, rec: Any) -> StateTracker:
        """The state mirrors of this recording in this process (new after a fork or in a
        new run: each starts again with whole states), as the runtime's tracer keeps."""
        owner = (rec, os.getpid())
        if self._tracker is None or self._tracker_for != owner:
            self._tracker = StateTracker(self.state_limits, self.keyframe_every)
            self._tracker_for = owner
        return self._tracker

    def name(self, actor: Any) -> str:
        """:func:`actor_name` (a runtime actor's: its path), remembered under its address
        (a receipt from it then names it: a ``PoisonMessage`` Thespian returns for it, a
        message from another process)."""
        if _runtime_actor(actor):
            name, address = _runtime_name(actor), address_text(actor.myAddress)
        else:
            name = actor_name(actor)
            address = name.partition("@")[2]
        if len(self.names) < MAX_PAIRS:
            self.names[address] = name
        return name

    # ------------------------------------------------------------------ sends

    def sending(
        self, actor: Any, target: Any, message: Any, crosses: bool
    ) -> tuple | _Unsettled | None:
        """Record ``actor`` sending ``message`` to ``target``; returns the send's trace
        ``(message_id, correlation_id, hlc_ts, sender_name)`` (None: not recorded).

        ``crosses``: the receiver may be in another process, where only the message
        arrives. Its id is then :func:`message_id`, which needs the receiver's own
        address: the send is returned unsettled (:class:`_Unsettled`) and recorded, with
        this moment's time, chain and call, once Thespian knows where it goes."""
        rec = recorder.recording()
        if rec is None or not (_program_actor(actor) or _runtime_actor(actor)):
            return None
        name = self.name(actor)
        text = safe_repr(message, MESSAGE_LIMIT)
        cid = current_correlation_id() or new_correlation_id()
        if crosses and _counted(message):
            with correlation(cid):
                envelope = rec.envelope("send")
            return _Unsettled(self, rec, envelope, address_text(actor.myAddress), name, text)
        mid = new_correlation_id()
        with correlation(cid):
            rec.emit("send", mid, name, address_text(target), text)
        STATS["sent"] += 1
        return (mid, cid, rec.clock.now(), name)

    # ------------------------------------------------------------------ receives

    def receiving(
        self, actor: Any, message: Any, sender: Any, trace: tuple | None, apart: bool = False
    ) -> Any:
        """Record ``actor``'s receipt of ``message`` and enter its handling's chain: the
        sender's (``trace``), else the running one, else a new one; ``apart`` (an actor's
        own process, whose running chain is whatever it was forked in): a new one.
        Returns what :meth:`handled` takes (None: not recorded)."""
        rec = recorder.recording()
        if rec is None or not _program_actor(actor):
            return None
        name = self.name(actor)
        text = safe_repr(message, MESSAGE_LIMIT)
        if trace is not None:
            mid, cid, ts, from_name = trace
            rec.clock.observe(ts)  # the receive sorts after its send
        else:
            mid, cid, from_name = self._arrival(actor, message, sender, text, apart)
        scope = correlation(cid)
        scope.__enter__()
        try:
            if name not in self.tracker(rec):
                self._state(rec, name, FIRST, "", None, actor)  # the first "before"
                known_as = _global_name(actor)
                if known_as:  # `elixirscope state NAME` finds it, as a registered GenServer
                    rec.emit("custom", REGISTERED, {"actor": name, "name": known_as})
            rec.emit("receive", mid, name, from_name, text)
            STATS["received"] += 1
        except BaseException:
            scope.__exit__(None, None, None)
            raise
        return (scope, rec, name, text, mid, message)

    def _arrival(
        self, actor: Any, message: Any, sender: Any, text: str, apart: bool
    ) -> tuple[str, str, str]:
        """``(message_id, correlation_id, sender_name)`` of a message that came without its
        send's trace: its id by :func:`message_id` (what the sender's side gave it, when it
        crossed from another process), its chain the running one (a new one ``apart``)."""
        mid, address = None, address_text(sender)
        if _counted(message):
            here = address_text(actor.myAddress)
            place = self.received.take(address, here)
            if place is None:
                STATS["unlinked"] += 1
            else:
                mid = message_id(address, here, place, text)
        cid = (None if apart else current_correlation_id()) or new_correlation_id()
        return mid or new_correlation_id(), cid, self.names.get(address, address)

    def traced_info(
        self, actor: Any, message: Any, sender: Any, trace: tuple | None, apart: bool
    ) -> Any:
        """What a GenServer the runtime traces is handed for a program's ``message``: a
        traced ``Info`` (its receive recorded by the runtime's tracer, linked to the send
        by ``trace``, else by :meth:`_arrival`); the message itself when not recording."""
        rec = recorder.recording()
        if rec is None:
            return message
        if trace is None:
            mid, cid, from_name = self._arrival(
                actor, message, sender, safe_repr(message, MESSAGE_LIMIT), apart
            )
            trace = (mid, cid, rec.clock.now(), from_name)
        STATS["received"] += 1
        return Info(message, trace)

    def handled(self, token: Any, actor: Any, failure: str | None = None) -> None:
        """The state the message left (with the error it raised: ``failure``, Thespian's
        traceback text of it), then its chain left."""
        scope, rec, name, text, mid, message = token
        try:
            self._state(rec, name, self.callback(actor, message), text, mid, actor, failure)
        finally:
            scope.__exit__(None, None, None)

    def _state(
        self,
        rec: Any,
        name: str,
        callback: str,
        text: str,
        mid: str | None,
        actor: Any,
        failure: str | tuple[str, str | None] | None = None,
    ) -> None:
        """A ``state`` event as the runtime's tracer writes a GenServer's (its tracker);
        ``failure``: Thespian's traceback text of what the handler raised, or its
        ``(Type: message, file:line:function)``."""
        seq, key, delta, _ = self.tracker(rec).record(name, actor)
        if failure is None:
            error, raised_at = None, None
        elif isinstance(failure, tuple):
            error, raised_at = failure
        else:
            error, raised_at = _failure(failure)
        rec.emit(
            "state",
            name,
            callback,
            text,
            None,
            _state_text(actor),
            seq,
            key,
            delta,
            mid,
            error,
            raised_at,
        )


def _state_text(actor: Any) -> str:
    """``Ledger(entries=[10], balance=10)``: the actor's fields as its state shows them
    (without what Thespian keeps on it), within :data:`MESSAGE_LIMIT`."""
    hidden = FRAMEWORK_FIELDS["thespian.actors.Actor"]
    fields = ", ".join(
        f"{k}={safe_repr(v, MESSAGE_LIMIT)}" for k, v in vars(actor).items() if k not in hidden
    )
    text = f"{type(actor).__qualname__}({fields})"
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


class _Unsettled:
    """A send to another process, recorded once its receiver's address is known (Thespian
    resolves a child's address only once the child runs): :meth:`settle`."""

    __slots__ = ("envelope", "name", "places", "rec", "sender", "text")

    def __init__(
        self, owner: ThespianRecorder, rec: Any, envelope: tuple, sender: str, name: str, text: str
    ) -> None:
        self.places, self.rec, self.envelope = owner.sent, rec, envelope
        self.sender, self.name, self.text = sender, name, text

    def settle(self, target: Any, delivered: bool = True) -> None:
        """The send, to ``target`` (its address now); not ``delivered``: Thespian gave it
        up before knowing where it went (an id of its own, no receive will have it)."""
        to = address_text(target)
        place = self.places.take(self.sender, to) if delivered else None
        if place is None:
            STATS["unlinked"] += 1
            mid = new_correlation_id()
        else:
            mid = message_id(self.sender, to, place, self.text)
        self.rec.ring.append((*self.envelope, mid, self.name, to, self.text))
        STATS["sent"] += 1


_RECORDER: ThespianRecorder | None = None
_UNDO: list[Callable[[], None]] = []
_WATCHES: list[Any] = []


def enabled() -> bool:
    return _RECORDER is not None


def enable(
    state_limits: StateLimits | tuple[int, int, int, int] = DEFAULT_LIMITS,
    keyframe_every: int = KEY_EVERY,
) -> bool:
    """Record plain Thespian actors in this process and processes forked after; False if
    already on. ``state_limits``: a :class:`StateLimits` or its four numbers (depth,
    items, string, bytes), as ``elixirscope run`` reads them from ``[state]``."""
    global _RECORDER
    if _RECORDER is not None:
        return False
    if not isinstance(state_limits, StateLimits):
        state_limits = StateLimits(*state_limits)
    from elixirscope.capture.on_import import when_imported

    try:
        actors = sys.modules.get("thespian.actors") or importlib.import_module("thespian.actors")
        _RECORDER = ThespianRecorder(state_limits, keyframe_every)
        _UNDO.append(_replace(actors.Actor, "send", _recorded_send))
    except Exception as exc:  # noqa: BLE001 - counted where the run says it, not "database"
        _RECORDER = None
        _failed(exc)
        return False
    _WATCHES.append(when_imported("thespian.system.simpleSystemBase", _simple_base_on))
    _WATCHES.append(when_imported("thespian.system.actorManager", _actor_manager_on))
    observe.PLAIN_ACTORS_UNWRAP_INFO = True
    return True


def disable() -> bool:
    """Put Thespian back as it was; False if it was not on."""
    global _RECORDER
    if _RECORDER is None:
        return False
    for watch in _WATCHES:
        watch.cancel()
    _WATCHES.clear()
    while _UNDO:
        _UNDO.pop()()
    _RECORDER = None
    observe.PLAIN_ACTORS_UNWRAP_INFO = False
    return True


def _replace(owner: Any, name: str, make: Callable[[Any], Any]) -> Callable[[], None]:
    original = owner.__dict__[name]
    replacement = make(original)
    replacement.__wrapped__ = original
    setattr(owner, name, replacement)
    return lambda: setattr(owner, name, original)


def _on(turn_on: Callable[[Any], None]) -> Callable[[Any], None]:
    def enable_part(module: Any) -> None:
        try:
            if _RECORDER is not None:
                turn_on(module)
        except Exception as exc:  # noqa: BLE001 - the program's import never fails for it
            _failed(exc)

    return enable_part


# ---------------------------------------------------------------------- Actor.send


def _recorded_send(original: Any) -> Any:
    def send(self: Any, targetAddr: Any, msg: Any) -> Any:
        rec = _RECORDER
        if rec is None:
            return original(self, targetAddr, msg)
        if getattr(type(self), "traced_by_runtime", False) and not (
            _counted(msg) and observe.tracer_for(self) is not None
        ):  # a GenServer's envelope (its tracer's), or an actor of ElixirScope's own
            return original(self, targetAddr, msg)
        trace = None
        try:
            crosses = type(self._myRef).__module__ != "thespian.system.simpleSystemBase"
            trace = rec.sending(self, targetAddr, msg, crosses)
        except Exception as exc:  # noqa: BLE001
            _failed(exc)
        if trace is None:
            return original(self, targetAddr, msg)
        rec.outgoing.trace = trace  # taken by the PendingSend / TransmitIntent it makes
        try:
            return original(self, targetAddr, msg)
        finally:
            rec.outgoing.trace = None

    return send


# ---------------------------------------------------------------------- simpleSystemBase


def _simple_base_on(module: Any) -> None:
    _UNDO.append(_replace(module.PendingSend, "__init__", _traced_pending_send))
    _UNDO.append(_replace(module.ActorSystemBase, "_callActorWithMessage", _recorded_delivery))


def _traced_pending_send(original: Any) -> Any:
    def __init__(self: Any, sender: Any, msg: Any, toActor: Any) -> None:
        original(self, sender, msg, toActor)
        rec = _RECORDER
        if rec is not None:
            trace = rec.outgoing.trace
            if trace is not None:
                rec.outgoing.trace = None  # one send, one PendingSend
                self._elixirscope_trace = trace

    return __init__


def _recorded_delivery(original: Any) -> Any:
    def _callActorWithMessage(self: Any, tgt: Any, ps: Any, msg: Any, sndr: Any) -> Any:
        rec = _RECORDER
        token = None
        delivered = msg
        try:
            actor = tgt.instance
            if rec is not None and actor is not None:
                if _program_actor(actor):
                    delivered = _carried(msg)
                    token = _simple_receipt(rec, actor, ps, msg, sndr)
                elif _takes_info(actor, msg):
                    trace = getattr(ps, "_elixirscope_trace", None) if msg is ps.msg else None
                    delivered = rec.traced_info(actor, msg, sndr, trace, apart=False)
        except Exception as exc:  # noqa: BLE001
            _failed(exc)
        if token is None:
            return original(self, tgt, ps, delivered, sndr)
        attempts = ps.attempts
        try:
            return original(self, tgt, ps, delivered, sndr)
        finally:
            try:
                raised = ps.attempts > attempts  # Thespian counts a failed delivery so
                rec.handled(token, actor, getattr(ps, "fail_details", "") if raised else None)  # type: ignore[union-attr]
            except Exception as exc:  # noqa: BLE001
                _failed(exc)

    return _callActorWithMessage


def _simple_receipt(rec: ThespianRecorder, actor: Any, ps: Any, msg: Any, sndr: Any) -> Any:
    """The receipt of one delivery on ``simpleSystemBase``: the send's own trace; a
    message Thespian hands again after it raised is the same receipt (no second
    ``receive``: its state only); one Thespian made of it (a ``PoisonMessage`` back to the
    sender, a ``DeadEnvelope``) is a receipt of its own in the send's chain."""
    trace = getattr(ps, "_elixirscope_trace", None)
    if msg is not ps.msg:
        sender = rec.names.get(address_text(sndr), address_text(sndr))
        trace = None if trace is None else (new_correlation_id(), trace[1], trace[2], sender)
        return rec.receiving(actor, msg, sndr, trace)
    if _runtimes(msg):  # a runtime's envelope: linked by its trace; an Info by what it carries
        trace, msg = _sent_trace(msg), _carried(msg)
    if ps.attempts and trace is not None:
        scope = correlation(trace[1])
        scope.__enter__()
        recording = recorder.recording()
        if recording is None:
            scope.__exit__(None, None, None)
            return None
        return (scope, recording, rec.name(actor), safe_repr(msg, MESSAGE_LIMIT), trace[0], msg)
    return rec.receiving(actor, msg, sndr, trace)


_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>.+)$')


def _failure(traceback_text: Any) -> tuple[str, str | None]:
    """``(Type: message, file:line:function)`` from a traceback's text: its last line,
    and its innermost frame of the program's (not Thespian's, not ElixirScope's)."""
    lines = [line for line in str(traceback_text or "").splitlines() if line.strip()]
    error = lines[-1].strip() if lines else "an exception"
    kind, colon, message = error.partition(":")
    if colon:
        error = f"{kind.rsplit('.', 1)[-1]}:{message}"
    place = None
    for line in lines:
        frame = _FRAME.match(line)
        if frame and not frame["file"].startswith(_not_the_programs()):
            place = f"{frame['file']}:{frame['line']}:{frame['function'].strip()}"
    return error, place


def _not_the_programs() -> tuple[str, ...]:
    """Where Thespian's and ElixirScope's files are (ElixirScope's examples are programs)."""
    import thespian

    return (os.path.dirname(thespian.__file__) + os.sep, _OWN)


_OWN = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


# ---------------------------------------------------------------------- multiprocess bases


def _actor_manager_on(module: Any) -> None:
    _UNDO.append(_replace(module.ActorManager, "_handleOneMessage", _recorded_handling))
    intent = sys.modules["thespian.system.transport"].TransmitIntent
    _UNDO.append(_replace(intent, "__init__", _traced_intent))
    _UNDO.append(_replace(intent, "changeTargetAddr", _settled_at))
    _UNDO.append(_replace(intent, "tx_done", _settled_when_done))


def _traced_intent(original: Any) -> Any:
    def __init__(self: Any, targetAddr: Any, msg: Any, *args: Any, **kwargs: Any) -> None:
        original(self, targetAddr, msg, *args, **kwargs)
        rec = _RECORDER
        if rec is not None:
            trace = rec.outgoing.trace
            if type(trace) is _Unsettled:
                rec.outgoing.trace = None  # one send, one intent
                self._elixirscope_send = trace

    return __init__


def _settle(intent: Any, target: Any, delivered: bool) -> None:
    send = intent.__dict__.pop("_elixirscope_send", None)
    if send is not None:
        try:
            send.settle(target, delivered)
        except Exception as exc:  # noqa: BLE001
            _failed(exc)


def _settled_at(original: Any) -> Any:
    def changeTargetAddr(self: Any, newAddr: Any) -> None:
        original(self, newAddr)
        if "_elixirscope_send" in self.__dict__:
            _settle(self, newAddr, True)  # where it goes, as the receiver knows itself

    return changeTargetAddr


def _settled_when_done(original: Any) -> Any:
    def tx_done(self: Any, status: Any) -> None:
        if "_elixirscope_send" in self.__dict__:  # never resolved: given up, or dead
            _settle(self, self.targetAddr, False)
        original(self, status)

    return tx_done


_THESPIAN_INTERNAL = "thespian.system."
"""Messages Thespian's actor manager answers itself (status, capabilities, logging):
they never reach the actor's ``receiveMessage``."""


def _recorded_handling(original: Any) -> Any:
    def _handleOneMessage(self: Any, envelope: Any) -> Any:
        rec = _RECORDER
        token = None
        actor = None
        try:
            actor = getattr(self, "actorInst", None)
            msg = envelope.message
            if (
                rec is not None
                and actor is not None
                and not type(msg).__module__.startswith(_THESPIAN_INTERNAL)
            ):
                delivered = msg
                if _program_actor(actor):
                    trace = None
                    if _runtimes(msg):  # linked by its trace; an Info by what it carries
                        trace, delivered = _sent_trace(msg), _carried(msg)
                    token = rec.receiving(actor, delivered, envelope.sender, trace, apart=True)
                elif _takes_info(actor, msg):
                    delivered = rec.traced_info(actor, msg, envelope.sender, None, apart=True)
                if delivered is not msg:
                    envelope = type(envelope)(envelope.sender, delivered)
        except Exception as exc:  # noqa: BLE001
            _failed(exc)
        if token is None:
            return original(self, envelope)
        attempts = _Attempts(rec, token, actor)  # type: ignore[arg-type]
        try:
            return original(self, envelope)
        finally:
            try:
                attempts.done()
            except Exception as exc:  # noqa: BLE001
                _failed(exc)

    return _handleOneMessage


_MISSING = object()


class _Attempts:
    """The calls of an actor's ``receiveMessage`` for one message in its own process.

    Thespian's actor manager catches what the handler raises, hands the message once
    more, then returns it as a ``PoisonMessage``: nothing raised reaches a wrapper of the
    manager. So, for the time of the message only, the actor's ``receiveMessage`` is seen
    through the instance (an attribute of its own, taken away before any state is read,
    and put back as it was): each attempt that raised is a change with its error and
    the program's line; the last, if it did not raise, is the change :meth:`done`
    records."""

    def __init__(self, rec: ThespianRecorder, token: Any, actor: Any) -> None:
        self.rec, self.token, self.actor = rec, token, actor
        self.failed_last = False
        self.fields = getattr(actor, "__dict__", None)
        self.had = _MISSING
        self.handler: Any = None
        self.seen = self.attempt  # one bound method, told apart by identity
        if self.fields is not None:
            self.had = self.fields.get("receiveMessage", _MISSING)
            self.handler = actor.receiveMessage
            self._watch()

    def _watch(self) -> None:
        assert self.fields is not None
        self.fields["receiveMessage"] = self.seen

    def _unwatch(self) -> bool:
        """Take the attribute away; False when the handler replaced it itself (Thespian's
        ``initmsgs`` does: its choice is kept)."""
        fields = self.fields
        if fields is None or fields.get("receiveMessage") is not self.seen:
            return False
        if self.had is _MISSING:
            del fields["receiveMessage"]
        else:
            fields["receiveMessage"] = self.had
        return True

    def attempt(self, msg: Any, sender: Any) -> Any:
        try:
            result = self.handler(msg, sender)
        except Exception as exc:
            self.failed_last = True
            try:
                watched = self._unwatch()
                _scope, rec, name, text, mid, message = self.token
                callback = self.rec.callback(self.actor, message)
                failure = (_error_text(exc), _raised_in(exc))
                self.rec._state(rec, name, callback, text, mid, self.actor, failure)
                if watched:
                    self._watch()  # for Thespian's second try
            except Exception as inner:  # noqa: BLE001
                _failed(inner)
            raise
        self.failed_last = False
        return result

    def done(self) -> None:
        """The message handled: the attribute taken away, the state recorded (unless the
        last attempt raised: recorded then), the chain left."""
        self._unwatch()
        if self.failed_last:
            self.token[0].__exit__(None, None, None)
        else:
            self.rec.handled(self.token, self.actor)


def _error_text(exc: BaseException) -> str:
    """``Type: message``, as Thespian's traceback ends (on ``simpleSystemBase`` the text
    is read from it): a text argument as it is, any other as its safe text."""
    args = exc.args
    if len(args) == 1 and type(args[0]) is str:
        shown = args[0] if len(args[0]) <= 200 else args[0][:197] + "..."
    else:
        shown = safe_repr(args[0] if len(args) == 1 else args, 200) if args else ""
    return f"{type(exc).__name__}: {shown}" if shown else type(exc).__name__


def _raised_in(exc: BaseException) -> str | None:
    """``file:line:function`` of the innermost frame of the program's in ``exc``'s
    traceback (not Thespian's, not ElixirScope's)."""
    theirs = _not_the_programs()
    found, tb = None, exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if not code.co_filename.startswith(theirs):
            found = f"{code.co_filename}:{tb.tb_lineno}:{code.co_name}"
        tb = tb.tb_next
    return found
