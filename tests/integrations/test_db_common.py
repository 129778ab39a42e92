"""The database integrations' shared parts, in process: redaction of parameters, what a
transaction statement is, the events' contract and text, explicit enabling in code."""

from __future__ import annotations

import inspect
import sqlite3
import string
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlite_recording import sqlite_recorded

from elixirscope.capture import recorder
from elixirscope.contracts.trace import (
    DatabaseQuery,
    DatabaseTransaction,
    PubSubDelivery,
    PubSubPublish,
    decode_batch,
    encode_batch,
)
from elixirscope.integrations import db_common
from elixirscope.integrations import sqlite as sqlite_integration
from elixirscope.query.calltree import describe


@pytest.fixture
def mode() -> Iterator[None]:
    yield
    db_common.set_parameter_mode("redacted")


def test_parameters_are_redacted_to_their_shape_by_default() -> None:
    assert db_common.parameters_text(("ada", 42)) == "(<redacted>, <redacted>)"
    assert db_common.parameters_text(("ada",)) == "(<redacted>,)"
    assert db_common.parameters_text(["ada"]) == "[<redacted>]"
    assert db_common.parameters_text({"name": "ada"}) == "{'name': <redacted>}"
    assert db_common.parameters_text([("a", 1), ("b", 2)], many=True) == "(<redacted>, <redacted>)"
    assert db_common.parameters_text(iter([("a", 1)]), many=True) is None  # never read here
    assert db_common.parameters_text(()) is None and db_common.parameters_text(None) is None

    class Label(str):  # SQLAlchemy's _truncated_label: a str subclass with a repr of its own
        def __repr__(self) -> str:
            return f"_truncated_label({str.__repr__(self)})"

    assert db_common.parameters_text({"stock": 1, Label("books_id"): 2}) == (
        "{'stock': <redacted>, 'books_id': <redacted>}"
    )


def test_values_go_through_the_redaction_rules_and_none_leaves_them_out(mode) -> None:
    db_common.set_parameter_mode("values")
    assert (
        db_common.parameters_text({"name": "ada", "password": "x"})
        == "{'name': 'ada', 'password': <redacted>}"
    )
    assert db_common.parameters_text(("Bearer abc.def",)) == "('Bearer <redacted>',)"
    assert db_common.parameters_text((4111111111111111,)) == "('<redacted>',)"
    db_common.set_parameter_mode("none")
    assert db_common.parameters_text(("ada",)) is None
    with pytest.raises(ValueError, match="integrations.db_parameters"):
        db_common.set_parameter_mode("all")


@given(st.lists(st.text(alphabet=string.digits + string.ascii_uppercase, min_size=1), max_size=20))
def test_no_redacted_value_leaks_into_the_text(values: list[str]) -> None:
    text = db_common.parameters_text(tuple(values)) or ""
    assert not any(ch in text for ch in string.digits + string.ascii_uppercase)
    assert text.count("<redacted>") == len(values)


@pytest.mark.parametrize(
    ("sql", "action"),
    [
        ("BEGIN", "begin"),
        ("  begin immediate;", "begin"),
        ("START TRANSACTION", "begin"),
        ("COMMIT", "commit"),
        ("end", "commit"),
        ("ROLLBACK", "rollback"),
        ("ROLLBACK TO SAVEPOINT a", "rollback_savepoint"),
        ("rollback transaction to a;", "rollback_savepoint"),
        ("ROLLBACK TRANSACTION", "rollback"),
        ("SAVEPOINT sa_savepoint_1", "savepoint"),
        ("RELEASE SAVEPOINT sa_savepoint_1", "release_savepoint"),
        ("release a", "release_savepoint"),
        ("SAVEPOINT", None),
        ("START something", None),
        ("SELECT 1", None),
        ("", None),
    ],
)
def test_what_a_transaction_statement_is(sql: str, action: str | None) -> None:
    assert db_common.transaction_action(sql) == action


def test_statements_are_bounded_and_scrubbed() -> None:
    assert (
        db_common.statement_text("SELECT * FROM t WHERE password = 'hunter2'").count("hunter2") == 0
    )
    long = "SELECT " + "x, " * 5000
    assert len(db_common.statement_text(long)) == db_common.MAX_STATEMENT_CHARS + 1
    assert db_common.statement_text(b"SELECT 1") == "SELECT 1"


def test_a_failing_recording_is_counted_never_raised() -> None:
    class Broken:
        def emit(self, *args: object) -> int:
            raise RuntimeError("ring gone")

    before = db_common.STATS["errors"]
    db_common.emit_query(
        Broken(), db_common.QueryTimer(), "sqlite3", "sqlite", None, "SELECT 1", None
    )
    db_common.emit_transaction(Broken(), None, "sqlite3", "sqlite", None, "begin")
    assert db_common.STATS["errors"] == before + 2
    assert db_common.STATS["last_error"] == "RuntimeError: ring gone"


def test_the_events_round_trip_through_a_batch_and_read_as_text() -> None:
    envelope = (1, 2, 3, "cid", 0)
    events = [
        (
            "query",
            *envelope,
            "sqlite",
            "app.db",
            "SELECT ?",
            "(<redacted>,)",
            1500,
            2,
            "/a/app.py",
            7,
            "app.load",
            None,
            "sqlite3",
            0,
        ),
        (
            "tx",
            *envelope,
            "postgresql",
            None,
            "rollback",
            0,
            None,
            0,
            None,
            "OperationalError: gone",
            "psycopg",
        ),
        ("pub", *envelope, "p1", "news", "pub", "'hello'"),
        ("deliver", *envelope, "p1", "news", "ActorAddr-/A~b", True),
    ]
    frame = encode_batch(
        node="n", pid=1, program="p", producer="n:1:0", seq=1, sent_ts=0, dropped=0, events=events
    )
    got = decode_batch(frame).events
    assert [type(e) for e in got] == [
        DatabaseQuery,
        DatabaseTransaction,
        PubSubPublish,
        PubSubDelivery,
    ]
    assert [describe(e) for e in got] == [
        "query sqlite(app.db): SELECT ?  (<redacted>,) -> 2 rows  [1.5 µs]  …/a/app.py:7",
        "tx rollback postgresql !! OperationalError: gone",
        "publish news by pub: 'hello'  #p1",
        "deliver news -> ActorAddr-/A~b (replayed)  #p1",
    ]


def test_enabled_in_code_a_connection_records_and_disabled_stops() -> None:
    had = recorder.current()
    rec = recorder.install() if had is None else had
    rec.ring.drain()
    try:
        assert sqlite_integration.enable()
        assert not sqlite_integration.enable()  # once
        conn = sqlite3.connect(":memory:")
        assert isinstance(conn, sqlite3.Connection)
        conn.execute("CREATE TABLE t (x)")
        with pytest.raises(sqlite3.OperationalError, match="no such table: nowhere"):
            conn.execute("SELECT * FROM nowhere")
        assert sqlite_integration.disable()
        conn.execute("SELECT 1")  # a wrapped connection stops recording too
        assert sqlite3.connect is sqlite_integration._original_connect
        recorded = [e for e in rec.ring.drain() if e[0] == "query"]
    finally:
        sqlite_integration.disable()
        if had is None:
            recorder.uninstall()
    assert [(e[8], e[15]) for e in recorded] == [
        ("CREATE TABLE t (x)", None),
        ("SELECT * FROM nowhere", "OperationalError: no such table: nowhere"),
    ]


def test_factories_with_their_own_methods_run_as_they_are() -> None:
    """A connection factory with its own methods is left unrecorded; a cursor factory
    with its own execute (Django's converts its placeholders) runs as it is, and what
    its super().execute hands sqlite3 is recorded, rows counted."""

    class Mine(sqlite3.Connection):
        def cursor(self):  # no factory argument: wrapping would break it
            return super().cursor()

    class Converting(sqlite3.Cursor):
        def execute(self, sql, params=None):  # Django's SQLiteCursorWrapper, in short
            self.asked = sql
            if params is None:
                return super().execute(sql)
            return super().execute(sql.replace("%s", "?"), params)

    class Direct(sqlite3.Cursor):
        def execute(self, sql):  # sqlite3's own, not through super(): not ours to see
            return sqlite3.Cursor.execute(self, sql)

    class Plain(sqlite3.Connection):
        pass

    with sqlite_recorded() as rec:
        mine = sqlite3.connect(":memory:", factory=Mine)
        assert type(mine) is Mine
        assert mine.cursor().execute("SELECT 1").fetchone() == (1,)
        plain = sqlite3.connect(":memory:", factory=Plain)
        assert isinstance(plain, Plain) and type(plain) is not Plain
        cursor = plain.cursor(Converting)
        assert isinstance(cursor, Converting) and type(cursor) is not Converting
        assert cursor.execute("SELECT %s + 1", (2,)).fetchall() == [(3,)]
        assert cursor.asked == "SELECT %s + 1"  # its own execute ran
        assert cursor.execute("SELECT 5").fetchone() == (5,)
        assert plain.cursor(Direct).execute("SELECT 6").fetchone() == (6,)
        plain.execute("SELECT 4")
        cursor.close()
        recorded = [(e[8], e[11]) for e in rec.ring.drain() if e[0] == "query"]
    assert sorted(recorded) == [("SELECT 4", 0), ("SELECT 5", 1), ("SELECT ? + 1", 1)]


_ISSUER = "def issue(probe):\n    return probe()\n"


def test_a_program_function_equal_to_a_library_one_is_still_the_program() -> None:
    """Code objects compare (and hash) by their contents, not their file: a program's
    function identical to a library's must not take the library's cached verdict."""
    library: dict = {"__name__": "sqlalchemy.elixirscope_test_double"}
    program: dict = {"__name__": "elixirscope_test_program"}
    exec(compile(_ISSUER, "/lib/site-packages/sqlalchemy/double.py", "exec"), library)
    exec(compile(_ISSUER, "/app/program.py", "exec"), program)
    assert library["issue"].__code__ == program["issue"].__code__  # equal, not the same
    from_library = library["issue"](db_common.issuing_frame)
    assert from_library[2] != "sqlalchemy.elixirscope_test_double.issue"  # walked past it
    assert program["issue"](db_common.issuing_frame) == (
        "/app/program.py",
        2,
        "elixirscope_test_program.issue",
    )


_TASK = "async def close(probe):\n    return probe()\n"
_TASK_SQL = "async def run(conn, sql):\n    return conn.execute(sql).fetchall()\n"


def test_a_statement_of_a_task_a_library_started_has_no_line_not_the_loops_runner() -> None:
    """SQLAlchemy's AsyncSession ends its transaction in a task of its own: outwards of that
    task's library frames is the event loop, then whatever runs it (a server's
    ``asyncio.run``), which issued nothing - the walk stops at the loop."""
    import asyncio

    library: dict = {"__name__": "sqlalchemy.elixirscope_test_task"}
    exec(compile(_TASK, "/lib/site-packages/sqlalchemy/task.py", "exec"), library)

    async def in_its_own_task():
        return await asyncio.create_task(library["close"](db_common.issuing_frame))

    async def awaited_here():
        return await library["close"](db_common.issuing_frame)  # this line issued it

    assert asyncio.run(in_its_own_task()) == (None, 0, None)
    file, line, caller = asyncio.run(awaited_here())
    assert (file, caller) == (__file__, f"{__name__}.{awaited_here.__qualname__}")
    assert line == awaited_here.__code__.co_firstlineno + 1


def test_a_sqlite3_statement_of_such_a_task_is_recorded_with_no_line() -> None:
    import asyncio

    library: dict = {"__name__": "sqlalchemy.elixirscope_test_task"}
    exec(compile(_TASK_SQL, "/lib/site-packages/sqlalchemy/task.py", "exec"), library)
    with sqlite_recorded() as rec:
        conn = sqlite3.connect(":memory:")

        async def both():
            await asyncio.create_task(library["run"](conn, "SELECT 7"))
            await library["run"](conn, "SELECT 8")  # issued here

        for _ in range(2):  # the second time from the walk's caches
            asyncio.run(both())
        conn.close()
        recorded = [e for e in rec.ring.drain() if e[0] == "query"]
    assert [(e[8], e[12], e[13]) for e in recorded] == 2 * [
        ("SELECT 7", None, 0),
        ("SELECT 8", __file__, both.__code__.co_firstlineno + 2),
    ]


_DEEP = 600  # more code objects than the 512-slot table the walk's cache once was


def test_a_query_issued_again_under_many_library_frames_walks_from_its_cache() -> None:
    """The issuing line's walk keeps each code object's place on the code itself: a
    query issued again from the same stack reads no frame object, however many
    library functions lie under it. (A table indexed by the code's address made two
    codes sharing a slot evict each other: such a process walked every frame again at
    every query, ~10 k instructions under a SQLAlchemy statement.)"""
    from elixirscope.capture import _select

    speedups = _select.speedups()
    if speedups is None or not hasattr(speedups, "sqlite_frame_walks"):
        pytest.skip("the C accelerator is not built")
    source = (
        "".join(f"def f{i}(conn, sql):\n    return f{i + 1}(conn, sql)\n" for i in range(_DEEP))
        + f"def f{_DEEP}(conn, sql):\n    return conn.execute(sql).fetchall()\n"
    )
    library: dict = {"__name__": "sqlalchemy.elixirscope_test_deep"}
    exec(compile(source, "/lib/site-packages/sqlalchemy/deep.py", "exec"), library)
    with sqlite_recorded() as rec:
        conn = sqlite3.connect(":memory:")
        walks = []
        for _ in range(3):
            library["f0"](conn, "SELECT 9")  # this line issued it
            walks.append(speedups.sqlite_frame_walks())
        conn.close()
        recorded = [e for e in rec.ring.drain() if e[0] == "query"]
    lines, first = inspect.getsourcelines(
        test_a_query_issued_again_under_many_library_frames_walks_from_its_cache
    )
    issued_at = (__file__, first + next(i for i, t in enumerate(lines) if "issued it" in t))
    assert [(e[8], e[12], e[13]) for e in recorded] == 3 * [("SELECT 9", *issued_at)]
    assert walks[1] == walks[0] and walks[2] == walks[0]  # the first walk alone read frames


def test_the_c_walk_stops_where_the_python_walk_does():
    """``_speedups.walk_known`` and ``db_common._walk_known``: the first frame outwards
    not known as a library's, with its entry, for every choice of known frames."""
    import itertools
    import sys

    from elixirscope.capture import _select

    speedups = _select.speedups()
    if speedups is None:
        pytest.skip("C accelerator not built")

    def depth(n, then):
        return depth(n - 1, then) if n else then(sys._getframe())

    frames = depth(5, _chain)
    codes = [f.f_code for f in frames]
    for marks in itertools.product((None, "lib", "prog"), repeat=4):
        places = {}
        for code, mark in zip(codes, marks, strict=False):
            if mark == "lib":
                places[id(code)] = (code, None)
            elif mark == "prog":
                places[id(code)] = (code, ("file", "name"))
        assert speedups.walk_known(frames[0], places) == db_common._walk_known(frames[0], places)
    library = {id(code): (code, None) for code in codes}
    outer = frames[-1].f_back
    expected = db_common._walk_known(frames[0], library)
    assert speedups.walk_known(frames[0], library) == expected
    assert expected[0] is outer or (outer is None and expected is None)
    with pytest.raises(TypeError, match="Expected a frame"):
        speedups.walk_known("not a frame", {})


def _chain(frame):
    out = []
    while frame is not None and len(out) < 6:
        out.append(frame)
        frame = frame.f_back
    return out
