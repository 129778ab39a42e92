"""002 §5 and 001 §5.1 b: the WebSocket dashboard (the LiveView analogue): each
message in and out recorded, and a task created elsewhere pushed to it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from taskflow_server import TaskFlowServer
from websockets.sync.client import connect


@pytest.fixture(scope="module")
def session(taskflow: TaskFlowServer) -> dict[str, Any]:
    ws_url = taskflow.url.replace("http://", "ws://") + "/ws/dashboard"
    cid = uuid.uuid4().hex  # the dashboard's chain: the server adopts the caller's id
    with connect(ws_url, open_timeout=30, additional_headers={"X-Correlation-ID": cid}) as ws:
        first = json.loads(ws.recv(timeout=30))
        refreshes = []
        for _ in range(3):
            ws.send("refresh")
            refreshes.append(json.loads(ws.recv(timeout=30)))
        created = taskflow.client.post("/api/projects/1/tasks", json={"title": "live"})
        pushed = json.loads(ws.recv(timeout=30))
    return {
        "first": first,
        "refreshes": refreshes,
        "created": created,
        "pushed": pushed,
        "cid": cid,
    }


def ws_chain(taskflow: TaskFlowServer, cid: str) -> list[dict[str, Any]]:
    from waiting import wait_until

    def closed() -> list[dict[str, Any]] | None:
        found = taskflow.all_events(correlation_id=cid)
        return found if any(e["type"] == "reqend" for e in found) else None

    return sorted(wait_until(closed), key=lambda e: e["ts"])  # type: ignore[arg-type]


def test_the_dashboard_answers_each_refresh_with_the_counts(session: dict[str, Any]) -> None:
    assert set(session["first"]["counts"]) == {"projects", "tasks", "open"}
    assert all(set(r["counts"]) == {"projects", "tasks", "open"} for r in session["refreshes"])


def test_a_task_created_by_a_request_is_pushed_to_the_open_dashboard(
    session: dict[str, Any],
) -> None:
    task = session["created"].json()
    assert session["pushed"]["event"] == {
        "event": "task_created",
        "task_id": task["id"],
        "project_id": 1,
    }
    assert session["pushed"]["counts"]["tasks"] == session["refreshes"][-1]["counts"]["tasks"] + 1


def test_every_websocket_message_in_and_out_is_recorded_in_order(
    taskflow: TaskFlowServer, session: dict[str, Any]
) -> None:
    assert session["cid"]
    found = ws_chain(taskflow, session["cid"])
    messages = [(e["kind"], e.get("preview")) for e in found if e["type"] == "ws"]
    kinds = [k for k, _ in messages]
    assert kinds[0] == "accept"
    assert kinds[1:9] == ["out", "in", "out", "in", "out", "in", "out", "out"]
    assert kinds[-1] in ("disconnect", "close")
    assert [p for k, p in messages if k == "in"] == ["'refresh'"] * 3  # previews are reprs
    (start,) = [e for e in found if e["type"] == "req"]
    assert start["protocol"] == "websocket" and start["path"] == "/ws/dashboard"


def test_the_dashboards_counts_are_queried_within_its_connection(
    taskflow: TaskFlowServer, session: dict[str, Any]
) -> None:
    found = ws_chain(taskflow, session["cid"])
    counted = [e for e in found if e["type"] == "call" and e["function"].endswith("queries.counts")]
    assert len(counted) == 5  # on connect, three refreshes, one pushed event
    assert sum(1 for e in found if e["type"] == "query") == 15


def test_the_push_is_linked_to_the_request_that_published_it(
    taskflow: TaskFlowServer, session: dict[str, Any]
) -> None:
    chain = taskflow.recorded(session["created"])
    (pub,) = chain.of("pub")
    (publish,) = chain.calls("Dashboards.publish")
    assert f"'task_id': {session['created'].json()['id']}" in publish["args"]["event"]
    assert pub["ts"] < publish["ts"]


def test_the_dashboards_state_is_recorded_after_each_message(
    taskflow: TaskFlowServer, session: dict[str, Any]
) -> None:
    found = ws_chain(taskflow, session["cid"])
    states = [e for e in found if e["type"] == "state"]
    assert {e["actor"] for e in states} == {
        f"websocket /ws/dashboard #{next(e['id'] for e in found if e['type'] == 'req')}"
    }
    callbacks = [e["callback"] for e in states]
    assert callbacks == ["connect", "message", "message", "message", "push"]
    assert [e["message"] for e in states[1:4]] == ["'refresh'"] * 3
    counts = session["first"]["counts"]
    assert states[0]["after"] == repr({"counts": counts, "events": 0})
    # the task created elsewhere, pushed: the state it left, with the frame sent
    (pushed,) = [e for e in found if e["type"] == "ws" and e["kind"] == "out"][-1:]
    assert states[-1]["message"] == pushed["preview"]
    assert "'events': 1" in states[-1]["after"]
    assert f"'tasks': {counts['tasks'] + 1}" in states[-1]["after"]
