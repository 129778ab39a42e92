"""The cinema's JSON API over real recordings, through Starlette's TestClient: what each
view answers checked against the recorded events read back plainly, the token guarding
every route, and every bad request a JSON error naming what is wrong."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from elixirscope.contracts.trace import MessageReceive, MessageSend, StateChange
from elixirscope.store.eventstore import EventStore
from elixirscope.visualization.server import create_app

TOKEN = "t" * 32


@pytest.fixture(scope="module")
def client(cinema_data):
    with TestClient(create_app(cinema_data, TOKEN), headers={"x-elixirscope-token": TOKEN}) as c:
        yield c


@pytest.fixture(scope="module")
def runs(client):
    listed = client.get("/api/runs").json()["runs"]
    return {("web" if "web_app" in r["command_text"] else "shop"): r for r in listed}


def events_of(data, run_id):
    with EventStore.open(data, readonly=True) as store:
        return [se.event for se in store.query(run=run_id, limit=None)]


def test_the_runs_list_has_counts_drops_errors_and_durations(client, runs, cinema_data):
    assert set(runs) == {"shop", "web"}
    shop = runs["shop"]
    assert shop["events"] == len(events_of(cinema_data, shop["id"]))
    assert shop["dropped"] == 0 and shop["exit_status"] == 0
    assert int(shop["duration_ns"]) > 0
    assert isinstance(shop["first_ts"], str)  # nanosecond times go as strings: exact in a browser


def test_the_token_guards_pages_apis_and_assets(cinema_data):
    with TestClient(create_app(cinema_data, TOKEN)) as bare:
        for path in ("/", "/api/runs", "/static/app.js", "/api/esql?q=calls"):
            answer = bare.get(path)
            assert answer.status_code == 403, path
            assert "token" in answer.json()["error"]
        assert bare.get("/api/runs", headers={"x-elixirscope-token": "x" * 32}).status_code == 403
        page = bare.get(f"/?token={TOKEN}")
        assert page.status_code == 200 and "<canvas" not in page.text and "app.js" in page.text
        # the page's cookie carries the token to the modules it loads
        assert bare.get("/static/app.js").status_code == 200
        with pytest.raises(WebSocketDisconnect) as refused:
            with bare.websocket_connect("/api/runs/x/live?token=wrong"):
                pass
        assert refused.value.code == 4403


def test_bad_requests_are_json_errors_naming_what_is_wrong(client, runs):
    shop = runs["shop"]["id"]
    cases = {
        "/api/runs/nosuchrun/timeline": (404, "no run 'nosuchrun'"),
        "/api/runs/bad%20id!/overview": (400, "bad run id"),
        f"/api/runs/{shop}/timeline?t0=10&t1=5": (400, "`t1` (5) must be after `t0` (10)"),
        f"/api/runs/{shop}/timeline?t0=soon": (400, "`t0` must be a whole number"),
        f"/api/runs/{shop}/timeline?limit=1": (400, "`limit` must be 10 to"),
        f"/api/runs/{shop}/state?target=nobody": (400, "nobody"),
        f"/api/runs/{shop}/state?target=shop/stock&change=99": (400, "no change 99"),
        f"/api/runs/{shop}/calltree?chain=nochain": (404, "no chain 'nochain'"),
        f"/api/runs/{shop}/requests?request=r/1": (404, "no request 'r/1'"),
        "/api/esql?q=calls%20of": (400, "after `of`"),
        "/api/esql": (400, "`q` is missing"),
        "/api/nothing": (404, "no such API"),
    }
    for path, (status, words) in cases.items():
        answer = client.get(path)
        assert answer.status_code == status, (path, answer.text)
        assert words in answer.json()["error"], (path, answer.json())
    with client.websocket_connect("/api/runs/nosuchrun/live") as ws:
        assert "no run 'nosuchrun'" in ws.receive_json()["error"]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4404
    assert client.get("/api/runs").status_code == 200  # still serving


def test_the_timeline_holds_every_call_and_summarises_a_crowded_window(client, runs, cinema_data):
    from elixirscope.contracts.trace import FunctionEntry

    shop = runs["shop"]
    calls = [e for e in events_of(cinema_data, shop["id"]) if type(e) is FunctionEntry]
    whole = client.get(f"/api/runs/{shop['id']}/timeline").json()
    assert whole["detail"] == "full"
    assert sorted(s["call_id"] for s in whole["slices"]) == sorted(c.id for c in calls)
    assert {m["kind"] for m in whole["marks"]} >= {"crash", "exit", "restart", "state"}
    few = client.get(f"/api/runs/{shop['id']}/timeline?limit=10&px=4").json()
    assert len(few["slices"]) + len(few["summaries"]) <= 10
    assert few["calls_in_window"] == len(calls)


def test_messages_join_sends_to_receives_and_the_tree_counts_restarts(client, runs, cinema_data):
    shop = runs["shop"]
    events = events_of(cinema_data, shop["id"])
    sends = [e for e in events if type(e) is MessageSend]
    received = {e.message_id: e for e in events if type(e) is MessageReceive}
    got = client.get(f"/api/runs/{shop['id']}/messages").json()
    assert len(got["messages"]) == len(sends)
    for m in got["messages"]:
        r = received.get(m["message_id"])
        assert (m["receive_ts"] is None) == (r is None)
        if r is not None:
            assert m["to"] == r.actor and int(m["receive_ts"]) == r.ts
    [root] = got["tree"]
    assert root["path"] == "shop"
    restarts = {c["path"]: c["restarts"] for c in root["children"]}
    assert restarts == {"shop/stock": 1, "shop/desk": 0}
    assert [m["kind"] for m in got["marks"] if m["actor"] == "shop/stock"].count("crash") == 1


def test_state_at_a_moment_with_its_diff_its_cause_and_why(client, runs, cinema_data):
    shop = runs["shop"]["id"]
    base = f"/api/runs/{shop}/state?target=shop/stock"
    before = client.get(base + "&before_crash=1").json()
    assert before["state"]["label"] == "dict (4)"
    assert [(c["key"], c["text"]) for c in before["state"]["children"]] == [
        ("'tea'", "8"), ("'cake'", "4"), ("'scone'", "8"), ("'jam'", "2")
    ]
    changes = [e for e in events_of(cinema_data, shop) if type(e) is StateChange and e.actor == "shop/stock"]
    crash = next(i for i, e in enumerate(changes) if e.error)
    assert before["change"] == crash  # the change before the crash (1-based: crash + 1 - 1)
    at_ts = client.get(base + f"&at={changes[1].ts}").json()
    assert at_ts["change"] == 2
    assert {d["path"]: (d["old"], d["new"]) for d in at_ts["diff"]} == {"tea": ("10", "8"), "cake": ("5", "4")}
    assert "sent from elixirscope.examples.shop.take_order" in at_ts["cause"]["text"]
    why = client.get(base + "&change=2&field=tea").json()["why"]
    assert why["steps"][0]["shown"] == "8" and why["steps"][0]["change"] == 2
    first = client.get(base + "&change=1").json()
    assert first["diff"] is None and first["state"]["children"][0]["text"] == "10"


def test_the_flame_graph_adds_up(client, runs):
    shop = runs["shop"]["id"]
    got = client.get(f"/api/runs/{shop}/calltree").json()
    nodes = {n["id"]: n for n in got["nodes"]}
    for n in got["nodes"][1:]:
        kids = [k for k in got["nodes"] if k["parent"] == n["id"]]
        assert n["self"] == max(0, n["total"] - sum(k["total"] for k in kids))
    assert nodes[0]["total"] == sum(n["total"] for n in got["nodes"] if n["parent"] == 0)
    take = [n for n in got["nodes"] if n["function"].endswith("take_order")]
    assert sum(n["calls"] for n in take) == 4


def test_a_request_waterfall_flags_its_n_plus_one(client, runs):
    from cinema_recordings import WEB_ITEMS

    web = runs["web"]["id"]
    listed = client.get(f"/api/runs/{web}/requests").json()["requests"]
    assert [(r["path"], r["status"], r["queries"]) for r in listed] == [
        ("/orders", 200, WEB_ITEMS + 1),
        ("/health", 200, 0),
        ("/weights", 200, 0),
    ]
    got = client.get(f"/api/runs/{web}/requests", params={"request": listed[0]["id"]}).json()
    assert got["n_plus_one"] == [
        {"shape": "SELECT name, price FROM items WHERE id = ?", "count": WEB_ITEMS}
    ]
    assert sum(q["n_plus_one"] for q in got["queries"]) == WEB_ITEMS
    assert any(c["function"].endswith("basket") for c in got["calls"])


def test_a_request_took_what_its_end_recorded(client, runs, cinema_data):
    """The requests view says a request's time as calltree, summary and ESQL do: the
    duration its end recorded (its end event is written after the response)."""
    from elixirscope.contracts.trace import RequestEnd

    web = runs["web"]["id"]
    listed = client.get(f"/api/runs/{web}/requests").json()["requests"]
    ends = {e.request_id: e.duration_ns for e in events_of(cinema_data, web) if type(e) is RequestEnd}
    assert [r["duration"] for r in listed] == [ends[int(r["id"].rsplit("/", 1)[1])] for r in listed]


def test_a_request_waterfall_shows_the_work_its_handler_handed_to_a_pool(client, runs):
    """The pool's tasks run in chains of their own on the pool's threads: each under the
    call that submitted it, one level deeper, the one that raised marked so."""
    web = runs["web"]["id"]
    listed = client.get(f"/api/runs/{web}/requests").json()["requests"]
    pooled = next(r for r in listed if r["path"] == "/weights")
    got = client.get(f"/api/runs/{web}/requests", params={"request": pooled["id"]}).json()
    calls = [(c["function"].rpartition(".")[2], c["depth"], c["status"]) for c in got["calls"]]
    at = next(i for i, c in enumerate(calls) if c[0] == "weigh_all")
    depth = calls[at][1]
    tasks = [c for c in calls if c[0] == "weigh"]
    assert sorted(tasks) == [("weigh", depth + 1, "raised")] + [("weigh", depth + 1, "returned")] * 3
    assert all(c[0] == "weigh" for c in calls[at + 1 :])


def test_esql_rows_link_to_their_moments(client, runs, cinema_data):
    shop = runs["shop"]["id"]
    got = client.get("/api/esql", params={"q": "state of 'shop/stock'", "run": shop}).json()
    changes = [e for e in events_of(cinema_data, shop) if type(e) is StateChange and e.actor == "shop/stock"]
    assert got["run"] == shop
    assert [int(t) for t in got["moments"]] == [e.ts for e in changes]


def test_a_request_s_bar_is_named_by_its_method_and_path(client, runs):
    """Every request runs in the same recorded function: its bar says which request it is."""
    web = runs["web"]["id"]
    got = client.get(f"/api/runs/{web}/timeline").json()
    drawn = {s["row"] for s in got["slices"]}
    assert sorted(got["requests"].values()) == [
        "GET /health -> 200",
        "GET /orders -> 200",
        "GET /weights -> 200",
    ]
    assert all(int(row) in drawn for row in got["requests"])


def test_a_request_s_own_call_carries_its_request(library_and_catalog):
    """A request's bar in the timeline is the request: its method, path, route, status,
    exception, time, sizes and client — not the function every request runs in."""
    data, library, _catalog = library_and_catalog
    with TestClient(create_app(data, TOKEN), headers={"x-elixirscope-token": TOKEN}) as client:
        got = client.get(f"/api/runs/{library}/timeline").json()
    asked = {s["request"]["path"]: (s, s["request"]) for s in got["slices"] if "request" in s}
    assert set(asked) == {"/books/1/catalog", "/books/5/catalog", "/books/99", "/books/2", "/loans/new"}
    assert all(s["function"] == "elixirscope.web.request" for s, _ in asked.values())
    late = asked["/books/5/catalog"][1]
    assert (late["method"], late["route"], late["status"], late["error"]) == (
        "GET", "/books/{book:int}/catalog", 504, None
    )
    assert late["duration"] > 1_000_000_000  # two attempts of 0.5 s
    assert late["client"].startswith("127.0.0.1:") and late["response_bytes"] > 0
    failed = asked["/loans/new"][1]
    assert failed["status"] == 500 and failed["method"] == "POST"
    assert failed["error"] == "ValueError: a loan must last at least one day, got 0"
    assert failed["request_bytes"] == len('{"days":0}')
    assert asked["/books/99"][1]["status"] == 404
    assert not any("request" in s for s in got["slices"] if s["function"] != "elixirscope.web.request")


BASKET = r'''
import asyncio, socket, threading, time

import httpx, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def price(request):
    return JSONResponse({"price": 3})


async def basket(request):
    base = str(request.base_url).rstrip("/")
    total = 0
    async with httpx.AsyncClient() as c:
        for item in range(6):
            total += (await c.get(f"{base}/price/{item}")).json()["price"]  # one at a time
    return JSONResponse({"total": total})


async def basket_at_once(request):
    base = str(request.base_url).rstrip("/")
    async with httpx.AsyncClient() as c:
        got = await asyncio.gather(*(c.get(f"{base}/price/{item}") for item in range(6)))
    return JSONResponse({"total": sum(r.json()["price"] for r in got)})


app = Starlette(routes=[Route("/price/{item:int}", price), Route("/basket", basket),
                        Route("/basket-at-once", basket_at_once)])


def client(url):
    print(httpx.get(url + "/basket").json(), httpx.get(url + "/basket-at-once").json())
'''


def test_a_request_waterfall_flags_its_n_plus_one_http_calls_and_says_where_each_was_made(
    tmp_path,
):
    from export_recordings import record_program
    from served_program import SERVED

    data, run = record_program(tmp_path, BASKET + SERVED)
    with TestClient(create_app(data, TOKEN), headers={"x-elixirscope-token": TOKEN}) as client:
        listed = client.get(f"/api/runs/{run}/requests").json()["requests"]
        (basket,) = [r for r in listed if r["path"] == "/basket"]
        (at_once,) = [r for r in listed if r["path"] == "/basket-at-once"]
        got = client.get(f"/api/runs/{run}/requests", params={"request": basket["id"]}).json()
        gathered = client.get(f"/api/runs/{run}/requests", params={"request": at_once["id"]}).json()
    # six calls at once (asyncio.gather) cost one round trip, not six: no N+1, as insights
    assert (basket["http"], at_once["http"]) == (6, 6)
    assert gathered["n_plus_one"] == [] and not any(q["n_plus_one"] for q in gathered["queries"])
    port = got["queries"][0]["statement"].split(":")[2].split("/")[0]  # the server's
    assert got["n_plus_one"] == [
        {"shape": f"GET http://127.0.0.1:{port}/price/{{id}}", "count": 6}]
    calls = [q for q in got["queries"] if q["kind"] == "http"]
    assert len(calls) == 6 and all(q["n_plus_one"] for q in calls)
    line = BASKET.splitlines().index(
        '            total += (await c.get(f"{base}/price/{item}")).json()["price"]  # one at a time'
    ) + 1
    assert {q["location"] for q in calls} == {f"{tmp_path / 'prog.py'}:{line}"}


CANCELLING = """
import asyncio


async def poll(n):
    while True:
        await asyncio.sleep(0.001 * n)


async def fail():
    raise ValueError("bad input")


async def main():
    pollers = [asyncio.create_task(poll(n)) for n in (1, 2)]
    await asyncio.sleep(0.01)
    for p in pollers:
        p.cancel()
    await asyncio.gather(*pollers, return_exceptions=True)
    await asyncio.gather(fail(), return_exceptions=True)


asyncio.run(main())
"""


def test_a_call_its_owner_cancelled_is_drawn_as_cancelled_not_as_an_error(tmp_path):
    """Summary and calltree count a cancelled coroutine apart from failures: the cinema's
    timeline, its marks and its flame graph's error counts do too."""
    from export_recordings import record_program

    data, run = record_program(tmp_path, CANCELLING)
    with TestClient(create_app(data, TOKEN), headers={"x-elixirscope-token": TOKEN}) as c:
        timeline = c.get(f"/api/runs/{run}/timeline").json()
        status = {(s["function"].rpartition(".")[2], s["status"]) for s in timeline["slices"]}
        assert {("poll", "cancelled"), ("fail", "raised"), ("main", "returned")} <= status
        marks = [(m["kind"], m["label"]) for m in timeline["marks"]]
        assert marks.count(("cancelled", "__main__.poll cancelled")) == 2, marks
        assert [k for k, label in marks if "fail" in label] == ["error"], marks
        nodes = c.get(f"/api/runs/{run}/calltree").json()["nodes"]
        errors = {n["function"].rpartition(".")[2]: n["errors"] for n in nodes[1:]}
        assert errors["poll"] == 0 and errors["fail"] == 1, errors


def test_two_requests_are_compared_as_diff_compares_them(library_and_catalog):
    """The 200 of a route against its 504, each its request's own part of the chain their
    client's requests share: where they parted (the catalog call's attempts); bad pairs
    are errors that say why."""
    data, library, _ = library_and_catalog
    with TestClient(create_app(data, TOKEN), headers={"x-elixirscope-token": TOKEN}) as c:
        listed = c.get(f"/api/runs/{library}/requests").json()["requests"]
        rid = {r["path"]: r["id"] for r in listed}
        assert len({r["chain"] for r in listed}) == 1  # its own client's: one chain
        got = c.get(f"/api/runs/{library}/diff",
                    params={"a": rid["/books/1/catalog"], "b": rid["/books/5/catalog"]}).json()
        assert got["text"].startswith("A: event #"), got["text"]
        # each side one request, paired; B's second attempt began a second request in the
        # catalog (its own run, the same chain), under the call that made it
        assert got["only_in_a"] == []
        (second,) = got["only_in_b"]
        assert second["path"][-1] == "fetch_catalog", second
        assert second["call"]["args"] == {"method": "'GET'", "path": "'/info/5'"}, second
        said = [(d["change"], (d["a"] or d["b"])["status"]) for d in got["queries"]]
        assert said == [("different", 200), ("only in B", 0)], got["queries"]
        assert [d["label"] for d in got["exceptions"]] == ["fetch_catalog"], got["exceptions"]
        same = c.get(f"/api/runs/{library}/diff", params={"a": rid["/books/2"], "b": rid["/books/2"]})
        assert same.status_code == 400 and "the same request" in same.json()["error"]
        none = c.get(f"/api/runs/{library}/diff", params={"a": "p/7", "b": rid["/books/2"]})
        assert none.status_code == 404 and "no request 'p/7' (`a`)" in none.json()["error"]
        one = c.get(f"/api/runs/{library}/diff", params={"a": rid["/books/2"]})
        assert one.status_code == 400 and "needs two requests" in one.json()["error"]
