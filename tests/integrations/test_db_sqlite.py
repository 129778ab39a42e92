"""sqlite3 under ``elixirscope run``: queries in place in the call tree, with the line
that issued them; parameters redacted; transactions; a database that disappears."""

from __future__ import annotations

from pathlib import Path

import pytest
from recorded_programs import calltree, events, find_call, line_of, plain, recorded

N = 5

SHOP = f'''
import sqlite3
import sys


def set_up(conn):
    conn.execute("CREATE TABLE projects (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("CREATE TABLE tasks (id INTEGER PRIMARY KEY, project_id INT, title TEXT)")
    conn.execute("CREATE TABLE users (name TEXT, password TEXT)")
    conn.execute("CREATE TABLE vins (vin TEXT UNIQUE)")
    conn.execute("INSERT INTO vins VALUES ('V1')")
    for p in range({N}):
        conn.execute("INSERT INTO projects (name) VALUES (?)", (f"project-{{p}}",))
        conn.executemany("INSERT INTO tasks (project_id, title) VALUES (?, ?)",
                         [(p + 1, "write"), (p + 1, "test")])
    conn.commit()


def projects_with_tasks(conn):
    out = {{}}
    for pid, name in conn.execute("SELECT id, name FROM projects").fetchall():
        out[name] = conn.execute("SELECT title FROM tasks WHERE project_id = ?", (pid,)).fetchall()  # the loop
    return out


def sign_up(conn, name, secret):
    with conn:
        conn.execute("INSERT INTO users (name, password) VALUES (?, ?)", (name, secret))


def refused(conn):
    try:
        with conn:
            conn.execute("INSERT INTO users (name, password) VALUES ('x', 'y')")
            conn.execute("INSERT INTO nowhere VALUES (1)")
    except sqlite3.OperationalError as exc:
        print("refused:", exc)


def duplicate(conn):
    try:
        with conn:  # its first statement fails: the transaction it began is rolled back
            conn.execute("INSERT INTO vins VALUES ('V1')")
    except sqlite3.IntegrityError as exc:
        print("duplicate:", exc)


conn = sqlite3.connect(sys.argv[1])
set_up(conn)
print(sorted(projects_with_tasks(conn).items()))
sign_up(conn, "ada", "hunter2-very-secret")
refused(conn)
duplicate(conn)
print(conn.execute("SELECT count(*) FROM users").fetchone())
'''


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> tuple[Path, str, list[dict]]:
    where = tmp_path_factory.mktemp("shop")
    script = where / "shop.py"
    script.write_text(SHOP)
    data = where / "data"
    expected = plain(script, str(where / "plain.db"))
    done = recorded(script, data, str(where / "recorded.db"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected.stdout  # the program behaves as without ElixirScope
    return data, str(script), events(data)


def test_a_loop_of_queries_is_one_plus_n_under_its_call_with_the_loops_line(shop) -> None:
    data, script, evs = shop
    entry = next(e for e in evs if e["type"] == "call" and e["function"].endswith("projects_with_tasks"))
    tree = calltree(data, entry["correlation_id"])["calls"]
    node = find_call(tree, "__main__.projects_with_tasks")
    assert node is not None
    queries = [e for e in node["events"] if e["type"] == "query"]
    assert len(queries) == 1 + N
    assert queries[0]["statement"] == "SELECT id, name FROM projects"
    assert queries[0]["line"] == line_of(SHOP, 'for pid, name in conn.execute(')
    loop_line = line_of(SHOP, "# the loop")
    assert {(q["statement"], q["line"], q["file"]) for q in queries[1:]} == {
        ("SELECT title FROM tasks WHERE project_id = ?", loop_line, script)
    }
    assert all(q["caller"] == "__main__.projects_with_tasks" for q in queries)
    assert all(q["system"] == "sqlite" and q["database"].endswith("recorded.db") for q in queries)
    assert all(q["duration_ns"] > 0 and q["error"] is None for q in queries)
    # and the text forms show them in place
    text = calltree(data, entry["correlation_id"], as_json=False)
    assert text.count("query sqlite(") == 1 + N
    assert f"shop.py:{loop_line}" in text


def test_parameters_are_redacted_by_default(shop) -> None:
    _, _, evs = shop
    texts = [str(e) for e in evs]
    assert not any("hunter2" in t or "project-" in t for t in texts)
    insert = next(e for e in evs if e["type"] == "query" and "INTO users (name, password)" in e["statement"] and e["parameters"])
    assert insert["parameters"] == "(<redacted>, <redacted>)"
    many = next(e for e in evs if e["type"] == "query" and e["many"])
    assert many["many"] == 2 and many["rows"] == 2


def test_transactions_begin_commit_and_roll_back(shop) -> None:
    _, _, evs = shop
    tx = [(e["action"], e["caller"], e["error"]) for e in evs if e["type"] == "tx"]
    assert tx == [
        ("begin", "__main__.set_up", None),
        ("commit", "__main__.set_up", None),
        ("begin", "__main__.sign_up", None),
        ("commit", "__main__.sign_up", None),  # with conn: commits
        ("begin", "__main__.refused", None),
        ("rollback", "__main__.refused", None),  # with conn: rolls back on the error
        ("begin", "__main__.duplicate", None),  # begun by the statement that failed
        ("rollback", "__main__.duplicate", None),
    ]
    failed = next(e for e in evs if e["type"] == "query" and e["error"])
    assert failed["statement"] == "INSERT INTO nowhere VALUES (1)"
    assert failed["error"] == "OperationalError: no such table: nowhere"


def test_values_are_shown_through_the_redaction_rules_when_asked(tmp_path: Path) -> None:
    script = tmp_path / "p.py"
    script.write_text(
        "import sqlite3\n"
        "c = sqlite3.connect(':memory:')\n"
        "c.execute('CREATE TABLE u (name, password)')\n"
        "c.execute('INSERT INTO u VALUES (:name, :password)', {'name': 'ada', 'password': 'hunter2'})\n"
    )
    done = recorded(script, tmp_path / "data", env={"ELIXIRSCOPE_INTEGRATIONS__DB_PARAMETERS": "values"})
    assert done.returncode == 0, done.stderr
    insert = [e for e in events(tmp_path / "data", "--type", "query") if "INSERT" in e["statement"]]
    assert insert[0]["parameters"] == "{'name': 'ada', 'password': <redacted>}"


def test_switched_off_in_config_nothing_is_recorded(tmp_path: Path) -> None:
    script = tmp_path / "p.py"
    script.write_text("import sqlite3\nsqlite3.connect(':memory:').execute('SELECT 1')\n")
    done = recorded(script, tmp_path / "data", env={"ELIXIRSCOPE_INTEGRATIONS__SQLITE3": "false"})
    assert done.returncode == 0, done.stderr
    assert events(tmp_path / "data", "--type", "query") == []


VANISHING = '''
import shutil
import sqlite3
import sys
from pathlib import Path

where = Path(sys.argv[1])
where.mkdir()
conn = sqlite3.connect(where / "app.db")
conn.execute("CREATE TABLE t (x)")
conn.commit()
shutil.rmtree(where)  # the database's directory disappears under the program
try:
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    print("no error")
except Exception as exc:
    print(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
'''


def test_a_database_that_disappears_raises_what_it_would_and_is_recorded(tmp_path: Path) -> None:
    script = tmp_path / "vanish.py"
    script.write_text(VANISHING)
    expected = plain(script, str(tmp_path / "plain"))
    done = recorded(script, tmp_path / "data", str(tmp_path / "recorded"))
    assert expected.returncode == 0 and done.returncode == 0, done.stderr
    assert done.stdout == expected.stdout
    assert done.stdout.startswith("sqlite3.OperationalError: ")
    message = done.stdout.strip().removeprefix("sqlite3.")
    failed = [e for e in events(tmp_path / "data") if e["type"] in ("query", "tx") and e["error"]]
    assert [f["error"] for f in failed] == [message]


def test_esql_asks_which_line_ran_the_n_queries(shop) -> None:
    import json
    import sys

    from recorded_programs import run

    data, _, _ = shop
    loop_line = line_of(SHOP, "# the loop")
    done = run(sys.executable, "-m", "elixirscope", "query", "--data-dir", str(data), "--format",
               "json", "line, count(*) from queries of 'projects_with_tasks' group by line",
               cwd=data.parent)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["rows"]
    counts = {row["line"]: row["count(*)"] for row in rows}
    assert counts[loop_line] == N and sum(counts.values()) == 1 + N


def test_the_summary_shows_the_n_plus_one(shop) -> None:
    import json
    import sys

    from recorded_programs import run

    data, _, _ = shop
    done = run(sys.executable, "-m", "elixirscope", "summary", "--data-dir", str(data), "--json",
               cwd=data.parent)
    assert done.returncode == 0, done.stderr
    rows = {q["statement"]: q for q in json.loads(done.stdout)["queries"]}
    loop = rows["SELECT title FROM tasks WHERE project_id = ?"]
    assert (loop["count"], loop["most_in_one_chain"], loop["errors"]) == (N, N, 0)
    assert loop["issued_at"] == f"shop.py:{line_of(SHOP, '# the loop')}"
    assert loop["caller"] == "__main__.projects_with_tasks"
    assert rows["INSERT INTO nowhere VALUES (1)"]["errors"] == 1
    text = run(sys.executable, "-m", "elixirscope", "summary", "--data-dir", str(data),
               cwd=data.parent).stdout
    assert "\nQueries" in text and "in one chain" in text


def test_a_recording_error_is_counted_said_and_never_reaches_the_program(tmp_path: Path) -> None:
    script = tmp_path / "odd.py"
    script.write_text(
        "import sqlite3\n"
        "class Odd(sqlite3.Cursor):\n"
        "    description = property(lambda self: 1 / 0)  # what the recording reads after a statement\n"
        "conn = sqlite3.connect(':memory:')\n"
        "print(conn.cursor(Odd).execute('SELECT 1').fetchone())\n"
    )
    expected = plain(script)
    done = recorded(script, tmp_path / "data")
    assert (done.returncode, done.stdout) == (expected.returncode, expected.stdout) == (0, "(1,)\n")
    assert done.stderr == (
        "elixirscope run: 1 database events could not be recorded (the program was not "
        "affected); the last: ZeroDivisionError: division by zero\n"
    )
    [query] = events(tmp_path / "data", "--type", "query")
    assert (query["statement"], query["rows"]) == ("SELECT 1", -1)
