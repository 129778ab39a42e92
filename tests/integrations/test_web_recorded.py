"""A web program recorded by the real ``elixirscope run``: Starlette on uvicorn, Flask
and a plain WSGI app on wsgiref, called over loopback by httpx (sync and async),
requests and a WebSocket client; asserted on ``events --json`` and ``calltree``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from web_programs import WEB_APP, calltree, elixirscope, events


class Recorded:
    def __init__(self, where: Path, stdout: str) -> None:
        self.data_dir = where / "data"
        self.stdout = stdout
        self.all = events(self.data_dir)
        self.web = [e for e in self.all if e["type"] in ("req", "reqend", "ws", "http")]

    def of(self, kind: str, **fields: object) -> list[dict]:
        return [
            e
            for e in self.web
            if e["type"] == kind and all(e.get(k) == v for k, v in fields.items())
        ]

    def start_of(self, end: dict) -> dict:
        (start,) = [e for e in self.web if e["type"] == "req" and e["id"] == end["request_id"]]
        return start


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Recorded:
    where = tmp_path_factory.mktemp("web")
    (where / "web_app.py").write_text(WEB_APP)
    done = elixirscope("run", "--data-dir", str(where / "data"), "web_app.py", cwd=where)
    assert done.returncode == 0, done.stderr
    assert "errors inside the recording" not in done.stderr
    return Recorded(where, done.stdout)


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> str:
    """The same program under plain ``python``."""
    import subprocess

    where = tmp_path_factory.mktemp("plain")
    (where / "web_app.py").write_text(WEB_APP)
    done = subprocess.run(
        [sys.executable, "web_app.py"],
        capture_output=True,
        text=True,
        cwd=where,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_program_answers_as_it_does_without_elixirscope(recorded: Recorded, plain: str) -> None:
    recorded_lines = recorded.stdout.splitlines()
    plain_lines = plain.splitlines()
    # The one difference: the trace headers ElixirScope adds to a response.
    assert "answered with ['traceparent', 'x-correlation-id']" in recorded_lines
    assert "answered with []" in plain_lines
    same = [line for line in recorded_lines if not line.startswith("answered with")]
    assert same == [line for line in plain_lines if not line.startswith("answered with")]
    assert "hang timed out" in same and "flaky ok" in same and "ws HELLO" in same


def test_a_request_shows_its_route_status_sizes_and_redacted_query(recorded: Recorded) -> None:
    (end,) = [e for e in recorded.of("reqend", route="/items/{n:int}") if e["path"] == "/items/7"]
    start = recorded.start_of(end)
    assert (start["protocol"], start["method"], start["path"]) == ("http", "GET", "/items/7")
    assert start["query"] == "q=1&token=<redacted>"
    assert start["client"].startswith("127.0.0.1:")
    assert end["status"] == 200 and end["response_bytes"] == len('{"item":7,"price":21}')
    assert end["duration_ns"] > 0 and end["exc_type"] is None
    (call,) = [e for e in recorded.of("http") if "/items/7" in e["url"]]
    assert call["url"].endswith("/items/7?q=1&token=<redacted>")
    assert "s3cret" not in json.dumps(recorded.all)


def test_the_handlers_calls_nest_under_the_request(recorded: Recorded) -> None:
    (end,) = [e for e in recorded.of("reqend") if e["path"] == "/items/7"]
    trees = json.loads(calltree(recorded.data_dir, end["correlation_id"], as_json=True))

    def every(nodes: list[dict]) -> list[dict]:  # the request sits under the client's call
        return [x for n in nodes for x in (n, *every(n["children"]))]

    requests = [n for n in every(trees["calls"]) if n["function"] == "elixirscope.web.request"]
    (request,) = [n for n in requests if any(e["id"] == end["id"] for e in n["events"])]
    (fetch,) = [n for n in every(trees["calls"]) if request in n["children"]]
    assert fetch["function"] == "__main__.fetch_item"  # its http attempt sent the traceparent
    assert [e["type"] for e in request["events"]] == ["req", "reqend"]
    (handler,) = request["children"]
    assert handler["function"] == "__main__.item"
    assert [c["function"] for c in handler["children"]] == ["__main__.price"]
    text = calltree(recorded.data_dir, end["correlation_id"])
    assert "request GET /items/{n:int} -> 200" in text
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if "request GET /items/{n:int} -> 200" in line)
    pad = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    assert lines[at + 2].startswith(pad + "  item(") and lines[at + 3].startswith(pad + "    price(")


def test_the_client_and_server_share_one_chain_through_traceparent(recorded: Recorded) -> None:
    (call,) = [e for e in recorded.of("http") if "/items/7" in e["url"]]
    (end,) = [e for e in recorded.of("reqend") if e["path"] == "/items/7"]
    start = recorded.start_of(end)
    # the server thread has no context of the client's: only the header joins them
    assert start["thread"] != call["thread"]
    assert start["correlation_id"] == call["correlation_id"] == call["trace_id"]
    assert start["trace_id"] == call["trace_id"] and start["parent_span"] == call["span_id"]
    assert start["span_id"] not in (None, call["span_id"])
    # the client's chain is its program's own: main() and fetch_item() run in it
    mains = [e for e in recorded.all if e["type"] == "call" and e["function"] == "__main__.main"]
    assert mains[0]["correlation_id"] == call["correlation_id"]
    flask_end = recorded.of("reqend", route="/stock/<name>")[0]
    assert flask_end["correlation_id"] == call["correlation_id"]  # across WSGI too


def test_a_500_records_its_exception_and_traceback(recorded: Recorded) -> None:
    (end,) = recorded.of("reqend", path="/boom")
    assert end["status"] == 500 and end["exc_type"] == "ValueError"
    assert end["message"] == "no item 13"
    assert (
        "in explode" in end["traceback_text"] and "ValueError: no item 13" in end["traceback_text"]
    )
    (flask_end,) = recorded.of("reqend", path="/broken")  # Flask answered it itself
    assert flask_end["status"] == 500 and flask_end["exc_type"] == "ValueError"
    (wsgi_end,) = recorded.of("reqend", path="/crash")  # escaped to wsgiref
    assert wsgi_end["status"] == 500 and "in explode" in wsgi_end["traceback_text"]


def test_retries_are_separate_attempts(recorded: Recorded) -> None:
    attempts = [e for e in recorded.of("http") if e["url"].endswith("/flaky")]
    assert [(a["library"], a["attempt"], a["status"]) for a in attempts] == [
        ("urllib3", 1, 503),
        ("urllib3", 2, 200),
    ]
    served = recorded.of("reqend", path="/flaky")
    assert [e["status"] for e in served] == [503, 200]
    assert [recorded.start_of(e)["parent_span"] for e in served] == [a["span_id"] for a in attempts]


def test_httpx_connect_retries_are_separate_attempts(recorded: Recorded) -> None:
    """``HTTPTransport(retries=N)`` retries connecting inside httpcore: each try is an
    attempt, the last with the error the program saw."""
    for suffix, tries in (("/connect-retried", 3), ("/connect-retried-async", 2)):
        attempts = [e for e in recorded.of("http") if e["url"].endswith(suffix)]
        assert [(a["library"], a["attempt"], a["status"]) for a in attempts] == [
            ("httpx", n, 0) for n in range(1, tries + 1)
        ]
        assert all(a["error"].startswith("Connect") for a in attempts), attempts
        assert len({a["span_id"] for a in attempts}) == tries
        assert len({a["trace_id"] for a in attempts}) == 1
    assert "connect retried\nasync connect retried" in recorded.stdout


def test_a_loop_of_answered_calls_is_no_retry(recorded: Recorded) -> None:
    """Three GETs of one URL from one call, each answered: three requests, each attempt 1
    (they were numbered 1, 2, 3: every loop of fetches looked like a retry storm)."""
    attempts = [e for e in recorded.of("http") if e["url"].endswith("/again/and/again")]
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 200)] * 3
    assert "fetched [200, 200, 200]" in recorded.stdout
    # a failed call is retried only by the next call of the same caller to the same URL
    downs = [e for e in recorded.of("http") if e["url"].endswith("/down")]
    assert [(a["attempt"], a["status"]) for a in downs] == [(1, 429), (1, 429), (2, 429)]
    assert "around [429, 200, 429, 429]" in recorded.stdout


def test_a_retry_loop_in_the_program_numbers_its_attempts(recorded: Recorded) -> None:
    attempts = [e for e in recorded.of("http") if e["url"].endswith("/flaky-again")]
    assert [(a["library"], a["attempt"], a["status"]) for a in attempts] == [
        ("httpx", 1, 503),
        ("httpx", 2, 200),
    ]
    loops = [
        e
        for e in recorded.all
        if e["type"] == "call" and e["function"].endswith("fetch_with_retries")
    ]
    assert {a["parent_id"] for a in attempts} == {loops[0]["id"]}


def test_a_retry_loop_around_requests_numbers_its_attempts(recorded: Recorded) -> None:
    """requests (urllib3) with no retries of its own, in the program's retry loop: its
    second call is attempt 2, as httpx's is."""
    attempts = [e for e in recorded.of("http") if e["url"].endswith("/flaky-requests")]
    assert [(a["library"], a["attempt"], a["status"]) for a in attempts] == [
        ("urllib3", 1, 503),
        ("urllib3", 2, 200),
    ]


def test_a_refused_connection_is_an_attempt_with_its_error(recorded: Recorded) -> None:
    attempts = [e for e in recorded.of("http") if e["url"].endswith("/nobody")]
    assert [(a["attempt"], a["status"], a["timeout"]) for a in attempts] == [
        (1, 0, False),
        (2, 0, False),
    ]
    assert all(
        "Connection refused" in a["error"] or "NewConnectionError" in a["error"] for a in attempts
    )
    assert "refused" in recorded.stdout.splitlines()


def test_a_hanging_server_is_recorded_as_a_timeout(recorded: Recorded) -> None:
    (call,) = [e for e in recorded.of("http") if e["url"].endswith("/hang")]
    assert call["timeout"] is True and call["status"] == 0
    assert call["error"].startswith("ReadTimeout")
    (end,) = recorded.of("reqend", path="/hang")  # the server answered later, to no one
    assert end["status"] == 200


def test_a_malformed_traceparent_is_ignored_and_recorded(recorded: Recorded) -> None:
    (start,) = [e for e in recorded.of("req") if e["traceparent_error"]]
    assert start["path"] == "/items/1" and "00-zz-not-valid" in start["traceparent_error"]
    (call,) = [e for e in recorded.of("http") if e["url"].endswith("/items/1")]
    assert start["correlation_id"] != call["correlation_id"]  # a chain of its own
    assert start["parent_span"] is None
    assert "malformed traceparent 200 {'item': 1, 'price': 3}" in recorded.stdout


def test_non_utf8_paths_are_recorded_escaped(recorded: Recorded) -> None:
    asgi = [
        e
        for e in recorded.of("reqend")
        if e["path"].startswith("/caf") and e["path"].endswith("/x")
    ]
    assert asgi and asgi[0]["status"] == 200 and asgi[0]["route"] == "/{rest:path}"
    (wsgi,) = recorded.of("reqend", path="/caf\\xe9")
    assert wsgi["status"] == 200


def test_a_huge_body_is_measured_not_kept(recorded: Recorded) -> None:
    (end,) = recorded.of("reqend", path="/upload")
    assert end["request_bytes"] == 3_000_000 and end["status"] == 200
    assert max(len(json.dumps(e)) for e in recorded.all) < 20_000


def test_a_websocket_records_accept_each_message_and_close(recorded: Recorded) -> None:
    (end,) = recorded.of("reqend", path="/ws")
    start = recorded.start_of(end)
    assert start["protocol"] == "websocket" and end["status"] == 101
    assert (end["request_bytes"], end["response_bytes"]) == (5, 5)  # its messages' bytes
    steps = [
        (e["kind"], e["size"], e["preview"])
        for e in recorded.of("ws")
        if e["request_id"] == start["id"]
    ]
    assert steps == [
        ("accept", -1, None),
        ("in", 5, "'hello'"),
        ("out", 5, "'HELLO'"),
        ("close", -1, None),
    ]
    calls = [
        e
        for e in recorded.all
        if e["type"] == "call" and e["correlation_id"] == start["correlation_id"]
    ]
    assert "__main__.shout" in {c["function"] for c in calls}


def test_async_httpx_is_recorded(recorded: Recorded) -> None:
    (call,) = [e for e in recorded.of("http") if e["url"].endswith("/items/2")]
    assert call["library"] == "httpx" and call["status"] == 200
    (end,) = [e for e in recorded.of("reqend") if e["path"] == "/items/2"]
    assert recorded.start_of(end)["parent_span"] == call["span_id"]


def test_each_integration_can_be_switched_off(tmp_path: Path) -> None:
    (tmp_path / "web_app.py").write_text(WEB_APP)
    off = {f"ELIXIRSCOPE_INTEGRATIONS__{name}": "false" for name in ("STARLETTE", "FLASK", "HTTPX")}
    done = elixirscope(
        "run", "--data-dir", str(tmp_path / "data"), "web_app.py", cwd=tmp_path, env=off
    )
    assert done.returncode == 0, done.stderr
    assert "answered with []" in done.stdout
    recorded = events(tmp_path / "data", "req", "reqend", "http")
    # left on: urllib3 (requests' calls) and the plain WSGI app wrapped explicitly
    assert {e["library"] for e in recorded if e["type"] == "http"} == {"urllib3"}
    assert {e["path"] for e in recorded if e["type"] == "reqend"} == {"/caf\\xe9", "/crash"}


def test_each_request_is_a_call_of_its_own(recorded: Recorded) -> None:
    """Requests on one keep-alive connection (uvicorn starts the next from inside the
    previous one's send) never nest under each other."""
    requests = [
        e
        for e in recorded.all
        if e["type"] == "call" and e["function"] == "elixirscope.web.request"
    ]
    assert len(requests) == len(recorded.of("req"))
    assert {e["parent_id"] for e in requests} == {0}
    handlers = [e for e in recorded.all if e["type"] == "call" and e["function"] == "__main__.hang"]
    (hang,) = handlers
    assert [e["args"] for e in requests if e["id"] == hang["parent_id"]] == [
        {"method": "'GET'", "path": "'/hang'"}
    ]


def test_a_routes_requests_are_found_by_method_and_route(recorded: Recorded) -> None:
    found = events(recorded.data_dir, function="GET /items/*")
    assert sorted(e["path"] for e in found) == ["/items/1", "/items/2", "/items/7"]
    assert {e["type"] for e in found} == {"reqend"}


def query(recorded: Recorded, text: str) -> list[dict]:
    done = elixirscope("query", "--data-dir", str(recorded.data_dir), text, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["rows"]


def test_esql_reads_requests_and_http_attempts(recorded: Recorded) -> None:
    failed = query(recorded, "method, path, code, type from requests where code >= 500")
    assert [(r["path"], r["code"], r["type"]) for r in failed] == [
        ("/boom", 500, "ValueError"),
        ("/flaky-again", 503, None),
        ("/flaky", 503, None),
        ("/flaky-requests", 503, None),
        ("/broken", 500, "ValueError"),
        ("/crash", 500, "ValueError"),
    ]
    retried = query(recorded, "url, attempt, code from http where attempt > 1")
    assert [(r["url"].rpartition("/")[2], r["attempt"], r["code"]) for r in retried] == [
        ("flaky-again", 2, 200),
        ("down", 2, 429),
        ("flaky", 2, 200),
        ("flaky-requests", 2, 200),
        ("nobody", 2, None),  # no response: null in JSON (the table shows its outcome)
        ("connect-retried", 2, None),
        ("connect-retried", 3, None),
        ("connect-retried-async", 2, None),
    ]
    by_route = query(recorded, "route, count(*) from requests of '/items/*' group by route")
    assert by_route == [{"route": "/items/{n:int}", "count(*)": 3}]


def test_a_trace_from_a_request_starts_at_its_start(recorded: Recorded) -> None:
    """A request's row is its end; a path from it starts where it began, forward in time."""
    rows = query(
        recorded, "trace from (requests where path = '/boom') to (exceptions of 'explode' limit 1)"
    )
    assert rows[0]["kind"] == "req" and rows[-1]["kind"] == "exception"
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)


def test_calltree_of_an_event_is_the_request_it_ran_in(recorded: Recorded) -> None:
    """The in-process client's requests share its chain: `calltree #ID` of an event inside
    one request is that request's tree alone."""
    end = next(e for e in recorded.of("reqend") if e["path"] == "/boom")
    done = elixirscope("calltree", "--data-dir", str(recorded.data_dir), f"#{end['id']}",
                       cwd=recorded.data_dir.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].startswith(f"event #{end['id']}: the web request it ran in, in chain ")
    assert lines[2].startswith("request GET /boom -> 500")
    assert "/items/7" not in done.stdout and "GET /boom" in done.stdout
    whole = elixirscope("calltree", "--data-dir", str(recorded.data_dir), end["correlation_id"],
                        cwd=recorded.data_dir.parent)  # fmt: skip
    assert "/items/7" in whole.stdout  # the chain itself holds every request
    missing = elixirscope("calltree", "--data-dir", str(recorded.data_dir), "#987654",
                          cwd=recorded.data_dir.parent)  # fmt: skip
    assert missing.returncode == 1 and "no event #987654 in run " in missing.stderr


def test_a_finding_in_a_chain_requests_share_looks_at_its_request(recorded: Recorded) -> None:
    """The in-process client's requests share its chain: a finding's calltree command names
    its first event, whose request's part of the chain `calltree '#ID'` prints."""
    from elixirscope.ai.insights import insights_report

    report = insights_report(recorded.data_dir)
    shared = [f for f in report["findings"] if f["details"].get("shared_chain")]
    assert shared, [f["title"] for f in report["findings"]]
    for f in shared:
        assert f["commands"][0].endswith(f"calltree --run {report['run'][:8]} '#{f['moment']['id']}'")


def test_a_request_s_start_is_when_it_began(recorded: Recorded) -> None:
    """A request's row is its end (its `time`); `start` is when it began, `end` when it
    ended, as for calls."""
    (row,) = query(recorded, "time, start, end, duration from requests where path = '/boom'")
    assert row["start"] + row["duration"] == row["end"] == row["time"]
    start = next(e for e in recorded.of("req") if e["path"] == "/boom")
    # its duration is measured from its start (the response's end is recorded after it)
    assert start["ts"] <= row["start"] < row["end"]


def test_each_attempt_says_the_programs_line_that_made_it(recorded: Recorded) -> None:
    """The first frame outside ElixirScope and the HTTP libraries (httpx, requests,
    urllib3, http.client): for sync and async httpx, requests, and urllib3's own retries
    (each retry the line of the call the program made)."""
    source = (recorded.data_dir.parent / "web_app.py").read_text().splitlines()

    def made_at(suffix: str) -> set[tuple[str, str]]:
        calls = [e for e in recorded.of("http") if e["url"].endswith(suffix)]
        assert calls, suffix
        assert all(e["file"].endswith("web_app.py") for e in calls)
        return {(source[e["line"] - 1].strip(), e["caller"]) for e in calls}

    assert made_at("/items/2") == {
        ('response = await client.get(base + "/items/2")', "__main__.fetch_async")}
    assert made_at("/flaky") == {('print("flaky", session.get(base + "/flaky").text)',
                                  "__main__.call_asgi")}  # both of urllib3's attempts
    assert made_at("/again/and/again") == {
        ("return [client.get(url).status_code for _ in range(n)]",
         "__main__.fetch_each.<locals>.<listcomp>")}  # a comprehension is code of its own
