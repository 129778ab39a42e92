"""Chaos figures: a real daemon under a burst of fuzzed frames from unauthenticated clients.

    python scripts/chaos.py [--frames 20000] [--ingest-frames 5000] [--seed 1]

Starts a daemon (temporary data dir, free ports), records every actor's pid and
restart count and the resident memory of the daemon and its actor processes,
then sends ``--frames`` fuzzed frames to the API endpoint (valid requests,
mutated ones, random bytes and the known hostile requests: infinite timeouts,
deep or huge params, overflowing ``events`` filters, long config paths,
oversized frames) over several connections without waiting for answers, and
``--ingest-frames`` fuzzed credit-stream frames to the ingest. It then measures
how long a fresh client waits for an ok ``status`` after the burst (``status``
takes no in-flight slot, so it never waits behind the burst), counts the
answers, and prints one table: frames fuzzed, crashes (actors whose pid
changed, or the daemon gone), restarts caused, API recovery time, memory
retained after the burst (RSS now minus RSS before, after a short settle).

Then a real host (``elixirscope run --daemon``) records the planted-secrets
corpus (tests/secrets_corpus.py: 25 kinds of secret in arguments, returns,
attributes, exceptions, actor state and messages, custom events) into the same
daemon, and the row "secrets leaked" counts the secrets found in what the
daemon stored (read back with ``elixirscope events --daemon``; goal 0).

Then (unless ``--no-delivery``) it runs the delivery chaos tests
(tests/app/test_capture_chaos.py: a host recording under load while
``capture/ingest``, ``capture/writers/writer-1`` and ``query/correlator`` are
killed in turn; tests/ingest/test_ingest_delivery.py: a full store) and adds
their figures: events produced / stored / counted drops / uncounted per kill,
and what a full store did.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import psutil
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from daemons import Daemon  # noqa: E402
from hostile import (  # noqa: E402
    U64,
    batch,
    batch_with_deep_custom_data,
    deep_list,
    request_frame,
    restarts,
)
from secrets_corpus import SECRETS, leaked, write_host  # noqa: E402

from elixirscope.contracts import Request, encode  # noqa: E402
from elixirscope.transport import RequestClient, load_keys, security  # noqa: E402
from elixirscope.transport.credit_wire import encode_batch, encode_hello  # noqa: E402

CONNECTIONS = 8
SETTLE_S = 10.0


def api_frames(rng: random.Random):
    """An endless mix of good, mutated, random and known-hostile Request frames."""
    good = [encode(Request(operation=op, to_layer=layer)) for op, layer in
            (("status", "app"), ("tree", "app"), ("health", "api"), ("health", "query"))]
    hostile = [
        request_frame("status", timeout=float("inf")),
        request_frame("status", timeout=1e308),
        request_frame("events", to_layer="query", params={"until": 2**63}),
        request_frame("events", to_layer="query", params={"since": "9" * 30}),
        request_frame("config_get", params={"path": "x" * 10**6}),
        request_frame("config_get", params={"path": "capture." + "y" * 60_000}),
        request_frame("status", params={"a": msgspec.Raw(deep_list(100_000))}),
        request_frame("x" * 300),
        request_frame("kill", params={"path": 7}),
        request_frame("restart", params={"path": "/" * 5000}),
    ]
    while True:
        roll = rng.random()
        if roll < 0.001:
            yield b"\x00" * (2 << 20)  # over api.max_request_bytes
        elif roll < 0.2:
            yield rng.choice(hostile)
        elif roll < 0.4:
            yield rng.choice(good)
        elif roll < 0.8:
            frame = bytearray(rng.choice(good))
            for _ in range(rng.randrange(1, 4)):
                frame[rng.randrange(len(frame))] = rng.randrange(256)
            yield bytes(frame[: rng.randrange(1, len(frame) + 1)])
        else:
            yield rng.randbytes(rng.randrange(0, 200))


def ingest_frames(rng: random.Random):
    """An endless mix of hostile and random credit-stream messages."""
    fixed = [
        encode_hello(U64, "chaos"), encode_batch(U64, 1, batch()),
        encode_batch(1, 2**32 - 1, batch()), encode_batch(2, 1, batch_with_deep_custom_data(100_000)),
        encode_batch(3, 1, batch(dropped=-1)),
    ]
    huge = encode_batch(4, 1, batch(function="f" * (2 << 20)))
    while True:
        roll = rng.random()
        if roll < 0.002:
            yield huge
        elif roll < 0.3:
            yield rng.choice(fixed)
        else:
            header = b"CS\x01" + bytes([rng.randrange(0, 6)]) + rng.randbytes(rng.randrange(0, 24))
            yield [header, *(rng.randbytes(rng.randrange(0, 64)) for _ in range(rng.randrange(0, 3)))]


def rss_by_pid(proc: psutil.Process) -> dict[int, float]:
    """MB resident of the daemon and each of its actor processes."""
    out = {}
    for p in [proc, *proc.children(recursive=True)]:
        try:
            out[p.pid] = p.memory_info().rss / 2**20
        except psutil.Error:
            pass
    return out


def ask_status(endpoint: str, keys: security.Keys,
               timeout: float = 60.0) -> tuple[float, float, int, float | None]:
    """A fresh client asking ``status`` until it is answered ok, retrying ``busy`` as a
    client should: (seconds to the first answer, seconds to ok, busy answers, the age
    of the layers it shows when they are a stale view, else None)."""
    started = time.monotonic()
    first, busy = None, 0
    with RequestClient(endpoint, timeout=timeout, keys=keys) as client:
        while True:
            response = client.request(Request(operation="status", to_layer="app", timeout=timeout))
            first = first if first is not None else time.monotonic() - started
            if response.ok:
                stale = response.data.get("layers_stale")
                return first, time.monotonic() - started, busy, stale and stale["age_s"]
            if response.error.code != "busy" or time.monotonic() - started > timeout:
                raise SystemExit(f"status after the burst failed: {response.error}")
            busy += 1
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--ingest-frames", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-delivery", action="store_true",
                        help="skip the kill-under-load and disk-full figures")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="es-chaos-") as tmp:
        daemon = Daemon(Path(tmp), "chaos", "[api]\nrequest_timeout_s = 30.0\n")
        try:
            daemon.wait_ready()
            return run(daemon, rng, args)
        finally:
            daemon.stop()


def run(daemon: Daemon, rng: random.Random, args: argparse.Namespace) -> int:
    proc = psutil.Process(daemon.proc.pid)
    before = restarts(daemon.request("tree", timeout=60).data)
    ingest = daemon.request("endpoint", to_layer="capture", timeout=60).data["ingest"]
    time.sleep(SETTLE_S)
    rss_before_by_pid = rss_by_pid(proc)
    rss_before = sum(rss_before_by_pid.values())

    keys = load_keys(daemon.keys_dir)
    context = zmq.Context()
    sockets = []
    for endpoint in [daemon.endpoint] * CONNECTIONS + [ingest] * 2:
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.LINGER, 0)
        security.secure_client(sock, keys)  # a peer the daemon lets in: the worst case
        sock.connect(endpoint)
        sockets.append(sock)
    api_socks, ingest_socks = sockets[:CONNECTIONS], sockets[CONNECTIONS:]
    started = time.monotonic()
    api = api_frames(rng)
    for n in range(args.frames):
        api_socks[n % CONNECTIONS].send_multipart([b"", next(api)])
    feed = ingest_frames(rng)
    for n in range(args.ingest_frames):
        ingest_socks[n % 2].send_multipart(next(feed))
    sent_s = time.monotonic() - started
    first_s, recovery_s, busy, stale = ask_status(daemon.endpoint, keys)

    answers, codes = 0, {}
    deadline = time.monotonic() + 120
    poller = zmq.Poller()
    for sock in api_socks:
        poller.register(sock, zmq.POLLIN)
    while answers < args.frames and time.monotonic() < deadline:
        for sock, _ in poller.poll(1000):
            reply = msgspec.msgpack.decode(sock.recv_multipart()[-1])
            answers += 1
            code = reply.get("status") if reply.get("status") == "ok" else reply["error"]["code"]
            codes[code] = codes.get(code, 0) + 1
    for sock in sockets:
        sock.close()
    context.term()
    time.sleep(SETTLE_S)
    rss_after_by_pid = rss_by_pid(proc)
    rss_after = sum(rss_after_by_pid.values())
    after = restarts(daemon.request("tree", timeout=60).data)
    names = {pid: path or "(application)" for path, (pid, _) in after.items()}
    names[proc.pid] = "(daemon)"
    growth = sorted(((rss_after_by_pid[pid] - rss_before_by_pid.get(pid, 0.0), names.get(pid, str(pid)))
                     for pid in rss_after_by_pid), reverse=True)[:3]
    crashed = sorted(p for p in before if after.get(p, (None,))[0] != before[p][0])
    caused = sum(after.get(p, (0, 0))[1] - r for p, (_, r) in before.items())
    rows = [
        ("frames fuzzed (API / ingest)", f"{args.frames:,} / {args.ingest_frames:,}"),
        ("burst sent in", f"{sent_s:.2f} s"),
        ("API answers (one per frame)", f"{answers:,} of {args.frames:,}"),
        ("answers by code", ", ".join(f"{k} {v:,}" for k, v in sorted(codes.items()))),
        ("crashes (actors with a new pid)", f"{len(crashed)}{': ' + ', '.join(crashed) if crashed else ''}"),
        ("restarts caused", str(caused)),
        ("API first answer to a new client", f"{first_s:.3f} s"),
        ("API: time to first ok status after the burst",
         f"{recovery_s:.3f} s ({busy} busy answers first"
         + (f"; the layers a view {stale:.1f} s old: the supervisor's answer waits behind the "
            "burst's calls" if stale is not None else "") + ")"),
        ("memory before / after (RSS, all processes)", f"{rss_before:.1f} / {rss_after:.1f} MB"),
        ("memory retained", f"{rss_after - rss_before:+.1f} MB"),
        ("  most of it in", ", ".join(f"{name} {mb:+.1f} MB" for mb, name in growth)),
        ("daemon alive", str(daemon.proc.poll() is None)),
    ]
    leak_row, leaks = secrets_row(daemon)
    rows.append(leak_row)
    delivery_ok = True
    if not args.no_delivery:
        more, delivery_ok = delivery_rows()
        rows += more
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    healthy = not crashed and caused == 0 and daemon.proc.poll() is None
    return 0 if delivery_ok and healthy and leaks == 0 else 1


def secrets_row(daemon: Daemon) -> tuple[tuple[str, str], int]:
    """Record the planted-secrets corpus through the daemon; count the secrets it stored."""
    name = "secrets leaked (planted corpus, stored by the daemon)"
    es = [sys.executable, "-m", "elixirscope"]
    keys = ["--keys", str(daemon.keys_dir)]
    with tempfile.TemporaryDirectory(prefix="es-secrets-") as tmp:
        script, config = write_host(Path(tmp))
        done = subprocess.run([*es, "run", "--daemon", daemon.endpoint, *keys, "--config",
                               str(config), str(script)], capture_output=True, text=True,
                              timeout=300)
    if done.returncode != 0:
        return (name, f"not measured: the host failed: {done.stderr.strip()[-300:]}"), 1
    deadline, events, text = time.monotonic() + 120, [], ""
    while time.monotonic() < deadline:  # until its last event (a custom one) is stored
        read = subprocess.run([*es, "events", "--daemon", daemon.endpoint, *keys, "--all",
                               "--json"], capture_output=True, text=True, timeout=120)
        if read.returncode == 0:
            text = read.stdout
            events = json.loads(text)["events"]
            if any(e["type"] == "custom" and e.get("name") == "payment" for e in events):
                break
        time.sleep(0.5)
    else:
        return (name, f"not measured: the corpus's events were not all stored ({len(events)})"), 1
    found = leaked(text)
    detail = f": {', '.join(found)}" if found else ""
    return (name, f"{len(found)} of {len(SECRETS)} ({len(events)} events stored){detail}"), len(found)


def delivery_rows() -> tuple[list[tuple[str, str]], bool]:
    """Run the delivery chaos tests with figures on; one row per kill, one for disk full."""
    import json
    import os
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as figures:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "tests/app/test_capture_chaos.py",
             "tests/ingest/test_ingest_delivery.py::test_a_full_store_is_retried_reported_and_"
             "resumes_and_every_event_is_accounted"],
            cwd=repo, capture_output=True, text=True,
            env={**os.environ, "ELIXIRSCOPE_CHAOS_FIGURES": figures.name})
        lines = [json.loads(line) for line in figures.read().splitlines() if line.strip()]
    rows = []
    for f in lines:
        if "kill" in f:
            rows.append((f"kill {f['kill']} under load", f"produced {f['produced']:,} / stored "
                         f"{f['stored']:,} / counted drops {f['dropped']:,} / uncounted "
                         f"{f['uncounted']:,}"))
        else:
            rows.append(("disk full (a capped shard)", f["summary"]))
    summary = (done.stdout.strip().splitlines() or ["no output"])[-1]
    rows.append(("delivery tests", summary))
    return rows, done.returncode == 0


if __name__ == "__main__":
    raise SystemExit(main())
