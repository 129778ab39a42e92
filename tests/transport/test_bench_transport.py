"""scripts/bench_transport.py loads by path (as bench_runtime.py loads it) and reports."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_transport.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_transport_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_both_benchmarks_run_when_imported_by_path():
    bench = _load()
    roundtrip = bench.bench_request_roundtrip(50, warmup=5)
    assert roundtrip["n"] == 50 and 0 < roundtrip["p50_us"] <= roundtrip["p99_us"]
    assert roundtrip["raw_zmq_req_rep"]["n"] == 50
    stream = bench.bench_stream_throughput(0.2, batch_events=100, window=4)
    assert stream["batches"] > 0 and stream["events_per_s"] > 0
    assert (stream["dropped"], stream["lost"], stream["credit_violations"]) == (0, 0, 0)


def test_a_realistic_batch_is_about_100_bytes_per_event():
    payload = _load().realistic_batch(1000)
    assert 80 <= len(payload) / 1000 <= 130
