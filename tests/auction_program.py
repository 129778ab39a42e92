"""A recorded test program: an auction room that publishes each bid to its watchers
through the runtime's registry (pub/sub), crashes on a bad bid and is restarted by its
supervisor; ``record(where)`` records it with the real ``elixirscope run``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ACTORS = '''
from elixirscope.runtime import ChildSpec, GenServer, Reply, Supervisor, SupervisorSpec


class Watcher(GenServer):
    def init(self, args):
        self.register("room:1", unique=False)
        if args and args[0]:
            self.register(args[0])  # a unique name besides its path
        return {"inbox": []}

    def handle_call(self, request, from_, state):
        return Reply(list(state["inbox"]), state)

    def handle_info(self, message, state):
        state["inbox"].append(message)
        return state


class Room(GenServer):
    def init(self, args):
        return {"high": 0, "bids": []}

    def handle_call(self, request, from_, state):
        amount = int(request[1])  # a bad bid crashes the room
        state["high"] = amount
        state["bids"].append(amount)
        self.dispatch("room:1", {"bid": amount})
        return Reply("sent", state)


def tree():
    return SupervisorSpec("one_for_one", [
        ChildSpec("room", (Room, None)),
        ChildSpec("watchers", (Supervisor, SupervisorSpec(
            "simple_one_for_one", [ChildSpec("watcher", (Watcher, []), restart="temporary")])),
            type="supervisor"),
    ])
'''

MAIN = '''
import sys
import time

from auction_actors import tree
from elixirscope.runtime import Runtime

with Runtime("simpleSystemBase") as rt:
    root = rt.start_supervisor(tree(), path="auction")
    kids = {c.id: c.address for c in rt.which_children(root)}
    w1 = rt.start_child(kids["watchers"], [None]).address
    w2 = rt.start_child(kids["watchers"], ["bob"]).address
    give_up = time.monotonic() + 60  # a guard: a bug ends the program, not a wait
    while not (rt.call(w1, "get") and rt.call(w2, "get")):  # both subscribed
        rt.call(kids["room"], ("bid", 100))
        time.sleep(0.05)
        if time.monotonic() > give_up:
            sys.exit("gave up waiting for the watchers")
    rt.call(kids["room"], ("bid", 150))
    try:
        rt.call(kids["room"], ("bid", "lots"))
    except Exception:
        pass
    while True:  # the restarted room
        room = {c.id: c.address for c in rt.which_children(root)}["room"]
        try:
            rt.call(room, ("bid", 120))
            break
        except Exception:
            time.sleep(0.05)
    while not any(m == {"bid": 120} for m in rt.call(w1, "get")):
        time.sleep(0.02)
    print("ok")
'''


def elixirscope(*args: str, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ELIXIRSCOPE_HEAVY"}
    return subprocess.run([sys.executable, "-m", "elixirscope", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=180, stdin=subprocess.DEVNULL, env=env)


def record(where: Path) -> Path:
    """The program recorded into ``where/data`` (level args); returns the data dir."""
    (where / "auction_actors.py").write_text(ACTORS)
    (where / "auction_main.py").write_text(MAIN)
    data = where / "data"
    done = elixirscope("run", "--data-dir", str(data), "--level", "args", "auction_main.py",
                       cwd=where)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
    return data
