"""Every detector on recordings of small real programs that contain its defect, and on
their clean twins (which give no finding at all)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from programs import record

from elixirscope.ai.findings import Finding
from elixirscope.ai.insights import find
from elixirscope.ai.recording import load_recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.query.runs import list_runs

# Sentry's 50 ms is the default; the tests' queries take about that long on a quiet
# machine, so N+1 is asked for at 5 ms here (the threshold itself is tested below).
SETTINGS = InsightSettings(n_plus_one_min_total_ms=5.0, slow_http_ms=600.0)


def findings(data: Path, settings: InsightSettings = SETTINGS, run: str | None = None) -> list[Finding]:
    found, errors = find(load_recording(data, run), settings)
    assert errors == {}
    return found


def line_of(path: Path, text: str) -> int:
    lines = [i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    assert len(lines) == 1, (text, lines)
    return lines[0]


def test_an_eager_load_is_no_n_plus_one_whatever_the_threshold(recorded) -> None:
    assert findings(recorded["orm_clean"], InsightSettings(n_plus_one_min_total_ms=0)) == []


@pytest.mark.parametrize(
    "clean",
    ["n_plus_one_clean", "orm_clean", "row_race_clean", "actor_race_clean", "mailbox_clean", "http_clean",
     "service_clean"],
)
def test_a_clean_program_gives_no_finding(recorded, clean) -> None:
    assert findings(recorded[clean]) == []


def test_n_plus_one_points_at_the_loop_and_the_varying_parameter(recorded) -> None:
    found = findings(recorded["n_plus_one"])
    assert [f.kind for f in found] == ["n_plus_one", "n_plus_one"]
    source = recorded["n_plus_one"].parent / "shop_db.py"
    helper, inline = sorted(found, key=lambda f: f.moment.ts)
    # a helper issuing one query per call, called from a loop in another function
    assert helper.details["statement"] == "SELECT name FROM items WHERE order_id = ? ORDER BY name"
    assert helper.details["queries"] == 30
    assert [(loc.role, loc.line) for loc in helper.locations] == [
        ("issued here", line_of(source, 'rows = db.execute("SELECT name FROM items')),
        ("the loop", line_of(source, 'for (order_id,) in db.execute("SELECT id FROM orders")')),
    ]
    assert helper.details["varying"] == ["parameter 1"]
    assert helper.details["values"] == [["0", "1", "2", "3", "4"]]
    assert "parameter 1 (order_id) varies (0, 1, 2, 3, 4, ...)" in helper.explanation
    assert "WHERE order_id IN (...)" in helper.fix
    # an f-string in the loop itself: the literal varies
    assert inline.details["statement"] == "SELECT count(*) FROM items WHERE order_id = ?".replace(
        "count", "COUNT")
    assert [(loc.role, loc.line) for loc in inline.locations] == [
        ("issued here", line_of(source, 'counts[order_id] = db.execute(f"SELECT')),
        ("the loop", line_of(source, "for order_id in range(30):")),
    ]
    assert inline.details["varying"] == ["literal 1"]
    assert len(helper.evidence) == 20 and all(e.type == "query" for e in helper.evidence)
    assert helper.correlation_id and helper.run == list_runs(recorded["n_plus_one"])[0].id


def test_n_plus_one_thresholds_come_from_the_settings(recorded) -> None:
    data = recorded["n_plus_one"]
    # under the time threshold the pattern is still there, only not yet costly: low
    cheap = findings(data, InsightSettings(n_plus_one_min_total_ms=10_000.0))
    assert cheap and {(f.kind, f.severity, f.details["costly"]) for f in cheap} == {
        ("n_plus_one", "low", False)}
    assert all("less than the 10000 ms that makes it costly" in f.explanation for f in cheap)
    assert findings(data, InsightSettings(n_plus_one_min_queries=31, n_plus_one_min_total_ms=0)) == []
    # the clean twin runs the helper three times: under five, no finding; at three, one
    clean = recorded["n_plus_one_clean"]
    assert [f.details["queries"] for f in findings(
        clean, InsightSettings(n_plus_one_min_queries=3, n_plus_one_min_total_ms=0))] == [3]


def test_row_by_row_writes_point_at_the_loop_and_say_how_to_send_them_at_once(recorded) -> None:
    # SQLite in memory writes a row in microseconds: the time threshold is set aside here
    found = findings(recorded["row_writes"], InsightSettings(row_writes_min_total_ms=0))
    source = recorded["row_writes"].parent / "ledger_db.py"
    inserts, updates = sorted(found, key=lambda f: f.moment.ts)
    assert (inserts.kind, inserts.details["statements"]) == ("row_by_row_writes", 300)
    assert inserts.details["statement"] == "INSERT INTO entries (account, amount) VALUES (?, ?)"
    assert [(loc.role, loc.line) for loc in inserts.locations] == [
        ("issued here", line_of(source, 'db.execute("INSERT INTO entries')),
        ("the loop", line_of(source, "for entry in entries:")),
    ]
    assert inserts.details["varying"] == ["parameter 1", "parameter 2"]
    assert "executemany(sql, rows)" in inserts.fix and "bulk_create" in inserts.fix
    assert updates.details["statements"] == 12 and updates.details["varying"] == ["literal 2"]
    assert [loc.line for loc in updates.locations] == [
        line_of(source, 'db.execute(f"UPDATE accounts'),
        line_of(source, "for account in range(12):"),
    ]
    assert "UPDATE ... WHERE key IN (...)" in updates.fix
    # the time threshold: under it, the pattern is a low finding that says so
    cheap = findings(recorded["row_writes"], InsightSettings(row_writes_min_total_ms=10_000.0))
    assert {(f.severity, f.details["costly"]) for f in cheap} == {("low", False)}
    assert all("less than the 10000 ms that makes it costly" in f.explanation for f in cheap)
    # fewer statements than the threshold (the UPDATE's 12) are no finding; executemany none
    fewer = findings(recorded["row_writes"], InsightSettings(row_writes_min_statements=13))
    assert [f.details["statements"] for f in fewer] == [300]
    assert findings(recorded["row_writes_clean"], InsightSettings(row_writes_min_total_ms=0)) == []


def test_n_plus_one_of_an_orms_lazy_loads(recorded) -> None:
    # SQLAlchemy's lazy loads are quick in SQLite: the rule's time threshold is set aside here
    (lazy,) = findings(recorded["orm"], InsightSettings(n_plus_one_min_total_ms=0))
    source = recorded["orm"].parent / "orm.py"
    assert lazy.details["queries"] == 60 and lazy.details["statement"].startswith(
        "SELECT lines.id, lines.order_id, lines.qty FROM lines WHERE ? = lines.order_id")
    # the load is on the generator's line; the loop that repeats it is the for around it
    assert [(loc.role, loc.line) for loc in lazy.locations] == [
        ("issued here", line_of(source, "total += sum(line.qty for line in order.lines)")),
        ("the loop", line_of(source, "for order in query.all():")),
    ]
    assert lazy.details["varying"] == ["parameter 1"]


def test_a_lazy_load_in_a_helper_called_once_an_order_names_the_loop_calling_it(recorded) -> None:
    """Each query ran in its own call of the helper, on a line whose generator walks the
    rows one query fetched: the loop that repeats it is the one calling the helper."""
    (lazy,) = findings(recorded["orm_helper"], InsightSettings(n_plus_one_min_total_ms=0))
    source = recorded["orm_helper"].parent / "orm_helper.py"
    assert lazy.details["queries"] == 60
    assert [(loc.role, loc.line, loc.function) for loc in lazy.locations] == [
        ("issued here", line_of(source, "return sum(line.qty for line in order.lines)"),
         "__main__.order_total"),
        ("the loop", line_of(source, "for order in query.all():"), "__main__.total_quantity"),
    ]
    assert "... WHERE lines.order_id IN (...)" in lazy.fix  # redacted: its only placeholder


def test_a_lost_update_on_a_row_is_a_race(recorded) -> None:
    (race,) = findings(recorded["row_race"])
    assert race.kind == "race" and race.severity == "high"
    assert race.details["table"] == "accounts" and race.details["same_row"] is True
    assert [e.note.split()[-1] for e in race.evidence] == ["reads", "writes", "writes"]
    a, b = race.details["clients"]
    assert a != b
    source = recorded["row_race"].parent / "accounts.py"
    assert [(loc.role, loc.line) for loc in race.locations] == [
        ("read", line_of(source, '(balance,) = db.execute("SELECT')),
        ("write", line_of(source, 'db.execute("UPDATE')),
    ]


def test_with_redacted_parameters_a_row_race_is_possible_not_sure(recorded) -> None:
    (race,) = findings(recorded["row_race_redacted"])
    assert race.severity == "medium" and race.details["same_row"] is False
    assert "possibly the same row" in race.explanation


def test_a_lost_update_on_an_actors_state_is_a_race(recorded) -> None:
    (race,) = findings(recorded["actor_race"])
    assert race.kind == "race" and race.details["actor"] == "counter"
    assert race.details["fields"] == ["count"]
    assert race.details["clients"] == ["bumper-1", "bumper-0"]
    assert race.details["messages"] == ["'get'", "('set', 1)", "('set', 1)"]
    assert [e.type for e in race.evidence] == ["state", "state", "state"]
    assert "elixirscope history" in " ".join(race.commands())


def test_a_flooded_mailbox_is_found_with_its_depth(recorded) -> None:
    (growth,) = findings(recorded["mailbox"])
    assert growth.kind == "mailbox_growth" and growth.details["actor"] == "counter"
    assert growth.details["peak"] == 150 and growth.details["at_end"] == 0
    assert "flooder" in growth.explanation
    assert findings(recorded["mailbox"], InsightSettings(mailbox_depth=151)) == []


def test_a_child_crashing_on_every_bad_input_is_a_crash_loop_and_a_storm(recorded) -> None:
    found = findings(recorded["crash_loop"])
    assert sorted(f.kind for f in found) == ["crash_loop", "restart_storm"]
    loop = next(f for f in found if f.kind == "crash_loop")
    assert loop.details["actor"] == "app/parser" and loop.details["exits"] == 3
    assert "handle_call('x'), handle_call('y'), handle_call('z')" in loop.explanation
    assert [e.type for e in loop.evidence] == ["state", "exit"] * 3
    storm = next(f for f in found if f.kind == "restart_storm")
    assert storm.details["restarts"] == 3 and storm.details["children"] == ["app/parser"]
    # under both thresholds, the three exits are still crashes: no loop, no storm
    (under,) = findings(recorded["crash_loop"], InsightSettings(
        crash_loop_crashes=4, restart_storm_restarts=4))
    assert under.kind == "crash" and under.details["exits"] == 3


def test_a_crash_in_an_actor_process_of_its_own_names_where_it_raised(recorded) -> None:
    """A multiproc base: the supervisor's process records the exits, the parser's own
    processes what raised; the crash loop still says where (it did not, the two apart)."""
    loop = next(f for f in findings(recorded["crash_loop_processes"]) if f.kind == "crash_loop")
    assert loop.details["actor"] == "app/parser" and loop.details["exits"] == 3
    exits = {e.producer for e in loop.evidence if e.type == "exit"}
    raised = {e.producer for e in loop.evidence if e.type == "state"}
    assert exits and raised and not exits & raised  # recorded by different processes
    (site,) = loop.locations
    assert (site.function, site.role) == ("Parser.handle_call", "raised here")
    assert site.file.endswith("parser_actors.py")
    assert f"parser_actors.py:{site.line} (Parser.handle_call) while handling" in loop.explanation


def test_one_crash_and_its_restart_is_a_crash_not_a_loop_or_a_storm(recorded) -> None:
    (crash,) = findings(recorded["crash_loop_clean"])  # the shop: one crash, one restart
    assert crash.kind == "crash" and crash.severity == "medium"
    assert crash.details["exits"] == 1 and crash.details["restarts"] == 1
    assert [e.type for e in crash.evidence][-2:] == ["exit", "restart"]
    assert "restarted it with a fresh state" in crash.explanation
    # where it raised, from the actor capture (the shop's modules are not traced)
    (site,) = crash.locations
    assert (site.function, site.role) == ("StockKeeper.handle_call", "raised here")
    assert site.file.endswith("shopkeeping.py")
    assert "if state[item] < quantity:" in Path(site.file).read_text().splitlines()[site.line - 1]
    assert f"at shopkeeping.py:{site.line}" in crash.explanation.replace("elixirscope/examples/", "")


def test_retried_and_slow_external_calls(recorded) -> None:
    found = findings(recorded["http"])
    assert sorted(f.kind for f in found) == ["retried_call", "slow_call"]
    retried = next(f for f in found if f.kind == "retried_call")
    assert retried.details["attempts"] == 3 and retried.details["failed"] == 2
    assert retried.details["gave_up"] is False
    assert [e.note for e in retried.evidence] == ["attempt 1: 503", "attempt 2: 503", "attempt 3: 200"]
    assert retried.locations[0].function == "__main__.fetch_with_retries"
    slow = next(f for f in found if f.kind == "slow_call")
    assert slow.details["target"].endswith("/slow") and slow.details["max_ms"] >= 1000
    assert findings(recorded["http"], InsightSettings(slow_http_ms=10_000))[0].kind == "retried_call"


def test_latency_against_the_baseline_of_earlier_runs(recorded) -> None:
    data = recorded["latency"]
    runs = list_runs(data)  # newest first
    assert len(runs) == 3
    found = findings(data)
    assert [(f.kind, f.details.get("function") or f.details.get("route")) for f in found] == [
        ("latency", "__main__.item"), ("latency", "GET /items/<int:item>")]
    handler, route = found
    for slow in found:
        assert slow.details["baseline_runs"] == [runs[1].id, runs[2].id]
        assert slow.details["samples"] == 5 and slow.details["baseline_samples"] == 10
        assert slow.details["median_ms"] >= 300
    # a decorated function is recorded at its first decorator
    assert handler.locations[0].line == line_of(data.parent / "worker.py", "@app.get(")
    assert [e.type for e in route.evidence] == ["reqend"] * 5
    assert [(loc.function, loc.role) for loc in route.locations] == [("__main__.item", "its handler")]
    # the second run, against the first: no anomaly; the first has no baseline at all
    quiet = InsightSettings(latency_min_ms=50.0)  # a loaded machine jitters by milliseconds
    assert findings(data, quiet, run=runs[1].id) == []
    assert findings(data, run=runs[2].id) == []


SLOW = InsightSettings(slow_request_ms=400.0, slow_handler_ms=400.0)
"""The service's slow route sleeps 600 ms, its slow callback 500 ms: over these floors
(the defaults are a second and 200 ms), with room for a loaded machine's hiccups."""


def test_a_slow_callback_and_a_slow_route_are_found_in_their_first_run(recorded) -> None:
    found = [f for f in findings(recorded["service"], SLOW) if f.kind.startswith("slow")]
    assert sorted((f.kind, f.key) for f in found) == [
        ("slow_handler", "reporter handle_call"), ("slow_request", "GET /export")]
    handler, request = sorted(found, key=lambda f: f.kind)
    # the reporter's report: five rows of 100 ms in a callback whose module was not traced
    assert handler.details["actor"] == "reporter" and handler.details["own_ms"] >= 500
    assert handler.details["calls"] == 1 and handler.details["peers_median_ms"] < 100
    assert "`'report'`" in handler.explanation and "not traced" in handler.explanation
    assert [e.type for e in handler.evidence] == ["receive"]
    assert request.details["route"] == "GET /export" and request.details["own_ms"] >= 600
    assert [(loc.function, loc.role) for loc in request.locations] == [("__main__.export", "its handler")]
    assert request.details["slowest_inside"][0]["function"] == "__main__.export"  # its own sleep
    assert "no earlier run" in request.explanation and request.details["baseline_runs"] == []
    # the floor and the factor both come from the settings
    assert not [f for f in findings(recorded["service"]) if f.kind == "slow_request"]
    assert not [f for f in findings(recorded["service"], InsightSettings(slow_handler_ms=5000.0))
                if f.kind == "slow_handler"]
    many = InsightSettings(slow_request_ms=400.0, slow_handler_ms=400.0, slow_factor=1e6)
    assert not [f for f in findings(recorded["service"], many) if f.kind.startswith("slow")]


def test_a_slow_route_is_compared_with_its_earlier_runs_when_there_are_some(recorded) -> None:
    data = recorded["latency"]
    runs = list_runs(data)
    # every request of the last run is slow alike: no peer is faster, the floor decides
    slow = InsightSettings(slow_request_ms=100.0, slow_factor=1.0, latency_min_samples=50)
    (found,) = [f for f in findings(data, slow) if f.kind == "slow_request"]
    assert found.details["route"] == "GET /items/<int:item>" and found.details["calls"] == 5
    assert found.details["baseline_runs"] == [runs[1].id, runs[2].id]
    assert found.details["baseline_p95_ms"] < 100
    assert "In the 2 earlier runs of this program it took" in found.explanation and "over 10 calls" in found.explanation
    assert [f for f in findings(data, slow, run=runs[2].id) if f.kind == "slow_request"] == []


def test_another_program_recorded_into_the_data_dir_is_no_baseline(recorded, tmp_path) -> None:
    """A server and the service it calls, recorded into one data dir: the service's earlier
    run is not a baseline of the server's routes (their keys may even be alike)."""
    from elixirscope.ai.latency import baseline

    data = tmp_path / "data"
    shutil.copytree(recorded["latency"], data)
    newest, middle, oldest = list_runs(data)
    record = data / "runs" / f"{middle.id}.json"
    fields = json.loads(record.read_text())
    fields["program"] = "catalog.py"  # as if another program ran in between
    record.write_text(json.dumps(fields))
    _, runs = baseline(data, newest.id, 5)
    assert runs == [oldest.id]
    slow = InsightSettings(slow_request_ms=100.0, slow_factor=1.0, latency_min_samples=50)
    (found,) = [f for f in findings(data, slow) if f.kind == "slow_request"]
    assert found.details["baseline_runs"] == [oldest.id]
    assert "In the 1 earlier run of this program it took" in found.explanation


def test_requests_that_end_in_5xx_are_grouped_by_route_and_error(recorded) -> None:
    found = [f for f in findings(recorded["service"]) if f.kind == "server_error"]
    by_error = {f.details["error"]: f for f in found}
    assert set(by_error) == {"AttributeError", "ValueError", "json.decoder.JSONDecodeError",
                             "status 503", "status 502", "status 504"}
    raised = by_error["AttributeError"]
    source = recorded["service"].parent / "service.py"
    assert raised.severity == "high" and raised.details["count"] == 2
    assert raised.details["route"] == "GET /users/<int:uid>" and raised.details["status"] == 500
    assert raised.details["first_ts"] < raised.details["last_ts"]
    assert [(loc.line, loc.role) for loc in raised.locations] == [
        (line_of(source, "return {\"name\": name.upper()}"), "raised here")]
    assert raised.details["traceback_top"][-1].endswith(f"service.py:{raised.locations[0].line} in user")
    assert "`return {\"name\": name.upper()}`" in raised.explanation
    assert "'NoneType' object has no attribute 'upper'" in raised.explanation
    assert [e.type for e in raised.evidence] == ["reqend", "reqend", "exception"]
    # a raising line longer than a finding quotes is cut, and says so
    line = 'return {"limit": int("unlimited" if bad else "10", base=10), "note": "a line long enough to be cut when a finding quotes it"}'
    quoted = re.search(r"\(`(.*?)`\)", by_error["ValueError"].explanation).group(1)
    assert len(line) > 120 and quoted == line[:119] + "…"
    # raised inside a library (json's decoder): the program's line first, the library's last
    inside = by_error["json.decoder.JSONDecodeError"]
    assert [loc.role for loc in inside.locations] == ["the program's line", "raised in a library"]
    assert inside.locations[0].line == line_of(source, "return json.loads(")
    assert inside.locations[1].file.endswith("json/decoder.py")
    assert f"service.py:{inside.locations[0].line} (settings) (`return json.loads(" in inside.explanation
    assert "(inside json: decoder.py:" in inside.explanation
    # a status the framework answered for an exception the handler raised (abort(502)):
    # the raise is named, with its line, before the handler
    aborted = by_error["status 502"]
    assert aborted.severity == "medium"
    assert [(loc.line, loc.role) for loc in aborted.locations] == [
        (line_of(source, 'abort(502, "the warehouse did not answer")'), "raised it"),
        (line_of(source, 'def upstream():') - 1, "its handler")]
    assert "BadGateway, raised in upstream at " in aborted.explanation
    assert "became that answer" in aborted.explanation
    # a timeout the program caught and answered 504 for itself: not the framework's doing
    caught = by_error["status 504"]
    assert [(loc.line, loc.role) for loc in caught.locations] == [
        (line_of(source, 'raise TimeoutError("the warehouse took too long")'), "raised it"),
        (line_of(source, "def stock():") - 1, "caught it")]
    assert "TimeoutError: the warehouse took too long, raised in ask_warehouse at " in caught.explanation
    assert "was caught by the program in stock, which answered 504 itself" in caught.explanation
    assert "became that answer" not in caught.explanation
    chose = by_error["status 503"]
    assert chose.severity == "medium" and chose.details["count"] == 1
    assert [(loc.function, loc.role) for loc in chose.locations] == [("__main__.health", "its handler")]


def test_every_finding_is_linked_to_its_moment_and_says_what_to_run(recorded) -> None:
    for name in ("n_plus_one", "row_race", "actor_race", "mailbox", "crash_loop", "http", "latency",
                 "service"):
        recording = load_recording(recorded[name])
        for f in findings(recorded[name]):
            data = f.to_dict()
            assert data["id"] == f.id and data["run"] == recording.run
            for e in f.evidence:
                stored = recording.by_key[(e.producer, e.id)]
                assert (stored.ts, stored.type) == (e.ts, e.type)
            first = min(f.evidence, key=lambda e: e.ts)
            assert data["moment"]["id"] == first.id
            # the cinema opens the timeline of this run with its cursor at that event, in a
            # window that shows all of its evidence
            link = f"#view=timeline&run={recording.run}&t={first.ts}&ev={first.producer}:{first.id}"
            last = max(e.ts for e in f.evidence)
            if last > first.ts:
                w0, _, w1 = data["cinema"].removeprefix(link + "&w0=").partition("&w1=")
                assert int(w0) < first.ts and last < int(w1), data["cinema"]
            else:
                assert data["cinema"] == link
            assert data["commands"][-1] == f"elixirscope explain --run {recording.run[:8]} {f.id}"
            assert f.explanation and f.fix and f.severity in ("high", "medium", "low")


LOOP_OF_TWO = '''
import sqlite3

db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE loans (id INTEGER PRIMARY KEY, book INTEGER)")
db.execute("CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT, author INTEGER)")
db.execute("CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT)")
db.executemany("INSERT INTO authors VALUES (?, ?)", [(i, f"a{i}") for i in range(4)])
db.executemany("INSERT INTO books VALUES (?, ?, ?)", [(i, f"b{i}", i % 4) for i in range(8)])
db.executemany("INSERT INTO loans VALUES (?, ?)", [(i, i % 8) for i in range(12)])


def loan_list():
    out = []
    for (book_id,) in db.execute("SELECT book FROM loans").fetchall():
        title, author = db.execute("SELECT title, author FROM books WHERE id = ?", (book_id,)).fetchone()
        (name,) = db.execute("SELECT name FROM authors WHERE id = ?", (author,)).fetchone()
        out.append((title, name))
    return out


print(len(loan_list()))
'''


def test_two_statements_one_loop_ran_in_turn_name_each_other(tmp_path) -> None:
    """A loop that follows two keys a row (a book, then its author) makes two N+1s, each
    naming the other; neither says its queries ran one after another."""
    data = record(tmp_path, "loans", LOOP_OF_TWO)
    found = [f for f in findings(data) if f.kind == "n_plus_one"]
    assert len(found) == 2, [f.title for f in found]
    books, authors = sorted(found, key=lambda f: f.details["statement"])[::-1]
    assert "FROM books" in books.details["statement"] and "FROM authors" in authors.details["statement"]
    source = tmp_path / "loans.py"
    loop = line_of(source, 'for (book_id,) in db.execute("SELECT book FROM loans")')
    for finding, mate in ((books, authors), (authors, books)):
        assert [loc.line for loc in finding.locations if loc.role == "the loop"] == [loop]
        assert finding.details["same_loop"] == [mate.id]
        assert f"12 times ({mate.id})" in finding.explanation
        assert "one after another" not in finding.explanation
        assert "(in turn with the loop's other queries)" in finding.explanation


ROLLED_BACK = '''
import sqlite3

from flask import Flask

db = sqlite3.connect(":memory:", check_same_thread=False)
db.execute("CREATE TABLE stock (sku TEXT PRIMARY KEY, n INTEGER)")
db.execute("CREATE TABLE moves (sku TEXT, n INTEGER)")
db.execute("INSERT INTO stock VALUES ('tea', 5)")
db.commit()
app = Flask(__name__)


@app.post("/take/<int:n>")
def take(n):
    try:
        db.execute("UPDATE stock SET n = n - ? WHERE sku = 'tea'", (n,))
        db.execute("INSERT INTO moves VALUES ('tea', ?)", (n,))
        if n > 5:
            raise ValueError(f"only 5 left, asked {n}")
        db.commit()
    except Exception:
        db.rollback()
        raise
    return {"ok": True}


client = app.test_client()
print(client.post("/take/2").status_code, client.post("/take/9").status_code)
'''


def test_a_server_error_says_the_writes_its_rollback_undid(tmp_path) -> None:
    data = record(tmp_path, "take", ROLLED_BACK)
    (error,) = [f for f in findings(data) if f.kind == "server_error"]
    source = tmp_path / "take.py"
    update = line_of(source, "UPDATE stock SET")
    insert = line_of(source, "INSERT INTO moves VALUES")
    assert (
        f"Its transaction rolled back the UPDATE of stock (take.py:{update}) and the INSERT into"
        f" moves (take.py:{insert}) it had made: none of it was kept." in error.explanation
    ), error.explanation
    # the request that committed its writes is no finding, and says nothing of a rollback
    assert error.details["count"] == 1
    # ... but it is the one to compare the failed request with: each its own chain here
    good, failed = error.details["compare"]
    assert failed == error.correlation_id[:12] and good != failed
    assert f"elixirscope diff --chains {good} {failed}" in error.commands()


def test_only_an_attempt_that_got_no_answer_is_said_given_up_on() -> None:
    """A 503 the service answered (its request ending a moment after the caller read it) is
    not "after the caller gave up"; a timed-out attempt is."""
    from types import SimpleNamespace as NS

    from elixirscope.ai.http_calls import _other_side

    def attempt(n: int, status: int, ts: int) -> NS:
        return NS(ts=ts, event=NS(span_id=f"s{n}", attempt=n, status=status))

    def served(ts: int, ms: int) -> tuple[NS, NS]:
        start = NS(event=NS(method="GET", path="/price/gizmo"), program="/srv/pricing.py")
        return start, NS(ts=ts, event=NS(duration_ns=ms * 1_000_000))

    attempts = [attempt(1, 503, 100_000_000), attempt(2, 0, 700_000_000)]
    callee = {"s1": served(101_000_000, 1), "s2": served(1_200_000_000, 1000)}
    said = _other_side(NS(callee_requests=lambda _: callee), attempts)
    assert "1: 1 ms; 2: 1000 ms (500 ms after the caller gave up)" in said, said


DEPENDENT = '''
import http.server, threading

import httpx
from flask import Flask


class Down(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args):
        return


pricing = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Down)
threading.Thread(target=pricing.serve_forever, daemon=True).start()
PRICES = f"http://127.0.0.1:{pricing.server_address[1]}/price"
app = Flask(__name__)


@app.get("/quote/<int:item>")
def quote(item):
    answer = httpx.get(f"{PRICES}/{item}", timeout=5)
    if answer.status_code != 200:
        return {"error": "pricing is down"}, 502  # the handler answers for its dependency
    return {"price": answer.json()}


client = app.test_client()
print(client.get("/quote/7").status_code)
pricing.shutdown()
'''


def test_a_5xx_a_handler_answered_for_a_failed_call_names_that_call(tmp_path) -> None:
    data = record(tmp_path, "shop", DEPENDENT)
    (error,) = [f for f in findings(data) if f.kind == "server_error"]
    said = " ".join(error.explanation.split())
    line = line_of(data.parent / "shop.py", 'answer = httpx.get(f"{PRICES}/{item}", timeout=5)')
    assert re.search(r"While it ran, its call GET http://127\.0\.0\.1:\d+/price/7 "
                     rf"\(shop\.py:{line}\) was answered 503 after \d+ ms: what it answered 502 "
                     r"for\.", said), said
    assert error.fix.startswith("The service it calls failed it")


def test_a_slow_call_whose_timeout_fired_is_not_told_to_set_one() -> None:
    from types import SimpleNamespace as NS

    from elixirscope.ai.http_calls import _slow

    def attempt(timeout: bool, status: int) -> NS:
        return NS(producer="p", ts=3_000_000_000, event=NS(
            duration_ns=2_100_000_000, status=status, timeout=timeout, error=None, parent_id=0,
            span_id="s1", attempt=1, id=7, correlation_id="c1"))

    recording = NS(call=lambda *_: None, callee_requests=lambda _: {}, run="r1")
    settings = InsightSettings()
    fired = _slow(recording, "GET http://svc/price/12", [attempt(True, 0)], [attempt(True, 0)],
                  settings)
    assert fired.fix.startswith("It has a timeout, which fired") and "(timeout)" in fired.explanation
    answered = _slow(recording, "GET http://svc/price/12", [attempt(False, 200)],
                     [attempt(False, 200)], settings)
    assert answered.fix.startswith("Set a timeout that matches what the caller can wait")


def test_n_plus_one_http_calls_name_the_loop_and_whether_the_url_varied(recorded) -> None:
    found = findings(recorded["http_loop"], InsightSettings(n_plus_one_min_total_ms=0))
    assert sorted(f.kind for f in found) == ["n_plus_one_http", "n_plus_one_http"]
    prices, rates = sorted(found, key=lambda f: f.details["target"])
    assert re.fullmatch(r"GET http://127\.0\.0\.1:\d+/prices/\{id\}", prices.details["target"])
    assert re.fullmatch(r"GET http://127\.0\.0\.1:\d+/rate\?currency=\?", rates.details["target"])
    assert prices.details["calls"] == rates.details["calls"] == 6
    assert (prices.details["same_url"], rates.details["same_url"]) == (False, True)
    assert rates.details["fetched_again"] is True  # a GET: the same answer each time
    source = recorded["http_loop"].parent / "pricer_loop.py"
    loop = line_of(source, "for sku in range(1000, 1006):")
    for finding, helper, call in ((prices, "__main__.price", 'client.get(f"{base}/prices/'),
                                  (rates, "__main__.rate", 'client.get(base + "/rate')):
        assert [(loc.function, loc.role, loc.line) for loc in finding.locations] == [
            (helper, "called here", line_of(source, call)), ("__main__.main", "the loop", loop)]
        said = f"at {finding.locations[0]} inside the loop at {finding.locations[1]}, taking "
        assert said.replace(f" ({helper})", "", 1) in finding.explanation
        assert str(finding.locations[1]).endswith(f"pricer_loop.py:{loop} (__main__.main)")
        assert finding.severity == "medium" and finding.details["statuses"] == [200]
        assert [e.type for e in finding.evidence] == ["http"] * 6
    assert "6 different URLs of one shape" in prices.explanation
    assert "batch endpoint" in prices.fix and "concurrently" in prices.fix
    assert "the very same URL" in rates.explanation and "Ask once, before the loop" in rates.fix
    # the threshold: fewer calls than it are no finding; a cheap loop is a low one
    assert findings(recorded["http_loop"], InsightSettings(n_plus_one_min_queries=7)) == []
    cheap = findings(recorded["http_loop"], InsightSettings(n_plus_one_min_total_ms=60_000))
    assert {f.severity for f in cheap} == {"low"} and "not yet" not in cheap[0].explanation
    assert "less than the 60000 ms" in cheap[0].explanation


def test_writes_to_one_url_in_a_loop_are_a_batch_sent_one_at_a_time_not_an_answer_to_cache(
    recorded,
) -> None:
    (posts,) = findings(recorded["http_posts"], InsightSettings(n_plus_one_min_total_ms=0))
    assert posts.kind == "n_plus_one_http" and posts.details["calls"] == 6
    assert re.fullmatch(r"POST http://127\.0\.0\.1:\d+/orders", posts.details["target"])
    assert posts.details["same_url"] is True and posts.details["fetched_again"] is False
    assert "Every call sent a POST to the very same URL: one item at a time." in posts.explanation
    assert "fetched again" not in posts.explanation
    assert "bulk endpoint" in posts.fix and "Ask once" not in posts.fix and "cache" not in posts.fix.split(";")[0]


def test_n_plus_one_http_calls_with_no_line_of_the_programs_name_the_function(recorded) -> None:
    """Calls made in worker threads by the library itself (``asyncio.to_thread(requests.get,
    ...)``) record no line of the program's: they are grouped by the recorded function
    they ran under, which the finding names (its definition as the location)."""
    (finding,) = findings(recorded["http_threaded"], InsightSettings(n_plus_one_min_total_ms=0))
    assert finding.kind == "n_plus_one_http" and finding.details["calls"] == 5
    assert finding.details["same_url"] is True
    (where,) = finding.locations
    assert (where.function, where.role) == ("__main__.fetch_all", "the calling function")
    assert where.line == line_of(recorded["http_threaded"].parent / "threaded_calls.py",
                                 "async def fetch_all(base):")
    assert " one after another from __main__.fetch_all, taking " in finding.explanation


@pytest.mark.parametrize("mode", ["at_once", "batch"])
def test_calls_made_at_once_or_in_one_batch_are_no_n_plus_one(recorded, mode) -> None:
    assert findings(recorded[f"http_{mode}"], InsightSettings(n_plus_one_min_total_ms=0)) == []


def test_url_shapes_put_one_item_after_another_together() -> None:
    from elixirscope.ai.http_loops import url_shape

    assert url_shape("https://api.example/v1/items/42?page=2&q=x") == (
        "https://api.example/v1/items/{id}?page=?&q=?")
    uuid = "0b6f2d1e-3c1a-4f6e-9a5b-7d8e9f0a1b2c"
    assert url_shape(f"http://h/users/{uuid}/orders/7") == "http://h/users/{id}/orders/{id}"
    assert url_shape("http://h/blobs/deadbeefdeadbeef01") == "http://h/blobs/{id}"
    assert url_shape("http://h/v2/price") == "http://h/v2/price"  # 'v2' is a name, not an id
