"""A message never received — sent to a worker that crashed with it in its mailbox — is
named by the worker's path, as the messages received there were, not by the address it
was sent to: ``messages where to = 'w'`` finds it."""

from __future__ import annotations

import textwrap
from pathlib import Path

from cli_subprocess import elixirscope_run

from elixirscope.query import esql

ACTORS = textwrap.dedent(
    """
    from elixirscope.runtime import GenServer, Reply


    class Worker(GenServer):
        def init(self, args):
            return {"done": []}

        def handle_cast(self, message, state):
            if message == "bad":
                raise ValueError("a bad job")
            state["done"].append(message)
            return state

        def handle_call(self, request, from_, state):
            return Reply(list(state["done"]), state)
    """
)

MAIN = textwrap.dedent(
    """
    import time

    from actors import Worker
    from elixirscope.runtime import ChildSpec, Runtime, SupervisorSpec

    with Runtime("simpleSystemBase") as rt:
        spec = SupervisorSpec("one_for_one", [ChildSpec("w", (Worker, None))])
        sup = rt.start_supervisor(spec, path="pool")
        (child,) = rt.which_children(sup)
        for job in ("first", "bad", "lost"):  # "lost" waits in the mailbox "bad" crashes
            rt.cast(child.address, job)
        time.sleep(0.3)
        (child,) = rt.which_children(sup)
        print("restarts", child.restarts)
    """
)


def test_a_message_lost_with_its_receiver_is_named_by_the_receivers_path(tmp_path: Path) -> None:
    (tmp_path / "actors.py").write_text(ACTORS)
    (tmp_path / "main.py").write_text(MAIN)
    done = elixirscope_run("run", "--data-dir", "data", "main.py", cwd=tmp_path)
    assert done.returncode == 0 and "restarts 1" in done.stdout, done.stderr
    data = tmp_path / "data"
    rows = list(esql.run("message, to, status from messages where to = 'w'", data, cache=False))
    assert [(r["message"], r["status"]) for r in rows] == [
        ("first", "received"), ("bad", "received"), ("lost", "unreceived")]
    assert {r["to"] for r in rows} == {"pool/w"}
