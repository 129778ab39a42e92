"""The causal edges of docs/esql.md ("trace from A to B"), written out pair by pair
(quadratic, no indexes), and a plain breadth-first search over them: what the tests
compare ``elixirscope.query.causal`` and ``trace from ... to ...`` against."""

from __future__ import annotations

from collections import deque

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


def key(se):
    return (se.producer, se.event.id)


def ordered(events):
    unique = {}
    for se in events:
        unique.setdefault(key(se), se)
    return sorted(unique.values(), key=lambda se: (se.event.ts, se.producer, se.event.id))


def naive_edges(events) -> set[tuple]:
    """Every (cause, effect, kind), each decided by looking at the pair (and what lies between)."""
    evs = ordered(events)
    out = set()

    def thread(se):
        return (se.producer, se.event.thread)

    def actor(se):
        return se.event.actor if isinstance(se.event, (MessageReceive, StateChange)) else None

    def nearest(span, at):
        """The attempt of ``span`` first recorded at or after position ``at``, else the last."""
        found = [
            j
            for j, c in enumerate(evs)
            if isinstance(c.event, HttpCall)
            and c.event.trace_id
            and c.event.span_id
            and (c.event.trace_id, c.event.span_id) == span
        ]
        later = [j for j in found if j >= at]
        return later[0] if later else (found[-1] if found else None)

    for at, b in enumerate(evs):
        B = b.event
        if isinstance(B, RequestStart) and B.trace_id and B.parent_span:
            j = nearest((B.trace_id, B.parent_span), at)
            if j is not None:
                out.add((key(evs[j]), key(b), "requested"))
        if isinstance(B, RequestEnd):
            starts = [
                c
                for c in evs[:at]
                if c.producer == b.producer
                and c.event.id == B.request_id
                and isinstance(c.event, RequestStart)
                and c.event.trace_id
                and c.event.parent_span
            ]
            if starts:
                j = nearest((starts[0].event.trace_id, starts[0].event.parent_span), at)
                if j is not None:
                    out.add((key(b), key(evs[j]), "responded"))
    for i, a in enumerate(evs):
        A = a.event
        for j in range(i + 1, len(evs)):
            b = evs[j]
            B = b.event
            between = evs[i + 1 : j]
            same = a.producer == b.producer
            if thread(a) == thread(b) and not any(thread(c) == thread(a) for c in between):
                out.add((key(a), key(b), "then"))
            if same and isinstance(A, FunctionEntry):
                if isinstance(B, (FunctionExit, FunctionError)):
                    if B.call_id == A.id:
                        kind = "returns" if isinstance(B, FunctionExit) else "raises"
                        out.add((key(a), key(b), kind))
                elif B.parent_id == A.id:
                    out.add((key(a), key(b), "calls"))
            first_send = isinstance(A, MessageSend) and not any(
                isinstance(c.event, MessageSend) and c.event.message_id == A.message_id
                for c in evs[:i]
            )
            if first_send and isinstance(B, MessageReceive) and B.message_id == A.message_id:
                out.add((key(a), key(b), "sent"))
            first_receive = isinstance(A, MessageReceive) and not any(
                isinstance(c.event, MessageReceive) and c.event.message_id == A.message_id
                for c in evs[:i]
            )
            if first_receive and isinstance(B, StateChange) and B.message_id == A.message_id:
                out.add((key(a), key(b), "changed"))
            first_pub = isinstance(A, PubSubPublish) and not any(
                isinstance(c.event, PubSubPublish) and c.event.pub_id == A.pub_id for c in evs[:i]
            )
            if first_pub and isinstance(B, PubSubDelivery) and B.pub_id == A.pub_id:
                out.add((key(a), key(b), "delivered"))
            if isinstance(A, RequestStart):
                if same and isinstance(B, RequestEnd) and B.request_id == A.id:
                    out.add((key(a), key(b), "answered"))
                chain = A.correlation_id
                if (
                    chain
                    and B.correlation_id == chain
                    and not isinstance(B, RequestStart)
                    and thread(b) != thread(a)
                    and not any(
                        thread(c) == thread(b)
                        and c.event.correlation_id == chain
                        and not isinstance(c.event, RequestStart)
                        for c in between
                    )
                ):
                    out.add((key(a), key(b), "handled"))
            if isinstance(A, StateChange) and A.error and isinstance(B, ProcessExit):
                if B.path == A.actor and not any(
                    isinstance(c.event, ProcessExit) and c.event.path == A.actor for c in between
                ):
                    out.add((key(a), key(b), "exited"))
            if isinstance(A, ProcessExit) and isinstance(B, ProcessRestart) and B.path == A.path:
                if not any(
                    isinstance(c.event, (ProcessExit, ProcessRestart)) and c.event.path == A.path
                    for c in between
                ):
                    out.add((key(a), key(b), "restarted"))
            if isinstance(A, (ProcessSpawn, ProcessRestart)):
                if actor(b) == A.path and not any(actor(c) == A.path for c in between):
                    out.add((key(a), key(b), "spawned"))
                if (
                    A.pid
                    and b.pid == A.pid
                    and b.producer != a.producer
                    and not any(c.producer == b.producer for c in evs[:j])
                ):
                    out.add((key(a), key(b), "spawned"))
    return out


def naive_distance(edges: set[tuple], start, end) -> int | None:
    """How many edges the shortest path from ``start`` to ``end`` has (None: none)."""
    nexts: dict = {}
    for a, b, _kind in edges:
        nexts.setdefault(a, set()).add(b)
    dist = {start: 0}
    todo = deque([start])
    while todo:
        here = todo.popleft()
        for there in nexts.get(here, ()):
            if there not in dist:
                dist[there] = dist[here] + 1
                todo.append(there)
    return dist.get(end)
