"""Chaos: a recording under load while each Capture actor (and the read-only
correlator) is killed in turn. Every time, events produced = events stored +
drops counted, exactly: nothing acknowledged is lost, nothing lost is uncounted.

The host is a real ``elixirscope run --daemon`` process tracing a function in a
loop until the test says stop; it prints how many calls it made (two events each).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
from daemons import Unavailable
from waiting import wait_until

HOST = textwrap.dedent("""\
    import os, sys

    def tick(n):
        return n

    stop, n = sys.argv[1], 0
    while not os.path.exists(stop):
        for _ in range(1000):
            tick(n)
            n += 1
    print(n)
""")

TARGETS = ["capture/ingest", "capture/writers/writer-1", "query/correlator"]


def _es(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "elixirscope", *args], capture_output=True,
                          text=True, timeout=timeout)


def _acked(d) -> int | None:
    try:
        response = d.request("stats", to_layer="capture", timeout=5)
    except Exception:  # noqa: BLE001 - restarting: no answer yet
        return None
    return response.data.get("handoff_events_acked") if response.ok else None


def _pid(d, path: str) -> int | None:
    try:
        return d.pids().get(path)
    except Unavailable:
        return None


def _flowing(d) -> bool:
    """Events are being committed now (two reads, half a second apart, differ)."""
    first = _acked(d)
    time.sleep(0.5)
    second = _acked(d)
    return first is not None and second is not None and second > first


def _run_of(d, run_id_prefix: str | None = None):
    done = _es("runs", "--daemon", d.endpoint, "--keys", str(d.keys_dir), "--json")
    if done.returncode != 0:
        return None
    runs = json.loads(done.stdout)["runs"]
    return runs[0] if runs and runs[0]["ended_ns"] else None  # while the daemon answers


@pytest.mark.parametrize("target", TARGETS)
def test_killing_a_capture_actor_under_load_loses_nothing_uncounted(make_daemon, tmp_path, target):
    d = make_daemon()
    assert d.request("endpoint", "capture", timeout=60).ok
    script = tmp_path / "host.py"
    script.write_text(HOST)
    stop = tmp_path / "stop"
    host = subprocess.Popen(
        [sys.executable, "-m", "elixirscope", "run", "--daemon", d.endpoint, "--keys",
         str(d.keys_dir), str(script), str(stop)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: _flowing(d), timeout=120)
        before = d.pids()[target]
        done = d.console(f"kill {target}")
        assert done.returncode == 0, done.stderr
        wait_until(lambda: _pid(d, target) not in (None, before), timeout=60)
        wait_until(lambda: _flowing(d), timeout=120)  # the new actors store events again
        stop.write_text("")
        out, err = host.communicate(timeout=300)
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
    assert host.returncode == 0, err
    # a call and a return event per call, and the session's ThreadStart for the main thread
    produced = 2 * int(out.strip()) + 1

    def settled():
        """The run once its record has ended. Its record names the batches the host sent
        but saw no confirmation of before exiting; `runs` counts those the store lacks as
        dropped, so the sum is whole at once - asked again only for a batch that lands
        between `runs`' two reads (the totals, then the batches in doubt)."""
        run = _run_of(d)
        return run if run and run["events"] + run["dropped"] >= produced else None
    try:
        run = wait_until(settled, timeout=120)
    except AssertionError:
        raise AssertionError(f"{target}: produced {produced}, run {_run_of(d)}") from None
    assert run["events"] + run["dropped"] == produced, (target, run, produced, err)
    assert produced >= 100_000, "too little load to mean anything"
    _figures(target, produced, run)


def _figures(target: str, produced: int, run: dict) -> None:
    """Append this kill's figures for scripts/chaos.py's table, when asked to."""
    path = os.environ.get("ELIXIRSCOPE_CHAOS_FIGURES")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"kill": target, "produced": produced, "stored": run["events"],
                                  "dropped": run["dropped"],
                                  "uncounted": produced - run["events"] - run["dropped"]}) + "\n")
