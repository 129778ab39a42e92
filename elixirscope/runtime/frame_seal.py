"""A per-system secret, and an HMAC that seals each actor-transport frame with it.

Thespian's TCP transport unpickles whatever reaches an actor's port, so a
process that can connect can run code in the actor. Sealing every frame with
an HMAC-SHA256 of a secret only the system's own processes hold means a frame
is checked, and a stranger's dropped, before a byte of it is unpickled.

The secret is made fresh (32 random bytes) when this process starts its first
actor system (:func:`secret_for_system_start`) and lives only in memory: the admin and every actor process inherit it
by ``fork`` (Thespian's start method; ``Runtime`` refuses others). It is never
written to disk, the environment or Thespian's capabilities, so a process
that did not descend from the starter cannot learn it. Systems started later
by the same process share it: they have the same owner.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = [
    "MAC_SIZE",
    "FrameRejected",
    "open_frame",
    "seal",
    "secret_for_system_start",
    "system_secret",
]

MAC_SIZE = hashlib.sha256().digest_size
SECRET_SIZE = 32

_secret: bytes | None = None
_system_started = False


class FrameRejected(Exception):
    """A frame without a valid seal: it came from outside the system, or was altered."""

    def __init__(self, reason: str, size: int) -> None:
        super().__init__(f"actor-transport frame of {size} bytes refused: {reason}")
        self.reason = reason
        self.size = size


def system_secret() -> bytes:
    """This process's system secret (made on first use)."""
    global _secret
    if _secret is None:
        _secret = secrets.token_bytes(SECRET_SIZE)
    return _secret


def secret_for_system_start() -> bytes:
    """The secret for a system this process starts now: a fresh one for its first system.

    A forked actor process inherits "started", so it keeps its system's secret.
    """
    global _secret, _system_started
    if not _system_started:
        _secret = secrets.token_bytes(SECRET_SIZE)
        _system_started = True
    assert _secret is not None  # made when the first system started
    return _secret


def seal(payload: bytes) -> bytes:
    """``payload`` prefixed with its MAC."""
    return hmac.digest(system_secret(), payload, "sha256") + payload


def open_frame(frame: bytes) -> bytes:
    """The payload of a sealed frame; raises :class:`FrameRejected` if the seal is wrong."""
    if len(frame) < MAC_SIZE:
        raise FrameRejected(f"shorter than its {MAC_SIZE}-byte seal", len(frame))
    mac, payload = frame[:MAC_SIZE], frame[MAC_SIZE:]
    if not hmac.compare_digest(mac, hmac.digest(system_secret(), payload, "sha256")):
        raise FrameRejected("bad seal (the sender does not hold this system's secret)", len(frame))
    return payload
