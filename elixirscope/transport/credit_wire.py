"""The credit-stream wire protocol, version 1: frame layouts and their parsers.

Every message starts with a fixed header frame ``"CS" | version u8 | kind u8``
followed by kind-specific fields, big-endian (``struct`` formats below)::

    sender -> receiver (DEALER -> ROUTER; the ROUTER prepends the sender identity)
      HELLO   [hdr + next_seq u64,          stream name (UTF-8, 1-255 bytes)]
      BATCH   [hdr + seq u64 + events u32,  payload (opaque bytes)]
      BYE     [hdr]
    receiver -> sender
      CREDIT  [hdr + limit u64 + window u32 + incarnation u64]

Credits are **cumulative**: ``CREDIT(limit)`` means "you may send every batch whose
seq is < limit". The receiver answers HELLO with ``limit = next_expected + window``
and, each time the consumer takes a batch, re-announces ``limit = seq + 1 + window``
- one credit back per batch taken. A lost or repeated CREDIT is therefore
harmless (the next one carries the whole truth), and a HELLO repeated after a
reconnect cannot inflate the window: the sender never has more than ``window``
batches the consumer has not taken.

``limit - window`` is how many batches the consumer has taken, so the sender
knows which of its batches are confirmed. ``incarnation`` is a random number
fixed for the life of a receiver: when it changes, the receiver restarted, and
the sender counts the batches it sent but never saw confirmed as *in doubt*
(they died with the old receiver, or its consumer took them just before).
``window`` is at most ``MAX_WINDOW``, which bounds what the sender tracks.

Parsers raise :class:`WireError` with a message naming the fault; the receiving
side counts it and carries on.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = [
    "MAGIC",
    "MAX_SEQ",
    "MAX_WINDOW",
    "VERSION",
    "BatchFrame",
    "ByeFrame",
    "CreditFrame",
    "HelloFrame",
    "WireError",
    "check_batch",
    "encode_batch",
    "encode_bye",
    "encode_credit",
    "encode_hello",
    "parse_credit",
    "parse_sender_message",
]

MAGIC = b"CS"
VERSION = 1
HELLO, BATCH, BYE, CREDIT = 1, 2, 3, 4
_KIND_NAMES = {HELLO: "HELLO", BATCH: "BATCH", BYE: "BYE", CREDIT: "CREDIT"}

_HEADER = struct.Struct("!2sBB")
_HELLO = struct.Struct("!2sBBQ")
_BATCH = struct.Struct("!2sBBQI")
_CREDIT = struct.Struct("!2sBBQIQ")
MAX_EVENT_COUNT = 2**32 - 1
MAX_WINDOW = 65536
MAX_STREAM_NAME = 255
MAX_SEQ = 2**62
"""The largest seq a sender may use: a credit limit (seq + window) always fits its u64
and SQLite's signed 64 bits; at a million batches a second it lasts 146,000 years."""


class WireError(ValueError):
    """A frame that does not follow the credit-stream protocol."""


class HelloFrame(NamedTuple):
    next_seq: int
    stream: str


class BatchFrame(NamedTuple):
    seq: int
    event_count: int
    payload: bytes


class ByeFrame(NamedTuple):
    pass


class CreditFrame(NamedTuple):
    limit: int
    window: int
    incarnation: int


# ------------------------------------------------------------------ encoders


def check_batch(payload: bytes, event_count: int) -> bytes:
    """Validate what a producer offers; returns the payload as immutable ``bytes``
    (ZeroMQ may send it after the call returns, so it must not change)."""
    if isinstance(payload, (bytearray, memoryview)):
        payload = bytes(payload)
    elif not isinstance(payload, bytes):
        raise TypeError(f"Expected `bytes` payload, got `{type(payload).__name__}`")
    if isinstance(event_count, bool) or not isinstance(event_count, int):
        raise TypeError(f"Expected `int` event_count, got `{type(event_count).__name__}`")
    if not 0 <= event_count <= MAX_EVENT_COUNT:
        raise ValueError(f"event_count must be 0-{MAX_EVENT_COUNT}, got {event_count}")
    return payload


def encode_hello(next_seq: int, stream: str) -> list[bytes]:
    return [_HELLO.pack(MAGIC, VERSION, HELLO, next_seq), stream.encode("utf-8")]


def encode_batch(seq: int, event_count: int, payload: bytes) -> list[bytes]:
    return [_BATCH.pack(MAGIC, VERSION, BATCH, seq, event_count), payload]


def encode_bye() -> list[bytes]:
    return [_HEADER.pack(MAGIC, VERSION, BYE)]


def encode_credit(limit: int, window: int, incarnation: int) -> list[bytes]:
    return [_CREDIT.pack(MAGIC, VERSION, CREDIT, limit, window, incarnation)]


# ------------------------------------------------------------------- parsers


def _kind(frames: list[bytes]) -> int:
    if not frames:
        raise WireError("Expected a credit-stream message, got no frames")
    header = frames[0]
    if len(header) < _HEADER.size or header[:2] != MAGIC:
        raise WireError(
            f"Expected a header frame starting with {MAGIC!r}, got {bytes(header[:8])!r}"
        )
    _, version, kind = _HEADER.unpack_from(header)
    if version != VERSION:
        raise WireError(f"Protocol version {version} is not supported; this node speaks {VERSION}")
    if kind not in _KIND_NAMES:
        raise WireError(f"Unknown message kind {kind}; expected one of {sorted(_KIND_NAMES)}")
    return kind


def _expect(frames: list[bytes], kind: int, layout: struct.Struct, n_frames: int) -> tuple:
    name = _KIND_NAMES[kind]
    if len(frames) != n_frames:
        raise WireError(f"Expected {n_frames} frame(s) for {name}, got {len(frames)}")
    if len(frames[0]) != layout.size:
        raise WireError(f"Expected a {layout.size}-byte {name} header, got {len(frames[0])} bytes")
    return layout.unpack(frames[0])[3:]


def parse_sender_message(frames: list[bytes]) -> HelloFrame | BatchFrame | ByeFrame:
    """Parse what a sender sent (identity already removed)."""
    kind = _kind(frames)
    if kind == BATCH:
        seq, count = _expect(frames, BATCH, _BATCH, 2)
        _check_seq("BATCH seq", seq)
        return BatchFrame(seq, count, frames[1])
    if kind == HELLO:
        (next_seq,) = _expect(frames, HELLO, _HELLO, 2)
        _check_seq("HELLO next_seq", next_seq)
        try:
            stream = bytes(frames[1]).decode("utf-8")
        except UnicodeDecodeError:
            raise WireError("Expected a UTF-8 stream name in HELLO, got invalid bytes") from None
        if not 1 <= len(frames[1]) <= MAX_STREAM_NAME:
            raise WireError(f"Expected a stream name of 1-{MAX_STREAM_NAME} bytes in HELLO")
        return HelloFrame(next_seq, stream)
    if kind == BYE:
        _expect(frames, BYE, _HEADER, 1)
        return ByeFrame()
    raise WireError("Expected HELLO, BATCH or BYE from a sender, got CREDIT")


def _check_seq(what: str, seq: int) -> None:
    if seq > MAX_SEQ:
        raise WireError(f"{what} {seq} is beyond the largest a stream may use, {MAX_SEQ} (2**62)")


def parse_credit(frames: list[bytes]) -> CreditFrame:
    """Parse what a receiver sent: the cumulative limit, its window and incarnation."""
    kind = _kind(frames)
    if kind != CREDIT:
        raise WireError(f"Expected CREDIT from a receiver, got {_KIND_NAMES[kind]}")
    limit, window, incarnation = _expect(frames, CREDIT, _CREDIT, 1)
    if not 1 <= window <= MAX_WINDOW or window > limit:
        raise WireError(
            f"Expected a window of 1-{MAX_WINDOW} not above limit {limit}, got {window}"
        )
    return CreditFrame(limit, window, incarnation)
