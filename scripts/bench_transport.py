#!/usr/bin/env python3
"""Benchmark the ZeroMQ transport, next to raw pyzmq doing the same work.

Figures, all from one run on this machine:

- RequestServer/RequestClient round trip over tcp loopback (p50, p99)
  vs a raw REP/REQ pair sending the same bytes                       [peer]
- Credit-stream throughput, 1,000-event batches of ~100-byte msgpack events,
  policy ``block`` (must show zero drops)
  vs a raw PUSH/PULL pair pushing the same batches without credits   [peer]

Both benchmark functions are importable by path (``importlib``), keep no global
state, and return plain dicts; ``--json`` prints those dicts.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import queue
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import zmq

try:
    from elixirscope.contracts import Request, decode_response, encode, ok_response
    from elixirscope.transport import CreditReceiver, CreditSender, RequestClient, RequestServer
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from elixirscope.contracts import Request, decode_response, encode, ok_response
    from elixirscope.transport import CreditReceiver, CreditSender, RequestClient, RequestServer

GUARD = 30.0  # hang guard for every blocking wait, in seconds


# ----------------------------------------------------------------- helpers


def _percentiles(samples_ns: list[int]) -> dict[str, Any]:
    us = sorted(s / 1000 for s in samples_ns)
    return {
        "n": len(us),
        "p50_us": round(statistics.median(us), 1),
        "p90_us": round(us[min(len(us) - 1, int(len(us) * 0.90))], 1),
        "p99_us": round(us[min(len(us) - 1, int(len(us) * 0.99))], 1),
        "mean_us": round(statistics.fmean(us), 1),
        "max_us": round(us[-1], 1),
    }


def realistic_batch(events: int) -> bytes:
    """A msgpack batch of ``events`` function-call events, about 100 bytes each."""
    batch = [
        {
            "t": "call",
            "ts": 1_732_000_000_000_000_000 + i * 1_337,
            "pid": 48_213,
            "tid": 139_872_001,
            "fn": "app.handlers.orders:create_order",
            "line": 120 + i % 40,
            "corr": f"{i:016x}",
            "depth": i % 6,
        }
        for i in range(events)
    ]
    return msgspec.msgpack.encode(batch)


# ------------------------------------------------------- request round trip


def bench_request_roundtrip(n: int = 5000, *, warmup: int = 200) -> dict[str, Any]:
    """p50/p99 of ``RequestClient.request`` against a trivial RequestServer handler
    (tcp loopback), and of a raw REQ/REP pair sending the same encoded bytes."""
    requests = [Request(operation="ping", to_layer="bench") for _ in range(n + warmup)]
    handler = lambda request: ok_response(request, from_layer="bench")  # noqa: E731
    samples: list[int] = []
    with RequestServer("tcp://127.0.0.1:0", handler, layer="bench") as server:
        with RequestClient(server.endpoint, timeout=GUARD) as client:
            for i, request in enumerate(requests):
                started = time.perf_counter_ns()
                response = client.request(request)
                if i >= warmup:
                    samples.append(time.perf_counter_ns() - started)
                if not response.ok:
                    raise RuntimeError(f"benchmark request failed: {response.error}")
    result = {"transport": "tcp loopback", **_percentiles(samples)}
    result["requests_per_s"] = round(1e6 / result["mean_us"])
    result["raw_zmq_req_rep"] = _raw_req_rep(requests[0], n, warmup)
    return result


def _raw_req_rep(request: Request, n: int, warmup: int) -> dict[str, Any]:
    """The peer: REQ/REP moving the same request and response bytes, no contracts."""
    context = zmq.Context()
    rep, req = context.socket(zmq.REP), context.socket(zmq.REQ)
    try:
        for sock in (rep, req):
            sock.setsockopt(zmq.LINGER, 0)
        rep.bind("tcp://127.0.0.1:*")
        req.connect(rep.getsockopt(zmq.LAST_ENDPOINT).decode())
        reply = encode(ok_response(request, from_layer="bench"))
        payload = encode(request)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                if rep.poll(100):
                    rep.recv()
                    rep.send(reply)

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        samples: list[int] = []
        for i in range(n + warmup):
            started = time.perf_counter_ns()
            req.send(payload)
            if not req.poll(int(GUARD * 1000)):
                raise RuntimeError("raw REP did not answer")
            decode_response(req.recv())
            if i >= warmup:
                samples.append(time.perf_counter_ns() - started)
        stop.set()
        server.join(GUARD)
        return _percentiles(samples)
    finally:
        req.close(linger=0)
        rep.close(linger=0)
        context.term()


# ---------------------------------------------------------- stream throughput


def _produce(
    endpoint: str, payload: bytes, events: int, seconds: float, window: int, results: Any
) -> None:
    """Producer body (thread or child process): its sender lives and dies here."""
    sender = CreditSender(
        endpoint, policy="block", queue_batches=window, block_timeout=GUARD, stream="bench"
    )
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sender.send(payload, events)
    flushed = sender.flush(GUARD)
    sender.close(timeout=GUARD)
    results.put({"flushed": flushed, **sender.stats.as_dict()})


def bench_stream_throughput(
    seconds: float = 3.0,
    batch_events: int = 1000,
    window: int = 16,
    *,
    mode: str = "thread",
) -> dict[str, Any]:
    """Batches/s and events/s through a credit stream under policy ``block``.

    The producer runs in a thread (``mode="thread"``) or a forked process
    (``mode="process"``, which builds its own ZeroMQ context); the consumer takes
    batches in the calling thread. The raw PUSH/PULL figure (producer in a thread)
    is the same batches with no credits, contracts or accounting at all.
    """
    if mode not in ("thread", "process"):
        raise ValueError(f"mode must be 'thread' or 'process', got {mode!r}")
    payload = realistic_batch(batch_events)
    with CreditReceiver("tcp://127.0.0.1:0", window=window) as receiver:
        first, last, received, stats = _consume(
            receiver, payload, batch_events, seconds, window, mode
        )
        receiver_stats = receiver.stats.as_dict()
    elapsed = max(last - first, 1e-9)  # first to last arrival: received - 1 intervals
    rate = (received - 1) / elapsed if received > 1 else 0.0
    result = {
        "mode": mode,
        "transport": "tcp loopback",
        "window": window,
        "batch_events": batch_events,
        "bytes_per_event": round(len(payload) / batch_events, 1),
        "seconds": round(elapsed, 3),
        "batches": received,
        "events": received * batch_events,
        "batches_per_s": round(rate),
        "events_per_s": round(rate * batch_events),
        "mb_per_s": round(rate * len(payload) / 1e6, 1),
        "dropped": stats["dropped_newest"]
        + stats["dropped_oldest"]
        + stats["sampled_out"]
        + stats["block_timeouts"]
        + stats["dropped_on_close"],
        "blocked_seconds": round(stats["blocked_seconds"], 3),
        "credit_violations": receiver_stats["credit_violations"],
        "lost": stats["batches_sent"] - received,
        "in_doubt": stats["in_doubt"],
    }
    result["raw_zmq_push_pull"] = _raw_push_pull(payload, batch_events, seconds)
    return result


def _consume(
    receiver: CreditReceiver, payload: bytes, events: int, seconds: float, window: int, mode: str
) -> tuple[float, float, int, dict[str, Any]]:
    """Take batches until the producer has reported and all it sent has arrived.

    Returns (first arrival, last arrival, batches received, producer stats)."""
    args = (receiver.endpoint, payload, events, seconds, window)
    if mode == "thread":
        results: Any = queue.Queue(maxsize=1)
        producer: Any = threading.Thread(target=_produce, args=(*args, results), daemon=True)
    else:
        context = multiprocessing.get_context("fork")  # the child builds its own zmq context
        results = context.Queue(maxsize=1)
        producer = context.Process(target=_produce, args=(*args, results), daemon=True)
    producer.start()
    first = last = 0.0
    received, stats = 0, None
    guard = time.monotonic() + seconds + GUARD
    while stats is None or received < stats["batches_sent"]:
        batch = receiver.recv(timeout=0.05 if stats is None else 1.0)
        if batch is not None:
            last = time.perf_counter()
            first = first or last
            received += 1
        elif stats is not None or time.monotonic() > guard:
            break  # nothing more is coming: what is missing is reported as lost
        else:
            try:
                stats = results.get_nowait()
            except queue.Empty:
                pass
    producer.join(GUARD)
    if stats is None:
        raise RuntimeError("the producer did not report; see its traceback above")
    return first, last, received, stats


def _raw_push_pull(payload: bytes, events: int, seconds: float) -> dict[str, Any]:
    """The peer: the same batches over PUSH/PULL, bounded only by ZeroMQ's HWM."""
    context = zmq.Context()
    pull, push = context.socket(zmq.PULL), context.socket(zmq.PUSH)
    try:
        for sock in (pull, push):
            sock.setsockopt(zmq.LINGER, 0)
        pull.bind("tcp://127.0.0.1:*")
        push.connect(pull.getsockopt(zmq.LAST_ENDPOINT).decode())
        sent = [0]

        def produce() -> None:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if push.poll(100, zmq.POLLOUT):
                    push.send(payload, copy=False)
                    sent[0] += 1
            push.send(b"")  # end marker

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        received, started = 0, time.perf_counter()
        while pull.poll(int(GUARD * 1000)):
            if not pull.recv():
                break
            received += 1
        elapsed = time.perf_counter() - started
        producer.join(GUARD)
        return {
            "batches_per_s": round(received / elapsed),
            "events_per_s": round(received * events / elapsed),
        }
    finally:
        push.close(linger=0)
        pull.close(linger=0)
        context.term()


# ---------------------------------------------------------------------- CLI


def run_machine_info() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "pyzmq": zmq.pyzmq_version(),
        "libzmq": zmq.zmq_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def bench_stream_with_curve(seconds: float, batch_events: int, window: int) -> dict[str, Any]:
    """The same credit stream with CURVE + ZAP on both ends, as a daemon's ingest runs
    by default (``security.curve = true``): the cost of authentication and encryption."""
    import tempfile

    from elixirscope.transport import ensure_keys, serve_with

    with tempfile.TemporaryDirectory() as keys_dir:
        serve_with(ensure_keys(keys_dir))
        try:
            return bench_stream_throughput(seconds, batch_events, window, mode="thread")
        finally:
            serve_with(None)


def run(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "machine": run_machine_info(),
        "request_roundtrip": bench_request_roundtrip(args.requests),
        "stream_throughput": bench_stream_throughput(
            args.seconds, args.batch_events, args.window, mode=args.mode
        ),
        "stream_throughput_curve": bench_stream_with_curve(
            args.seconds, args.batch_events, args.window
        ),
    }


def transport_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Table rows for the transport figures (reused by bench_runtime.py)."""
    rr, st = results["request_roundtrip"], results["stream_throughput"]
    curve = results.get("stream_throughput_curve")
    raw_rr, raw_st = rr["raw_zmq_req_rep"], st["raw_zmq_push_pull"]
    return [
        (
            "RequestServer round trip (tcp loopback)",
            f"{rr['p50_us']} us",
            f"{rr['p99_us']} us",
            f"{rr['requests_per_s']:,} req/s (n={rr['n']})",
        ),
        (
            "  peer: raw REQ/REP, same bytes",
            f"{raw_rr['p50_us']} us",
            f"{raw_rr['p99_us']} us",
            f"n={raw_rr['n']}",
        ),
        (
            f"credit stream, {st['batch_events']:,}-event batches ({st['mode']}, "
            f"window {st['window']})",
            "",
            "",
            f"{st['batches_per_s']:,} batches/s = {st['events_per_s']:,} events/s "
            f"({st['mb_per_s']} MB/s), dropped {st['dropped']}, lost {st['lost']}",
        ),
        (
            "  peer: raw PUSH/PULL, no credits",
            "",
            "",
            f"{raw_st['batches_per_s']:,} batches/s = {raw_st['events_per_s']:,} events/s",
        ),
    ] + ([(
        "  same stream, CURVE-authenticated (thread; the daemon's default)",
        "",
        "",
        f"{curve['batches_per_s']:,} batches/s = {curve['events_per_s']:,} events/s "
        f"({curve['mb_per_s']} MB/s), lost {curve['lost']}",
    )] if curve else [])


def format_table(rows: list[tuple[str, ...]], footer: str) -> str:
    """Left-aligned columns under a header row, then a footer line."""
    rows = [("figure", "p50", "p99", "other"), *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n\n" + footer


def machine_line(results: dict[str, Any]) -> str:
    m, st = results["machine"], results["stream_throughput"]
    return (
        f"{st['bytes_per_event']} bytes/event; Python {m['python']}, pyzmq {m['pyzmq']}, "
        f"libzmq {m['libzmq']} on {m['platform']}, {m['cpus']} CPUs"
    )


def _table(results: dict[str, Any]) -> str:
    return format_table(transport_rows(results), machine_line(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--requests", type=int, default=5000, help="round trips to time")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long to push the stream")
    parser.add_argument("--batch-events", type=int, default=1000, help="events per batch")
    parser.add_argument("--window", type=int, default=16, help="credit window (batches)")
    parser.add_argument(
        "--mode",
        choices=("thread", "process"),
        default="thread",
        help="run the stream producer in a thread or a forked process",
    )
    args = parser.parse_args(argv)
    results = run(args)
    print(json.dumps(results, indent=2) if args.json else _table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
