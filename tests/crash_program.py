"""A supervised worker that crashes on a job with another still in its mailbox: the crash,
the exit its supervisor records when it next runs (``simpleSystemBase``: when the program
next calls the system), the restart, and a message lost with the crashed worker."""

from __future__ import annotations

import textwrap
from pathlib import Path

from cli_subprocess import elixirscope_run

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
        time.sleep(0.3)  # crashed; its supervisor records the exit when it next runs
        (child,) = rt.which_children(sup)
        print("restarts", child.restarts)
    """
)


def record_crash(where: Path) -> Path:
    """The program recorded by ``elixirscope run`` into ``where/data``: the data dir."""
    (where / "actors.py").write_text(ACTORS)
    (where / "main.py").write_text(MAIN)
    done = elixirscope_run("run", "--data-dir", "data", "main.py", cwd=where)
    assert done.returncode == 0 and "restarts 1" in done.stdout, done.stderr
    return where / "data"
