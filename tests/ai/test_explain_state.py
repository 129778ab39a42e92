"""``explain`` gives an actor's state as the ``state`` command reads it — a tuple as a
tuple, a dict's int keys as ints — on one line of the answer, never the store's JSON form
(``$tuple``)."""

from __future__ import annotations

import textwrap

from programs import record

from elixirscope.ai.explain import explain
from elixirscope.ai.insights import insights_report

SHELF = textwrap.dedent(
    """
    from elixirscope.runtime import GenServer, Reply


    class Shelf(GenServer):
        def init(self, args):
            return {"reserved": {1: ("tea", 2)}, "stock": 3}

        def handle_call(self, request, from_, state):
            state["stock"] -= 1 // request  # reserve(0) crashes it
            return Reply(state["stock"], state)
    """
)

MAIN = textwrap.dedent(
    """
    from shelf import Shelf
    from elixirscope.runtime import ChildSpec, Runtime, SupervisorSpec

    with Runtime("simpleSystemBase") as rt:
        sup = rt.start_supervisor(SupervisorSpec("one_for_one", [ChildSpec("shelf", (Shelf, None))]),
                                  path="shop")
        (shelf,) = rt.which_children(sup)
        try:
            rt.call(shelf.address, 0)
        except Exception:
            pass
        print(rt.which_children(sup)[0].restarts)  # the supervisor hears of it: a restart
    """
)


def test_the_state_before_a_crash_reads_as_python(tmp_path) -> None:
    data = record(tmp_path, "main", MAIN, modules={"shelf": SHELF})
    (crash,) = [f for f in insights_report(data)["findings"] if f["kind"] == "crash"]
    said = explain(data, crash["id"])["answer"]
    flat = " ".join(said.split())
    assert "'reserved': {1: ('tea', 2)}" in flat, said
    assert "$tuple" not in said and '"1"' not in said
