"""Work a request's handler left running: a task it started with ``create_task`` that
began once the handler had returned (its response sent) is under the handler in the
request's waterfall, with its queries — as ``calltree`` nests it — though the timeline
and the flame graph draw it as a root (no caller was open when it began)."""

from __future__ import annotations

import textwrap

from cinema_recordings import recorded_api
from served_program import SERVED

ORDERS = textwrap.dedent(
    """
    import asyncio, socket, sqlite3, threading, time

    import httpx, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    DB = sqlite3.connect(":memory:", check_same_thread=False)
    DB.execute("create table audit (id integer primary key, what text)")
    KEEP = set()


    async def write_audit(order):
        await asyncio.sleep(0.05)
        DB.execute("insert into audit (what) values (?)", (f"order {order}",))


    def place_order(order):
        task = asyncio.get_running_loop().create_task(write_audit(order))
        KEEP.add(task)
        task.add_done_callback(KEEP.discard)
        return {"order": order}


    async def orders(request):
        return JSONResponse(place_order(int(request.path_params["n"])))


    app = Starlette(routes=[Route("/orders/{n}", orders, methods=["POST"])])


    def client(url):
        print(httpx.post(url + "/orders/5").json())
        time.sleep(0.3)  # the audit is written after the answer
    """
) + SERVED


def test_a_task_left_running_is_in_its_request_s_waterfall(tmp_path) -> None:
    with recorded_api(tmp_path, "orders.py", **{"orders.py": ORDERS}) as (client, run):
        (listed,) = client.get(f"/api/runs/{run}/requests").json()["requests"]
        got = client.get(f"/api/runs/{run}/requests", params={"request": listed["id"]}).json()
        flame = client.get(f"/api/runs/{run}/calltree").json()["nodes"]
        window = client.get(f"/api/runs/{run}/timeline", params={"px": 20_000}).json()
    calls = {c["function"].rpartition(".")[2]: c for c in got["calls"]}
    placed, audit = calls["place_order"], calls["write_audit"]
    assert audit["depth"] == placed["depth"] + 1  # under the call that started it
    assert int(audit["start"]) > int(placed["end"])  # which had returned when it began
    assert [q["statement"] for q in got["queries"] if q["kind"] == "query"] == [
        "insert into audit (what) values (?)"]
    (root,) = [n for n in flame if n["function"].endswith("write_audit")]
    assert root["parent"] == 0  # the flame graph: a root, as a sampling profiler shows it
    # the timeline: a root too, linked to its starter (the selection says so, and draws it)
    drawn = {c["function"].rpartition(".")[2]: c for c in window["slices"]}
    started_by = drawn["write_audit"]["started_by"]
    assert started_by["row"] == drawn["place_order"]["row"]
    assert int(started_by["end"]) == int(placed["end"]) < int(drawn["write_audit"]["start"])
    assert drawn["place_order"]["left_running"] == 1 and "started_by" not in drawn["place_order"]
