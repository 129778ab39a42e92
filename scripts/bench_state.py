"""Cost of recording actor state as structure, and of travelling back through it.

The state is what a GenServer typically holds: a dict of records, ``users`` (a
dict of dicts with str/int fields) and ``orders`` (a list of dataclass
instances), grown until its full snapshot (``encode_node(capture(state))``)
weighs ``--small`` / ``--large`` bytes (1 KB / 100 KB). Each callback changes
one field of one record (a user's score, an order's status).

1. Capture per callback, ``--calls`` callbacks each, CPU time of this thread
   (mean, so keyframes count): ElixirScope's ``StateTracker.record`` (the
   product's path), a full snapshot (``capture`` + ``encode_node``, the naive
   approach) and ``copy.deepcopy``;
   bytes stored per change (keyframes included) next to a snapshot's. Then the
   same through a real GenServer (``simpleSystemBase``): a ``Runtime.call`` per
   callback without capture, and with ``enable_actor_capture`` recording to a
   session whose sink counts the bytes (wall and process CPU time per call); and
   a plain Thespian actor holding the small state, ``ask``ed without capture and
   recorded by ``integrations.thespian_actors`` (its receive, reply and state).
2. Reconstruction: ``--changes`` (100,000) changes recorded by the tracker from a
   mutating large state (every 100th change also appends an order and drops the
   oldest), as ``StateChange`` events in a ``Timeline``: the state at
   ``--samples`` random moments, and a ``Stepper`` one change forward and back
   (wall time).
3. Bytes per change over that stream, and the tracker's memory (its objects,
   by ``sys.getsizeof``) after 10k, 50k and 100k changes: bounded means flat.

``python scripts/bench_state.py [--json] [--changes 100000]`` (or ``./dev bench state``).
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import random
import statistics
import sys
import time
import types
from dataclasses import dataclass
from typing import Any

from thespian.actors import Actor

from elixirscope.runtime import GenServer, Reply

GOAL_CAPTURE_RATIO = 0.10  # of a full snapshot's time, large state
GOAL_BYTES_RATIO = 0.05  # of a full snapshot's bytes, large state
GOAL_STATE_P95_MS = 5.0
GOAL_STEP_P95_MS = 1.0
STATUSES = ("open", "paid", "packed", "shipped", "delivered")


@dataclass
class Order:
    id: int
    customer: str
    item: str
    qty: int
    status: str


def make_state(records: int) -> dict[str, Any]:
    """``records`` users and as many orders, and a counter."""
    users = {
        f"u{i:05d}": {
            "name": f"user {i}",
            "email": f"user{i}@example.com",
            "age": 20 + i % 50,
            "score": i * 7,
        }
        for i in range(records)
    }
    orders = [Order(i, f"u{i:05d}", f"item-{i % 13}", 1 + i % 5, "open") for i in range(records)]
    return {"users": users, "orders": orders, "handled": 0}


def snapshot_bytes(state: Any) -> int:
    from elixirscope.state.capture import capture
    from elixirscope.state.nodes import encode_node

    return len(encode_node(capture(state)))


def state_of_size(target: int) -> dict[str, Any]:
    """The smallest state of :func:`make_state` whose snapshot weighs ``target`` bytes."""
    records = max(1, target // 160)
    while snapshot_bytes(make_state(records)) < target:
        records += 1
    return make_state(records)


def change_one_field(state: dict[str, Any], rnd: random.Random, n: int) -> None:
    """One callback's work: one field of one record changes (alternately a user's
    score and an order's status)."""
    if n % 2:
        orders = state["orders"]
        order = orders[rnd.randrange(len(orders))]
        order.status = STATUSES[(STATUSES.index(order.status) + 1) % len(STATUSES)]
    else:
        users = state["users"]
        users[rnd.choice(list(users))]["score"] += 1


def change_for_stream(state: dict[str, Any], rnd: random.Random, n: int, keys: list[str]) -> None:
    """The reconstruction stream: a field, and every 100th change an order in and one out."""
    if n % 100 == 99:
        orders = state["orders"]
        last = orders[-1]
        orders.append(Order(last.id + 1, last.customer, last.item, 1, "open"))
        del orders[0]
    elif n % 2:
        orders = state["orders"]
        order = orders[rnd.randrange(len(orders))]
        order.status = STATUSES[(STATUSES.index(order.status) + 1) % len(STATUSES)]
    else:
        state["users"][rnd.choice(keys)]["score"] += 1
    state["handled"] += 1


_clock = time.thread_time_ns
"""Capture costs are CPU time of this thread: what the program's thread spends, and
what other processes on a shared machine disturb least."""


def _mean_us(samples: list[int]) -> float:
    return statistics.fmean(samples) / 1e3


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ------------------------------------------------------------------ 1. capture


def capture_costs(target: int, calls: int, seed: int = 1) -> dict[str, Any]:
    """Tracker, full snapshot and deepcopy per callback on a ``target``-byte state."""
    from elixirscope.state.capture import capture
    from elixirscope.state.nodes import encode_node
    from elixirscope.state.tracker import StateTracker

    state = state_of_size(target)
    size = snapshot_bytes(state)
    rows: dict[str, dict[str, Any]] = {}

    tracker = StateTracker()
    tracker.record("bench", state)
    rnd = random.Random(seed)
    times: list[int] = []
    stored = keys = 0
    gc.collect()
    for n in range(calls):
        change_one_field(state, rnd, n)
        t0 = _clock()
        rec = tracker.record("bench", state)
        times.append(_clock() - t0)
        stored += len(rec.key or b"") + len(rec.delta or b"")
        keys += rec.key is not None
    rows["tracker.record"] = {
        "mean_us": _mean_us(times),
        "p50_us": statistics.median(times) / 1e3,
        "bytes_per_change": stored / calls,
        "keyframes": keys,
    }

    def timed(fn: Any) -> list[int]:
        out = []
        gc.collect()
        for n in range(calls):
            change_one_field(state, rnd, n)
            t0 = _clock()
            fn()
            out.append(_clock() - t0)
        return out

    snap = timed(lambda: encode_node(capture(state)))
    rows["full snapshot"] = {
        "mean_us": _mean_us(snap),
        "p50_us": statistics.median(snap) / 1e3,
        "bytes_per_change": size,
    }
    deep = timed(lambda: copy.deepcopy(state))
    rows["copy.deepcopy"] = {
        "mean_us": _mean_us(deep),
        "p50_us": statistics.median(deep) / 1e3,
        "bytes_per_change": None,
    }
    base = rows["full snapshot"]
    for row in rows.values():
        row["time_vs_snapshot"] = row["mean_us"] / base["mean_us"]
        per = row["bytes_per_change"]
        row["bytes_vs_snapshot"] = None if per is None else per / base["bytes_per_change"]
    return {
        "snapshot_bytes": size,
        "records": len(state["users"]) + len(state["orders"]),
        "calls": calls,
        "rows": rows,
    }


class StateHolder(GenServer):
    """Holds a state of :func:`make_state`; each call changes one field."""

    rnd = random.Random(7)

    def init(self, args):  # noqa: ANN001, ANN201
        return state_of_size(args)

    def handle_call(self, request, from_, state):  # noqa: ANN001, ANN201
        change_one_field(state, self.rnd, request)
        return Reply(request, state)


class ThespianHolder(Actor):
    """A plain Thespian actor holding a state of :func:`make_state` (``("init", size)``);
    each other message changes one field and is answered."""

    rnd = random.Random(7)

    def __init__(self) -> None:
        super().__init__()
        self.state: Any = None

    def receiveMessage(self, msg, sender):  # noqa: ANN001, ANN201
        if isinstance(msg, tuple):
            self.state = state_of_size(msg[1])
        else:
            change_one_field(self.state, self.rnd, msg)
        self.send(sender, msg)


def _importable_server() -> type:
    """:class:`StateHolder` from an importable module (actor classes cannot live in
    ``__main__``): this script imported by its name when run as one."""
    if __name__ != "__main__":
        return StateHolder
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_state

    return bench_state.StateHolder


class _CountingSink:
    def __init__(self) -> None:
        self.bytes = 0
        self.events = 0

    def __call__(self, frame: bytes, count: int) -> None:
        self.bytes += len(frame)
        self.events += count


def thespian_costs(target: int, calls: int) -> dict[str, Any]:
    """An ``ask`` of a plain Thespian actor (``simpleSystemBase``) holding a ``target``-byte
    state, without capture and recorded by ``integrations.thespian_actors`` (its receive,
    its reply's send, its state after the message), as ``elixirscope run`` records it."""
    from thespian.actors import ActorSystem

    from elixirscope.capture import session
    from elixirscope.integrations import thespian_actors

    holder = _importable_server().__module__
    actor_class = sys.modules[holder].ThespianHolder
    out: dict[str, Any] = {}
    for label, recording in (("no capture", False), ("recording", True)):
        sink = _CountingSink()
        sess = session.start_capture(sink=sink) if recording else None
        if recording:
            thespian_actors.enable()
        system = ActorSystem("simpleSystemBase")
        try:
            ref = system.createActor(actor_class)
            system.ask(ref, ("init", target), 5)
            for n in range(20):  # warm up
                system.ask(ref, n, 5)
            gc.collect()
            t0, c0 = time.perf_counter_ns(), time.process_time_ns()
            for n in range(calls):
                system.ask(ref, n, 5)
            per = (time.perf_counter_ns() - t0) / calls
            cpu = (time.process_time_ns() - c0) / calls
        finally:
            system.shutdown()
            if recording:
                thespian_actors.disable()
                assert sess is not None
                sess.flush(10)
                sess.stop()
        row: dict[str, Any] = {"us_per_call": per / 1e3, "cpu_us_per_call": cpu / 1e3}
        if recording:
            row["errors"] = thespian_actors.STATS["errors"]
            row["shipped_bytes_per_call"] = sink.bytes / (calls + 22)
        out[label] = row
    out["added_us_per_call"] = out["recording"]["us_per_call"] - out["no capture"]["us_per_call"]
    out["added_cpu_us_per_call"] = (
        out["recording"]["cpu_us_per_call"] - out["no capture"]["cpu_us_per_call"]
    )
    out["genserver_wrapped"] = _genserver_wrapped(calls)
    return out


def _genserver_wrapped(calls: int, rounds: int = 5) -> dict[str, float]:
    """A GenServer call (small state, nothing recorded) with Thespian's steps wrapped by
    ``integrations.thespian_actors`` and without: what the wrappers cost a message they
    leave to the runtime's tracer. Rounds interleaved; the medians."""
    from elixirscope.integrations import thespian_actors
    from elixirscope.runtime import Runtime

    server = _importable_server()
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for wrapped in (False, True):
            if wrapped:
                thespian_actors.enable()
            rt = Runtime("simpleSystemBase")
            try:
                ref = rt.start(server, 64, path="holder")
                for n in range(50):
                    rt.call(ref, n)
                t0 = time.perf_counter_ns()
                for n in range(calls):
                    rt.call(ref, n)
                times[wrapped].append((time.perf_counter_ns() - t0) / calls / 1e3)
            finally:
                rt.shutdown()
                if wrapped:
                    thespian_actors.disable()
    plain, wrapped = statistics.median(times[False]), statistics.median(times[True])
    return {"plain_us": plain, "wrapped_us": wrapped, "added_us": wrapped - plain}


def genserver_costs(target: int, calls: int) -> dict[str, Any]:
    """``Runtime.call`` per callback on a GenServer holding a ``target``-byte state,
    without capture and recording its state."""
    from elixirscope.capture import actors, session
    from elixirscope.runtime import Runtime

    server = _importable_server()
    out: dict[str, Any] = {}
    for label, recording in (("no capture", False), ("recording", True)):
        sink = _CountingSink()
        sess = session.start_capture(sink=sink) if recording else None
        tracer = actors.enable_actor_capture() if recording else None
        rt = Runtime("simpleSystemBase")
        try:
            ref = rt.start(server, target, path="holder")
            for n in range(20):  # warm up
                rt.call(ref, n)
            gc.collect()
            t0, c0 = time.perf_counter_ns(), time.process_time_ns()
            for n in range(calls):
                rt.call(ref, n)
            per = (time.perf_counter_ns() - t0) / calls
            cpu = (time.process_time_ns() - c0) / calls
        finally:
            rt.shutdown()
            if recording:
                actors.disable_actor_capture()
                assert sess is not None
                sess.flush(10)
                sess.stop()
        row: dict[str, Any] = {"us_per_call": per / 1e3, "cpu_us_per_call": cpu / 1e3}
        if recording:
            assert tracer is not None
            row["tracer_errors"] = tracer.errors
            row["shipped_bytes_per_call"] = sink.bytes / (calls + 21)
        out[label] = row
    out["added_us_per_call"] = out["recording"]["us_per_call"] - out["no capture"]["us_per_call"]
    out["added_cpu_us_per_call"] = (
        out["recording"]["cpu_us_per_call"] - out["no capture"]["cpu_us_per_call"]
    )
    return out


# ------------------------------------------------------------------ 2 + 3. reconstruction


def deep_size(root: Any) -> int:
    """Bytes of the objects reachable from ``root`` (``sys.getsizeof``; classes, modules
    and functions not counted)."""
    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)
    seen: set[int] = set()
    todo = [root]
    total = 0
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        todo.extend(gc.get_referents(obj))
    return total


def reconstruction(
    target: int, changes: int, samples: int, seed: int = 3, checkpoints: tuple[int, ...] = ()
) -> dict[str, Any]:
    from elixirscope.contracts.trace import StateChange
    from elixirscope.state.capture import capture
    from elixirscope.state.nodes import nodes_equal
    from elixirscope.state.timeline import Stepper, Timeline
    from elixirscope.state.tracker import StateTracker

    state = state_of_size(target)
    size = snapshot_bytes(state)
    keys = list(state["users"])
    rnd = random.Random(seed)
    tracker = StateTracker()
    events: list[StateChange] = []
    stored = keyframes = 0
    memory: dict[int, int] = {}
    t0 = time.perf_counter()
    for n in range(changes):
        if n:
            change_for_stream(state, rnd, n, keys)
        seq, key, delta, _ = tracker.record("holder", state)
        stored += len(key or b"") + len(delta or b"")
        keyframes += key is not None
        events.append(
            StateChange(
                n, n, 1, None, 0, "holder", "handle_call", None, None, None, seq, key, delta
            )
        )
        if n + 1 in checkpoints:
            memory[n + 1] = deep_size(tracker)
    record_s = time.perf_counter() - t0
    timeline = Timeline.of_events("holder", events)
    last_ok = nodes_equal(timeline.state(len(timeline) - 1), capture(state))

    picks = [rnd.randrange(changes) for _ in range(samples)]
    at: list[float] = []
    for i in picks:
        t = time.perf_counter_ns()
        timeline.state(i)
        at.append((time.perf_counter_ns() - t) / 1e6)
    forward: list[float] = []
    back: list[float] = []
    for i in picks[: max(1, samples // 4)]:
        stepper = Stepper(timeline, min(max(i, 1), changes - 2))
        for _ in range(4):
            t = time.perf_counter_ns()
            stepper.next()
            forward.append((time.perf_counter_ns() - t) / 1e6)
        for _ in range(4):
            t = time.perf_counter_ns()
            stepper.prev()
            back.append((time.perf_counter_ns() - t) / 1e6)
    return {
        "snapshot_bytes": size,
        "changes": changes,
        "record_s": record_s,
        "keyframes": keyframes,
        "bytes_per_change": stored / changes,
        "last_state_rebuilt_exactly": last_ok,
        "state_ms": {"p50": _pct(at, 0.5), "p95": _pct(at, 0.95), "max": max(at)},
        "next_ms": {"p50": _pct(forward, 0.5), "p95": _pct(forward, 0.95)},
        "prev_ms": {"p50": _pct(back, 0.5), "p95": _pct(back, 0.95)},
        "samples": samples,
        "tracker_bytes": memory,
    }


# ------------------------------------------------------------------ run / table


def run(
    small: int = 1024,
    large: int = 100 * 1024,
    calls: int = 500,
    server_calls: int = 500,
    changes: int = 100_000,
    samples: int = 1000,
) -> dict[str, Any]:
    checkpoints = tuple(c for c in (10_000, 50_000, 100_000, changes) if c <= changes)
    return {
        "python": sys.version.split()[0],
        "settings": {
            "small": small,
            "large": large,
            "calls": calls,
            "server_calls": server_calls,
            "changes": changes,
            "samples": samples,
            "limits": "StateLimits() defaults",
            "key_every": _key_every(),
        },
        "capture": {
            "small": capture_costs(small, calls),
            "large": capture_costs(large, calls),
        },
        "genserver": {
            "small": genserver_costs(small, server_calls),
            "large": genserver_costs(large, server_calls),
        },
        "thespian": {"small": thespian_costs(small, server_calls)},
        "reconstruction": reconstruction(large, changes, samples, checkpoints=checkpoints),
    }


def _key_every() -> int:
    from elixirscope.state.tracker import KEY_EVERY

    return KEY_EVERY


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def format_table(result: dict[str, Any]) -> str:
    s = result["settings"]
    lines = [
        f"Actor state capture and time travel (Python {result['python']}; {s['limits']},"
        f" keyframe every {s['key_every']} changes at most)",
        "",
        f"1. Capture per callback, one field of one record changed: CPU time, {s['calls']} callbacks"
        " (the mean counts keyframes)",
        f"{'state':<20}{'variant':<16}{'mean us':>10}{'p50 us':>10}{'vs snapshot':>13}"
        f"{'bytes/change':>14}{'vs snapshot':>13}",
    ]
    for name in ("small", "large"):
        part = result["capture"][name]
        label = f"{part['snapshot_bytes'] / 1024:.1f} KB, {part['records']} rec"
        for variant, row in part["rows"].items():
            per = row["bytes_per_change"]
            ratio = row["bytes_vs_snapshot"]
            lines.append(
                f"{label:<20}{variant:<16}{row['mean_us']:>10.1f}{row['p50_us']:>10.1f}"
                f"{row['time_vs_snapshot']:>12.1%} {'-' if per is None else f'{per:,.0f}':>13}"
                f"{'-' if ratio is None else f'{ratio:.1%}':>13}"
            )
            label = ""
    big = result["capture"]["large"]["rows"]["tracker.record"]
    lines.append(
        f"goal (large): time < {GOAL_CAPTURE_RATIO:.0%} of a snapshot:"
        f" {big['time_vs_snapshot']:.1%} {_verdict(big['time_vs_snapshot'] < GOAL_CAPTURE_RATIO)};"
        f" bytes < {GOAL_BYTES_RATIO:.0%}: {big['bytes_vs_snapshot']:.1%}"
        f" {_verdict(big['bytes_vs_snapshot'] < GOAL_BYTES_RATIO)}"
    )
    lines += [
        "",
        f"   Through a GenServer (simpleSystemBase, Runtime.call, {s['server_calls']} calls;"
        " wall / process CPU per call)",
    ]
    for name in ("small", "large"):
        g = result["genserver"][name]
        rec, off = g["recording"], g["no capture"]
        lines.append(
            f"   {name:<6} no capture {off['us_per_call']:7.1f} / {off['cpu_us_per_call']:7.1f} us,"
            f" recording {rec['us_per_call']:7.1f} / {rec['cpu_us_per_call']:7.1f} us"
            f" (+{g['added_us_per_call']:.1f} / +{g['added_cpu_us_per_call']:.1f} us;"
            f" {rec['shipped_bytes_per_call']:,.0f} B shipped per call, tracer errors {rec['tracer_errors']})"
        )
    t = result["thespian"]["small"]
    rec, off = t["recording"], t["no capture"]
    lines += [
        f"   Through a plain Thespian actor (simpleSystemBase, ActorSystem.ask, {s['server_calls']}"
        " asks; integrations.thespian as elixirscope run records it: receive, reply, state)",
        f"   small  no capture {off['us_per_call']:7.1f} / {off['cpu_us_per_call']:7.1f} us,"
        f" recording {rec['us_per_call']:7.1f} / {rec['cpu_us_per_call']:7.1f} us"
        f" (+{t['added_us_per_call']:.1f} / +{t['added_cpu_us_per_call']:.1f} us;"
        f" {rec['shipped_bytes_per_call']:,.0f} B shipped per ask, errors {rec['errors']})",
        f"   a GenServer call with those steps wrapped, nothing recorded:"
        f" {t['genserver_wrapped']['wrapped_us']:.1f} us against"
        f" {t['genserver_wrapped']['plain_us']:.1f} (+{t['genserver_wrapped']['added_us']:.1f} us;"
        " medians of 5 interleaved rounds)",
    ]
    r = result["reconstruction"]
    st, nx, pv = r["state_ms"], r["next_ms"], r["prev_ms"]
    lines += [
        "",
        f"2. Reconstruction: {r['changes']:,} changes of a {r['snapshot_bytes'] / 1024:.1f} KB state"
        f" (recorded in {r['record_s']:.1f} s, {r['keyframes']:,} keyframes;"
        f" last state rebuilt exactly: {r['last_state_rebuilt_exactly']}), {r['samples']} random moments",
        f"   state at a moment: p50 {st['p50']:.2f} ms, p95 {st['p95']:.2f} ms (max {st['max']:.2f});"
        f" goal p95 <= {GOAL_STATE_P95_MS:g} ms: {_verdict(st['p95'] <= GOAL_STATE_P95_MS)}",
        f"   step forward: p50 {nx['p50']:.3f} ms, p95 {nx['p95']:.3f} ms;"
        f" back: p50 {pv['p50']:.3f} ms, p95 {pv['p95']:.3f} ms;"
        f" goal p95 <= {GOAL_STEP_P95_MS:g} ms:"
        f" {_verdict(max(nx['p95'], pv['p95']) <= GOAL_STEP_P95_MS)}",
        "",
        f"3. Bytes per change over the stream: {r['bytes_per_change']:,.0f}"
        f" ({r['bytes_per_change'] / r['snapshot_bytes']:.1%} of a snapshot, keyframes included)",
        "   tracker memory: "
        + ", ".join(f"{n:,} changes {b / 1e6:.2f} MB" for n, b in r["tracker_bytes"].items())
        + " (objects reachable from the tracker, sys.getsizeof)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--small", type=int, default=1024, help="small state, snapshot bytes")
    parser.add_argument("--large", type=int, default=100 * 1024, help="large state, snapshot bytes")
    parser.add_argument("--calls", type=int, default=500, help="callbacks timed per variant")
    parser.add_argument("--server-calls", type=int, default=500, help="GenServer calls timed")
    parser.add_argument("--changes", type=int, default=100_000, help="changes recorded (part 2)")
    parser.add_argument("--samples", type=int, default=1000, help="random moments rebuilt")
    args = parser.parse_args(argv)
    result = run(args.small, args.large, args.calls, args.server_calls, args.changes, args.samples)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
