"""psycopg 3 under ``elixirscope run``, against a real throwaway PostgreSQL server:
queries in place with their line, parameters redacted, transactions, and a server
that stops mid-run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from postgres import postgres, server_or_skip  # noqa: F401 - postgres: a fixture
from recorded_programs import TIMEOUT_S, calltree, events, find_call, line_of, plain, recorded

N = 3

PROGRAM = f'''
import sys

import psycopg
from psycopg import sql


def set_up(conn, table):
    conn.execute(sql.SQL("CREATE TABLE {{}} (id serial PRIMARY KEY, owner text, secret text)").format(sql.Identifier(table)))
    with conn.cursor() as cur:
        cur.executemany(sql.SQL("INSERT INTO {{}} (owner, secret) VALUES (%s, %s)").format(sql.Identifier(table)),
                        [(f"user-{{i}}", "hunter2-very-secret") for i in range({N})])
    conn.commit()


def owners(conn, table):
    found = []
    for (ident,) in conn.execute(sql.SQL("SELECT id FROM {{}} ORDER BY id").format(sql.Identifier(table))).fetchall():
        found.append(conn.execute(sql.SQL("SELECT owner FROM {{}} WHERE id = %(id)s").format(sql.Identifier(table)), {{"id": ident}}).fetchone()[0])  # per row
    return found


def transfer(conn, table):
    with conn.transaction():
        conn.execute(sql.SQL("UPDATE {{}} SET owner = 'nobody' WHERE id = 1").format(sql.Identifier(table)))
    try:
        with conn.transaction():
            conn.execute("SELECT 1 / 0")
    except psycopg.errors.DivisionByZero as exc:
        print("refused:", type(exc).__name__)
    with conn.transaction():
        conn.execute(sql.SQL("UPDATE {{}} SET owner = 'somebody' WHERE id = 2").format(sql.Identifier(table)))
        try:
            with conn.transaction():  # a savepoint: its failure leaves the transaction going
                conn.execute(sql.SQL("INSERT INTO {{}} (id, owner) VALUES (1, %s)").format(sql.Identifier(table)), ("user-taken",))
        except psycopg.errors.UniqueViolation as exc:
            print("kept:", type(exc).__name__)


def bulk(conn, table):
    with conn.cursor() as cur:
        with cur.copy(sql.SQL("COPY {{}} (owner, secret) FROM STDIN").format(sql.Identifier(table))) as copy:
            for i in range(5):
                copy.write_row((f"bulk-{{i}}", "s"))
    with conn.cursor(name="walker") as cur:
        cur.execute(sql.SQL("SELECT owner FROM {{}} WHERE owner LIKE %s ORDER BY id").format(sql.Identifier(table)), ("bulk-%",))
        print("walked", [row[0] for row in cur.fetchmany(2)], len(cur.fetchall()))


with psycopg.connect(sys.argv[1], autocommit=False) as conn:
    set_up(conn, sys.argv[2])
    print(owners(conn, sys.argv[2]))
    conn.commit()
    bulk(conn, sys.argv[2])
    conn.commit()
    conn.autocommit = True
    transfer(conn, sys.argv[2])
'''


@pytest.fixture(scope="module")
def shop(postgres, tmp_path_factory) -> tuple[Path, list[dict]]:  # noqa: F811
    where = tmp_path_factory.mktemp("pg")
    script = where / "shop.py"
    script.write_text(PROGRAM)
    expected = plain(script, postgres.dsn, "plain_items")
    assert expected.returncode == 0, expected.stderr
    data = where / "data"
    done = recorded(script, data, postgres.dsn, "items")
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected.stdout
    return data, events(data)


def test_queries_are_in_place_with_the_line_that_issued_them(shop) -> None:
    data, evs = shop
    entry = next(e for e in evs if e["type"] == "call" and e["function"] == "__main__.owners")
    node = find_call(calltree(data, entry["correlation_id"])["calls"], "__main__.owners")
    assert node is not None
    queries = [e for e in node["events"] if e["type"] == "query"]
    assert len(queries) == 1 + N
    assert queries[0]["statement"] == 'SELECT id FROM "items" ORDER BY id'
    assert queries[0]["rows"] == N
    assert {(q["statement"], q["line"], q["parameters"]) for q in queries[1:]} == {
        ('SELECT owner FROM "items" WHERE id = %(id)s', line_of(PROGRAM, "# per row"), "{'id': <redacted>}")
    }
    assert all(q["system"] == "postgresql" and q["source"] == "psycopg" for q in queries)
    assert queries[0]["database"].startswith("postgresql://postgres@127.0.0.1:")


def test_parameters_are_redacted_and_transactions_recorded(shop) -> None:
    _, evs = shop
    assert not any("hunter2" in str(e) or "user-" in str(e) for e in evs)
    many = next(e for e in evs if e["type"] == "query" and e["many"])
    assert many["many"] == N and many["parameters"] == "(<redacted>, <redacted>)"
    tx = [(e["action"], e["caller"], e["error"]) for e in evs if e["type"] == "tx"]
    assert tx == [
        ("begin", "__main__.set_up", None),  # implicit, before the first statement
        ("commit", "__main__.set_up", None),
        ("begin", "__main__.owners", None),
        ("commit", "__main__.<module>", None),
        ("begin", "__main__.bulk", None),  # implicit, before the COPY
        ("commit", "__main__.<module>", None),
        ("begin", "__main__.transfer", None),  # with conn.transaction()
        ("commit", "__main__.transfer", None),
        ("begin", "__main__.transfer", None),
        ("rollback", "__main__.transfer", None),
        ("begin", "__main__.transfer", None),
        ("savepoint", "__main__.transfer", None),  # a block inside the transaction
        ("rollback_savepoint", "__main__.transfer", None),
        ("commit", "__main__.transfer", None),
    ]
    opened = [e["open_ns"] for e in evs if e["type"] == "tx" and e["action"] == "commit"]
    assert opened[-1] > 0  # the savepoint's steps leave the transaction's begin as it was
    failed = [e for e in evs if e["type"] == "query" and e["error"]]
    assert (failed[0]["statement"], failed[0]["error"]) == ("SELECT 1 / 0", "DivisionByZero: division by zero")
    # PostgreSQL's DETAIL quotes the row's values: its columns stay, its values do not
    assert "Key (id)=(<redacted>) already exists" in failed[1]["error"]


STOPPED = '''
import sys

import psycopg

conn = psycopg.connect(sys.argv[1], autocommit=True)
conn.execute("SELECT 1")
print("connected", flush=True)
sys.stdin.readline()  # meanwhile the server stops
try:
    conn.execute("SELECT 2")
    print("no error")
except Exception as exc:
    print(f"{type(exc).__module__}.{type(exc).__name__}", isinstance(exc, psycopg.OperationalError))
    print(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
'''


def test_a_server_that_stops_mid_run_raises_what_it_would_and_is_recorded(tmp_path: Path) -> None:
    server = server_or_skip()
    script = tmp_path / "stopped.py"
    script.write_text(STOPPED)
    data = tmp_path / "data"
    argvs = [
        [sys.executable, str(script), server.dsn],
        [sys.executable, "-m", "elixirscope", "run", "--data-dir", str(data), str(script), server.dsn],
    ]
    procs = [
        subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=tmp_path)
        for argv in argvs
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "connected\n"
    finally:
        server.stop()
    outputs = [proc.communicate("go\n", timeout=TIMEOUT_S) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    (plain_out, _), (recorded_out, _) = outputs
    plain_type, recorded_type = plain_out.splitlines()[0], recorded_out.splitlines()[0]
    assert recorded_type == plain_type  # e.g. psycopg.errors.AdminShutdown True
    assert recorded_type.endswith(" True")  # an OperationalError, whichever the server said
    failed = [e for e in events(data, "--type", "query") if e["error"]]
    assert [f["statement"] for f in failed] == ["SELECT 2"]
    name = recorded_type.split()[0].rpartition(".")[2]
    assert failed[0]["error"].startswith(f"{name}: {recorded_out.splitlines()[1][:40]}")


ORM_ON_POSTGRES = '''
import sys

from sqlalchemy import create_engine, text

engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{sys.argv[1]}/postgres")


def store(key, value):
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS kv (k text, v text)"))
        conn.execute(text("INSERT INTO kv VALUES (:k, :v)"), {"k": key, "v": value})


store("a", "hunter2-very-secret")
with engine.connect() as conn:
    print(conn.execute(text("SELECT count(*) FROM kv")).scalar())
'''


def test_sqlalchemy_on_postgresql_is_recorded_once_at_the_driver(postgres, tmp_path: Path) -> None:  # noqa: F811
    script = tmp_path / "orm_pg.py"
    script.write_text(ORM_ON_POSTGRES)
    done = recorded(script, tmp_path / "data", str(postgres.port))
    assert done.returncode == 0, done.stderr
    evs = [e for e in events(tmp_path / "data") if e["type"] in ("query", "tx")]
    assert not any("hunter2" in str(e) for e in evs)
    queries = [(e["statement"], e["source"], e["caller"]) for e in evs if e["type"] == "query"]
    # once each, by the psycopg integration (not SQLAlchemy's events), and not the
    # queries SQLAlchemy's dialect runs to set a connection up
    assert queries == [
        ("CREATE TABLE IF NOT EXISTS kv (k text, v text)", "psycopg", "__main__.store"),
        ("INSERT INTO kv VALUES (%(k)s, %(v)s)", "psycopg", "__main__.store"),
        ("SELECT count(*) FROM kv", "psycopg", "__main__.<module>"),
    ]
    # psycopg begins a transaction before a read too: SQLAlchemy's rollback ends it
    assert [e["action"] for e in evs if e["type"] == "tx"] == ["begin", "commit", "begin", "rollback"]
    assert all(e["database"] == postgres.url for e in evs), {e["database"] for e in evs}


ASYNC = '''
import asyncio
import sys

import psycopg


async def count_owners(dsn):
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        async with conn.transaction():
            await conn.execute("CREATE TEMP TABLE owners (name text)")
            await conn.execute("INSERT INTO owners VALUES (%s)", ("ada",))
        cur = await conn.execute("SELECT count(*) FROM owners")  # awaited
        return (await cur.fetchone())[0]


print(asyncio.run(count_owners(sys.argv[1])))
'''


def test_async_connections_are_recorded_with_the_line_of_their_await(postgres, tmp_path: Path) -> None:  # noqa: F811
    script = tmp_path / "async_pg.py"
    script.write_text(ASYNC)
    done = recorded(script, tmp_path / "data", postgres.dsn)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1\n"
    evs = [e for e in events(tmp_path / "data") if e["type"] in ("query", "tx")]
    shown = [(e["type"], e.get("statement") or e.get("action"), e["caller"]) for e in evs]
    assert shown == [
        ("tx", "begin", "__main__.count_owners"),
        ("query", "CREATE TEMP TABLE owners (name text)", "__main__.count_owners"),
        ("query", "INSERT INTO owners VALUES (%s)", "__main__.count_owners"),
        ("tx", "commit", "__main__.count_owners"),
        ("tx", "begin", "__main__.count_owners"),  # implicit: the connection is not autocommit
        ("query", "SELECT count(*) FROM owners", "__main__.count_owners"),
        ("tx", "commit", "__main__.count_owners"),  # async with conn: commits on the way out
    ]
    assert evs[-2]["line"] == line_of(ASYNC, "# awaited") and evs[-2]["rows"] == 1
    entry = next(e for e in events(tmp_path / "data", "--type", "call") if e["function"] == "__main__.count_owners")
    assert {e["parent_id"] for e in evs} == {entry["id"]}  # in place, under the coroutine's call


def test_copy_and_a_named_cursor_are_queries(shop) -> None:
    data, evs = shop
    entry = next(e for e in evs if e["type"] == "call" and e["function"] == "__main__.bulk")
    node = find_call(calltree(data, entry["correlation_id"])["calls"], "__main__.bulk")
    assert node is not None
    queries = [e for e in node["events"] if e["type"] == "query"]
    assert [(q["statement"], q["rows"], q["line"]) for q in queries] == [
        ('COPY "items" (owner, secret) FROM STDIN', 5, line_of(PROGRAM, "with cur.copy(")),
        (
            'DECLARE "walker" CURSOR FOR SELECT owner FROM "items" WHERE owner LIKE %s ORDER BY id',
            queries[1]["rows"],
            line_of(PROGRAM, "WHERE owner LIKE"),
        ),
    ]
    assert queries[1]["parameters"] == "(<redacted>,)"


ASYNC_BULK = '''
import asyncio
import sys

import psycopg


async def bulk(dsn):
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("CREATE TEMP TABLE names (name text)")
        async with conn.cursor() as cur:
            async with cur.copy("COPY names (name) FROM STDIN") as copy:
                for i in range(4):
                    await copy.write_row((f"n{i}",))
            async with conn.transaction():
                async with conn.cursor(name="walker") as named:
                    await named.execute("SELECT name FROM names WHERE name > %s ORDER BY name", ("n0",))
                    walked = [row[0] for row in await named.fetchall()]
            streamed = [row[0] async for row in cur.stream("SELECT name FROM names ORDER BY name")]
            first = None
            async for row in cur.stream("SELECT name FROM names ORDER BY name DESC"):
                first = row[0]
                break  # left early: the query has the rows given
        return walked, streamed, first


def stream(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [row[0] for row in conn.cursor().stream("SELECT generate_series(1, %s)", (3,))]


print(asyncio.run(bulk(sys.argv[1])), stream(sys.argv[1]))
'''


def test_async_copy_named_cursor_and_streams_are_queries(postgres, tmp_path: Path) -> None:  # noqa: F811
    script = tmp_path / "async_bulk.py"
    script.write_text(ASYNC_BULK)
    expected = plain(script, postgres.dsn)
    assert expected.returncode == 0, expected.stderr
    done = recorded(script, tmp_path / "data", postgres.dsn)
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected.stdout
    evs = [e for e in events(tmp_path / "data") if e["type"] == "query"]
    assert [(e["statement"], e["rows"], e["caller"]) for e in evs[1:]] == [
        ("COPY names (name) FROM STDIN", 4, "__main__.bulk"),
        ('DECLARE "walker" CURSOR FOR SELECT name FROM names WHERE name > %s ORDER BY name',
         evs[2]["rows"], "__main__.bulk"),
        ("SELECT name FROM names ORDER BY name", 4, "__main__.bulk.<locals>.<listcomp>"),
        ("SELECT name FROM names ORDER BY name DESC", 1, "__main__.bulk"),
        ("SELECT generate_series(1, %s)", 3, "__main__.stream.<locals>.<listcomp>"),
    ]  # a comprehension is a function of its own in Python 3.11: the loop's caller
    assert evs[2]["parameters"] == "(<redacted>,)"
    assert all(e["error"] is None for e in evs)


def test_django_on_postgresql_is_recorded_at_psycopg_with_the_views_lines(
    postgres, tmp_path: Path  # noqa: F811
) -> None:
    """Django's PostgreSQL backend runs on psycopg 3: its cursors are psycopg's subclasses,
    recorded there, the walk passing Django's frames to the view's line."""
    pytest.importorskip("django")
    from test_db_django import DJANGO

    sqlite = '{"ENGINE": "django.db.backends.sqlite3", "NAME": sys.argv[1]}'
    assert sqlite in DJANGO
    on_pg = DJANGO.replace(
        sqlite,
        '{"ENGINE": "django.db.backends.postgresql", "NAME": "postgres", "USER": "postgres",'
        ' "HOST": "127.0.0.1", "PORT": sys.argv[1]}',
    )
    script = tmp_path / "notes_site.py"
    script.write_text(on_pg)
    done = recorded(script, tmp_path / "data", str(postgres.port))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:3] == ["{'total': 1, 'plus': 2}", "{'total': 2, 'plus': 3}", "500"]
    evs = events(tmp_path / "data")
    views = [e for e in evs if e["type"] == "call" and e["function"] == "__main__.notes"]
    assert views
    for view in views:
        mine = [e for e in evs if e["type"] == "query" and e["parent_id"] == view["id"]]
        lines = {(q["statement"].split(" ")[0], q["line"]) for q in mine if q["caller"] == "__main__.notes"}
        assert ("INSERT", line_of(on_pg, "the ORM's insert")) in lines, lines
        assert ("SELECT", line_of(on_pg, "raw, Django's placeholders")) in lines, lines
        assert all(q["source"] == "psycopg" and q["system"] == "postgresql" for q in mine)
