"""Fixes for Thespian 4.0.1 bugs the runtime depends on, applied on import.

``drainTransmits`` loses an exiting actor's last messages. When an actor
exits, Thespian sends what it still has queued by calling
``transport.run(TransmitOnly, ...)`` until the result is falsy. If a
``wakeupAfter`` timer falls due meanwhile, ``run`` returns that wakeup's
``ReceiveEnvelope`` — and ``ReceiveEnvelope`` inherits a ``__bool__`` that is
False — so the drain stops with messages unsent and the process exits. Every
runtime actor keeps a liveness timer, so without this fix an actor's final
lifecycle Event or even its ExitNotice (which decides whether a transient
child restarts) can vanish. Found by the supervision model test; reproduced
with plain Thespian (a 50 ms timer loses ~1 % of the last three messages).

The fixed drain treats a wakeup as "keep draining" and stops only on a real
"nothing left to send", within Thespian's own drain time limit.

An exiting actor's process also drops, unanswered, the messages it had
already accepted (acknowledged to their senders) but not handed to the
actor: a call waiting behind the one that crashed the actor waited out its
timeout. After the drain, the actor (``answer_undelivered``) answers them as
it answers anything that reaches it while exiting, and the answers are
drained too.

``simpleSystemBase`` discards a message sent to an actor that has ended but
whose parent has not yet heard ``ChildActorExited`` (its registry entry is
still there, without an instance), instead of handing it to the dead-letter
handler as it does a moment later. A call made right after an actor exited
then waited out its whole timeout. The fix hands such a message to the
dead-letter handler (the runtime's registry answers a ``Call`` with ``noproc``).

The patches are applied in every process that imports the runtime's process
base — actor processes inherit them by fork, and import it with their actor
class otherwise.
"""

from __future__ import annotations

from thespian.actors import ActorExitRequest, ChildActorExited, DeadEnvelope
from thespian.system import simpleSystemBase, systemCommon
from thespian.system.timing import ExpirationTimer, unexpired
from thespian.system.transport import ReceiveEnvelope, TransmitOnly

__all__ = ["apply"]

_ANSWER_ROUNDS = 16  # drains, each followed by answering what arrived during it


def _drain(manager) -> None:  # noqa: ANN001 - a Thespian actor manager
    drain_limit = ExpirationTimer(systemCommon.MAX_SHUTDOWN_DRAIN_PERIOD)
    for remaining in unexpired(drain_limit):
        result = manager.transport.run(TransmitOnly, remaining.remaining())
        if isinstance(result, ReceiveEnvelope):
            continue  # a timer fell due: not "no transmits left"
        if not result:
            break


def _answer_undelivered(manager) -> bool:  # noqa: ANN001 - a Thespian actor manager
    """Let the exiting actor answer what its process accepted but will never hand it."""
    answer = getattr(getattr(manager, "actorInst", None), "answer_undelivered", None)
    if answer is None:
        return False
    answered = False
    for queue in (
        getattr(manager, "_receiveQueue", None),
        getattr(getattr(manager, "transport", None), "_incomingEnvelopes", None),
    ):
        if not isinstance(queue, list):
            continue
        kept = []
        for envelope in queue:
            if isinstance(envelope, ReceiveEnvelope):
                answered = answer(envelope.message, envelope.sender) or answered
            else:
                kept.append(envelope)
        queue[:] = kept
    return answered


def _drain_transmits(self) -> None:  # noqa: ANN001 - Thespian's method signature
    # a sender whose call was answered may send its next one meanwhile: repeat until none came
    for _ in range(_ANSWER_ROUNDS):
        _drain(self)
        if not _answer_undelivered(self):
            break


_original_single_send = simpleSystemBase.ActorSystemBase._runSingleSend


def _run_single_send(self, ps) -> None:  # noqa: ANN001 - Thespian's method signature
    target = self.actorRegistry.get(getattr(ps.toActor, "actorAddressString", None))
    box = self.actorRegistry.get("DeadLetterBox")
    if (
        target is not None
        and target.instance is None
        and ps.attempts <= 2
        and box is not None
        and box.instance is not None
        and not isinstance(ps.msg, (DeadEnvelope, ChildActorExited, ActorExitRequest))
    ):
        self._callActorWithMessage(
            box, ps, DeadEnvelope(ps.toActor.actorAddressString, ps.msg), ps.sender
        )
        return
    _original_single_send(self, ps)


def apply() -> None:
    """Install the fixes (idempotent)."""
    systemCommon.systemCommonBase.drainTransmits = _drain_transmits
    simpleSystemBase.ActorSystemBase._runSingleSend = _run_single_send
