"""SQLAlchemy, recorded through its event API: Core and ORM, sync and async engines.

What is wrapped, exactly: nothing is replaced. :func:`enable` adds listeners
on the ``Engine`` class (so every engine, existing and future, and every
``AsyncEngine``'s ``sync_engine``, which is an Engine):

- ``before_cursor_execute`` / ``after_cursor_execute``: one ``query`` event
  per statement the driver runs (ORM flushes and loads included), with the
  SQL, parameters (redacted by default), ``cursor.rowcount`` when the driver
  knows it, the URL without its password, and the program's line (in async
  code, the line of the ``await``). A SELECT on sqlite3, whose rowcount is -1,
  has the rows fetched from its cursor (SQLAlchemy fetches them as the program
  asks, a few ahead when it buffers): the sqlite3 integration wraps the
  connections SQLAlchemy opens to count them, without recording their
  statements itself, and the event is appended once they are known
  (``db_common``, "Rows of a SELECT"); other drivers whose rowcount is -1 for
  a SELECT (aiosqlite through SQLAlchemy's adapter) keep -1, unknown;
- ``handle_error``: the failed statement as a ``query`` event with its error
  (the program then sees exactly the exception it would without ElixirScope);
- ``begin`` / ``commit`` / ``rollback``: ``tx`` events, recorded when SQLAlchemy
  announces them, i.e. before the driver's commit or rollback runs: they have no
  duration, and a commit the driver then refuses is not marked failed (the
  program's exception says so; SQLAlchemy has no event after a commit). A
  commit's or rollback's ``open_ns`` is the transaction's own duration, from its
  ``begin`` (kept in the DBAPI connection's ``info``);
- the pool's ``connect``: marks the driver connection so the sqlite3
  integration does not record the same statements twice.

:func:`disable` removes the listeners. ``elixirscope run`` enables this when
the program imports ``sqlalchemy``, unless ``integrations.sqlalchemy = false``.
"""

from __future__ import annotations

import time
from typing import Any

from elixirscope.integrations import db_common
from elixirscope.integrations.db_common import (
    QueryTimer,
    emit_query,
    emit_transaction,
    start_query,
)

__all__ = ["disable", "enable", "enabled"]

SOURCE = "sqlalchemy"
_TIMER = "_elixirscope_query"  # where a statement's timer waits in its execution context

_on = [False]
_listening: list[tuple[Any, str, Any]] = []


def enabled() -> bool:
    return _on[0]


def enable() -> bool:
    """Listen on every engine; False if already enabled."""
    if _on[0]:
        return False
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    listeners: list[tuple[Any, str, Any]] = [
        (Engine, "before_cursor_execute", _before),
        (Engine, "after_cursor_execute", _after),
        (Engine, "handle_error", _error),
        (Engine, "begin", _begin),
        (Engine, "commit", _commit),
        (Engine, "rollback", _rollback),
        (Pool, "connect", _pool_connect),
    ]
    for target, name, fn in listeners:
        event.listen(target, name, fn)
        _listening.append((target, name, fn))
    _on[0] = True
    return True


def disable() -> bool:
    """Remove the listeners; False if not enabled."""
    if not _on[0]:
        return False
    from sqlalchemy import event

    _on[0] = False
    while _listening:
        target, name, fn = _listening.pop()
        try:
            event.remove(target, name, fn)
        except Exception as exc:  # noqa: BLE001
            db_common.failed(exc)
    return True


# ---------------------------------------------------------------- listeners (never raise)


def _before(
    conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, many: bool
) -> None:
    try:
        if db_common.current() is not None and context is not None:
            setattr(context, _TIMER, QueryTimer())
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
        rows = -1
        try:
            rows = cursor.rowcount
        except Exception:  # noqa: BLE001, S110 - some drivers have none: unknown
            pass
        system, database = _where(conn.engine)
        if rows < 0 and not many and getattr(cursor, "_es_counts", False):
            if cursor.description is not None:  # rows fetched later: the cursor counts them
                pending = start_query(rec, timer, SOURCE, system, database, statement, parameters)
                if pending is not None:
                    cursor._es_pending = pending
                return
        emit_query(
            rec, timer, SOURCE, system, database, statement, parameters, many=many, rows=rows
        )
    except Exception as exc:  # noqa: BLE001
        db_common.failed(exc)


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


_BEGAN = "elixirscope_tx_began"  # in the DBAPI connection's ``info``: when its transaction began


def _tx(conn: Any, action: str) -> None:
    try:
        rec = db_common.current()
        if rec is None:
            return
        system, database = _where(conn.engine)
        info = conn.info
        open_ns = 0
        if action == "begin":
            info[_BEGAN] = time.perf_counter_ns()
        else:
            began = info.pop(_BEGAN, None)
            if type(began) is int:
                open_ns = time.perf_counter_ns() - began
        emit_transaction(rec, None, SOURCE, system, database, action, open_ns=open_ns)
    except Exception as exc:  # noqa: BLE001
        db_common.failed(exc)


def _begin(conn: Any) -> None:
    _tx(conn, "begin")


def _commit(conn: Any) -> None:
    _tx(conn, "commit")


def _rollback(conn: Any) -> None:
    _tx(conn, "rollback")


def _pool_connect(dbapi_connection: Any, connection_record: Any) -> None:
    """Leave this connection's statements to us: mute it in the sqlite3 integration
    (through the async adapters' wrappers: ``_connection`` / ``_conn``)."""
    try:
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


def _where(engine: Any) -> tuple[str, str | None]:
    """(dialect name, URL without its password) of an engine (kept on the engine)."""
    place = engine.__dict__.get("_elixirscope_where")
    if place is None:
        url = engine.url
        place = (url.get_backend_name(), url.render_as_string(hide_password=True))
        engine._elixirscope_where = place
    return place
