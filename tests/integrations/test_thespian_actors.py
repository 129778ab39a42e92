"""Plain Thespian actors recorded by ``elixirscope run``: sends linked to receives, the
actor's state after each message, on ``simpleSystemBase`` and across the processes of
``multiprocTCPBase`` (real systems, real subprocesses); the naming recipe both sides of a
process boundary follow, against a shadow model of Thespian's delivery."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from recorded_programs import events, plain, recorded, run

from elixirscope.integrations import thespian_actors
from elixirscope.integrations.thespian_actors import _Places, message_id

BANK = '''
import sys
from thespian.actors import Actor, ActorSystem, PoisonMessage


class Unprintable:
    def __repr__(self):
        raise RuntimeError("no repr")


class Ledger(Actor):
    def __init__(self):
        super().__init__()
        self.entries = []
        self.balance = 0

    def receiveMessage(self, msg, sender):
        if isinstance(msg, tuple) and msg[0] == "post":
            if msg[1] < -100:
                raise ValueError(f"too large a withdrawal: {msg[1]}")
            self.entries.append(msg[1])
            self.balance += msg[1]
            self.send(sender, ("posted", self.balance, Unprintable()))


class Teller(Actor):
    def __init__(self):
        super().__init__()
        self.ledger = None
        self.waiting = []

    def receiveMessage(self, msg, sender):
        if isinstance(msg, tuple) and msg[0] == "deposit":
            if self.ledger is None:
                self.ledger = self.createActor(Ledger)
            self.waiting.append(sender)
            self.send(self.ledger, ("post", msg[1]))
        elif isinstance(msg, tuple) and msg[0] == "posted":
            self.send(self.waiting.pop(0), msg[1])
        elif isinstance(msg, PoisonMessage):  # the ledger failed on it
            self.send(self.waiting.pop(0), None)


base = sys.argv[1]
port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
system = ActorSystem(base, {"Admin Port": port} if port else None)
try:
    teller = system.createActor(Teller)
    print([system.ask(teller, ("deposit", n), 10) for n in (10, 25, -500, 7)])
finally:
    system.shutdown()
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record_bank(tmp_path: Path, *argv: str) -> tuple[Path, list[dict]]:
    script = tmp_path / "bank.py"
    script.write_text(BANK)
    data = tmp_path / "data"
    done = recorded(script, data, *argv)
    assert done.returncode == 0, done.stderr
    expected = plain(script, argv[0], *([str(free_port())] if len(argv) > 1 else []))
    assert done.stdout == expected.stdout == "[10, 35, None, 42]\n"  # as without ElixirScope
    return data, events(data)


def of(evs: list[dict], kind: str, actor_class: str) -> list[dict]:
    field = "sender" if kind == "send" else "actor"
    return [e for e in evs if e["type"] == kind and e[field].startswith(actor_class + "@")]


def test_simple_base_links_each_send_to_its_receive_in_the_senders_chain(tmp_path) -> None:
    data, evs = record_bank(tmp_path, "simpleSystemBase")
    sends = of(evs, "send", "Teller") + of(evs, "send", "Ledger")
    receives = {e["message_id"]: e for e in evs if e["type"] == "receive"}
    to_ledger = [s for s in sends if s["message"].startswith("('post'")]
    assert [s["message"] for s in to_ledger] == [f"('post', {n})" for n in (10, 25, -500, 7)]
    between = [s for s in sends if "ExternalRequester" not in s["target"]]  # not to ask()
    assert len(between) == 7
    for send in between:
        receipt = receives[send["message_id"]]  # every message between actors was received
        assert receipt["sender"] == send["sender"]
        assert receipt["correlation_id"] == send["correlation_id"]  # one chain across actors
        assert receipt["ts"] >= send["ts"]
    (ledger,) = {r["actor"] for r in receives.values() if r["actor"].startswith("Ledger@")}
    assert ledger == "Ledger@ActorAddr-/A~a~a"
    # the reply's unprintable part is said, not raised into the program
    assert any("Unprintable" in s["message"] for s in of(evs, "send", "Ledger"))
    # Thespian returns the failed message to the teller: a receipt named by its sender
    (poison,) = [r for r in receives.values() if "PoisonMessage" in r["message"]]
    assert poison["actor"].startswith("Teller@") and poison["sender"] == ledger


def test_simple_base_records_each_actors_state_after_each_message(tmp_path) -> None:
    data, evs = record_bank(tmp_path, "simpleSystemBase")
    states = of(evs, "state", "Ledger")
    assert [s["callback"] for s in states][:2] == ["__init__", "receiveMessage"]
    failed = [s for s in states if s["error"]]
    assert len(failed) == 3  # Thespian hands the message twice more after it raised
    assert {s["error"] for s in failed} == {"ValueError: too large a withdrawal: -500"}
    file, line, function = failed[0]["raised_at"].rsplit(":", 2)
    assert function == "receiveMessage" and file.endswith("bank.py")
    assert "raise ValueError" in BANK.splitlines()[int(line) - 1]
    shown = run(sys.executable, "-m", "elixirscope", "state", "--data-dir", str(data), "Ledger",
                cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "Ledger(entries=[10, 25, 7], balance=42)" in shown.stdout
    history = run(sys.executable, "-m", "elixirscope", "history", "--data-dir", str(data),
                  "Ledger", cwd=tmp_path)
    assert "~ balance: 10 -> 35" in history.stdout
    assert "raised ValueError: too large a withdrawal: -500" in history.stdout
    teller = run(sys.executable, "-m", "elixirscope", "state", "--data-dir", str(data), "Teller",
                 cwd=tmp_path)
    assert "ledger=<actor Ledger@ActorAddr-/A~a~a>" in teller.stdout  # one value, named


def test_multiproc_base_links_sends_across_processes(tmp_path) -> None:
    data, evs = record_bank(tmp_path, "multiprocTCPBase", str(free_port()))
    sends = of(evs, "send", "Teller") + of(evs, "send", "Ledger")
    receives = {e["message_id"]: e for e in evs if e["type"] == "receive"}
    assert len(sends) == 11  # 4 posts, 3 answers back, 4 replies to the asker
    linked = [s for s in sends if s["message_id"] in receives]
    # every message between the two actors is linked; the replies to the asker outside
    # the actor system have no receiver recorded
    assert len(linked) == 7, [s["message"] for s in sends]
    for send in linked:
        receipt = receives[send["message_id"]]
        assert receipt["message"] == send["message"]
        assert receipt["producer"] != send["producer"]  # another process
    # a send names the actor that received it in another process and chain: in its call
    # tree, and in a listing of sends alone
    first = next(s for s in sends if s["message"] == "('post', 10)")
    tree = run(sys.executable, "-m", "elixirscope", "calltree", "--data-dir", str(data),
               "--no-pager", first["correlation_id"], cwd=tmp_path).stdout
    ledger_name = receives[first["message_id"]]["actor"]
    assert f"-> {ledger_name}: ('post', 10)" in tree, tree
    listed = run(sys.executable, "-m", "elixirscope", "events", "--data-dir", str(data),
                 "--type", "send", cwd=tmp_path).stdout
    assert f"-> {ledger_name}: ('post', 25)" in listed, listed
    # the summary tells the program's processes apart by the actors each ran
    summary = run(sys.executable, "-m", "elixirscope", "summary", "--data-dir", str(data),
                  cwd=tmp_path).stdout
    assert f"  actors {ledger_name}\n" in summary, summary
    # a second run: its actors have other ports, yet they are the same actors sending the
    # same messages, and `diff` says so
    record_bank(tmp_path, "multiprocTCPBase", str(free_port()))
    listed = run(sys.executable, "-m", "elixirscope", "runs", "--data-dir", str(data), "--json",
                 cwd=tmp_path)
    ids = [r["id"] for r in json.loads(listed.stdout)["runs"]]
    compared = run(sys.executable, "-m", "elixirscope", "diff", "--data-dir", str(data),
                   ids[1][:8], ids[0][:8], cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    assert "Messages: none" in compared.stdout, compared.stdout
    ledger_states = of(evs, "state", "Ledger")
    assert ledger_states[0]["callback"] == "__init__"
    assert ledger_states[-2]["callback"] == "receiveMessage"
    # Thespian's actor manager catches what the handler raised: each attempt is a change
    # with its error and line all the same, and the actor's fields are its own
    failed = [s for s in ledger_states if s["error"]]
    assert [s["error"] for s in failed] == ["ValueError: too large a withdrawal: -500"] * 2
    assert all(s["message"] == "('post', -500)" for s in failed)
    assert all(s["raised_at"].rsplit(":", 2)[2] == "receiveMessage" for s in failed)
    assert all("receiveMessage" not in (s["after"] or "") for s in ledger_states)
    # the ledger's address as the teller holds it: local until Thespian knows where the
    # child runs, then the child's own
    tellers = [s["after"] for s in of(evs, "state", "Teller")]
    assert "ledger=<ActorAddr-LocalAddr.0>" in tellers[1]
    ledger = ledger_states[0]["actor"].partition("@")[2]
    assert f"ledger=<{ledger}>" in tellers[-1]
    shown = run(sys.executable, "-m", "elixirscope", "state", "--data-dir", str(data), "Ledger",
                "--run", ids[1][:8], cwd=tmp_path)
    assert "Ledger(entries=[10, 25, 7], balance=42)" in shown.stdout, shown.stdout
    assert {s["producer"] for s in ledger_states} != {s["producer"] for s in of(evs, "state", "Teller")}


def test_a_runtime_genserver_is_recorded_by_the_runtime_alone(tmp_path) -> None:
    (tmp_path / "both_actors.py").write_text(
        "from thespian.actors import Actor\n"
        "from elixirscope.runtime import GenServer, Reply\n\n\n"
        "class Counter(GenServer):\n"
        "    def init(self, args):\n        return {'n': 0}\n\n"
        "    def handle_call(self, request, from_, state):\n"
        "        state['n'] += request\n        return Reply(state['n'], state)\n\n\n"
        "class Echo(Actor):\n"
        "    def receiveMessage(self, msg, sender):\n        self.send(sender, msg)\n"
    )
    script = tmp_path / "both.py"
    script.write_text(
        "from elixirscope.runtime import Runtime\n"
        "from both_actors import Counter, Echo\n\n"
        "with Runtime('simpleSystemBase') as rt:\n"
        "    counter = rt.start(Counter, path='counter')\n"
        "    print(rt.call(counter, 2), rt.call(counter, 3))\n"
        "    print(rt.system.ask(rt.system.createActor(Echo), 'hi', 5))\n"
    )
    done = recorded(script, tmp_path / "data")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "2 5\nhi\n"
    evs = events(tmp_path / "data")
    actors = {e["actor"] for e in evs if e["type"] == "state"}
    assert "counter" in actors or any(a.endswith("/counter") for a in actors)
    assert not [a for a in actors if a.startswith("Counter@")]  # not twice
    assert [a for a in actors if a.startswith("Echo@")]


def test_turned_off_by_its_key(tmp_path) -> None:
    script = tmp_path / "bank.py"
    script.write_text(BANK)
    done = recorded(script, tmp_path / "data", "simpleSystemBase",
                    env={"ELIXIRSCOPE_INTEGRATIONS__THESPIAN": "false"})
    assert done.returncode == 0, done.stderr
    evs = events(tmp_path / "data")
    assert not [e for e in evs if e["type"] in ("send", "receive", "state")]
    assert [e for e in evs if e["type"] == "call"]  # the program's calls still are


def test_enable_and_disable_put_thespian_back() -> None:
    from thespian.actors import Actor

    original = Actor.__dict__["send"]
    assert thespian_actors.enable()
    try:
        assert not thespian_actors.enable()  # once
        assert Actor.__dict__["send"] is not original
        assert Actor.__dict__["send"].__wrapped__ is original
    finally:
        assert thespian_actors.disable()
    assert Actor.__dict__["send"] is original
    assert not thespian_actors.disable()


# The recipe, against a shadow model: a sender numbers its messages to a receiver, Thespian
# delivers them in order but may lose some (a dead target, a transmit given up), and the
# receiver numbers what arrives. Whatever is lost, a receive never takes the id of a send
# whose text differs; with nothing lost every receive takes its own send's id.
texts = st.sampled_from(["a", "b", "('post', 10)", "x" * 50])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(texts, st.booleans()), max_size=40))
def test_a_receive_never_takes_the_id_of_a_send_of_another_text(messages) -> None:
    sent, received = _Places(), _Places()
    ids = {}
    receipts = []
    for text, lost in messages:
        mid = message_id("A", "B", sent.take("A", "B"), text)
        ids[mid] = text
        if not lost:
            receipts.append((message_id("A", "B", received.take("A", "B"), text), text))
    for mid, text in receipts:
        assert ids.get(mid, text) == text
    if not any(lost for _, lost in messages):
        assert [m for m, _ in receipts] == list(ids)


def test_pairs_are_numbered_apart() -> None:
    places = _Places()
    assert [places.take("A", "B"), places.take("A", "C"), places.take("A", "B")] == [0, 0, 1]
    assert message_id("A", "B", 0, "m") != message_id("B", "A", 0, "m")


def test_the_cinema_draws_the_messages_and_a_failed_message_is_no_crash(tmp_path) -> None:
    """The Actors view's arrows are the program's messages between the two actors; a
    message that raised is a ``raised`` mark (Thespian hands it again, the actor lives
    on), not a crash: the run's header and the Runs list count none."""
    from elixirscope.query.runs import list_runs
    from elixirscope.visualization import views

    data, _ = record_bank(tmp_path, "simpleSystemBase")
    (info,) = list_runs(data)
    models = views.Models(data)
    try:
        shown = views.messages_view(models, info.id, {})
        overview = views.overview_view(models, info.id)
        outcomes = models.outcomes(info)  # counted as the run was read
    finally:
        models.close()
    between = [m for m in shown["messages"] if m["receive_ts"] is not None and not m["unsent"]]
    assert [m["label"] for m in between if m["to"].startswith("Ledger@")] == [
        f"('post', {n})" for n in (10, 25, -500, 7)
    ]
    # what no recorded process sent is drawn from whom the receive names: the asks from
    # outside the actor system, and the message Thespian returned to the teller
    unsent = [(m["from"], m["label"]) for m in shown["messages"] if m["unsent"]]
    assert unsent[:2] == [("ActorAddr-System:ExternalRequester", "('deposit', 10)"),
                          ("ActorAddr-System:ExternalRequester", "('deposit', 25)")]
    assert ("Ledger@ActorAddr-/A~a~a", "<thespian.actors.PoisonMessage of ('post', -500)>") in unsent
    marks = [m for m in shown["marks"] if m["actor"].startswith("Ledger@")]
    assert [m["kind"] for m in marks] == ["raised"] * 3
    assert marks[0]["label"].endswith("raised in receiveMessage: ValueError: too large a withdrawal: -500")
    assert overview["crashes"] == []
    assert outcomes is not None and outcomes["crashes"] == 0


DISPATCHER = '''
from dataclasses import dataclass
from thespian.actors import ActorSystem, ActorTypeDispatcher


@dataclass
class Fetch:
    url: str


class Fetcher(ActorTypeDispatcher):
    def __init__(self):
        super().__init__()
        self.fetched = []

    def receiveMsg_Fetch(self, msg, sender):
        if msg.url == "/broken":
            raise KeyError(msg.url)
        self.fetched.append(msg.url)
        self.send(sender, len(self.fetched))

    def receiveMsg_str(self, msg, sender):
        self.send(sender, msg.upper())


system = ActorSystem("simpleSystemBase")
try:
    fetcher = system.createActor(Fetcher, globalName="fetcher")
    print([system.ask(fetcher, m, 5) for m in (Fetch("/"), "hi", Fetch("/broken"), Fetch("/a"))])
finally:
    system.shutdown()
'''


def test_a_type_dispatchers_changes_name_the_method_that_handled_each(tmp_path) -> None:
    from elixirscope.ai.insights import find
    from elixirscope.ai.recording import load_recording

    script = tmp_path / "fetch.py"
    script.write_text(DISPATCHER)
    done = recorded(script, tmp_path / "data")  # the default level: no arguments recorded
    assert done.returncode == 0, done.stderr
    assert "[1, 'HI', " in done.stdout
    states = of(events(tmp_path / "data"), "state", "Fetcher")
    assert [s["callback"] for s in states] == [
        "__init__", "receiveMsg_Fetch", "receiveMsg_str", *["receiveMsg_Fetch"] * 4
    ]
    assert [s["error"] for s in states[3:6]] == ["KeyError: '/broken'"] * 3
    found, errors = find(load_recording(tmp_path / "data"))
    (poison,) = [f for f in found if f.kind == "poison_message"]
    assert poison.details["messages"] == 1  # handed three times, one message
    assert poison.details["first_message"] == "Fetch(url='/broken')"
    by_name = run(sys.executable, "-m", "elixirscope", "state", "--data-dir",
                  str(tmp_path / "data"), "fetcher", cwd=tmp_path)  # its globalName
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.stdout.startswith("Fetcher@ActorAddr-/A~a after change 7 of 7")


def test_the_cause_of_a_change_names_who_handed_the_message(tmp_path) -> None:
    """A change made by a message no recorded process sent says whom the receive names:
    the asker outside the system, or the actor Thespian returned a failed message for."""
    from elixirscope.state.cause import cause_report

    data, _ = record_bank(tmp_path, "simpleSystemBase")
    first = cause_report(data, "Teller", change=2)["text"].splitlines()
    assert first[1].startswith("  message ") and "from ActorAddr-System:ExternalRequester:" in first[1]
    assert "its send was not recorded" in first[1]
    changes = [e for e in events(data) if e["type"] == "state" and e["actor"].startswith("Teller@")]
    poisoned = next(i for i, e in enumerate(changes) if "PoisonMessage" in (e["message"] or ""))
    text = cause_report(data, "Teller", change=poisoned + 1)["text"]
    assert "from Ledger@ActorAddr-/A~a~a: Thespian returned it to its sender" in text
    linked = cause_report(data, "Ledger", change=2)["text"]
    assert "sent by Teller@ActorAddr-/A~a: ('post', 10)" in linked


def test_a_poison_finding_knows_the_sender_handles_what_comes_back(tmp_path) -> None:
    from elixirscope.ai.insights import find
    from elixirscope.ai.recording import load_recording

    data, _ = record_bank(tmp_path, "simpleSystemBase")
    found, _errors = find(load_recording(data))
    (poison,) = [f for f in found if f.kind == "poison_message"]
    assert poison.details["messages"] == 1 and poison.details["first_message"] == "('post', -500)"
    assert "its sender already handles the PoisonMessage it gets back (Teller.receiveMessage)" in (
        poison.fix
    )
    assert "have senders handle" not in poison.fix


def test_why_follows_a_value_an_actor_passed_on_from_the_message_it_handled(tmp_path) -> None:
    """The ledger's 7 was never the teller's state: it came in with the deposit the teller
    was handling and went out in its post; why says so, back to the program's ask."""
    data, _ = record_bank(tmp_path, "simpleSystemBase")
    done = run(sys.executable, "-m", "elixirscope", "why", "--data-dir", str(data), "Ledger",
               "entries[2]", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "set by receiveMessage(('post', 7))" in lines[1]
    assert "sent by Teller@ActorAddr-/A~a" in lines[2]
    assert lines[3].endswith(
        "passed on by Teller@ActorAddr-/A~a.receiveMessage, which had it in the message it"
        " was handling: ('deposit', 7)"
    )
    assert "outside the actor system: the program's ask or tell" in lines[4]


QUEUE_PARENT = """
from thespian.actors import Actor, ActorSystem


class Child(Actor):
    def receiveMessage(self, msg, sender):
        if isinstance(msg, str):
            self.send(sender, msg.upper().encode())


class Parent(Actor):
    def __init__(self):
        super().__init__()
        self.kids = {}
        self.asked = 0
        self.reply_to = None

    def receiveMessage(self, msg, sender):
        if msg == "spawn":
            self.kids["a"] = self.createActor(Child)
            self.send(sender, "ok")
        elif isinstance(msg, str):
            self.asked += 1
            self.reply_to = sender
            self.send(self.kids["a"], msg)
        elif isinstance(msg, bytes):
            self.send(self.reply_to, msg)


asys = ActorSystem("multiprocQueueBase")
try:
    parent = asys.createActor(Parent)
    print(asys.ask(parent, "spawn", 30), asys.ask(parent, "hello", 30))
finally:
    asys.shutdown()
"""


def test_a_queue_base_childs_address_reads_as_thespian_writes_it(tmp_path) -> None:
    """On ``multiprocQueueBase`` an address is ``ActorAddr-Q.…`` (not the class's name),
    named by the actor a message to it reached; the child's address its parent holds
    before the child started (``LocalAddr.0``) turns into the child's own at the parent's
    next message, and the history says that is Thespian's doing, not the actor's."""
    script = tmp_path / "queue_parent.py"
    script.write_text(QUEUE_PARENT)
    data = tmp_path / "data"
    done = recorded(script, data)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok b'HELLO'"
    history = run(sys.executable, "-m", "elixirscope", "history", "--data-dir", str(data),
                  "Parent", cwd=tmp_path).stdout
    assert "+ kids.a: <ActorAddr-LocalAddr.0>" in history, history
    resolved = next(line for line in history.splitlines() if "~ kids.a:" in line)
    assert resolved.strip().startswith("~ kids.a: <ActorAddr-LocalAddr.0> -> <actor Child@ActorAddr-Q.")
    assert resolved.endswith("(the child's own address, known once Thespian started it)")
    assert "~ reply_to: None -> <ActorAddr-Q." in history, history
    # where the child's address came from: the message that created the child, not the
    # one Thespian had filled the address in by
    why = run(sys.executable, "-m", "elixirscope", "why", "--data-dir", str(data), "Parent",
              "kids.a", cwd=tmp_path).stdout
    assert ": set by receiveMessage('spawn'), change 2" in why, why
    assert "thespian.actors.ActorAddress>" not in history
    # the cinema's state view says the same of that change
    from elixirscope.query.runs import list_runs
    from elixirscope.visualization.views import Models, state_view

    (recorded_run,) = list_runs(data)
    models = Models(data)
    try:
        changes = [
            state_view(models, recorded_run.id, {"target": "Parent", "change": str(n)})
            for n in range(1, 5)
        ]
    finally:
        models.close()
    notes = [(x["path"], x["note"]) for c in changes for x in (c["diff"] or []) if x["note"]]
    assert notes == [("kids.a", "(the child's own address, known once Thespian started it)")]


MIXED_PARTS = '''
from thespian.actors import Actor
from elixirscope.runtime import GenServer, Reply


class Echo(Actor):
    """A plain Thespian actor: answers ('ping', x) to whoever sent it, keeps texts."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def receiveMessage(self, msg, sender):
        if isinstance(msg, tuple) and msg[0] == "ping":
            self.seen.append(msg[1])
            self.send(sender, ("pong", msg[1]))
        elif isinstance(msg, str):
            self.seen.append(msg)
        elif msg == "seen?" or isinstance(msg, list):
            self.send(sender, list(self.seen))


class Hub(GenServer):
    """A GenServer that pings the plain actor with Thespian's own send."""

    def init(self, echo):
        return {"echo": echo, "pongs": []}

    def handle_call(self, request, from_, state):
        if request == "pongs":
            return Reply(list(state["pongs"]), state)
        self.send(state["echo"], ("ping", request))
        return Reply("sent", state)

    def handle_info(self, message, state):
        state["pongs"].append(message)
        return state
'''

MIXED = '''
import sys, time
from mixed_parts import Echo, Hub
from elixirscope.runtime import Runtime

base = sys.argv[1]
with Runtime(base, admin_port=int(sys.argv[2])) if len(sys.argv) > 2 else Runtime(base) as rt:
    echo = rt.system.createActor(Echo)
    hub = rt.start(Hub, echo, path="hub")
    print(rt.call(hub, "a"), rt.call(hub, "b"))
    for _ in range(200):
        pongs = rt.call(hub, "pongs")
        if len(pongs) == 2:
            break
        time.sleep(0.05)
    rt.send(echo, "raw")  # the runtime's raw send, to a plain actor (after both pings)
    print(pongs, rt.system.ask(echo, [], 10))
'''


def record_mixed(tmp_path: Path, *argv: str) -> list[dict]:
    (tmp_path / "mixed_parts.py").write_text(MIXED_PARTS)
    script = tmp_path / "mixed.py"
    script.write_text(MIXED)
    done = recorded(script, tmp_path / "data", *argv)
    assert done.returncode == 0, done.stderr
    again = [*argv[:1], *([str(free_port())] if len(argv) > 1 else [])]
    expected = plain(script, *again)
    want = "sent sent\n[('pong', 'a'), ('pong', 'b')] ['a', 'b', 'raw']\n"
    assert done.stdout == expected.stdout == want  # as without ElixirScope
    return events(tmp_path / "data")


def assert_mixed_links(evs: list[dict]) -> None:
    """The GenServer's pings, the plain actor's pongs and the runtime's raw send: each
    send recorded once, named by who sent it, and received under its own id."""
    sends = {e["message_id"]: e for e in evs if e["type"] == "send"}
    receives = {e["message_id"]: e for e in evs if e["type"] == "receive"}
    for text, sender, receiver in [
        ("('ping', 'a')", "hub", "Echo@"),
        ("('ping', 'b')", "hub", "Echo@"),
        ("('pong', 'a')", "Echo@", "hub"),
        ("('pong', 'b')", "Echo@", "hub"),
        ("'raw'", None, "Echo@"),
    ]:
        (send,) = [s for s in sends.values() if s["message"] == text]
        assert send["sender"] == sender or (sender and send["sender"].startswith(sender))
        receipt = receives[send["message_id"]]
        assert receipt["actor"].startswith(receiver) and receipt["message"] == text
    hub_states = [e for e in evs if e["type"] == "state" and e["actor"] == "hub"]
    pongs = [s for s in hub_states if s["callback"] == "handle_info"]
    assert [s["message"] for s in pongs] == ["('pong', 'a')", "('pong', 'b')"]
    assert all(s["message_id"] in receives for s in pongs)  # each change names its message


def test_a_genserver_and_a_plain_actor_are_linked_both_ways(tmp_path) -> None:
    evs = record_mixed(tmp_path, "simpleSystemBase")
    assert_mixed_links(evs)
    sends = {e["message_id"]: e for e in evs if e["type"] == "send"}
    for receipt in [e for e in evs if e["type"] == "receive" and e["message_id"] in sends]:
        assert receipt["correlation_id"] == sends[receipt["message_id"]]["correlation_id"]
    done = run(sys.executable, "-m", "elixirscope", "why", "--data-dir", "data", "hub",
               "pongs[1]", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "sent by Echo@" in done.stdout and "made in mixed_parts.Echo.receiveMessage" in done.stdout


def test_a_genserver_and_a_plain_actor_are_linked_across_processes(tmp_path) -> None:
    evs = record_mixed(tmp_path, "multiprocTCPBase", str(free_port()))
    assert_mixed_links(evs)
    (init,) = [e for e in evs if e["type"] == "state" and e["actor"] == "hub"
               and e["callback"] == "init"]
    assert "ActorAddr-(T|" in init["after"]  # the address it was given, as it always reads
    changes = [e for e in evs if e["type"] == "state" and e["actor"] == "hub"
               and e["callback"] == "handle_call"]
    assert [e["delta"] for e in changes] == [None, None, *[None] * (len(changes) - 2)]  # no
    # change of 'echo' once Thespian had written the address's text
