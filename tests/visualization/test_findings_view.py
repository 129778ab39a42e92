"""The cinema's Findings view and moment links, over a real recorded run: a served Starlette
app whose one request runs an N+1 of queries, another a server error, a third an outgoing
HTTP call that times out and a fourth a 3 MB answer. ``/api/runs/{run}/findings`` gives the
findings ``elixirscope insights`` gives (the same ids, in the same order), each with where its
moment is drawn; ``/api/runs/{run}/moment`` maps an event a link names to the call that holds
it."""

from __future__ import annotations

import textwrap
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from cinema_recordings import elixirscope
from served_program import SERVED
from starlette.testclient import TestClient

from elixirscope.ai import insights
from elixirscope.ai.insights import insights_report
from elixirscope.store.runs import read_runs
from elixirscope.visualization.server import create_app

TOKEN = "f" * 32

SHOP = textwrap.dedent(
    """
    import asyncio, socket, sqlite3, threading, time

    import httpx, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    DB = sqlite3.connect(":memory:", check_same_thread=False)
    DB.create_function("pause", 1, lambda x: (time.sleep(0.012), x)[1])
    DB.execute("create table items (id integer primary key, name text)")
    DB.executemany("insert into items (name) values (?)", [(f"item{i}",) for i in range(8)])


    def item(i):
        return DB.execute("select pause(name) from items where id = ?", (i,)).fetchone()


    def basket():
        ids = [row[0] for row in DB.execute("select id from items order by id")]
        return [item(i) for i in ids]


    def charge(card):
        raise ValueError(f"card {card} declined")


    async def orders(request):
        return JSONResponse({"items": basket()})


    async def pay(request):
        return JSONResponse({"paid": charge(request.path_params["card"])})


    async def slowpoke(request):
        await asyncio.sleep(0.4)
        return JSONResponse({"late": True})


    async def big(request):
        return Response(b"x" * (3 * 1024 * 1024))


    app = Starlette(routes=[Route("/orders", orders), Route("/pay/{card}", pay),
                            Route("/slowpoke", slowpoke), Route("/big", big)])


    def client(url):
        with httpx.Client() as c:
            print(len(c.get(url + "/orders").json()["items"]))
            c.get(url + "/orders")  # the N+1 again, in another request: a repeat
            print(c.get(url + "/pay/4110").status_code)
            try:
                c.get(url + "/slowpoke", timeout=0.1)
            except httpx.TimeoutException:
                print("timeout")
            print(len(c.get(url + "/big").content))
        time.sleep(0.4)  # the slow request ends before the server stops
    """
) + SERVED

QUIET = "def add(a, b):\n    return a + b\n\nprint(add(2, 3))\n"


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> tuple[Path, str]:
    where = tmp_path_factory.mktemp("findings")
    (where / "shop.py").write_text(SHOP)
    done = elixirscope("run", "--data-dir", "data", "shop.py", cwd=where)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["8", "500", "timeout", str(3 * 1024 * 1024)], done.stdout
    (run,) = read_runs(where / "data")
    return where / "data", run


def _client(data: Path) -> TestClient:
    return TestClient(create_app(data, TOKEN), headers={"x-elixirscope-token": TOKEN})


def _by_kind(findings: list[dict]) -> dict[str, dict]:
    return {f["kind"]: f for f in findings}


def test_the_findings_are_those_insights_gives_in_its_order(shop) -> None:
    data, run = shop
    with _client(data) as client:
        got = client.get(f"/api/runs/{run[:8]}/findings")
    assert got.status_code == 200, got.text
    answer = got.json()
    expected = insights_report(data, run)
    assert [f["id"] for f in answer["findings"]] == [f["id"] for f in expected["findings"]]
    assert answer["run"] == run and answer["errors"] == {} and answer["counts"] == expected["counts"]
    assert answer["detectors"] == list(insights.DETECTORS)
    kinds = _by_kind(answer["findings"])
    assert {"n_plus_one", "server_error"} <= set(kinds)
    # most severe first: the server error (high) before the N+1 (medium)
    order = [f["kind"] for f in answer["findings"]]
    assert order.index("server_error") < order.index("n_plus_one")
    n1 = kinds["n_plus_one"]
    assert n1["title"].startswith("N+1 queries: 8 x") and n1["fix"] and n1["explanation"]
    assert any(w.endswith("shop.py:16 (__main__.item)  issued here") for w in n1["where"]), n1["where"]
    assert n1["occurrences"] == 1 + len(n1["repeats"])


def test_each_finding_opens_the_call_that_holds_its_moment(shop) -> None:
    """The server error's moment (the exception) is in `charge`; the N+1's (its first query)
    in `item`; each names its request, whose waterfall the page links to."""
    data, run = shop
    with _client(data) as client:
        answer = client.get(f"/api/runs/{run}/findings").json()
        requests = client.get(f"/api/runs/{run}/requests").json()["requests"]
        kinds = _by_kind(answer["findings"])
        opened = {}
        for kind in ("server_error", "n_plus_one"):
            o = kinds[kind]["open"]
            moment = kinds[kind]["moment"]
            assert o["ev"] == f"{moment['producer']}:{moment['id']}" and o["ts"] == str(moment["ts"])
            located = client.get(f"/api/runs/{run}/moment", params={"ev": o["ev"], "t": o["ts"]})
            assert located.status_code == 200, located.text
            opened[kind] = located.json()
            assert opened[kind]["row"] == o["row"] and opened[kind]["lane"] == o["lane"]
            assert opened[kind]["slice"]["lane"] == o["lane"]
    assert opened["server_error"]["slice"]["function"] == "__main__.charge"
    assert opened["server_error"]["slice"]["status"] == "raised"
    assert opened["n_plus_one"]["slice"]["function"] == "__main__.item"
    assert opened["n_plus_one"]["type"] == "query"
    paths = {r["id"]: r["path"] for r in requests}
    assert paths[kinds["server_error"]["open"]["request"]] == "/pay/4110"
    assert paths[kinds["n_plus_one"]["open"]["request"]] == "/orders"


def test_each_finding_names_the_requests_that_hold_it_and_its_repeats(shop) -> None:
    """The Requests view marks a request with the findings whose moment (or a repeat's) it
    holds: the N+1, seen in both /orders requests, names both; the server error its one."""
    data, run = shop
    with _client(data) as client:
        answer = client.get(f"/api/runs/{run}/findings").json()
        requests = client.get(f"/api/runs/{run}/requests").json()["requests"]
    paths = {r["id"]: r["path"] for r in requests}
    kinds = _by_kind(answer["findings"])
    n1, error = kinds["n_plus_one"], kinds["server_error"]
    assert len(n1["repeats"]) == 1, n1["repeats"]
    assert [paths[r] for r in n1["requests"]] == ["/orders", "/orders"]
    assert n1["requests"][0] == n1["open"]["request"] and len(set(n1["requests"])) == 2
    assert [paths[r] for r in error["requests"]] == ["/pay/4110"]
    for f in answer["findings"]:  # each names only requests of the run, once
        assert all(r in paths for r in f["requests"]) and len(set(f["requests"])) == len(f["requests"])


def test_a_finding_whose_evidence_spans_two_requests_names_both(shop) -> None:
    """A race's evidence is two requests' writes: each request holding an event of the
    evidence is named (after the moment's own), once."""
    from elixirscope.visualization.findings_view import _requests
    from elixirscope.visualization.views import Models

    data, run = shop
    report = insights_report(data, run)
    kinds = _by_kind(report["findings"])
    n1, error = kinds["n_plus_one"], kinds["server_error"]
    with _client(data) as client:
        opened = {f["kind"]: f for f in client.get(f"/api/runs/{run}/findings").json()["findings"]}
        requests = client.get(f"/api/runs/{run}/requests").json()["requests"]
    paths = {r["id"]: r["path"] for r in requests}
    both = {**error, "evidence": [*error["evidence"], *n1["evidence"][:2]], "repeats": []}
    model = Models(data).model(run)
    held = _requests(model, data, both, opened["server_error"]["open"])
    assert [paths[r] for r in held] == ["/pay/4110", "/orders"]


def test_a_link_names_its_event_and_keeps_its_time(shop) -> None:
    data, run = shop
    (f, *_) = insights_report(data, run)["findings"]
    link = parse_qs(f["cinema"].removeprefix("#"))
    moment = f["moment"]
    window = {k: link.pop(k) for k in ("w0", "w1") if k in link}
    assert link == {
        "view": ["timeline"],
        "run": [run],
        "t": [str(moment["ts"])],
        "ev": [f"{moment['producer']}:{moment['id']}"],
    }
    times = [e["ts"] for e in f["evidence"]]
    if max(times) > min(times):  # a window around all of its evidence
        assert int(window["w0"][0]) < min(times) and max(times) < int(window["w1"][0])


def test_a_call_event_opens_that_call(shop) -> None:
    data, run = shop
    with _client(data) as client:
        window = client.get(f"/api/runs/{run}/timeline", params={"px": 20_000}).json()
        overview = client.get(f"/api/runs/{run}/overview").json()
        basket = next(s for s in window["slices"] if s["function"] == "__main__.basket")
        producer = overview["lanes"][basket["lane"]]["producer"]
        got = client.get(
            f"/api/runs/{run}/moment",
            params={"ev": f"{producer}:{basket['call_id']}", "t": basket["start"]},
        ).json()
    assert got["row"] == basket["row"] and got["type"] == "call" and got["how"] == "the call itself"


def test_bad_moments_and_runs_answer_json_errors_naming_them(shop) -> None:
    data, run = shop
    with _client(data) as client:
        missing = client.get("/api/runs/nosuchrun/findings")
        assert missing.status_code == 404
        assert "nosuchrun" in missing.json()["error"]
        malformed = client.get(f"/api/runs/{run}/moment", params={"ev": "no-id", "t": "5"})
        assert malformed.status_code == 400
        assert malformed.json()["error"] == (
            "`ev` must be PRODUCER:ID (an event's producer and id), got 'no-id'"
        )
        absent = client.get(f"/api/runs/{run}/moment", params={"ev": "ghost:7", "t": "5"})
        assert absent.status_code == 404
        assert absent.json()["error"].startswith("no event ghost:7 at 5 in run ")
        untimed = client.get(f"/api/runs/{run}/moment", params={"ev": "ghost:7"})
        assert untimed.status_code == 400 and untimed.json()["error"] == "`t` is missing"


def test_a_failing_detector_is_named_and_the_others_still_found(shop, monkeypatch) -> None:
    data, run = shop
    every = insights._detectors

    def broken(recording, settings):
        raise RuntimeError("the detector tripped")

    monkeypatch.setattr(insights, "_detectors", lambda: {**every(), "broken": broken})
    with _client(data) as client:
        answer = client.get(f"/api/runs/{run}/findings").json()
    assert answer["errors"] == {"broken": "RuntimeError: the detector tripped"}
    assert "n_plus_one" in _by_kind(answer["findings"])


def test_a_run_without_findings_says_what_was_looked_for(tmp_path) -> None:
    (tmp_path / "quiet.py").write_text(QUIET)
    done = elixirscope("run", "--data-dir", "data", "quiet.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (run,) = read_runs(tmp_path / "data")
    with _client(tmp_path / "data") as client:
        answer = client.get(f"/api/runs/{run}/findings").json()
    assert answer["findings"] == [] and answer["errors"] == {}
    assert answer["looked_for"].startswith("N+1 queries or HTTP calls, row-by-row writes, races, latency")


def test_a_timed_out_attempt_reads_timeout_in_the_query_table(shop) -> None:
    """As the command line's table says it (`code` timeout); the row's value stays null."""
    data, run = shop
    with _client(data) as client:
        got = client.get("/api/esql", params={"q": "http where timeout = true", "run": run}).json()
    code = got["columns"].index("code")
    assert got["count"] == 1 and got["rows"][0][code] is None
    assert got["shown"] == [[0, code, "timeout"]]


def test_the_waterfall_has_sizes_and_a_timed_out_attempt(shop) -> None:
    """A request's sizes as recorded, an HTTP attempt's size or that it timed out."""
    from elixirscope.visualization.views import Models

    data, run = shop
    with _client(data) as client:
        listed = client.get(f"/api/runs/{run}/requests").json()["requests"]
        big = next(r for r in listed if r["path"] == "/big")
        detail = client.get(f"/api/runs/{run}/requests", params={"request": big["id"]}).json()
    assert detail["request"]["response_bytes"] == 3 * 1024 * 1024
    models = Models(data)
    try:
        attempts = [q for q in models.model(run).queries if q["kind"] == "http"]
    finally:
        models.close()
    by_url = {q["statement"].rsplit("/", 1)[1]: q for q in attempts}
    assert by_url["slowpoke"]["timeout"] is True and by_url["slowpoke"]["rows"] == 0
    assert by_url["big"]["timeout"] is False and by_url["big"]["bytes"] == 3 * 1024 * 1024
