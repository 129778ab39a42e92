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
    "TRACEBACK_LIMIT",
    "ThreadStart",
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
    """A call began; ``args`` (name -> repr) only at level ``args`` or ``full``.

    ``file``/``line``: where the function is defined (its ``def`` line), constants
    the rewriter registered, so recording them costs no lookup. ``task``: the
    asyncio task's name, for coroutine and async-generator calls inside one.
    Data recorded before these fields existed decodes with their defaults.
    """

    function: str
    args: dict[str, str] | None = None
    file: str | None = None
    line: int = 0
    task: str | None = None


class FunctionExit(TraceEvent, tag="return"):
    """A call returned; ``result`` only at level ``args`` or ``full``."""

    call_id: int
    function: str
    duration_ns: int
    result: str | None = None


class FunctionError(TraceEvent, tag="exception"):
    """A call ended by an exception, which was re-raised unchanged.

    ``line``: the line the exception was raised at (the innermost frame of its
    traceback); ``traceback``: ``file:line:function`` from this call's frame to
    that one, the innermost :data:`TRACEBACK_LIMIT` frames.
    """

    call_id: int
    function: str
    duration_ns: int
    exc_type: str
    message: str
    line: int = 0
    traceback: list[str] | None = None


TRACEBACK_LIMIT = 20
"""Frames kept in ``FunctionError.traceback`` (the innermost ones)."""


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


class ThreadStart(TraceEvent, tag="thread"):
    """A thread began running (``kind="thread"``), or an executor task did (``"task"``).

    ``thread`` is the new thread's ident, ``name`` its name. Recorded for every
    thread that runs while recording (those already running when recording
    began too), so readers can name threads. When it began inside a recorded
    call, it is linked to that call: ``parent_id`` is the spawning call's id,
    ``correlation_id`` that call's chain, ``spawner_thread`` the thread it ran on,
    and ``chain`` the new correlation id the thread's (or task's) work runs
    under; unlinked, those are 0 / None.
    """

    name: str
    kind: str = "thread"
    chain: str | None = None
    spawner_thread: int = 0


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
    ThreadStart,
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
    the equivalent tuples.
    """

    node: str
    pid: int
    program: str
    producer: str
    seq: int
    sent_ts: int
    dropped: int
    events: list[AnyEvent]


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
) -> bytes:
    """Encode a batch whose events may be tuples in the array-like layout."""
    return _encoder.encode((node, pid, program, producer, seq, sent_ts, dropped, events))


def decode_batch(frame: bytes) -> EventBatch:
    """Decode one batch frame; a malformed frame raises ``ContractError``."""
    from elixirscope.contracts import ContractError

    try:
        return _batch_decoder.decode(frame)
    except msgspec.DecodeError as exc:
        raise ContractError(f"malformed event batch: {exc}", code="malformed_batch") from exc
