"""Call trees: nested calls rebuilt from stored events, and their text forms.

``build_call_tree`` nests every call under its parent (``parent_id`` within a
producer) and attaches to each call what happened inside it: generator
yields/resumes and attribute changes (by ``call_id``), state changes, messages,
custom and process events (by ``parent_id``). It never fails on partial data:

- a call with no exit is ``status="running"`` (still running, or the process
  died): its duration is unknown;
- an exit whose entry is missing (dropped on overflow, or before the query's
  window) becomes a node with ``entry_missing=True``;
- a call whose parent is missing stays at the top level with
  ``parent_missing=True``;
- what a call did reads in the order it did it (its process's event ids): a thread or
  pool task it started, recorded when the task began, reads where it was submitted;
- events outside any call are kept at the top level in ``synthetic`` nodes, one
  for each run of them between a producer's top-level calls, so that they read in
  the order they happened (a plain actor's state change after its handler returned
  comes after that handler, not before it).

A web request made by a recorded HTTP call of the same tree (an in-process
client's: the request joined its chain through ``traceparent``) is placed under
the call that made that HTTP call, where the call caused it, not under the call
that happened to start the server.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from elixirscope.contracts.trace import (
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
    cancellation,
    undelivered_data,
)
from elixirscope.query.correlator import hlc_order
from elixirscope.query.threads import (
    START_WORDS,
    ThreadNames,
    library_path,
    short_path,
    source_of,
)
from elixirscope.query.uncaught import uncaught_of
from elixirscope.query.yields import YieldSteps
from elixirscope.store._events import StoredEvent

__all__ = [
    "CallNode",
    "build_call_tree",
    "error_text",
    "program_frame",
    "receivers",
    "render_call_tree",
    "render_events",
    "split_frame",
]

Status = Literal["returned", "raised", "running", "events"]


@dataclass(slots=True)  # a big run's tree holds one per call: no per-instance dict
class CallNode:
    """One call (or, when ``synthetic``, the events outside any call of a producer)."""

    function: str
    call_id: int
    producer: str
    node: str
    pid: int
    thread: int
    start_ts: int
    end_ts: int | None = None
    duration_ns: int | None = None
    args: dict[str, str] | None = None
    result: str | None = None
    error: tuple[str, str] | None = None  # (exception type, message)
    status: Status = "running"
    entry_missing: bool = False
    parent_missing: bool = False
    parent_id: int = 0  # the caller's call id (its producer's), when it was not in this tree
    caller: str | None = None  # that caller, found in another chain: "function (chain ID)"
    synthetic: bool = False
    file: str | None = None  # where the function is defined, and its def line
    line: int = 0
    task: str | None = None  # the asyncio task a coroutine call ran in
    raised_line: int = 0  # an error: the line it was raised at, and its traceback
    traceback: list[str] | None = None
    children: list[CallNode] = field(default_factory=list)
    events: list[StoredEvent] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (for ``--json``), children nested."""
        return {
            "function": self.function,
            "call_id": self.call_id,
            "producer": self.producer,
            "node": self.node,
            "pid": self.pid,
            "thread": self.thread,
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
            "duration_ns": self.duration_ns,
            "args": self.args,
            "result": self.result,
            "error": None
            if self.error is None
            else {"type": self.error[0], "message": self.error[1]},
            "status": self.status,
            "entry_missing": self.entry_missing,
            "parent_missing": self.parent_missing,
            "caller": self.caller,
            "synthetic": self.synthetic,
            "file": self.file,
            "line": self.line,
            "task": self.task,
            "raised_line": self.raised_line,
            "traceback": self.traceback,
            "events": [se.to_dict() for se in self.events],
            "children": [c.to_dict() for c in self.children],
        }


# ---------------------------------------------------------------- building

_INSIDE_BY_CALL_ID = (GeneratorYield, GeneratorResume, AttributeChange)


def build_call_tree(events: Iterable[StoredEvent]) -> list[CallNode]:
    """Top-level nodes, in order of their first event; see the module docstring."""
    builder = _Builder()
    for se in sorted(events, key=hlc_order):
        builder.add(se)
    _requests_under_their_callers(builder.roots)
    return builder.roots


def _requests_under_their_callers(roots: list[CallNode]) -> None:
    """Move each request whose ``traceparent`` names an HTTP call in the tree under the call
    that made it (see the module doc)."""
    parent_of: dict[int, CallNode | None] = {}
    made_by: dict[str, CallNode] = {}  # a sent span id -> the call that sent it
    requests: list[tuple[CallNode, str]] = []
    stack: list[tuple[CallNode, CallNode | None]] = [(r, None) for r in roots]
    while stack:
        node, parent = stack.pop()
        parent_of[id(node)] = parent
        for se in node.events:
            ev = se.event
            if type(ev) is HttpCall and ev.span_id:
                made_by[ev.span_id] = node
            elif type(ev) is RequestStart and ev.parent_span and node.function == REQUEST_FUNCTION:
                requests.append((node, ev.parent_span))
        stack.extend((child, node) for child in node.children)
    for request, span in requests:
        caller = made_by.get(span)
        if caller is None or caller is parent_of[id(request)]:
            continue
        up: CallNode | None = caller  # never under itself
        while up is not None and up is not request:
            up = parent_of[id(up)]
        if up is request:
            continue
        old = parent_of[id(request)]
        (roots if old is None else old.children).remove(request)
        caller.children.append(request)
        caller.children.sort(key=lambda c: c.start_ts)
        parent_of[id(request)] = caller
        request.parent_missing = False


class _Builder:
    def __init__(self) -> None:
        self.roots: list[CallNode] = []
        self.calls: dict[tuple[str, int], CallNode] = {}
        self.loose: dict[str, CallNode] = {}  # producer -> its synthetic node being filled

    def add(self, se: StoredEvent) -> None:
        ev = se.event
        if isinstance(ev, FunctionEntry):
            self._entry(se, ev)
        elif isinstance(ev, (FunctionExit, FunctionError)):
            self._exit(se, ev)
        elif isinstance(ev, _INSIDE_BY_CALL_ID):
            self._inside(se, ev.call_id)
        else:
            self._inside(se, ev.parent_id)

    def _entry(self, se: StoredEvent, ev: FunctionEntry) -> None:
        node = _node(se, ev.function, ev.id, ev.ts)
        node.args = ev.args
        node.file, node.line, node.task = ev.file, ev.line, ev.task
        self.calls[(se.producer, ev.id)] = node
        self._place(node, se, ev.parent_id)

    def _exit(self, se: StoredEvent, ev: FunctionExit | FunctionError) -> None:
        node = self.calls.get((se.producer, ev.call_id))
        if node is None:  # entry dropped or outside the events given
            node = _node(se, ev.function, ev.call_id, ev.ts - ev.duration_ns)
            node.entry_missing = True
            self.calls[(se.producer, ev.call_id)] = node
            self._place(node, se, ev.parent_id)
        node.end_ts = ev.ts
        node.duration_ns = ev.duration_ns
        if isinstance(ev, FunctionExit):
            node.status = "returned"
            node.result = ev.result
        else:
            node.status = "raised"
            node.error = (ev.exc_type, ev.message)
            node.raised_line, node.traceback = ev.line, ev.traceback

    def _place(self, node: CallNode, se: StoredEvent, parent_id: int) -> None:
        parent = self.calls.get((se.producer, parent_id)) if parent_id else None
        if parent is not None:
            parent.children.append(node)
            return
        node.parent_missing = parent_id != 0
        node.parent_id = parent_id
        self.roots.append(node)
        self.loose.pop(se.producer, None)  # what comes outside a call next starts a new node

    def _inside(self, se: StoredEvent, call_id: int) -> None:
        owner = self.calls.get((se.producer, call_id)) if call_id else None
        if owner is None:
            owner = self.loose.get(se.producer)
            if owner is None:
                owner = _node(se, "<outside any call>", 0, se.event.ts)
                owner.synthetic = True
                owner.status = "events"
                self.loose[se.producer] = owner
                self.roots.append(owner)
        owner.events.append(se)


def _node(se: StoredEvent, function: str, call_id: int, start_ts: int) -> CallNode:
    return CallNode(
        function=function,
        call_id=call_id,
        producer=se.producer,
        node=se.node,
        pid=se.pid,
        thread=se.event.thread,
        start_ts=start_ts,
    )


# ---------------------------------------------------------------- rendering

_RED, _BOLD, _DIM, _YELLOW, _RESET = "\x1b[31m", "\x1b[1m", "\x1b[2m", "\x1b[33m", "\x1b[0m"


def render_call_tree(
    nodes: list[CallNode],
    *,
    color: bool = False,
    indent: str = "  ",
    threads: ThreadNames | None = None,
    steps: bool = True,
    processes: dict[str, str] | None = None,
    handed: dict[str, str] | None = None,
    received: dict[str, str] | None = None,
) -> str:
    """An indented tree: ``fib(n=5) -> 5  [1.2 ms]  fib.py:3``, errors as
    ``!! ValueError: msg (raised at fib.py:7)``; with ``threads``, a call on
    another thread than its caller's (and each top-level call) names its thread,
    and a coroutine call in another task than its caller's names the task; with
    ``processes`` (producer -> label), a call in another process than its caller's (and
    each top-level call) names it; without ``steps``, a generator's or coroutine's
    ``yield``/``resume`` lines (each ``await`` that waited) are left out; ``received``
    (message id -> actor) names the receivers of sends whose receive is in another chain."""
    paint = _painter(color)
    lines: list[str] = []
    named = {**(received or {}), **receivers(tree_events(nodes))}
    shown = _Shown(threads, processes or {}, steps, named, handed or {})
    for node in nodes:
        _render_node(node, 0, lines, paint, indent, shown, None)
    return "\n".join(lines)


@dataclass(frozen=True)
class _Shown:
    """What a rendered tree says beside its calls: threads, processes, steps."""

    threads: ThreadNames | None
    processes: dict[str, str]
    steps: bool
    receivers: dict[str, str]  # message id -> the actor that received it
    handed: dict[str, str]  # a chain a thread, task or process started in -> how it ended


def receivers(events: Iterable[StoredEvent]) -> dict[str, str]:
    """Message id -> the actor that received it, for the receives among ``events``.

    A send names its receiver only by the address it was sent to (Thespian's text,
    which says nothing to a reader and may name another actor in another run); its
    receive, linked by the message id, names the actor's path. ``events`` and
    ``calltree`` name a send's receiver from it, ESQL's ``to`` of a send reads it, and
    ``events --actor`` finds the sends to an actor through it."""
    return {
        se.event.message_id: se.event.actor for se in events if type(se.event) is MessageReceive
    }


def tree_events(nodes: list[CallNode]) -> Iterator[StoredEvent]:
    """The events attached to the calls of a tree."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield from node.events
        stack.extend(node.children)


def _render_node(
    node: CallNode,
    depth: int,
    lines: list[str],
    paint,
    indent: str,
    shown: _Shown,
    parent: CallNode | None = None,
    note: str = "",
) -> None:
    pad = indent * depth
    where = []
    threads, steps = shown.threads, shown.steps
    process = shown.processes.get(node.producer)
    if process is not None and (parent is None or parent.producer != node.producer):
        where.append(f"process {process}")
    if (
        threads is not None
        and not node.synthetic
        and (parent is None or parent.thread != node.thread or parent.producer != node.producer)
    ):
        name = threads.name(node.producer, node.thread, node.start_ts)
        if name is not None:
            where.append(f"thread {name}")
    if node.task is not None and (parent is None or parent.task != node.task):
        where.append(f"task {node.task}")
    lines.append(
        pad
        + one_line(_call_line(node, paint))
        + ("  " + paint(_DIM, "{" + ", ".join(where) + "}") if where else "")
        + ("  " + paint(_YELLOW, note) if note else "")
    )
    items: list[tuple[int, int, Any]] = [(c.start_ts, 0, c) for c in node.children]
    items.extend((se.event.ts, 1, se) for se in node.events if steps or not _is_step(se))
    items.sort(key=_in_order_made if _one_producer(node) else _in_time)
    folded = _folded_steps(items)
    raised = _raised_awaits(
        items, node.end_ts if node.status == "returned" else None, (node.producer, node.thread)
    )
    abandoned = _abandoned(items)
    thrown_in = _thrown_in_at(items) if node.status == "raised" else None
    suspended = None  # the ts of this call's last yield, until its resume
    for i, (ts, kind, item) in enumerate(items):
        waited = None
        if kind == 1 and type(item.event) is GeneratorYield:
            suspended = ts
        elif kind == 1 and type(item.event) is GeneratorResume and suspended is not None:
            waited, suspended = ts - suspended, None
        if kind == 0:
            said = abandoned.get(id(item), "")
            _render_node(item, depth + 1, lines, paint, indent, shown, node, said)
        elif i in folded:
            if folded[i]:  # the first of the run's middle: counts it
                said = f"… {folded[i]} more yields and resumes (`--no-steps` leaves them all out)"
                lines.append(pad + indent + paint(_DIM, "· " + said))
        else:
            handled = _handled(items, i, node) if type(item.event) is GeneratorResume else None
            text = describe(item.event, shown.receivers, in_tree=True, handled=handled)
            line = item.event.line if type(item.event) is GeneratorYield else 0
            at = source_of(node.file, line) if line else None
            if at:  # where it waited: the await's own line
                text += "  " + paint(_DIM, at)
            if waited is not None:  # how long it was suspended: a lock, a queue, the network
                text += "  " + paint(_DIM, f"[waited {format_duration(waited)}]")
            if i in raised:  # no resume: the await raised into the call, which handled it
                said = f"[waited {format_duration(raised[i])}, then raised: handled in the call]"
                text += "  " + paint(_YELLOW, said)
            if i == thrown_in:
                said = f"[{node.error[0] if node.error else 'an exception'} thrown in here]"
                text += "  " + paint(_YELLOW, said)
            ended = shown.handed.get(getattr(item.event, "chain", None) or "")
            if ended is not None and type(item.event) is ThreadStart:  # what ran, how it ended
                ran, bad, error = ended.partition("!! ")
                text += "  " + ran + (paint(_RED, bad + error) if bad else "")
            lines.append(pad + indent + paint(_DIM, "· ") + one_line(text))


def _in_time(item: tuple[int, int, Any]) -> tuple[int, int]:
    return item[0], item[1]


def _in_order_made(item: tuple[int, int, Any]) -> int:
    """An item's event id (a call's: its entry's): the order the call made them in. A
    thread or pool task it started has the id taken when it asked for it and the time
    it began (``capture.threads``): it reads where ``start()``/``submit`` was called."""
    return item[2].call_id if item[1] == 0 else item[2].event.id


def _one_producer(node: CallNode) -> bool:
    """Everything under a call came from its process (ids order them), not from a request
    another process served and that was placed under it (then time orders them)."""
    return (
        not node.synthetic
        and all(c.producer == node.producer for c in node.children)
        and all(se.producer == node.producer for se in node.events)
    )


def _abandoned(items: list[tuple[int, int, Any]]) -> dict[int, str]:
    """The requests a call made to a recorded service (another run's, with ``--all-runs``)
    that went on after the call's attempt gave up on them (a timeout, a reset): the
    request's node (by id) -> what its line says, the time it ran for no one."""
    attempts = {
        item.event.span_id: item.event
        for _, kind, item in items
        if kind == 1 and type(item.event) is HttpCall and item.event.span_id
    }
    out: dict[int, str] = {}
    if not attempts:
        return out
    for _, kind, child in items:
        if kind != 0 or child.function != REQUEST_FUNCTION:
            continue
        start, end = _request_events(child)
        attempt = attempts.get(start.parent_span or "") if start is not None else None
        if attempt is None or end is None or end.ts <= attempt.ts:
            continue
        if attempt.timeout or attempt.error or not attempt.status:
            how = "timed out" if attempt.timeout else "failed"
            out[id(child)] = (
                f"[its caller's attempt {how} after {format_duration(attempt.duration_ns)}: "
                f"this ran {format_duration(end.ts - attempt.ts)} more, answering no one]"
            )
    return out


STEPS_SHOWN = 3
"""Of a long run of a call's yields and resumes (a generator pipeline yields per item),
the first and last this many are shown, the ones between counted on one line."""


def _folded_steps(items: list[tuple[int, int, Any]]) -> dict[int, int]:
    """The items in the middle of long runs of consecutive steps, counted not shown: each
    index -> how many the line in its place counts (the run's first middle item), else 0."""
    out: dict[int, int] = {}
    i = 0
    while i < len(items):
        if items[i][1] != 1 or not _is_step(items[i][2]):
            i += 1
            continue
        end = i
        while end < len(items) and items[end][1] == 1 and _is_step(items[end][2]):
            end += 1
        if end - i > 2 * STEPS_SHOWN + 1:
            middle = range(i + STEPS_SHOWN, end - STEPS_SHOWN)
            out.update(dict.fromkeys(middle, 0))
            out[middle.start] = len(middle)
        i = end
    return out


def _raised_awaits(
    items: list[tuple[int, int, Any]], returned: int | None, thread: tuple[str, int]
) -> dict[int, int]:
    """The awaits of a call's items that raised into it (a timeout, a failed request) and
    were handled there: no resume is recorded for them (one is for a value only), and the
    call went on — its next step, or a call it made on its own ``thread`` (producer,
    thread), came before any resume (a coroutine it awaited runs during the wait, a
    function it handed to an executor on another thread), or it returned (at ``returned``,
    its end, when it did). Each index -> the time until then."""
    out: dict[int, int] = {}
    for i, (ts, kind, item) in enumerate(items):
        if kind != 1 or type(item.event) is not GeneratorYield or not item.event.awaiting:
            continue
        for later_ts, later_kind, later in items[i + 1 :]:
            if later_kind == 0:
                if later.task is None and (later.producer, later.thread) == thread:
                    out[i] = later_ts - ts  # a synchronous call on its thread: it ran again
                    break
                continue  # a coroutine it awaited, a task it started, another thread's work
            if type(later.event) is GeneratorResume:
                break
            if type(later.event) is GeneratorYield:
                out[i] = later_ts - ts
                break
        else:  # no resume to its end: it returned, so the exception was handled
            if returned is not None:
                out[i] = returned - ts
    return out


def _handled(items: list[tuple[int, int, Any]], i: int, node: CallNode) -> bool:
    """Whether the exception a resume (``items[i]``) was raised into its call with was
    handled there: unless the call ended by an exception of its type with nothing after it
    (an ``async with``'s failed ``__aenter__`` the call did not catch)."""
    raised = node.error is not None and node.error[0] == items[i][2].event.raised
    return not raised or i + 1 < len(items)


def _thrown_in_at(items: list[tuple[int, int, Any]]) -> int | None:
    """The index of a raised generator's plain ``yield`` (not an ``await``) an exception
    was thrown in at by its consumer (a ``@contextmanager``'s ``with`` body, a web
    framework's dependency), not raised in it (``YieldSteps``)."""
    steps = YieldSteps()
    index: dict[int, int] = {}  # id of a yield -> its index
    for i, (_, kind, item) in enumerate(items):
        if kind == 1 and type(item.event) is GeneratorYield:
            steps.yielded(None, item.event)
            index[id(item.event)] = i
        elif kind == 1 and type(item.event) is GeneratorResume:
            steps.resumed(None, item.event.ts)
    at = steps.thrown_in_at(None)
    return None if at is None else index[id(at)]


def _is_step(se: StoredEvent) -> bool:
    return type(se.event) is GeneratorYield or type(se.event) is GeneratorResume


def error_text(exc_type: str, message: str | None) -> str:
    """``Type: message``, or the type alone when the exception said nothing (a timeout):
    every view says an error so."""
    return f"{exc_type}: {message}" if message else exc_type


def one_line(text: str) -> str:
    """``text`` on one line: a recorded message's line breaks (a database's ``DETAIL:``
    line, a multi-line exception message) shown as ``⏎``, so each event stays a line."""
    if "\n" not in text and "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", " ⏎ ")


def _call_line(node: CallNode, paint) -> str:
    if node.synthetic:
        return paint(_DIM, f"{node.function} ({node.producer})")
    if node.function == REQUEST_FUNCTION:
        text = _request_line(node, paint)
    else:
        args = "" if node.args is None else ", ".join(f"{k}={v}" for k, v in node.args.items())
        text = paint(_BOLD, _short(node.function)) + f"({args})"
    if node.status == "returned":
        if node.result is not None and node.function != REQUEST_FUNCTION:
            text += f" -> {node.result}"
    elif node.status == "raised":
        assert node.error is not None
        raised = raised_at(node.traceback, node.raised_line)
        if cancellation(node.error[0]):  # its owner stopped it
            text += " " + paint(_YELLOW, "cancelled")
            if raised:
                text += paint(_DIM, f" (at {raised})")
        else:
            text += " " + paint(_RED, "!! " + error_text(*node.error))
            if raised:
                text += paint(_RED, f" (raised at {raised})")
    duration = node.duration_ns
    if node.function == REQUEST_FUNCTION:  # the request's own time, its body sent (WSGI's after)
        end = _request_events(node)[1]
        duration = end.duration_ns if end is not None else duration
    if duration is not None:
        text += "  " + paint(_DIM, f"[{format_duration(duration)}]")
    source = source_of(node.file, node.line)
    if source:
        text += "  " + paint(_DIM, source)
    notes = []
    if node.status == "running":
        notes.append("no exit recorded: still running or crashed")
    if node.entry_missing:
        notes.append("entry not recorded")
    if node.parent_missing and node.caller:
        text += "  " + paint(_DIM, f"(called from {node.caller})")
    elif node.parent_missing:
        notes.append("caller not recorded")
    if notes:
        text += "  " + paint(_YELLOW, "(" + "; ".join(notes) + ")")
    return text


def _request_line(node: CallNode, paint) -> str:
    """A request's own call: ``request GET /items/{id} -> 200`` (from its events)."""
    start, end = _request_events(node)
    if start is None and end is None:
        args = node.args or {}
        return paint(_BOLD, "request") + f" {args.get('method', '?')} {args.get('path', '?')}"
    what = "websocket" if start is not None and start.protocol == "websocket" else "request"
    method = (start or end).method  # type: ignore[union-attr]
    path = (end.route if end is not None and end.route else None) or (start or end).path  # type: ignore[union-attr]
    text = paint(_BOLD, what) + f" {method} {path}"
    if end is not None:
        text += f" -> {end.status}"
    return text


def _request_events(node: CallNode) -> tuple[RequestStart | None, RequestEnd | None]:
    """A request's own call's ``RequestStart`` and ``RequestEnd`` (None when not recorded)."""
    start: RequestStart | None = None
    end: RequestEnd | None = None
    for se in node.events:
        if type(se.event) is RequestStart:
            start = se.event
        elif type(se.event) is RequestEnd:
            end = se.event
    return start, end


def _size(n: int) -> str:
    return "?" if n < 0 else f"{n} B"


def raised_at(traceback: list[str] | None, line: int) -> str | None:
    """``short/file.py:12 in fn`` from a recorded traceback's innermost frame; when that
    is a library's (asyncio's ``wait_for`` raising a TimeoutError), the program's own
    innermost line first: ``app.py:129 in fetch (via …/asyncio/tasks.py:502 in wait_for)``."""
    if not traceback:
        return f"line {line}" if line else None
    frames = [split_frame(text) or (text, 0, "?") for text in traceback]
    file, lineno, function = frames[-1]
    innermost = f"{short_path(file) or file}:{lineno} in {function}"
    own = program_frame(frames)
    if own is None or own == frames[-1]:
        return innermost
    return f"{short_path(own[0]) or own[0]}:{own[1]} in {own[2]} (via {innermost})"


def program_frame(frames: list[tuple[str, int, str]]) -> tuple[str, int, str] | None:
    """Of traceback frames (innermost last), where the program raised: its own innermost
    frame, else (all a library's) the innermost one; None for none."""
    own = next((f for f in reversed(frames) if not library_path(f[0])), None)
    return own if own is not None else (frames[-1] if frames else None)


def split_frame(text: str | None) -> tuple[str, int, str] | None:
    """A recorded ``file:line:function`` frame's parts (None when it is not one)."""
    parts = (text or "").rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1]), parts[2]


def _short(function: str) -> str:
    return function.removeprefix("__main__.")


def format_duration(ns: int) -> str:
    """``850 ns``, ``12.3 µs``, ``1.2 ms``, ``3.40 s``."""
    if ns < 1_000:
        return f"{ns} ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.1f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e9:.2f} s"


_HANDLED = {True: "; handled in the call", False: "; the call ended by it"}
"""What a tree says of an exception raised into a call at an await, by whether it handled it."""


def describe(
    ev: Any,
    receivers: dict[str, str] | None = None,
    *,
    in_tree: bool = False,
    handled: bool | None = None,
) -> str:
    """One event's detail as text (the last column of ``render_events``); a message sent
    to an actor address names its receiver when ``receivers`` (message id -> actor) has
    it. A yield or resume names its coroutine, unless ``in_tree`` (under its call); a
    resume by an exception raised into the call says whether the call ``handled`` it,
    when that is known (a tree knows; a list of events does not)."""
    cls = type(ev)
    if cls is FunctionEntry:
        args = "" if ev.args is None else ", ".join(f"{k}={v}" for k, v in ev.args.items())
        source = source_of(ev.file, ev.line)
        task = f"  {{task {ev.task}}}" if ev.task else ""
        return f"{_short(ev.function)}({args})" + (f"  {source}" if source else "") + task
    if cls is FunctionExit:
        result = "" if ev.result is None else f" -> {ev.result}"
        return f"{_short(ev.function)}{result}  [{format_duration(ev.duration_ns)}]"
    if cls is FunctionError:
        raised = raised_at(ev.traceback, ev.line)
        where = f" (raised at {raised})" if raised else ""
        return (
            f"{_short(ev.function)} !! {error_text(ev.exc_type, ev.message)}{where}"
            f"  [{format_duration(ev.duration_ns)}]"
        )
    if cls is GeneratorYield or cls is GeneratorResume:
        head = ("await" if ev.awaiting else "yield") if cls is GeneratorYield else "resume"
        if not in_tree:  # in a tree, the line is said with the call's file
            head += f" in {_short(ev.function)}"
            if cls is GeneratorYield and ev.line:
                head += f" at line {ev.line}"
        if cls is GeneratorResume and ev.raised:  # thrown in at its suspension
            said = "" if handled is None else _HANDLED[handled]
            return f"{head} !! {ev.value or ev.raised} (raised into it{said})"
        if ev.value is None:
            return head
        return f"{head} {ev.value}" if cls is GeneratorYield else f"{head} <- {ev.value}"
    if cls is AttributeChange:
        return f"self.{ev.name} = {ev.value}"
    if cls is StateChange:
        head = f"state {ev.actor}.{ev.callback}({ev.message})"
        if ev.seq < 0:  # recorded before states had structure
            return f"{head}: {ev.before} -> {ev.after}"
        from elixirscope.state.render import summarize_change

        raised = f"  raised {ev.error}" if ev.error else ""
        return f"{head}: {summarize_change(ev.key, ev.delta)}{raised}"
    if cls is MessageSend:
        to = receivers.get(ev.message_id, ev.target) if receivers else ev.target
        return f"send {ev.sender or '?'} -> {to}: {ev.message}  #{ev.message_id}"
    if cls is MessageReceive:
        return f"receive {ev.actor} <- {ev.sender or '?'}: {ev.message}  #{ev.message_id}"
    if cls is ProcessSpawn:
        return f"spawn {ev.path} pid={ev.pid}" + (f" by {ev.supervisor}" if ev.supervisor else "")
    if cls is ProcessExit:
        return f"exit {ev.path} pid={ev.pid}: {ev.reason}"
    if cls is ProcessRestart:
        return f"restart {ev.path} pid={ev.pid}: {ev.reason}"
    if cls is CustomEvent:
        lost = uncaught_of(ev)
        if lost is not None:
            return lost.describe()
        d = undelivered_data(ev)
        if d is not None:  # the send it names, why
            return (
                f"dropped {d.get('kind')} to {d.get('to')}: {d.get('why')}  #{d.get('message_id')}"
            )
        return f"{ev.name} {ev.data}"
    if cls is ThreadStart:
        what = START_WORDS.get(ev.kind, f"{ev.kind} on thread")
        if ev.chain:
            return f"→ {what} {ev.name} (correlation {ev.chain[:12]}…)"
        return f"{what} {ev.name} started"
    if cls is RequestStart or cls is RequestEnd or cls is WebSocketMessage or cls is HttpCall:
        return _describe_web(ev)
    if cls is DatabaseQuery or cls is DatabaseTransaction or cls is PubSubPublish:
        return _describe_integration(ev)
    if cls is PubSubDelivery:
        again = " (replayed)" if ev.replay else ""
        to = f"{ev.name} ({ev.target})" if ev.name else ev.target
        return f"deliver {ev.topic} -> {to}{again}  #{ev.pub_id}"
    return repr(ev)  # pragma: no cover - every contract type is listed above


def _describe_web(ev: Any) -> str:
    cls = type(ev)
    if cls is RequestStart:
        query = f"?{ev.query}" if ev.query else ""
        text = f"{'websocket ' if ev.protocol == 'websocket' else ''}{ev.method} {ev.path}{query}"
        if ev.client:
            text += f" from {ev.client}"
        if ev.parent_span:
            text += f"  (caller trace {ev.trace_id} span {ev.parent_span})"
        if ev.traceparent_error:
            text += f"  (traceparent ignored: {ev.traceparent_error})"
        return text
    if cls is RequestEnd:
        route = f" ({ev.route})" if ev.route and ev.route != ev.path else ""
        text = (
            f"-> {ev.status} {ev.method} {ev.path}{route}  [{format_duration(ev.duration_ns)}]"
            f"  in {_size(ev.request_bytes)}, out {_size(ev.response_bytes)}"
        )
        if ev.exc_type:
            text += f"  !! {error_text(ev.exc_type, ev.message)}"
        return text
    if cls is WebSocketMessage:
        if ev.kind in ("in", "out"):
            return f"ws {ev.kind} {_size(ev.size)}: {ev.preview}"
        return f"ws {ev.kind}" + (f" code {ev.code}" if ev.code else "")
    outcome = str(ev.status) if ev.status else ("timeout" if ev.timeout else "failed")
    text = f"http {ev.method} {ev.url} -> {outcome}  [{format_duration(ev.duration_ns)}]"
    if ev.attempt > 1:
        text += f"  attempt {ev.attempt}"
    if ev.error:
        text += f"  !! {ev.error}"
    source = source_of(ev.file, ev.line)
    return text + (f"  {source}" if source else "")


def _describe_integration(ev: Any) -> str:
    """A query (``query sqlite app.db: SELECT ... [params] -> 3 rows [1.2 ms] app.py:12``),
    a transaction (``tx commit ...``), a publish (``publish topic by actor: message``)."""
    if type(ev) is PubSubPublish:
        return f"publish {ev.topic} by {ev.publisher or '?'}: {ev.message}  #{ev.pub_id}"
    where = ev.system + (f"({ev.database})" if ev.database else "")
    if type(ev) is DatabaseQuery:
        text = f"query {where}: {' '.join(ev.statement.split())}"
        if ev.parameters is not None:
            text += f"  {ev.parameters}"
        if ev.many:
            text += f"  (x{ev.many})"
        if ev.rows >= 0:
            text += f" -> {ev.rows} row" + ("" if ev.rows == 1 else "s")
    else:
        text = f"tx {ev.action} {where}"
    if ev.error:
        text += f" !! {ev.error}"
    if ev.duration_ns:
        text += f"  [{format_duration(ev.duration_ns)}]"
    source = source_of(ev.file, ev.line)
    return text + (f"  {source}" if source else "")


def format_ts(ts: int) -> str:
    """An HLC timestamp as local ISO time with microseconds."""
    when = (
        _dt.datetime.fromtimestamp(ts // 10**9).replace(microsecond=ts // 1000 % 10**6).astimezone()
    )
    return when.isoformat(timespec="microseconds")


def render_events(
    events: Iterable[StoredEvent],
    threads: ThreadNames | None = None,
    *,
    ids: bool = False,
    received: dict[str, str] | None = None,
) -> str:
    """One line per event, aligned: time, process (and thread, named when ``threads``
    knows it), with ``ids`` the event's id (``#152``: what ``explain`` and ``trace from``
    take), type, correlation, detail; a send whose receive is listed too, or is in
    ``received`` (:func:`receivers` of receives read apart), names its receiver (not
    the actor's address)."""
    events = list(events)
    names = {**(received or {}), **receivers(events)}
    rows = [
        (
            format_ts(se.event.ts),
            f"{se.node}:{se.pid}" + (f"/{threads.label(se)}" if threads else ""),
            *((f"#{se.event.id}",) if ids else ()),
            se.type,
            (se.event.correlation_id or "-")[:12],
            one_line(describe(se.event, names)),
        )
        for se in events
    ]
    if not rows:
        return ""
    n = len(rows[0]) - 1
    widths = [max(len(r[i]) for r in rows) for i in range(n)]
    return "\n".join(
        "  ".join(col.ljust(w) for col, w in zip(r[:n], widths, strict=True)) + "  " + r[n]
        for r in rows
    )


def _painter(color: bool):
    if not color:
        return lambda _code, text: text
    return lambda code, text: f"{code}{text}{_RESET}"
