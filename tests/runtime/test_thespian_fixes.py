"""Regression test for the Thespian 4.0.1 drain bug fixed in elixirscope.runtime._thespian_fixes.

An actor that ends itself while a wakeupAfter timer is pending used to lose
some of the messages it sent just before (about 1 % here): the exit drain took
the due wakeup for "nothing left to send". Runtime actors always have such a
timer, and their last messages are lifecycle Events and the ExitNotice.
"""

import time
from datetime import timedelta

from thespian.actors import Actor, ActorExitRequest, WakeupMessage

import elixirscope.runtime.process  # noqa: F401 - importing the process base applies the fix


class Sink(Actor):
    got: list

    def receiveMessage(self, msg, sender):
        if not hasattr(self, "got"):
            self.got = []
        if msg == "get":
            self.send(sender, list(self.got))
        elif isinstance(msg, tuple) and msg[0] == "ev":
            self.got.append(msg[1])


class LastWords(Actor):
    """Keeps a periodic timer like the runtime's liveness check; on "go" sends, then exits."""

    def receiveMessage(self, msg, sender):
        if isinstance(msg, tuple) and msg[0] == "arm":
            self.wakeupAfter(timedelta(seconds=msg[1]), payload="tick")
            self.send(sender, "armed")
        elif isinstance(msg, tuple) and msg[0] == "go":
            _, sink, tag, n = msg
            for i in range(n):
                self.send(sink, ("ev", (tag, i)))
            self.send(sender, "sent")
            self.send(self.myAddress, ActorExitRequest())
        elif isinstance(msg, WakeupMessage):
            self.wakeupAfter(timedelta(seconds=0.05), payload="tick")


def test_messages_sent_just_before_exit_all_arrive(runtime):
    system, rounds, per_round, period = runtime.system, 200, 3, 0.05
    sink = system.createActor(Sink)
    expected = set()
    for tag in range(rounds):
        actor = system.createActor(LastWords)
        assert system.ask(actor, ("arm", period), 10) == "armed"
        time.sleep(period * (tag % 10) / 10)  # vary the exit's phase against the timer
        assert system.ask(actor, ("go", sink, tag, per_round), 10) == "sent"
        expected.update((tag, i) for i in range(per_round))

    def received():
        got = system.ask(sink, "get", 10)
        return got is not None and {tuple(x) for x in got} >= expected and got

    from waiting import wait_until

    got = wait_until(received, timeout=30)
    assert len(got) == len(expected)
