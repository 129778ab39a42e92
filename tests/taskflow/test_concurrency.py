"""002 §4: the planted race on task assignment, two requests at once: both
answered 200, and the recording shows the interleaving and both states."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from taskflow_server import Chain, TaskFlowServer


async def _both(url: str, task_id: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return list(
            await asyncio.gather(
                *(client.post(f"/api/tasks/{task_id}/assign", json={"user_id": u}) for u in (1, 2))
            )
        )


@pytest.fixture(scope="module")
def race(taskflow: TaskFlowServer) -> dict[str, Any]:
    task = taskflow.client.post("/api/projects/4/tasks", json={"title": "contested"}).json()
    responses = asyncio.run(_both(taskflow.url, task["id"]))
    chains = [taskflow.recorded(r) for r in responses]
    final = taskflow.client.get(f"/api/tasks/{task['id']}").json()
    return {"task": task, "responses": responses, "chains": chains, "final": final}


def test_both_concurrent_assignments_are_answered_200_and_the_later_write_wins(
    race: dict[str, Any],
) -> None:
    answers = [r.json() for r in race["responses"]]
    assert [r.status_code for r in race["responses"]] == [200, 200]
    assert sorted(a["assignee_id"] for a in answers) == [1, 2]
    assert race["final"]["assignee_id"] in (1, 2)
    # the request that wrote last is the one whose TaskManager call saw the other
    later = next(a for a in answers if a["previous"] is not None)
    assert race["final"]["assignee_id"] == later["assignee_id"]


def test_the_recording_shows_both_reads_before_either_write(race: dict[str, Any]) -> None:
    reads, writes = [], []
    for chain in race["chains"]:
        (read,) = [q for q in chain.of("query") if q["statement"].startswith("SELECT tasks.id")]
        (write,) = [q for q in chain.of("query") if q["statement"].startswith("UPDATE tasks")]
        reads.append(read["ts"])
        writes.append(write["ts"])
    assert max(reads) < min(writes)  # both checks passed before anyone wrote


def test_both_task_manager_states_are_recorded_the_second_overwriting_the_first(
    race: dict[str, Any],
) -> None:
    task_id = race["task"]["id"]
    states = []
    for chain, response in zip(race["chains"], race["responses"], strict=True):
        (state,) = [
            s
            for s in chain.of("state", actor="taskflow/task_manager")
            if s["message"].startswith("('assign'")
        ]
        states.append((state["ts"], state, response.json()["assignee_id"]))
    states.sort(key=lambda s: s[0])
    (_, first, first_user), (_, second, second_user) = states
    key = f"assignments['{task_id}']"
    assert {"path": key, "op": "add", "new": first_user} in first["delta"]
    assert {"path": key, "op": "set", "old": first_user, "new": second_user} in second["delta"]


def test_the_two_requests_are_two_chains_that_overlap_in_time(race: dict[str, Any]) -> None:
    a, b = race["chains"]
    assert a.cid != b.cid
    assert not {e["id"] for e in a.events} & {e["id"] for e in b.events}
    span = lambda chain: (chain.request["ts"], chain.end["ts"])  # noqa: E731
    (a0, a1), (b0, b1) = span(a), span(b)
    assert a0 < b1 and b0 < a1


def test_an_assignment_after_the_race_is_refused_with_409(
    taskflow: TaskFlowServer, race: dict[str, Any]
) -> None:
    response = taskflow.client.post(f"/api/tasks/{race['task']['id']}/assign", json={"user_id": 3})
    assert response.status_code == 409
    chain: Chain = taskflow.recorded(response)
    assert chain.end["status"] == 409 and not chain.of("state")
