"""Closes Thespian 4.0.1's TCP transport to strangers, applied on import.

Out of the box every Thespian socket - the admin's and one per actor - binds
to all interfaces (``IPActorAddress`` binds ``''``) and whatever arrives is
unpickled, so anyone who can reach a port can run code in the actor system.
Three patches, installed in every process that imports ``elixirscope.runtime``
(actor processes inherit them by fork, as they do ``_thespian_fixes``):

1. **Loopback.** An address Thespian makes for itself (no host given) binds to,
   and is published as, the configured host - ``127.0.0.1`` unless
   :func:`bind_to` was told otherwise with ``allow_remote``, which warns.
2. **Sealed frames.** TCPTransport (and UDPTransport) serialize with the
   module-level ``serializer``; it is replaced by one that prefixes each pickle with an
   HMAC of the system secret (:mod:`.frame_seal`) and checks it before
   unpickling. A frame without a valid seal is dropped - Thespian answers it
   with its data-error ACK and closes the connection - counted and logged.
   The precomputed ACK frames are sealed too, and a refused ACK counts as a
   corrupt one (the send is retried) instead of escaping from the transport.
3. **Allow-listed classes.** A sealed frame is unpickled by
   :mod:`.pickle_allowlist`; a refused class is counted and logged. The
   packages of actor classes a process creates are trusted in it before the
   child is forked, so the child and its creator accept their messages.
4. **Refusals answered.** A receiver that refuses a frame answers it with
   Thespian's data-error ACK, which Thespian's own sender ignores - the message
   vanished and a caller waited out its timeout. The sending actor now gets
   the message back as a ``PoisonMessage`` whose ``details`` is a
   :class:`SendRefused` naming the class its own allow-list refuses too (or
   saying the receiver's log names it); the runtime turns that into a failed
   call at once (:class:`~elixirscope.runtime.errors.MessageRefused`).
5. **Quiet OUCH.** Thespian logs "OUCH! Error deserializing received data" with a
   full traceback for every frame it cannot read (to ``$TMPDIR/thespian.log``);
   a flood of bad frames would flood that log. Only the first ``_LOG_FIRST``
   per process, and then every ``_LOG_EVERY``-th with its count, are logged.
"""

from __future__ import annotations

import logging
import os
import pickle
from typing import Any

from thespian.actors import PoisonMessage
from thespian.system import actorManager, multiprocCommon, systemBase
from thespian.system.transport import (
    IPBase,
    ReceiveEnvelope,
    SendStatus,
    TCPTransport,
    UDPTransport,
    streamBuffer,
)

from elixirscope.runtime import frame_seal, pickle_allowlist
from elixirscope.transport.exposure import ALLOW_REMOTE_KEY, is_loopback

__all__ = [
    "LOOPBACK",
    "SendRefused",
    "apply",
    "bind_address",
    "bind_to",
    "prepare_system_start",
    "refusal_of",
    "refusals",
]

LOOPBACK = "127.0.0.1"
_LOG_FIRST, _LOG_EVERY = 10, 1000

LOGGER = "elixirscope.runtime.transport"

_bind_host: str | None = LOOPBACK  # None: Thespian's own choice, every interface
_refused = {"unsealed_frames": 0, "refused_classes": 0, "sends_refused": 0}
_ouch = [0]  # Thespian's "OUCH" log lines seen in this process


def _new_process_counts() -> None:
    for kind in _refused:
        _refused[kind] = 0
    _ouch[0] = 0


os.register_at_fork(after_in_child=_new_process_counts)  # an actor counts its own refusals


def refusals() -> dict[str, int]:
    """Frames this process dropped for a bad seal or for a class off the allow-list, and
    messages it sent that their receiver refused."""
    return dict(_refused)


class SendRefused(str):
    """Why a message this process sent was refused by its receiver: the ``details`` of
    the PoisonMessage the sending actor gets back (it never leaves the process)."""


def refusal_of(message: Any) -> str:
    """Why a receiver would refuse ``message``, as this process can tell."""
    found = pickle_allowlist.refused_in(message)
    if found is not None:
        return f"the receiving process refused {type(message).__name__}: {found}"
    return (
        f"the receiving process refused {type(message).__name__}: a class in it is not "
        "allowed there (its log names which; elixirscope.runtime.trust_modules(...) allows "
        "a package), or the frame was damaged"
    )


def bind_address() -> str:
    return _bind_host or "0.0.0.0"


def bind_to(host: str, *, allow_remote: bool = False) -> None:
    """Choose the host Thespian sockets made from now on (in this process and its forks) bind to.

    ``0.0.0.0`` or ``*`` means every interface. Anything but loopback is refused
    unless ``allow_remote`` (the ``network.allow_remote`` setting), and then warned about.
    """
    global _bind_host
    if not isinstance(host, str) or not host.strip():
        raise ValueError(
            f"Expected an IPv4 address to bind actor sockets to, like {LOOPBACK!r}; got {host!r}"
        )
    host = host.strip()
    if not is_loopback(host):
        if not allow_remote:
            raise ValueError(
                f"Refusing to bind the actor system's sockets to {host!r}: it is not a loopback "
                f"address, so other machines could reach the actors. Set {ALLOW_REMOTE_KEY} = true "
                f"to allow it, or bind to {LOOPBACK}"
            )
        logging.getLogger(LOGGER).warning(
            "actor system sockets bind to %s, reachable from other machines (allowed by %s); "
            "frames are still sealed with the system secret",
            host,
            ALLOW_REMOTE_KEY,
        )
    _bind_host = None if host in ("0.0.0.0", "*") else host


def prepare_system_start(capabilities: dict[str, Any]) -> None:
    """Called before this process starts an actor system: its secret, and fork only.

    The admin and actors learn the secret by inheriting it; a spawned process
    would make its own and could talk to nobody.
    """
    method = capabilities.get("Process Startup Method", "fork")
    if method != "fork":
        raise ValueError(
            f"Expected 'Process Startup Method' to be 'fork' (actor processes inherit the "
            f"system's transport secret that way); got {method!r}"
        )
    frame_seal.secret_for_system_start()
    _seal_acks()


# ------------------------------------------------------------------ the patches


class SealedPickle:
    """Stands in for the ``pickle`` module TCPTransport serializes with."""

    @staticmethod
    def dumps(obj: Any) -> bytes:
        return frame_seal.seal(pickle.dumps(obj))

    @staticmethod
    def loads(frame: bytes) -> Any:
        try:
            payload = frame_seal.open_frame(frame)
        except frame_seal.FrameRejected as exc:
            _count("unsealed_frames", exc)
            raise
        try:
            return pickle_allowlist.loads(payload)
        except pickle_allowlist.ClassRefused as exc:
            _count("refused_classes", exc)
            raise


def _count(kind: str, exc: Exception) -> None:
    n = _refused[kind] = _refused[kind] + 1
    if n <= _LOG_FIRST or n % _LOG_EVERY == 0:
        # looked up now: in an actor process Thespian replaces logging's manager after the fork
        logging.getLogger(LOGGER).warning(
            "%s (%s so far in this process: %d)", exc, kind.replace("_", " "), n
        )


def _seal_acks() -> None:
    """Thespian's ACK frames are pickled once at import: seal them with this process's secret."""
    TCPTransport.ackMsg = streamBuffer.toSendBuffer(streamBuffer.ackPacket, SealedPickle.dumps)
    TCPTransport.ackDataErrMsg = streamBuffer.toSendBuffer(
        streamBuffer.ackDataErrPacket, SealedPickle.dumps
    )


_original_address_init = IPBase.IPActorAddress.__init__


def _address_init(self, af, socktype, proto, baseaddr, port, external=False):  # noqa: ANN001 - Thespian's
    if _bind_host is None or baseaddr not in (None, "", "0.0.0.0"):
        return _original_address_init(self, af, socktype, proto, baseaddr, port, external)
    _original_address_init(self, af, socktype, proto, _bind_host, port, external)
    self.bindname = self.sockname  # Thespian binds ('', port) for any "external" address


_original_ack_check = TCPTransport.TCPTransport._check_XMIT_4_done


def _ack_check(self, intent, rcv):  # noqa: ANN001 - Thespian's method signature
    try:
        return _original_ack_check(self, intent, rcv)
    except (frame_seal.FrameRejected, pickle_allowlist.ClassRefused):
        # the peer is not one of ours: treat as a corrupt ACK, as Thespian does
        intent.ackbuf = streamBuffer.ReceiveBuffer(TCPTransport.serializer.loads)
        intent.backoffPause(True)
        intent.stage = self._XMITStepRetry
        return self._nextTransmitStep(intent)


_original_start_child = multiprocCommon.MultiProcReplicator._startChildActor


def _start_child(self, childAddr, childClass, *args, **kw):  # noqa: ANN001, N803 - Thespian's
    pickle_allowlist.trust_actor_class(childClass)  # before the fork: the child inherits it
    return _original_start_child(self, childAddr, childClass, *args, **kw)


_original_new_primary = systemBase.systemBase.newPrimaryActor


def _new_primary(self, actorClass, *args, **kw):  # noqa: ANN001, N803 - Thespian's
    pickle_allowlist.trust_actor_class(actorClass)  # its replies come back to this process
    return _original_new_primary(self, actorClass, *args, **kw)


_original_send_fail = actorManager.ActorManager.actor_send_fail


def _send_fail(self, result, intent):  # noqa: ANN001 - Thespian's method signature
    """The receiver answered data-error: hand the message back to the sending actor."""
    if result == SendStatus.BadPacket and not isinstance(intent.message, PoisonMessage):
        why = SendRefused(refusal_of(intent.message))
        _count("sends_refused", ValueError(f"a message sent to {intent.targetAddr}: {why}"))
        self._receiveQueue.append(
            ReceiveEnvelope(intent.targetAddr, PoisonMessage(intent.message, why))
        )
    return _original_send_fail(self, result, intent)


_original_thesplog = TCPTransport.thesplog


def _thesplog(msg: Any, *args: Any, **kw: Any) -> Any:
    """Thespian's log, with its per-frame "OUCH" traceback rate-limited."""
    if isinstance(msg, str) and msg.startswith("OUCH!"):
        n = _ouch[0] = _ouch[0] + 1
        if n > _LOG_FIRST and n % _LOG_EVERY:
            return None
        msg += (
            f"  [undecodable frame {n} in this process; the first {_LOG_FIRST} and every "
            f"{_LOG_EVERY}th are logged, the others only counted]"
        )
    return _original_thesplog(msg, *args, **kw)


def apply() -> None:
    """Install the patches (idempotent)."""
    frame_seal.system_secret()
    TCPTransport.serializer = SealedPickle
    UDPTransport.serializer = SealedPickle  # multiprocUDPBase: a bad datagram is skipped
    _seal_acks()
    IPBase.IPActorAddress.__init__ = _address_init
    TCPTransport.TCPTransport._check_XMIT_4_done = _ack_check
    multiprocCommon.MultiProcReplicator._startChildActor = _start_child
    systemBase.systemBase.newPrimaryActor = _new_primary
    actorManager.ActorManager.actor_send_fail = _send_fail
    TCPTransport.thesplog = _thesplog
