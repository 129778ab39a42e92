"""A daemon starts and keeps running on a damaged store (issue 9, section 5).

Before the daemon starts, the shard its first writer will claim gets garbage
pages and an idle shard gets a garbage header. The writer quarantines its shard
and writes afresh; foundation/event_store quarantines the idle one on its
periodic stats; nothing restarts, and the stats name both shards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from waiting import wait_until

from elixirscope.contracts.trace import decode_batch, encode_batch
from elixirscope.store import EventStore

PAGE = 8192


def _fill(data_dir, producer: str) -> tuple[str, EventStore]:
    store = EventStore.open(data_dir)
    for seq in range(1, 41):
        events = [("custom", seq * 100 + i, 10**18 + seq * 1000 + i, 1, f"c{seq}-{i % 4}", 0,
                   "tick", {"i": str(i)}) for i in range(100)]
        frame = encode_batch(node="n", pid=1, program="old.py", producer=producer, seq=seq,
                             sent_ts=10**18 + seq * 1000, dropped=0, events=events)
        store.append(decode_batch(frame), frame)
    return store.shard_path, store


def _restarts(tree) -> dict[str, int]:
    out: dict[str, int] = {}

    def walk(node):
        if node["path"]:
            out[node["path"]] = node["restarts"]
        for child in node.get("children") or ():
            walk(child)
    walk(tree["root"])
    return out


def test_a_daemon_starts_with_damaged_shards_quarantines_them_and_nothing_restarts(
        tmp_path, make_daemon):
    data_dir = tmp_path / "node-a-data"
    first, a = _fill(data_dir, "old-a:1:1")    # shard-000: a writer of the daemon claims it
    idle, b = _fill(data_dir, "old-b:1:1")     # shard-001
    b.close()  # first: b's writer reads a's shard (duplicate checks), which keeps a's WAL
    a.close()
    idle_path = idle.replace("shard-001", "shard-050")  # beyond the writer pool: stays idle
    os.replace(idle, idle_path)
    pages = os.path.getsize(first) // PAGE
    with open(first, "r+b") as f:
        for page in (3, pages // 3, pages // 2, pages - 2):
            f.seek(page * PAGE)
            f.write(os.urandom(PAGE))
    with open(idle_path, "r+b") as f:
        f.write(b"garbage header " * 8)

    d = make_daemon("node-a")  # waits for every layer to be running

    def actor_stats():  # None when the call timed out on a loaded machine: asked again
        done = d.console("send foundation/event_store stats", "--json")
        stats = json.loads(done.stdout) if done.returncode == 0 else None
        return stats if isinstance(stats, dict) and "uptime_s" in stats else None

    wait_until(lambda: (actor_stats() or {}).get("store", {}).get("shards_quarantined") == 2,
               timeout=120)
    pid = d.pids()["foundation/event_store"]
    uptime = wait_until(actor_stats, timeout=120)["uptime_s"]
    # several periodic reports (1 s each) over the quarantined store
    wait_until(lambda: (actor_stats() or {}).get("uptime_s", 0) > uptime + 5, timeout=120)
    stats = wait_until(actor_stats, timeout=120)["store"]
    assert stats["shards_damaged"] == 0
    assert sorted(q["shard"] for q in stats["quarantined"]) == [
        "shard-000.sqlite3", "shard-050.sqlite3"]
    assert any("not a database" in q["reason"] for q in stats["quarantined"])
    assert all(n == 0 for n in _restarts(d.request("tree").data).values()), d.request("tree").data
    assert d.pids()["foundation/event_store"] == pid
    def status_naming_the_store():
        response = d.request("status", timeout=30.0)
        return response if response.ok and "shards_quarantined" in response.data["store"] else None
    status = wait_until(status_naming_the_store, timeout=120)
    assert all(layer["restarts"] == 0 for layer in status.data["layers"])
    assert status.data["store"]["shards_quarantined"] == 2
    # the console's status names them (retried: on a loaded machine an inner call may time out)
    wait_until(lambda: "quarantined: shard-000.sqlite3, shard-050.sqlite3"
               in d.console("status").stdout, timeout=120)
    # reads through the daemon name the quarantine too: the console, and the CLI on stderr
    wait_until(lambda: "warning: incomplete read" in d.console("events limit=5").stdout,
               timeout=120)

    def cli_events():
        done = subprocess.run([sys.executable, "-m", "elixirscope", "events", "--daemon",
                               d.endpoint, "--keys", str(d.keys_dir), "--json"],
                              capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)
        return done if done.returncode == 0 else None
    done = wait_until(cli_events, timeout=120)
    assert "warning: incomplete read" in done.stderr, done.stderr
    assert {w["shard"] for w in json.loads(done.stdout)["warnings"]} == {
        "shard-000.sqlite3", "shard-050.sqlite3"}
    wait_until(lambda: "shards_quarantined" in d.console("stats foundation").stdout, timeout=120)
    log = d.log.read_text()
    assert "shard-050.sqlite3 is damaged" in log and "moved to" in log
    assert len(list((data_dir / "quarantine").iterdir())) == 2
