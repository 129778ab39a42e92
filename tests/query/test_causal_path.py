"""The causal graph and its shortest paths (``elixirscope.query.causal``) against the edges
written out pair by pair (causal_naive) over generated recordings: several processes and
threads, nested calls, messages, state changes, publishes, requests and spawns."""

from __future__ import annotations

from causal_naive import key, naive_distance, naive_edges
from effort import examples
from hypothesis import given, settings
from hypothesis import strategies as st

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
from elixirscope.query.causal import CausalGraph
from elixirscope.query.correlator import hlc_order
from elixirscope.store._events import StoredEvent

PRODUCERS = [("p0", 100), ("p1", 101), ("p2", 102)]
OPS = [
    "call",
    "ret",
    "raise",
    "send",
    "recv",
    "state",
    "pub",
    "deliver",
    "req",
    "reqend",
    "spawn",
    "http",
    "exit",
    "restart",
]

step = st.tuples(
    st.integers(0, 2),  # producer
    st.integers(0, 1),  # thread
    st.sampled_from(OPS),
    st.integers(0, 3),  # which message, publish, actor, request
    st.sampled_from([None, "c0", "c1"]),  # correlation
    st.integers(0, 2),  # a clock step (0: the same time as the last event)
)


def recording(steps) -> list[StoredEvent]:
    """StoredEvents for the steps: calls nest per thread, ids count per process."""
    ids = {p: 0 for p, _ in PRODUCERS}
    stacks: dict = {}
    requests: dict = {p: [] for p, _ in PRODUCERS}
    out = []
    ts = 1_000
    for p, t, op, n, chain, dt in steps:
        producer, pid = PRODUCERS[p]
        ts += dt
        stack = stacks.setdefault((producer, t), [])
        parent = stack[-1] if stack else 0
        ids[producer] += 1
        i = ids[producer]
        head = dict(id=i, ts=ts, thread=t, correlation_id=chain, parent_id=parent)
        ev: object
        if op == "call":
            ev = FunctionEntry(**head, function=f"f{n}")
            stack.append(i)
        elif op in ("ret", "raise") and stack:
            call = stack.pop()
            head["parent_id"] = stack[-1] if stack else 0
            if op == "ret":
                ev = FunctionExit(**head, call_id=call, function="f", duration_ns=1)
            else:
                ev = FunctionError(
                    **head, call_id=call, function="f", duration_ns=1, exc_type="E", message="m"
                )
        elif op == "send":
            ev = MessageSend(**head, message_id=f"m{n}", sender=None, target=f"a{n}")
        elif op == "recv":
            ev = MessageReceive(**head, message_id=f"m{n}", actor=f"a{n % 2}", sender=None)
        elif op == "state":
            mid = f"m{n}" if n < 3 else None
            ev = StateChange(
                **head,
                actor=f"a{n % 2}",
                callback="handle_call",
                message=None,
                before=None,
                after=None,
                message_id=mid,
                error="KeyError: 'x'" if n % 2 else None,  # a crash
            )
        elif op == "pub":
            ev = PubSubPublish(**head, pub_id=f"q{n}", topic="t", publisher=None)
        elif op == "deliver":
            ev = PubSubDelivery(**head, pub_id=f"q{n}", topic="t", target="x")
        elif op == "req":
            ev = RequestStart(
                **head,
                protocol="http",
                method="GET",
                path="/",
                trace_id=f"t{n % 2}",
                parent_span=f"s{n}" if n else None,
            )
            requests[producer].append(i)
        elif op == "reqend":
            started = requests[producer]
            rid = started[n % len(started)] if started else 99
            ev = RequestEnd(
                **head,
                request_id=rid,
                method="GET",
                path="/",
                route=None,
                status=200,
                duration_ns=1,
            )
        elif op == "http":
            ev = HttpCall(
                **head,
                library="httpx",
                method="GET",
                url="u",
                trace_id=f"t{n % 2}",
                span_id=f"s{n}",
            )
        elif op in ("exit", "restart"):
            kind = ProcessExit if op == "exit" else ProcessRestart
            ev = kind(**head, path=f"a{n % 2}", pid=PRODUCERS[n % 3][1], reason="r")
        else:
            ev = ProcessSpawn(**head, path=f"a{n % 2}", pid=PRODUCERS[n % 3][1])
        out.append(StoredEvent(ev, "n", pid, "prog", producer))  # type: ignore[arg-type]
    return out


@settings(max_examples=examples(120, 1200), deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=28), picks=st.tuples(st.integers(), st.integers()))
def test_shortest_paths_agree_with_a_plain_search_over_the_written_out_edges(steps, picks):
    events = recording(steps)
    graph = CausalGraph(events)
    edges = naive_edges(events)
    assert {(a, b, kind) for a, out in graph.edges.items() for b, kind in out} == edges
    start = key(events[picks[0] % len(events)])
    end = key(events[picks[1] % len(events)])
    found = graph.path(start, end)
    distance = naive_distance(edges, start, end)
    if distance is None:
        assert found is None
        return
    assert found is not None and len(found) == distance + 1
    assert key(found[0][0]) == start and key(found[-1][0]) == end and found[-1][1] is None
    for (here, kind), (there, _) in zip(found, found[1:], strict=False):
        assert (key(here), key(there), kind) in edges
    later = [
        (a, b)
        for (a, kind), (b, _) in zip(found, found[1:], strict=False)
        if kind not in ("requested", "responded")
    ]
    # only an attempt, recorded when it ended, is later (a request is recorded after the
    # attempt that sent it began; the attempt's end and its callee's reqend are in two
    # processes whose clocks an HTTP response does not join: either may read earlier);
    # across processes two events of the same time are ordered by producer name, which
    # says nothing of causality
    assert all(
        hlc_order(a) < hlc_order(b) if a.producer == b.producer else a.event.ts <= b.event.ts
        for a, b in later
    )
