"""A plain Thespian actor whose receiveMessage raises: Thespian hands it the message again,
then returns it to its sender as a PoisonMessage — a finding of its own (not a retry loop
of the program's), recorded for real on simpleSystemBase."""

from __future__ import annotations

from programs import record

from elixirscope.ai.insights import find
from elixirscope.ai.recording import load_recording

PROGRAM = '''
from thespian.actors import Actor, ActorSystem, PoisonMessage


class Worker(Actor):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.total = 0

    def receiveMessage(self, msg, sender):
        if isinstance(msg, int):
            if msg < 0:
                raise ValueError(f"negative amount {msg}")
            self.total += msg
            self.send(sender, self.total)


system = ActorSystem("simpleSystemBase")
try:
    worker = system.createActor(Worker)
    answers = [system.ask(worker, n, 5) for n in (3, -2, 4)]
    print([type(a).__name__ if isinstance(a, PoisonMessage) else a for a in answers])
finally:
    system.shutdown()
'''


def findings(data):
    found, errors = find(load_recording(data))
    assert errors == {}
    return found


def test_a_message_a_thespian_actor_raised_on_is_a_finding(tmp_path) -> None:
    data = record(tmp_path, "workers", PROGRAM)
    found = findings(data)
    (poison,) = [f for f in found if f.kind == "poison_message"]
    assert not [f for f in found if f.kind == "retried_function"]  # Thespian's, not a loop
    assert poison.severity == "high"
    assert poison.title == "message failed: Worker.receiveMessage raised ValueError (1 message)"
    assert poison.details["first_message"] == "-2"
    assert poison.details["failures"] >= 2 and poison.details["messages"] == 1
    assert "returns it to its sender as a PoisonMessage" in poison.explanation
    (site,) = poison.locations
    source = (tmp_path / "workers.py").read_text().splitlines()
    assert "raise ValueError" in source[site.line - 1]


def test_an_actor_that_never_raised_is_no_finding(tmp_path) -> None:
    data = record(tmp_path, "workers", PROGRAM.replace("(3, -2, 4)", "(3, 2, 4)"))
    assert not [f for f in findings(data) if f.kind == "poison_message"]


def test_at_the_default_level_the_message_is_read_from_the_actors_state(tmp_path) -> None:
    """No arguments recorded (level boundaries): the Thespian integration's state change
    of the failed message says which it was, so Thespian's hand-again is not counted as
    more messages."""
    data = record(tmp_path, "workers", PROGRAM, level="boundaries")
    (poison,) = [f for f in findings(data) if f.kind == "poison_message"]
    assert poison.details["first_message"] == "-2"
    assert poison.details["messages"] == 1 and poison.details["failures"] >= 2
