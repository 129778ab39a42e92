"""One run's events, read once and indexed the ways the detectors look them up.

Detectors never read the store themselves: :func:`load_recording` reads the
run through ``EventStore.query`` (the same read ``elixirscope events`` makes)
and :class:`Recording` answers "the call this event ran in", "the receive of
this message", "every event of type T" without another read.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from elixirscope.contracts.trace import (
    REQUEST_FUNCTION,
    FunctionEntry,
    MessageReceive,
    undelivered_data,
)
from elixirscope.query.waits import EVENT_TYPES, Waits
from elixirscope.store.eventstore import StoredEvent

__all__ = ["Recording", "load_recording"]

_CHAIN = re.compile(r"[0-9a-f]{32}")
"""A correlation id as ElixirScope makes them (a W3C trace id's form)."""


@dataclass
class Recording:
    """The events of one run (``run`` None: a data dir recorded before runs existed)."""

    run: str | None
    events: list[StoredEvent]
    warnings: list[Any] = field(default_factory=list)
    data_dir: str | None = None

    def __post_init__(self) -> None:
        # Any: the detectors read each event type's own fields off ``se.event``
        self.by_type: dict[str, list[Any]] = defaultdict(list)
        self.entries: dict[tuple[str, int], Any] = {}
        self.receives: dict[str, Any] = {}
        self.undelivered: dict[str, Any] = {}  # a send's id -> the note of its being dropped
        self.by_key: dict[tuple[str, int], Any] = {}
        self._requests: dict[tuple[str, int], int | None] = {}  # request_call's answers
        self._shared: set[str] | None = None
        self._requests_by: dict[str, Any] | None = None  # who()'s: a chain's, a call's request
        self._waits: dict[int, Waits] = {}  # waits' answers, by their stretches' floor
        for se in self.events:
            self.by_type[se.type].append(se)
            ev = se.event
            self.by_key.setdefault((se.producer, ev.id), se)
            if type(ev) is FunctionEntry:
                self.entries[(se.producer, ev.id)] = se
            elif type(ev) is MessageReceive:
                self.receives[ev.message_id] = se
            elif (dropped := undelivered_data(ev)) is not None:
                self.undelivered[str(dropped.get("message_id"))] = se
        self._actors_at: dict[str, str] | None = None  # actors_at()'s answer

    def of(self, *types: str) -> list[Any]:
        """Every event of these types, in stored order (ts)."""
        if len(types) == 1:
            return self.by_type.get(types[0], [])
        out = [se for t in types for se in self.by_type.get(t, [])]
        out.sort(key=lambda se: se.ts)
        return out

    def call(self, producer: str, call_id: int) -> FunctionEntry | None:
        """The entry of call ``call_id`` of ``producer``, if it was recorded."""
        se = self.entries.get((producer, call_id))
        return None if se is None else se.event

    def request_start(self, reqend: Any) -> Any:
        """The ``RequestStart`` of the request ``reqend`` answered (its ``parent_id`` is the
        request's own call), if it was recorded."""
        start = self.by_key.get((reqend.producer, reqend.event.request_id))
        return start if start is not None and start.type == "req" else None

    def callback_call(self, state: Any) -> FunctionEntry | None:
        """The recorded call of the actor callback whose ``state`` event this is (its
        ``handle_call``, ...): the last one of that name that began on its thread before
        it, under the same caller — the state event's own parent is the code that ran the
        actor (a gateway's call into ``simpleSystemBase``), not the callback."""
        ev = state.event
        suffix = "." + ev.callback
        found = None
        for se in self.by_type.get("call", []):
            if se.ts > state.ts:
                break
            e = se.event
            if (
                se.producer == state.producer
                and e.thread == ev.thread
                and e.function.endswith(suffix)
                and (e.parent_id == ev.parent_id or e.id > ev.parent_id)
            ):
                found = e
        return found

    def callee_requests(self, attempts: list[Any]) -> dict[str, tuple[Any, Any]]:
        """The requests these HTTP attempts began in a recorded callee (the service called,
        in this run or another of the data dir): each attempt's ``span_id`` -> (its
        ``RequestStart``, its ``RequestEnd`` or None), for those found."""
        spans = {se.event.span_id for se in attempts if se.event.span_id}
        chains = {se.event.correlation_id for se in attempts if se.event.correlation_id}
        if not spans or self.data_dir is None:
            return {}
        from elixirscope.store.eventstore import EventStore

        starts: dict[str, Any] = {}
        ends: dict[tuple[str, int], Any] = {}
        with EventStore.open(self.data_dir, readonly=True) as store:
            for chain in chains:
                for se in store.query(correlation_id=chain, type=["req", "reqend"], limit=None):
                    ev: Any = se.event
                    if se.type == "req" and ev.parent_span in spans:
                        starts[ev.parent_span] = se
                    elif se.type == "reqend":
                        ends[(se.producer, ev.request_id)] = se
        return {
            span: (start, ends.get((start.producer, start.event.id)))
            for span, start in starts.items()
        }

    def caller_attempt(self, start: Any) -> Any:
        """The recorded HTTP attempt that made the request ``start`` (a stored
        ``RequestStart``) began — its ``span_id`` is the request's ``parent_span`` — in this
        run or, a service calling another each recorded on its own, in another run of the
        data dir (read from the store, by the chain); None when its caller was not
        recorded."""
        ev = start.event
        if not ev.parent_span:
            return None
        for se in self.by_type.get("http", []):
            if se.event.span_id == ev.parent_span:
                return se
        if self.data_dir is None or not ev.correlation_id:
            return None
        from elixirscope.store.eventstore import EventStore

        with EventStore.open(self.data_dir, readonly=True) as store:
            found = store.query(correlation_id=ev.correlation_id, type="http", limit=None)
            return next(
                (se for se in found if getattr(se.event, "span_id", None) == ev.parent_span), None
            )

    def waits(self, min_stretch_ns: int) -> Waits:
        """The run's waits at awaits and stretches of at least ``min_stretch_ns`` run
        without one (``query.waits``, each call's waits kept), read once."""
        found = self._waits.get(min_stretch_ns)
        if found is None:
            found = self._waits[min_stretch_ns] = Waits(min_stretch_ns, by_call=True)
            for se in self.of(*EVENT_TYPES):
                found.feed(se)
        return found

    def handler(self, reqend: Any) -> FunctionEntry | None:
        """The first recorded call inside a web request (its handler), found under the
        request's own call (the parent of its ``RequestStart``)."""
        start = self.request_start(reqend)
        if start is None or not start.event.parent_id:
            return None
        inside = [
            se.event
            for se in self.by_type.get("call", [])
            if se.producer == reqend.producer and se.event.parent_id == start.event.parent_id
        ]
        return min(inside, key=lambda e: e.ts) if inside else None

    def unit_of(self, se: Any) -> str:
        """Who did an event, as detectors group and tell apart clients: its chain, else its
        thread (``thread T of NODE:PID``) — and in a chain several requests share (an
        in-process client's all join its chain through ``traceparent``), the request it ran
        in, each its own (``request N of chain C``)."""
        ev = se.event
        chain = ev.correlation_id
        if chain is not None and chain in self.shared_chains:
            request = self.request_call(se.producer, ev.parent_id)
            if request is not None:
                return f"request {request} of chain {chain[:12]}"
        return chain or f"thread {ev.thread} of {se.producer.rsplit(':', 1)[0]}"

    def who(self, unit: str) -> str:
        """A client (:meth:`unit_of`) as a sentence names it: by the web request that ran it
        when one did (``POST /rooms/2/bid (chain 28611642a77c)``), else ``chain
        28611642a77c``; a thread, an actor as they are."""
        if self._requests_by is None:
            self._requests_by = {}
            for se in self.by_type.get("req", []):
                ev = se.event
                if ev.correlation_id:
                    self._requests_by.setdefault(ev.correlation_id, se)
                self._requests_by.setdefault(f"call {ev.parent_id}", se)
        if _CHAIN.fullmatch(unit):
            name = f"chain {unit[:12]}"
            found = self._requests_by.get(unit)
        elif unit.startswith("request "):  # request N of chain C
            name = unit
            found = self._requests_by.get(f"call {unit.split()[1]}")
        else:
            return unit
        if found is None:
            return name
        return f"{found.event.method} {found.event.path} ({name})"

    def actors_at(self) -> dict[str, str]:
        """address -> the path of the actor whose receive took a message sent there (the
        first such), so a send no receive took is named by whom it was meant for."""
        if self._actors_at is None:
            self._actors_at = {}
            for se in self.by_type.get("send", []):
                rcv = self.receives.get(se.event.message_id)
                if rcv is not None:
                    self._actors_at.setdefault(se.event.target, rcv.event.actor)
        return self._actors_at

    @property
    def shared_chains(self) -> set[str]:
        """The chains two or more web requests ran in."""
        if self._shared is None:
            seen: dict[str, int] = defaultdict(int)
            for se in self.by_type.get("req", []):
                if se.event.correlation_id:
                    seen[se.event.correlation_id] += 1
            self._shared = {chain for chain, n in seen.items() if n > 1}
        return self._shared

    def request_call(self, producer: str, parent_id: int) -> int | None:
        """The id of the web request's own call enclosing an event whose ``parent_id`` is
        given, if it ran in one."""
        key = (producer, parent_id)
        if key in self._requests:
            return self._requests[key]
        found = None
        for entry in self.ancestors(producer, parent_id):
            if entry.function == REQUEST_FUNCTION:
                found = entry.id
                break
        self._requests[key] = found
        return found

    def ancestors(self, producer: str, parent_id: int) -> list[FunctionEntry]:
        """The calls enclosing an event whose ``parent_id`` is given, innermost first."""
        out: list[FunctionEntry] = []
        seen: set[int] = set()
        while parent_id and parent_id not in seen:
            seen.add(parent_id)
            entry = self.call(producer, parent_id)
            if entry is None:
                break
            out.append(entry)
            parent_id = entry.parent_id
        return out


def load_recording(
    data_dir: str | os.PathLike[str], run: str | None = None, *, types: list[str] | None = None
) -> Recording:
    """Run ``run`` (any unique prefix; default the latest) of ``data_dir``, every event
    (or only ``types``). RunSelectError (a ValueError) names a run that cannot be chosen."""
    from pathlib import Path

    from elixirscope.query.runs import select_run
    from elixirscope.store.eventstore import EventStore

    if not (Path(data_dir).expanduser() / "events").is_dir():
        raise FileNotFoundError(f"nothing recorded under {data_dir} yet")
    scope = select_run(data_dir, run)
    filters: dict[str, Any] = {"limit": None, **scope.filters()}
    if types:
        filters["type"] = types
    with EventStore.open(data_dir, readonly=True) as store:
        found = store.query(**filters)
    return Recording(
        None if scope.run is None else scope.run.id,
        list(found),
        list(getattr(found, "warnings", [])),
        str(data_dir),
    )
