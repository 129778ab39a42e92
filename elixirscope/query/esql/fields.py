"""Every field ESQL can select, compare, group and show: its kind, sources and reader.

A field has a *kind* that says how it compares and shows:

- ``text``: a name or word, compared as text (``=`` a glob); ``path``: a file
  path (or ``path:line``), compared the same way, shown short;
- ``function``/``actor``: a name matched whole or by its last parts
  (``'sell'`` matches ``__main__.sell``; ``'desk'`` matches ``shop/desk``);
- ``actors``: the actors an event names (any may match);
- ``int``, ``time`` (ns since 1970; written ``'2024-05-01T12:00'``, ``'10m'`` ago,
  ``5m ago`` or ns), ``duration`` (ns; written ``5ms``);
- ``value``: a recorded value, decoded from its text
  (:mod:`~elixirscope.query.esql.values`); ``args``: the arguments by name;
  ``state``: an actor's state (structure); ``data``: a custom event's data —
  these four take a path (``args.item``, ``return[0]``, ``state.orders``).

Some fields are known only once a call ends or a message is received
(``return``, ``duration``, ``to``, ...): a partial row's reader answers
:data:`~elixirscope.query.esql.rows.UNKNOWN` for them.
*needs* says what the :class:`~elixirscope.query.esql.rows.Context` must
follow for the field: ``calls`` (open calls), ``threads``, ``runs``, ``states``,
``receivers`` (who received each message: a send's ``to``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from elixirscope.contracts.trace import (
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
)
from elixirscope.query.calltree import error_text
from elixirscope.query.esql.rows import UNKNOWN, CallRow, EventRow, MessageRow
from elixirscope.query.esql.values import decode, step_into
from elixirscope.query.esql.vocabulary import SOURCES
from elixirscope.store._events import event_actors, event_tag

__all__ = ["ALIASES", "FIELDS", "FieldDef", "DEFAULT_COLUMNS", "fields_of", "read_path"]

PATH_KINDS = frozenset({"value", "args", "state", "data"})


@dataclass(frozen=True)
class FieldDef:
    name: str
    kind: str
    sources: frozenset[str]
    get: Callable[[Any], Any]
    needs: frozenset[str] = frozenset()
    doc: str = ""
    values: tuple[str, ...] = ()  # every text it can have, when few: a literal is checked


ALL = frozenset(SOURCES)
_FUNCTION_SOURCES = frozenset({"events", "calls", "exceptions", "yields", "resumes", "attributes"})
_ACTOR_SOURCES = frozenset(
    {
        "events",
        "states",
        "messages",
        "sends",
        "receives",
        "spawns",
        "exits",
        "restarts",
        "publishes",
        "deliveries",
    }
)
_CHILD = (ProcessSpawn, ProcessExit, ProcessRestart)
_DATABASE = (DatabaseQuery, DatabaseTransaction)  # they carry their own line and duration
_ISSUED = (*_DATABASE, HttpCall)  # they carry the program's line that issued them, and who
_DB_SOURCES = frozenset({"events", "queries", "transactions"})
_PUBSUB_SOURCES = frozenset({"events", "publishes", "deliveries"})


def _late(row: Any, read: Callable[[], Any]) -> Any:
    return UNKNOWN if row.partial else read()


# ---------------------------------------------------------------- envelope


def _time(row: Any) -> int:
    if type(row) is CallRow:
        return row.start
    if type(row) is MessageRow and row.sent_ts is not None:
        return row.sent_ts  # a delivery's, when only its receive is an event of the row
    return row.ev.ts


def _kind(row: Any) -> str:
    if type(row) is CallRow:
        return "call"
    if type(row) is MessageRow:
        return "message"
    return event_tag(row.ev)


def _id(row: Any) -> int:
    return row.call_id if type(row) is CallRow else row.ev.id


def _parent_id(row: Any) -> int:
    return row.ev.parent_id


def _parent(row: Any) -> str | None:
    entry = row.ctx.entry_of(row.se.producer, row.ev.parent_id) if row.ev.parent_id else None
    return None if entry is None else entry.function


def _depth(row: Any) -> int:
    return len(row.ctx.ancestors(row.se.producer, row.ev.parent_id))


# ---------------------------------------------------------------- calls and functions


def _function(row: Any) -> str | None:
    return getattr(row.ev, "function", None)


def _module(row: Any) -> str | None:
    function = _function(row)
    return None if not function or "." not in function else function.rpartition(".")[0]


def _entry(row: Any) -> FunctionEntry | None:
    """The call entry a row is about: its own, or (an exception) its call's while open."""
    if type(row) is CallRow:
        return row.entry
    ev = row.ev
    if type(ev) is FunctionEntry:
        return ev
    if type(ev) is FunctionError or type(ev) is FunctionExit:
        return row.ctx.entry_of(row.se.producer, ev.call_id)
    return None


def _end(row: Any) -> Any:
    """The return or exception that ended a row's call (UNKNOWN while it runs)."""
    if type(row) is CallRow:
        return UNKNOWN if row.partial else row.end
    ev = row.ev
    return ev if type(ev) is FunctionExit or type(ev) is FunctionError else None


def _error_event(row: Any) -> Any:
    end = _end(row)
    return end if end is UNKNOWN or type(end) is FunctionError else None


def _file(row: Any) -> str | None:
    ev = row.ev
    if type(ev) in _ISSUED:
        return ev.file
    if type(ev) is FunctionError and ev.traceback:
        return ev.traceback[-1].rpartition(":")[0].rpartition(":")[0] or None
    if type(ev) is GeneratorYield or type(ev) is GeneratorResume:  # its function's file
        entry = row.ctx.entry_of(row.se.producer, ev.call_id)
        return None if entry is None else entry.file
    entry = _entry(row)
    return None if entry is None else entry.file


def _line(row: Any) -> int | None:
    ev = row.ev
    if type(ev) in _ISSUED:
        return ev.line or None
    if type(ev) is FunctionError or type(ev) is GeneratorYield:
        return ev.line or None
    if type(ev) is GeneratorResume:  # the line of the await or yield it resumed from
        suspended = row.ctx.yield_of(row.se)
        return None if suspended is None or not suspended.line else suspended.line
    entry = _entry(row)
    return None if entry is None or not entry.line else entry.line


def _step(row: Any) -> str | None:
    ev = row.ev
    if type(ev) is GeneratorResume:
        ev = row.ctx.yield_of(row.se)
    if type(ev) is not GeneratorYield:
        return None
    return "await" if ev.awaiting else "yield"


def _waited(row: Any) -> int | None:
    if type(row.ev) is not GeneratorResume:
        return None
    suspended = row.ctx.yield_of(row.se)
    return None if suspended is None else max(0, row.ev.ts - suspended.ts)


def _location(row: Any) -> str | None:
    file, line = _file(row), _line(row)
    if file is None:
        return None
    return f"{file}:{line}" if line else file


def _args(row: Any) -> dict[str, str] | None:
    entry = _entry(row)
    return None if entry is None else entry.args


def _return(row: Any) -> Any:
    end = _end(row)
    if end is UNKNOWN:
        return UNKNOWN
    return decode(end.result) if type(end) is FunctionExit else None


def _duration(row: Any) -> int | None:
    if type(row) is MessageRow:
        return _latency(row)
    if type(row.ev) in _WEB_ENDS or type(row.ev) in _DATABASE:
        return row.ev.duration_ns
    end = _end(row)
    if end is UNKNOWN:
        return UNKNOWN
    return None if end is None else end.duration_ns


_ENDED = (RequestEnd, HttpCall, DatabaseQuery, DatabaseTransaction)
"""Events recorded when what they say of ended, with its duration: it began that long before."""


def _start(row: Any) -> int:
    """When it began: a call's entry, a request's (its end less its duration), an HTTP
    attempt's, a query's or a transaction step's; else when it happened."""
    if type(row) is CallRow:
        return row.start
    ev = row.ev
    if type(ev) in _ENDED:
        return int(ev.ts - max(0, ev.duration_ns))
    return int(ev.ts)


def _end_time(row: Any) -> int | None:
    if type(row) is not CallRow and type(row.ev) in _ENDED:
        return int(row.ev.ts)
    end = _end(row)
    if end is UNKNOWN:
        return UNKNOWN
    return None if end is None else end.ts


def _status(row: Any) -> str | None:
    if type(row) is MessageRow:
        return _late(row, lambda: _delivery(row))
    end = _end(row)
    if end is UNKNOWN:
        return UNKNOWN
    if end is None:
        return "running"
    if type(end) is not FunctionError:
        return "ok"
    return "cancelled" if cancellation(end.exc_type) else "error"


def _delivery(row: MessageRow) -> str:
    """received; dropped (the runtime could not deliver it, and said why); unreceived."""
    if row.receive is not None:
        return "received"
    return "dropped" if _drop(row) is not None else "unreceived"


def _drop(row: MessageRow) -> str | None:
    """Why the runtime dropped a message never received (its ``elixirscope.undelivered``)."""
    drops = row.ctx.drops
    return None if drops is None else drops.get(row.ev.message_id)


def _reason(row: Any) -> str | None:
    if type(row) is MessageRow:
        return _late(row, lambda: None if row.receive is not None else _drop(row))
    return getattr(row.ev, "reason", None) if type(row.ev) in _CHILD else None


def _type(row: Any) -> str | None:
    if type(row.ev) is RequestEnd:
        return row.ev.exc_type
    err = _error_event(row)
    return err if err is UNKNOWN or err is None else err.exc_type


def _code(row: Any) -> Any:
    """A status code; for an HTTP attempt that got no response, why (render.NoResponse)."""
    ev = row.ev
    if type(ev) is HttpCall and ev.status == 0:
        from elixirscope.query.esql.render import NoResponse, no_response_reason

        return NoResponse(no_response_reason(ev))
    if type(ev) is WebSocketMessage:  # a close's or disconnect's code
        return ev.code or None
    return ev.status if type(ev) in _WEB_ENDS else None


def _error(row: Any) -> str | None:
    if type(row.ev) is StateChange or type(row.ev) is HttpCall or type(row.ev) in _DATABASE:
        return row.ev.error
    if type(row.ev) is RequestEnd:
        return None if row.ev.exc_type is None else error_text(row.ev.exc_type, row.ev.message)
    err = _error_event(row)
    return err if err is UNKNOWN or err is None else error_text(err.exc_type, err.message)


def _traceback(row: Any) -> Any:
    err = _error_event(row)
    return err if err is UNKNOWN or err is None else err.traceback


def _task(row: Any) -> str | None:
    entry = _entry(row)
    return None if entry is None else entry.task


def _outcome(row: Any) -> str | None:
    end = _end(row)
    if end is UNKNOWN:
        return UNKNOWN
    if end is None:
        return "(running)" if type(row) is CallRow else None
    if type(end) is FunctionError:
        if cancellation(end.exc_type):
            return "(cancelled)"  # as calltree says it: no failure
        return f"!! {error_text(end.exc_type, end.message)}"
    return "->" if end.result is None else f"-> {end.result}"


# ---------------------------------------------------------------- messages, actors, states


def _message(row: Any) -> Any:
    if type(row) is MessageRow:
        se = row.send if row.send is not None else row.receive
        return decode(se.event.message)
    ev = row.ev
    if type(ev) in (StateChange, MessageSend, MessageReceive, PubSubPublish):
        return decode(ev.message)
    err = _error_event(row)
    return err if err is UNKNOWN or err is None else err.message


# ---------------------------------------------------------------- web requests and HTTP calls

_WEB_ENDS = (RequestEnd, HttpCall)
_WEB = (RequestStart, RequestEnd, HttpCall)
_WEB_SOURCES = {"events", "requests", "http"}
_HTTP = frozenset({"events", "http"})
_EVENTS = frozenset({"events"})


def _web(name: str, classes: tuple[type, ...]) -> Callable[[Any], Any]:
    def get(row: Any) -> Any:
        return getattr(row.ev, name) if type(row.ev) in classes else None

    return get


# ---------------------------------------------------------------- WebSocket steps

_WS = frozenset({"events", "websockets"})


def _ws(read: Callable[[WebSocketMessage], Any]) -> Callable[[Any], Any]:
    def get(row: Any) -> Any:
        return read(row.ev) if type(row.ev) is WebSocketMessage else None

    return get


def _connection(row: Any, at: int) -> Any:
    """A WebSocket step's connection's path (0) or route (1), read off its ``req`` and
    ``reqend`` (``Context.connections``); a request's own."""
    ev = row.ev
    if type(ev) is WebSocketMessage:
        known = (row.ctx.connections or {}).get((row.se.producer, ev.request_id))
        return None if known is None else known[at]
    if at == 0:
        return ev.path if type(ev) in (RequestStart, RequestEnd) else None
    return ev.route if type(ev) is RequestEnd else None


def _endpoint(row: Any) -> str | None:
    """A request's method and route (``POST /orders``), as summary's Web requests table
    names it: ``route`` alone is one row for a GET and a POST of one path; the requests no
    route took (404, 405) share ``GET (no route matched)`` — a scanner's paths are each new."""
    ev = row.ev
    if type(ev) is not RequestEnd:
        return None
    if not ev.route and ev.status in (404, 405):  # no route took it: one row for them all
        from elixirscope.query.summary import UNMATCHED  # (summary reads esql's render)

        return f"{ev.method} {UNMATCHED}"
    return f"{ev.method} {ev.route or ev.path}"


def _action(row: Any) -> str | None:
    """A transaction step's action; a WebSocket step's: accept, in, out, close, disconnect."""
    ev = row.ev
    return ev.kind if type(ev) is WebSocketMessage else _db(row, "action")


def _message_id(row: Any) -> str | None:
    return getattr(row.ev, "message_id", None)


def _sender(row: Any) -> str | None:
    if type(row) is MessageRow:
        for se in (row.send, row.receive):
            if se is not None and se.event.sender is not None:
                return se.event.sender
        return None
    if type(row.ev) is PubSubPublish:
        return row.ev.publisher
    return getattr(row.ev, "sender", None)


def _target(row: Any) -> str | None:
    if type(row) is MessageRow:
        if row.receive is not None:
            return row.receive.event.actor
        if row.partial:
            return UNKNOWN
        target = row.send.event.target  # never received: named as the messages there were
        return row.ctx.addresses.get(target, target)
    ev = row.ev
    if type(ev) is MessageSend:
        return row.ctx.receiver_of(ev)
    if type(ev) is MessageReceive:
        return ev.actor
    if type(ev) is PubSubDelivery:  # its path, or (recorded before paths were) a name
        return ev.name if ev.name and ev.message_id is None else ev.target
    return None


def _actors(row: Any) -> tuple[str, ...]:
    if type(row) is MessageRow:
        names = [n for n in (_sender(row), _target(row)) if n is not None and n is not UNKNOWN]
        if row.send is not None:
            names.append(row.send.event.target)
        return tuple(dict.fromkeys(names))
    if type(row) is CallRow:
        return ()
    return event_actors(row.ev)


def _sent(row: Any) -> int | None:
    return row.sent_ts


def _received(row: Any) -> int | None:
    return _late(row, lambda: None if row.receive is None else row.receive.event.ts)


def _latency(row: Any) -> int | None:
    if row.partial:
        return UNKNOWN
    if row.sent_ts is None or row.receive is None:
        return None
    return row.receive.event.ts - row.sent_ts


def _state(row: Any) -> Any:
    """A state change's state after it; another event's: the state its one actor (a
    receive's: the receiver) was in when it happened (after the changes before it); a
    message's: its receiver's when it received it (null if it was never received)."""
    ev = row.ev
    if type(ev) is StateChange:
        return row.state
    if type(row) is MessageRow:  # the receiver's when it received it: before its handler
        return _late(row, lambda: row.state)
    if type(row) is CallRow:  # its actor's before the handler it runs in
        return row.state
    if type(row) is not EventRow:
        return None
    actors = (ev.actor,) if type(ev) is MessageReceive else event_actors(ev)
    return row.ctx.state_of(actors[0]) if len(actors) == 1 else None


def _change(row: Any) -> str | None:
    ev = row.ev
    if type(ev) is not StateChange:
        return None
    if ev.seq < 0:
        return f"{ev.before} -> {ev.after}"
    from elixirscope.state.render import summarize_change

    return summarize_change(ev.key, ev.delta)


def _value(row: Any) -> Any:
    ev = row.ev
    if type(ev) in (GeneratorYield, GeneratorResume, AttributeChange):
        return decode(ev.value)
    return None


def _name(row: Any) -> str | None:
    ev = row.ev
    if type(ev) in (AttributeChange, ThreadStart, CustomEvent):
        return ev.name
    return None


def _started(row: Any) -> str | None:
    ev = row.ev
    return ev.kind if type(ev) is ThreadStart else None


def _gives_chain(row: Any) -> str | None:
    ev = row.ev
    return ev.chain if type(ev) is ThreadStart else None


def _db(row: Any, name: str) -> Any:
    return getattr(row.ev, name, None) if type(row.ev) in _DATABASE else None


def _caller(row: Any) -> str | None:
    return row.ev.caller if type(row.ev) in _ISSUED else None


def _open_for(row: Any) -> int | None:
    ev = row.ev
    return ev.open_ns if type(ev) is DatabaseTransaction and ev.open_ns > 0 else None


def _rows(row: Any) -> int | None:
    ev = row.ev
    return ev.rows if type(ev) is DatabaseQuery and ev.rows >= 0 else None


def _pubsub(row: Any, name: str) -> Any:
    ev = row.ev
    return getattr(ev, name) if type(ev) is PubSubPublish or type(ev) is PubSubDelivery else None


def _detail(row: Any) -> str:
    from elixirscope.query.calltree import describe

    if type(row) is CallRow:
        entry = row.entry
        function = (row.ev.function or "").removeprefix("__main__.")
        args = (
            "?"
            if entry is None or entry.args is None
            else ", ".join(f"{k}={v}" for k, v in entry.args.items())
        )
        outcome = _outcome(row)
        return f"{function}({args})" + ("" if outcome in (None, UNKNOWN) else f" {outcome}")
    if type(row) is MessageRow:
        return f"{_sender(row) or '?'} -> {_target(row)}: {shown_message(row)}"
    return describe(row.ev, row.ctx.receivers)  # a send names its receiver when `to` is read


def shown_message(row: MessageRow) -> str:
    se = row.send if row.send is not None else row.receive
    return str(se.event.message)


# ---------------------------------------------------------------- the catalogue


def _f(
    name: str,
    kind: str,
    sources: Any,
    get: Callable[[Any], Any],
    needs: tuple[str, ...] = (),
    doc: str = "",
    values: tuple[str, ...] = (),
) -> FieldDef:
    return FieldDef(name, kind, frozenset(sources), get, frozenset(needs), doc, values)


_FIELDS = [
    _f("time", "time", ALL, _time, doc="when it happened (a call: when it began; ns)"),
    _f("kind", "text", ALL, _kind, doc="the event type: call, return, exception, state, ..."),
    _f("id", "int", ALL, _id, doc="the event's id in its process (a call: its call id)"),
    _f("chain", "text", ALL, lambda r: r.ev.correlation_id, doc="the correlation id"),
    _f("parent_id", "int", ALL, _parent_id, doc="the enclosing call's id (0: top level)"),
    _f("parent", "function", ALL, _parent, needs=("calls",), doc="the enclosing call's function"),
    _f("depth", "int", ALL, _depth, needs=("calls",), doc="how many recorded calls enclose it"),
    _f(
        "thread",
        "text",
        ALL,
        lambda r: r.ctx.thread_name(r.se),
        needs=("threads",),
        doc="the thread's name (else its ident)",
    ),
    _f("thread_id", "int", ALL, lambda r: r.ev.thread, doc="the thread's ident"),
    _f("pid", "int", ALL, lambda r: r.se.pid, doc="the recording process's OS pid"),
    _f("node", "text", ALL, lambda r: r.se.node, doc="the recording node"),
    _f("program", "text", ALL, lambda r: r.se.program, doc="the recorded program"),
    _f("producer", "text", ALL, lambda r: r.se.producer, doc="the recording process run"),
    _f(
        "run",
        "text",
        ALL,
        lambda r: r.ctx.run_of(r.se),
        needs=("runs",),
        doc="the run (recording) id",
    ),
    _f("detail", "text", ALL, _detail, doc="the event in words"),
    _f("function", "function", _FUNCTION_SOURCES, _function, doc="module.qualname"),
    _f(
        "module", "text", _FUNCTION_SOURCES, _module, doc="the function's name before its last part"
    ),
    _f(
        "file",
        "path",
        {"events", "calls", "exceptions", "queries", "transactions", "yields", "resumes", "http"},
        _file,
        doc="where it is defined (a query, an HTTP call: the program's file that issued it)",
    ),
    _f(
        "line",
        "int",
        {"events", "calls", "exceptions", "queries", "transactions", "yields", "resumes", "http"},
        _line,
        doc="its def line (raised at; a query, an HTTP call: the line that issued it; a "
        "yield: its await's or yield's)",
    ),
    _f(
        "location",
        "path",
        {"events", "calls", "exceptions", "queries", "transactions", "yields", "resumes", "http"},
        _location,
        doc="file:line",
    ),
    _f(
        "step",
        "text",
        {"events", "yields", "resumes"},
        _step,
        doc="a yield's kind: await (waiting on something) or yield (a value handed on); a "
        "resume's: the one it resumed from",
        values=("await", "yield"),
    ),
    _f(
        "waited",
        "duration",
        {"events", "resumes"},
        _waited,
        needs=("yields",),
        doc="a resume's time suspended since its call's yield",
    ),
    _f(
        "raised",
        "text",
        {"events", "resumes"},
        lambda r: r.ev.raised if type(r.ev) is GeneratorResume else None,
        doc="a resume's: the type of the exception thrown in at its await or yield, which "
        "the call caught",
    ),
    _f(
        "thrown_in",
        "value",
        {"events", "exceptions"},
        lambda r: r.ctx.thrown_in(r.se) if type(r.ev) is FunctionError else None,
        needs=("yields",),
        doc="an exception's: true when its consumer threw it into the generator at a "
        "`yield` (a @contextmanager's with body, a FastAPI dependency), raised elsewhere: "
        "`exceptions where thrown_in = false` leaves those out",
    ),
    _f("args", "args", {"events", "calls", "exceptions"}, _args, doc="the arguments by name"),
    _f("return", "value", {"events", "calls"}, _return, doc="the value returned"),
    _f(
        "duration",
        "duration",
        {
            "events",
            "calls",
            "exceptions",
            "messages",
            "requests",
            "http",
            "queries",
            "transactions",
        },
        _duration,
        doc="how long the call ran (a message: its latency; a request or HTTP attempt: its own)",
    ),
    _f(
        "start",
        "time",
        ALL,
        _start,
        doc="when it began: a call's entry; a request, HTTP attempt, query or transaction"
        " step: its end less its duration (their `time` is when they ended); else `time`",
    ),
    _f(
        "end",
        "time",
        {"calls", "requests", "http", "queries", "transactions"},
        _end_time,
        doc="when the call (request, HTTP attempt, query, transaction step) ended",
    ),
    _f(
        "status",
        "text",
        {"calls", "messages"},
        _status,
        needs=("drops",),
        doc="ok, error, cancelled, running; received, dropped (the runtime could not"
        " deliver it: `reason` says why), unreceived",
        values=("ok", "error", "cancelled", "running", "received", "dropped", "unreceived"),
    ),
    _f("outcome", "text", {"calls"}, _outcome, doc="-> value, !! Error: message or (cancelled)"),
    _f(
        "type",
        "function",  # a dotted name: 'TransientError' matches __main__.TransientError
        {"events", "calls", "exceptions", "requests"},
        _type,
        doc="the exception type (matched whole or by its last parts, as a function)",
    ),
    _f(
        "error",
        "text",
        {"events", "calls", "exceptions", "states", "requests", "http", "queries", "transactions"},
        _error,
        doc="Type: message (an HTTP attempt: why it failed)",
    ),
    _f(
        "message",
        "value",
        {"events", "calls", "exceptions", "states", "messages", "sends", "receives", "publishes"},
        _message,
        doc="the message (an exception's: its text)",
    ),
    _f("traceback", "value", {"events", "calls", "exceptions"}, _traceback),
    _f("task", "text", {"events", "calls"}, _task, doc="the asyncio task"),
    _f("value", "value", {"events", "yields", "resumes", "attributes"}, _value),
    _f("name", "text", {"events", "attributes", "threads", "custom"}, _name),
    _f(
        "started",
        "text",
        {"events", "threads"},
        _started,
        doc="what a start began: thread, task, process, pool task",
        values=("thread", "task", "process", "pool task"),
    ),
    _f(
        "gives_chain",
        "text",
        {"events", "threads"},
        _gives_chain,
        doc="the chain a start gave its work (null: unlinked)",
    ),
    _f("actor", "actors", _ACTOR_SOURCES, _actors, doc="the actors it names"),
    _f("callback", "text", {"events", "states"}, lambda r: getattr(r.ev, "callback", None)),
    _f("seq", "int", {"events", "states"}, lambda r: getattr(r.ev, "seq", None)),
    _f(
        "state",
        "state",
        {"events", "states", "messages", "calls"},
        _state,
        needs=("states",),
        doc="the state after (a state change), else its actor's state then (a message's:"
        " its receiver's when it received it, before its handler; a call's: that of the"
        " actor whose handler it runs in, before the handler)",
    ),
    _f("change", "text", {"events", "states"}, _change, doc="what the change did"),
    _f(
        "message_id",
        "text",
        {"events", "states", "messages", "sends", "receives", "deliveries"},
        _message_id,
    ),
    _f(
        "from",
        "actor",
        {"events", "messages", "sends", "receives", "publishes"},
        _sender,
        doc="the sender (a publish: its publisher)",
    ),
    _f(
        "to",
        "actor",
        {"events", "messages", "sends", "receives", "deliveries"},
        _target,
        needs=("receivers",),
        doc="the receiver: its path (a send: its receive's, any process; else the address"
        " it was sent to); a delivery: the subscriber's path (a GenServer's), else its"
        " registered name, else its address",
    ),
    _f("sent", "time", {"messages"}, _sent),
    _f("received", "time", {"messages"}, _received),
    _f("latency", "duration", {"messages"}, _latency),
    _f(
        "reason",
        "text",
        {"events", "exits", "restarts", "messages"},
        _reason,
        needs=("drops",),
        doc="an exit's or a restart's reason; a dropped message's: why the runtime could not"
        " deliver it",
    ),
    _f(
        "supervisor",
        "text",
        {"events", "spawns", "exits", "restarts"},
        lambda r: getattr(r.ev, "supervisor", None) if type(r.ev) in _CHILD else None,
    ),
    _f(
        "child_pid",
        "int",
        {"events", "spawns", "exits", "restarts"},
        lambda r: r.ev.pid if type(r.ev) in _CHILD else None,
    ),
    _f(
        "child_address",
        "text",
        {"events", "spawns", "restarts"},
        lambda r: getattr(r.ev, "address", None) if type(r.ev) in _CHILD else None,
        doc="the actor address a child was started or restarted at",
    ),
    _f("data", "data", {"events", "custom"}, lambda r: getattr(r.ev, "data", None)),
    _f("method", "text", _WEB_SOURCES, _web("method", _WEB), doc="the HTTP method"),
    _f(
        "path",
        "text",
        {"events", "requests", "websockets"},
        lambda r: _connection(r, 0),
        doc="a request's path (a WebSocket step: its connection's)",
    ),
    _f(
        "route",
        "text",
        {"events", "requests", "websockets"},
        lambda r: _connection(r, 1),
        doc="a request's route template (a WebSocket step: its connection's)",
    ),
    _f(
        "endpoint",
        "text",
        {"events", "requests"},
        _endpoint,
        doc="a request's method and route, `POST /orders` (as summary groups requests)",
    ),
    _f(
        "request",
        "int",
        _WS,
        _ws(lambda ev: ev.request_id),
        doc="a WebSocket step's connection: the id of its req event",
    ),
    _f(
        "direction",
        "text",
        _WS,
        _ws(lambda ev: ev.kind if ev.kind in ("in", "out") else None),
        doc="a WebSocket message's: in (from the client) or out (to it)",
        values=("in", "out"),
    ),
    _f(
        "size",
        "int",
        _WS,
        _ws(lambda ev: ev.size if ev.size >= 0 else None),
        doc="a WebSocket message's size in bytes (a text frame's in UTF-8)",
    ),
    _f(
        "preview",
        "text",
        _WS,
        _ws(lambda ev: ev.preview),
        doc="a WebSocket message's bounded, redacted text",
    ),
    _f("url", "text", {"events", "http"}, _web("url", (HttpCall,)), doc="an HTTP call's URL"),
    _f(
        "code",
        "int",
        _WEB_SOURCES | {"websockets"},
        _code,
        doc="the HTTP status code (an attempt without a response: null; a table says why);"
        " a WebSocket close's or disconnect's code",
    ),
    _f("attempt", "int", {"events", "http"}, _web("attempt", (HttpCall,)), doc="1, 2, ..."),
    _f(
        "timeout",
        "value",
        {"events", "http"},
        _web("timeout", (HttpCall,)),
        doc="an HTTP attempt's: true when it timed out",
    ),
    *(  # texts read off a request's start or an HTTP attempt as recorded
        _f(name, "text", sources, _web(name, classes), doc=doc)
        for name, sources, classes, doc in (
            ("library", _HTTP, (HttpCall,), "httpx, urllib3 (requests)"),
            (
                "trace_id",
                _HTTP,
                (RequestStart, HttpCall),
                "W3C trace id: a request's (its caller's, else its own), an attempt's sent",
            ),
            ("span_id", _HTTP, (RequestStart, HttpCall), "a request's own span, an attempt's sent"),
            (
                "parent_span",
                _EVENTS,
                (RequestStart,),
                "a request's caller's span (its traceparent's)",
            ),
            (
                "traceparent_error",
                _EVENTS,
                (RequestStart,),
                "why a request's traceparent was ignored",
            ),
            ("client", _EVENTS, (RequestStart,), "host:port"),
            ("query", _EVENTS, (RequestStart,), "a request's query string"),
        )
    ),
    _f(
        "request_bytes",
        "int",
        {"events", "requests"},
        _web("request_bytes", (RequestStart, RequestEnd)),
        doc="-1 unknown",
    ),
    _f(
        "response_bytes",
        "int",
        {"events", "requests", "http"},
        _web("response_bytes", _WEB_ENDS),
        doc="-1 unknown",
    ),
    # databases and pub/sub (elixirscope.integrations)
    _f("statement", "text", _DB_SOURCES - {"transactions"}, lambda r: _db(r, "statement")),
    _f("parameters", "text", _DB_SOURCES - {"transactions"}, lambda r: _db(r, "parameters")),
    _f("rows", "int", _DB_SOURCES - {"transactions"}, _rows, doc="rows changed or returned"),
    _f(
        "open",
        "duration",
        {"events", "transactions"},
        _open_for,
        doc="a commit's or rollback's: how long its transaction was open (when known)",
    ),
    _f("database", "text", _DB_SOURCES, lambda r: _db(r, "database"), doc="name or URL"),
    _f("system", "text", _DB_SOURCES, lambda r: _db(r, "system"), doc="sqlite, postgresql, ..."),
    _f("caller", "function", _DB_SOURCES | _HTTP, _caller, doc="who issued it"),
    _f(
        "source",
        "text",
        _DB_SOURCES,
        lambda r: _db(r, "source"),
        doc="the integration that recorded it: sqlite3, psycopg, sqlalchemy",
    ),
    _f(
        "action",
        "text",
        _DB_SOURCES | {"websockets"},
        _action,
        doc="begin, commit, rollback; a WebSocket step's: accept, in, out, close, disconnect",
    ),
    _f("topic", "text", _PUBSUB_SOURCES, lambda r: _pubsub(r, "topic"), doc="the registry key"),
    _f("pub_id", "text", _PUBSUB_SOURCES, lambda r: _pubsub(r, "pub_id"), doc="links them"),
]

FIELDS: dict[str, FieldDef] = {f.name: f for f in _FIELDS}

ALIASES = {
    "correlation": "chain",
    "correlation_id": "chain",
    "result": "return",
    "sender": "from",
    "target": "to",
    "ts": "time",
    "exception": "type",
    "event": "kind",
}

DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "events": ("time", "kind", "detail"),
    "calls": ("time", "function", "args", "outcome", "duration"),
    "exceptions": ("time", "function", "type", "message", "location"),
    "yields": ("time", "function", "step", "location", "value"),
    "resumes": ("time", "function", "location", "waited", "value"),
    "attributes": ("time", "function", "name", "value"),
    "states": ("time", "actor", "callback", "message", "change"),
    "messages": ("time", "from", "to", "message", "latency"),
    "sends": ("time", "from", "to", "message"),
    "receives": ("time", "to", "from", "message"),
    "spawns": ("time", "actor", "child_pid", "supervisor"),
    "exits": ("time", "actor", "child_pid", "reason"),
    "restarts": ("time", "actor", "child_pid", "reason"),
    "threads": ("time", "started", "name", "parent", "gives_chain"),
    "custom": ("time", "name", "data"),
    "requests": ("time", "method", "path", "code", "duration"),
    "http": ("time", "method", "url", "attempt", "code", "duration", "location"),
    "websockets": ("time", "request", "path", "action", "size", "preview", "code"),
    "queries": ("time", "caller", "statement", "rows", "duration", "error", "location"),
    "transactions": ("time", "caller", "action", "open", "database", "error", "location"),
    "publishes": ("time", "from", "topic", "message", "pub_id"),
    "deliveries": ("time", "topic", "to", "pub_id"),
}


def fields_of(source: str) -> list[str]:
    """The fields a source's rows have, in catalogue order."""
    return [f.name for f in _FIELDS if source in f.sources]


def read_path(kind: str, value: Any, path: tuple[str | int, ...]) -> Any:
    """The part of a ``value``/``args``/``state``/``data`` field a path names (None if absent)."""
    if value is None or value is UNKNOWN or not path:
        return value
    if kind in ("args", "data"):  # values by name, each recorded as text
        found = value.get(path[0]) if isinstance(path[0], str) else None
        if isinstance(found, str):
            found = decode(found)
        return read_path("value", found, path[1:])
    if kind == "state":
        from elixirscope.state.nodes import PathError, node_at, to_plain

        try:
            return to_plain(node_at(value, path))
        except (PathError, TypeError):
            return None
    for step in path:
        value = step_into(value, step)
        if value is None:
            return None
    return value
