"""summarize(): counts, total and self time, percentiles, raises counted once, actors,
processes and threads, and text that fits 100 columns."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elixirscope.contracts.trace import (
    decode_batch,
    encode_batch,
    process_start_name,
    process_start_pid,
)
from elixirscope.query.summary import WIDTH, summarize
from elixirscope.store._events import StoredEvent

T0 = 1_700_000_000_000_000_000


class Program:
    """Events of one producer with explicit durations, as the hooks record them."""

    def __init__(self, producer: str = "n1:100:1", pid: int = 100, program: str = "prog.py") -> None:
        self.producer, self.pid, self.program = producer, pid, program
        self.ids = itertools.count(1)
        self.ts = T0
        self.events: list[tuple] = []

    def _tick(self, step: int) -> int:
        self.ts += step
        return self.ts

    def call(self, function: str, body=(), *, took: int = 100, parent: int = 0, thread: int = 1,
             raises: tuple[str, str, list[str]] | None = None, file: str = "/app/m.py",
             line: int = 3) -> int:
        """Record a call that runs ``body(call_id)`` and lasts ``took`` ns plus its children."""
        cid = next(self.ids)
        start = self._tick(1)
        self.events.append(("call", cid, start, thread, "c1", parent, function, None, file, line))
        inner = sum(fn(cid) for fn in body)
        end = self._tick(took)
        duration = took + inner
        if raises is None:
            self.events.append(("return", next(self.ids), end, thread, "c1", parent, cid,
                                function, duration, None))
        else:
            exc, msg, tb = raises
            self.events.append(("exception", next(self.ids), end, thread, "c1", parent, cid,
                                function, duration, exc, msg, int(tb[-1].split(":")[1]), tb))
        return duration

    def query(self, statement: str, parent: int, cid: str = "c1") -> int:
        """A query of 10 ns and 1 row inside call ``parent``, issued at /app/m.py:9."""
        self.events.append(("query", next(self.ids), self._tick(1), 1, cid, parent, "sqlite",
                            None, statement, None, 10, 1, "/app/m.py", 9, "app.f", None, "", 0))  # fmt: skip
        return 0

    def add(self, tag: str, *fields, thread: int = 1) -> None:
        self.events.append((tag, next(self.ids), self._tick(1), thread, "c1", 0, *fields))

    def stored(self) -> list[StoredEvent]:
        frame = encode_batch(node="n1", pid=self.pid, program=self.program, producer=self.producer,
                             seq=1, sent_ts=self.ts, dropped=0, events=self.events)
        batch = decode_batch(frame)
        return [StoredEvent(e, batch.node, batch.pid, batch.program, batch.producer)
                for e in batch.events]


def test_counts_total_and_self_time_with_percentiles():
    p = Program()

    def leaf(took):
        return lambda parent: p.call("app.leaf", took=took, parent=parent)
    p.call("app.root", [leaf(t) for t in range(10, 101, 10)], took=1000)
    report = summarize(p.stored())
    rows = {f["function"]: f for f in report["functions"]}
    assert [f["function"] for f in report["functions"]] == ["app.leaf", "app.root"]
    leafs = rows["app.leaf"]
    assert (leafs["calls"], leafs["total_ns"], leafs["self_ns"]) == (10, 550, 550)
    assert (leafs["p50_ns"], leafs["p95_ns"], leafs["max_ns"]) == (50, 100, 100)  # nearest rank: the 5th of 10
    assert (rows["app.root"]["total_ns"], rows["app.root"]["self_ns"]) == (1550, 1000)
    assert rows["app.root"]["source"] == "…/app/m.py:3"
    assert report["slowest"][0]["function"] == "app.root"
    assert report["calls"] == 11 and report["events"] == 22


def test_callees_that_ran_at_once_leave_their_caller_no_negative_self_time():
    """A gather's three tasks, 300 ns each, under a caller of 400 ns: they add up to more
    than it lasted; its self time is none, not -500 ns."""
    p = Program()
    main = next(p.ids)
    p.events.append(("call", main, p._tick(1), 1, "c1", 0, "app.main", None, "/app/m.py", 3))
    tasks = [next(p.ids) for _ in range(3)]
    for task in tasks:
        p.events.append(("call", task, p._tick(1), 1, "c1", main, "app.task", None, "/app/m.py", 5))
    for task in tasks:
        p.events.append(("return", next(p.ids), p._tick(1), 1, "c1", main, task, "app.task", 300, None))
    p.events.append(("return", next(p.ids), p._tick(1), 1, "c1", 0, main, "app.main", 400, None))
    rows = {f["function"]: f for f in summarize(p.stored())["functions"]}
    assert rows["app.main"]["self_ns"] == 0 and rows["app.task"]["self_ns"] == 900


def test_an_exception_counts_once_where_it_was_raised_however_far_it_went():
    p = Program()
    tb_inner = ["/app/m.py:9:parse"]
    tb_outer = ["/app/m.py:20:run", "/app/m.py:9:parse"]
    for _ in range(3):
        p.call("app.run", [lambda parent: p.call("app.parse", parent=parent,
                                                 raises=("ValueError", "bad", tb_inner))],
               raises=("ValueError", "bad", tb_outer))
    p.call("app.other", raises=("KeyError", "'k'", ["/app/n.py:4:other"]))
    report = summarize(p.stored())
    assert [(e["exc_type"], e["raised_at"], e["count"], e["functions"])
            for e in report["exceptions"]] == [
        ("ValueError", "…/app/m.py:9 in parse", 3, {"app.parse": 3}),
        ("KeyError", "…/app/n.py:4 in other", 1, {"app.other": 1})]
    assert {f["function"]: f["errors"] for f in report["functions"]}["app.run"] == 3


def test_actors_processes_and_threads():
    p = Program()
    p.add("thread", "MainThread", "thread", None, 0, thread=1)
    p.add("thread", "worker-7", "thread", None, 0, thread=2)
    p.add("send", "m1", "shop/desk", "<addr>", "'order'")
    p.add("receive", "m1", "shop/stock", "shop/desk", "'order'", thread=2)
    p.add("state", "shop/stock", "handle_call", "'order'", "{}", "{'tea': 1}", thread=2)
    p.add("exit", "shop/stock", 100, "exception KeyError", "shop")
    p.add("restart", "shop/stock", 100, "restarted", "shop")
    p.add("pub", "p1", "orders", "shop/desk", "'sold'")  # a publication is a message out
    report = summarize(p.stored())
    actors = {a["actor"]: a for a in report["actors"]}
    assert actors["shop/desk"]["messages_out"] == 2
    stock = actors["shop/stock"]
    assert (stock["messages_in"], stock["state_changes"], stock["restarts"], stock["exits"]) == (
        1, 1, 1, 1)
    [proc] = report["processes"]
    assert {t["name"]: t["events"] for t in proc["threads"]} == {"MainThread": 5, "worker-7": 3}
    assert "thread worker-7" in report["text"]


def test_a_wider_terminal_shows_what_the_report_would_shorten():
    p = Program()
    name = "billing.services.payments.PaymentsReconciler.reconcile_settlement_batch"
    p.call(name, [], took=5_000, file="/srv/app/billing/services/payments.py")
    narrow = summarize(p.stored())["text"]
    wide = summarize(p.stored(), width=200)["text"]
    assert name not in narrow and "…" in narrow
    assert name in wide and max(len(line) for line in wide.splitlines()) <= 200
    for bad in (39, 1001, True, "200"):
        with pytest.raises(ValueError, match="width"):
            summarize([], width=bad)


def test_nothing_recorded_and_bad_top():
    report = summarize([])
    assert report["text"] == "0 events, 0 calls recorded" and report["functions"] == []
    with pytest.raises(ValueError, match="top"):
        summarize([], top=0)


names = st.text("abcdefghijklmnopqrstuvwxyz._", min_size=1, max_size=150)


@st.composite
def trees(draw, depth=0):
    children = [] if depth >= 3 else draw(st.lists(trees(depth + 1), max_size=3))
    return draw(names), draw(st.integers(0, 10**9)), children


@settings(max_examples=60, deadline=None)
@given(st.lists(trees(), min_size=1, max_size=4), st.integers(1, 20), st.integers(WIDTH, 320))
def test_self_times_add_up_to_the_roots_and_text_fits(roots, top, width):
    p = Program()

    def play(node, parent):
        name, took, children = node
        return p.call("mod." + name, [lambda cid, c=c: play(c, cid) for c in children],
                      took=took, parent=parent, file="/very/long/" + name * 3 + ".py")
    root_total = sum(play(root, 0) for root in roots)
    report = summarize(p.stored(), top=top)
    assert sum(f["self_ns"] for f in report["functions"]) == root_total
    assert sum(f["calls"] for f in report["functions"]) == report["calls"]
    assert all(len(line) <= WIDTH for line in report["text"].splitlines())
    wide = summarize(p.stored(), top=top, width=width)["text"].splitlines()
    assert all(len(line) <= width for line in wide)
    # at most `top` entries, each a slow call with the callees said under it
    from elixirscope.query.summary import _nested

    assert len(_nested(report["slowest"])) <= top
    assert len(report["slowest"]) >= min(top, report["calls"])


def test_a_process_says_which_recorded_call_started_it():
    parent, child = Program(), Program("n1:7:1", pid=7, program="child.py")

    def start_child(cid: int) -> int:  # capture.processes, under the call
        parent.events.append(("thread", next(parent.ids), parent._tick(1), 1, "c1", cid,
                              "python child.py 3 (pid 7)", "process", "chain-7", 1))
        return 0

    parent.call("__main__.main", [start_child])
    child.call("work.compute")
    other = Program("n1:8:1", pid=8, program="other.py")  # started by nobody recorded
    other.call("work.compute")
    report = summarize(parent.stored() + child.stored() + other.stored())
    procs = {p["pid"]: p for p in report["processes"]}
    assert procs[100]["started_by"] is None and procs[8]["started_by"] is None
    assert procs[7]["started_by"] == {"pid": 100, "program": "prog.py",
                                      "function": "__main__.main", "call_id": 1, "chain": "chain-7",
                                      "exec": False, "as": None}  # fmt: skip
    text = report["text"].splitlines()
    at = next(i for i, line in enumerate(text) if line.startswith("n1:7 child.py"))
    assert text[at + 1].strip() == "started by main() (call #1) in process 100"


def test_a_process_a_library_forked_says_so_and_which_multiprocessing_process_it_is():
    """A fork outside any recorded call (Thespian's admin) is an unlinked start, in no call;
    multiprocessing's Process.start named the process and its target."""
    parent, admin = Program(), Program("n1:9:1", pid=9, program="prog.py")
    name = "fork of python prog.py for multiprocessing process ThespianAdmin (startAdmin) (pid 9)"
    parent.events.append(("thread", next(parent.ids), parent._tick(1), 1, None, 0,
                          name, "process", None, 0))  # fmt: skip
    parent.call("__main__.main")
    admin.call("work.compute")
    report = summarize(parent.stored() + admin.stored())
    by = {p["pid"]: p for p in report["processes"]}[9]["started_by"]
    assert (by["call_id"], by["function"], by["as"]) == (0, None, "ThespianAdmin (startAdmin)")
    text = report["text"].splitlines()
    at = next(i for i, line in enumerate(text) if line.startswith("n1:9 prog.py"))
    assert [line.strip() for line in text[at + 1 : at + 3]] == [
        "started in process 100 (no recorded call)",
        "multiprocessing process ThespianAdmin (startAdmin)",
    ]


def test_a_program_replaced_by_exec_says_which_call_replaced_it():
    """os.execv keeps the pid: the new program (a producer of its own) was exec'd by the old
    one's call, and the old one is still the one its parent started."""
    parent, old = Program(), Program("n1:7:1", pid=7, program="child.py")

    def start(program: Program, name: str, chain: str) -> Callable[[int], int]:
        def record(cid: int) -> int:
            program.events.append(("thread", next(program.ids), program._tick(1), 1, "c1", cid,
                                   name, "process", chain, 1))  # fmt: skip
            return 0

        return record

    parent.call("__main__.main", [start(parent, "python child.py (pid 7)", "chain-7")])
    old.call("__main__.replace", [start(old, "exec of python new.py (pid 7)", "chain-x")])
    new = Program("n1:7:2", pid=7, program="new.py")
    new.call("work.compute")
    report = summarize(parent.stored() + old.stored() + new.stored())
    by = {p["program"]: p["started_by"] for p in report["processes"]}
    assert by["child.py"]["pid"] == 100 and not by["child.py"]["exec"]
    assert by["new.py"]["pid"] == 7 and by["new.py"]["exec"] and by["new.py"]["chain"] == "chain-x"
    text = report["text"].splitlines()
    at = next(i for i, line in enumerate(text) if line.startswith("n1:7 new.py"))
    assert text[at + 1].strip() == "exec'd by replace() (call #1) in process 7"


def test_an_n_plus_one_through_a_helper_counts_in_its_chain():
    """Each query sits in a helper the loop calls (one parent call each): the most run in one
    chain is still N; another chain's queries are counted apart."""
    p = Program()
    sql = "SELECT title FROM books WHERE author_id = ?"
    books_of = lambda cid: p.call("app.books_of", [lambda q: p.query(sql, q)], parent=cid)  # noqa: E731
    p.call("app.list_authors", [books_of] * 6)
    p.query(sql, 0, cid="c2")
    (query,) = summarize(p.stored())["queries"]
    assert (query["count"], query["most_in_one_chain"]) == (7, 6)


def test_requests_sharing_a_chain_count_their_queries_apart():
    """An in-process client's requests all join its chain (traceparent): each request's
    queries are still its own (3, not 9)."""
    p = Program()
    sql = "SELECT title FROM books WHERE author_id = ?"
    query = lambda cid: p.query(sql, cid)  # noqa: E731

    def request(parent: int) -> int:
        handler = lambda cid: p.call("app.handler", [query] * 3, parent=cid)  # noqa: E731
        return p.call("elixirscope.web.request", [handler], parent=parent)

    p.call("app.drive", [request] * 3)
    (query_row,) = summarize(p.stored())["queries"]
    assert (query_row["count"], query_row["most_in_one_chain"]) == (9, 3)
    assert "elixirscope.web.request" not in {f["function"] for f in summarize(p.stored())["functions"]}


@given(st.text(max_size=60), st.integers(min_value=0, max_value=2**31))
def test_a_process_starts_pid_reads_back_from_its_name(command, pid):
    assert process_start_pid(process_start_name(command, pid)) == pid


@pytest.mark.parametrize("name", ["MainThread", "python x.py (pid )", "x (pid 3", "x (pid -1)", "x (pid ²)"])
def test_a_name_without_a_pid_has_none(name):
    assert process_start_pid(name) is None


def test_a_reused_thread_ident_counts_as_two_threads():
    p = Program()
    p.add("thread", "T-1", "thread", None, 0, thread=5)
    p.call("app.work", thread=5)
    p.add("thread", "pool_0", "thread", None, 0, thread=5)  # T-1 ended; its ident reused
    p.call("app.work", thread=5)
    p.call("app.work", thread=5)
    [proc] = summarize(p.stored())["processes"]
    assert {t["name"]: (t["thread"], t["events"]) for t in proc["threads"]} == {
        "T-1": (5, 3), "pool_0": (5, 5)}


def test_threads_of_one_name_are_told_apart_by_their_ident():
    p = Program()
    for ident in (7, 8):  # a pool's threads, all named alike
        p.add("thread", "AnyIO worker thread", "thread", None, 0, thread=ident)
        p.call("app.work", thread=ident)
    lines = summarize(p.stored())["text"].splitlines()
    assert [line.split("  ")[1] for line in lines if "AnyIO" in line] == [
        "thread AnyIO worker thread (7)", "thread AnyIO worker thread (8)"]


def test_web_requests_by_route_and_outgoing_http_by_url():
    p = Program()
    for i, (status, took) in enumerate([(200, 300), (200, 100), (404, 200), (500, 900)]):
        path = f"/api/tasks/{i}"
        p.add("reqend", i + 1, "GET", path, "/api/tasks/{task_id}", status, took, 0, 10, None,
              None, None)
    p.add("reqend", 9, "POST", "/login", None, 200, 50, 30, 2, None, None, None)
    for i, path in enumerate(["/wp-admin.php", "/.env", "/%C3%BF"]):  # a scanner's: no route
        p.add("reqend", 20 + i, "GET", path, None, 404, 10, 0, 9, None, None, None)

    def http(url: str, status: int, attempt: int, took: int):
        def made(parent: int) -> int:
            p.events.append(("http", next(p.ids), p._tick(1), 1, "c1", parent, "httpx", "GET",
                             url, attempt, status, took, 10, None if status else "refused",
                             False, None, None))
            return 0
        return made

    p.call("app.sync", [http("https://api.example/items?page=1", 503, 1, 40),
                        http("https://api.example/items?page=1", 200, 2, 60),
                        http("https://api.example/items?page=2", 0, 1, 5)])
    p.add("http", "urllib3", "GET", "https://api.example/items", 1, 200, 70, 10, None, False,
          None, None)
    for book in (1, 2, 30):  # one template: a row; the port's digits stay
        p.add("http", "urllib3", "GET", f"http://127.0.0.1:8042/price/book{book}", 1, 200, 5, 1,
              None, False, None, None)
    p.add("http", "urllib3", "GET", "http://127.0.0.1:8042/v2/stock", 1, 200, 5, 1, None, False,
          None, None)  # alone: as it is
    report = summarize(p.stored())
    tasks, unmatched, login = report["requests"]  # by total time
    assert (unmatched["request"], unmatched["count"], unmatched["statuses"]) == (
        "GET (no route matched)", 3, {"404": 3})  # one row, not one a path
    assert tasks == {"request": "GET /api/tasks/{task_id}", "count": 4, "total_ns": 1500,
                     "p50_ns": 200, "p95_ns": 900, "failed": 1,
                     "statuses": {"200": 2, "404": 1, "500": 1}}
    assert (login["request"], login["count"], login["failed"]) == ("POST /login", 1, 0)
    items, books, stock = report["http_calls"]  # the query is not part of what was called
    assert (books["call"], books["count"]) == (
        "GET http://127.0.0.1:8042/price/book{n} (3 URLs)", 3)
    assert stock["call"] == "GET http://127.0.0.1:8042/v2/stock"
    assert items == {"call": "GET https://api.example/items", "count": 4, "total_ns": 175,
                     "p50_ns": 40, "p95_ns": 70, "failed": 2, "retries": 1,
                     "statuses": {"0": 1, "200": 2, "503": 1}, "from": {"app.sync": 3, "None": 1},
                     "no_response": {"refused": 1}}  # why the one with no status got none
    text = report["text"]
    assert "GET /api/tasks/{task_id}" in text and "200×2 404×1 500×1" in text
    assert "refused×1 200×2 503×1" in text and "app.sync, ?" in text
    assert all(len(line) <= WIDTH for line in text.splitlines())


def test_a_request_among_the_slowest_calls_is_said_with_its_own_time():
    """A request's own call may run on after the answer (a 500's traceback logged): the
    slowest calls say the request, with its time, as calltree and the requests' table do."""
    from elixirscope.contracts.trace import REQUEST_FUNCTION

    p = Program()

    def answered(parent: int) -> int:
        p.events.append(("reqend", next(p.ids), p._tick(1), 1, "c1", parent, 1, "GET", "/flaky",
                         "/flaky", 500, 40, 0, 9, "RuntimeError", "boom", None))
        return 0

    p.call(REQUEST_FUNCTION, [answered], took=5000)  # 40 ns answered, 5 µs in all
    p.call("app.work", took=100)
    report = summarize(p.stored())
    work, request = report["slowest"]  # by their own times: 100 ns, then 40
    assert (work["function"], work["duration_ns"]) == ("app.work", 100)
    assert request["duration_ns"] == 40 and request["request"] == "GET /flaky -> 500"
    (requests,) = report["requests"]
    assert requests["total_ns"] == request["duration_ns"]  # the two tables agree
    assert "web request GET /flaky -> 500" in report["text"]


def test_a_wsgi_request_answered_after_its_call_returned_is_said_among_the_slowest():
    """WSGI: the app's call returns, then the server sends the body and the request ends."""
    from elixirscope.contracts.trace import REQUEST_FUNCTION

    p = Program()
    p.call(REQUEST_FUNCTION, took=5000)  # call id 1
    p.events.append(("reqend", next(p.ids), p._tick(1), 1, "c1", 1, 1, "GET", "/books/5",
                     "/books/<int:book_id>", 504, 6000, 0, 9, None, None, None))
    p.call("app.work", took=100)
    report = summarize(p.stored())
    request, work = report["slowest"]
    assert request["request"] == "GET /books/<int:book_id> -> 504"
    assert request["duration_ns"] == 6000 and work["function"] == "app.work"
    assert "web request GET /books/<int:book_id> -> 504" in report["text"]


def test_a_request_ended_outside_its_call_is_still_said_by_its_request():
    """A WSGI app's answer to an exception it handled (Flask's 500) can end the request
    once its call has returned, outside it: its end is found by its request's start."""
    from elixirscope.contracts.trace import REQUEST_FUNCTION

    p = Program()
    started: list[int] = []

    def start(parent: int) -> int:
        started.append(next(p.ids))
        p.events.append(("req", started[0], p._tick(1), 1, "c1", parent, "http", "GET",
                         "/orders/3"))
        return 0

    p.call(REQUEST_FUNCTION, [start], took=5000)
    p._tick(1_000_000)  # its end recorded 1 ms late: once the client closed the body
    p.events.append(("reqend", next(p.ids), p._tick(1), 1, "c1", 0, started[0], "GET",
                     "/orders/3", "/orders/<int:oid>", 500, 6000, 0, 9, "ZeroDivisionError",
                     "division by zero", None))
    req_ts = next(e[2] for e in p.events if e[0] == "req")
    report = summarize(p.stored())
    (request,) = report["slowest"]
    assert request["request"] == "GET /orders/<int:oid> -> 500"
    assert "web request GET /orders/<int:oid> -> 500" in report["text"]
    # it began when its start says, not its late end less its duration
    assert request["ts"] - request["duration_ns"] == req_ts


def test_cancelled_coroutines_are_counted_apart_from_the_exceptions():
    p = Program()
    p.call("app.other", raises=("KeyError", "'k'", ["/app/n.py:4:other"]))
    for _ in range(3):  # tasks a server's shutdown cancelled
        p.call("app.poll", raises=("asyncio.exceptions.CancelledError", "", ["/app/p.py:9:poll"]))
    report = summarize(p.stored())
    assert {e["exc_type"] for e in report["exceptions"]} == {
        "KeyError", "asyncio.exceptions.CancelledError"}  # --json keeps them all
    text = report["text"]
    table = text[text.index("Exceptions"):].split("\n\n")[0]
    assert "KeyError" in table and "CancelledError" not in table
    assert "Cancelled: 3 coroutine calls ended by CancelledError" in text
    # among the slowest, a cancelled call is said so, not flagged as a failure
    slowest = text[text.index("Slowest calls"):].split("\n\n")[0]
    assert slowest.count("app.poll (cancelled)") == 3 and "app.other !!" in slowest, slowest
    assert [s["cancelled"] for s in report["slowest"]].count(True) == 3


def test_an_orms_selects_are_told_apart_by_their_table_and_condition_not_their_columns():
    from elixirscope.query.summary import sql_shape

    columns = ", ".join(f'"loans_book"."{c}"' for c in ("id", "title", "author_id", "isbn"))
    book = f'SELECT {columns} FROM "loans_book" WHERE "loans_book"."id" = ? LIMIT 21'
    assert sql_shape(book) == 'SELECT … FROM "loans_book" WHERE "loans_book"."id" = ? LIMIT 21'
    assert sql_shape("select count(*) from t") == "select count(*) from t"  # short: as it is
    nested = "SELECT a_long_column_name_here, (SELECT max(x) FROM y) AS m FROM t"
    assert sql_shape(nested) == nested  # a subquery's FROM is not where the list ends
    p = Program()
    p.call("app.view", [lambda cid: p.query(book, cid), lambda cid: p.query(
        book.replace("loans_book", "loans_author"), cid)])
    text = summarize(p.stored())["text"]
    table = text[text.index("Queries"):].split("\n\n")[0]
    assert 'SELECT … FROM "loans_book" WHERE' in table
    assert 'SELECT … FROM "loans_author" WHERE' in table


def test_a_long_name_cut_to_its_column_keeps_whole_names():
    from elixirscope.query.summary import _tail_cut

    name = "inventory_actors.Inventory.handle_call"
    assert _tail_cut(name, 24) == "…Inventory.handle_call"  # not "…ventory.handle_call"
    assert _tail_cut(name, 12) == "…handle_call"
    # the class is kept, even cut, rather than the method alone: two actors' methods differ
    assert _tail_cut("thactors.Orchestrator.receiveMessage", 26) == "…chestrator.receiveMessage"
    assert _tail_cut("thactors.Worker.receiveMessage", 24) == "…Worker.receiveMessage"
    assert _tail_cut("/srv/app/taskflow/actors.py:53", 22) == "…taskflow/actors.py:53"
    assert _tail_cut("/srv/app/taskflow/actors.py:53", 24) == "…/taskflow/actors.py:53"
    assert _tail_cut("abcdefghijklmnopqrstuvwxyz", 10) == "…rstuvwxyz"  # no name to keep


def test_a_slow_call_that_took_its_callers_time_is_said_under_it():
    """A request, its view and the function the view waited in: one entry, the callees
    indented under it, not three rows among the others."""
    p = Program()

    def view(cid: int) -> int:
        return p.call("app.views.fetch_catalog", took=1000, parent=cid)

    p.call("app.views.book_catalog", [view], took=20)  # 1,020 ns: 98 % in fetch_catalog
    p.call("app.other", took=400)
    p.call("app.small_caller", [lambda cid: p.call("app.small_callee", took=10, parent=cid)],
           took=300)  # its callee took 3 % of it: a row of its own
    report = summarize(p.stored())
    text = report["text"]
    table = text[text.index("Slowest calls"):].split("\n\n")[0].splitlines()[2:]
    names = [line[:27].rstrip() for line in table]
    assert names == ["app.views.book_catalog", "  › views.fetch_catalog", "app.other",
                     "app.small_caller", "app.small_callee"], table
    assert table[1].split()[-2:] == ["1.0", "µs"]  # its own duration, no chain or start
    assert len(report["slowest"]) == 5  # --json lists each, with its caller's call id
    assert {s["function"]: s["parent_id"] for s in report["slowest"]}["app.views.fetch_catalog"] == 1


def test_a_generator_s_time_at_its_yields_is_its_consumer_s_not_ranked_as_its_own():
    """A dependency held open at its ``yield`` while the view ran lasted 6 µs, 5 of them
    suspended there: among the slowest calls it counts its own 1 µs, after a 3 µs call,
    and the text says the rest was at its yields."""
    p = Program()

    def held_open(cid):
        p.add("yield", cid, "app.dep", "'session'", 5, False)
        p._tick(5000)  # the consumer (a view) runs meanwhile
        p.add("resume", cid, "app.dep", "None")
        return 5002  # the time it was open for meanwhile

    p.call("app.dep", [held_open], took=1000)
    p.call("app.work", took=3000)
    report = summarize(p.stored())
    slow = [(s["function"], s["duration_ns"], s["yielded_ns"]) for s in report["slowest"]]
    assert slow == [("app.work", 3000, 0), ("app.dep", 1001, 5001)], slow
    dep = {f["function"]: f for f in report["functions"]}["app.dep"]
    assert dep["total_ns"] == 6002  # the functions' table keeps its whole time
    from elixirscope.query.summary import render_summary

    text = render_summary(report)
    assert "dep  (+5.0 µs at yields)" in text, text


def test_a_call_still_running_is_counted_as_unfinished():
    """A server's loop read while it runs (or a process killed mid-call): its call entered,
    no end recorded — counted apart, not as a call of no time."""
    p = Program()
    p.events.append(("call", next(p.ids), p._tick(1), 1, "c1", 0, "app.serve", None,
                     "/app/m.py", 3))
    p.call("app.handle", took=500)
    report = summarize(p.stored())
    rows = {f["function"]: f for f in report["functions"]}
    assert (rows["app.serve"]["calls"], rows["app.serve"]["unfinished"]) == (0, 1)
    assert (rows["app.handle"]["calls"], rows["app.handle"]["unfinished"]) == (1, 0)
    from elixirscope.query.summary import render_summary

    text = render_summary(report)
    assert "0 +1 unfinished" in text, text
    assert "1 +" not in text
