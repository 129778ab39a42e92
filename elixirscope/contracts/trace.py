"""Recorded trace events: the data plane's contract.

Every recorded fact is one of the tagged Structs below, all sharing one
envelope (DESIGN.md "Contracts"). They are ``array_like`` so that a hook can
build the encoded form as a plain tuple — ``(tag, id, ts, thread,
correlation_id, parent_id, *fields)`` — and the shipper can msgpack a list of
such tuples without ever constructing a Struct on the host's hot path; the
receiver decodes straight into these classes.

Envelope fields, for every event:

- ``id``: the producing process's sequence number (1, 2, 3, ... per process run);
  a function entry's ``id`` is also its call id, which its exit refers to.
- ``ts``: hybrid logical clock timestamp, nanoseconds since the Unix epoch
  (physical wall time, bumped by one when it would not advance), so it is both
  the wall time and a causal order across nodes.
- ``thread``: ``threading.get_ident()`` of the recording thread.
- ``correlation_id``: the chain this event belongs to (``None`` outside any).
- ``parent_id``: the id of the enclosing call's entry event (0 at top level).

Node, OS pid and program travel once per batch in :class:`EventBatch`; an actor
name is carried by the events where it matters (state, send, receive).
Captured values are bounded, redacted ``repr`` strings (see
``elixirscope.capture.values``), never live objects.
"""

from __future__ import annotations

from typing import Any, Union

import msgspec

__all__ = [
    "AttributeChange",
    "CustomEvent",
    "EVENT_TYPES",
    "EventBatch",
    "FunctionEntry",
    "FunctionError",
    "FunctionExit",
    "GeneratorResume",
    "GeneratorYield",
    "MessageReceive",
    "MessageSend",
    "ProcessExit",
    "ProcessRestart",
    "ProcessSpawn",
    "StateChange",
    "TraceEvent",
    "decode_batch",
    "encode_batch",
]


class TraceEvent(msgspec.Struct, array_like=True, gc=False, tag_field="type"):
    """The envelope every recorded event shares."""

    id: int
    ts: int
    thread: int
    correlation_id: str | None
    parent_id: int


class FunctionEntry(TraceEvent, tag="call"):
    """A call began; ``args`` (name -> repr) only at level ``args`` or ``full``."""

    function: str
    args: dict[str, str] | None = None


class FunctionExit(TraceEvent, tag="return"):
    """A call returned; ``result`` only at level ``args`` or ``full``."""

    call_id: int
    function: str
    duration_ns: int
    result: str | None = None


class FunctionError(TraceEvent, tag="exception"):
    """A call ended by an exception, which was re-raised unchanged."""

    call_id: int
    function: str
    duration_ns: int
    exc_type: str
    message: str


class GeneratorYield(TraceEvent, tag="yield"):
    """A generator or coroutine suspended (``yield`` / ``await``)."""

    call_id: int
    function: str
    value: str | None = None


class GeneratorResume(TraceEvent, tag="resume"):
    """A generator or coroutine resumed; ``value`` is what was sent in."""

    call_id: int
    function: str
    value: str | None = None


class AttributeChange(TraceEvent, tag="attr"):
    """``self.<name>`` was assigned inside a method traced at level ``full``."""

    call_id: int
    function: str
    name: str
    value: str | None = None


class StateChange(TraceEvent, tag="state"):
    """An actor's state around one callback (before -> after)."""

    actor: str
    callback: str
    message: str | None
    before: str | None
    after: str | None


class MessageSend(TraceEvent, tag="send"):
    """A message left ``sender`` for ``target``; ``message_id`` links it to its receive."""

    message_id: str
    sender: str | None
    target: str
    message: str | None = None


class MessageReceive(TraceEvent, tag="receive"):
    """``actor`` took the message ``message_id`` off its mailbox."""

    message_id: str
    actor: str
    sender: str | None
    message: str | None = None


class ProcessSpawn(TraceEvent, tag="spawn"):
    """A supervised child started (``path`` like ``capture/ingest``)."""

    path: str
    pid: int | None
    supervisor: str | None = None


class ProcessExit(TraceEvent, tag="exit"):
    """A supervised child exited, with its reason as text."""

    path: str
    pid: int | None
    reason: str
    supervisor: str | None = None


class ProcessRestart(TraceEvent, tag="restart"):
    """A supervisor restarted a child after it exited."""

    path: str
    pid: int | None
    reason: str
    supervisor: str | None = None


class CustomEvent(TraceEvent, tag="custom"):
    """Anything a program records itself (``elixirscope.capture.record``)."""

    name: str
    data: dict[str, Any] = {}


AnyEvent = Union[
    FunctionEntry,
    FunctionExit,
    FunctionError,
    GeneratorYield,
    GeneratorResume,
    AttributeChange,
    StateChange,
    MessageSend,
    MessageReceive,
    ProcessSpawn,
    ProcessExit,
    ProcessRestart,
    CustomEvent,
]

EVENT_TYPES: dict[str, type[TraceEvent]] = {
    cls.__struct_config__.tag: cls for cls in AnyEvent.__args__  # type: ignore[attr-defined]
}


class EventBatch(msgspec.Struct, array_like=True, gc=False):
    """One shipment from one process: its identity once, then its events.

    ``producer`` names the process run uniquely (``node:pid:start_ns``), so event
    ids are unique within it. ``seq`` numbers the batches of one producer from 1;
    ``dropped`` is how many events the producer dropped since its previous batch
    (counted, never silent). ``events`` may hold Structs or, on the sending side,
    the equivalent tuples. ``run`` names the recording (one ``elixirscope run``
    or capture session, across all its processes) the events belong to; last and
    optional, so frames from producers that predate runs still decode.
    """

    node: str
    pid: int
    program: str
    producer: str
    seq: int
    sent_ts: int
    dropped: int
    events: list[AnyEvent]
    run: str = ""


_encoder = msgspec.msgpack.Encoder()
_batch_decoder = msgspec.msgpack.Decoder(EventBatch)


def encode_batch(
    *,
    node: str,
    pid: int,
    program: str,
    producer: str,
    seq: int,
    sent_ts: int,
    dropped: int,
    events: list[Any],
    run: str = "",
) -> bytes:
    """Encode a batch whose events may be tuples in the array-like layout."""
    return _encoder.encode((node, pid, program, producer, seq, sent_ts, dropped, events, run))


def decode_batch(frame: bytes) -> EventBatch:
    """Decode one batch frame; a malformed frame raises ``ContractError``."""
    from elixirscope.contracts import ContractError

    try:
        return _batch_decoder.decode(frame)
    except msgspec.DecodeError as exc:
        raise ContractError(f"malformed event batch: {exc}", code="malformed_batch") from exc
