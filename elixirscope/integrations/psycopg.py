"""psycopg 3, recorded: every statement and transaction of its connections, sync and async.

What is wrapped, exactly: :func:`enable` replaces these methods on psycopg's
classes (so every connection is covered, however it was made: ``psycopg.connect``,
``Connection.connect``, a pool), each by a function that calls the original
with the same arguments and returns what it returns:

- ``psycopg.Cursor.execute`` and ``Cursor.executemany`` (``ClientCursor`` and
  ``RawCursor`` inherit them; ``Connection.execute`` goes through them):
  ``query`` events with the SQL (a ``psycopg.sql.Composed`` as its text),
  parameters (redacted by default), ``rowcount`` (rows returned or changed),
  the server as ``postgresql://user@host:port/dbname`` (never a password),
  the issuing line and the error;
- ``Connection.commit`` / ``Connection.rollback`` (also what ``with connection:``
  calls) and ``Transaction.__enter__`` / ``__exit__`` (``with conn.transaction():``;
  a block inside a transaction is a savepoint: ``savepoint``, then
  ``release_savepoint`` or ``rollback_savepoint``): ``tx`` events; the transaction
  psycopg begins implicitly before the first statement (outside autocommit) is
  a ``begin`` too, seen as the connection's status turning to "in transaction".

The asyncio classes the same way: ``AsyncCursor.execute``/``executemany``,
``AsyncConnection.commit``/``rollback``, ``AsyncTransaction.__aenter__``/``__aexit__``
(the issuing line is the program's ``await``). An exception is recorded, then
re-raised unchanged. Also ``ServerCursor.execute`` (a named, server-side
cursor: ``conn.cursor(name=...)``), recorded as the ``DECLARE name CURSOR FOR
...`` it is (its rows come later, by ``FETCH``es psycopg sends: not events),
and ``Cursor.copy`` (``with cur.copy("COPY ...") as copy:``), one query from
entering the block to leaving it, with the rows COPY reports; ``Cursor.stream``
(``for row in cur.stream(...)``), one query from the first row asked for to the
last given (or the loop left early), with the rows it gave. The asyncio twins
of all three the same way (``AsyncServerCursor.execute``, ``AsyncCursor.copy``,
``AsyncCursor.stream``). Connections opened by
SQLAlchemy while its integration is on are left to it (marked by its pool).
:func:`disable` puts the original methods back.

``elixirscope run`` enables this when the program imports ``psycopg``, unless
``integrations.psycopg = false``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from elixirscope.capture.values import safe_repr
from elixirscope.integrations import db_common
from elixirscope.integrations.db_common import QueryTimer, emit_query, emit_transaction

__all__ = ["disable", "enable", "enabled"]

SYSTEM = "postgresql"
SOURCE = "psycopg"
_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE

_on = [False]
_originals: dict[tuple[type, str], Any] = {}


def enabled() -> bool:
    return _on[0]


def records(connection: Any) -> bool:
    """Whether this integration records ``connection``'s statements once un-muted."""
    if not _on[0]:
        return False
    import psycopg

    return isinstance(connection, (psycopg.Connection, psycopg.AsyncConnection))


def enable() -> bool:
    """Wrap psycopg's methods (see the module doc); False if already enabled."""
    if _on[0]:
        return False
    import psycopg

    wrappers = {
        (psycopg.Cursor, "execute"): _execute,
        (psycopg.Cursor, "executemany"): _executemany,
        (psycopg.Cursor, "copy"): _copy,
        (psycopg.Cursor, "stream"): _stream,
        (psycopg.ServerCursor, "execute"): _server_execute,
        (psycopg.Connection, "commit"): _commit,
        (psycopg.Connection, "rollback"): _rollback,
        (psycopg.Transaction, "__enter__"): _tx_enter,
        (psycopg.Transaction, "__exit__"): _tx_exit,
        (psycopg.AsyncCursor, "execute"): _aexecute,
        (psycopg.AsyncCursor, "executemany"): _aexecutemany,
        (psycopg.AsyncCursor, "copy"): _acopy,
        (psycopg.AsyncCursor, "stream"): _astream,
        (psycopg.AsyncServerCursor, "execute"): _aserver_execute,
        (psycopg.AsyncConnection, "commit"): _acommit,
        (psycopg.AsyncConnection, "rollback"): _arollback,
        (psycopg.AsyncTransaction, "__aenter__"): _atx_enter,
        (psycopg.AsyncTransaction, "__aexit__"): _atx_exit,
    }
    for (cls, name), wrapper in wrappers.items():
        _originals[(cls, name)] = cls.__dict__[name]
        setattr(cls, name, wrapper)
    for connection_class in (psycopg.Connection, psycopg.AsyncConnection):
        if "_es_muted" not in connection_class.__dict__:
            connection_class._es_muted = False  # type: ignore[union-attr]
    _on[0] = True
    return True


def disable() -> bool:
    """Put psycopg's methods back; False if not enabled."""
    if not _on[0]:
        return False
    _on[0] = False
    for (cls, name), original in _originals.items():
        setattr(cls, name, original)
    _originals.clear()
    return True


def _recording(conn: Any) -> Any:
    if not _on[0] or getattr(conn, "_es_muted", False):
        return None
    return db_common.current()


def _database(conn: Any) -> str | None:
    try:
        text = conn.__dict__.get("_es_database")
        if text is None:
            info = conn.info
            host = info.host or "localhost"
            text = f"postgresql://{info.user}@{host}:{info.port}/{info.dbname}"
            conn._es_database = text
        return text
    except Exception as exc:  # noqa: BLE001 - a closed connection has no info: unknown
        db_common.failed(exc)
        return None


def _status(conn: Any) -> int:
    try:
        return int(conn.pgconn.transaction_status)
    except Exception:  # noqa: BLE001
        return -1


def _sql(query: Any, conn: Any) -> Any:
    if type(query) is str or type(query) is bytes:
        return query
    try:
        return query.as_string(conn)
    except Exception:  # noqa: BLE001 - then its safe text
        return safe_repr(query, 2000)


# ---------------------------------------------------------------- cursors


def _execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
    original = _originals[(_cursor_class(), "execute")]
    conn = self._conn
    rec = _recording(conn)
    if rec is None:
        return original(self, query, params, **kwargs)
    return _run(self, conn, rec, original, query, params, kwargs, many=False)


def _executemany(self: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
    original = _originals[(_cursor_class(), "executemany")]
    conn = self._conn
    rec = _recording(conn)
    if rec is None:
        return original(self, query, params_seq, **kwargs)
    return _run(self, conn, rec, original, query, params_seq, kwargs, many=True)


def _server_execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
    """A named cursor's ``execute``: the server declares it; recorded as that ``DECLARE``."""
    import psycopg

    original = _originals[(psycopg.ServerCursor, "execute")]
    conn = self._conn
    rec = _recording(conn)
    if rec is None:
        return original(self, query, params, **kwargs)
    declared = _Declared(self, query)
    return _run(self, conn, rec, lambda cur, _q, p, **kw: original(cur, query, p, **kw),
                declared, params, kwargs, many=False)  # fmt: skip


class _Declared:
    """A server cursor's statement as recorded: ``DECLARE "name" CURSOR FOR <sql>``."""

    __slots__ = ("cursor", "query")

    def __init__(self, cursor: Any, query: Any) -> None:
        self.cursor = cursor
        self.query = query

    def as_string(self, conn: Any) -> str:
        name = getattr(self.cursor, "name", "?")
        text = _sql(self.query, conn)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return f'DECLARE "{name}" CURSOR FOR {text}'


@contextmanager
def _copy(self: Any, statement: Any, params: Any = None, **kwargs: Any) -> Iterator[Any]:
    """``with cur.copy(...)``: one query, from entering the block to leaving it."""
    import psycopg

    original = _originals[(psycopg.Cursor, "copy")]
    conn = self._conn
    rec = _recording(conn)
    if rec is None:
        with original(self, statement, params, **kwargs) as copy:
            yield copy
        return
    timer = QueryTimer()
    before = _status(conn)
    try:
        with original(self, statement, params, **kwargs) as copy:
            yield copy
    except BaseException as exc:
        _failed(conn, rec, timer, statement, params, exc)
        raise
    _ran(self, conn, rec, timer, before, statement, params, many=False)


def _stream(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Iterator[Any]:
    """``cur.stream(...)``: one query from the first row asked for to the last given
    (or the loop left early), with the rows it gave."""
    import psycopg

    original = _originals[(psycopg.Cursor, "stream")]
    conn = self._conn
    rec = _recording(conn)
    if rec is None:
        yield from original(self, query, params, **kwargs)
        return
    timer = QueryTimer()
    before = _status(conn)
    given = 0
    try:
        for row in original(self, query, params, **kwargs):
            given += 1
            yield row
    except GeneratorExit:
        _streamed(conn, rec, timer, before, query, params, given)
        raise
    except BaseException as exc:
        _failed(conn, rec, timer, query, params, exc)
        raise
    _streamed(conn, rec, timer, before, query, params, given)


def _streamed(
    conn: Any, rec: Any, timer: Any, before: Any, query: Any, params: Any, given: int
) -> None:
    try:
        database = _database(conn)
        if before == _IDLE and _status(conn) != _IDLE:
            emit_transaction(
                rec, None, SOURCE, SYSTEM, database, "begin", conn=conn, began_ns=timer.started
            )
        emit_query(rec, timer, SOURCE, SYSTEM, database, _sql(query, conn), params, rows=given)
    except Exception as exc:  # noqa: BLE001
        db_common.failed(exc)


def _failed(conn: Any, rec: Any, timer: Any, query: Any, params: Any, exc: BaseException) -> None:
    emit_query(rec, timer, SOURCE, SYSTEM, _database(conn), _sql(query, conn), params, error=exc)


def _cursor_class() -> Any:
    import psycopg

    return psycopg.Cursor


def _run(
    cursor: Any,
    conn: Any,
    rec: Any,
    original: Any,
    query: Any,
    params: Any,
    kwargs: Any,
    *,
    many: bool,
) -> Any:
    timer = QueryTimer()
    before = _status(conn)
    try:
        result = original(cursor, query, params, **kwargs)
    except BaseException as exc:
        emit_query(
            rec, timer, SOURCE, SYSTEM, _database(conn), _sql(query, conn), params, many=many,
            error=exc,
        )  # fmt: skip
        raise
    _ran(cursor, conn, rec, timer, before, query, params, many=many)
    return result


def _ran(
    cursor: Any,
    conn: Any,
    rec: Any,
    timer: Any,
    before: Any,
    query: Any,
    params: Any,
    *,
    many: bool,
) -> None:
    """A statement that returned (sync or async): the transaction it began, then itself."""
    try:
        database = _database(conn)
        if before == _IDLE and _status(conn) != _IDLE:
            emit_transaction(
                rec, None, SOURCE, SYSTEM, database, "begin", conn=conn, began_ns=timer.started
            )
        rows = cursor.rowcount
        emit_query(
            rec, timer, SOURCE, SYSTEM, database, _sql(query, conn), params, many=many, rows=rows
        )
    except Exception as exc:  # noqa: BLE001
        db_common.failed(exc)


# ---------------------------------------------------------------- transactions


def _commit(self: Any) -> None:
    return _end(self, "commit")


def _rollback(self: Any) -> None:
    return _end(self, "rollback")


def _end(conn: Any, action: str) -> None:
    import psycopg

    original = _originals[(psycopg.Connection, action)]
    rec = _recording(conn)
    if rec is None or _status(conn) == _IDLE:
        return original(conn)
    timer = QueryTimer()
    database = _database(conn)
    try:
        original(conn)
    except BaseException as exc:
        emit_transaction(rec, timer, SOURCE, SYSTEM, database, action, exc, conn=conn)
        raise
    emit_transaction(rec, timer, SOURCE, SYSTEM, database, action, conn=conn)
    return None


def _entering(conn: Any) -> str:
    """What entering ``conn.transaction()`` does: ``begin`` on an idle connection (psycopg's
    own test), else ``savepoint`` (a block inside a transaction)."""
    return "begin" if _status(conn) == _IDLE else "savepoint"


def _leaving(block: Any, exc_type: Any) -> str:
    """What leaving a ``conn.transaction()`` block does: ``commit`` / ``rollback`` for the
    outermost, ``release_savepoint`` / ``rollback_savepoint`` for a savepoint's."""
    if getattr(block, "_outer_transaction", False):
        return "commit" if exc_type is None else "rollback"
    return "release_savepoint" if exc_type is None else "rollback_savepoint"


def _tx_enter(self: Any) -> Any:
    import psycopg

    original = _originals[(psycopg.Transaction, "__enter__")]
    conn = self.connection
    rec = _recording(conn)
    if rec is None:
        return original(self)
    action = _entering(conn)
    timer = QueryTimer()
    try:
        result = original(self)
    except BaseException as exc:
        emit_transaction(rec, timer, SOURCE, SYSTEM, _database(conn), action, exc, conn=conn)
        raise
    emit_transaction(rec, timer, SOURCE, SYSTEM, _database(conn), action, conn=conn)
    return result


def _tx_exit(self: Any, exc_type: Any, exc_val: Any, exc_tb: Any) -> Any:
    import psycopg

    original = _originals[(psycopg.Transaction, "__exit__")]
    conn = self.connection
    rec = _recording(conn)
    if rec is None:
        return original(self, exc_type, exc_val, exc_tb)
    action = _leaving(self, exc_type)
    timer = QueryTimer()
    try:
        result = original(self, exc_type, exc_val, exc_tb)
    except BaseException as exc:
        emit_transaction(rec, timer, SOURCE, SYSTEM, _database(conn), action, exc, conn=conn)
        raise
    emit_transaction(rec, timer, SOURCE, SYSTEM, _database(conn), action, conn=conn)
    return result


# ---------------------------------------------------------------- asyncio


async def _aexecute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
    import psycopg

    original = _originals[(psycopg.AsyncCursor, "execute")]
    return await _arun(self, original, query, params, kwargs, many=False)


async def _aexecutemany(self: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
    import psycopg

    original = _originals[(psycopg.AsyncCursor, "executemany")]
    return await _arun(self, original, query, params_seq, kwargs, many=True)


async def _arun(
    cursor: Any, original: Any, query: Any, params: Any, kwargs: Any, *, many: bool
) -> Any:
    conn = cursor._conn
    rec = _recording(conn)
    if rec is None:
        return await original(cursor, query, params, **kwargs)
    timer = QueryTimer()
    before = _status(conn)
    try:
        result = await original(cursor, query, params, **kwargs)
    except BaseException as exc:
        emit_query(
            rec, timer, SOURCE, SYSTEM, _database(conn), _sql(query, conn), params, many=many,
            error=exc,
        )  # fmt: skip
        raise
    _ran(cursor, conn, rec, timer, before, query, params, many=many)
    return result


async def _aserver_execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
    """An async named cursor's ``execute``: recorded as its ``DECLARE`` (see ``_Declared``)."""
    import psycopg

    original = _originals[(psycopg.AsyncServerCursor, "execute")]

    async def declare(cur: Any, _query: Any, p: Any, **kw: Any) -> Any:
        return await original(cur, query, p, **kw)

    return await _arun(self, declare, _Declared(self, query), params, kwargs, many=False)


@asynccontextmanager
async def _acopy(
    self: Any, statement: Any, params: Any = None, **kwargs: Any
) -> AsyncIterator[Any]:
    """``async with cur.copy(...)``: one query, from entering the block to leaving it."""
    import psycopg

    original = _originals[(psycopg.AsyncCursor, "copy")]
    conn = self._conn
    rec = _recording(conn)
    if rec is None:
        async with original(self, statement, params, **kwargs) as copy:
            yield copy
        return
    timer = QueryTimer()
    before = _status(conn)
    try:
        async with original(self, statement, params, **kwargs) as copy:
            yield copy
    except BaseException as exc:
        _failed(conn, rec, timer, statement, params, exc)
        raise
    _ran(self, conn, rec, timer, before, statement, params, many=False)


async def _astream(self: Any, query: Any, params: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
    """``async for row in cur.stream(...)``: as :func:`_stream`."""
    import psycopg

    original = _originals[(psycopg.AsyncCursor, "stream")]
    conn = self._conn
    rec = _recording(conn)
    if rec is None:
        async for row in original(self, query, params, **kwargs):
            yield row
        return
    timer = QueryTimer()
    before = _status(conn)
    given = 0
    try:
        async for row in original(self, query, params, **kwargs):
            given += 1
            yield row
    except GeneratorExit:
        _streamed(conn, rec, timer, before, query, params, given)
        raise
    except BaseException as exc:
        _failed(conn, rec, timer, query, params, exc)
        raise
    _streamed(conn, rec, timer, before, query, params, given)


async def _acommit(self: Any) -> None:
    await _aend(self, "commit")


async def _arollback(self: Any) -> None:
    await _aend(self, "rollback")


async def _aend(conn: Any, action: str) -> None:
    import psycopg

    original = _originals[(psycopg.AsyncConnection, action)]
    rec = _recording(conn)
    if rec is None or _status(conn) == _IDLE:
        await original(conn)
        return
    timer = QueryTimer()
    database = _database(conn)
    try:
        await original(conn)
    except BaseException as exc:
        emit_transaction(rec, timer, SOURCE, SYSTEM, database, action, exc, conn=conn)
        raise
    emit_transaction(rec, timer, SOURCE, SYSTEM, database, action, conn=conn)


async def _atx_enter(self: Any) -> Any:
    import psycopg

    original = _originals[(psycopg.AsyncTransaction, "__aenter__")]
    conn = self.connection
    rec = _recording(conn)
    if rec is None:
        return await original(self)
    action = _entering(conn)
    timer = QueryTimer()
    try:
        result = await original(self)
    except BaseException as exc:
        emit_transaction(rec, timer, SOURCE, SYSTEM, _database(conn), action, exc, conn=conn)
        raise
    emit_transaction(rec, timer, SOURCE, SYSTEM, _database(conn), action, conn=conn)
    return result


async def _atx_exit(self: Any, exc_type: Any, exc_val: Any, exc_tb: Any) -> Any:
    import psycopg

    original = _originals[(psycopg.AsyncTransaction, "__aexit__")]
    conn = self.connection
    rec = _recording(conn)
    if rec is None:
        return await original(self, exc_type, exc_val, exc_tb)
    action = _leaving(self, exc_type)
    timer = QueryTimer()
    try:
        result = await original(self, exc_type, exc_val, exc_tb)
    except BaseException as exc:
        emit_transaction(rec, timer, SOURCE, SYSTEM, _database(conn), action, exc, conn=conn)
        raise
    emit_transaction(rec, timer, SOURCE, SYSTEM, _database(conn), action, conn=conn)
    return result
