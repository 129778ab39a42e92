"""Small real programs, each with one defect a detector must find (or its clean twin),
recorded with the real ``elixirscope run`` into a data dir of their own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

TIMEOUT_S = 180  # a hung subprocess fails the test instead of the suite (not an assertion)

SHOP_DB = '''
import sqlite3
import sys


def open_shop(path):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT)")
    db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, order_id INTEGER, name TEXT)")
    db.executemany("INSERT INTO orders VALUES (?, ?)", [(i, f"c{i}") for i in range(30)])
    db.executemany(
        "INSERT INTO items (order_id, name) VALUES (?, ?)",
        [(i % 30, f"item{i}") for i in range(60000)],
    )
    db.commit()
    return db


def item_names(db, order_id):
    rows = db.execute("SELECT name FROM items WHERE order_id = ? ORDER BY name", (order_id,))
    return [name for (name,) in rows]


def report_helper(db):
    out = {}
    for (order_id,) in db.execute("SELECT id FROM orders").fetchall():
        out[order_id] = item_names(db, order_id)
    return out


def report_inline(db):
    counts = {}
    for order_id in range(30):
        counts[order_id] = db.execute(f"SELECT count(*) FROM items WHERE order_id = {order_id}").fetchone()[0]
    return counts


def report_joined(db):
    out = {}
    for order_id, name in db.execute(
        "SELECT orders.id, items.name FROM orders JOIN items ON items.order_id = orders.id"
    ):
        out.setdefault(order_id, []).append(name)
    return out


def report_few(db):
    return [item_names(db, order_id) for order_id in range(3)]


db = open_shop(":memory:")
if sys.argv[1] == "n+1":
    report_helper(db)
    report_inline(db)
else:
    report_joined(db)
    report_few(db)
'''
"""N+1 twice (a helper called in a loop, with parameters; an f-string in a loop, with
literals), and its clean twin (one JOIN; the same helper three times only)."""

LEDGER_DB = '''
import sqlite3
import sys


def save(db, entry):
    db.execute("INSERT INTO entries (account, amount) VALUES (?, ?)", entry)


def book(db, entries):
    for entry in entries:
        save(db, entry)
    for account in range(12):
        db.execute(f"UPDATE accounts SET booked = 1 WHERE id = {account}")
    db.execute("DELETE FROM entries WHERE amount = ?", (0,))


def book_at_once(db, entries):
    db.executemany("INSERT INTO entries (account, amount) VALUES (?, ?)", entries)
    db.execute("UPDATE accounts SET booked = 1 WHERE id IN (%s)" % ",".join(map(str, range(12))))


db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE entries (account INTEGER, amount INTEGER)")
db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, booked INTEGER)")
db.executemany("INSERT INTO accounts VALUES (?, 0)", [(i,) for i in range(12)])
entries = [(i % 12, i) for i in range(300)]
book(db, entries) if sys.argv[1] == "rows" else book_at_once(db, entries)
db.commit()
'''
"""Row-by-row writes twice (an INSERT through a helper called in a loop, an UPDATE
f-string in a loop; a DELETE run once is none), and the twin sending them at once."""

ORM = '''
from sqlalchemy import ForeignKey, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    lines: Mapped[list["Line"]] = relationship()


class Line(Base):
    __tablename__ = "lines"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    qty: Mapped[int]


def order_total(order):
    return sum(line.qty for line in order.lines)


def total_quantity(session, mode):
    eager = mode == "eager"
    query = session.query(Order).options(selectinload(Order.lines)) if eager else session.query(Order)
    total = 0
    for order in query.all():
        if mode == "helper":
            total += order_total(order)
        else:
            total += sum(line.qty for line in order.lines)
    return total


engine = create_engine("sqlite://")
Base.metadata.create_all(engine)
with Session(engine) as session:
    session.add_all([Order(id=i, lines=[Line(qty=q) for q in range(1, 4)]) for i in range(60)])
    session.commit()
    print(total_quantity(session, __import__("sys").argv[1]))
'''
"""SQLAlchemy's ORM: each order's lines lazy-loaded in a loop (``lazy``: N+1; ``helper``:
the same, each order's in a call of a helper), or loaded with ``selectinload``
(``eager``: clean)."""

ACCOUNTS = '''
import os
import sqlite3
import sys
import tempfile
import threading

from elixirscope.capture.context import correlation

path = os.path.join(tempfile.mkdtemp(), "bank.db")
setup = sqlite3.connect(path, isolation_level=None)
setup.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER)")
setup.execute("INSERT INTO accounts VALUES (1, 100), (2, 100)")
both_read = threading.Barrier(2)


def deposit(account, amount, wait):
    with correlation():
        db = sqlite3.connect(path, isolation_level=None)
        (balance,) = db.execute("SELECT balance FROM accounts WHERE id = ?", (account,)).fetchone()
        if wait:
            both_read.wait(timeout=10)
        db.execute("UPDATE accounts SET balance = ? WHERE id = ?", (balance + amount, account))
        db.close()


def concurrently(jobs):
    threads = [threading.Thread(target=deposit, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if sys.argv[1] == "race":
    concurrently([(1, 10, True), (1, 20, True)])
else:
    concurrently([(1, 10, True), (2, 20, True)])  # two rows: no conflict
    for job in [(1, 10, False), (1, 20, False)]:  # one row, one after the other
        concurrently([job])
print(setup.execute("SELECT balance FROM accounts ORDER BY id").fetchall())
'''
"""A lost update on one row by two concurrent chains; clean: two rows, or one at a time."""

COUNTER_ACTORS = '''
import time

from elixirscope.runtime import CallResult, GenServer, Reply


class Counter(GenServer):
    def init(self, args):
        return {"count": 0}

    def handle_call(self, request, from_, state):
        if request == "get":
            return Reply(state["count"], state)
        if request == "incr":
            state["count"] += 1
            return Reply(state["count"], state)
        if request[0] == "set":
            state["count"] = request[1]
            return Reply("ok", state)
        raise ValueError(f"Counter does not understand {request!r}")

    def handle_cast(self, message, state):
        time.sleep(0.005)  # slower than the casts arrive
        state["count"] += 1
        return state


class Bumper(GenServer):
    """Bumps the counter: by reading it, then (cast "write") writing back what it read plus
    one (racy); or, atomic, by asking the counter to add one."""

    def init(self, args):
        return {"counter": args[0], "atomic": args[1], "seen": None}

    def handle_cast(self, message, state):
        if message == "bump":
            self.call_async(state["counter"], "incr" if state["atomic"] else "get", 5)
        elif message == "write" and state["seen"] is not None:
            self.call_async(state["counter"], ("set", state["seen"] + 1), 5)
        return state

    def handle_info(self, message, state):
        if isinstance(message, CallResult) and message.ok and not state["atomic"]:
            if isinstance(message.value, int):
                state["seen"] = message.value
        return state


class Flooder(GenServer):
    """Casts the counter ``n`` bumps at once when cast ``n``."""

    def init(self, counter):
        return {"counter": counter}

    def handle_cast(self, n, state):
        for _ in range(n):
            self.cast(state["counter"], "bump")
        return state
'''

COUNTER = '''
import sys
import time

from counter_actors import Bumper, Counter, Flooder
from elixirscope.runtime import Runtime


def settle(rt, counter, want):
    deadline = time.monotonic() + 10
    while rt.call(counter, "get") < want and time.monotonic() < deadline:
        time.sleep(0.01)


mode = sys.argv[1]
with Runtime(sys.argv[2] if len(sys.argv) > 2 else "simpleSystemBase") as rt:
    counter = rt.start(Counter, None, path="counter")
    if mode in ("race", "atomic"):
        bumpers = [rt.start(Bumper, (counter, mode == "atomic"), path=f"bumper-{i}") for i in range(2)]
        for b in bumpers:
            rt.cast(b, "bump")
        rt.call(counter, "get")  # both have read (or bumped) by now
        for b in bumpers:
            rt.cast(b, "write")
        print("count", rt.call(counter, "get"))
    elif mode == "flood":
        rt.cast(rt.start(Flooder, counter, path="flooder"), 150)
        settle(rt, counter, 150)
        print("count", rt.call(counter, "get"))
    else:
        for _ in range(150):
            rt.call(counter, "incr")
        print("count", rt.call(counter, "get"))
'''
"""Actors: a lost update on a counter's state by two bumpers reading then writing
(``race``; ``atomic`` is clean), and 200 casts flooding its mailbox (``flood``; ``calls``
waits for each answer, clean)."""

PARSER_ACTORS = '''
from elixirscope.runtime import GenServer, Reply


class Parser(GenServer):
    def init(self, args):
        return {"parsed": 0}

    def handle_call(self, request, from_, state):
        value = int(request)
        state["parsed"] += 1
        return Reply(value, state)
'''

CRASHER = '''
import sys
import time

from parser_actors import Parser
from elixirscope.runtime import ChildSpec, Runtime, SupervisorSpec


def address(rt, sup, old):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = {c.id: c.address for c in rt.which_children(sup)}["parser"]
        if now not in (None, old):
            return now
        time.sleep(0.01)
    raise SystemExit("parser was not restarted")


with Runtime(sys.argv[1] if len(sys.argv) > 1 else "simpleSystemBase") as rt:
    spec = SupervisorSpec("one_for_one", [ChildSpec("parser", (Parser, None))], max_restarts=20, max_seconds=10)
    sup = rt.start_supervisor(spec, path="app")
    parser = address(rt, sup, None)
    for text in ["1", "2", "x", "y", "z", "3"]:
        try:
            rt.call(parser, text)
        except Exception:
            parser = address(rt, sup, parser)
'''
"""A child that raises on every bad input, restarted each time: a crash loop and a storm
(argv[1]: the Thespian base; a multiproc one runs each actor in a process of its own)."""

CALLER = '''
import sys

import httpx


def fetch_with_retries(url, attempts=5):
    for attempt in range(attempts):
        response = httpx.get(url, timeout=5)
        if response.status_code < 500:
            return response.status_code
    return response.status_code


def main(base, mode):
    if mode == "bad":
        fetch_with_retries(base + "/flaky")
        httpx.get(base + "/slow", timeout=5)
    else:
        fetch_with_retries(base + "/ok")
        httpx.get(base + "/ok", timeout=5)


main(sys.argv[1], sys.argv[2])
'''
"""Outgoing HTTP: a retry loop against a flaky service and a slow call (``bad``), or
the same loop against a healthy one (``good``)."""

PRICER = '''
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx


def price(client, base, sku):
    return client.get(f"{base}/prices/{sku}", timeout=5).status_code


def rate(client, base):
    return client.get(base + "/rate?currency=EUR", timeout=5).status_code


def main(base, mode):
    with httpx.Client() as client:
        if mode == "loop":
            for sku in range(1000, 1006):
                price(client, base, sku)
                rate(client, base)
        elif mode == "at_once":
            with ThreadPoolExecutor(6) as pool:
                list(pool.map(lambda sku: price(client, base, sku), range(1000, 1006)))
        elif mode == "posts":  # six orders, each its own POST to one URL
            for order in range(6):
                client.post(base + "/orders", json={"order": order}, timeout=5)
        else:
            client.get(base + "/prices?ids=1000,1001,1002,1003,1004,1005", timeout=5)
            rate(client, base)


main(sys.argv[1], sys.argv[2])
'''
"""Outgoing HTTP one item at a time (``loop``: six prices, each its own URL, and the same
rate asked six times; ``posts``: six orders POSTed to one URL), the six prices at once
(``at_once``), or one batch call."""

THREADED_CALLS = '''
import asyncio
import sys

import requests


async def fetch_all(base):
    codes = []
    for _ in range(5):  # each in a thread of the loop's: no line of the program's under it
        codes.append((await asyncio.to_thread(requests.get, base + "/ok", timeout=5)).status_code)
    return codes


print(asyncio.run(fetch_all(sys.argv[1])))
'''
"""Five HTTP calls one after another, each made in a worker thread by ``requests.get``
itself: no frame of the program's under them, only the coroutine they ran for."""

WORKER = '''
import os
import time

from flask import Flask

app = Flask(__name__)


@app.get("/items/<int:item>")
def item(item):
    time.sleep(float(os.environ["STEP_S"]))
    return {"item": item}


client = app.test_client()
for i in range(5):
    client.get(f"/items/{i}")
'''
"""A Flask route whose handler's duration the environment sets: the latency baseline's program."""


REPORTER_ACTORS = '''
import time

from elixirscope.runtime import GenServer, Reply


class Reporter(GenServer):
    def init(self, step):
        self.step = step
        return {"served": 0}

    def handle_call(self, request, from_, state):
        if request == "report":
            rows = [render_row(i, self.step) for i in range(5)]
            return Reply(rows, {"served": state["served"] + 1})
        return Reply(state["served"], state)


def render_row(i, step):
    time.sleep(step)
    return {"row": i}
'''

SERVICE = '''
import json
import sys
import time

from flask import Flask, abort
from reporter_actors import Reporter
from elixirscope.runtime import Runtime

bad = sys.argv[1] == "bad"
app = Flask(__name__)
USERS = {1: "ada"}


@app.get("/users/<int:uid>")
def user(uid):
    name = USERS.get(uid)
    return {"name": name.upper()}


@app.get("/ping")
def ping():
    return {"ok": True}


@app.get("/export")
def export():
    time.sleep(0.6 if bad else 0)
    return {"rows": 5}


@app.get("/limit")
def limit():
    return {"limit": int("unlimited" if bad else "10", base=10), "note": "a line long enough to be cut when a finding quotes it"}


@app.get("/settings")
def settings():
    return json.loads("{'retries': 3}" if bad else '{"retries": 3}')  # raised inside json


@app.get("/upstream")
def upstream():
    if bad:
        abort(502, "the warehouse did not answer")  # an exception the framework answers
    return {"ok": True}


def ask_warehouse():
    if bad:
        raise TimeoutError("the warehouse took too long")
    return 3


@app.get("/stock")
def stock():
    try:
        return {"stock": ask_warehouse()}
    except TimeoutError:
        return {"error": "the warehouse did not answer in time"}, 504  # answered by the handler


@app.get("/health")
def health():
    return ({"error": "database unavailable"}, 503) if bad else {"ok": True}


with Runtime("simpleSystemBase") as rt:
    reporter = rt.start(Reporter, 0.1 if bad else 0, path="reporter")
    for _ in range(10):
        rt.call(reporter, "count")
    rt.call(reporter, "report")
    client = app.test_client()
    for _ in range(10):
        client.get("/ping")
    client.get("/export")
    client.get("/health")
    client.get("/limit")
    client.get("/settings")
    client.get("/upstream")
    client.get("/stock")
    for uid in ([2, 3] if bad else [1, 1]):
        print(client.get(f"/users/{uid}").status_code)
'''
"""A service with its defects planted (``bad``): an actor callback rendering rows slowly,
a slow route among fast ones, an unknown user that raises (a 500, twice), a limit that
cannot be read (a 500 raised by a line longer than a finding quotes), settings that cannot
be read (a 500 raised inside the standard library's json), a 503 a handler chose and a 504
it answered for a timeout it caught; ``clean`` does the same work without them."""


def elixirscope(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ELIXIRSCOPE_")}
    return subprocess.run(
        [sys.executable, "-m", "elixirscope", *args], capture_output=True, text=True, cwd=cwd,
        timeout=TIMEOUT_S, stdin=subprocess.DEVNULL, env={**base, **(env or {})},
    )


def record(where: Path, name: str, program: str, *argv: str, data: str | None = None,
           env: dict[str, str] | None = None, level: str = "args",
           modules: dict[str, str] | None = None, trace: str | None = None) -> Path:
    """``program`` written to ``where/name.py`` (and ``modules``, ``where/<key>.py`` each,
    which it may import) and recorded under ``where/<data or name>``; with ``trace``, only
    that is recorded (not the default: the script and the modules beside it)."""
    script = where / f"{name}.py"
    script.write_text(program)
    for module, text in (modules or {}).items():
        (where / f"{module}.py").write_text(text)
    data_dir = where / (data or name)
    traced = ["--trace", trace] if trace else []
    done = elixirscope("run", "--data-dir", str(data_dir), "--level", level, *traced, str(script),
                       *argv, cwd=where, env=env)
    assert done.returncode == 0, done.stderr
    return data_dir


def external_service() -> Any:
    """An ASGI handler: ``/flaky`` answers 503 twice then 200, ``/slow`` waits 1 s, ``/ok``."""
    import asyncio

    calls = {"flaky": 0}

    async def handle(scope: dict, body: bytes) -> tuple[int, dict, bytes]:
        if scope["path"] == "/flaky":
            calls["flaky"] += 1
            return (503 if calls["flaky"] <= 2 else 200), {}, b"flaky"
        if scope["path"] == "/slow":
            await asyncio.sleep(1.0)
        return 200, {}, b"ok"

    return handle
