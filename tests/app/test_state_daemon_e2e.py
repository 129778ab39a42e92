"""Time travel through a daemon: its StateTracing layer answers as the data dir does.

A real daemon subprocess; programs recorded into it with ``elixirscope run
--daemon`` (the shop example, with its crash and restart, and a live host
whose two GenServers hand values to each other); then ``elixirscope
state|history|diff-state|why --daemon`` and the console print what the same
commands print reading the daemon's data dir, while the host keeps changing
state (the tracker's news refreshes the replay service's timelines) and after
the layer's actors are killed and restarted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from waiting import wait_until

LEDGER = textwrap.dedent("""\
    from elixirscope.runtime import GenServer, Reply


    class Clerk(GenServer):
        def init(self, book):
            return {"book": book, "made": 0}

        def handle_call(self, word, from_, state):
            state["made"] += 1
            self.cast(state["book"], ("enter", {"n": state["made"], "what": word}))
            return Reply(state["made"], state)


    class Book(GenServer):
        def init(self, args):
            return {"entries": [], "total": 0}

        def handle_cast(self, message, state):
            _, entry = message
            state["entries"].append(entry)
            state["total"] += entry["n"]
            return state

        def handle_call(self, request, from_, state):
            return Reply(len(state["entries"]), state)
""")

HOST = textwrap.dedent("""\
    import sys

    from elixirscope.runtime import Runtime
    from ledger import Book, Clerk

    with Runtime("simpleSystemBase") as rt:
        book = rt.start(Book, path="ledger/book")
        clerk = rt.start(Clerk, book, path="ledger/clerk")
        print("ready", flush=True)
        for line in sys.stdin:
            made = rt.call(clerk, line.strip())
            print("entered", made, flush=True)
""")


def es(*args: str, timeout: float = 120, input: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "ELIXIRSCOPE_API__REQUEST_TIMEOUT_S": "30"}
    stdin = subprocess.DEVNULL if input is None else None
    return subprocess.run([sys.executable, "-m", "elixirscope", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, stdin=stdin, input=input)


class Reads:
    """The same state command read from the daemon and from its data dir."""

    def __init__(self, d) -> None:  # noqa: ANN001
        self.d = d

    def daemon(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return es(args[0], "--daemon", self.d.endpoint, "--keys", str(self.d.keys_dir), *args[1:],
                  input=input)

    def local(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return es(args[0], "--data-dir", str(self.d.data_dir), *args[1:], input=input)

    def same(self, *args: str) -> str:
        """Wait until both answer, and answer the same; that answer."""
        seen: list = []

        def agree():
            mine, theirs = self.daemon(*args), self.local(*args)
            seen[:] = [mine, theirs]
            ok = mine.returncode == theirs.returncode == 0 and mine.stdout == theirs.stdout
            return ok and mine.stdout
        try:
            return wait_until(agree, timeout=30)
        except AssertionError:
            raise AssertionError(f"{args}: the daemon and the data dir differ: {seen}") from None


def test_state_reads_through_the_daemon_answer_as_the_data_dir(make_daemon, tmp_path):
    d = make_daemon()
    reads = Reads(d)
    done = es("run", "--daemon", d.endpoint, "--keys", str(d.keys_dir), "-m", "elixirscope.examples.shop")
    assert done.returncode == 0, done.stderr
    # the 8th: terminate, at the runtime's shutdown
    wait_until(lambda: "8 callbacks" in reads.local("history", "stock").stdout, timeout=30)

    assert "{'orders': 2, 'takings': 39.0}" in reads.same("state", "desk")
    crash = reads.same("state", "stock", "--before-crash")
    assert "which raised KeyError: 'coffee'" in crash
    assert "8 callbacks" in reads.same("history", "stock")
    reads.same("history", "desk", "--field", "orders", "--limit", "0")
    assert "~ tea: 10 -> 8" in reads.same("diff-state", "shop/stock", "1", "3")
    assert "sent by a program outside any actor" in reads.same("why", "desk", "orders")
    as_json = json.loads(reads.same("state", "stock", "--change", "2", "--json"))
    assert as_json["state"] == {"tea": 8, "cake": 4, "scone": 8, "jam": 2}

    # the stepper, through the daemon, says what it says over the data dir
    steps = "next\nnext 2\nprev\nprev\ndiff\nshow tea\nwhy tea\nhistory cake\ngoto 99\nwhy nope\nquit\n"
    stepped = reads.daemon("replay", "stock", input=steps)
    assert stepped.returncode == 0, stepped.stderr
    assert stepped.stdout == reads.local("replay", "stock", input=steps).stdout
    assert "change 3/8" in stepped.stdout and "~ tea: 10 -> 8" in stepped.stdout
    assert "shop/stock: changes 1 to 8, not 99" in stepped.stdout
    assert "shop/stock has no nope" in stepped.stdout
    repl = subprocess.run(  # and in the console, as a mode with its own prompt
        [sys.executable, "-m", "elixirscope", "console", "--connect", d.endpoint, "--timeout", "30",
         "--keys", str(d.keys_dir)],
        input="replay stock change=2\ndiff\nwhy nope\nquit\nreplay nobody\nquit\n",
        capture_output=True, text=True, timeout=120,
    )
    assert repl.returncode == 0, repl.stderr
    assert "change 2/8" in repl.stdout and "~ tea: 10 -> 8" in repl.stdout, repl.stdout
    assert "replay[shop/stock]> " in repl.stdout and "shop/stock has no nope" in repl.stdout
    assert "back to the console" in repl.stdout and "no actor or object 'nobody'" in repl.stderr

    console = d.console("state stock before_crash")  # the console asks the same layer
    assert console.returncode == 0 and console.stdout.strip() == crash.strip()
    assert d.console("history desk").stdout.strip() == reads.local("history", "desk").stdout.strip()

    # bad input: a clear message, exit status 1, from the daemon as from the data dir
    for answer in (reads.daemon("state", "nobody"), reads.local("state", "nobody")):
        assert answer.returncode == 1 and "no actor or object 'nobody'" in answer.stderr, answer.stderr
    refused = d.request("state", to_layer="state_tracing", target="desk", change="two")
    assert refused.error.code == "invalid_params" and "`change`" in refused.error.message
    refused = d.console("state desk change=two")
    assert refused.returncode == 2 and "change takes a whole number" in refused.stderr

    cause = d.request("cause", to_layer="state_tracing", target="stock", change=4)
    assert cause.ok and cause.data["receive"]["actor"] == "shop/stock", cause
    assert "KeyError" in cause.data["text"] and cause.data["send"]["sender"] is None

    # a live host: its state changes after the service cached the timelines
    (tmp_path / "ledger.py").write_text(LEDGER)
    (tmp_path / "host.py").write_text(HOST)
    host = subprocess.Popen(
        [sys.executable, "-m", "elixirscope", "run", "--daemon", d.endpoint, "--keys", str(d.keys_dir),
         str(tmp_path / "host.py")],
        cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert host.stdout.readline() == "ready\n"
        for word in ("apple", "pear"):
            host.stdin.write(word + "\n")
            host.stdin.flush()
            assert host.stdout.readline().startswith("entered")
            book = reads.same("state", "book")  # cached now; the next word changes it
            assert f"'what': '{word}'" in book
        why = reads.same("why", "book", "entries[1].what")
        assert "sent by ledger/clerk" in why and "'pear'" in why
    finally:
        host.stdin.close()
        host.wait(timeout=60)
    assert host.returncode == 0

    # the layer restarted: it answers the same (the tracker reads the store again)
    before = d.pids()
    assert d.console("kill state_tracing/replay").returncode == 0
    wait_until(lambda: d.pids().get("state_tracing/replay") not in (None, before["state_tracing/replay"]),
               timeout=30)
    assert d.pids()["state_tracing/tracker"] == before["state_tracing/tracker"]
    assert "'total': 3" in reads.same("state", "book")
    assert d.console("kill state_tracing/tracker").returncode == 0

    def both_restarted():  # rest_for_one: the service after the tracker restarts too
        now = d.pids()
        return all(now.get(p) not in (None, before[p]) for p in ("state_tracing/tracker",
                                                               "state_tracing/replay")) and now
    after = wait_until(both_restarted, timeout=30)
    assert after["query/engine"] == before["query/engine"]
    assert "'total': 3" in reads.same("state", "book")

    def counted():
        stats = d.request("stats", to_layer="state_tracing")
        return stats.ok and stats.data["tracked"].get("targets") == 4 and stats.data
    stats = wait_until(counted, timeout=30)
    assert stats["tracked"]["changes"] >= 10 + 3 + 3 and stats["tracked"]["gaps"] == 0
    assert stats["cache"]["entries"] >= 1
    tracker = d.request("stats", to_layer="state_tracing/tracker")
    assert tracker.ok and "ledger/book" in tracker.data["tracked"]["recent"]
