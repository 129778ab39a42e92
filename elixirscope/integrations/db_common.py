"""What the database integrations share: the issuing line, safe text, and a guarded emit.

A query is recorded as one ``query`` event when it finishes (or fails), and a
transaction's begin/commit/rollback as ``tx`` events (``contracts.trace``),
under the context's correlation id and enclosing call, so a query sits in the
call tree of the function that ran it.

- *Who issued it*: :func:`issuing_frame` walks the stack out of the database
  libraries and ElixirScope (by module name: :data:`LIBRARY_MODULES`) to the
  program's line. Inside a greenlet (SQLAlchemy's asyncio layer runs the
  driver in one) it continues in the greenlet's parent, where the program's
  ``await`` is. It stops at an event loop or a server (:data:`RUNNER_MODULES`): a
  statement run in a task or request handling a library started (SQLAlchemy's
  ``AsyncSession`` ending its transaction in a task of its own, a framework's
  middleware) has no line, not that of whatever runs the loop or the server.
- *The pool's own work is not the program's*: a statement, commit or rollback
  run from SQLAlchemy's pool (``sqlalchemy.pool``: a connection's set-up, the
  pre-ping's ``SELECT 1``, the reset of a connection given back) is not
  recorded: the walk meets the pool's frame before any of the program's and
  says so (:data:`HOUSEKEEPING_PLACE`). A program's own function run from the
  pool (a ``connect`` listener of its own) is the program's. Django's own work
  on a connection is known the same way, by function (:data:`HOUSEKEEPING_FUNCTIONS`:
  a connection's set-up, its health check, the SQL log's quoting under ``DEBUG``).
- *Parameters* are redacted by default: each value is recorded as
  ``<redacted>`` (its shape — how many, their names — stays). With
  ``parameters="values"`` (config ``integrations.db_parameters``) values are
  shown through the redaction rules (``capture.redaction``: sensitive names,
  card numbers, tokens, ...); ``"none"`` leaves them out. The SQL text itself
  always passes through the text rules (``password = 'x'`` in a literal).
- *Rows of a SELECT*: a driver whose ``rowcount`` is -1 for a statement that
  returns rows (sqlite3) gives them later, as the program fetches them. Its
  ``query`` event is then a :class:`PendingQuery`: its envelope (id, time,
  thread, correlation, enclosing call) and duration are taken when the execute
  returns, exactly as any query's, and it is appended to the ring once its rows
  are known — the cursor exhausted, re-executed or closed, the cursor dropped,
  or the recording stopped — with the rows given until then. Readers see one
  event where it always was; it only reaches the ring later.
- *Never disturb the program*: every recording step is guarded; an error in
  it is counted in :data:`STATS` (``errors``, ``last_error``) and swallowed.
  The program's own exceptions are never caught here: callers re-raise them
  unchanged after recording.
"""

from __future__ import annotations

import os
import sys
import time
import weakref
from collections.abc import Mapping
from typing import Any

from elixirscope.capture import _select, recorder, session
from elixirscope.capture.redaction import (
    REDACTED,
    get_config,
    redact_mapping,
    redact_value,
    scrub,
)
from elixirscope.capture.values import safe_repr

__all__ = [
    "HOUSEKEEPING_PLACE",
    "LIBRARY_MODULES",
    "PARAMETER_MODES",
    "STATS",
    "PendingQuery",
    "QueryTimer",
    "emit_query",
    "emit_transaction",
    "error_text",
    "issuing_frame",
    "parameters_text",
    "record_query",
    "set_parameter_mode",
    "start_query",
    "statement_text",
    "transaction_action",
]

LIBRARY_MODULES = (
    "elixirscope",
    # drivers, and the ORMs and query builders over them
    "sqlite3",
    "_sqlite3",
    "sqlalchemy",
    "sqlmodel",
    "psycopg",
    "psycopg_binary",
    "psycopg_pool",
    "aiosqlite",
    "greenlet",
    "peewee",
    "playhouse",
    "pony",
    "tortoise",
    "databases",
    "sqlite_utils",
    # web frameworks between a view and the ORM (Django's ORM is ``django.db``)
    "django",
    "flask",
    "werkzeug",
    "starlette",
    "fastapi",
    "anyio",
    "asgiref",
    # the standard library's plumbing
    "asyncio",
    "contextlib",
    "functools",
    "threading",
    "concurrent",
    # HTTP clients, for an outgoing call's line (``integrations.outgoing``)
    "httpx",
    "httpcore",
    "h11",
    "requests",
    "urllib3",
    "http",
    "socket",
    "ssl",
)
"""Modules (and their submodules) whose frames are not the line that issued a query or an
outgoing HTTP call."""
HOUSEKEEPING_MODULE = "sqlalchemy.pool"
"""A module (with its submodules) whose frames are a pool's own work: what runs under
them, before any frame of the program's, is not recorded."""
HOUSEKEEPING_FUNCTIONS = frozenset(
    {
        # Django: a connection's set-up, lazily on a request's first query (SQLite's
        # PRAGMAs and function checks, PostgreSQL's time zone and role, the version check)
        "django.db.backends.base.base.BaseDatabaseWrapper.connect",
        # Django: the health check of a kept connection (PostgreSQL's SELECT 1)
        "django.db.backends.postgresql.base.DatabaseWrapper.is_usable",
        # Django's SQL log under DEBUG: SQLite quotes each query's parameters with a query
        "django.db.backends.sqlite3.operations.DatabaseOperations"
        "._quote_params_for_last_executed_query",
    }
)
"""Functions (``module.qualname``) whose frames are a library's own work on the connection,
as :data:`HOUSEKEEPING_MODULE`'s are: what runs under them is not the program's query."""
_HOUSEKEEPING = ("", HOUSEKEEPING_MODULE)
"""The place kept for a code of :data:`HOUSEKEEPING_MODULE` (known by identity)."""
RUNNER_MODULES = (
    # event loops: a callback's or a task's step starts in them
    "asyncio.events",
    "asyncio.base_events",
    "asyncio.runners",
    "uvloop",
    # servers: a request's handling starts in them
    "socketserver",
    "http.server",
    "wsgiref",
    "werkzeug.serving",
    "django.core.servers",
    "uvicorn",
    "gunicorn",
    "hypercorn",
    "daphne",
    "waitress",
)
"""Modules (with their submodules) that run the program's code from outside — event
loops and servers: a walk that meets one before any frame of the program's stops there,
with no line. The statement ran in a task, callback or request handling that a library
started (SQLAlchemy's ``AsyncSession`` ends its transaction in a task of its own, a
framework's middleware reads its session), and whatever runs the loop or the server (its
``asyncio.run``, ``serve_forever``) did not issue it."""
_RUNNER = ("", "<event loop or server>")
"""The place kept for a code of :data:`RUNNER_MODULES` (known by identity)."""
NO_PLACE: tuple[str | None, int, str | None] = (None, 0, None)
"""What :func:`issuing_frame` gives when no line of the program's issued the query."""
HOUSEKEEPING_PLACE: tuple[str | None, int, str | None] = (None, 0, HOUSEKEEPING_MODULE)
"""What :func:`issuing_frame` gives for a statement the pool runs (known by identity):
the emitting functions here record nothing for it."""

PARAMETER_MODES = ("redacted", "values", "none")
MAX_STATEMENT_CHARS = 8192
"""Longer SQL is cut here (marked ``…``); the recording keeps its start."""
MAX_PARAMETERS_CHARS = 1024

STATS: dict[str, Any] = {"recorded": 0, "errors": 0, "last_error": ""}
"""Events recorded by the database integrations, and recording errors swallowed."""

_mode = ["redacted"]
_code_places: dict[int, tuple[Any, tuple[str, str] | None]] = {}
"""``id(code)`` -> the code object and ``(file, module.function)`` if it is the program's,
None if a library's: a query's walk passes the same library frames every time. Keyed by
identity, not by the code object: a code object's hash is recomputed from its contents
at every lookup (3.11), several microseconds for a large library function; the entry
holds the code, so its id cannot be reused while cached."""


def set_parameter_mode(mode: str) -> None:
    """``redacted`` (default), ``values`` (through the redaction rules) or ``none``."""
    if mode not in PARAMETER_MODES:
        raise ValueError(
            f"Expected one of {', '.join(PARAMETER_MODES)}, got {mode!r} - at "
            "integrations.db_parameters"
        )
    _mode[0] = mode


def failed(exc: BaseException) -> None:
    """A recording step failed: counted, never raised."""
    STATS["errors"] += 1
    STATS["last_error"] = f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------- who issued it


def _code_place(code: Any, frame: Any) -> tuple[str, str] | None:
    """Where ``code`` (running in ``frame``) is, if the program's; None if a library's."""
    module = frame.f_globals.get("__name__") or ""
    head = module.partition(".")[0]
    if _within(module, HOUSEKEEPING_MODULE) or (
        head == "django" and f"{module}.{code.co_qualname}" in HOUSEKEEPING_FUNCTIONS
    ):
        place: tuple[str, str] | None = _HOUSEKEEPING
    elif any(_within(module, runner) for runner in RUNNER_MODULES):
        place = _RUNNER
    # the bundled example programs are programs, not ElixirScope
    elif head in LIBRARY_MODULES and not module.startswith("elixirscope.examples"):
        place = None
    else:
        place = (code.co_filename, f"{module}.{code.co_qualname}")
    if len(_code_places) > 50_000:
        _code_places.clear()
    _code_places[id(code)] = (code, place)
    return place


def _within(module: str, package: str) -> bool:
    """Whether ``module`` is ``package`` or one of its submodules."""
    return module.startswith(package) and (
        len(module) == len(package) or module[len(package)] == "."
    )


def _walk_known(frame: Any, places: dict[int, tuple[Any, Any]]) -> tuple[Any, Any] | None:
    """From ``frame`` outwards, the first frame whose code is not known as a library's,
    with its entry in ``places`` (or None); None at the stack's end. (The C accelerator
    has the same walk: ``_speedups.walk_known``.)"""
    while frame is not None:
        code = frame.f_code
        entry = places.get(id(code))
        if entry is None or entry[0] is not code or entry[1] is not None:
            return frame, entry
        frame = frame.f_back
    return None


_speedups = _select.speedups()
_walk = _walk_known if _speedups is None else _speedups.walk_known


def issuing_frame(depth: int = 1) -> tuple[str | None, int, str | None]:
    """``(file, line, module.function)`` of the program's line that issued the query,
    or :data:`NO_PLACE` when every frame up to the stack's end, an event loop or a
    server (:data:`RUNNER_MODULES`) is a library's, or :data:`HOUSEKEEPING_PLACE`
    when the pool's frame comes before any of the program's. ``depth``: the frame to start
    from, as ``sys._getframe`` counts here (1: the caller's); a caller that knows the
    frames above it are ElixirScope's starts further out, as each frame the walk passes
    is made into a frame object (about 0.1 µs each; ``sys._getframe`` makes one)."""
    try:
        frame: Any = sys._getframe(depth)
    except ValueError:  # a shallower stack than the caller thought (called from C)
        frame = sys._getframe(1)
    places = _code_places
    walk = _walk
    hops = 0
    while hops < 4:
        while frame is not None:
            found = walk(frame, places)
            if found is None:
                break
            frame, entry = found
            code = frame.f_code
            place = entry[1] if entry is not None and entry[0] is code else _code_place(code, frame)
            if place is not None:
                if place is _HOUSEKEEPING:
                    return HOUSEKEEPING_PLACE
                if place is _RUNNER:  # a loop or server runs it: no line of the program's
                    return NO_PLACE
                return place[0], frame.f_lineno, place[1]
            frame = frame.f_back
        frame = _greenlet_parent_frame(hops)
        if frame is None:
            break
        hops += 1
    return NO_PLACE


def _greenlet_parent_frame(depth: int) -> Any:
    """The frame where the current greenlet's ``depth``-th ancestor switched away."""
    greenlet = sys.modules.get("greenlet")
    if greenlet is None:
        return None
    current = greenlet.getcurrent()
    for _ in range(depth + 1):
        current = getattr(current, "parent", None)
        if current is None:
            return None
    return getattr(current, "gr_frame", None)


# ---------------------------------------------------------------- safe text


_statements: dict[str, str] = {}  # SQL -> its recorded text, under the rules in force
_statements_under: list[Any] = [None]  # the redaction config those texts were made under
MAX_CACHED = 4096


def statement_text(sql: Any) -> str:
    """The SQL as recorded: text rules applied, bounded (a program runs the same
    statements again and again: their texts are remembered)."""
    if type(sql) is str:
        rules = get_config()
        if _statements_under[0] is not rules:
            _statements.clear()
            _statements_under[0] = rules
        text = _statements.get(sql)
        if text is None:
            text = _statement_text(sql)
            if len(_statements) < MAX_CACHED:
                _statements[sql] = text
        return text
    return _statement_text(sql)


def _statement_text(sql: Any) -> str:
    if type(sql) is bytes:
        sql = sql.decode("utf-8", "replace")
    elif type(sql) is not str:
        sql = safe_repr(sql, MAX_STATEMENT_CHARS)
    if len(sql) > MAX_STATEMENT_CHARS:
        sql = sql[:MAX_STATEMENT_CHARS] + "…"
    return scrub(sql)


def parameters_text(params: Any, many: bool = False) -> str | None:
    """The parameters as recorded (see the module doc); None when there are none.
    ``many``: ``params`` is executemany's sequence of parameter sets (its first is shown)."""
    mode = _mode[0]
    if mode == "none" or params is None:
        return None
    if mode == "redacted" and not many:
        kind = type(params)
        if kind is tuple or kind is list:  # the usual case, without building anything
            text = _shapes.get((len(params), kind is tuple), "")
            return _redacted_sequence(len(params), kind is tuple) if text == "" else text
    if many:
        first = _first(params)
        if first is None:
            return None
        params = first
    if isinstance(params, Mapping):
        if not params:
            return None
        if mode == "redacted":
            shown: Any = dict.fromkeys(params, _Redacted())
        else:
            shown = redact_mapping(params)
    elif isinstance(params, (list, tuple)):
        if not params:
            return None
        if mode == "redacted":
            shown = [_Redacted()] * len(params)
        else:
            shown = [redact_value(v) for v in params]
        shown = tuple(shown) if type(params) is tuple else shown
    else:
        shown = REDACTED if mode == "redacted" else redact_value(params)
    if mode == "redacted":
        return _redacted_text(shown)
    return safe_repr(shown, MAX_PARAMETERS_CHARS)


_shapes: dict[tuple[int, bool], str | None] = {}


def _redacted_sequence(n: int, is_tuple: bool) -> str | None:
    """``(<redacted>, <redacted>)`` for a tuple of two, ``[<redacted>]`` for a list of one."""
    text = _shapes.get((n, is_tuple), "")
    if text == "":
        if n == 0:
            text = None
        else:
            inner = ", ".join([REDACTED] * n)
            text = f"({inner}{',' if n == 1 else ''})" if is_tuple else f"[{inner}]"
        if n < 256:
            _shapes[(n, is_tuple)] = text
    return text


class _Redacted:
    __slots__ = ()


def _redacted_text(shown: Any) -> str:
    if isinstance(shown, dict):
        return "{" + ", ".join(f"{_key_text(k)}: {REDACTED}" for k in shown) + "}"
    if isinstance(shown, (list, tuple)):
        inner = ", ".join([REDACTED] * len(shown))
        return (
            f"({inner}{',' if len(shown) == 1 else ''})" if type(shown) is tuple else f"[{inner}]"
        )
    return REDACTED


def _key_text(key: Any) -> str:
    """A parameter's name as a str's repr, also when a driver's is a str subclass
    (SQLAlchemy's ``_truncated_label('books_id')``): its text, not its class."""
    if isinstance(key, str):
        return safe_repr(str.__str__(key), 80)
    return safe_repr(key, 80)


def _first(seq: Any) -> Any:
    if isinstance(seq, (list, tuple)):
        return seq[0] if seq else None
    return None  # an iterator: reading it would take it from the driver


def many_count(seq: Any) -> int:
    """How many parameter sets an executemany ran (-1: an iterator, unknown)."""
    return len(seq) if isinstance(seq, (list, tuple)) else -1


def error_text(exc: BaseException) -> str:
    """``Type: message``, redacted and bounded (a driver's message may quote values)."""
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break recording
        message = "<unprintable>"
    if len(message) > 2000:
        message = message[:2000] + "…"
    return f"{type(exc).__name__}: {scrub(message)}"


_TX_WORDS = {
    "BEGIN": "begin",
    "START": "begin",
    "COMMIT": "commit",
    "END": "commit",
    "ROLLBACK": "rollback",
}


_actions: dict[str, str | None] = {}


def transaction_action(sql: Any) -> str | None:
    """``begin``/``commit``/``rollback`` for a statement that is one, ``savepoint`` /
    ``release_savepoint`` / ``rollback_savepoint`` for a savepoint's (``SAVEPOINT x``,
    ``RELEASE [SAVEPOINT] x``, ``ROLLBACK [TRANSACTION] TO [SAVEPOINT] x``), else None."""
    if type(sql) is not str:
        return None
    try:
        return _actions[sql]
    except KeyError:
        action = _transaction_action(sql)
    if len(_actions) < MAX_CACHED:
        _actions[sql] = action
    return action


def _transaction_action(sql: str) -> str | None:
    words = sql.lstrip(" \t\r\n(").split(None, 3)
    if not words:
        return None
    first = words[0].upper().rstrip(";")
    if first in ("SAVEPOINT", "RELEASE"):
        return ("savepoint" if first == "SAVEPOINT" else "release_savepoint") if words[1:] else None
    action = _TX_WORDS.get(first)
    if action == "rollback":
        after = [w.upper() for w in words[1:3]]
        if after[:1] == ["TRANSACTION"]:
            after = after[1:]
        if after[:1] == ["TO"]:
            return "rollback_savepoint"
    if action == "begin" and words[0].upper() == "START":
        if len(words) < 2 or words[1].upper().rstrip(";") != "TRANSACTION":
            return None
    return action


# ---------------------------------------------------------------- emitting


class QueryTimer:
    """A query in flight: who issued it (:func:`issuing_frame`) and when it started,
    taken before it runs (``place`` and ``started`` given: taken by the caller)."""

    __slots__ = ("place", "started")

    def __init__(self, place: tuple[str | None, int, str | None] | None = None, started: int = 0):
        self.place = issuing_frame() if place is None else place
        self.started = started or time.perf_counter_ns()

    def elapsed(self) -> int:
        """The query's duration, now that it has ended (a timer of a driver that knows
        better says the time its database worked: ``integrations.sqlalchemy``)."""
        return time.perf_counter_ns() - self.started


def emit_query(
    rec: Any,
    timer: QueryTimer,
    source: str,
    system: str,
    database: str | None,
    statement: Any,
    parameters: Any,
    *,
    many: bool = False,
    rows: int = -1,
    error: BaseException | None = None,
) -> None:
    """Record one finished query (never raises)."""
    try:
        duration = timer.elapsed()
    except Exception as exc:  # noqa: BLE001
        failed(exc)
        duration = time.perf_counter_ns() - timer.started
    record_query(
        rec,
        timer.place,
        timer.started,
        source,
        system,
        database,
        statement,
        parameters,
        many,
        rows,
        error,
        duration,
    )


def record_query(
    rec: Any,
    place: tuple[str | None, int, str | None],
    started: int,
    source: str,
    system: str,
    database: str | None,
    statement: Any,
    parameters: Any,
    many: bool = False,
    rows: int = -1,
    error: BaseException | None = None,
    duration: int | None = None,
) -> None:
    """:func:`emit_query` for a caller that took the issuing line and start itself (the
    sqlite3 cursor: no timer object a query); ``duration`` when known, else from
    ``started`` to now. Never raises."""
    if place is HOUSEKEEPING_PLACE:
        return
    try:
        if duration is None:
            duration = time.perf_counter_ns() - started
        file, line, caller = place
        rec.emit(
            "query",
            system,
            database,
            statement_text(statement),
            parameters_text(parameters, many),
            duration,
            rows if type(rows) is int and rows >= 0 else -1,
            file,
            line,
            caller,
            None if error is None else error_text(error),
            source,
            max(many_count(parameters), 0) if many else 0,
        )
        STATS["recorded"] += 1
    except Exception as exc:  # noqa: BLE001
        failed(exc)


class PendingQuery(weakref.ref):
    """A query whose rows are still being fetched (see the module doc): the cursor adds
    to ``rows`` as it gives them and calls :meth:`finish` once they are known (also
    done when the cursor is dropped, or by :func:`finish_pending`).

    It is a weak reference to its cursor, whose callback finishes it when the cursor
    goes: one object a query, no ``__del__``, held in :data:`_pending` until finished."""

    __slots__ = ("after", "before", "rec", "rows")
    # a waiting query is itself, not its cursor (a weak reference compares its referents)
    __hash__ = object.__hash__
    __eq__ = object.__eq__

    rec: Any
    # the envelope and the fields before ``rows``; None once recorded
    before: tuple[Any, ...] | None
    after: tuple[Any, ...]  # the fields after ``rows``
    rows: int

    def finish(self) -> None:
        """Record the query with the rows given so far (once; never raises)."""
        before = self.before
        if before is None:
            return
        self.before = None
        try:
            _pending.discard(self)
            self.rec.ring.append((*before, self.rows, *self.after))
            STATS["recorded"] += 1
        except Exception as exc:  # noqa: BLE001
            failed(exc)


def _cursor_dropped(pending: PendingQuery) -> None:
    try:
        pending.finish()
    except Exception:  # noqa: BLE001, S110 - at interpreter exit anything may be gone
        pass


_pending: set[PendingQuery] = set()
"""The queries waiting for their rows (each leaves when recorded): :func:`finish_pending`
records them; holding them keeps their callbacks alive for their cursors' going."""


def start_query(
    rec: Any,
    cursor: Any,
    place: tuple[str | None, int, str | None],
    started: int,
    source: str,
    system: str,
    database: str | None,
    statement: Any,
    parameters: Any,
) -> PendingQuery | None:
    """A query that returned rows the driver has not counted (issued at ``place``,
    started at ``started``): its event as :func:`record_query` would record it now, held
    until :meth:`PendingQuery.finish` gives its rows, at the latest when ``cursor`` goes.
    None if that failed (then it is recorded now, rows unknown), or if the pool runs it."""
    if place is HOUSEKEEPING_PLACE:
        return None
    try:
        duration = time.perf_counter_ns() - started
        text = statement_text(statement)
        shown = parameters_text(parameters)
        pending = PendingQuery(cursor, _cursor_dropped)
        # tuples joined with + (one copy each), not unpacked into new ones
        pending.before = rec.envelope("query") + (system, database, text, shown, duration)
        pending.after = place + (None, source, 0)
        pending.rec = rec
        pending.rows = 0
        _pending.add(pending)
        return pending
    except Exception as exc:  # noqa: BLE001
        failed(exc)
    record_query(rec, place, started, source, system, database, statement, parameters)
    return None


def finish_pending() -> None:
    """Record every query still waiting for its rows, with the rows given so far: the
    recording stops (its events are shipped next)."""
    for pending in list(_pending):
        pending.finish()


def _forget_pending_in_child() -> None:
    """A forked child's copies of its parent's waiting queries are the parent's to record
    (the child's ring is not their recorder's)."""
    for pending in list(_pending):
        pending.before = None
    _pending.clear()


session.before_stop(finish_pending)
os.register_at_fork(after_in_child=_forget_pending_in_child)


def emit_transaction(
    rec: Any,
    timer: QueryTimer | None,
    source: str,
    system: str,
    database: str | None,
    action: str,
    error: BaseException | None = None,
    conn: Any = None,
    began_ns: int | None = None,
    place: tuple[str | None, int, str | None] | None = None,
) -> None:
    """Record a begin/commit/rollback, or a savepoint's step (``timer`` None: begun implicitly, no duration;
    ``place``: the line of the statement that began it, if its caller has it).
    ``conn``: the driver connection, or a dict kept for it, which holds when its
    transaction began (``began_ns``: the start of the statement that began it
    implicitly, else the start of the begin itself), so that a commit's or
    rollback's ``open_ns`` says how long the transaction was open (0: unknown).
    Nothing is recorded when the pool runs it (:data:`HOUSEKEEPING_PLACE`; its
    transaction's begin or end is still kept)."""
    if timer is None and place is None:
        place = issuing_frame()
    open_ns = 0
    if conn is not None:
        try:
            if began_ns is None:
                began_ns = timer.started if timer is not None else time.perf_counter_ns()
            kept = conn if type(conn) is dict else vars(conn)
            open_ns = _open_for(kept, action, error, began_ns)
        except Exception as exc:  # noqa: BLE001 - the event is still recorded, open unknown
            failed(exc)
    if (timer.place if timer is not None else place) is HOUSEKEEPING_PLACE:
        return
    try:
        if timer is None:
            file, line, caller = place  # type: ignore[misc]
            duration = 0
        else:
            (file, line, caller), duration = timer.place, timer.elapsed()
        rec.emit(
            "tx",
            system,
            database,
            action,
            duration,
            file,
            line,
            caller,
            None if error is None else error_text(error),
            source,
            open_ns,
        )
        STATS["recorded"] += 1
    except Exception as exc:  # noqa: BLE001
        failed(exc)


_BEGAN = "_es_began"  # kept for a connection: when its open transaction began


def _open_for(kept: dict, action: str, error: BaseException | None, began_ns: int) -> int:
    """For a commit or rollback, how long the transaction whose begin is in ``kept``
    was open (0 if its begin was not seen); a begin is kept there. A failed end leaves
    the begin as it was: the database may still hold the transaction open."""
    if action == "begin":
        if error is None:
            kept[_BEGAN] = began_ns
        return 0
    if action not in ("commit", "rollback"):
        return 0  # a savepoint's step: the transaction goes on
    now = time.perf_counter_ns()
    began = kept.get(_BEGAN)
    if type(began) is not int:
        return 0
    if error is None:
        del kept[_BEGAN]
    return now - began


current = recorder.recording
"""The process Recorder while recording is on (and this context's request was not
left out by the sampler), else None: ``recorder.recording`` itself (one call less a
query)."""
