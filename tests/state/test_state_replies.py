"""``why`` follows a value a ``call_async``'s reply brought back into the server's state,
and says what a message no actor sent is (a timeout, a monitor's ``Down``).

Real GenServers on a real Thespian system, recorded into a real store.
"""

from __future__ import annotations

import pytest
from waiting import wait_until

from elixirscope.capture import actors, session
from elixirscope.ingest.stores import RunStore
from elixirscope.runtime import CallResult, Down, GenServer, NoReply, Reply, Runtime
from elixirscope.state.origin import why
from elixirscope.state.recorded import StateRecording

GEM = "ruby-7041"


class Vault(GenServer):
    """Holds a gem made at init. ``"gem"``: answered at once; ``"later"``: answered
    when cast ``"answer"``; ``"never"``: not answered; ``"boom"``: crashes."""

    def init(self, gem):  # noqa: ANN001, ANN201
        self.waiting = []
        return {"gem": gem}

    def handle_call(self, request, from_, state):  # noqa: ANN001, ANN201
        if request == "gem":
            return Reply(state["gem"], state)
        if request == "later":
            self.waiting.append(from_)
        if request == "boom":
            raise RuntimeError("boom")
        return NoReply(state)

    def handle_cast(self, message, state):  # noqa: ANN001, ANN201
        while self.waiting:
            self.reply(self.waiting.pop(), state["gem"])
        return state


class Asker(GenServer):
    """Cast ``(request, timeout)``: asks the vault with call_async and keeps the answer;
    cast ``"watch"``: monitors the vault and keeps why it went."""

    def init(self, vault):  # noqa: ANN001, ANN201
        return {"vault": vault, "got": None, "failed": None, "gone": None}

    def handle_cast(self, message, state):  # noqa: ANN001, ANN201
        if message == "watch":
            self.monitor(state["vault"])
        else:
            self.call_async(state["vault"], *message)
        return state

    def handle_call(self, request, from_, state):  # noqa: ANN001, ANN201
        return Reply(state[request], state)

    def handle_info(self, message, state):  # noqa: ANN001, ANN201
        if isinstance(message, CallResult) and message.ok:
            state["got"] = message.value
        elif isinstance(message, CallResult):
            state["failed"] = str(message.reason)
        elif isinstance(message, Down):
            state["gone"] = str(message.reason)
        return state


class Recording:
    def __init__(self, data_dir) -> None:  # noqa: ANN001
        self.data = str(data_dir)
        self.session = session.start_capture(sink=RunStore(data_dir))
        actors.enable_actor_capture()
        self.rt = Runtime("simpleSystemBase")
        self.vault = self.rt.start(Vault, GEM, path="bank/vault")
        self.asker = self.rt.start(Asker, self.vault, path="bank/asker")

    def ask(self, message, field: str) -> object:  # noqa: ANN001
        self.rt.cast(self.asker, message)
        return wait_until(lambda: self.rt.call(self.asker, field), timeout=30)

    def why(self, target: str, field: str) -> list[str]:
        assert self.session.flush(10)
        return [step.text for step in why(StateRecording(self.data), target, field)]

    def close(self) -> None:
        self.rt.shutdown()
        actors.disable_actor_capture()
        self.session.stop()


@pytest.fixture
def recording(tmp_path):
    rec = Recording(tmp_path / "data")
    try:
        yield rec
    finally:
        rec.close()


def test_why_of_a_value_a_reply_brought_walks_into_the_servers_state(recording):
    assert recording.ask(("gem", 5.0), "got") == GEM
    steps = recording.why("bank/asker", "got")
    assert steps[0].startswith(f"bank/asker.got = {GEM!r}: set by handle_info(CallResult(")
    assert steps[1] == f"sent by bank/vault, its reply to handle_call('gem') (change 2): {GEM!r}"
    assert steps[2] == f"bank/vault.gem = {GEM!r}: set by init({GEM!r}), change 1"
    assert steps[3] == "made by bank/vault.init (its first recorded state)"
    assert len(steps) == 4


def test_why_of_a_value_a_later_reply_brought_names_the_call_it_answered(recording):
    recording.rt.cast(recording.asker, ("later", 5.0))
    recording.rt.cast(recording.vault, "answer")  # the vault replies handling this cast
    assert wait_until(lambda: recording.rt.call(recording.asker, "got"), timeout=30) == GEM
    steps = recording.why("bank/asker", "got")
    assert steps[1] == f"sent by bank/vault, its reply to handle_call('later') (change 2): {GEM!r}"
    assert steps[2] == f"bank/vault.gem = {GEM!r}: set by init({GEM!r}), change 1"


def test_why_of_a_call_async_timeout_says_it_timed_out(recording):
    assert recording.ask(("never", 0.2), "failed") == "no reply within 0.2 s"
    steps = recording.why("bank/asker", "failed")
    assert steps[0].startswith(
        "bank/asker.failed = 'no reply within 0.2 s': set by handle_info(CallResult("
    )
    assert steps[1].startswith("made by bank/asker.handle_info, handling CallResult(")
    assert steps[1].endswith("(the call's result: no reply within 0.2 s, its timeout)")
    assert not any("WebSocket" in step for step in steps)


def test_why_of_a_value_a_monitors_down_brought_names_the_notice(recording):
    recording.rt.cast(recording.asker, "watch")
    recording.rt.stop(recording.vault)
    assert wait_until(lambda: recording.rt.call(recording.asker, "gone"), timeout=30) == "shutdown"
    steps = recording.why("bank/asker", "gone")
    assert steps[1].startswith("made by bank/asker.handle_info, handling Down(")
    assert steps[1].endswith("(a monitor's notice that the monitored actor is gone: shutdown)")


def test_why_of_a_call_async_whose_server_crashed_says_the_server_exited(recording):
    failed = recording.ask(("boom", 5.0), "failed")
    assert failed == "exception builtins.RuntimeError: boom"
    steps = recording.why("bank/asker", "failed")
    assert steps[1].endswith(
        "(the call's result: the server exited: exception builtins.RuntimeError: boom)"
    )
