"""A message sent to an actor that never received one — a cast to a child its supervisor
had already terminated, dropped as a dead letter — is sent `to` that child's path: its
``spawn`` recorded the address it was started at, so no receive is needed to name it."""

from __future__ import annotations

import textwrap
from pathlib import Path

from cli_subprocess import elixirscope_run

from elixirscope.query import esql

ACTORS = textwrap.dedent(
    """
    from elixirscope.runtime import GenServer


    class Idle(GenServer):
        def init(self, args):
            return {"jobs": 0}
    """
)

MAIN = textwrap.dedent(
    """
    from actors import Idle
    from elixirscope.runtime import ChildSpec, Runtime, SupervisorSpec

    with Runtime("simpleSystemBase") as rt:
        sup = rt.start_supervisor(
            SupervisorSpec("one_for_one", [ChildSpec("idle", (Idle, None))]), path="pool"
        )
        (child,) = rt.which_children(sup)
        rt.terminate_child(sup, "idle")
        rt.cast(child.address, "too late")
        print("cast")
    """
)


def test_a_message_to_an_actor_no_message_reached_is_named_by_its_spawn(tmp_path: Path) -> None:
    (tmp_path / "actors.py").write_text(ACTORS)
    (tmp_path / "main.py").write_text(MAIN)
    done = elixirscope_run("run", "--data-dir", "data", "main.py", cwd=tmp_path)
    assert done.returncode == 0 and "cast" in done.stdout, done.stderr
    data = tmp_path / "data"
    asked = "message, to, status from messages where message = 'too late'"
    assert [(r["message"], r["to"], r["status"]) for r in esql.run(asked, data, cache=False)] == [
        ("too late", "pool/idle", "dropped")
    ]
    (sent,) = esql.run("to from sends where message = 'too late'", data, cache=False)
    assert sent["to"] == "pool/idle"
    (spawn,) = esql.run("actor, child_address from spawns where actor = 'pool/idle'", data,
                        cache=False)
    assert spawn["child_address"].startswith("ActorAddr-")
