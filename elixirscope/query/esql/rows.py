"""What a query's rows are, and the context read alongside them.

A row is one recorded event (:class:`EventRow`), one call put together from
its entry and its return or exception (:class:`CallRow`), or one message put
together from its send and its receive (:class:`MessageRow`). A row may be
*partial*: a call seen at its entry, a message at its send, whose later
fields are not known yet (:data:`UNKNOWN`); the evaluator asks partial rows
whether they can still match.

The :class:`Context` follows the stream as it goes: the calls open at each
moment (for nesting: ``depth``, ``parent``, ``inside``; for a failing call's
arguments), each actor's state (rebuilt from keyframes and deltas as the
state events pass), thread names and each process's run; and, read before the
stream when a query asks a send's ``to``, who received each message (a send names
only the address it went to; its receive, by message id, names the actor).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from elixirscope.contracts.trace import FunctionEntry, FunctionError, FunctionExit, StateChange
from elixirscope.query.yields import YieldSteps
from elixirscope.store._events import StoredEvent

__all__ = ["UNKNOWN", "CallRow", "Context", "EventRow", "MessageRow", "OpenCall"]


class _Unknown:
    """A field a partial row does not know yet."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN: Any = _Unknown()

MAX_DEPTH = 10_000
"""Parent links followed at most (a guard against a damaged recording's loops)."""


class EventRow:
    """One stored event."""

    __slots__ = ("se", "ev", "ctx", "state")
    partial = False

    def __init__(self, se: StoredEvent, ctx: Context, state: Any = None) -> None:
        self.se = se
        self.ev: Any = se.event
        self.ctx = ctx
        self.state = state  # a state event's state after it (a Node), when read


class CallRow:
    """A call: its entry and its end (a return or an exception), either may be missing."""

    __slots__ = ("se", "ev", "ctx", "entry", "end", "partial", "state")

    def __init__(
        self,
        se: StoredEvent,
        ctx: Context,
        entry: FunctionEntry | None,
        end: FunctionExit | FunctionError | None,
        partial: bool = False,
        state: Any = None,
    ) -> None:
        self.se = se  # the entry's stored event, else the end's
        self.ev: Any = se.event
        self.ctx = ctx
        self.entry = entry
        self.end = end
        self.partial = partial
        self.state = state  # its actor's before the handler it runs in, when followed

    @property
    def call_id(self) -> int:
        return self.entry.id if self.entry is not None else self.end.call_id  # type: ignore[union-attr]

    @property
    def start(self) -> int:
        if self.entry is not None:
            return self.entry.ts
        assert self.end is not None
        return self.end.ts - self.end.duration_ns


class MessageRow:
    """A message: its send and its receive, either may be missing; ``sent_ts``: when it
    was sent (a pub/sub delivery's time, the registry's send, which records no send)."""

    __slots__ = ("se", "ev", "ctx", "send", "receive", "partial", "state", "sent_ts")

    def __init__(
        self,
        ctx: Context,
        send: StoredEvent | None,
        receive: StoredEvent | None,
        partial: bool = False,
        state: Any = None,
        sent_ts: int | None = None,
    ) -> None:
        se = send if send is not None else receive
        assert se is not None
        self.se = se
        self.ev: Any = se.event
        self.ctx = ctx
        self.send: Any = send
        self.receive: Any = receive
        self.partial = partial
        self.state = state  # the receiver's when it received it (before its handler)
        self.sent_ts = send.event.ts if send is not None else sent_ts


class OpenCall:
    """A call whose entry was seen and whose end was not yet; ``candidate``: it may
    still make a matching row (its entry did not rule it out)."""

    __slots__ = ("entry", "se", "candidate", "state")

    def __init__(self, se: StoredEvent, candidate: bool, state: Any = None) -> None:
        self.se = se
        self.entry: FunctionEntry = se.event  # type: ignore[assignment]
        self.candidate = candidate
        self.state = state  # its actor's before the handler it runs in (a Node), or None


class Context:
    """What the stream has shown so far that a row's fields may need."""

    def __init__(
        self,
        threads: Any = None,
        runs: dict[str, str] | None = None,
        follow_calls: bool = False,
        follow_states: bool = False,
        receivers: dict[str, str] | None = None,
        follow_yields: bool = False,
    ) -> None:
        self.threads = threads
        self.runs = runs or {}
        self.receivers = receivers  # message id -> the actor that received it, when read
        self.drops: dict[str, str] | None = None  # message id -> why the runtime dropped it
        # a send's target address -> the actor a receive of a message sent there names,
        # else the child started there (``messages``: a message never received is named
        # by its receiver's path)
        self.addresses: dict[str, str] = {}
        # (producer, request id) -> (path, route) of each WebSocket connection, when read
        self.connections: dict[tuple[str, int], tuple[str, str | None]] | None = None
        self.follow_calls = follow_calls
        self.follow_states = follow_states
        self.follow_yields = follow_yields
        self.open: dict[tuple[str, int], OpenCall] = {}
        self.yields = YieldSteps()  # where each generator stands at its yields, while followed
        self._states: dict[str, tuple[str, int, Any]] = {}  # actor -> (producer, seq, node)
        self._handling: dict[tuple[str, int], list[str]] = {}  # (producer, thread) -> actors

    # ------------------------------------------------------------ calls

    def opened(self, se: StoredEvent, candidate: bool = False, state: Any = None) -> OpenCall:
        call = OpenCall(se, candidate, state)
        self.open[(se.producer, se.event.id)] = call
        return call

    def closed(self, producer: str, call_id: int) -> OpenCall | None:
        return self.open.pop((producer, call_id), None)

    def yield_of(self, se: StoredEvent) -> Any:
        """The yield a resume resumed from (None: not read, or not followed)."""
        ev: Any = se.event
        return self.yields.suspended_at((se.producer, ev.call_id))

    def thrown_in(self, se: StoredEvent) -> bool:
        """Whether the exception a call ended by was thrown into it at a plain ``yield``
        by its consumer (no resume followed that yield)."""
        return self.yields.thrown_in_at((se.producer, se.event.call_id)) is not None  # type: ignore[union-attr]

    def entry_of(self, producer: str, call_id: int) -> FunctionEntry | None:
        call = self.open.get((producer, call_id))
        return None if call is None else call.entry

    def ancestors(self, producer: str, parent_id: int) -> list[FunctionEntry]:
        """The open calls enclosing an event whose parent is ``parent_id``, innermost first."""
        out: list[FunctionEntry] = []
        while parent_id and len(out) < MAX_DEPTH:
            call = self.open.get((producer, parent_id))
            if call is None:
                break
            out.append(call.entry)
            parent_id = call.entry.parent_id
        return out

    def inside(self, producer: str, parent_id: int, matches: Callable[[str | None], bool]) -> bool:
        """An open call enclosing an event whose parent is ``parent_id`` is of a function
        ``matches`` accepts (``ancestors``, stopping at the first that is)."""
        depth = 0
        open_ = self.open
        while parent_id and depth < MAX_DEPTH:
            call = open_.get((producer, parent_id))
            if call is None:
                return False
            entry = call.entry
            if matches(entry.function):
                return True
            parent_id = entry.parent_id
            depth += 1
        return False

    # ------------------------------------------------------------ states

    def received(self, se: StoredEvent) -> None:
        """A receive: its actor's handler runs on this thread until its state change."""
        ev: Any = se.event
        self._handling.setdefault((se.producer, ev.thread), []).append(ev.actor)

    def handled(self, se: StoredEvent) -> None:
        """A state change: the handler of its actor on this thread, if one runs, ended."""
        ev: Any = se.event
        stack = self._handling.get((se.producer, ev.thread))
        if stack and stack[-1] == ev.actor:
            stack.pop()

    def handler_state(self, se: StoredEvent) -> Any:
        """For an event on an actor's thread inside its handler: that actor's state
        before the handler (its changes so far), else None."""
        stack = self._handling.get((se.producer, se.event.thread))
        return self.state_of(stack[-1]) if stack else None

    def state_after(self, se: StoredEvent) -> Any:
        """The actor's state after this state event (a Node), or None when it cannot be
        rebuilt (no keyframe seen since a gap)."""
        from elixirscope.state.delta import apply, decode_delta
        from elixirscope.state.nodes import decode_node

        ev = se.event
        assert isinstance(ev, StateChange)
        node = None
        if ev.key is not None:
            try:
                node = decode_node(ev.key)
            except Exception:  # noqa: BLE001 - an unreadable state is unknown, not a failure
                node = None
        else:
            prev = self._states.get(ev.actor)
            if (
                prev is not None
                and prev[2] is not None
                and prev[0] == se.producer
                and ev.seq >= 0
                and ev.seq == prev[1] + 1
            ):
                node = prev[2]
                if ev.delta is not None:
                    try:
                        node = apply(node, decode_delta(ev.delta))
                    except Exception:  # noqa: BLE001
                        node = None
        self._states[ev.actor] = (se.producer, ev.seq, node)
        return node

    def state_of(self, actor: str) -> Any:
        """The actor's state after the last of its changes read so far (a Node), or None."""
        known = self._states.get(actor)
        return None if known is None else known[2]

    # ------------------------------------------------------------ names

    def thread_name(self, se: StoredEvent) -> str:
        if self.threads is None:
            return str(se.event.thread)
        return self.threads.label(se)

    def run_of(self, se: StoredEvent) -> str | None:
        return self.runs.get(se.producer)

    def receiver_of(self, send: Any) -> str:
        """A send's receiver: the actor whose receive has its message id, else (its
        receive not recorded, or not read) the child started at the address it was sent
        to, else that address."""
        if self.receivers is None:
            return send.target
        got = self.receivers.get(send.message_id)
        return got if got is not None else self.addresses.get(send.target, send.target)
