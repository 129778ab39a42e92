"""One pass over a run's events, as the things every export draws: lanes, call
segments, spans, point events and message flows.

Every trace format wants the same few shapes, so the pairing of calls with their
ends, the naming of lanes and the linking of requests to their handler calls is
done once here and each format only writes them (``chrome``, ``speedscope``,
``otlp``).

*Lanes*: one per recording process (``pid``: a small number per producer, named
after its program), and inside it one per thread (named by its ``thread``
event; threads the OS gave one ident one after the other are a lane each, cut by
their starts in order of time: ``threadlives``) and one per actor (``actor NAME``:
its state changes and the messages it receives and sends). Thread idents are
64-bit; lanes get small numbers, which every viewer (JavaScript doubles) keeps
exact.

*Segments*: the stretches a call was running on its thread. A plain call is one
segment, entry to exit; a generator or coroutine is cut at each ``yield`` (or
``await``) and starts a new segment at each resume, so segments on a thread
always nest — what slice and flame-graph viewers need — even when a generator
outlives its caller. A call still open when its run ends (the program crashed
or was killed) is closed at the last event its process recorded, marked
``unfinished``.

The store gives chunks in order of their first event, each chunk's events in
order (not across chunks: one producer's threads interleave), and what is held
is one chunk plus the calls open at once (stack depth × threads, plus suspended
generators) and the threads' starts, whatever the size of the run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from elixirscope.contracts.trace import (
    REGISTERED,
    REQUEST_FUNCTION,
    AttributeChange,
    CustomEvent,
    DatabaseQuery,
    DatabaseTransaction,
    FunctionEntry,
    FunctionError,
    FunctionExit,
    GeneratorResume,
    GeneratorYield,
    HttpCall,
    MessageReceive,
    MessageSend,
    ProcessExit,
    ProcessRestart,
    ProcessSpawn,
    PubSubDelivery,
    PubSubPublish,
    RequestEnd,
    RequestStart,
    StateChange,
    ThreadStart,
    WebSocketMessage,
)
from elixirscope.query.calltree import error_text
from elixirscope.store._events import StoredEvent, event_tag
from elixirscope.visualization.threadlives import ThreadLives

__all__ = [
    "Call",
    "Close",
    "Flow",
    "Instant",
    "Lane",
    "Open",
    "Span",
    "flow_id",
    "walk",
]


@dataclass
class Lane:
    """A row of the timeline: a thread or an actor of one recording process."""

    pid: int  # small number per producer
    tid: int  # small number per lane, unique across processes (Perfetto keys threads by tid)
    process: str  # the process's name: "program (pid N on node)"
    name: str  # "MainThread", "actor counter", ...
    kind: str  # "thread" or "actor"
    program: str
    producer: str
    node: str
    os_pid: int
    thread: int = 0  # the thread ident (0 for an actor lane)


@dataclass
class Call:
    """A call seen from its entry; filled in as it runs and ends."""

    producer: str
    call_id: int
    parent_id: int
    function: str
    correlation_id: str | None
    lane: Lane
    start_ns: int
    args: dict[str, str] | None = None
    file: str | None = None
    line: int = 0
    end_ns: int = 0
    status: str = "running"  # "returned", "raised", "unfinished"
    result: str | None = None
    error: tuple[str, str] | None = None  # (type, message)
    traceback: list[str] | None = None
    duration_ns: int | None = None
    segment_ns: int = 0  # when the running segment began (0: suspended)
    segment_lane: Lane | None = None
    segments: int = 0
    request: RequestStart | None = None  # a web request this call serves
    request_end: RequestEnd | None = None
    task: str | None = None  # the asyncio task it ran in
    crossed: bool = False  # another task's call began on its lane while its segment was open


@dataclass
class Open:
    """A segment of ``call`` began at ``ts`` on ``lane`` (entry, or resume)."""

    lane: Lane
    ts: int
    call: Call
    first: bool


@dataclass
class Close:
    """The segment of ``call`` that began at ``start`` ended at ``ts`` (yield, exit,
    or the end of the run); ``final`` when the call is over."""

    lane: Lane
    start: int
    ts: int
    call: Call
    final: bool
    yielded: str | None = None
    nests: bool = True
    """False when a segment opened on the lane after this one is still open: they overlap
    (a call whose awaits were not recorded — a web request's own call in an async server —
    while another task ran), and only the later one can be a slice that nests; and when a
    call of another task began on the lane while it was open (its own call spanning a
    later request's whole: drawn around it, it would pass for its caller)."""
    suspended_at: int = 0
    """The line of the ``await`` (``awaiting``) or ``yield`` that ended the segment (0: it
    did not end at one, or was recorded before lines were)."""
    awaiting: bool = False


@dataclass
class Span:
    """Something with a duration that is not a call: a request, a database query or
    transaction step, an outgoing HTTP call. ``call``: the call it ran in, if known."""

    kind: str  # "request", "query", "tx", "http"
    lane: Lane
    start_ns: int
    end_ns: int
    name: str
    args: dict[str, Any]
    event: Any
    producer: str
    parent_id: int
    correlation_id: str | None
    error: str | None = None
    nests: bool = True
    """Whether it lies within one running segment of the call it ran in: False when that
    call was suspended meanwhile (an ``await``: other tasks' calls ran on the thread), so
    the span would overlap their segments instead of nesting among them."""


@dataclass
class Instant:
    """A point event: a state change, an attribute set, a spawn/exit/restart, a
    custom event, a WebSocket step, an exception raised, a thread starting."""

    kind: str
    lane: Lane
    ts: int
    name: str
    args: dict[str, Any]
    producer: str = ""
    parent_id: int = 0


@dataclass
class Flow:
    """One end of an arrow: a message sent or received (``message``), a publication
    or a delivery (``pubsub``), an HTTP attempt and the request its ``traceparent``
    began in a recorded callee (``traceparent``), work handed over — a pool's task, a
    thread, a process started with a chain of its own — and its first call
    (``handover``); ends share ``id``."""

    kind: str  # "message", "pubsub", "traceparent" or "handover"
    end: str  # "out" (send, publish, attempt) or "in" (receive, deliver, request)
    lane: Lane
    ts: int
    id: int
    key: str  # the recorded id (message_id, pub_id)
    name: str
    args: dict[str, Any]


Item = Lane | Open | Close | Span | Instant | Flow

MAX_ASKED = 100_000
"""Requests begun by a traceparent whose caller's attempt is awaited (to draw the arrow),
at most: a caller outside the recording is never met."""


def flow_id(key: str) -> int:
    """A number for a recorded message or publication id, the same at both ends
    with nothing remembered between them (48 bits: exact in every JSON reader)."""
    digest = hashlib.blake2b(key.encode("utf-8", "backslashreplace"), digest_size=6).digest()
    return int.from_bytes(digest, "big") or 1


class _Lanes:
    """Lane numbers and names, handed out as lanes are first seen: a thread's lane is one
    thread's life (``threadlives``), named by its own start."""

    def __init__(self, threads: ThreadLives | None) -> None:
        self.pids: dict[str, int] = {}
        self.lanes: dict[tuple[str, Any, int], Lane] = {}
        self.lives = threads if threads is not None else ThreadLives()
        self.learn = threads is None  # the starts are learnt as the walk meets them
        self.new: list[Lane] = []
        self.tids = 0
        self.receivers: dict[str, str] = {}  # message id -> the actor that received it
        # a request a traceparent began, by its caller's span: where its arrow ends, until
        # the caller's HTTP attempt (recorded at its end) is met
        self.asked: dict[str, tuple[Lane, int, str]] = {}
        # and the other way round, when a run's chunks come before its callee's: an
        # attempt by its span, until a request that names it is met
        self.attempts: dict[str, tuple[Lane, int, str, str | None]] = {}
        # a request's start, by (producer, its id), once its own call took it: to its end
        self.served: dict[tuple[str, int], RequestStart] = {}
        # chains work was handed over in (a pool's task, a thread, a process), until their
        # first call is met: where their arrow from the starting call ends
        self.handed: set[str] = set()

    def _process(self, se: StoredEvent) -> tuple[int, str]:
        pid = self.pids.get(se.producer)
        if pid is None:
            pid = self.pids[se.producer] = len(self.pids) + 1
        return pid, f"{se.program} (pid {se.pid} on {se.node})"

    def thread(self, se: StoredEvent, ev: Any) -> Lane:
        """The lane of the thread that recorded ``ev``."""
        ident = ev.thread
        life = self.lives.life(se.producer, ident, ev.ts, ev.id)
        lane = self.lanes.get((se.producer, ident, life))
        if lane is None:
            pid, process = self._process(se)
            tid = self._next_tid()
            name = self.lives.name(se.producer, ident, life) or f"thread {ident}"
            lane = Lane(
                pid, tid, process, name, "thread", se.program, se.producer, se.node, se.pid, ident
            )
            self.lanes[(se.producer, ident, life)] = lane
            self.new.append(lane)
        return lane

    def actor(self, se: StoredEvent, name: str) -> Lane:
        lane = self.lanes.get((se.producer, ("actor", name), 0))
        if lane is None:
            pid, process = self._process(se)
            tid = self._next_tid()
            lane = Lane(
                pid,
                tid,
                process,
                f"actor {name}",
                "actor",
                se.program,
                se.producer,
                se.node,
                se.pid,
            )
            self.lanes[(se.producer, ("actor", name), 0)] = lane
            self.new.append(lane)
        return lane

    def _next_tid(self) -> int:
        self.tids += 1
        return self.tids

    def name_thread(self, se: StoredEvent, ev: ThreadStart) -> None:
        """A thread's start met (when the starts are learnt as met): later events of its
        ident are its thread's; the first start of an ident names the lane of the events
        met before it (its metadata is written when the walk ends)."""
        if not self.learn:
            return
        self.lives.add_event(se.producer, ev)
        if self.lives.life(se.producer, ev.thread, ev.ts, ev.id) == 0:
            lane = self.lanes.get((se.producer, ev.thread, 0))
            if lane is not None:
                lane.name = ev.name or lane.name


def walk(
    chunks: Iterator[tuple[str, list[StoredEvent]]],
    *,
    on_chunk: Callable[[int], None] | None = None,
    counts: dict[str, int] | None = None,
    threads: ThreadLives | None = None,
    receivers: dict[str, str] | None = None,
) -> Iterator[Item]:
    """The drawable things of ``chunks`` (run, events), in the order they are known:
    a :class:`Lane` before anything on it, an :class:`Open` before its :class:`Close`.
    ``on_chunk`` is told how many events each chunk had; ``counts`` (type -> n) is
    filled with the events read. ``threads``: the run's thread starts
    (``threadlives.load``), which cut the lanes of reused idents by time; without them
    they are learnt as met, right only when each producer's chunks come in order of time
    (a real recording's often do not: threads' events interleave across chunks).
    ``receivers`` (message id -> actor, ``calltree.receivers``) names a send by the
    actor that received it rather than the address it was sent to."""
    lanes = _Lanes(threads)
    lanes.receivers = receivers or {}
    calls: dict[tuple[str, int], Call] = {}
    open_on: dict[int, list[Call]] = {}  # a lane's tid -> its open segments' calls, in order
    answered: dict[tuple[str, int], Close] = {}  # a request's call that returned before it ended
    last_ts: dict[str, int] = {}
    tally = counts if counts is not None else {}
    for _run, events in chunks:
        for se in events:
            ev = se.event
            tag = event_tag(ev)
            tally[tag] = tally.get(tag, 0) + 1
            producer = se.producer
            if ev.ts > last_ts.get(producer, 0):
                last_ts[producer] = ev.ts
            for item in _one(se, ev, lanes, calls):
                if type(item) is Open:
                    stack = open_on.setdefault(item.lane.tid, [])
                    _cross(stack, item.call)
                    stack.append(item.call)
                elif type(item) is Close:
                    item.nests = _closed(open_on.get(item.lane.tid), item.call)
                    item.nests = item.nests and not item.call.crossed
                    item.call.crossed = False  # its next segment starts afresh
                    request = item.call.request
                    if item.final and request is not None and item.call.request_end is None:
                        # a WSGI app returns before its body is sent and the request ends:
                        # its slice waits for the end, to be the request's one slice
                        answered[(item.call.producer, request.id)] = item
                        continue
                elif type(item) is Span:
                    item.nests = _within_a_segment(item, calls, open_on.get(item.lane.tid))
                    if item.kind == "request" and item.event[0] is not None:
                        served = answered.pop((item.producer, item.event[0].id), None)
                        if served is not None:  # the call that served it: one slice
                            served.call.request_end = item.event[1]
                            yield served
                            continue
                yield item
        if on_chunk is not None:
            on_chunk(len(events))
    yield from answered.values()  # requests whose end was not recorded
    # calls still open: their process stopped first (crash, kill, or still running)
    for call in sorted(calls.values(), key=lambda c: (c.producer, -c.call_id)):
        end = max(last_ts.get(call.producer, call.start_ns), call.start_ns)
        call.status, call.end_ns = "unfinished", end
        if call.segment_ns:
            assert call.segment_lane is not None
            yield Close(call.segment_lane, call.segment_ns, end, call, True)
        else:
            yield Close(call.lane, end, end, call, True)


def _cross(stack: list[Call], opening: Call) -> None:
    """A call of one task begins on a lane where calls of other tasks are open (an event
    loop serving two requests, one's own call spanning the other's, its awaits not
    recorded): those are not its callers, so they cannot be slices it nests in."""
    if opening.task is None:
        return
    for below in stack:
        if below.task is not None and below.task != opening.task:
            below.crossed = True


def _closed(stack: list[Call] | None, call: Call) -> bool:
    """Take ``call``'s segment off its lane's stack: True when it was on top (it nests)."""
    if not stack:
        return True
    if stack[-1] is call:
        stack.pop()
        return True
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is call:
            del stack[i]
            return False
    return True  # opened on another lane (a generator resumed on another thread)


def _within_a_segment(
    span: Span, calls: dict[tuple[str, int], Call], stack: list[Call] | None
) -> bool:
    """The span's call ran on its lane, on top, from before the span began until it ended
    (see ``Span.nests``); a span in no recorded call nests among whatever ran there."""
    owner = calls.get((span.producer, span.parent_id))
    if owner is None:  # in no call, or in one already over (a WSGI body sent after it)
        return not span.parent_id
    return (
        bool(owner.segment_ns)
        and owner.segment_ns <= span.start_ns
        and (owner.segment_lane is None or owner.segment_lane is span.lane)
        and (not stack or stack[-1] is owner)
    )


def _lane_items(lanes: _Lanes) -> Iterator[Lane]:
    while lanes.new:
        yield lanes.new.pop(0)


def _one(
    se: StoredEvent, ev: Any, lanes: _Lanes, calls: dict[tuple[str, int], Call]
) -> Iterator[Item]:
    producer = se.producer
    cls = type(ev)
    if cls is ThreadStart:
        if ev.kind == "thread":  # a process's or a task's start is on its spawner's thread
            lanes.name_thread(se, ev)
        lane = lanes.thread(se, ev)
        yield from _lane_items(lanes)
        yield Instant(
            "thread",
            lane,
            ev.ts,
            f"thread {ev.name} starts",
            _compact({"kind": ev.kind, "chain": ev.chain}),
            producer,
            ev.parent_id,
        )
        starter = calls.get((producer, ev.parent_id)) if ev.parent_id else None
        if ev.chain and starter is not None:  # work handed over from a call: an arrow to it
            lanes.handed.add(ev.chain)
            yield Flow(
                "handover",
                "out",
                starter.lane,  # the starting call's (a thread's own start is on the thread)
                ev.ts,
                flow_id("chain:" + ev.chain),
                ev.chain,
                f"{ev.kind} {ev.name} started",
                _compact({"kind": ev.kind, "chain": ev.chain}),
            )
        return
    lane = lanes.thread(se, ev)
    yield from _lane_items(lanes)
    if cls is FunctionEntry and ev.correlation_id in lanes.handed:
        lanes.handed.discard(ev.correlation_id)  # its first call: where its arrow ends
        yield Flow(
            "handover",
            "in",
            lane,
            ev.ts,
            flow_id("chain:" + ev.correlation_id),
            ev.correlation_id,
            f"{ev.function} runs the work handed over",
            _compact({"chain": ev.correlation_id}),
        )
    if cls is FunctionEntry:
        call = Call(
            producer,
            ev.id,
            ev.parent_id,
            ev.function,
            ev.correlation_id,
            lane,
            ev.ts,
            args=ev.args,
            file=ev.file,
            line=ev.line,
            task=ev.task,
        )
        call.segment_ns, call.segment_lane, call.segments = ev.ts, lane, 1
        calls[(producer, ev.id)] = call
        yield Open(lane, ev.ts, call, True)
    elif cls is FunctionExit or cls is FunctionError:
        ended = calls.pop((producer, ev.call_id), None)
        if ended is not None:
            call = ended
        else:  # its entry was not recorded (dropped, or before recording)
            call = Call(
                producer,
                ev.call_id,
                ev.parent_id,
                ev.function,
                ev.correlation_id,
                lane,
                max(ev.ts - ev.duration_ns, 0),
            )
            call.segment_ns, call.segment_lane, call.segments = call.start_ns, lane, 1
            yield Open(lane, call.start_ns, call, True)
        call.end_ns, call.duration_ns = ev.ts, ev.duration_ns
        if cls is FunctionExit:
            call.status, call.result = "returned", ev.result
        else:
            call.status, call.error, call.traceback = (
                "raised",
                (ev.exc_type, ev.message),
                ev.traceback,
            )
        start = call.segment_ns or ev.ts
        if not call.segment_ns:  # ended while suspended (a generator closed from outside)
            yield Open(lane, ev.ts, call, False)
        yield Close(call.segment_lane or lane, start, ev.ts, call, True)
        if cls is FunctionError:
            yield Instant(
                "exception",
                lane,
                ev.ts,
                f"{ev.exc_type} in {_short(ev.function)}",
                _compact(
                    {
                        "function": ev.function,
                        "exc_type": ev.exc_type,
                        "message": ev.message,
                        "line": ev.line or None,
                        "traceback": ev.traceback,
                    }
                ),
                producer,
                ev.parent_id,
            )
    elif cls is GeneratorYield:
        running = calls.get((producer, ev.call_id))
        if running is not None and running.segment_ns:
            start, running.segment_ns = running.segment_ns, 0
            yield Close(
                running.segment_lane or lane,
                start,
                ev.ts,
                running,
                False,
                ev.value,
                suspended_at=ev.line,
                awaiting=ev.awaiting,
            )
    elif cls is GeneratorResume:
        suspended = calls.get((producer, ev.call_id))
        if suspended is not None and not suspended.segment_ns:
            suspended.segment_ns, suspended.segment_lane = ev.ts, lane
            suspended.segments += 1
            yield Open(lane, ev.ts, suspended, False)
    elif cls is StateChange:
        actor = lanes.actor(se, ev.actor)
        yield from _lane_items(lanes)
        yield Instant(
            "state",
            actor,
            ev.ts,
            f"state {ev.actor}",
            _compact(
                {
                    "actor": ev.actor,
                    "callback": ev.callback,
                    "message": ev.message,
                    "after": ev.after,
                    "seq": ev.seq,
                    "message_id": ev.message_id,
                    "error": ev.error,
                }
            ),
            producer,
            ev.parent_id,
        )
    elif cls is AttributeChange:
        yield Instant(
            "attr",
            lane,
            ev.ts,
            f"set {ev.name}",
            _compact({"function": ev.function, "name": ev.name, "value": ev.value, "obj": ev.obj}),
            producer,
            ev.parent_id,
        )
    elif cls is MessageSend:
        where = lanes.actor(se, ev.sender) if ev.sender else lane
        yield from _lane_items(lanes)
        yield Flow(
            "message",
            "out",
            where,
            ev.ts,
            flow_id(ev.message_id),
            ev.message_id,
            f"send to {lanes.receivers.get(ev.message_id, ev.target)}",
            _compact(
                {
                    "message_id": ev.message_id,
                    "sender": ev.sender,
                    "target": lanes.receivers.get(ev.message_id, ev.target),
                    "message": ev.message,
                }
            ),
        )
    elif cls is MessageReceive:
        actor = lanes.actor(se, ev.actor)
        yield from _lane_items(lanes)
        yield Flow(
            "message",
            "in",
            actor,
            ev.ts,
            flow_id(ev.message_id),
            ev.message_id,
            f"receive from {ev.sender}" if ev.sender else f"{ev.actor} receives",
            _compact(
                {
                    "message_id": ev.message_id,
                    "sender": ev.sender,
                    "actor": ev.actor,
                    "message": ev.message,
                }
            ),
        )
    elif cls is PubSubPublish:
        where = lanes.actor(se, ev.publisher) if ev.publisher else lane
        yield from _lane_items(lanes)
        yield Flow(
            "pubsub",
            "out",
            where,
            ev.ts,
            flow_id("pub:" + ev.pub_id),
            ev.pub_id,
            f"publish {ev.topic}",
            _compact(
                {
                    "pub_id": ev.pub_id,
                    "topic": ev.topic,
                    "publisher": ev.publisher,
                    "message": ev.message,
                }
            ),
        )
    elif cls is PubSubDelivery:
        target = lanes.actor(se, ev.target)
        yield from _lane_items(lanes)
        yield Flow(
            "pubsub",
            "in",
            target,
            ev.ts,
            flow_id("pub:" + ev.pub_id),
            ev.pub_id,
            f"deliver {ev.topic}",
            _compact(
                {
                    "pub_id": ev.pub_id,
                    "topic": ev.topic,
                    "target": ev.target,
                    "replay": ev.replay or None,
                }
            ),
        )
        if ev.message_id:  # sent on as a message its subscriber receives: the arrow's start
            yield Flow(
                "message",
                "out",
                target,
                ev.ts,
                flow_id(ev.message_id),
                ev.message_id,
                f"delivered to {ev.target}",
                {"message_id": ev.message_id, "pub_id": ev.pub_id, "topic": ev.topic},
            )
    elif cls is ProcessSpawn or cls is ProcessExit or cls is ProcessRestart:
        tag = cls.__struct_config__.tag
        fields = {
            "path": ev.path,
            "pid": ev.pid,
            "supervisor": ev.supervisor,
            "reason": getattr(ev, "reason", None),
        }
        yield Instant(
            tag, lane, ev.ts, f"{tag} {ev.path}", _compact(fields), producer, ev.parent_id
        )
    elif cls is CustomEvent:
        name = ev.name
        if name == REGISTERED:
            name = f"register {ev.data.get('name')}"
        yield Instant("custom", lane, ev.ts, name, dict(ev.data), producer, ev.parent_id)
    elif cls is RequestStart:
        if ev.parent_span:
            request = f"{ev.method} {ev.path}"
            made = lanes.attempts.pop(ev.parent_span, None)
            if made is not None:  # its caller's attempt was met first
                yield from _called(made, (lane, ev.ts, request), ev.parent_span)
            else:
                _bounded(lanes.asked)[ev.parent_span] = (lane, ev.ts, request)
        owner = calls.get((producer, ev.parent_id))
        if owner is not None and owner.function == REQUEST_FUNCTION:
            owner.request = ev
            lanes.served[(producer, ev.id)] = ev  # its end may come once its call returned
        else:  # not inside its own call: a span of its own
            calls[(producer, -ev.id)] = Call(
                producer,
                -ev.id,
                ev.parent_id,
                REQUEST_FUNCTION,
                ev.correlation_id,
                lane,
                ev.ts,
                request=ev,
            )
    elif cls is RequestEnd:
        yield from _request_end(se, ev, lane, calls, lanes.served)
    elif cls is WebSocketMessage:
        yield Instant(
            "ws",
            lane,
            ev.ts,
            f"ws {ev.kind}",
            _compact(
                {
                    "request_id": ev.request_id,
                    "kind": ev.kind,
                    "size": ev.size if ev.size >= 0 else None,
                    "preview": ev.preview,
                    "code": ev.code or None,
                }
            ),
            producer,
            ev.parent_id,
        )
    elif cls is DatabaseQuery:
        yield Span(
            "query",
            lane,
            max(ev.ts - ev.duration_ns, 0),
            ev.ts,
            f"query {ev.system}: {_first_words(ev.statement)}",
            _compact(
                {
                    "system": ev.system,
                    "database": ev.database,
                    "statement": ev.statement,
                    "parameters": ev.parameters,
                    "rows": ev.rows if ev.rows >= 0 else None,
                    "many": ev.many or None,
                    "caller": ev.caller,
                    "file": ev.file,
                    "line": ev.line or None,
                    "error": ev.error,
                    "source": ev.source or None,
                }
            ),
            ev,
            producer,
            ev.parent_id,
            ev.correlation_id,
            ev.error,
        )
    elif cls is DatabaseTransaction:
        yield Span(
            "tx",
            lane,
            max(ev.ts - ev.duration_ns, 0),
            ev.ts,
            f"{ev.action} ({ev.system})",
            _compact(
                {
                    "system": ev.system,
                    "database": ev.database,
                    "action": ev.action,
                    "caller": ev.caller,
                    "error": ev.error,
                }
            ),
            ev,
            producer,
            ev.parent_id,
            ev.correlation_id,
            ev.error,
        )
    elif cls is HttpCall:
        error = ev.error or (f"HTTP {ev.status}" if ev.status >= 500 else None)
        yield Span(
            "http",
            lane,
            max(ev.ts - ev.duration_ns, 0),
            ev.ts,
            f"{ev.method} {ev.url}",
            _compact(
                {
                    "library": ev.library,
                    "method": ev.method,
                    "url": ev.url,
                    "status": ev.status or None,
                    "attempt": ev.attempt,
                    "response_bytes": ev.response_bytes if ev.response_bytes >= 0 else None,
                    "error": ev.error,
                    "timeout": ev.timeout or None,
                    "trace_id": ev.trace_id,
                    "span_id": ev.span_id,
                }
            ),
            ev,
            producer,
            ev.parent_id,
            ev.correlation_id,
            error,
        )
        if ev.span_id:  # an arrow to the request it began, when the callee was recorded too
            made = (lane, max(ev.ts - ev.duration_ns, 0), f"{ev.method} {ev.url}", ev.trace_id)
            asked = lanes.asked.pop(ev.span_id, None)
            if asked is not None:
                yield from _called(made, asked, ev.span_id)
            else:
                _bounded(lanes.attempts)[ev.span_id] = made


def _called(
    made: tuple[Lane, int, str, str | None], asked: tuple[Lane, int, str], span: str
) -> Iterator[Flow]:
    """The arrow from an HTTP attempt to the request its traceparent began."""
    (lane, started, call, trace), (callee, arrived, request) = made, asked
    key, args = "traceparent:" + span, {"span_id": span, "trace_id": trace, "request": request}
    yield Flow("traceparent", "out", lane, started, flow_id(key), span, call, args)
    yield Flow("traceparent", "in", callee, arrived, flow_id(key), span, request, args)


def _bounded(waiting: dict[str, Any]) -> dict[str, Any]:
    """``waiting`` with room for one more (its oldest dropped at :data:`MAX_ASKED`: the
    other end of an arrow may be outside the recording)."""
    if len(waiting) >= MAX_ASKED:
        del waiting[next(iter(waiting))]
    return waiting


def _request_end(
    se: StoredEvent,
    ev: RequestEnd,
    lane: Lane,
    calls: dict[tuple[str, int], Call],
    served: dict[tuple[str, int], RequestStart],
) -> Iterator[Item]:
    """A request's span, from its start to its end, named by its route — unless the call
    that served it is still open: that call's slice is the request then (its
    ``request_end`` set here), not a second slice over the same time. (One whose call
    returned first, a WSGI app's, is a span the walk hands to that call's held slice.)"""
    producer = se.producer
    start = served.pop((producer, ev.request_id), None)  # the RequestStart its call got
    owner = calls.get((producer, ev.parent_id))
    if owner is not None and owner.request is not None and owner.request.id == ev.request_id:
        owner.request_end = ev
        return
    alone = calls.pop((producer, -ev.request_id), None)
    if alone is not None:
        start = alone.request
    name, args, error = request_slice(start, ev)
    yield Span(
        "request",
        lane,
        start.ts if start is not None else max(ev.ts - ev.duration_ns, 0),
        ev.ts,
        name,
        args,
        (start, ev),
        producer,
        start.parent_id if start else ev.parent_id,
        ev.correlation_id,
        error,
    )


def request_slice(
    start: RequestStart | None, end: RequestEnd | None
) -> tuple[str, dict[str, Any], str | None]:
    """A request's name (``GET /tasks/{id} -> 200``), its fields as a slice's args and its
    error (an unhandled exception's, else a 5xx status), from what is known of it yet."""
    if end is None:
        assert start is not None
        return f"{start.method} {start.path}", _request_args(start, None), None
    error = None
    if end.exc_type:
        error = error_text(end.exc_type, end.message)
    elif end.status >= 500:
        error = f"HTTP {end.status}"
    name = f"{end.method} {end.route or end.path} -> {end.status or 'no response'}"
    return name, _request_args(start, end), error


def _request_args(start: RequestStart | None, end: RequestEnd | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if end is not None:
        fields.update(
            method=end.method,
            path=end.path,
            route=end.route,
            status=end.status or None,
            request_bytes=end.request_bytes if end.request_bytes >= 0 else None,
            response_bytes=end.response_bytes if end.response_bytes >= 0 else None,
            exc_type=end.exc_type,
            message=end.message,
        )
    if start is not None:
        fields.setdefault("method", start.method)
        fields.setdefault("path", start.path)
        fields.update(
            protocol=start.protocol,
            query=start.query,
            client=start.client,
            trace_id=start.trace_id,
            span_id=start.span_id,
            parent_span=start.parent_span,
        )
    return _compact(fields)


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    """Only the fields that say something (None left out)."""
    return {k: v for k, v in values.items() if v is not None}


def _short(function: str) -> str:
    return function.rsplit(".", 1)[-1]


def _first_words(statement: str, limit: int = 60) -> str:
    text = " ".join(statement.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
