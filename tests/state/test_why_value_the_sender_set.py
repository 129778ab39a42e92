"""``why`` across a send picks the place the sender's callback set to the value it sent,
not another field that held an equal value by chance: a worker whose job counter is 3
when it first totals an account to 3 sent the total, not the counter."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared programs

from auction_program import elixirscope  # noqa: E402

ACTORS = textwrap.dedent(
    """
    from elixirscope.runtime import GenServer, Reply


    class Worker(GenServer):
        def init(self, args):
            return {"handled": 0, "totals": {}}

        def handle_cast(self, message, state):
            account, amount, reply_to = message
            state["totals"][account] = state["totals"].get(account, 0) + amount
            self.cast(reply_to, ("result", account, state["totals"][account]))
            state["handled"] += 1
            return state


    class Collector(GenServer):
        def init(self, args):
            return {"results": {}}

        def handle_call(self, request, from_, state):
            return Reply(dict(state["results"]), state)

        def handle_cast(self, message, state):
            _, account, total = message
            state["results"][account] = total
            return state
    """
)

MAIN = textwrap.dedent(
    """
    import time

    from actors import Collector, Worker
    from elixirscope.runtime import Runtime

    with Runtime("simpleSystemBase") as rt:
        worker = rt.start(Worker, None, path="worker")
        collector = rt.start(Collector, None, path="collector")
        for account, amount in [("alice", 5), ("carol", 7), ("dave", 9), ("bob", 3)]:
            rt.cast(worker, (account, amount, collector))
        give_up = time.monotonic() + 60
        while "bob" not in rt.call(collector, "get") and time.monotonic() < give_up:
            time.sleep(0.02)
        print("results", rt.call(collector, "get"))
    """
)


def test_why_follows_the_value_the_senders_callback_set_not_an_equal_one(tmp_path: Path) -> None:
    (tmp_path / "actors.py").write_text(ACTORS)
    (tmp_path / "main.py").write_text(MAIN)
    done = elixirscope("run", "--data-dir", "data", "main.py", cwd=tmp_path)
    assert done.returncode == 0 and "'bob': 3" in done.stdout, done.stderr
    why = elixirscope("why", "--data-dir", "data", "collector", "results.bob", cwd=tmp_path)
    assert why.returncode == 0, why.stderr
    lines = why.stdout.splitlines()
    sent = next(i for i, line in enumerate(lines) if "sent by worker" in line)
    # before the send the worker had handled 3 jobs: `handled` was 3 too, but the callback
    # that sent set totals.bob to 3
    assert "worker.totals.bob = 3: set by handle_cast(('bob', 3," in lines[sent + 1], why.stdout
    assert "handled" not in why.stdout
