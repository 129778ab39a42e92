"""Messages the runtime dropped, recorded for real on both bases: a cast to a name nobody
holds, and casts to a supervised child's address after it crashed (its supervisor restarted
it at another address) - each a finding naming the sender, the target and what had become
of it; a call to either is no finding (its caller got noproc)."""

from __future__ import annotations

import pytest
from programs import elixirscope, record

from elixirscope.ai.insights import find
from elixirscope.ai.recording import load_recording
from elixirscope.contracts.trace import UNDELIVERED
from elixirscope.query import esql
from elixirscope.store import EventStore

KITCHEN = '''
import os, time
from elixirscope.runtime import ChildSpec, GenServer, Reply, SupervisorSpec


class Oven(GenServer):
    def init(self, args):
        return {"baked": []}

    def handle_cast(self, dish, state):
        state["baked"].append(dish)
        return state

    def handle_call(self, request, from_, state):
        if request == "explode":
            raise RuntimeError("oven on fire")
        return Reply(list(state["baked"]), state)


class Chef(GenServer):
    def init(self, oven):
        return {"oven": oven}  # an address, kept: stale once the oven is restarted

    def handle_call(self, request, from_, state):
        kind, dish = request
        self.cast(state["oven"] if kind == "oven" else kind, dish)  # an address, or a name
        return Reply("sent", state)


class Slow(GenServer):
    """Registers its name in init, after a second's sleep when it is a replacement."""

    def init(self, marker):
        if os.path.exists(marker):
            time.sleep(1.0)
        open(marker, "a").close()
        self.register("slow")
        return 0

    def handle_call(self, request, from_, state):
        raise RuntimeError("slow fell over")


def tree():
    return SupervisorSpec("one_for_one", [ChildSpec("oven", (Oven, None))])


def slow_tree(marker):
    return SupervisorSpec("one_for_one", [ChildSpec("slow", (Slow, marker))])
'''

PROGRAM = '''
import sys, time
from kitchen import Chef, tree
from elixirscope.runtime import Runtime


def settle(check):
    deadline = time.monotonic() + 60
    while not check() and time.monotonic() < deadline:
        time.sleep(0.02)


with Runtime(sys.argv[1]) as rt:
    sup = rt.start_supervisor(tree(), path="kitchen")
    oven = rt.which_children(sup)[0].address
    chef = rt.start(Chef, oven, path="kitchen/chef")
    rt.call(chef, ("oven", "bread"))
    settle(lambda: rt.call(oven, "get") == ["bread"])  # the chef's cast came before ours
    try:
        rt.call(oven, "explode")
    except Exception as exc:
        print("oven:", exc.reason.kind)
    settle(lambda: rt.which_children(sup)[0].address not in (None, oven))
    for dish in ("cake", "pie"):
        rt.call(chef, ("oven", dish))  # to the old oven: dead letters
    rt.call(chef, ("pantry", "flour"))  # a name nobody holds
    stats = lambda: rt.call(rt.registry, ("stats",))
    settle(lambda: stats()["dead_letters"] >= 2 and stats()["unrouted"] >= 1)
    try:
        rt.call(oven, "get")  # a call to the old oven: its caller is told
    except Exception as exc:
        print("old oven:", exc.reason.kind)
    print("baked:", rt.call(rt.which_children(sup)[0].address, "get"))
'''


@pytest.mark.parametrize("base", ["simpleSystemBase", "multiprocTCPBase"])
def test_messages_dropped_undelivered_are_findings(tmp_path, base) -> None:
    data = record(tmp_path, "kitchen_run", PROGRAM, base, modules={"kitchen": KITCHEN})
    with EventStore.open(data, readonly=True) as store:
        notes = [se.event.data for se in store.query(type="custom", limit=None)
                 if se.event.name == UNDELIVERED]  # fmt: skip
    casts = sorted((n["cause"], n["to"]) for n in notes if n["kind"] == "cast")
    old_oven = casts[0][1]  # the address it was sent to
    assert casts == [("exited", old_oven), ("exited", old_oven), ("name", "pantry")]
    assert [n["kind"] for n in notes if n["kind"] == "call"] == ["call"]  # the old oven's get
    found, errors = find(load_recording(data))
    assert errors == {}
    dropped = {f.details["cause"]: f for f in found if f.kind == "undelivered_message"}
    assert sorted(dropped) == ["exited", "name"]  # the call to the old oven is none

    stale = dropped["exited"]
    assert stale.severity == "high" and stale.details["messages"] == 2
    assert stale.title == "message to an exited actor: kitchen/chef sent 2 casts to kitchen/oven"
    assert "after it had exited (exception builtins.RuntimeError: oven on fire, at " in (
        stale.explanation
    )
    assert "its supervisor restarted it at " in stale.explanation
    assert "The first was 'cake'." in stale.explanation
    assert "Send to a registered name rather than a kept address" in stale.fix
    assert "(give its ChildSpec a name=..., then self.cast('name', ...))" in stale.fix
    (site,) = stale.locations
    assert site.function == "kitchen.Chef.handle_call" and site.role == "sent from"
    assert [e.type for e in stale.evidence] == ["send", "send", "custom"]

    nobody = dropped["name"]
    assert nobody.title == (
        "message to nobody: kitchen/chef sent 1 cast to the name 'pantry', which no actor held"
    )
    assert "The first was 'flour'." in nobody.explanation
    assert nobody.details["why"] == "no actor is registered as 'pantry'"

    listed = elixirscope("events", "--data-dir", str(data), "--type", "custom", "--no-pager",
                         cwd=tmp_path)
    assert "dropped cast to pantry: no actor is registered as 'pantry'  #" in listed.stdout
    assert f"dropped cast to {old_oven}: the actor had exited (a dead letter)  #" in listed.stdout
    assert old_oven.startswith("ActorAddr-")  # as the sends name it, on either base

    # ESQL: such a message's status is dropped and its reason the runtime's why, whatever
    # the query narrows the read to (the drop is the registry's event, in its process)
    asked = "message, status, reason, pid from messages where from = 'kitchen/chef'"
    rows = list(esql.run(asked + " and status != 'received'", data, cache=False))
    assert sorted((r["message"], r["status"], r["reason"]) for r in rows) == [
        ("cake", "dropped", "the actor had exited (a dead letter)"),
        ("flour", "dropped", "no actor is registered as 'pantry'"),
        ("pie", "dropped", "the actor had exited (a dead letter)"),
    ]
    narrowed = f"{asked} and pid = {rows[0]['pid']} and status = 'dropped'"  # pushed down
    assert sorted(r["message"] for r in esql.run(narrowed, data, cache=False)) == [
        "cake", "flour", "pie"]  # fmt: skip
    received = list(esql.run(asked + " and status = 'received'", data, cache=False))
    assert received and {r["reason"] for r in received} == {None}


WHILE_RESTARTING = '''
import sys, time
from kitchen import Chef, slow_tree
from elixirscope.runtime import Runtime


def settle(check):
    deadline = time.monotonic() + 60
    while not check() and time.monotonic() < deadline:
        time.sleep(0.01)


with Runtime("multiprocTCPBase") as rt:
    rt.start_supervisor(slow_tree(sys.argv[1]), path="kitchen")
    chef = rt.start(Chef, None, path="kitchen/chef")
    try:
        rt.call("slow", "explode")
    except Exception as exc:
        print("slow:", exc.reason.kind)
    settle(lambda: rt.whereis("slow") is None)  # its death seen; its replacement sleeps
    print(rt.call(chef, ("slow", "soup")))  # to the name while nobody holds it
    settle(lambda: rt.whereis("slow") is not None)
'''


def test_a_message_to_a_name_while_its_actor_restarts_names_whose_it_was(tmp_path) -> None:
    """Between an actor's exit and its replacement's registration nobody holds its name (as
    in OTP): the finding says whose name it was, its exit and its restart."""
    marker = str(tmp_path / "started")
    data = record(tmp_path, "restarting", WHILE_RESTARTING, marker, modules={"kitchen": KITCHEN})
    found, errors = find(load_recording(data))
    assert errors == {}
    (lost,) = [f for f in found if f.kind == "undelivered_message"]
    assert lost.title == (
        "message to nobody: kitchen/chef sent 1 cast to the name 'slow', which no actor held"
    )
    said = lost.explanation
    assert "no actor held that name then: it was kitchen/slow's, after it had exited " in said
    assert "(exception builtins.RuntimeError: slow fell over, at " in said
    assert "and its supervisor restarted it at " in said and "The first was 'soup'." in said
    assert lost.fix.startswith("Between an actor's exit and its replacement's init its name")


MANY = '''
from kitchen import Chef, Oven
from elixirscope.runtime import Runtime

with Runtime("simpleSystemBase") as rt:
    oven = rt.start(Oven, path="oven")
    chef = rt.start(Chef, oven, path="chef")
    rt.call(chef, ("oven", "bread"))  # received: the oven's address is known
    rt.call(oven, "get")
    rt.stop(oven)
    for n in range(60):
        rt.call(chef, ("oven", f"loaf {n}"))  # dead letters, one after another
'''


def test_messages_dropped_undelivered_never_fill_a_mailbox(tmp_path) -> None:
    """60 casts to a stopped actor were a mailbox growing to 60 (sends never received count
    as waiting): dropped, they waited nowhere; the finding is the dropped messages'."""
    data = record(tmp_path, "many", MANY, modules={"kitchen": KITCHEN})
    found, errors = find(load_recording(data))
    assert errors == {}
    assert [f.kind for f in found if f.kind in ("mailbox_growth", "undelivered_message")] == [
        "undelivered_message"
    ]
    (dropped,) = [f for f in found if f.kind == "undelivered_message"]
    assert dropped.severity == "medium" and dropped.details["messages"] == 60  # stopped
    assert "after it had exited (shutdown, at " in dropped.explanation
