"""The rows a SELECT gave the program, on sqlite3 (whose rowcount is -1 for one) and on
SQLAlchemy over it: counted as fetched, the event kept where its execute was and
recorded once they are known; the program gets the same rows as without recording."""

from __future__ import annotations

import gc
import sqlite3
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlite_recording import sqlite_recorded

from elixirscope.capture import recorder
from elixirscope.integrations import db_common
from elixirscope.integrations import sqlalchemy as sqlalchemy_integration
from elixirscope.integrations import sqlite as sqlite_integration

TAG, ID, TS, STATEMENT, ROWS, FILE, LINE, CALLER, SOURCE, MANY = 0, 1, 2, 8, 11, 12, 13, 14, 16, 17
N = 10


def _fill(conn: Any) -> Any:
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(N)])
    conn.commit()
    return conn


IMPLEMENTATIONS = ["c", "python"] if sqlite_integration._speedups is not None else ["python"]


def use(implementation: str, monkeypatch: Any) -> None:
    """The recording methods (cursor, commit, rollback, execute, the fetches, close): C's
    or Python's."""
    if implementation == "python":
        for (cls, name), method in sqlite_integration._PYTHON_METHODS.items():
            monkeypatch.setattr(cls, name, method)


@pytest.fixture(params=IMPLEMENTATIONS)
def rec(request: Any, monkeypatch: Any) -> Iterator[Any]:
    use(request.param, monkeypatch)
    with sqlite_recorded() as installed:
        yield installed


@pytest.fixture
def conn(rec: Any) -> Any:
    filled = _fill(sqlite3.connect(":memory:"))
    rec.ring.drain()  # its setting up
    return filled


def queries(rec: Any) -> dict[str, tuple[Any, ...]]:
    """The queries recorded so far, by statement (each ran once)."""
    found = [e for e in rec.ring.drain() if e[TAG] == "query"]
    by_statement = {e[STATEMENT]: e for e in found}
    assert len(by_statement) == len(found)
    return by_statement


def test_each_way_of_fetching_counts_the_rows_the_program_got(rec: Any, conn: Any) -> None:
    assert len(conn.execute("SELECT x FROM t -- fetchall").fetchall()) == N
    cur = conn.execute("SELECT x FROM t -- fetchmany")
    while cur.fetchmany(3):
        pass
    cur = conn.execute("SELECT x FROM t -- fetchone")
    while cur.fetchone() is not None:
        pass
    assert sum(1 for _ in conn.execute("SELECT x FROM t -- for")) == N
    cur = conn.execute("SELECT x FROM t -- mixed")
    cur.fetchone(), cur.fetchmany(2), next(cur), cur.fetchall()
    cur = conn.execute("SELECT x FROM t -- short fetchmany")
    assert len(cur.fetchmany(N + 5)) == N  # came back short: the end
    assert conn.execute("SELECT x FROM t WHERE x < 0 -- none").fetchall() == []
    got = queries(rec)  # all known without closing or dropping a cursor
    assert {s: e[ROWS] for s, e in got.items() if s.startswith("SELECT")} == {
        "SELECT x FROM t -- fetchall": N,
        "SELECT x FROM t -- fetchmany": N,
        "SELECT x FROM t -- fetchone": N,
        "SELECT x FROM t -- for": N,
        "SELECT x FROM t -- mixed": N,
        "SELECT x FROM t -- short fetchmany": N,
        "SELECT x FROM t WHERE x < 0 -- none": 0,
    }
    assert all(e[SOURCE] == "sqlite3" for e in got.values())


def test_a_cursor_not_read_to_its_end_gives_the_rows_given_so_far(rec: Any, conn: Any) -> None:
    for row in conn.execute("SELECT x FROM t -- left early"):
        if row[0] == 2:
            break
    closed = conn.execute("SELECT x FROM t -- closed")
    closed.fetchmany(4)
    closed.close()
    again = conn.cursor()
    again.execute("SELECT x FROM t -- re-executed")
    again.fetchone()
    again.execute("SELECT x FROM t WHERE x < 3 -- the second")
    again.fetchall()
    dropped = conn.execute("SELECT x FROM t -- dropped")
    dropped.fetchmany(5)
    del dropped
    conn.execute("SELECT x FROM t -- never read")
    kept_open = conn.execute("SELECT x FROM t -- still open")
    kept_open.fetchone()
    gc.collect()
    so_far = {s: e[ROWS] for s, e in queries(rec).items()}
    assert "SELECT x FROM t -- still open" not in so_far  # waits for its rows...
    db_common.finish_pending()  # ... until the recording stops
    assert {s: e[ROWS] for s, e in queries(rec).items()} == {"SELECT x FROM t -- still open": 1}
    assert kept_open.fetchone() == (1,)  # the program's cursor goes on as it was
    kept_open.close()
    assert queries(rec) == {}  # recorded once
    assert so_far == {
        "SELECT x FROM t -- left early": 3,
        "SELECT x FROM t -- closed": 4,
        "SELECT x FROM t -- re-executed": 1,
        "SELECT x FROM t WHERE x < 3 -- the second": 3,
        "SELECT x FROM t -- dropped": 5,
        "SELECT x FROM t -- never read": 0,
    }


def test_changes_keep_their_rowcount_and_executemany_its_sets(rec: Any, conn: Any) -> None:
    conn.executemany("INSERT INTO t VALUES (?)", [(100,), (101,)])
    conn.execute("UPDATE t SET x = x + 1 WHERE x >= 100")
    conn.execute("DELETE FROM t WHERE x > 100")
    got = queries(rec)
    assert got["INSERT INTO t VALUES (?)"][ROWS] == 2
    assert got["INSERT INTO t VALUES (?)"][MANY] == 2
    assert got["UPDATE t SET x = x + 1 WHERE x >= 100"][ROWS] == 2
    assert got["DELETE FROM t WHERE x > 100"][ROWS] == 2


def test_the_event_keeps_the_executes_id_time_and_call(rec: Any, conn: Any) -> None:
    """Recorded once its rows are known, it is still the event the execute made: its
    id and time come before what the program did between the execute and the end."""
    cur = conn.execute("SELECT x FROM t -- later")
    marker = rec.emit("custom", "between", {})
    cur.fetchall()
    drained = rec.ring.drain()
    order = [e[TAG] for e in drained]
    assert order == ["custom", "query"]  # reaches the ring when its rows are known
    custom, query = drained
    assert query[ID] < marker and query[TS] < custom[TS]
    assert query[ROWS] == N


def test_a_factory_with_its_own_fetching_keeps_it_and_rows_unknown(rec: Any, conn: Any) -> None:
    class Doubling(sqlite3.Cursor):
        def fetchall(self) -> list[Any]:  # built on fetchone: counting both would be wrong
            rows = []
            while (row := self.fetchone()) is not None:
                rows.append(row * 2)
            return rows

    assert conn.cursor(Doubling).execute("SELECT x FROM t WHERE x < 2").fetchall() == [
        (0, 0),
        (1, 1),
    ]
    assert queries(rec)["SELECT x FROM t WHERE x < 2"][ROWS] == -1


READS = st.lists(
    st.one_of(
        st.just(("fetchone",)),
        st.just(("next",)),
        st.just(("fetchall",)),
        st.tuples(st.just("fetchmany"), st.integers(min_value=0, max_value=6)),
    ),
    max_size=8,
)


def _read(cur: Any, reads: list[tuple[Any, ...]]) -> list[Any]:
    out: list[Any] = []
    for step in reads:
        if step[0] == "fetchone":
            out.append(cur.fetchone())
        elif step[0] == "next":
            out.append(next(cur, "end"))
        elif step[0] == "fetchall":
            out.append(cur.fetchall())
        else:
            out.append(cur.fetchmany(step[1]))
    return out


def _given(result: list[Any]) -> int:
    return sum(len(r) if isinstance(r, list) else int(r is not None and r != "end") for r in result)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.text()), max_size=12),
    READS,
)
def test_the_program_reads_the_same_rows_and_the_event_counts_them(
    values: list[Any], reads: list[tuple[Any, ...]]
) -> None:
    had = recorder.current()
    rec = recorder.install() if had is None else had
    rec.ring.drain()
    plain = sqlite3.connect(":memory:")  # before enable: not wrapped
    sqlite_integration.enable()
    try:
        wrapped = sqlite3.connect(":memory:")
        for conn in (plain, wrapped):
            conn.execute("CREATE TABLE v (n INTEGER)")
            conn.executemany("INSERT INTO v VALUES (?)", [(n,) for n in values])
        expected = _read(plain.execute("SELECT n FROM v ORDER BY rowid"), reads)
        cur = wrapped.execute("SELECT n FROM v ORDER BY rowid")
        got = _read(cur, reads)
        cur.close()
        [query] = [e for e in rec.ring.drain() if e[TAG] == "query" and "ORDER BY" in e[STATEMENT]]
    finally:
        sqlite_integration.disable()
        if had is None:
            recorder.uninstall()
    assert got == expected
    assert query[ROWS] == _given(got)


# ---------------------------------------------------------------- SQLAlchemy on SQLite


@pytest.fixture(scope="module")
def orm(tmp_path_factory: Any) -> Iterator[tuple[Any, Any, Any]]:
    pytest.importorskip("sqlalchemy")
    from sqlalchemy import Integer, String, create_engine
    from sqlalchemy.orm import DeclarativeBase, Session, mapped_column

    class Base(DeclarativeBase):
        pass

    class Task(Base):
        __tablename__ = "tasks"
        id = mapped_column(Integer, primary_key=True)
        title = mapped_column(String)

    engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('orm') / 'tasks.db'}")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Task(title=f"task-{i}") for i in range(N)])
        session.commit()
    yield engine, Task, Session
    engine.dispose()


@pytest.fixture
def sa_rec(rec: Any, orm: Any) -> Iterator[Any]:
    orm[0].dispose()  # connections opened from now on: while both integrations are on
    sqlalchemy_integration.enable()
    try:
        yield rec
    finally:
        sqlalchemy_integration.disable()
        orm[0].dispose()


def test_sqlalchemy_orm_and_core_selects_have_the_rows_fetched(sa_rec: Any, orm: Any) -> None:
    from sqlalchemy import select, text

    engine, Task, Session = orm
    with Session(engine) as session:
        assert len(session.scalars(select(Task)).all()) == N
        first = session.scalars(select(Task).where(Task.id <= 4).order_by(Task.id)).first()
        assert first is not None and first.title == "task-0"
    with engine.connect() as core:
        assert len(list(core.execute(text("SELECT id FROM tasks WHERE id <= 7")))) == 7
        result = core.execute(text("SELECT id FROM tasks -- one of them"))
        assert result.fetchone() == (1,)
        result.close()
    got = queries(sa_rec)
    assert all(e[SOURCE] == "sqlite3" for e in got.values())  # at the driver, once
    rows = {" ".join(s.split()): e[ROWS] for s, e in got.items()}
    assert rows["SELECT tasks.id, tasks.title FROM tasks"] == N
    # .first(): the ORM loads every row the SELECT gives (the database's work), then one
    [first_of] = [r for s, r in rows.items() if "WHERE tasks.id <=" in s]
    assert first_of == 4
    assert rows["SELECT id FROM tasks WHERE id <= 7"] == 7
    assert rows["SELECT id FROM tasks -- one of them"] == 1


def test_sqlalchemy_changes_keep_their_rowcount(sa_rec: Any, orm: Any) -> None:
    from sqlalchemy import text

    engine = orm[0]
    with engine.begin() as core:
        core.execute(text("UPDATE tasks SET title = title WHERE id <= 3"))
    got = queries(sa_rec)
    assert got["UPDATE tasks SET title = title WHERE id <= 3"][ROWS] == 3


def test_the_pools_pre_ping_and_set_up_are_not_the_programs_queries(
    rec: Any, tmp_path: Any
) -> None:
    pytest.importorskip("sqlalchemy")
    from sqlalchemy import create_engine, text

    sqlalchemy_integration.enable()
    try:
        engine = create_engine(f"sqlite:///{tmp_path / 'ping.db'}", pool_pre_ping=True)
        for n in (1, 2, 3):  # each checkout after the first pings the connection
            with engine.connect() as core:
                assert core.execute(text(f"SELECT {n}")).scalar() == n
        raw = engine.raw_connection()  # the driver's connection, checked out: recorded
        raw.cursor().execute("SELECT 4").fetchall()
        raw.close()
        engine.dispose()
    finally:
        sqlalchemy_integration.disable()
    found = [e for e in rec.ring.drain() if e[TAG] == "query"]
    assert [(e[STATEMENT], e[SOURCE], e[ROWS]) for e in found] == [
        (f"SELECT {n}", "sqlite3", 1) for n in (1, 2, 3, 4)
    ]


def test_the_pools_reset_is_not_the_programs_but_its_own_connect_listener_is(
    rec: Any, tmp_path: Any
) -> None:
    """The walk, not a checkout listener, tells the pool's work (set-up, reset of a
    connection given back with its transaction open) from the program's: a function of
    the program's that the pool runs (its own ``connect`` listener) is the program's."""
    pytest.importorskip("sqlalchemy")
    from sqlalchemy import create_engine, event, text

    sqlalchemy_integration.enable()
    try:
        engine = create_engine(f"sqlite:///{tmp_path / 'reset.db'}")

        @event.listens_for(engine, "connect")
        def on_connect(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.execute("PRAGMA foreign_keys = ON").fetchall()

        raw = engine.raw_connection()
        raw.cursor().execute("CREATE TABLE t (x INTEGER)")
        raw.cursor().execute("INSERT INTO t VALUES (1)")  # begins; left open
        raw.close()  # the pool rolls it back: not the program's
        with engine.connect() as core:
            assert core.execute(text("SELECT count(*) FROM t")).scalar() == 0
        engine.dispose()
    finally:
        sqlalchemy_integration.disable()
    found = [e for e in rec.ring.drain() if e[TAG] in ("query", "tx")]
    names = [(e[TAG], e[STATEMENT]) for e in found]  # a tx event's action is where SQL is
    assert names == [
        ("query", "PRAGMA foreign_keys = ON"),
        ("query", "CREATE TABLE t (x INTEGER)"),
        ("tx", "begin"),
        ("query", "INSERT INTO t VALUES (1)"),
        ("query", "SELECT count(*) FROM t"),
    ]
    [pragma] = [e for e in found if e[TAG] == "query" and e[STATEMENT].startswith("PRAGMA")]
    assert pragma[CALLER].endswith("on_connect")


def test_without_the_sqlalchemy_integration_the_pools_work_is_not_recorded_either(
    rec: Any, tmp_path: Any
) -> None:
    pytest.importorskip("sqlalchemy")
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{tmp_path / 'plain.db'}", pool_pre_ping=True)
    for n in (1, 2):
        with engine.connect() as core:
            assert core.execute(text(f"SELECT {n} -- mine")).scalar() == n
    engine.dispose()
    found = [e[STATEMENT] for e in rec.ring.drain() if e[TAG] == "query"]
    assert found == ["SELECT 1 -- mine", "SELECT 2 -- mine"]


def test_the_walk_names_the_pools_frame_before_the_programs() -> None:
    pytest.importorskip("sqlalchemy")
    import types

    pool_globals = {"__name__": "sqlalchemy.pool.base"}
    exec(  # a function of the pool's module that calls back into the program
        "def checkout(callback):\n    return callback()\n", pool_globals
    )
    not_the_pool = {"__name__": "sqlalchemy.poolish"}
    exec("def run(callback):\n    return callback()\n", not_the_pool)
    issue = types.FunctionType(
        compile("lambda: issuing_frame(1)", "<library>", "eval").co_consts[0],
        {"__name__": "sqlalchemy.engine.default", "issuing_frame": db_common.issuing_frame},
    )
    for _ in range(2):  # uncached, then cached
        assert pool_globals["checkout"](issue) is db_common.HOUSEKEEPING_PLACE
        assert pool_globals["checkout"](lambda: db_common.issuing_frame(1))[2].endswith("<lambda>")
        assert not_the_pool["run"](issue) is not db_common.HOUSEKEEPING_PLACE


def test_disabling_sqlalchemy_gives_its_pooled_connections_back_to_sqlite3(
    rec: Any, tmp_path: Any
) -> None:
    pytest.importorskip("sqlalchemy")
    from sqlalchemy import create_engine, text

    sqlalchemy_integration.enable()
    try:
        engine = create_engine(f"sqlite:///{tmp_path / 'pooled.db'}")
        with engine.connect() as core:  # checked in afterwards: muted while pooled
            core.execute(text("SELECT 1")).all()
    finally:
        sqlalchemy_integration.disable()
    with engine.connect() as core:  # the same pooled connection, the sqlite3 integration's
        core.execute(text("SELECT 2")).all()
    sqlalchemy_integration.enable()  # again: the connection is decided anew, and given back
    try:
        with engine.connect() as core:
            core.execute(text("SELECT 3")).all()
    finally:
        sqlalchemy_integration.disable()
    with engine.connect() as core:
        core.execute(text("SELECT 4")).all()
    engine.dispose()
    found = [e[STATEMENT] for e in rec.ring.drain() if e[TAG] == "query"]
    assert found == ["SELECT 1", "SELECT 2", "SELECT 3", "SELECT 4"]


# ---------------------------------------------------------------- under elixirscope run

PROGRAM = """
import sqlite3

from sqlalchemy import create_engine, text


def open_tasks(conn):
    return conn.execute("SELECT title FROM tasks")  # the caller reads it


def first_two(conn):
    cur = open_tasks(conn)
    return [cur.fetchone(), cur.fetchone()]


conn = sqlite3.connect(":memory:")
conn.execute("CREATE TABLE tasks (title TEXT)")
conn.executemany("INSERT INTO tasks VALUES (?)", [("a",), ("b",), ("c",)])
print(first_two(conn))
engine = create_engine("sqlite://")
with engine.connect() as core:
    print(core.execute(text("SELECT 1 UNION ALL SELECT 2")).all())
left_open = conn.execute("SELECT title FROM tasks WHERE title > 'a'")
print(left_open.fetchone())
"""


@pytest.fixture(scope="module")
def run_recorded(tmp_path_factory: Any) -> tuple[Any, list[dict[str, Any]]]:
    pytest.importorskip("sqlalchemy")
    from recorded_programs import events, plain, recorded

    where = tmp_path_factory.mktemp("select_rows")
    script = where / "select_rows.py"
    script.write_text(PROGRAM)
    expected = plain(script)
    done = recorded(script, where / "data")
    assert (done.returncode, done.stdout, done.stderr) == (0, expected.stdout, "")
    return where / "data", events(where / "data")


def test_under_run_a_query_read_by_the_caller_stays_under_the_call_that_ran_it(
    run_recorded: Any,
) -> None:
    from recorded_programs import calltree, find_call

    data, evs = run_recorded
    [query] = [
        e for e in evs if e["type"] == "query" and e["statement"] == "SELECT title FROM tasks"
    ]
    assert (query["rows"], query["caller"]) == (2, "__main__.open_tasks")
    tree = calltree(data, query["correlation_id"])["calls"]
    node = find_call(tree, "__main__.open_tasks")
    assert node is not None
    assert [e["statement"] for e in node["events"] if e["type"] == "query"] == [
        "SELECT title FROM tasks"
    ]


def test_under_run_sqlalchemy_and_a_cursor_left_open_at_exit_have_their_rows(
    run_recorded: Any,
) -> None:
    _, evs = run_recorded
    rows = {(e["source"], e["statement"]): e["rows"] for e in evs if e["type"] == "query"}
    assert rows[("sqlite3", "SELECT 1 UNION ALL SELECT 2")] == 2  # at the driver, once
    assert ("sqlalchemy", "SELECT 1 UNION ALL SELECT 2") not in rows
    assert rows[("sqlite3", "SELECT title FROM tasks WHERE title > 'a'")] == 1  # at exit


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_leaves_its_parents_waiting_query_to_the_parent(rec: Any, conn: Any) -> None:
    import os

    cur = conn.execute("SELECT x FROM t -- across a fork")
    cur.fetchone()
    pid = os.fork()
    if pid == 0:  # the child: its copy is not recorded (into the copy of the parent's ring)
        code = 0 if not db_common._pending else 1
        cur.fetchall()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    cur.fetchall()
    assert queries(rec)["SELECT x FROM t -- across a fork"][ROWS] == N


# ---------------------------------------------------------------- the issuing line, again
_RUNNER = "def run(conn, sql):\n    return conn.execute(sql).fetchall()\n"


def test_queries_through_the_same_library_frames_name_their_own_lines(rec: Any, conn: Any) -> None:
    """The walk to the issuing line keeps each code's verdict: later queries through the
    same library frames still name the line that issued each, from a plain function and
    from a generator's frame."""
    library: dict[str, Any] = {"__name__": "sqlalchemy.elixirscope_test_runner"}
    exec(compile(_RUNNER, "/lib/site-packages/sqlalchemy/runner.py", "exec"), library)
    run = library["run"]
    here: dict[str, int] = {}
    for i in range(3):  # two lines of this function, each issuing through `run`
        first, second = f"SELECT {i} -- plain a", f"SELECT {i} -- plain b"
        here[first] = (run(conn, first), sys._getframe().f_lineno)[1]  # the line it ran on
        here[second] = (run(conn, second), sys._getframe().f_lineno)[1]

    def issuing() -> Iterator[int]:
        for i in range(3):
            yield (run(conn, f"SELECT {i} -- generator"), sys._getframe().f_lineno)[1]

    for i, line in enumerate(issuing()):
        here[f"SELECT {i} -- generator"] = line
    got = queries(rec)
    me = "test_queries_through_the_same_library_frames_name_their_own_lines"
    for statement, line in here.items():
        event = got[statement]
        assert (event[FILE], event[LINE]) == (__file__, line), statement
        where = me + (".<locals>.issuing" if "generator" in statement else "")
        assert event[CALLER].endswith(where)
    assert len({here[f"SELECT 0 -- plain {x}"] for x in "ab"}) == 2


def test_a_line_issuing_again_keeps_its_line_and_the_next_line_is_its_own(
    rec: Any, conn: Any
) -> None:
    """The walk keeps the text of the line a code last issued from (C: one line table
    read a line): the same line again names it, the next line of the function its own."""
    here: dict[str, int] = {}
    for i in range(4):
        statement = f"SELECT {i} -- again"
        here[statement] = (conn.execute(statement).fetchall(), sys._getframe().f_lineno)[1]
    here["SELECT 9 -- next"] = (conn.execute("SELECT 9 -- next"), sys._getframe().f_lineno)[1]
    got = queries(rec)
    assert {s: (got[s][FILE], got[s][LINE]) for s in here} == {
        s: (__file__, line) for s, line in here.items()
    }
    assert len(set(here.values())) == 2


# ---------------------------------------------------------------- the waiting query itself
# a SELECT's event waits on its cursor (a weak reference to it) and is recorded when the
# cursor goes, in a reference cycle too; the walk to the issuing line may start further out


def _queries_by_statement(rec: Any) -> dict[str, Any]:
    return {e[STATEMENT]: e for e in rec.ring.drain() if e[TAG] == "query"}


def test_a_cursor_dropped_in_a_cycle_records_its_query_when_collected(rec: Any) -> None:
    conn = sqlite3.connect(":memory:")
    cur = conn.execute("SELECT 1 UNION ALL SELECT 2 -- in a cycle")
    cur.fetchone()
    cycle: list[Any] = [cur]
    cycle.append(cycle)
    del cur, cycle
    assert "SELECT 1 UNION ALL SELECT 2 -- in a cycle" not in _queries_by_statement(rec)
    gc.collect()
    got = _queries_by_statement(rec)["SELECT 1 UNION ALL SELECT 2 -- in a cycle"]
    assert got[ROWS] == 1
    assert got[CALLER].endswith("test_a_cursor_dropped_in_a_cycle_records_its_query_when_collected")
    assert not db_common._pending


def test_a_query_recorded_leaves_the_waiting_set_and_two_on_one_cursor_are_two(
    rec: Any,
) -> None:
    conn = sqlite3.connect(":memory:")
    cur = conn.cursor()
    cur.execute("SELECT 1 -- first")
    first = cur._es_pending
    cur.execute("SELECT 2 -- second")  # the first recorded, rows given: none
    assert first is not None and first.before is None
    assert db_common._pending == {cur._es_pending}
    cur.fetchall()
    assert not db_common._pending
    got = _queries_by_statement(rec)
    assert (got["SELECT 1 -- first"][ROWS], got["SELECT 2 -- second"][ROWS]) == (0, 1)


def test_a_recording_cursor_on_a_connection_not_made_here_is_not_recorded(rec: Any) -> None:
    cursor_class = type(sqlite3.connect(":memory:").cursor())
    plain = sqlite_integration._original_connect(":memory:")
    assert plain.cursor(cursor_class).execute("SELECT 7").fetchall() == [(7,)]
    assert _queries_by_statement(rec) == {}


def test_the_walk_to_the_issuing_line_starts_where_asked_or_at_the_caller() -> None:
    here = db_common.issuing_frame()
    assert here[0] == __file__
    assert db_common.issuing_frame(10_000)[::2] == here[::2]  # deeper than the stack


def _scenario(conn: Any) -> list[Any]:
    """Reads, a partial read, changes, an explicit and an implicit transaction, a failing
    statement and a re-executed cursor: what the program got back."""
    got: list[Any] = [conn.execute("SELECT x FROM t WHERE x < ?", (3,)).fetchall()]
    cur = conn.execute("SELECT x FROM t ORDER BY x")
    got += [cur.fetchone(), cur.fetchone()]
    cur.execute("SELECT count(*) FROM t WHERE x > :n", {"n": 4})
    got.append(cur.fetchone())
    got.append(cur.fetchone())
    conn.execute("UPDATE t SET x = x WHERE x < 2")  # begins a transaction
    conn.commit()
    conn.execute("BEGIN")
    conn.execute("INSERT INTO t VALUES (?)", (99,))
    conn.execute("ROLLBACK")
    try:
        conn.execute("SELECT * FROM nowhere")
    except sqlite3.OperationalError as exc:
        got.append(str(exc))
    got.append(conn.execute("SELECT 1").fetchall())
    return got


def test_c_and_python_record_the_same_events(monkeypatch: Any, tmp_path: Any) -> None:
    if sqlite_integration._speedups is None:
        pytest.skip("the C accelerator is not built")
    recorded = {}
    for implementation in ("c", "python"):
        with monkeypatch.context() as patch:
            use(implementation, patch)
            rec = recorder.install() if recorder.current() is None else recorder.current()
            sqlite_integration.enable()
            try:
                conn = _fill(sqlite3.connect(tmp_path / f"{implementation}.db"))
                rec.ring.drain()
                answers = _scenario(conn)
                conn.close()
                gc.collect()
                db_common.finish_pending()
                events = rec.ring.drain()
            finally:
                sqlite_integration.disable()
        # ids, times, threads, durations and the database's file differ by run; the rest may not
        recorded[implementation] = (
            answers,
            [
                (e[TAG], e[6], *e[8:10], *e[11:])
                if e[TAG] == "query"
                else (e[TAG], e[6], e[8], *e[10:15])
                for e in events
            ],
        )
    assert recorded["c"] == recorded["python"]
    answers, events = recorded["c"]
    assert [e[0] for e in events].count("query") == 7
    assert [e[2] for e in events if e[0] == "tx"] == ["begin", "commit", "begin", "rollback"]
    assert [e[4] for e in events if e[0] == "query"][:3] == [3, 2, 1]  # the rows each gave


def _wrong_calls(conn: Any) -> list[tuple[str, str]]:
    """What each wrong call raised (a recording method must raise sqlite3's own)."""
    cur = conn.cursor()
    calls = [
        lambda: cur.execute(),
        lambda: cur.execute("SELECT 1", (), 3),
        lambda: cur.execute(sql="SELECT 1"),
        lambda: conn.cursor(1, 2),
        lambda: cur.fetchone(1),
        lambda: cur.fetchall(1, 2),
    ]
    conn_closed = sqlite3.connect(":memory:")
    closed_cursor = conn_closed.cursor()
    conn_closed.close()
    calls += [conn_closed.commit, conn_closed.rollback, conn_closed.cursor, closed_cursor.close]
    raised = []
    for call in calls:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - which one is the point
            call()
        raised.append((type(caught.value).__name__, str(caught.value)))
    return raised


def test_a_wrong_call_raises_what_sqlite3_raises() -> None:
    if sqlite_integration._speedups is None:
        pytest.skip("the C accelerator is not built")
    plain = _wrong_calls(sqlite3.connect(":memory:"))
    had = recorder.current()
    if had is None:
        recorder.install()
    sqlite_integration.enable()
    try:
        recorded = _wrong_calls(sqlite3.connect(":memory:"))  # through the C methods
    finally:
        sqlite_integration.disable()
        if had is None:
            recorder.uninstall()
    assert recorded == plain
    assert recorded[0][0] == "TypeError" and "closed database" in recorded[-1][1]


def test_a_c_method_is_called_as_the_interpreter_calls_a_builtin_types_own() -> None:
    """``_speedups.method(fn)``, how the recording classes hold their C methods: ``obj.m(a)``
    is ``fn(obj, a)``, ``obj.m`` a method bound to ``obj``, ``Class.m`` is ``fn``; and the
    call site specialises (no generic lookup nor bound method each call: 3.11)."""
    speedups = sqlite_integration._speedups
    if speedups is None:
        pytest.skip("the C accelerator is not built")

    class Box:
        def __init__(self) -> None:
            self.x = 5

        read = speedups.method(getattr)

    box = Box()
    assert box.read("x") == 5 and box.read("y", default := object()) is default
    assert Box.read is getattr and Box.read(box, "x") == 5
    bound = box.read
    assert bound.__self__ is box and bound.__func__ is getattr and bound("x") == 5
    with pytest.raises(AttributeError, match="'Box' object has no attribute 'y'"):
        box.read("y")
    with pytest.raises(TypeError, match="Expected a callable, got int - at method"):
        speedups.method(3)

    def reads(b: Any) -> int:
        return b.read("x")

    for _ in range(100):
        assert reads(box) == 5
    if sys.version_info[:2] == (3, 11):
        import dis

        ops = [i.opname for i in dis.get_instructions(reads, adaptive=True)]
        loads = [op for op in ops if op.startswith("LOAD_METHOD")]
        assert len(loads) == 1 and loads[0] != "LOAD_METHOD_ADAPTIVE", ops  # specialised
        assert "PRECALL_BOUND_METHOD" not in ops  # no bound method made
