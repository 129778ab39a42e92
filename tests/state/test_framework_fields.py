"""A Thespian actor's state is its own fields: ``_myRef``, which its base class keeps on it
and which holds the whole actor system, is left out of its captures and its deltas."""

from __future__ import annotations

from thespian.actors import ActorTypeDispatcher

from elixirscope.state.capture import capture
from elixirscope.state.delta import decode_delta
from elixirscope.state.tracker import StateTracker


class Worker(ActorTypeDispatcher):
    def __init__(self) -> None:
        super().__init__()
        self.totals: dict[str, int] = {}


class Plain:
    pass


def test_a_thespian_actors_state_leaves_out_its_system_reference() -> None:
    worker = Worker()
    worker._myRef = {"pending_sends": [1, 2, 3]}  # as Thespian sets it: the system's
    assert set(capture(worker).fields) == {"totals"}
    tracker = StateTracker()
    tracker.record("w", worker)
    worker._myRef = {"pending_sends": [1, 2, 3, 4]}
    worker.totals["bob"] = 3
    _, _, delta, _ = tracker.record("w", worker)
    ops = decode_delta(delta)
    assert ops and all(op.path[0] == "totals" for op in ops), ops
    plain = Plain()
    plain._myRef = 1  # the name alone hides nothing on a class that is not an actor
    assert set(capture(plain).fields) == {"_myRef"}
