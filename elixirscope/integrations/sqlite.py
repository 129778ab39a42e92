"""sqlite3, recorded: every statement and transaction of connections opened while enabled.

What is wrapped, exactly: :func:`enable` replaces ``sqlite3.connect`` (the
same function as ``sqlite3.dbapi2.connect``) with one that calls the original
with ``factory=`` a subclass of the factory asked for (``sqlite3.Connection``
unless the program gave its own). That subclass records:

- ``execute``, ``executemany``, ``executescript`` (its own, and those of every
  cursor it makes: ``cursor(factory)`` gets a recording subclass of
  ``factory`` too) as ``query`` events: SQL, parameters (redacted by
  default, see ``db_common``), ``rows``, the database path, the issuing line,
  the error. ``rows`` is ``cursor.rowcount`` (rows changed by
  INSERT/UPDATE/DELETE) for a statement that returns none; sqlite3's rowcount
  is -1 for one that does (a SELECT, or RETURNING), whose rows come as the
  program fetches them, so the cursor counts them as it gives them:
  ``fetchall`` and ``fetchmany`` by the length of what they return,
  ``fetchone`` and iteration one by one (a Python call per row: about 130 and
  180 ns of CPU, ``scripts/bench_db.py``). The event is taken when the execute
  returns (its id, time, enclosing call and duration are the execute's) and is
  recorded once the rows are known: all given (a fetch that comes back
  short), the cursor closed, re-executed or dropped, or the recording stopped
  — with the rows given until then (``db_common``, "Rows of a SELECT");
- transactions as ``tx`` events: the implicit ``BEGIN`` sqlite3 issues before a
  change (seen as ``in_transaction`` turning true), ``BEGIN``/``COMMIT``/
  ``ROLLBACK`` statements, and ``commit()``/``rollback()`` that end one (also
  from ``with connection:``).

A connection factory that overrides any of those methods itself is left as it
is, unrecorded (counted in ``db_common.STATS["not_wrapped"]``): its own methods'
signatures and behaviour are its business. A cursor factory with its own
``execute``/``executemany``/``executescript`` (Django's converts its ``%s``
placeholders there) gets the recording class *under* it: its method runs as it
is, and what its ``super()`` call hands sqlite3 is recorded (a method of its own
that calls sqlite3's directly, not through ``super()``, is not). A cursor
factory with its own ``fetchone``/``fetchmany``/``fetchall``/``__next__``/``close``
is recorded, but its SELECTs' rows are not counted (-1): one of them may call
another, and counting both would be wrong.

Nothing else changes: the same arguments reach the same C methods, results and
exceptions come back as they are (an exception is recorded, then re-raised
unchanged), and ``isinstance(conn, sqlite3.Connection)`` still holds (only
``type(conn) is sqlite3.Connection`` does not). Not wrapped: connections made
before :func:`enable`, by ``from sqlite3 import connect`` done before it, and by
ElixirScope itself (its event store). Those SQLAlchemy opens while its own
integration is on are wrapped but muted while SQLAlchemy sets them up; a sync
engine's are then recorded here like any other (see the SQLAlchemy integration),
an async adapter's (aiosqlite) stay muted: SQLAlchemy's events record those.
:func:`disable` puts the original ``connect`` back; wrapped connections then
stop recording.

``elixirscope run`` enables this when the program imports ``sqlite3``, unless
``integrations.sqlite3 = false``.

With the C accelerator, the connection's ``cursor``, ``commit`` and ``rollback`` and
the cursor's ``execute``, ``fetchone``, ``fetchall`` and ``close`` are C functions
bound as methods (``_speedups.sqlite_execute``, ...): no Python frame between the
program and sqlite3, the same steps (a statement that is no transaction statement
recorded in C, every other case left to the Python functions here);
``tests/integrations/test_db_select_rows.py`` runs against both
(:data:`_PYTHON_METHODS` are the Python ones).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from typing import Any

from elixirscope.capture import _select, recorder, redaction
from elixirscope.integrations import db_common
from elixirscope.integrations.db_common import (
    QueryTimer,
    emit_transaction,
    issuing_frame,
    record_query,
    start_query,
)

__all__ = ["disable", "enable", "enabled"]

SYSTEM = "sqlite"
SOURCE = "sqlite3"

_on = [False]
_original_connect: Any = None


def enabled() -> bool:
    return _on[0]


def records(connection: Any) -> bool:
    """Whether this integration records ``connection``'s statements once un-muted."""
    return _on[0] and isinstance(connection, _ConnectionMixin)


def enable() -> bool:
    """Wrap connections opened from now on; False if already enabled."""
    global _original_connect
    if _on[0]:
        return False
    if _original_connect is None:
        _original_connect = sqlite3.connect
    sqlite3.connect = _connect
    sqlite3.dbapi2.connect = _connect
    _on[0] = True
    return True


def disable() -> bool:
    """Put ``sqlite3.connect`` back; False if not enabled."""
    if not _on[0]:
        return False
    _on[0] = False
    if sqlite3.connect is _connect:
        sqlite3.connect = _original_connect
    if sqlite3.dbapi2.connect is _connect:
        sqlite3.dbapi2.connect = _original_connect
    return True


def _connect(*args: Any, **kwargs: Any) -> Any:
    """``sqlite3.connect`` with a recording factory (see the module doc)."""
    original = _original_connect
    opener = None
    try:
        opener = _opener() if _on[0] else "off"
        if opener != "elixirscope" and opener != "off":
            if len(args) > 5:
                factory = args[5]
                args = (*args[:5], _recording_factory(factory), *args[6:])
            else:
                factory = kwargs.get("factory", sqlite3.Connection)
                kwargs = {**kwargs, "factory": _recording_factory(factory)}
    except Exception as exc:  # noqa: BLE001 - then the connection is simply not recorded
        db_common.failed(exc)
    connection = original(*args, **kwargs)
    if isinstance(connection, _ConnectionMixin):
        try:
            database = args[0] if args else kwargs.get("database")
            connection._es_database = _database_text(database)
            if opener == "sqlalchemy":
                connection._es_muted = True  # until its pool's connect event decides
        except Exception as exc:  # noqa: BLE001
            db_common.failed(exc)
    return connection


def _opener() -> str | None:
    """``elixirscope`` for ElixirScope's own store (never recorded: it would record its
    own writes), ``sqlalchemy`` for a connection SQLAlchemy opens while its integration
    is on (muted until SQLAlchemy's pool has set it up: its connect event decides who
    records it), else None."""
    frame: Any = sys._getframe(2)  # connect's caller
    module = frame.f_globals.get("__name__") or "" if frame is not None else ""
    if module.startswith("elixirscope") and not module.startswith("elixirscope.examples"):
        return "elixirscope"
    if not _sqlalchemy_records():
        return None
    depth = 0
    while frame is not None and depth < 40:
        if (frame.f_globals.get("__name__") or "").startswith("sqlalchemy"):
            return "sqlalchemy"
        frame = frame.f_back
        depth += 1
    return None


def _sqlalchemy_records() -> bool:
    module = sys.modules.get("elixirscope.integrations.sqlalchemy")
    return module is not None and module.enabled()


def _database_text(database: Any) -> str | None:
    if database is None:
        return None
    if isinstance(database, bytes):
        return os.fsdecode(database)
    return db_common.statement_text(os.fspath(database))


# ---------------------------------------------------------------- recording classes

_factories: dict[type, type] = {}
_cursors: dict[type, type] = {}


_CONNECTION_METHODS = (
    "cursor",
    "execute",
    "executemany",
    "executescript",
    "commit",
    "rollback",
    "__exit__",
)
_CURSOR_METHODS = ("execute", "executemany", "executescript")
_FETCH_METHODS = ("fetchone", "fetchmany", "fetchall", "__next__", "close")


def _overrides(factory: type, base: type, names: tuple[str, ...]) -> bool:
    return any(getattr(factory, name, None) is not getattr(base, name) for name in names)


def _recording_factory(factory: Any) -> Any:
    if not isinstance(factory, type) or not issubclass(factory, sqlite3.Connection):
        return factory  # something else that makes connections: left as it is
    if issubclass(factory, _ConnectionMixin):
        return factory
    if _overrides(factory, sqlite3.Connection, _CONNECTION_METHODS):
        db_common.STATS["not_wrapped"] = db_common.STATS.get("not_wrapped", 0) + 1
        return factory  # its own methods: wrapping them could change what they do
    made = _factories.get(factory)
    if made is None:
        made = _factories[factory] = type(
            factory.__name__, (_ConnectionMixin, factory), {"__module__": factory.__module__}
        )
    return made


def _recording_cursor(factory: Any) -> Any:
    if type(factory) is type:  # a plain class (its hash is type's): made before, most often
        made = _cursors.get(factory)
        if made is not None:
            return made
    if not isinstance(factory, type) or not issubclass(factory, sqlite3.Cursor):
        return factory
    if issubclass(factory, _CursorMixin):
        return factory
    made = _cursors.get(factory)
    if made is None:
        # a factory with its own fetching (one may call another): its SELECTs' rows unknown
        counts = not _overrides(factory, sqlite3.Cursor, _FETCH_METHODS)
        if _overrides(factory, sqlite3.Cursor, _CURSOR_METHODS):
            # its own execute (Django's converts its SQL): ours under it, where its
            # super().execute goes - what reaches sqlite3 is recorded, its code runs as is
            bases: tuple[type, ...] = (factory, _UnderCounting if counts else _UnderCursor)
        else:
            bases = (_Counting if counts else _CursorMixin, factory)
        try:
            made = type(factory.__name__, bases, {"__module__": factory.__module__})
        except TypeError:  # a class that cannot be subclassed, or not together with ours
            db_common.STATS["not_wrapped"] = db_common.STATS.get("not_wrapped", 0) + 1
            return factory
        _cursors[factory] = made
    return made


def _recording(connection: Any) -> Any:
    """The Recorder if this connection's statements are recorded now, else None (a
    connection not made here, met through a recording cursor class, is not recorded)."""
    if _on[0] and not getattr(connection, "_es_muted", True):
        return db_common.current()
    return None


# sqlite3's own methods, called directly by the recording classes instead of through
# super() (a super object and a bound method a call): a factory that has its own of any of
# them is not wrapped (_overrides), so these are the ones super() would find
_cursor: Any = sqlite3.Connection.cursor
_commit: Any = sqlite3.Connection.commit
_rollback: Any = sqlite3.Connection.rollback
_exit: Any = sqlite3.Connection.__exit__
_execute: Any = sqlite3.Cursor.execute
_executemany: Any = sqlite3.Cursor.executemany
_executescript: Any = sqlite3.Cursor.executescript
_fetchone: Any = sqlite3.Cursor.fetchone
_fetchmany: Any = sqlite3.Cursor.fetchmany
_fetchall: Any = sqlite3.Cursor.fetchall
_next: Any = sqlite3.Cursor.__next__
_close: Any = sqlite3.Cursor.close
_now = time.perf_counter_ns


class _ConnectionMixin:
    """Mixed in before the connection factory: see the module doc."""

    _es_database: str | None = None
    _es_muted = False

    def cursor(self, factory: Any = sqlite3.Cursor) -> Any:
        made = _default_cursor if factory is sqlite3.Cursor else _recording_cursor(factory)
        return _cursor(self, made)

    def execute(self, sql: Any, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: Any, parameters: Any, /) -> Any:
        return self.cursor().executemany(sql, parameters)

    def executescript(self, script: Any, /) -> Any:
        return self.cursor().executescript(script)

    def commit(self) -> None:
        self._es_end("commit", _commit)

    def rollback(self) -> None:
        self._es_end("rollback", _rollback)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        action = "commit" if exc_type is None else "rollback"
        return self._es_end(action, _exit, exc_type, exc, tb)

    def _es_end(self, action: str, method: Any, *args: Any) -> Any:
        """``method(self, *args)``, recorded as ``action`` if it ends an open transaction
        (none open, the usual case of a pool's reset: not even asked whether recording)."""
        try:
            ends = self.in_transaction  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - a closed connection: the method says so
            ends = False
        rec = _recording(self) if ends else None
        if rec is None:
            return method(self, *args)
        timer = QueryTimer()
        try:
            result = method(self, *args)
        except BaseException as exc:
            emit_transaction(rec, timer, SOURCE, SYSTEM, self._es_database, action, exc, conn=self)
            raise
        emit_transaction(rec, timer, SOURCE, SYSTEM, self._es_database, action, conn=self)
        return result


class _CursorMixin:
    """Mixed in before the cursor factory: each execute recorded (see the module doc)."""

    _es_counts = False  # gives the rows it fetches to ``_es_pending`` (see _Counting)
    _es_pending: db_common.PendingQuery | None = None

    def execute(self, sql: Any, parameters: Any = (), /) -> Any:
        if self._es_pending is not None:
            _settle(self)
        conn = self.connection  # type: ignore[attr-defined]
        rec = _recording(conn)
        if rec is None:
            return _execute(self, sql, parameters)
        return _run(self, conn, rec, _execute, sql, parameters, False)

    def executemany(self, sql: Any, parameters: Any, /) -> Any:
        if self._es_pending is not None:
            _settle(self)
        conn = self.connection  # type: ignore[attr-defined]
        rec = _recording(conn)
        if rec is None:
            return _executemany(self, sql, parameters)
        return _run(self, conn, rec, _executemany, sql, parameters, True)

    def executescript(self, script: Any, /) -> Any:
        if self._es_pending is not None:
            _settle(self)
        conn = self.connection  # type: ignore[attr-defined]
        rec = _recording(conn)
        if rec is None:
            return _executescript(self, script)
        return _run(self, conn, rec, _executescript, script, None, False)


class _Counting(_CursorMixin):
    """A cursor that counts the rows of its SELECT as it gives them (``fetchall`` and
    ``fetchmany`` by their length; ``fetchone`` and iteration one by one) into the
    query waiting for them, and finishes it when they are all given (a fetch that
    comes back short) or the cursor is closed or runs another statement."""

    _es_counts = True

    # arguments are passed on as given (a wrong call fails as it would without us), but
    # fetchone, called per row, takes none (a wrong call still fails, its message names
    # this method)
    def fetchone(self) -> Any:
        row = _fetchone(self)
        pending = self._es_pending
        if pending is not None:
            if row is None:
                self._es_pending = None
                pending.finish()
            else:
                pending.rows += 1
        return row

    def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        rows = _fetchmany(self, *args, **kwargs)
        pending = self._es_pending
        if pending is not None:
            pending.rows += len(rows)
            size = args[0] if args else kwargs.get("size", self.arraysize)  # type: ignore[attr-defined]
            if type(size) is int and len(rows) < size:  # sqlite3 stops short only at the end
                _settle(self)
        return rows

    def fetchall(self, *args: Any) -> Any:
        rows = _fetchall(self, *args)
        pending = self._es_pending
        if pending is not None:
            pending.rows += len(rows)
            self._es_pending = None  # all given
            pending.finish()
        return rows

    def __next__(self) -> Any:
        pending = self._es_pending
        if pending is None:
            return _next(self)
        try:
            row = _next(self)
        except StopIteration:
            _settle(self)
            raise
        pending.rows += 1
        return row

    def close(self, *args: Any) -> None:
        if self._es_pending is not None:
            _settle(self)
        _close(self, *args)


class _UnderCursor(_CursorMixin, sqlite3.Cursor):
    """Under a cursor factory with its own ``execute``: what its ``super()`` calls reach."""


class _UnderCounting(_Counting, sqlite3.Cursor):
    """:class:`_UnderCursor` counting its SELECTs' rows (the factory fetches as sqlite3 does)."""


_default_cursor = _recording_cursor(sqlite3.Cursor)
"""What ``cursor()`` makes, without asking for it each time."""


def _settle(cursor: Any) -> None:
    """The cursor's query has given all the rows it will: record it."""
    pending = cursor._es_pending
    cursor._es_pending = None
    if pending is not None:
        pending.finish()


_ISSUER_DEPTH = 3
"""Where the walk to the issuing line starts, from ``issuing_frame`` in :func:`_run`: past
``_run`` and the cursor's ``execute`` (or ``executemany``, ``executescript``), at the
frame that called it."""


def _run(
    cursor: Any,
    conn: Any,
    rec: Any,
    method: Any,
    sql: Any,
    params: Any,
    many: bool,
    depth: int = _ISSUER_DEPTH,
) -> Any:
    """Run ``method(cursor, sql, params)`` (``params`` None: a script, ``method(cursor,
    sql)``) and record it; its exception, if any, is re-raised unchanged. Who issued it
    and when it started are kept as they are (no timer object: this runs per query).
    ``depth``: where the walk to the issuing line starts (2 when called from C)."""
    place = issuing_frame(depth)
    started = _now()
    database = conn._es_database
    try:
        was_in = conn.in_transaction
    except Exception:  # noqa: BLE001 - closed: the statement itself will say so
        was_in = None
    action = db_common.transaction_action(sql) if params is not None else None
    try:
        result = method(cursor, sql, params) if params is not None else method(cursor, sql)
    except BaseException as exc:
        if action is not None:
            timer = QueryTimer(place, started)
            emit_transaction(rec, timer, SOURCE, SYSTEM, database, action, exc, conn=conn)
        else:  # a failed change still began its transaction (sqlite3 begins before it)
            _transition(rec, conn, database, place, started, was_in, _in_transaction(conn))
            record_query(rec, place, started, SOURCE, SYSTEM, database, sql, params, many, -1, exc)
        raise
    if action is not None:
        timer = QueryTimer(place, started)
        if action == "savepoint":  # outside a transaction, a savepoint begins one
            _transition(rec, conn, database, place, started, was_in, _in_transaction(conn))
        emit_transaction(rec, timer, SOURCE, SYSTEM, database, action, conn=conn)
        if action == "release_savepoint":  # releasing the outermost commits
            _transition(rec, conn, database, place, started, was_in, _in_transaction(conn))
        return result
    now_in = _in_transaction(conn)
    _transition(rec, conn, database, place, started, was_in, now_in)
    if params is not None and not many and cursor._es_counts and _returns_rows(cursor):
        cursor._es_pending = start_query(
            rec, cursor, place, started, SOURCE, SYSTEM, database, sql, params
        )
        return result
    rows = -1
    try:
        rows = cursor.rowcount
    except Exception as exc:  # noqa: BLE001
        db_common.failed(exc)
    record_query(rec, place, started, SOURCE, SYSTEM, database, sql, params, many, rows)
    return result


def _in_transaction(conn: Any) -> bool | None:
    try:
        return bool(conn.in_transaction)
    except Exception:  # noqa: BLE001 - closed
        return None


def _transition(
    rec: Any,
    conn: Any,
    database: str | None,
    place: tuple[str | None, int, str | None],
    started: int,
    was_in: bool | None,
    now_in: bool | None,
) -> None:
    """The transaction a statement began (sqlite3 begins one before a change), or the one
    it committed (``executescript`` commits what was pending first)."""
    if was_in is False and now_in:
        emit_transaction(
            rec, None, SOURCE, SYSTEM, database, "begin", conn=conn, began_ns=started, place=place
        )
    elif was_in and now_in is False:
        emit_transaction(rec, None, SOURCE, SYSTEM, database, "commit", conn=conn, place=place)


def _returns_rows(cursor: Any) -> bool:
    """A SELECT (or a statement with RETURNING): its rows come as they are fetched."""
    try:
        return cursor.description is not None
    except Exception as exc:  # noqa: BLE001
        db_common.failed(exc)
        return False


_IN_C: dict[tuple[type, str], str] = {
    (_ConnectionMixin, "cursor"): "sqlite_cursor",
    (_ConnectionMixin, "commit"): "sqlite_commit",
    (_ConnectionMixin, "rollback"): "sqlite_rollback",
    (_CursorMixin, "execute"): "sqlite_execute",
    (_Counting, "fetchone"): "sqlite_fetchone",
    (_Counting, "fetchall"): "sqlite_fetchall",
    (_Counting, "close"): "sqlite_close",
}
"""The recording methods the C accelerator has, and its function for each."""
_PYTHON_METHODS: dict[tuple[type, str], Any] = {key: vars(key[0])[key[1]] for key in _IN_C}
"""The recording methods in Python: the C accelerator's replace them (tests put them back)."""

_speedups = _select.speedups()
if _speedups is not None:  # the same in C, with these pieces for what it leaves to them
    _speedups.sqlite_setup(
        {
            "execute": _execute,
            "fetchall": _fetchall,
            "fetchone": _fetchone,
            "cursor": _cursor,
            "default_cursor": _default_cursor,
            "default_factory": sqlite3.Cursor,
            "recording_cursor": _recording_cursor,
            "close": _close,
            "commit": _commit,
            "rollback": _rollback,
            "run": _run,
            "settle": _settle,
            "on": _on,
            "transition": _transition,
            "recorder_dict": vars(recorder),
            "sampled_out": recorder.sampled_out,
            "places": db_common._code_places,
            "code_place": db_common._code_place,
            "housekeeping": db_common._HOUSEKEEPING,
            "runner": db_common._RUNNER,
            "no_place": db_common.NO_PLACE,
            "housekeeping_place": db_common.HOUSEKEEPING_PLACE,
            "issuing_frame": db_common.issuing_frame,
            "actions": db_common._actions,
            "transaction_action": db_common.transaction_action,
            "statements": db_common._statements,
            "statements_under": db_common._statements_under,
            "redaction_dict": vars(redaction),
            "statement_text": db_common.statement_text,
            "mode": db_common._mode,
            "shapes": db_common._shapes,
            "parameters_text": db_common.parameters_text,
            "pending_type": db_common.PendingQuery,
            "dropped": db_common._cursor_dropped,
            "pending_set": db_common._pending,
            "stats": db_common.STATS,
            "record_query": record_query,
            "failed": db_common.failed,
            "source": SOURCE,
            "system": SYSTEM,
        }
    )
    for (_cls, _name), _c_name in _IN_C.items():
        setattr(_cls, _name, _speedups.method(getattr(_speedups, _c_name)))
