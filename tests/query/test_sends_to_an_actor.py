"""A send names its receiver by address only; its receive (same message id) names the
actor. ESQL's ``to`` of a send and ``events --actor`` read the receiver from there, on a
real recording of GenServers casting to each other (and on a message between processes).
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from effort import examples
from esql_recordings import all_events, elixirscope
from hypothesis import given, settings
from hypothesis import strategies as st

from elixirscope.contracts.trace import MessageReceive, MessageSend
from elixirscope.query import esql
from elixirscope.query.reports import events_report
from elixirscope.store import EventStore
from elixirscope.store._events import event_actors

ACCOUNTS = '''
from elixirscope.runtime import GenServer, Reply


class Account(GenServer):
    """A balance: a cast adds to it, a call reads it."""

    def init(self, args):
        return {"balance": 0}

    def handle_cast(self, amount, state):
        state["balance"] += amount
        return state

    def handle_call(self, request, from_, state):
        return Reply(state["balance"], state)


class Teller(GenServer):
    """Pays into an account by name: a cast from one actor to another."""

    def init(self, accounts):
        return {"accounts": accounts, "paid": 0}

    def handle_call(self, request, from_, state):
        who, amount = request
        self.cast(state["accounts"][who], amount)
        state["paid"] += 1
        return Reply("paid", state)
'''

BANK = """
from accounts import Account, Teller
from elixirscope.runtime import Runtime

with Runtime("simpleSystemBase") as rt:
    names = ("carol", "carolyn", "ghost")
    accounts = {name: rt.start(Account, path=f"bank/{name}") for name in names}
    teller = rt.start(Teller, accounts, path="bank/teller")
    rt.stop(accounts["ghost"])  # closed: what is paid into it is never received
    for who, amount in (("carol", 10), ("carolyn", 5), ("ghost", 3), ("carol", 7)):
        rt.call(teller, (who, amount))
    print("carol:", rt.call(accounts["carol"], "balance"))
"""
"""The teller casts to carol twice, to carolyn (a name carol's is the start of) once and to
the closed ghost once (never received); the program calls the teller and carol."""


@pytest.fixture(scope="module")
def bank(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("bank")
    (where / "accounts.py").write_text(ACCOUNTS)
    (where / "bank.py").write_text(BANK)
    data = where / "data"
    done = elixirscope("run", "--data-dir", str(data), "bank.py", cwd=where)
    assert done.returncode == 0 and "carol: 17" in done.stdout, done.stderr
    return data


def received_by(events: list) -> dict[str, str]:
    """message id -> the actor whose receive has it (the tests' own reading)."""
    return {
        se.event.message_id: se.event.actor for se in events if type(se.event) is MessageReceive
    }


def sends(events: list) -> list:
    return [se for se in events if type(se.event) is MessageSend]


def ids(data: Path, query: str) -> list[str]:
    return [row["message_id"] for row in esql.run(query, data)]


# ---------------------------------------------------------------- ESQL


def test_sends_to_an_actor_by_the_last_part_of_its_path_or_the_whole(bank):
    """``sends where to = 'carol'`` (and ``'bank/carol'``) are the sends carol received —
    the teller's two casts and the program's call — not carolyn's, not the teller's."""
    events = all_events(bank)
    got = received_by(events)
    to_carol = [
        se.event.message_id for se in sends(events) if got.get(se.event.message_id) == "bank/carol"
    ]
    assert len(to_carol) == 3
    assert ids(bank, "message_id from sends where to = 'carol'") == to_carol
    assert ids(bank, "message_id from sends where to = 'bank/carol'") == to_carol
    rows = list(esql.run("from, to, message from sends where to = 'carol'", bank))
    assert [(r["from"], r["to"], r["message"]) for r in rows] == [
        ("bank/teller", "bank/carol", 10),
        ("bank/teller", "bank/carol", 7),
        (None, "bank/carol", "balance"),
    ]
    assert set(ids(bank, "message_id from sends where to = 'carolyn'")).isdisjoint(to_carol)
    # the rule of `messages`, which pair the send with its receive
    assert ids(bank, "message_id from messages where to = 'carol'") == to_carol
    assert {
        r["to"]: r["count(*)"] for r in esql.run("to, count(*) from sends group by to", bank)
    } == {
        "bank/teller": 4,
        "bank/carol": 3,
        "bank/carolyn": 1,
        next(se.event.target for se in sends(events) if se.event.message_id not in got): 1,
    }


def test_a_send_never_received_keeps_the_address_it_was_sent_to(bank):
    """The ghost was stopped before the teller paid into it: no receive names the actor,
    so its send's ``to`` is the address (nothing in the recording says more)."""
    events = all_events(bank)
    got = received_by(events)
    (lost,) = [se.event for se in sends(events) if se.event.message_id not in got]
    assert lost.sender == "bank/teller" and lost.target.startswith("ActorAddr")
    assert ids(bank, "message_id from sends where to = 'ghost'") == []
    rows = list(
        esql.run("message_id, to from sends where from = 'teller' and to = 'ActorAddr*'", bank)
    )
    assert rows == [{"message_id": lost.message_id, "to": lost.target}]


def test_events_name_the_receiver_of_a_send_when_to_is_read(bank):
    """``events where to = 'carol'``: carol's receives and the sends she received, each
    send's detail naming her (not her address)."""
    rows = list(esql.run("kind, to, detail from events where to = 'carol'", bank))
    assert [r["kind"] for r in rows] == ["send", "receive"] * 3
    assert {r["to"] for r in rows} == {"bank/carol"}
    assert rows[0]["detail"].startswith("send bank/teller -> bank/carol: 10")


# ---------------------------------------------------------------- events --actor


def test_events_of_an_actor_list_the_sends_to_it(bank):
    """``events --actor carol``: what carol did and what was sent to her, in recorded
    order, each send naming her; the teller's other sends are not listed."""
    events = all_events(bank)
    got = received_by(events)
    to_carol = [se for se in sends(events) if got.get(se.event.message_id) == "bank/carol"]
    report = events_report(str(bank), actor="carol")
    listed = [(e["producer"], e["id"]) for e in report["events"]]
    assert [(se.producer, se.event.id) for se in to_carol] == [
        (e["producer"], e["id"]) for e in report["events"] if e["type"] == "send"
    ]
    assert listed == [
        (se.producer, se.event.id)
        for se in sorted(
            [se for se in events if "bank/carol" in event_actors(se.event)] + to_carol,
            key=lambda se: (se.event.ts, se.producer, se.event.id),
        )
    ]
    text = report["text"]
    assert (
        text.count("send bank/teller -> bank/carol: ") == 2
        and "send ? -> bank/carol: 'balance'" in text
    )
    assert "ActorAddr" not in text and "carolyn" not in text
    only = events_report(str(bank), actor="carol", type=["send"])
    assert [e["id"] for e in only["events"]] == [se.event.id for se in to_carol]
    assert "send bank/teller -> bank/carol: 7" in only["text"]  # her receive is not listed
    # init, 3 changes, and terminate at the runtime's shutdown
    assert events_report(str(bank), actor="carol", type=["state"])["count"] == 5


def test_events_of_an_actor_keep_the_newest_and_count_the_rest(bank):
    """With a limit, the newest events of the union are listed and the others counted."""
    everything = events_report(str(bank), actor="carol", limit=0)["events"]
    newest = events_report(str(bank), actor="carol", limit=3)
    assert newest["events"] == everything[-3:] and newest["more"] == len(everything) - 3
    # the program's call, its receive and change; then terminate at the runtime's shutdown
    assert [e["type"] for e in everything[-4:]] == ["send", "receive", "state", "state"]


def test_events_command_lists_the_sends_to_an_actor(bank):
    """The command a person types: ``elixirscope events --actor carol``."""
    done = elixirscope("events", "--data-dir", str(bank), "--actor", "carol", "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)["events"]
    assert [e["message_id"] for e in listed if e["type"] == "send"] == ids(
        bank, "message_id from sends where to = 'carol'"
    )
    shown = elixirscope("events", "--data-dir", str(bank), "--actor", "carol", "--type", "send")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("-> bank/carol: ") == 3 and "ActorAddr" not in shown.stdout


# ---------------------------------------------------------------- across processes


def test_a_send_received_in_another_process(tmp_path, recorder):
    """The receive of a send may be recorded by another process: matched by message id."""
    teller, bank = recorder("n1:100:1", pid=100), recorder("n1:200:1", pid=200)
    teller.add("send", "m1", "bank/teller", "ActorAddr-(T|:1900)", "10")
    teller.add("send", "m2", "bank/teller", "ActorAddr-(T|:1901)", "5")
    bank.add("state", "bank/carol", "init", "None", "0", "0")
    bank.add("receive", "m1", "bank/carol", "bank/teller", "10")
    bank.add("receive", "m2", "bank/carolyn", "bank/teller", "5")
    with EventStore.open(tmp_path) as store:
        store.append(teller.batch())
        store.append(bank.batch())
    rows = list(esql.run("message_id, to from sends where to = 'carol'", tmp_path))
    assert rows == [{"message_id": "m1", "to": "bank/carol"}]
    report = events_report(str(tmp_path), actor="carol")
    assert [(e["type"], e["producer"]) for e in report["events"]] == [
        ("send", "n1:100:1"),
        ("state", "n1:200:1"),
        ("receive", "n1:200:1"),
    ]
    assert "send bank/teller -> bank/carol: 10" in report["text"]


# ---------------------------------------------------------------- the naive meaning


@dataclass
class World:
    data: Path
    events: list
    received: dict[str, str]
    times: list[int]


@pytest.fixture(scope="module")
def world(bank) -> World:
    events = all_events(bank)
    return World(bank, events, received_by(events), sorted({se.event.ts for se in events}))


def naive_fields(world: World, se: Any) -> dict[str, Any]:
    """A row's fields as the documentation defines them: a send's ``to`` is the actor of
    its receive (same message id) when recorded, else the address it was sent to."""
    ev = se.event
    to = None
    if type(ev) is MessageSend:
        to = world.received.get(ev.message_id, ev.target)
    elif type(ev) is MessageReceive:
        to = ev.actor
    return {"to": to, "from": getattr(ev, "sender", None), "kind": se.type, "time": ev.ts}


def actor_is(pattern: str, name: str | None) -> bool:
    """An actor matches by its whole path or its last parts (``carol``: ``bank/carol``)."""
    if name is None:
        return False
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name, "*/" + pattern)


def holds(cond: tuple, f: dict) -> bool:
    what = cond[0]
    if what == "and":
        return holds(cond[1], f) and holds(cond[2], f)
    if what == "or":
        return holds(cond[1], f) or holds(cond[2], f)
    if what == "not":
        return not holds(cond[1], f)
    if what in ("to", "from"):
        return actor_is(cond[1], f[what])
    if what == "null":
        return (f[cond[1]] is None) != cond[2]
    if what == "kind":
        return f["kind"] == cond[1]
    if what == "time":
        return {"<": f["time"] < cond[2], ">=": f["time"] >= cond[2]}[cond[1]]
    raise AssertionError(cond)


def written(cond: tuple) -> str:
    what = cond[0]
    if what in ("and", "or"):
        return f"({written(cond[1])} {what} {written(cond[2])})"
    if what == "not":
        return f"not {written(cond[1])}"
    if what in ("to", "from", "kind"):
        return f"{what} = '{cond[1]}'"
    if what == "null":
        return f"{cond[1]} is {'not ' if cond[2] else ''}null"
    if what == "time":
        return f"time {cond[1]} {cond[2]}"
    raise AssertionError(cond)


ACTORS = st.sampled_from(
    ["carol", "bank/carol", "carolyn", "car*", "bank/*", "teller", "ghost", "ActorAddr*", "nobody"]
)


def conditions(world: World, source: str) -> st.SearchStrategy[tuple]:
    atoms = [
        st.tuples(st.just("to"), ACTORS),
        st.tuples(st.just("from"), ACTORS),
        st.tuples(st.just("null"), st.sampled_from(["to", "from"]), st.booleans()),
        st.tuples(st.just("time"), st.sampled_from(["<", ">="]), st.sampled_from(world.times)),
    ]
    if source == "events":
        atoms.append(st.tuples(st.just("kind"), st.sampled_from(["send", "receive", "state"])))
    return st.recursive(
        st.one_of(atoms),
        lambda inner: st.one_of(
            st.tuples(st.just("and"), inner, inner),
            st.tuples(st.just("or"), inner, inner),
            st.tuples(st.just("not"), inner),
        ),
        max_leaves=4,
    )


@settings(max_examples=examples(80, 800))
@given(data=st.data())
def test_random_conditions_on_senders_and_receivers_agree_with_a_plain_filter(world, data):
    source = data.draw(st.sampled_from(["sends", "events"]))
    cond = data.draw(conditions(world, source))
    kinds = ("send",) if source == "sends" else None
    expected = [
        (se.producer, se.event.id)
        for se in world.events
        if (kinds is None or se.type in kinds) and holds(cond, naive_fields(world, se))
    ]
    text = f"producer, id from {source} where {written(cond)}"
    got = [(r["producer"], r["id"]) for r in esql.run(text, world.data)]
    assert got == expected, text


@settings(max_examples=examples(40, 400))
@given(data=st.data())
def test_sends_and_messages_match_senders_and_receivers_alike(world, data):
    """On ``to`` and ``from``, a send matches as its message does (every message of the
    recording has its send)."""
    cond = data.draw(conditions(world, "sends").filter(lambda c: "time" not in repr(c)))
    where = written(cond)
    assert ids(world.data, f"message_id from sends where {where}") == ids(
        world.data, f"message_id from messages where {where}"
    ), where
