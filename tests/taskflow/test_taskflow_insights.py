"""Issue 15: on TaskFlow every planted defect is found, and clean scenarios give no finding.

The scenarios run against the directory's one recorded server; the findings of
its run (so far) are read once, and each finding is tied to the scenario that
caused it by its chains (correlation ids), so what other tests did to the same
server neither satisfies nor fails these assertions.

The slow report is found in this first run (no baseline of earlier runs yet) as
the report generator's slow callback, and the unknown user's 500 as a server
error, at the line that raised.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from taskflow_server import Served, TaskFlowServer, mail_mode

from elixirscope.ai.findings import Finding
from elixirscope.ai.insights import find
from elixirscope.ai.recording import Recording, load_recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.examples.taskflow import actors
from elixirscope.examples.taskflow import mail as mail_module

CRASHED_PROJECT = 6  # no other test crashes it: one exit, one restart


async def _assign_twice(url: str, task_id: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return list(
            await asyncio.gather(
                *(client.post(f"/api/tasks/{task_id}/assign", json={"user_id": u}) for u in (1, 2))
            )
        )


def _chains_of(recording: Recording, finding: Finding) -> set[str]:
    """Every chain a finding rests on: its own and its evidence's."""
    found = {finding.correlation_id} if finding.correlation_id else set()
    for e in finding.evidence:
        se = recording.by_key.get((e.producer, e.id))
        if se is not None and se.event.correlation_id:
            found.add(se.event.correlation_id)
    return found


@pytest.fixture(scope="module")
def scenarios(taskflow: TaskFlowServer, mail: Served) -> dict[str, Any]:
    """The defect scenarios, then the clean ones; and the run's findings once all ended."""
    client = taskflow.client
    out: dict[str, Any] = {"defect": {}, "clean": {}}
    listed = client.get("/api/projects/with-tasks")
    out["defect"]["n_plus_one"] = [listed]
    out["projects"] = len(listed.json())
    task = client.post("/api/projects/5/tasks", json={"title": "contested", "hours": 2}).json()
    out["defect"]["race"] = asyncio.run(_assign_twice(taskflow.url, task["id"]))
    out["defect"]["crash"] = [
        client.post(f"/api/projects/{CRASHED_PROJECT}/estimate", json={"hours_per_day": 0})
    ]
    other = client.post("/api/projects/5/tasks", json={"title": "mail me"}).json()
    mail_mode(mail, "hang", mail_module.ATTEMPTS - 1)
    out["defect"]["retries"] = [client.post(f"/api/tasks/{other['id']}/assign", json={"user_id": 1})]
    out["defect"]["slow_report"] = [client.get("/api/reports/projects")]
    out["defect"]["server_error"] = [client.get("/api/users/996/summary")]

    user = client.post("/api/users", json={"email": "ada@clean.test", "username": "ada"})
    project = client.post("/api/projects", json={"name": "clean", "owner_id": user.json()["id"]})
    pid = project.json()["id"]
    made = client.post(f"/api/projects/{pid}/tasks", json={"title": "tidy", "hours": 1})
    tid = made.json()["id"]
    out["clean"] = [
        user,
        project,
        made,
        client.get("/api/projects"),
        client.get(f"/api/tasks/{tid}"),
        client.post(f"/api/tasks/{tid}/comments", json={"user_id": 1, "body": "looks good"}),
        client.get(f"/api/tasks/{tid}/comments"),
        client.post(f"/api/tasks/{tid}/assign", json={"user_id": 2}),  # one at a time
        client.get(f"/api/users/{user.json()['id']}/summary"),
    ]
    responses = [r for rs in out["defect"].values() for r in rs] + out["clean"]
    taskflow.recorded_many([r.headers["x-correlation-id"] for r in responses])
    recording = load_recording(taskflow.data_dir)  # type: ignore[arg-type]
    # The server is shared: other tests crash projects under the same supervisor, and when
    # they run close to this one (``pytest -n 2 tests/taskflow``) three restarts in 10 s are
    # a restart storm that holds this crash's restart too. The scenarios' own findings are
    # judged without the other tests' timing.
    findings, errors = find(recording, InsightSettings(restart_storm_restarts=1_000))
    assert errors == {}
    out["recording"] = recording
    out["findings"] = findings
    out["task"] = task
    return out


def _cids(responses: list[httpx.Response]) -> set[str]:
    return {r.headers["x-correlation-id"] for r in responses}


def _of(scenarios: dict[str, Any], name: str) -> list[Finding]:
    """The findings of one scenario's requests: a defect seen before (the server is shared
    with other tests) is a repeat of its first finding, so the repeats are looked at too."""
    mine = _cids(scenarios["defect"][name])
    every = [f for head in scenarios["findings"] for f in (head, *head.repeats)]
    return [f for f in every if _chains_of(scenarios["recording"], f) & mine]


def test_the_n_plus_one_is_found_at_its_loop(scenarios: dict[str, Any]) -> None:
    (found,) = _of(scenarios, "n_plus_one")
    assert found.kind == "n_plus_one" and found.details["queries"] == scenarios["projects"]
    issued, loop = found.locations
    assert issued.file.endswith("taskflow/queries.py") and issued.role == "issued here"
    assert loop.role == "the loop" and loop.line == issued.line - 1
    assert loop.function == "elixirscope.examples.taskflow.queries.projects_with_tasks"
    # SQLite answers in microseconds: the pattern, not yet costly
    assert found.severity == "low" and found.details["costly"] is False


def test_the_race_is_found_with_both_chains(scenarios: dict[str, Any]) -> None:
    found = _of(scenarios, "race")
    both = _cids(scenarios["defect"]["race"])
    assert {f.kind for f in found} == {"race"}
    by_table = {f.details.get("table") or f.details.get("actor"): f for f in found}
    assert set(by_table) == {"tasks", "taskflow/task_manager"}
    for f in found:
        assert set(f.details["clients"]) == both
        # each client named by the request that ran it, its chain beside it
        for cid in both:
            assert re.search(rf"(PUT|POST|PATCH) /api/tasks/\S+ \(chain {cid[:12]}\)",
                             f.explanation), f.explanation
    actor = by_table["taskflow/task_manager"]
    assert actor.severity == "high" and f"assignments['{scenarios['task']['id']}']" in actor.title
    # where: the actor's callback that changed it, not the gateway that ran the actors
    assert [(loc.function.rpartition(".")[2], loc.role) for loc in actor.locations] == [
        ("handle_call", "callback")]


def test_the_crash_is_found_with_its_restart(scenarios: dict[str, Any]) -> None:
    (found,) = _of(scenarios, "crash")
    assert found.kind == "crash" and found.details["actor"] == f"taskflow/projects/project.{CRASHED_PROJECT}"
    assert found.details["exits"] == 1 and found.details["restarts"] == 1
    assert [e.type for e in found.evidence] == ["state", "exit", "restart"]
    assert "ZeroDivisionError" in found.title
    (raised,) = found.locations
    assert raised.function == "estimate_days" and raised.file.endswith("taskflow/actors.py")


def test_the_retries_are_found_attempt_by_attempt(scenarios: dict[str, Any]) -> None:
    (found,) = _of(scenarios, "retries")
    assert found.kind == "retried_call" and found.details["target"].endswith("/send")
    assert [e.note for e in found.evidence] == [
        *(f"attempt {i}: timeout" for i in range(1, mail_module.ATTEMPTS)),
        f"attempt {mail_module.ATTEMPTS}: 200",
    ]
    assert found.details["failed"] == mail_module.ATTEMPTS - 1 and not found.details["gave_up"]


def test_the_slow_report_is_found_in_its_first_run_where_its_time_goes(
    scenarios: dict[str, Any],
) -> None:
    report = _of(scenarios, "slow_report")
    # the report runs its own query a project too: the N+1 pattern, on SQLite not yet costly
    assert sorted((f.kind, f.severity) for f in report)[0] == ("n_plus_one", "low")
    assert sorted(f.kind for f in report) == ["n_plus_one", "slow_handler"]
    (found,) = [f for f in report if f.kind == "slow_handler"]
    assert found.details["actor"] == "taskflow/reports"
    assert found.details["handler"].endswith("actors.ReportGenerator.handle_call")
    rows = len(scenarios["defect"]["slow_report"][0].json())
    assert found.details["own_ms"] >= rows * actors.SLOW_ROW_S * 1e3
    slowest = found.details["slowest_inside"][0]
    assert slowest["function"].endswith("actors.render_row") and slowest["calls"] == rows
    callback, where = found.locations
    assert callback.role == "the callback" and callback.file.endswith("taskflow/actors.py")
    assert where.role == "most time of its own" and where.function == slowest["function"]
    assert found.evidence[-1].type == "reqend" and "GET /api/reports/projects 200" in found.evidence[-1].note
    assert found.details["baseline_runs"] == [] and "no earlier run" in found.explanation


def test_the_500_is_found_at_the_line_that_raised(scenarios: dict[str, Any]) -> None:
    (found,) = _of(scenarios, "server_error")
    assert found.kind == "server_error" and found.severity == "high"
    assert found.details["route"] == "GET /api/users/{user_id}/summary"
    assert found.details["error"] == "AttributeError" and found.details["status"] == 500
    raised, caller = found.locations
    assert raised.file.endswith("taskflow/queries.py") and raised.function == "user_summary"
    assert raised.role == "raised here" and caller.file.endswith("taskflow/app.py")
    assert "`return {\"user\": user.username, \"assigned\": assigned}`" in found.explanation
    assert found.details["traceback_top"][-1].endswith(f"queries.py:{raised.line} in user_summary")


def test_the_bad_input_that_crashes_a_worker_is_a_crash_not_a_server_error(
    scenarios: dict[str, Any],
) -> None:
    (answer,) = scenarios["defect"]["crash"]
    assert answer.status_code == 422  # TaskFlow answers the worker's crash: no 500 to report
    assert {f.kind for f in _of(scenarios, "crash")} == {"crash"}


def test_clean_scenarios_give_no_finding(scenarios: dict[str, Any]) -> None:
    assert all(r.status_code in (200, 201) for r in scenarios["clean"])
    clean = _cids(scenarios["clean"])
    # The blocked-loop rule times the program's own work between awaits (TaskFlow's async
    # handlers use a sync SQLite session): on a busy machine one commit can pass its 100 ms.
    # Judged here with a threshold no clean request comes near, so the machine cannot fail it.
    findings, _ = find(scenarios["recording"], InsightSettings(blocked_loop_ms=5_000))
    every = [f for head in findings for f in (head, *head.repeats)]
    touched = [f.title for f in every if _chains_of(scenarios["recording"], f) & clean]
    assert touched == []
