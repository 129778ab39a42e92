"""The causal graph of recorded events, and the shortest causal path between two.

An edge goes from a cause to its effect, and says why (its *kind*):

- ``then``: the next event on the same thread of the same process (program order);
- ``calls``: a call's entry to each event recorded directly inside it (its child
  calls, the messages it sent, the queries it ran: ``parent_id`` is the call);
- ``returns``, ``raises``: a call's entry to its return, its exception (``call_id``);
- ``sent``: a message's send (or a traced pub/sub delivery) to its receive (the same
  ``message_id``, across actors and processes);
- ``changed``: a receive to the state change it made (the same ``message_id``);
- ``delivered``: a publish to each of its deliveries (the same ``pub_id``);
- ``answered``: a request's start to its end (``request_id``);
- ``requested``, ``responded``: an outgoing HTTP attempt to the request it
  started in the callee (its ``traceparent``: the same trace id, the attempt's
  span the request's parent span), and that request's end back to the attempt
  (an attempt is recorded when it ended, so it may come after the request; of
  attempts sharing a span, the nearest recorded from then on);
- ``handled``: a request's start to the first event of its chain on every
  other thread or process (a handler running elsewhere under the same correlation);
- ``spawned``: a spawn (or a restart) to the first later event naming the
  spawned actor (its receive, its state change), else the first event of the
  spawned process;
- ``exited``: an actor's crash (a state change with an error) to the exit of
  its process the supervisor recorded next;
- ``restarted``: an actor's exit to its next restart.

These are the happened-before edges the recording can show (Lamport's program
order plus messages), with the links ``correlator`` and ``state.cause`` follow.
Everything is computed from the events alone; nothing here reads a store.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict, deque
from collections.abc import Iterable
from typing import Any

from elixirscope.contracts.trace import (
    FunctionEntry,
    FunctionError,
    FunctionExit,
    HttpCall,
    MessageReceive,
    MessageSend,
    ProcessExit,
    ProcessRestart,
    ProcessSpawn,
    PubSubDelivery,
    PubSubPublish,
    RequestEnd,
    RequestStart,
    StateChange,
)
from elixirscope.query.correlator import hlc_order
from elixirscope.store._events import StoredEvent

__all__ = ["EDGE_KINDS", "EventKey", "CausalGraph", "event_key", "shortest_path"]

EventKey = tuple[str, int]  # (producer, event id): an event's identity in a store
EDGE_KINDS = (
    "then",
    "calls",
    "returns",
    "raises",
    "sent",
    "changed",
    "delivered",
    "answered",
    "requested",
    "responded",
    "handled",
    "spawned",
    "exited",
    "restarted",
)


def event_key(se: StoredEvent) -> EventKey:
    return (se.producer, se.event.id)


class CausalGraph:
    """The events given (first copy of each key kept), in HLC order, and their edges."""

    def __init__(self, events: Iterable[StoredEvent]) -> None:
        seen: dict[EventKey, StoredEvent] = {}
        for se in events:
            seen.setdefault(event_key(se), se)
        self.events = sorted(seen.values(), key=hlc_order)
        self.by_key = {event_key(se): se for se in self.events}
        self.edges: dict[EventKey, list[tuple[EventKey, str]]] = defaultdict(list)
        self._build()
        self._link_http()
        for out in self.edges.values():
            out.sort(key=lambda edge: edge[1] == "then")  # a named link before program order

    def _add(self, cause: StoredEvent, effect: StoredEvent, kind: str) -> None:
        if cause is not effect:
            self.edges[event_key(cause)].append((event_key(effect), kind))

    def _build(self) -> None:
        last_on_thread: dict[tuple[str, Any], StoredEvent] = {}
        entries: dict[EventKey, StoredEvent] = {}
        sends: dict[str, StoredEvent] = {}
        receives: dict[str, StoredEvent] = {}
        publishes: dict[str, StoredEvent] = {}
        requests: dict[EventKey, StoredEvent] = {}
        chain_requests: dict[str, list[StoredEvent]] = defaultdict(list)  # in order
        handled_upto: dict[
            tuple[str, tuple[str, Any]], int
        ] = {}  # (chain, thread) -> requests linked
        spawns_by_actor: dict[str, list[StoredEvent]] = defaultdict(list)
        spawns_by_pid: dict[int, list[StoredEvent]] = defaultdict(list)
        crashes: dict[str, list[StoredEvent]] = defaultdict(list)  # actor -> since its exit
        exits: dict[str, StoredEvent] = {}  # actor -> its exit not restarted yet
        producers_seen: set[str] = set()
        for se in self.events:
            ev: Any = se.event
            producer = se.producer
            thread = (producer, ev.thread)
            before = last_on_thread.get(thread)
            if before is not None:
                self._add(before, se, "then")
            last_on_thread[thread] = se
            cls = type(ev)
            if cls is FunctionExit or cls is FunctionError:
                entry = entries.get((producer, ev.call_id))
                if entry is not None:
                    self._add(entry, se, "returns" if cls is FunctionExit else "raises")
            elif ev.parent_id:
                parent = entries.get((producer, ev.parent_id))
                if parent is not None:
                    self._add(parent, se, "calls")
            if cls is FunctionEntry:
                entries[(producer, ev.id)] = se
            elif cls is MessageSend:
                sends.setdefault(ev.message_id, se)
            elif cls is MessageReceive:
                send = sends.get(ev.message_id)
                if send is not None:
                    self._add(send, se, "sent")
                receives.setdefault(ev.message_id, se)
            elif cls is StateChange:
                receive = receives.get(ev.message_id) if ev.message_id else None
                if receive is not None:
                    self._add(receive, se, "changed")
                if ev.error:
                    crashes[ev.actor].append(se)
            elif cls is ProcessExit:
                for crash in crashes.pop(ev.path, ()):
                    self._add(crash, se, "exited")
                exits[ev.path] = se
            elif cls is ProcessRestart:
                exited = exits.pop(ev.path, None)
                if exited is not None:
                    self._add(exited, se, "restarted")
            elif cls is PubSubPublish:
                publishes.setdefault(ev.pub_id, se)
            elif cls is PubSubDelivery:
                publish = publishes.get(ev.pub_id)
                if publish is not None:
                    self._add(publish, se, "delivered")
                if ev.message_id:  # sent to its subscriber traced: a send, for its receive
                    sends.setdefault(ev.message_id, se)
            elif cls is RequestStart:
                requests[(producer, ev.id)] = se
                if ev.correlation_id:
                    chain_requests[ev.correlation_id].append(se)
            elif cls is RequestEnd:
                start = requests.get((producer, ev.request_id))
                if start is not None:
                    self._add(start, se, "answered")
            if (
                ev.correlation_id
                and cls is not RequestStart
                and ev.correlation_id in chain_requests
            ):
                # the first event of the chain on this thread since each request began
                started = chain_requests[ev.correlation_id]
                at = (ev.correlation_id, thread)
                for start in started[handled_upto.get(at, 0) :]:
                    if (start.producer, start.event.thread) != thread:
                        self._add(start, se, "handled")
                handled_upto[at] = len(started)
            actor = _actor_of(ev)
            if actor is not None and spawns_by_actor.get(actor):
                for spawn in spawns_by_actor.pop(actor):
                    self._add(spawn, se, "spawned")
            if producer not in producers_seen:
                producers_seen.add(producer)
                for spawn in spawns_by_pid.get(se.pid, ()):
                    if spawn.producer != producer:
                        self._add(spawn, se, "spawned")
            if cls is ProcessSpawn or cls is ProcessRestart:
                spawns_by_actor[ev.path].append(se)
                if ev.pid:
                    spawns_by_pid[ev.pid].append(se)

    def _link_http(self) -> None:
        """Each request to one attempt of its span: the first recorded from the request
        on (an attempt is recorded when it ended), else the last before it; its end
        back to the first recorded from the end on, else the last before it."""
        attempts: dict[tuple[str, str], list[int]] = defaultdict(list)  # positions in events
        for at, se in enumerate(self.events):
            ev: Any = se.event
            if type(ev) is HttpCall and ev.trace_id and ev.span_id:
                attempts[(ev.trace_id, ev.span_id)].append(at)
        if not attempts:
            return
        spans: dict[EventKey, tuple[str, str]] = {}  # a request's (trace id, parent span)
        for at, se in enumerate(self.events):
            ev = se.event
            if type(ev) is RequestStart and ev.trace_id and ev.parent_span:
                span = (ev.trace_id, ev.parent_span)
                spans[event_key(se)] = span
                nearest = _nearest(attempts.get(span), at)
                if nearest is not None:
                    self._add(self.events[nearest], se, "requested")
            elif type(ev) is RequestEnd:
                span = spans.get((se.producer, ev.request_id), ("", ""))
                nearest = _nearest(attempts.get(span), at)
                if nearest is not None:
                    self._add(se, self.events[nearest], "responded")

    def path(self, start: EventKey, end: EventKey) -> list[tuple[StoredEvent, str | None]] | None:
        """The shortest causal path from ``start`` to ``end`` (each event with the kind of
        the edge to the next; None for the last), or None when ``end`` is not reached."""
        keys = shortest_path(self.edges, start, end)
        if keys is None:
            return None
        return [(self.by_key[key], kind) for key, kind in keys]


def shortest_path(
    edges: dict[EventKey, list[tuple[EventKey, str]]], start: EventKey, end: EventKey
) -> list[tuple[EventKey, str | None]] | None:
    """Breadth first over ``edges``, each event's edges in the order given: the first
    shortest path found, as (event, kind of the edge to the next) pairs."""
    came: dict[EventKey, tuple[EventKey, str] | None] = {start: None}
    todo = deque([start])
    while todo and end not in came:
        here = todo.popleft()
        for there, kind in edges.get(here, ()):
            if there not in came:
                came[there] = (here, kind)
                todo.append(there)
    if end not in came:
        return None
    out: list[tuple[EventKey, str | None]] = [(end, None)]
    step = came[end]
    while step is not None:
        here, kind = step
        out.append((here, kind))
        step = came[here]
    out.reverse()
    return out


def _nearest(positions: list[int] | None, at: int) -> int | None:
    """The first of ``positions`` (ascending) at or after ``at``, else the last one."""
    if not positions:
        return None
    i = bisect_left(positions, at)
    return positions[i] if i < len(positions) else positions[-1]


def _actor_of(ev: Any) -> str | None:
    if type(ev) is MessageReceive or type(ev) is StateChange:
        return str(ev.actor)
    return None
