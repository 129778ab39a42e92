"""Planted secrets, recorded through the real path, never reach the wire or the store.

A program instrumented by the real rewriter at level ``full`` (so arguments,
returns, yields, attribute changes and exceptions are captured), a GenServer
traced by the actor tracer (state, messages) and a custom event carry one
secret of each kind. They are recorded with the C hooks and with the
pure-Python hooks, shipped by a real capture session into the embedded store
(``RunStore``, as ``elixirscope run`` does) while every encoded frame is kept.
No secret — nor the first characters of one — may appear in the encoded
frames or in the events read back from the store; the non-secret neighbours
must still be there, readable.
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal

import pytest
from hooks_support import RUNTIMES
from secrets_corpus import NEIGHBOURS, PROGRAM, SECRETS

from elixirscope.capture import actors, hooks, recorder, redaction, session
from elixirscope.ingest.stores import RunStore
from elixirscope.instrument.rewriter import rewrite_source
from elixirscope.runtime import GenServer, Reply, Runtime
from elixirscope.store.eventstore import EventStore


class Vault(GenServer):
    """Holds a DSN in its state; a call adds a pair to it."""

    def init(self, args):  # noqa: ANN001, ANN201
        return {"db": "mysql://root:StatePw1q@db/x", "count": 1}

    def handle_call(self, request, from_, state):  # noqa: ANN001, ANN201
        state["count"] += 1
        return Reply("ok", state)


class Tee:
    """A capture sink keeping every encoded frame and writing it to the embedded store."""

    def __init__(self, data_dir) -> None:  # noqa: ANN001
        self.frames: list[bytes] = []
        self.lock = threading.Lock()
        self.store = RunStore(data_dir)

    def __call__(self, frame: bytes, count: int) -> None:
        with self.lock:
            self.frames.append(frame)
        self.store.append_frame(frame, count)


@pytest.fixture(scope="module", params=RUNTIMES)
def recorded(request, tmp_path_factory):
    """Record the corpus once per hooks runtime: the encoded frames and the stored events."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ELIXIRSCOPE_NO_SPEEDUPS", raising=False)
        return _record(request.param, tmp_path_factory.mktemp("store"))


def _record(accelerated: bool, data_dir) -> tuple[bytes, str]:  # noqa: ANN001
    hooks.uninstall()
    recorder.uninstall()
    redaction.configure(extra_names=["pin"], extra_patterns=[r"sk_live_[0-9A-Za-z]{10,}"])
    recorder.install(ring_size=1 << 14, accelerated=accelerated)
    assert hooks.install().accelerated is accelerated
    tee = Tee(data_dir)
    sess = session.start_capture(sink=tee)
    actors.enable_actor_capture()
    runtime = Runtime("simpleSystemBase")
    try:
        module = f"corpus_{'c' if accelerated else 'py'}"
        code = rewrite_source(PROGRAM, module, {module: "full", f"{module}.*": "full"},
                              f"{module}.py")
        ns: dict = {"__name__": module}
        exec(code, ns)
        assert ns["run"]() == "done"
        vault = runtime.start(Vault, path="vault")
        assert runtime.call(vault, ("password", "MsgPairPw-8q")) == "ok"
        session.record("login", session_id="CustomSess42q", user="bob")
        session.record("payment", amount=Decimal("378282246310005"))
    finally:
        runtime.shutdown()
        actors.disable_actor_capture()
        sess.stop()
        tee.store.close()
        hooks.uninstall()
        recorder.uninstall()
        redaction.reset_defaults()
    with EventStore.open(data_dir, readonly=True) as store:
        stored = [json.dumps(e.to_dict(), default=repr) for e in store.query()]  # keys: bytes
    return b"".join(tee.frames), "\n".join(stored)


def test_the_corpus_names_at_least_the_21_kinds_of_the_issue():
    assert len(SECRETS) >= 21
    assert len({kind for kind, _, _ in SECRETS}) == len(SECRETS)


@pytest.mark.parametrize(("kind", "planted", "hidden"), SECRETS, ids=[s[0] for s in SECRETS])
def test_no_planted_secret_is_encoded_or_stored(recorded, kind, planted, hidden):
    frames, stored = recorded
    assert hidden.encode() not in frames, f"{kind}: {hidden!r} in an encoded frame"
    assert hidden not in stored, f"{kind}: {hidden!r} in a stored event"
    digits = "".join(c for c in hidden if c.isdigit())
    if digits == hidden.replace(" ", "").replace("-", ""):  # a card number: no grouping either
        assert digits.encode() not in frames and digits not in stored


@pytest.mark.parametrize("neighbour", NEIGHBOURS)
def test_non_secret_neighbours_stay_readable(recorded, neighbour):
    frames, stored = recorded
    assert neighbour in stored, f"{neighbour!r} missing from the stored events"


def test_every_kind_of_event_was_recorded(recorded):
    """The corpus really went through arguments, returns, yields, attributes,
    exceptions, actor state and messages, and custom events."""
    _, stored = recorded
    for tag in ('"type": "call"', '"type": "return"', '"type": "exception"', '"type": "yield"',
                '"type": "attr"', '"type": "state"', '"type": "receive"', '"type": "custom"'):
        assert tag in stored, tag
