"""SQLAlchemy under ``elixirscope run``: ORM lazy loads as 1 + N queries under one call,
async sessions with the line of their ``await``, failures and transactions."""

from __future__ import annotations

from pathlib import Path

import pytest
from recorded_programs import calltree, events, find_call, line_of, plain, recorded

N = 4

ORM = f'''
import asyncio
import sys

from sqlalchemy import ForeignKey, create_engine, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    tasks: Mapped[list["Task"]] = relationship(back_populates="project")


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    project: Mapped[Project] = relationship(back_populates="tasks")


def set_up(engine):
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        for p in range({N}):
            session.add(Project(name=f"project-{{p}}", tasks=[Task(title="write")]))
        session.commit()


def projects_with_tasks(engine):
    with Session(engine) as session:
        counts = {{}}
        for project in session.scalars(select(Project).order_by(Project.id)):
            counts[project.name] = len(project.tasks)  # lazy load
        return counts


def nested(engine):
    with Session(engine) as session:
        session.add(Project(name="kept"))
        try:
            with session.begin_nested():  # a savepoint
                session.add(Project(id=1, name="taken"))
        except Exception as exc:
            print("savepoint:", type(exc).__name__)
        session.commit()


def broken(engine):
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT * FROM nowhere"))
    except OperationalError as exc:
        print("failed:", type(exc.orig).__name__)


async def titles(url):
    engine = create_async_engine(url)
    async with AsyncSession(engine) as session:
        result = await session.execute(select(Task.title).where(Task.project_id == 1))  # awaited
        found = result.scalars().all()
    await engine.dispose()
    return found


path = sys.argv[1]
engine = create_engine(f"sqlite:///{{path}}")
set_up(engine)
print(projects_with_tasks(engine))
nested(engine)
broken(engine)
print(asyncio.run(titles(f"sqlite+aiosqlite:///{{path}}")))
'''


@pytest.fixture(scope="module")
def orm(tmp_path_factory) -> tuple[Path, list[dict]]:
    where = tmp_path_factory.mktemp("orm")
    script = where / "orm.py"
    script.write_text(ORM)
    data = where / "data"
    expected = plain(script, str(where / "plain.db"))
    assert expected.returncode == 0, expected.stderr
    done = recorded(script, data, str(where / "recorded.db"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected.stdout
    return data, events(data)


def test_lazy_loads_are_one_plus_n_under_the_call_with_their_line(orm) -> None:
    data, evs = orm
    entry = next(e for e in evs if e["type"] == "call" and e["function"].endswith("projects_with_tasks"))
    node = find_call(calltree(data, entry["correlation_id"])["calls"], "__main__.projects_with_tasks")
    assert node is not None
    queries = [e for e in node["events"] if e["type"] == "query"]
    assert len(queries) == 1 + N
    assert queries[0]["line"] == line_of(ORM, "for project in session.scalars(")
    assert {q["line"] for q in queries[1:]} == {line_of(ORM, "# lazy load")}
    # a sync engine on sqlite3: recorded at the driver, by the sqlite3 integration
    assert all(q["source"] == "sqlite3" and q["system"] == "sqlite" for q in queries)
    assert all(q["parameters"] in (None, "(<redacted>,)") for q in queries)
    # reads only: sqlite3 began no transaction (SQLAlchemy's own begin is not one)
    assert [e for e in node["events"] if e["type"] == "tx"] == []


def test_a_transaction_end_has_how_long_it_was_open(orm) -> None:
    _data, evs = orm
    for source in ("sqlite3", "sqlalchemy"):  # at the driver, and aiosqlite's by SQLAlchemy
        txs = [e for e in evs if e["type"] == "tx" and e["source"] == source]
        ends = [e for e in txs if e["action"] in ("commit", "rollback")]
        assert ends and all(e["open_ns"] > 0 for e in ends), source
        _each_end_was_open_as_long_as_its_statements(evs, txs, ends)


def test_a_nested_transaction_is_a_savepoint_rolled_back_inside_its_transaction(orm) -> None:
    """session.begin_nested() on SQLite (recorded at sqlite3): SAVEPOINT and ROLLBACK TO are
    steps of the transaction, not its begin or end; its commit still says how long it was open."""
    _data, evs = orm
    txs = [e for e in evs if e["type"] == "tx" and e["caller"] == "__main__.nested"]
    assert [t["action"] for t in txs] == ["begin", "savepoint", "rollback_savepoint", "commit"]
    assert txs[-1]["open_ns"] > 0 and all(t["source"] == "sqlite3" for t in txs)


def _each_end_was_open_as_long_as_its_statements(evs, txs, ends) -> None:
    assert all(e["open_ns"] == 0 for e in txs if e["action"] == "begin")
    # a transaction was open at least as long as the statements it ran took
    for end in ends:
        begin = max((e["ts"] for e in txs if e["action"] == "begin" and e["ts"] < end["ts"]))
        inside = [e for e in evs if e["type"] == "query" and begin < e["ts"] < end["ts"]]
        assert end["open_ns"] >= sum(q["duration_ns"] for q in inside)


def test_esql_reads_how_long_each_transaction_was_open(orm) -> None:
    import json
    import sys

    from recorded_programs import run

    data, evs = orm
    ends = [e for e in evs if e["type"] == "tx" and e["action"] in ("commit", "rollback")]
    done = run(sys.executable, "-m", "elixirscope", "query", "--data-dir", str(data), "--format",
               "json", "action, open from transactions", cwd=data.parent)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["rows"]
    assert sorted(r["open"] for r in rows if r["action"] in ("commit", "rollback")) == sorted(
        e["open_ns"] for e in ends
    )
    assert {r["open"] for r in rows if r["action"] not in ("commit", "rollback")} == {None}


def test_esql_tells_which_integration_recorded_a_query(orm) -> None:
    import json
    import sys

    from recorded_programs import run

    data, evs = orm
    done = run(sys.executable, "-m", "elixirscope", "query", "--data-dir", str(data), "--format",
               "json", "source, count(*) from queries group by source", cwd=data.parent)
    assert done.returncode == 0, done.stderr
    counted = {r["source"]: r["count(*)"] for r in json.loads(done.stdout)["rows"]}
    queries = [e for e in evs if e["type"] == "query"]
    assert counted == {s: sum(q["source"] == s for q in queries) for s in ("sqlite3", "sqlalchemy")}


def test_each_statement_is_recorded_once(orm) -> None:
    _, evs = orm
    queries = [e for e in evs if e["type"] == "query"]
    # the sync engine's at the driver, the async engine's (aiosqlite) by SQLAlchemy's events
    assert {q["source"] for q in queries} == {"sqlite3", "sqlalchemy"}
    aio = {q["database"].partition(":")[0] for q in queries if q["source"] == "sqlalchemy"}
    assert aio == {"sqlite+aiosqlite"}
    inserts = [q for q in queries if q["statement"].startswith("INSERT INTO projects")]
    assert len(inserts) == N + 2  # set_up's, nested()'s two
    [awaited] = [q for q in queries if q["statement"].startswith("SELECT tasks.title")]
    assert awaited["source"] == "sqlalchemy"  # once: not also the sqlite3 integration


def test_a_failed_statement_is_recorded_with_its_error(orm) -> None:
    _, evs = orm
    failed = [e for e in evs if e["type"] == "query" and e["error"]]
    assert [(f["statement"], f["error"], f["caller"]) for f in failed] == [
        ("INSERT INTO projects (id, name) VALUES (?, ?)",
         "IntegrityError: UNIQUE constraint failed: projects.id", "__main__.nested"),
        ("SELECT * FROM nowhere", "OperationalError: no such table: nowhere", "__main__.broken"),
    ]  # fmt: skip


FLUSH = """
import asyncio
from sqlalchemy import String
from sqlalchemy.ext.asyncio import create_async_engine, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Base(DeclarativeBase):
    pass

class Car(Base):
    __tablename__ = "cars"
    id: Mapped[int] = mapped_column(primary_key=True)
    plate: Mapped[str] = mapped_column(String(10))
    seats: Mapped[int]

async def main():
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with async_sessionmaker(engine)() as session:
        session.add_all([Car(plate="B-2", seats=2), Car(plate="C-3", seats=5)])
        await session.commit()
    await engine.dispose()

asyncio.run(main())
"""


def test_an_orm_flush_s_inserts_are_single_rows_not_batches(tmp_path: Path) -> None:
    """SQLAlchemy's "insertmanyvalues" runs an ORM flush's INSERTs with RETURNING under the
    executemany flag, each with one flattened parameter set: a row each, not a batch of as
    many rows as the set has values (it said `(x2)`)."""
    script = tmp_path / "flush.py"
    script.write_text(FLUSH)
    done = recorded(script, tmp_path / "data")
    assert done.returncode == 0, done.stderr
    inserts = [e for e in events(tmp_path / "data")
               if e["type"] == "query" and e["statement"].startswith("INSERT INTO cars")]  # fmt: skip
    assert len(inserts) == 2
    assert all(e["many"] == 0 and e["rows"] == 1 for e in inserts), inserts


def test_an_async_session_query_has_the_line_of_its_await(orm) -> None:
    _, evs = orm
    query = next(e for e in evs if e["type"] == "query" and e["database"].startswith("sqlite+aiosqlite"))
    assert query["statement"].startswith("SELECT tasks.title")
    assert query["line"] == line_of(ORM, "# awaited")
    assert query["caller"] == "__main__.titles"
    assert query["parameters"] == "(<redacted>,)"
    assert query["rows"] == 1  # what the async adapter fetched from aiosqlite at once
    entry = next(e for e in evs if e["type"] == "call" and e["function"] == "__main__.titles")
    assert query["parent_id"] == entry["id"]  # in place, under the coroutine's call


def test_an_async_sessions_closing_rollback_has_no_line_not_that_of_asyncio_run(orm) -> None:
    """AsyncSession.__aexit__ closes the session in a task of its own: its rollback is
    issued by no line of the program's (the walk stops at the event loop), not by the
    ``asyncio.run(...)`` line that runs the loop."""
    _, evs = orm
    txs = [e for e in evs if e["type"] == "tx" and e["database"].startswith("sqlite+aiosqlite")]
    assert [(t["action"], t["line"], t["caller"]) for t in txs] == [
        ("begin", line_of(ORM, "# awaited"), "__main__.titles"),
        ("rollback", 0, None),
    ]
    entry = next(e for e in evs if e["type"] == "call" and e["function"] == "__main__.titles")
    assert txs[1]["parent_id"] == entry["id"]  # still under the coroutine that began it


HELD = '''
import asyncio, json, time
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine("sqlite+aiosqlite:///held.db")


@event.listens_for(engine.sync_engine, "before_cursor_execute")
def hold_the_loop(conn, cursor, statement, *args):
    if "held" in statement:  # once the statement is under way, the loop is held
        asyncio.get_running_loop().call_soon(time.sleep, 0.4)


async def main():
    async with engine.connect() as conn:
        started = time.perf_counter()
        rows = (await conn.execute(text("SELECT 'held' AS x"))).all()
        waited = time.perf_counter() - started
        print(json.dumps({"rows": len(rows), "waited_over_0_4": waited >= 0.4}))
    await engine.dispose()


asyncio.run(main())
'''


def test_an_aiosqlite_statement_lasts_the_time_its_thread_spent_not_the_loops(tmp_path) -> None:
    """Another callback holds the event loop 0.4 s while aiosqlite's thread runs the
    statement: the await took 0.4 s, the statement's recorded duration is its thread's
    work alone (it said 0.4 s: another request's work taken for the database's)."""
    script = tmp_path / "held.py"
    script.write_text(HELD)
    done = recorded(script, tmp_path / "data")
    assert done.returncode == 0, done.stderr
    assert done.stdout == '{"rows": 1, "waited_over_0_4": true}\n' == plain(script).stdout
    (query,) = [e for e in events(tmp_path / "data") if e["type"] == "query"
                and e["statement"].startswith("SELECT 'held'")]  # fmt: skip
    assert 0 < query["duration_ns"] < 200_000_000, query  # the 0.4 s hold is not in it
    assert query["line"] == line_of(HELD, "rows = (await conn.execute")
