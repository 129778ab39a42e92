"""SQLAlchemy, recorded: Core and ORM, sync and async engines.

A statement SQLAlchemy runs on a driver ElixirScope records itself (sqlite3,
psycopg 3, sync engines) is recorded there, by that integration: its query with
the program's line (SQLAlchemy's frames are skipped like any library's), the
rows a SELECT gave, and the transactions the database really ran (sqlite3
begins one before a change, not before a read, so a request that only reads has
no ``tx`` events). That costs a request far less than SQLAlchemy's engine
events, which slow every statement once any listener exists (~24 µs a
``Session.get`` in TaskFlow, before any recording). The events' ``source`` is
the driver's integration (``sqlite3``, ``psycopg``) and ``database`` what the
driver was given (a file path, ``postgresql://user@host:port/db``).

Any other driver (aiosqlite, asyncpg, psycopg through the async engine, or a
driver whose integration is off) is recorded through SQLAlchemy's event API.
What is wrapped, exactly: nothing is replaced. :func:`enable` adds one
listener on the ``Pool`` class (every pool, existing and future):
``connect``, which decides, once for each new driver connection, who records
it: its driver's integration (then it is recorded there from now on) or
SQLAlchemy's events (kept in the pool record's ``info``; the driver's
connection behind an async adapter is muted in its driver's integration for
good). Nothing runs at a checkout or a checkin: what the pool itself runs on a
connection (its set-up, the pre-ping's ``SELECT 1``, the reset of a connection
given back) is known by the issuing line's walk, which meets the pool's frame
(``sqlalchemy.pool``) before any of the program's, and is not recorded (see
``db_common``). A connection pooled before :func:`enable` has no connect event:
one its driver's integration records stays recorded there; one behind an async
adapter is recorded by SQLAlchemy's events once another connection has turned
them on (its first statement they see decides it).

The first connection that needs SQLAlchemy's events adds these listeners on
the ``Engine`` class (so every engine, and every ``AsyncEngine``'s
``sync_engine``; statements on connections recorded at their driver are
skipped by them):

- ``before_cursor_execute`` / ``after_cursor_execute``: one ``query`` event
  per statement the driver runs (ORM flushes and loads included), with the
  SQL, parameters (redacted by default), ``cursor.rowcount`` when the driver
  knows it (for a SELECT through an async adapter, aiosqlite's or psycopg's, the
  rows the adapter fetched at once from its driver; else -1, unknown), the URL
  without its password, and the program's line (in async code, the ``await``'s).
  A statement on aiosqlite (the async SQLite driver, which runs each step in a thread
  of its own) lasts the time that thread spent on it: ``aiosqlite.core.Connection.
  _execute`` is wrapped, while the listeners are on, to add up its steps' times (the
  await around them also holds whatever else the event loop ran before it came back:
  another request's work is not the database's). Other async drivers' last the await;
- ``handle_error``: the failed statement as a ``query`` event with its error
  (the program then sees exactly the exception it would without ElixirScope);
- ``begin`` / ``commit`` / ``rollback`` (and a nested transaction's ``savepoint`` /
  ``release_savepoint`` / ``rollback_savepoint``): ``tx`` events, recorded when SQLAlchemy
  announces them, i.e. before the driver's commit or rollback runs: they have no
  duration, and a commit the driver then refuses is not marked failed (the
  program's exception says so; SQLAlchemy has no event after a commit). A
  commit's or rollback's ``open_ns`` is the transaction's own duration, from its
  ``begin`` (kept in the DBAPI connection's ``info``).

:func:`disable` removes the listeners (a connection its driver's integration records
stays recorded there). ``elixirscope run`` enables this when
the program imports ``sqlalchemy``, unless ``integrations.sqlalchemy = false``
(then a driver's integration records SQLAlchemy's statements as any other).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import Any

from elixirscope.integrations import db_common
from elixirscope.integrations.db_common import (
    QueryTimer,
    emit_query,
    emit_transaction,
)

__all__ = ["disable", "enable", "enabled"]

SOURCE = "sqlalchemy"
_TIMER = "_elixirscope_query"  # where a statement's timer waits in its execution context

_on = [False]
_engines_heard = [False]  # the Engine class's listeners are on
_listening: list[tuple[Any, str, Any]] = []
_WORKED = "_elixirscope_worked_ns"
"""An aiosqlite connection's attribute: the nanoseconds its thread has spent on its steps."""
_timed_driver: list[Any] = []  # aiosqlite's Connection class and its own _execute, while timed


def enabled() -> bool:
    return _on[0]


def enable() -> bool:
    """Decide per connection who records it; False if already enabled."""
    if _on[0]:
        return False
    from sqlalchemy.pool import Pool

    _listen([(Pool, "connect", _pool_connect)])
    _on[0] = True
    return True


def _listen(listeners: list[tuple[Any, str, Any]]) -> None:
    from sqlalchemy import event

    for target, name, fn in listeners:
        event.listen(target, name, fn)
        _listening.append((target, name, fn))


def _engine_events() -> None:
    """Listen on every engine: a connection no driver integration records is in use."""
    if _engines_heard[0]:
        return
    from sqlalchemy.engine import Engine

    _engines_heard[0] = True
    _time_aiosqlite()
    _listen(
        [
            (Engine, "before_cursor_execute", _before),
            (Engine, "after_cursor_execute", _after),
            (Engine, "handle_error", _error),
            (Engine, "begin", _begin),
            (Engine, "commit", _commit),
            (Engine, "rollback", _rollback),
            (Engine, "savepoint", _savepoint),
            (Engine, "rollback_savepoint", _rollback_savepoint),
            (Engine, "release_savepoint", _release_savepoint),
        ]
    )


def disable() -> bool:
    """Remove the listeners; False if not enabled."""
    if not _on[0]:
        return False
    from sqlalchemy import event

    _on[0] = False
    _engines_heard[0] = False
    if _timed_driver:
        driver, original = _timed_driver
        driver._execute = original
        _timed_driver.clear()
    while _listening:
        target, name, fn = _listening.pop()
        try:
            event.remove(target, name, fn)
        except Exception as exc:  # noqa: BLE001
            db_common.failed(exc)
    return True


# ---------------------------------------------------------------- aiosqlite's own time


def _time_aiosqlite() -> None:
    """Time each step aiosqlite's thread runs, on the connection it runs for (when
    aiosqlite is loaded: an async engine on it is what needs the Engine's listeners)."""
    core = sys.modules.get("aiosqlite.core")
    driver = getattr(core, "Connection", None)
    original = getattr(driver, "__dict__", {}).get("_execute")
    if original is None or _timed_driver:
        return

    async def _execute(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await original(self, _TimedStep(self, fn), *args, **kwargs)

    _execute.__wrapped__ = original  # type: ignore[attr-defined]
    driver._execute = _execute  # type: ignore[union-attr]
    _timed_driver[:] = [driver, original]


class _TimedStep:
    """One step of aiosqlite's (a cursor's execute, a fetch): run in its thread, its time
    added to its connection's (``_WORKED``; only that thread writes it)."""

    __slots__ = ("connection", "fn")

    def __init__(self, connection: Any, fn: Any) -> None:
        self.connection, self.fn = connection, fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter_ns()
        try:
            return self.fn(*args, **kwargs)
        finally:
            fields = self.connection.__dict__
            fields[_WORKED] = fields.get(_WORKED, 0) + time.perf_counter_ns() - started

    def __repr__(self) -> str:  # aiosqlite's debug log names the step
        return repr(self.fn)


class _WorkerTimer(QueryTimer):
    """A statement aiosqlite's thread ran: its duration is the time the thread spent on
    it, not the await's."""

    __slots__ = ("driver", "worked")

    def __init__(self, driver: Any) -> None:
        super().__init__()
        self.driver = driver
        self.worked = driver.__dict__.get(_WORKED, 0)

    def elapsed(self) -> int:
        return int(self.driver.__dict__.get(_WORKED, 0) - self.worked)


def _timer(conn: Any) -> QueryTimer:
    """A statement's timer: the time aiosqlite's thread spent on it, when it runs there."""
    if _timed_driver:
        adapted = getattr(conn.connection, "dbapi_connection", None)
        driver = getattr(adapted, "_connection", None)
        if type(driver) is _timed_driver[0]:
            return _WorkerTimer(driver)
    return QueryTimer()


# ---------------------------------------------------------------- listeners (never raise)


def _before(
    conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, many: bool
) -> None:
    try:
        if db_common.current() is not None and context is not None and not _at_driver(conn):
            setattr(context, _TIMER, _timer(conn))
    except Exception as exc:  # noqa: BLE001
        db_common.failed(exc)


def _after(
    conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, many: bool
) -> None:
    try:
        timer = getattr(context, _TIMER, None)
        rec = db_common.current()
        if timer is None or rec is None:
            return
        setattr(context, _TIMER, None)
        # "insertmanyvalues" (an ORM flush's INSERTs with RETURNING) runs one statement a
        # batch, its rows' values flattened into one parameter set, under the executemany flag
        many = many and _parameter_sets(parameters)
        rows = -1
        try:
            rows = cursor.rowcount
        except Exception:  # noqa: BLE001, S110 - some drivers have none: unknown
            pass
        if rows < 0 and not many:
            rows = _buffered_rows(cursor)
        system, database = _where(conn.engine)
        emit_query(
            rec, timer, SOURCE, system, database, statement, parameters, many=many, rows=rows
        )
    except Exception as exc:  # noqa: BLE001
        db_common.failed(exc)


def _parameter_sets(parameters: Any) -> bool:
    """``parameters`` is a sequence of parameter sets (what executemany runs), not one set."""
    return isinstance(parameters, (list, tuple)) and all(
        isinstance(p, (list, tuple, dict)) for p in parameters[:8]
    )


def _buffered_rows(cursor: Any) -> int:
    """The rows of a SELECT an async adapter's cursor (aiosqlite, psycopg's async) has
    already fetched from its driver, all of them, at ``execute``: its ``_rows``
    buffer; -1 (unknown) for any other cursor, or a server-side one."""
    try:
        buffered = getattr(cursor, "_rows", None)
        if type(buffered) is deque and not getattr(cursor, "server_side", True):
            return len(buffered)
    except Exception as exc:  # noqa: BLE001
        db_common.failed(exc)
    return -1


def _error(context: Any) -> None:
    """``handle_error`` gets an ExceptionContext; returning None leaves the error as it is."""
    try:
        rec = db_common.current()
        execution = context.execution_context
        timer = getattr(execution, _TIMER, None) if execution is not None else None
        if rec is None or timer is None or context.statement is None:
            return
        setattr(execution, _TIMER, None)
        engine = context.engine if context.engine is not None else context.connection.engine
        system, database = _where(engine)
        many = bool(getattr(execution, "executemany", False))
        emit_query(
            rec,
            timer,
            SOURCE,
            system,
            database,
            context.statement,
            context.parameters,
            many=many,
            error=context.original_exception,
        )
    except Exception as exc:  # noqa: BLE001
        db_common.failed(exc)


def _tx(conn: Any, action: str) -> None:
    try:
        rec = db_common.current()
        if rec is None or _at_driver(conn):
            return
        system, database = _where(conn.engine)
        # its begin kept in the DBAPI connection's ``info``, for the commit's open_ns
        emit_transaction(rec, None, SOURCE, system, database, action, conn=conn.info)
    except Exception as exc:  # noqa: BLE001
        db_common.failed(exc)


def _begin(conn: Any) -> None:
    _tx(conn, "begin")


def _commit(conn: Any) -> None:
    _tx(conn, "commit")


def _rollback(conn: Any) -> None:
    _tx(conn, "rollback")


def _savepoint(conn: Any, name: str) -> None:
    _tx(conn, "savepoint")


def _rollback_savepoint(conn: Any, name: str, context: Any) -> None:
    _tx(conn, "rollback_savepoint")


def _release_savepoint(conn: Any, name: str, context: Any) -> None:
    _tx(conn, "release_savepoint")


def _pool_connect(dbapi_connection: Any, connection_record: Any) -> None:
    """Decide who records a new driver connection (see the module doc): its driver's
    integration, un-muted now (the sqlite3 one muted it while SQLAlchemy set it up), or
    SQLAlchemy's events, the driver's connection behind an async adapter (``_connection``
    / ``_conn``) muted for good."""
    try:
        at_driver = _driver_integration_records(dbapi_connection)
        connection_record.info[_AT_DRIVER] = at_driver
        if at_driver:
            dbapi_connection._es_muted = False
            return
        _engine_events()
        seen = 0
        current = dbapi_connection
        while current is not None and seen < 4:
            if hasattr(type(current), "_es_muted"):
                current._es_muted = True
                return
            current = getattr(current, "_connection", None) or getattr(current, "_conn", None)
            seen += 1
    except Exception as exc:  # noqa: BLE001
        db_common.failed(exc)


_AT_DRIVER = "elixirscope_at_driver"
"""In a pool record's ``info`` (cleared by SQLAlchemy when it reconnects): whether its
connection's driver integration records it (else SQLAlchemy's events do)."""


def _driver_integration_records(dbapi_connection: Any) -> bool:
    """Whether an enabled driver integration records this very connection (not one
    behind an async adapter: its calls run in the adapter's own machinery)."""
    for name in ("elixirscope.integrations.sqlite", "elixirscope.integrations.psycopg"):
        module = sys.modules.get(name)
        if module is not None and module.records(dbapi_connection):
            return True
    return False


def _at_driver(conn: Any) -> bool:
    """Whether a SQLAlchemy ``Connection``'s statements are its driver's to record
    (decided here for a connection pooled before :func:`enable`)."""
    try:
        fairy = conn.connection
        info = fairy.info
        at_driver = info.get(_AT_DRIVER)
        if at_driver is None:
            at_driver = info[_AT_DRIVER] = _driver_integration_records(fairy.dbapi_connection)
        return bool(at_driver)
    except Exception:  # noqa: BLE001 - an invalidated connection: ours
        return False


def _where(engine: Any) -> tuple[str, str | None]:
    """(dialect name, URL without its password) of an engine (kept on the engine)."""
    place = engine.__dict__.get("_elixirscope_where")
    if place is None:
        url = engine.url
        place = (url.get_backend_name(), url.render_as_string(hide_password=True))
        engine._elixirscope_where = place
    return place
