"""``elixirscope diff`` on real recordings: two runs of one program with known differences,
recorded by ``elixirscope run`` in subprocesses; and a pytest test's failure against its
last pass, recorded by ``pytest --elixirscope``."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cli_programs import elixirscope

TILL = '''
from elixirscope.runtime import GenServer, Reply


class Till(GenServer):
    def init(self, args):
        return {"sold": []}

    def handle_call(self, request, from_, state):
        state["sold"].append(request)
        return Reply(len(state["sold"]), state)
'''

# Run "a" and run "b" differ in exactly these places, nowhere else:
# price's second call (argument and return), rate's return, audit only in a, refund
# (and the note inside it) only in b, charge raising in b (and so checkout, caught in
# main), the message sent to the till, and wrap (so checkout and main) 500 ms slower in b.
# Slower by 500 ms, reported from 250 ms on: what else a loaded machine makes a call wait
# (tens of ms seen with both cores busy, mostly the runtime's start in main) stays far below
# the threshold, and sleep never returns early, so b's three calls take 500 ms or more.
SHOP = '''
import sys
import time

from elixirscope.runtime import Runtime
from till import Till

VARIANT = sys.argv[1]
RT = None


def price(item):
    return {"tea": 3, "cake": 4, "jam": 2}[item]


def rate():
    return 0.2 if VARIANT == "b" else 0.1


def wrap():
    time.sleep(0.5 if VARIANT == "b" else 0)


def audit():
    return True


def note(text):
    return text.upper()


def refund():
    return note("refund")


def charge():
    if VARIANT == "b":
        raise RuntimeError("card declined")


def checkout(till):
    items = ["tea", "cake"] if VARIANT == "a" else ["tea", "jam"]
    total = sum(price(item) for item in items) * (1 + rate())
    wrap()
    if VARIANT == "a":
        audit()
    else:
        refund()
    RT.call(till, ("sold", "tea" if VARIANT == "a" else "cake"))
    charge()
    return total


def main():
    global RT
    with Runtime("simpleSystemBase") as RT:
        till = RT.start(Till, path="till")
        for _ in range(3):
            price("tea")
        try:
            checkout(till)
        except RuntimeError:
            pass


main()
'''


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, str, str]:
    """A data dir holding run "a" then run "b" of SHOP; their ids."""
    where = tmp_path_factory.mktemp("diff")
    (where / "till.py").write_text(TILL)
    (where / "shop.py").write_text(SHOP)
    data = where / "data"
    for variant in ("a", "b"):
        done = elixirscope("run", "--data-dir", str(data), "--level", "args", "--trace",
                           "__main__", "shop.py", variant, cwd=where)
        assert done.returncode == 0, done.stderr
    runs = json.loads(elixirscope("runs", "--data-dir", str(data), "--json").stdout)["runs"]
    by_command = {r["command"][-1]: r["id"] for r in runs}
    return data, by_command["a"], by_command["b"]


def diff_json(data: Path, *args: str) -> dict:
    done = elixirscope("diff", "--data-dir", str(data), "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_diff_finds_exactly_the_known_differences(two_runs):
    data, a, b = two_runs
    report = diff_json(data, a[:6], b[:6], "--min-change", "250ms")
    assert report["a"]["run"]["id"] == a and report["b"]["run"]["id"] == b

    assert [(d["path"], d["label"], d["calls_inside"]) for d in report["only_in_a"]] == [
        (["main", "checkout"], "audit", 0)
    ]
    assert [(d["path"], d["label"], d["calls_inside"]) for d in report["only_in_b"]] == [
        (["main", "checkout"], "refund", 1)
    ]
    changed = {(tuple(d["path"]), d["label"]): d for d in report["changed"]}
    assert set(changed) == {(("main", "checkout"), "price[2]"), (("main", "checkout"), "rate")}
    second = changed[(("main", "checkout"), "price[2]")]
    assert second["what"] == ["arguments", "return"]
    assert (second["a"]["args"], second["a"]["result"]) == ({"item": "'cake'"}, "4")
    assert (second["b"]["args"], second["b"]["result"]) == ({"item": "'jam'"}, "2")
    rate = changed[(("main", "checkout"), "rate")]
    assert rate["what"] == ["return"] and (rate["a"]["result"], rate["b"]["result"]) == ("0.1", "0.2")

    # charge raised in b; checkout only passed it up to main, which caught it: one difference
    [raised] = report["exceptions"]
    assert (raised["path"], raised["label"]) == (["main", "checkout"], "charge")
    assert raised["a"]["status"] == "returned"
    assert raised["b"]["error"] == {"type": "RuntimeError", "message": "card declined"}

    # the send and its receive are one message, compared where it was sent
    [message] = report["messages"]
    assert (message["path"], message["change"]) == (["main", "checkout"], "different")
    assert (message["a"]["to"], message["a"]["message"]) == ("till", "('sold', 'tea')")
    assert (message["b"]["to"], message["b"]["message"]) == ("till", "('sold', 'cake')")

    slower = {d["function"]: d for d in report["durations"]}
    assert set(slower) == {"__main__.wrap", "__main__.checkout", "__main__.main"}
    assert all(d["b_p95_ns"] >= 500_000_000 and d["change_ns"] >= 250_000_000
               and d["change_ns"] == d["b_p95_ns"] - d["a_p95_ns"] for d in slower.values())
    assert report["differences"] == 9


def test_the_text_has_a_section_for_each_kind_of_difference(two_runs):
    data, a, b = two_runs
    done = elixirscope("diff", "--data-dir", str(data), "previous", "latest",
                       "--min-change", "250ms")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith(f"A: run {a[:8]}  shop.py a  ")
    assert f"\nB: run {b[:8]}  shop.py b  " in text
    for line in [
        "Calls only in A: 1",
        "  main > checkout > audit() -> True",
        "Calls only in B: 1",
        "  main > checkout > refund() -> 'REFUND'  (+1 call inside)",
        "Different arguments/returns: 2",
        "  main > checkout > price[2]",
        "    A: price(item='cake') -> 4",
        "    B: price(item='jam') -> 2",
        "Exceptions: 1",
        "  main > checkout > charge",
        "    A: charge() -> None",
        "    B: charge() !! RuntimeError: card declined",
        "Messages: 1",
        "  main > checkout: different",
        "    A: send ? -> till: ('sold', 'tea')",
        "    B: send ? -> till: ('sold', 'cake')",
        "Slower/faster (p95 moved over 20% and by at least 250.0 ms): 3",
        "9 differences",
    ]:
        assert line in text.splitlines(), (line, text)
    assert "  wrap: slower, p95 " in text


def test_a_run_against_itself_has_no_differences(two_runs):
    data, a, _ = two_runs
    report = diff_json(data, a, a)
    assert report["differences"] == 0
    done = elixirscope("diff", "--data-dir", str(data), a, a)
    assert done.stdout.splitlines()[-8:] == [
        "Calls only in A: none",
        "Calls only in B: none",
        "Different arguments/returns: none",
        "Exceptions: none",
        "Messages: none",
        "Queries, transactions and HTTP calls: none",
        "Slower/faster (p95 moved over 20% and by at least 1.0 ms): none",
        "no differences",
    ]


def test_the_threshold_decides_which_durations_are_reported(two_runs):
    data, a, b = two_runs
    everything = diff_json(data, a, b, "--threshold", "0", "--min-change", "0")
    assert {"__main__.wrap", "__main__.main"} <= {d["function"] for d in everything["durations"]}
    nothing = diff_json(data, a, b, "--min-change", "10s")
    assert nothing["durations"] == [] and nothing["differences"] == 6


@pytest.mark.parametrize(
    ("args", "status", "said"),
    [
        (["zzzz"], 1, "no run 'zzzz'"),
        (["latest", "--threshold", "-3"], 2, "expected a percentage >= 0"),
        (["--min-change", "soon"], 2, "expected a duration like 500us"),
        (["latest", "--test", "t.py::x"], 2, "give two runs, --test NODEID or --chains"),
        (["--test", "t.py::x", "--chains", "a", "b"], 2, "give two runs, --test NODEID or"),
        (["--chains", "zzzz", "zzzy"], 1, "chain A, 'zzzz', is in no run under"),
        (["--test", "t.py::x"], 1, "no test 't.py::x' recorded under"),
    ],
)
def test_bad_input_says_what_is_wrong(two_runs, args, status, said):
    data, _, _ = two_runs
    done = elixirscope("diff", "--data-dir", str(data), *args)
    assert done.returncode == status
    assert said in done.stderr and "Traceback" not in done.stderr


def test_one_run_has_no_previous(tmp_path):
    (tmp_path / "p.py").write_text("def f():\n    return 1\n\n\nf()\n")
    data = tmp_path / "data"
    assert elixirscope("run", "--data-dir", str(data), "--trace", "__main__", "p.py",
                       cwd=tmp_path).returncode == 0
    done = elixirscope("diff", "--data-dir", str(data))
    assert done.returncode == 1
    assert "run A is the previous run, but" in done.stderr and "holds 1 run" in done.stderr


# ---------------------------------------------------------------- a pytest test's runs

CALC = '''
def add(a, b):
    return a + b


def total(xs):
    s = 0
    for x in xs:
        s = add(s, x)
    return s
'''

TESTS = '''
import os

from calc import total


def test_total():
    xs = [1, 2, 3] if os.environ.get("BROKEN") else [1, 2]
    assert total(xs) == 3


def test_other():
    assert total([5]) == 5
'''


def test_a_failing_test_is_diffed_against_its_last_passing_run(tmp_path):
    (tmp_path / "calc").mkdir()
    (tmp_path / "calc" / "__init__.py").write_text(CALC)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_calc.py").write_text(TESTS)
    (tmp_path / "setup.py").write_text("")
    data = tmp_path / "rec"

    def pytest_run(broken: bool) -> subprocess.CompletedProcess:
        env = {"BROKEN": "1"} if broken else {}
        import os

        return subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--elixirscope",
             "--elixirscope-data-dir", str(data)],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
            stdin=subprocess.DEVNULL, env={**os.environ, **env},
        )

    first = pytest_run(broken=True)  # no passing run yet: no diff command offered
    assert first.returncode == 1 and "elixirscope diff" not in first.stdout
    passing = pytest_run(broken=False)
    assert passing.returncode == 0, passing.stdout
    failing = pytest_run(broken=True)
    assert failing.returncode == 1
    hint = "compare with its last passing run: elixirscope diff --data-dir "
    [line] = [x for x in failing.stdout.splitlines() if x.startswith(hint)]
    command = line.split(": ", 1)[1].split()
    assert command[-2:] == ["--test", "tests/test_calc.py::test_total"]

    done = elixirscope(*command[1:], "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["a"]["test"]["outcome"] == "passed"
    assert report["b"]["test"]["outcome"] == "failed"
    assert report["a"]["run"]["id"] != report["b"]["run"]["id"]  # the 2nd and 3rd sessions
    assert [(d["path"], d["label"], d["call"]["args"]) for d in report["only_in_b"]] == [
        (["calc.total"], "calc.add[3]", {"a": "3", "b": "3"})
    ]
    [changed] = report["changed"]
    assert (changed["label"], changed["what"]) == ("calc.total", ["arguments", "return"])
    assert report["only_in_a"] == report["exceptions"] == report["messages"] == []
    assert report["differences"] == 2

    # a unique end of the node id is enough
    short = elixirscope("diff", "--data-dir", str(data), "--test", "test_total")
    assert short.returncode == 0, short.stderr
    assert short.stdout.startswith("A: tests/test_calc.py::test_total passed  run ")
    never_failed = elixirscope("diff", "--data-dir", str(data), "--test", "test_other")
    assert never_failed.returncode == 1
    assert "has no recorded failure (3 recorded runs, none failed)" in never_failed.stderr


THREADS = '''
import sys
import threading


def work(n):
    return sum(range(n))


def start(n):
    thread = threading.Thread(target=work, args=(n,))
    thread.start()
    thread.join()


for n in ([10, 20] if sys.argv[1] == "a" else [20, 10]) + [int(sys.argv[2])]:
    start(n)
'''


def test_chains_that_started_in_another_order_still_pair_up(tmp_path):
    """Threads (each its own chain) that ran in the other order differ in nothing; the
    one thread whose work differs does, once."""
    (tmp_path / "threads.py").write_text(THREADS)
    data = tmp_path / "data"
    for args in (("a", "30"), ("b", "31")):
        done = elixirscope("run", "--data-dir", str(data), "--level", "args", "--trace",
                           "__main__", "threads.py", *args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    report = diff_json(data, "--min-change", "1s")
    assert report["only_in_a"] == report["only_in_b"] == []
    assert sorted((d["label"], d["a"]["args"], d["b"]["args"]) for d in report["changed"]) == [
        ("start[3]", {"n": "30"}, {"n": "31"}),
        ("work[3]", {"n": "30"}, {"n": "31"}),
    ]
    assert report["differences"] == 2


def test_a_run_recorded_with_fewer_values_differs_in_nothing_it_did_not_record(tmp_path):
    """The same program at the default level (no arguments, no returns) and at --level args:
    no call differs (it reported every call's 'returned' against its '-> None')."""
    (tmp_path / "threads.py").write_text(THREADS)
    data = tmp_path / "data"
    for level in (("--level", "boundaries"), ("--level", "args")):
        done = elixirscope("run", "--data-dir", str(data), *level, "--trace", "__main__",
                           "threads.py", "a", "30", cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
    report = diff_json(data, "--min-change", "1s")
    assert report["changed"] == [] and report["differences"] == 0


PORTED = '''
import socket


def connect_to(base):
    return base.endswith("/")


sock = socket.socket()
sock.bind(("127.0.0.1", 0))  # a free port: another in each run
connect_to(f"http://127.0.0.1:{sock.getsockname()[1]}/")
'''


def test_a_free_loopback_port_is_no_difference(tmp_path):
    (tmp_path / "ported.py").write_text(PORTED)
    data = tmp_path / "data"
    for _ in range(2):
        done = elixirscope("run", "--data-dir", str(data), "--level", "args", "ported.py",
                           cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
    report = diff_json(data, "--min-change", "1s")
    assert report["changed"] == [] and report["differences"] == 0


CONVERT = """
import threading


def parse(text):
    return int(text)


def handle(text):
    try:
        return parse(text) * 2
    except ValueError:
        return None


def work(text):
    return handle(text)


for t in ("21", "x"):
    thread = threading.Thread(target=work, args=(t,))
    thread.start()
    thread.join()
"""


def test_two_chains_of_one_run_are_diffed_as_two_runs_are(tmp_path):
    """A piece of work that failed beside one that did not (each thread its own chain):
    where their calls' arguments and endings part."""
    (tmp_path / "convert.py").write_text(CONVERT)
    data = tmp_path / "data"
    done = elixirscope("run", "--data-dir", str(data), "--level", "args", "convert.py",
                       cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads(elixirscope("query", "--data-dir", str(data), "--json",
                                  "chain, args from calls where function = '*work'").stdout)
    chain = {row["args"]["text"]: row["chain"] for row in rows["rows"]}
    done = elixirscope("diff", "--data-dir", str(data), "--json",
                       "--chains", chain["'21'"][:8], chain["'x'"][:8])
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["a"]["correlation"], report["b"]["correlation"]) == (chain["'21'"], chain["'x'"])
    assert report["only_in_a"] == report["only_in_b"] == []
    assert [(d["path"] + [d["label"]], d["a"]["args"], d["b"]["args"])
            for d in report["changed"]] == [
        (["work"], {"text": "'21'"}, {"text": "'x'"}),
        (["work", "handle"], {"text": "'21'"}, {"text": "'x'"}),
        (["work", "handle", "parse"], {"text": "'21'"}, {"text": "'x'"}),
    ], report["changed"]
    (raised,) = report["exceptions"]
    assert raised["label"] == "parse" and raised["b"]["error"]["type"] == "ValueError", raised
    text = elixirscope("diff", "--data-dir", str(data), "--chains", chain["'21'"][:8],
                       chain["'x'"][:8]).stdout
    good = chain["'21'"]
    assert text.startswith(f"A: chain {good[:12]}  run "), text


TAKE = """
import sqlite3
import sys

db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE stock (sku TEXT PRIMARY KEY, n INTEGER)")
db.execute("INSERT INTO stock VALUES ('tea', 5)")
db.commit()


def take(n):
    try:
        db.execute("UPDATE stock SET n = n - ? WHERE sku = 'tea'", (n,))
        if n > 5:
            raise ValueError(f"only 5 left, asked {n}")
        db.commit()
    except ValueError:
        db.rollback()
    return db.execute("SELECT n FROM stock WHERE n < 5").fetchall()


take(int(sys.argv[1]))
"""


def test_queries_and_transactions_that_parted_are_differences(tmp_path):
    """A take that committed against one that rolled back: the COMMIT only in A, the
    ROLLBACK only in B, the SELECT that then found a row in A and none in B different;
    the UPDATE both ran (other parameters, one row each) is none."""
    (tmp_path / "take.py").write_text(TAKE)
    data = tmp_path / "data"
    for n in ("2", "9"):
        done = elixirscope("run", "--data-dir", str(data), "--level", "args", "take.py", n,
                           cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    report = diff_json(data, "--min-change", "1s")
    said = [(d["change"], (d["a"] or d["b"])["statement"]) for d in report["queries"]]
    assert sorted(said) == sorted([
        ("only in A", "COMMIT"),
        ("only in B", "ROLLBACK"),
        ("different", "SELECT n FROM stock WHERE n < 5"),
    ]), report["queries"]
    select = next(d for d in report["queries"] if d["change"] == "different")
    assert (select["a"]["rows"], select["b"]["rows"]) == (1, 0)
    text = elixirscope("diff", "--data-dir", str(data), "--min-change", "1s").stdout
    assert "Queries, transactions and HTTP calls: 3" in text
    assert "  take: only in B\n    B: ROLLBACK  (take.py:" in text, text


ASK = """
import http.server
import sys
import threading

import httpx

answers = iter(sys.argv[1:])


class Stock(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(int(next(answers)))
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Stock)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_port}/stock/7"


def ask():
    with httpx.Client() as client:
        for _ in range(2):
            got = client.get(url)
            if got.status_code < 500:
                return got.status_code
    return got.status_code


print(ask())
server.shutdown()
"""


def test_http_calls_answered_otherwise_are_differences(tmp_path):
    """A call answered at once against one answered 503, then retried: the attempts
    answered alike pair up, and B's failed one is only in B."""
    (tmp_path / "ask.py").write_text(ASK)
    data = tmp_path / "data"
    for answers in (["200"], ["503", "200"]):
        done = elixirscope("run", "--data-dir", str(data), "--level", "args", "ask.py",
                           *answers, cwd=tmp_path)
        assert done.returncode == 0 and done.stdout == "200\n", done.stderr
    report = diff_json(data, "--min-change", "1s")
    said = [(d["change"], d["a"] and d["a"]["status"], d["b"] and d["b"]["status"])
            for d in report["queries"]]
    assert said == [("only in B", None, 503)], report["queries"]
    assert report["queries"][0]["b"]["statement"].startswith("GET http://127.0.0.1:")
    text = elixirscope("diff", "--data-dir", str(data), "--min-change", "1s").stdout
    assert "  ask: only in B\n    B: GET http://127.0.0.1:" in text and "/stock/7 -> 503" in text


SHARED = """
import socket, threading, time

import httpx, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

STOCK = {"tea": 5}


def take(request):
    n = int(request.path_params["n"])
    if n > STOCK["tea"]:
        raise ValueError(f"only {STOCK['tea']} left, asked {n}")
    STOCK["tea"] -= n
    return JSONResponse(STOCK)


app = Starlette(routes=[Route("/take/{n}", take)])


def client(url):  # recorded, so its requests carry its chain to the server
    with httpx.Client() as c:
        print(c.get(url + "/take/2").status_code, c.get(url + "/take/9").status_code)
"""


def test_insights_names_the_diff_of_a_failed_request_and_an_answered_one(tmp_path):
    """An in-process client's requests share its chain: the server error's look command
    diffs the two requests each on its own (PRODUCER#ID of each end), and runs as it is."""
    from served_program import SERVED

    (tmp_path / "shared.py").write_text(SHARED + SERVED)
    data = tmp_path / "data"
    done = elixirscope("run", "--data-dir", str(data), "--level", "args", "shared.py",
                       cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == "200 500\n", done.stderr
    found = json.loads(elixirscope("insights", "--data-dir", str(data), "--json",
                                   cwd=tmp_path).stdout)
    (error,) = [f for f in found["findings"] if f["kind"] == "server_error"]
    (command,) = [c for c in error["commands"] if c.startswith("elixirscope diff")]
    assert re.fullmatch(r"elixirscope diff --chains '\S+#\d+' '\S+#\d+'", command), command
    args = [*shlex.split(command)[1:], "--data-dir", str(data)]
    done = elixirscope(*args, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["only_in_a"] == report["only_in_b"] == []
    (take,) = [d for d in report["changed"] if d["label"] == "take"]
    assert take["b"]["status"] == "raised" and take["a"]["status"] == "returned", take
