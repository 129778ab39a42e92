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

import re
from typing import Annotated, Any, Union

import msgspec

from .limits import Int64, LimitExceeded, Limits, NonNegative64, check_value

MAX_TEXT_CHARS = 1 << 20
"""Any one string of a recorded event (captured values are far shorter: see capture.values)."""
MAX_BATCH_EVENTS = 1_000_000
"""Events in one batch (``capture.batch_size`` is at most 100,000)."""
CUSTOM_DATA_LIMITS = Limits(
    max_frame_bytes=MAX_TEXT_CHARS, max_depth=32, max_string_chars=MAX_TEXT_CHARS, max_items=100_000
)
"""What one ``CustomEvent.data`` may hold: it is the only field of arbitrary shape."""

Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)]
MAX_STATE_BYTES = 64 << 20
"""One encoded state or delta (``state.max_bytes`` is at most 8 MiB by default)."""
StateBytes = Annotated[bytes, msgspec.Meta(max_length=MAX_STATE_BYTES)]
Thread = Annotated[int, msgspec.Meta(ge=0)]

__all__ = [
    "AttributeChange",
    "BatchHead",
    "CustomEvent",
    "DatabaseQuery",
    "DatabaseTransaction",
    "EVENT_TYPES",
    "EventBatch",
    "FunctionEntry",
    "FunctionError",
    "FunctionExit",
    "GeneratorResume",
    "GeneratorYield",
    "HttpCall",
    "MessageReceive",
    "MessageSend",
    "ProcessExit",
    "ProcessRestart",
    "ProcessSpawn",
    "PubSubDelivery",
    "PubSubPublish",
    "REGISTERED",
    "UNDELIVERED",
    "undelivered_data",
    "REPLY_SUFFIX",
    "REQUEST_FUNCTION",
    "UNCAUGHT",
    "RequestEnd",
    "RequestStart",
    "StateChange",
    "TRACEBACK_LIMIT",
    "ThreadStart",
    "TraceEvent",
    "WebSocketMessage",
    "batch_head",
    "decode_batch",
    "encode_batch",
    "process_start_name",
    "process_start_pid",
    "replied_call",
    "cancellation",
    "websocket_actor",
]


class TraceEvent(msgspec.Struct, array_like=True, gc=False, tag_field="type"):
    """The envelope every recorded event shares."""

    id: Int64
    ts: Int64
    thread: Thread
    correlation_id: Text | None
    parent_id: Int64


class FunctionEntry(TraceEvent, tag="call"):
    """A call began; ``args`` (name -> repr) only at level ``args`` or ``full``.

    ``file``/``line``: where the function is defined (its ``def`` line), constants
    the rewriter registered, so recording them costs no lookup. ``task``: the
    asyncio task's name, for coroutine and async-generator calls inside one.
    Data recorded before these fields existed decodes with their defaults.
    """

    function: Text
    args: dict[Text, Text] | None = None
    file: Text | None = None
    line: Int64 = 0
    task: Text | None = None


class FunctionExit(TraceEvent, tag="return"):
    """A call returned; ``result`` only at level ``args`` or ``full``."""

    call_id: Int64
    function: Text
    duration_ns: Int64
    result: Text | None = None


class FunctionError(TraceEvent, tag="exception"):
    """A call ended by an exception, which was re-raised unchanged.

    ``line``: the line the exception was raised at (the innermost frame of its
    traceback); ``traceback``: ``file:line:function`` from this call's frame to
    that one, the innermost :data:`TRACEBACK_LIMIT` frames.
    """

    call_id: Int64
    function: Text
    duration_ns: Int64
    exc_type: Text
    message: Text
    line: Int64 = 0
    traceback: list[Text] | None = None


def cancellation(exc_type: str) -> bool:
    """Whether an exception type (``FunctionError.exc_type``) is asyncio's cancellation:
    a task's owner stopped it (``cancel()``, a timeout, a server's shutdown), no failure.
    Every view says such a call ended ``cancelled``, apart from the ones that raised."""
    return exc_type.rpartition(".")[2] == "CancelledError"


TRACEBACK_LIMIT = 20
"""Frames kept in ``FunctionError.traceback`` (the innermost ones)."""


class GeneratorYield(TraceEvent, tag="yield"):
    """A generator or coroutine suspended (``yield`` / ``await``).

    ``line``: the line of the ``yield``, ``await``, ``async for`` or ``async with``, in
    the file of the function's definition; ``awaiting``: an ``await`` (explicit, or an
    ``async for``'s or ``async with``'s), the call waiting on something, not a ``yield``
    handing a value to its consumer. Recorded before these existed: 0 and False.
    """

    call_id: Int64
    function: Text
    value: Text | None = None
    line: Int64 = 0
    awaiting: bool = False


class GeneratorResume(TraceEvent, tag="resume"):
    """A generator or coroutine resumed; ``value`` is what was sent in. ``raised``: the
    type of the exception thrown in at its ``yield`` or ``await`` instead (a failed
    awaitable, a timeout, ``throw``), which the call caught (``value`` is it, then)."""

    call_id: Int64
    function: Text
    value: Text | None = None
    raised: Text | None = None


class AttributeChange(TraceEvent, tag="attr"):
    """``self.<name>`` was assigned inside a method traced at level ``full``.

    ``value``: the new value's text. The object's state after the assignment, as
    structure (``elixirscope.capture.objects``): ``obj`` its identity
    (``module.Qualname@0x...``; an address, so reused after the object dies),
    ``seq``, ``key`` and ``delta`` as in :class:`StateChange`. The change's cause
    is the call that assigned it (``call_id``). Data recorded before structure
    existed, or a change recorded without it, has ``obj`` None and ``seq`` -1.
    """

    call_id: Int64
    function: Text
    name: Text
    value: Text | None = None
    obj: Text | None = None
    seq: Int64 = -1
    key: StateBytes | None = None
    delta: StateBytes | None = None


class StateChange(TraceEvent, tag="state"):
    """An actor's state after one callback, as structure (``elixirscope.state``).

    ``after``: a short text of the new state (for listings); ``before`` is None
    in data recorded with structure (the state before is the previous one).
    ``seq``: the actor's change number in its process (0: first capture);
    ``delta``: the encoded ops from state ``seq - 1`` (``state.delta``);
    ``key``: the whole encoded state (a keyframe: the first, then every few
    changes); ``message_id``: the message whose handling made this change
    (links to its send and receive); ``error``: ``Type: message`` when the
    callback raised (the state is as the exception left it); ``raised_at``:
    then, the program's innermost frame of its traceback as ``file:line:function``
    (ElixirScope's own frames left out), so a crash names its line even when
    the actor's module was not traced.
    Data recorded before structure existed decodes with ``seq`` -1.
    """

    actor: Text
    callback: Text
    message: Text | None
    before: Text | None
    after: Text | None
    seq: Int64 = -1
    key: StateBytes | None = None
    delta: StateBytes | None = None
    message_id: Text | None = None
    error: Text | None = None
    raised_at: Text | None = None


class MessageSend(TraceEvent, tag="send"):
    """A message left ``sender`` for ``target``; ``message_id`` links it to its receive."""

    message_id: Text
    sender: Text | None
    target: Text
    message: Text | None = None


REPLY_SUFFIX = ".reply"
"""The ``message_id`` of a reply to a call between actors (``call_async``) is the call's
own id and this: one reply answers one call (OTP's reply carries its call's ref too),
so a reader pairs a call with its answer without any other field."""


def replied_call(message_id: str | None) -> str | None:
    """The id of the call that the message ``message_id`` answers; None if not a reply."""
    if message_id and message_id.endswith(REPLY_SUFFIX):
        return message_id[: -len(REPLY_SUFFIX)] or None
    return None


class MessageReceive(TraceEvent, tag="receive"):
    """``actor`` took the message ``message_id`` off its mailbox."""

    message_id: Text
    actor: Text
    sender: Text | None
    message: Text | None = None


class ProcessSpawn(TraceEvent, tag="spawn"):
    """A supervised child started (``path`` like ``capture/ingest``), at ``address``
    (Thespian's text of it, ``ActorAddr-/A~b``; None when not known): a value holding
    that address names the actor even if no recorded message ever reached it."""

    path: Text
    pid: NonNegative64 | None
    supervisor: Text | None = None
    address: Text | None = None


class ProcessExit(TraceEvent, tag="exit"):
    """A supervised child exited, with its reason as text."""

    path: Text
    pid: NonNegative64 | None
    reason: Text
    supervisor: Text | None = None


class ProcessRestart(TraceEvent, tag="restart"):
    """A supervisor restarted a child after it exited; ``address``: its new one (as
    :class:`ProcessSpawn`'s)."""

    path: Text
    pid: NonNegative64 | None
    reason: Text
    supervisor: Text | None = None
    address: Text | None = None


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


POOL_TASK = "pool task"
"""A ThreadStart's ``kind`` for work handed to a process pool from a recorded call
(``capture.pool_tasks``): recorded in the handing thread, its ``chain`` the task's."""


def process_start_name(command: str, pid: int) -> str:
    """A process start's ``name`` (kind ``process``): its command line and its pid."""
    return f"{command} (pid {pid})"


def process_start_pid(name: str) -> int | None:
    """The pid in a :func:`process_start_name`, else None."""
    head, sep, tail = name.rpartition(" (pid ")
    digits = tail[:-1]
    ok = sep and tail.endswith(")") and digits.isascii() and digits.isdigit()
    return int(digits) if ok else None


FORKED_FOR = " for multiprocessing process "
"""In a process start's command (``capture.processes``): what follows names the
``multiprocessing`` process that forked it, and its target (``ThespianAdmin (startAdmin)``)."""


def process_start_role(name: str) -> str | None:
    """The ``multiprocessing`` process a :func:`process_start_name` names, else None."""
    head = name.rpartition(" (pid ")[0]
    _, sep, role = head.rpartition(FORKED_FOR)
    return role if sep and role else None


REGISTERED = "elixirscope.registered"
"""A :class:`CustomEvent` name: an actor registered a unique name, ``data`` is
``{"actor": path, "name": name}`` (the store indexes it under both)."""

UNDELIVERED = "elixirscope.undelivered"
"""A :class:`CustomEvent` name: a recorded message the runtime could not deliver - sent
to a name nobody held, or to an actor that had exited (a dead letter) - so it was dropped
(a call's caller got ``noproc``). Recorded in the send's chain by the registry, which
forwards names and takes dead letters; ``data``: ``message_id`` (its send's), ``kind``
(``call``, ``cast``, ``info``), ``to`` (the name, or the address it was sent to),
``cause`` (``name``: nobody held it; ``exited``: a dead letter) and ``why``."""


def undelivered_data(event: Any) -> dict[str, Any] | None:
    """The ``data`` of an :data:`UNDELIVERED` event (a message the runtime dropped), None
    for any other event: what each reader of drops tests first."""
    if type(event) is CustomEvent and event.name == UNDELIVERED and isinstance(event.data, dict):
        return event.data
    return None


UNCAUGHT = "elixirscope.uncaught"
"""A :class:`CustomEvent` name: an exception no code handled while the program went on
(``capture.uncaught``) — a thread it ended, an asyncio task's never retrieved, one
Python could only ignore (in ``__del__``, a callback). ``data``: ``kind`` (thread, task,
callback, unraisable), ``type``, ``message``, ``traceback`` (``file:line:function``
frames, innermost last, one a line), ``thread`` or ``task`` (its name), ``context``
(what Python said of it)."""


class CustomEvent(TraceEvent, tag="custom"):
    """Anything a program records itself (``elixirscope.capture.record``)."""

    name: Text
    data: dict[str, Any] = {}


# ---------------------------------------------------------------- databases and pub/sub
# (elixirscope.integrations: sqlite3, SQLAlchemy, psycopg, the runtime's registry)


class DatabaseQuery(TraceEvent, tag="query"):
    """A database statement ran, recorded when it finished (or failed).

    ``system``: the database kind (``sqlite``, ``postgresql``, ...);
    ``database``: its name or URL, never a password; ``statement``: the SQL
    as sent; ``parameters``: their text, redacted (``capture.redaction``) and
    bounded, None when there were none; ``rows``: rows affected or returned
    when known (-1: unknown; a SELECT on sqlite3, whose driver does not count
    them, has the rows the program fetched, and its event, timed at the execute,
    is recorded once they are known: ``integrations.db_common``);
    ``file``/``line``/``caller``: the program's line that issued it (the first
    frame outside the database libraries and ElixirScope); ``error``:
    ``Type: message`` when it raised
    (the program saw the same exception); ``source``: which integration
    recorded it (``sqlite3``, ``sqlalchemy``, ``psycopg``); ``many``: how many
    parameter sets an ``executemany`` ran (0 for a plain execute).
    """

    system: Text
    database: Text | None
    statement: Text
    parameters: Text | None
    duration_ns: Int64
    rows: Int64 = -1
    file: Text | None = None
    line: Int64 = 0
    caller: Text | None = None
    error: Text | None = None
    source: Text = ""
    many: Int64 = 0


class DatabaseTransaction(TraceEvent, tag="tx"):
    """A transaction began, committed or rolled back (``action``); fields as in
    :class:`DatabaseQuery` (``duration_ns`` 0 when the driver began it implicitly
    or, as SQLAlchemy's events, tells only that the step is about to happen).
    ``open_ns``: for a commit or rollback, how long the transaction was open since
    its begin (0: not known; SQLAlchemy's are)."""

    system: Text
    database: Text | None
    action: Text
    duration_ns: Int64 = 0
    file: Text | None = None
    line: Int64 = 0
    caller: Text | None = None
    error: Text | None = None
    source: Text = ""
    open_ns: Int64 = 0


class PubSubPublish(TraceEvent, tag="pub"):
    """``publisher`` dispatched ``message`` under the registry key ``topic``;
    ``pub_id`` links it to each :class:`PubSubDelivery`."""

    pub_id: Text
    topic: Text
    publisher: Text | None
    message: Text | None = None


class PubSubDelivery(TraceEvent, tag="deliver"):
    """The registry sent publication ``pub_id`` to ``target`` (one per subscriber:
    its actor path when it said it - a GenServer registering while pub/sub is
    recorded -, else its address); ``name``: the unique name(s) the subscriber
    holds in that registry, comma-separated (None: it holds none); ``replay``:
    sent again to a subscriber restoring its key in a new registry;
    ``message_id``: the id of the subscriber's ``receive`` of it (and so of its
    ``handle_info``'s state change), None when it was sent untraced."""

    pub_id: Text
    topic: Text
    target: Text
    replay: bool = False
    name: Text | None = None
    message_id: Text | None = None


# ---------------------------------------------------------------- web: requests and HTTP calls
# (elixirscope.integrations: ASGI/WSGI middleware, httpx and urllib3)


class RequestStart(TraceEvent, tag="req"):
    """A web request (``protocol="http"``) or WebSocket connection (``"websocket"``) arrived.

    Recorded inside the request's own call (``elixirscope.web.request``), so the
    handler's calls nest beside it. ``path`` and ``query`` as received (not
    UTF-8: escaped), the query's secrets redacted; ``request_bytes`` its
    Content-Length (-1 unknown); ``client`` ``host:port``. W3C trace context:
    ``trace_id`` (the caller's when its ``traceparent`` was valid, else the
    request's correlation id as a trace id),
    ``parent_span`` (the caller's span), ``span_id`` (this request's, sent back
    on the response), ``tracestate`` as received (printable ASCII of at most
    512 characters, else not kept); ``traceparent_error`` says why
    a ``traceparent`` header was ignored (it never fails the request).
    """

    protocol: Text
    method: Text
    path: Text
    query: Text | None = None
    client: Text | None = None
    request_bytes: Int64 = -1
    trace_id: Text | None = None
    span_id: Text | None = None
    parent_span: Text | None = None
    tracestate: Text | None = None
    traceparent_error: Text | None = None


class RequestEnd(TraceEvent, tag="reqend"):
    """The request ``request_id`` (its :class:`RequestStart`) was answered.

    ``route``: the route template when the framework names it (``/items/{id}``);
    ``status`` 0 when no response was started; sizes -1 when unknown (a WebSocket
    connection's are its messages' bytes in and out). A request
    whose handler raised has ``exc_type``, ``message`` and ``traceback_text``
    (Python's text of it, innermost frames kept, redacted).
    """

    request_id: Int64
    method: Text
    path: Text
    route: Text | None
    status: Int64
    duration_ns: Int64
    request_bytes: Int64 = -1
    response_bytes: Int64 = -1
    exc_type: Text | None = None
    message: Text | None = None
    traceback_text: Text | None = None


class WebSocketMessage(TraceEvent, tag="ws"):
    """One step of the WebSocket connection ``request_id``.

    ``kind``: ``accept``, ``in`` / ``out`` (a message; ``size`` in bytes or
    characters, ``preview`` its bounded, redacted text), ``close`` (by the app) or
    ``disconnect`` (by the client), with its ``code``.
    """

    request_id: Int64
    kind: Text
    size: Int64 = -1
    preview: Text | None = None
    code: Int64 = 0


def websocket_actor(path: str, request_id: int) -> str:
    """The actor a WebSocket handler with state is recorded as (``websocket /ws #42``: the
    connection's path and its RequestStart's id): its state changes' ``actor``, whose
    frames in and out are its messages."""
    return f"websocket {path} #{request_id}"


class HttpCall(TraceEvent, tag="http"):
    """One attempt of an outgoing HTTP request, recorded when it ended.

    ``library``: ``httpx`` or ``urllib3`` (``requests`` goes through it);
    ``url`` without user info, its secret query values redacted; ``attempt``
    1, 2, ... (a retry is a new event); ``status`` 0 when no response came:
    then ``error`` says why and ``timeout`` whether it was a timeout.
    ``trace_id``/``span_id``: the ``traceparent`` sent, which the callee's
    :class:`RequestStart` records as its ``trace_id``/``parent_span``.
    ``file``/``line``/``caller``: the program's line that made the call (the first
    frame outside the HTTP libraries, as a query's), when one did.
    """

    library: Text
    method: Text
    url: Text
    attempt: Int64 = 1
    status: Int64 = 0
    duration_ns: Int64 = 0
    response_bytes: Int64 = -1
    error: Text | None = None
    timeout: bool = False
    trace_id: Text | None = None
    span_id: Text | None = None
    file: Text | None = None
    line: Int64 = 0
    caller: Text | None = None


REQUEST_FUNCTION = "elixirscope.web.request"
"""The recorded call a request's handler runs in (its RequestStart and RequestEnd inside)."""


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
    DatabaseQuery,
    DatabaseTransaction,
    PubSubPublish,
    PubSubDelivery,
    RequestStart,
    RequestEnd,
    WebSocketMessage,
    HttpCall,
]

EVENT_TYPES: dict[str, type[TraceEvent]] = {
    cls.__struct_config__.tag: cls
    for cls in AnyEvent.__args__  # type: ignore[attr-defined]
}


class EventBatch(msgspec.Struct, array_like=True, gc=False):
    """One shipment from one process: its identity once, then its events.

    ``producer`` names the process run uniquely (``node:pid:start_ns``), so event
    ids are unique within it. ``seq`` numbers the batches of one producer from 1;
    ``dropped`` is how many events the producer dropped since its previous batch
    (counted, never silent). ``events`` may hold Structs or, on the sending side,
    the equivalent tuples.

    Decoding enforces the contract's bounds: integers that fit SQLite's 64 bits
    (``seq``, ``pid`` and ``dropped`` not negative), strings of at most
    ``MAX_TEXT_CHARS``, at most ``MAX_BATCH_EVENTS`` events, and a
    ``CustomEvent.data`` within ``CUSTOM_DATA_LIMITS``. ``run`` names the recording
    (one ``elixirscope run`` or capture session, across all its processes) the
    events belong to; last and optional, so frames from producers that predate runs
    still decode.
    """

    node: Text
    pid: NonNegative64
    program: Text
    producer: Text
    seq: NonNegative64
    sent_ts: Int64
    dropped: NonNegative64
    events: Annotated[list[AnyEvent], msgspec.Meta(max_length=MAX_BATCH_EVENTS)]
    run: Text = ""


class BatchHead(msgspec.Struct, array_like=True, gc=False):
    """Who sent a batch, read without decoding its events (the fields after ``seq``
    are skipped): enough to look the batch up in a store by ``(producer, seq)``."""

    node: Text
    pid: NonNegative64
    program: Text
    producer: Text
    seq: NonNegative64


_encoder = msgspec.msgpack.Encoder()
_batch_decoder = msgspec.msgpack.Decoder(EventBatch)
_head_decoder = msgspec.msgpack.Decoder(BatchHead)


def batch_head(frame: bytes) -> BatchHead:
    """The head of a batch frame; ContractError (``malformed_batch``) if it has none."""
    from elixirscope.contracts import ContractError

    try:
        return _head_decoder.decode(frame)
    except Exception as exc:  # noqa: BLE001 - msgspec's errors, and whatever it may add
        raise ContractError(f"malformed event batch head: {exc}", code="malformed_batch") from None


def encode_batch(
    *,
    node: str,
    pid: int,
    program: str,
    producer: str,
    seq: int,
    sent_ts: int,
    dropped: int,
    events: list[Any] | msgspec.Raw,
    run: str = "",
) -> bytes:
    """Encode a batch whose events may be tuples in the array-like layout, or already
    encoded: a ``msgspec.Raw`` of the msgpack list of them (what the ring drains)."""
    return _encoder.encode((node, pid, program, producer, seq, sent_ts, dropped, events, run))


_BATCH_FIELDS = EventBatch.__struct_fields__


def _named(message: str) -> str:
    """msgspec's ``$[6]`` (an array-like field) as ``$.dropped``, ``$[7][0]`` as ``$.events[0]``."""
    match = re.search(r"`\$\[(\d+)\]", message)
    if match is None or int(match.group(1)) >= len(_BATCH_FIELDS):
        return message
    name = _BATCH_FIELDS[int(match.group(1))]
    return message[: match.start()] + f"`$.{name}" + message[match.end() :]


def decode_batch(frame: bytes) -> EventBatch:
    """Decode one batch frame; a malformed frame, or one over the contract's
    bounds, raises ``ContractError`` (code ``malformed_batch``) and nothing else."""
    from elixirscope.contracts import ContractError

    try:
        batch = _batch_decoder.decode(frame)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ContractError(
            f"malformed event batch: {_named(str(exc))}", code="malformed_batch"
        ) from None
    except RecursionError:
        raise ContractError(
            "malformed event batch: nested too deeply to decode (a value inside a value "
            f"more than {CUSTOM_DATA_LIMITS.max_depth} levels down is refused)",
            code="malformed_batch",
        ) from None
    except Exception as exc:  # MemoryError on absurd lengths, and whatever msgspec may add
        raise ContractError(
            f"malformed event batch: {type(exc).__name__}: {exc}", code="malformed_batch"
        ) from None
    for index, event in enumerate(batch.events):
        if type(event) is CustomEvent and event.data:
            try:
                check_value(event.data, CUSTOM_DATA_LIMITS, f"$.events[{index}].data")
            except LimitExceeded as exc:
                raise ContractError(
                    f"malformed event batch: {exc}", code="malformed_batch"
                ) from None
    return batch
