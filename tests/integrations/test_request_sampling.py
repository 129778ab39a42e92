"""``integrations.request_sampling``: requests left out are left out whole (their calls,
queries and actor messages too), the ones kept are recorded whole, callers' decisions
are followed, and the run says how many were left out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web_programs import elixirscope, events

from elixirscope.capture import recorder
from elixirscope.capture.actors import SAMPLED_OUT, ActorTracer
from elixirscope.capture.sampled import SampledOut
from elixirscope.integrations import sampling

PROGRAM = r"""
import json, socket, sqlite3, sys, threading, time
from wsgiref.simple_server import WSGIRequestHandler, make_server
import httpx, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from elixirscope.integrations.wsgi import ElixirScopeWSGIMiddleware

DB = sqlite3.connect(":memory:", check_same_thread=False)
DB.execute("create table tasks (id integer primary key, title text)")
DB.executemany("insert into tasks (title) values (?)", [("a",), ("b",)])
LOCK = threading.Lock()

def titles():
    with LOCK:
        return [row[0] for row in DB.execute("select title from tasks where id > ?", (0,))]

async def tasks(request):
    return JSONResponse(titles())

def count_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(titles()).encode()]

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

app = Starlette(routes=[Route("/tasks", tasks)])

def main():
    sock = socket.socket(); sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True); t.start()
    wsgi = make_server("127.0.0.1", 0, ElixirScopeWSGIMiddleware(count_app), handler_class=Quiet)
    threading.Thread(target=wsgi.serve_forever, daemon=True).start()
    while not server.started: time.sleep(0.01)
    asgi_url = f"http://127.0.0.1:{sock.getsockname()[1]}/tasks"
    wsgi_url = f"http://127.0.0.1:{wsgi.server_port}/tasks"
    answers = []
    for url, traceparent in json.loads(sys.argv[1]):
        headers = {"traceparent": traceparent} if traceparent else {}
        r = httpx.get(asgi_url if url == "asgi" else wsgi_url, headers=headers)
        answers.append([r.json(), r.headers.get("x-correlation-id"), r.headers.get("traceparent")])
    print(json.dumps(answers))
    wsgi.shutdown(); server.should_exit = True; t.join()

main()
"""

SAMPLED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
NOT_SAMPLED = "00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"


def run(tmp_path: Path, rate: str, calls: list[list[str | None]]) -> tuple[list, str, Path]:
    (tmp_path / "app.py").write_text(PROGRAM)
    data = tmp_path / "data"
    done = elixirscope(
        "run",
        "--data-dir",
        str(data),
        "--trace",
        "app.titles",
        "app.py",
        json.dumps(calls),
        cwd=tmp_path,
        # the client's calls unrecorded: else each would send its own sampled traceparent
        env={
            "ELIXIRSCOPE_INTEGRATIONS__REQUEST_SAMPLING": rate,
            "ELIXIRSCOPE_INTEGRATIONS__HTTPX": "false",
        },
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr, data


def in_requests(data: Path, tag: str) -> list[dict]:
    """Events of type ``tag`` recorded under some request's chain (not the set-up's)."""
    chains = {e["correlation_id"] for e in events(data, "req")}
    return [e for e in events(data, tag) if e["correlation_id"] in chains]


def test_at_zero_only_a_sampled_caller_s_requests_are_recorded_and_whole(tmp_path: Path) -> None:
    calls = [
        ["asgi", None],
        ["asgi", SAMPLED],
        ["asgi", NOT_SAMPLED],
        ["wsgi", None],
        ["wsgi", None],
    ]
    answers, stderr, data = run(tmp_path, "0", calls)
    assert [a[0] for a in answers] == [["a", "b"]] * 5  # the program answers as ever
    requests = events(data, "req")
    assert [r["trace_id"] for r in requests] == [SAMPLED.split("-")[1]]
    (kept,) = requests
    # the request kept is whole: its call of titles() and its query, under its chain
    assert [e["correlation_id"] for e in in_requests(data, "query")] == [kept["correlation_id"]]
    recorded_titles = [e for e in events(data, "call") if e["function"].endswith("titles")]
    assert [e["correlation_id"] for e in recorded_titles] == [kept["correlation_id"]]
    # left out: no trace headers naming a trace nobody recorded; kept: its own
    assert [a[1] is None for a in answers] == [True, False, True, True, True]
    assert answers[1][2].split("-")[1] == SAMPLED.split("-")[1]
    assert (
        "recorded 1 of 5 web requests (integrations.request_sampling = 0; the others were "
        "left out whole, with what ran under them)" in stderr
    )
    # and the run's record keeps it, for every later read of the run
    (recorded,) = json.loads(elixirscope("runs", "--data-dir", str(data), "--json").stdout)["runs"]
    assert recorded["requests_sampled_out"] == 4
    header = elixirscope("events", "--data-dir", str(data), "--type", "req").stdout.splitlines()[0]
    assert "4 web requests left out by integrations.request_sampling" in header


def test_a_share_records_about_that_share_each_request_whole(tmp_path: Path) -> None:
    calls = [["asgi", None]] * 30 + [["wsgi", None]] * 10
    answers, stderr, data = run(tmp_path, "0.5", calls)
    requests = events(data, "req")
    # binomial(40, 0.5): outside 6..34 once in about 10^5 runs
    assert 6 <= len(requests) <= 34
    kept = {r["correlation_id"] for r in requests}
    assert kept == {a[1] for a in answers if a[1] is not None}
    assert sorted(e["correlation_id"] for e in in_requests(data, "query")) == sorted(kept)
    titles = [e for e in events(data, "call") if e["function"].endswith("titles")]
    assert sorted(e["correlation_id"] for e in titles) == sorted(kept)
    assert f"recorded {len(requests)} of 40 web requests" in stderr


def test_every_request_is_recorded_by_default_whatever_the_caller_decided(tmp_path: Path) -> None:
    answers, stderr, data = run(tmp_path, "1", [["asgi", NOT_SAMPLED], ["wsgi", None]])
    assert len(events(data, "req")) == 2
    assert all(a[1] is not None for a in answers)
    assert answers[0][2].endswith("-00")  # the caller's flags, passed on
    assert "web requests" not in stderr


def test_a_share_outside_zero_to_one_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('ran')\n")
    done = elixirscope(
        "run",
        "--data-dir",
        str(tmp_path / "data"),
        "app.py",
        cwd=tmp_path,
        env={"ELIXIRSCOPE_INTEGRATIONS__REQUEST_SAMPLING": "1.5"},
    )
    assert done.returncode != 0
    assert "integrations.request_sampling" in done.stderr
    assert "ran" not in done.stdout
    with pytest.raises(ValueError, match="integrations.request_sampling"):
        sampling.set_request_sampling(-0.1)


def test_an_actor_message_sent_from_a_request_left_out_is_left_out_where_it_is_handled() -> None:
    rec = recorder.install(1024)
    try:
        tracer = ActorTracer()
        with SampledOut():
            assert recorder.recording() is None
            trace = tracer.sending(None, "worker", {"assign": 1})
        assert trace[0] == SAMPLED_OUT
        assert recorder.recording() is rec  # the mark ends with its block
        before = rec.ring.stats()["writes"]
        with tracer.receiving("worker", {"assign": 1}, trace):
            assert recorder.recording() is None
            assert tracer.begin("worker", "handle_call", {"assign": 1}, {}) is None
        assert recorder.recording() is rec
        assert rec.ring.stats()["writes"] == before  # no receive, no state
        sent = tracer.sending(None, "worker", {"assign": 2})  # outside: traced as ever
        assert sent[0] != SAMPLED_OUT
    finally:
        recorder.uninstall()
