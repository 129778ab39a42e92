"""002 §1: function calls, GenServer state changes and messages, recorded under
the request that caused them (TaskFlow over real HTTP, recorded by ``elixirscope run``)."""

from __future__ import annotations

from taskflow_server import Chain, TaskFlowServer


def new_task(taskflow: TaskFlowServer, title: str, project_id: int = 2) -> tuple[dict, Chain]:
    response = taskflow.client.post(
        f"/api/projects/{project_id}/tasks", json={"title": title, "hours": 3}
    )
    assert response.status_code == 201, response.text
    return response.json(), taskflow.recorded(response)


def test_creating_a_task_records_the_handler_its_query_and_the_task_managers_call(
    taskflow: TaskFlowServer,
) -> None:
    task, chain = new_task(taskflow, "write the tests")
    (handler,) = chain.calls("create_app.<locals>.create_task")
    (create,) = chain.calls("queries.create_task")
    (manager,) = [
        c for c in chain.calls("TaskManager.handle_call") if "created" in c["args"]["request"]
    ]
    assert create["id"] in {e["id"] for e in chain.under(handler)}
    assert manager["id"] in {e["id"] for e in chain.under(handler)}
    inserts = [
        q
        for q in chain.under(create)
        if q["type"] == "query" and q["statement"].startswith("INSERT INTO tasks")
    ]
    assert len(inserts) == 1 and inserts[0]["rows"] == 1
    assert manager["args"]["request"] == f"('created', {task['id']})"


def test_every_call_has_its_return_with_the_same_id(taskflow: TaskFlowServer) -> None:
    _, chain = new_task(taskflow, "pair them")
    calls = {c["id"] for c in chain.of("call")}
    returns = {r["call_id"] for r in chain.of("return")}
    assert calls and calls <= returns


def test_arguments_and_return_values_are_the_requests_own(taskflow: TaskFlowServer) -> None:
    task, chain = new_task(taskflow, "argue")
    (create,) = chain.calls("queries.create_task")
    assert create["args"]["title"] == "'argue'" and create["args"]["hours"] == "3"
    (returned,) = [r for r in chain.of("return") if r["call_id"] == create["id"]]
    assert f"'id': {task['id']}" in returned["result"]


def test_the_task_managers_call_is_nested_under_the_handler_through_the_actor_thread(
    taskflow: TaskFlowServer,
) -> None:
    _, chain = new_task(taskflow, "nest")
    (handler,) = chain.calls("create_app.<locals>.create_task")
    manager = [
        c for c in chain.calls("TaskManager.handle_call") if "created" in c["args"]["request"]
    ][0]
    assert manager["thread"] != handler["thread"]  # the actors' own thread ...
    assert manager["correlation_id"] == handler["correlation_id"] == chain.cid  # ... same chain
    by_id = {c["id"]: c for c in chain.of("call")}
    parent, path = by_id.get(manager["parent_id"]), []
    while parent is not None:
        path.append(parent["function"].rsplit(".", 1)[-1])
        parent = by_id.get(parent["parent_id"])
    assert "create_task" in path and "run" in path  # handler -> gateway.run -> ... -> handle_call


def test_assigning_then_completing_records_the_task_managers_state_changes(
    taskflow: TaskFlowServer,
) -> None:
    task, _ = new_task(taskflow, "state it")
    assigned = taskflow.client.post(f"/api/tasks/{task['id']}/assign", json={"user_id": 3})
    completed = taskflow.client.post(f"/api/tasks/{task['id']}/complete")
    assert assigned.status_code == completed.status_code == 200
    (assign_state,) = [
        s
        for s in taskflow.recorded(assigned).of("state", actor="taskflow/task_manager")
        if s["message"] == f"('assign', {task['id']}, 3)"
    ]
    assert {"path": f"assignments['{task['id']}']", "op": "add", "new": 3} in assign_state["delta"]
    (complete_state,) = taskflow.recorded(completed).of("state", actor="taskflow/task_manager")
    assert complete_state["callback"] == "handle_call"
    assert complete_state["message"] == f"('complete', {task['id']})"
    assert f"{task['id']}]" in complete_state["after"]


def test_a_state_change_names_the_message_that_caused_it(taskflow: TaskFlowServer) -> None:
    _, chain = new_task(taskflow, "why")
    (state,) = chain.of("state", actor="taskflow/task_manager")
    (receive,) = [r for r in chain.of("receive") if r["message_id"] == state["message_id"]]
    assert receive["message"] == state["message"]


def test_a_call_to_an_actor_is_a_send_and_a_receive_with_one_message_id(
    taskflow: TaskFlowServer,
) -> None:
    _, chain = new_task(taskflow, "message")
    sends = {s["message_id"]: s for s in chain.of("send")}
    receives = {r["message_id"]: r for r in chain.of("receive")}
    assert sends and set(receives) <= set(sends)
    for message_id, receive in receives.items():
        assert sends[message_id]["message"] == receive["message"]
        assert sends[message_id]["ts"] <= receive["ts"]
    assert any(r["actor"] == "taskflow/notifications" for r in receives.values())


def test_a_task_event_is_published_and_delivered_to_every_project_worker(
    taskflow: TaskFlowServer,
) -> None:
    task, chain = new_task(taskflow, "publish", project_id=3)
    (pub,) = chain.of("pub")
    assert pub["topic"] == "task_events" and pub["publisher"] == "taskflow/notifications"
    assert f"'task_id': {task['id']}" in pub["message"]
    deliveries = chain.of("deliver", pub_id=pub["pub_id"])
    projects = taskflow.client.get("/api/projects").json()
    assert len(deliveries) == len(projects)  # one ProjectWorker a project subscribes
    assert all(d["ts"] >= pub["ts"] for d in deliveries)


def test_the_n_plus_ones_selects_have_the_rows_each_gave(taskflow: TaskFlowServer) -> None:
    """SQLAlchemy on SQLite: the driver counts no SELECT's rows; the cursor does."""
    response = taskflow.client.get("/api/projects/with-tasks")
    assert response.status_code == 200, response.text
    projects = response.json()
    selects = [q for q in taskflow.recorded(response).of("query") if q["statement"].startswith("SELECT")]
    assert len(selects) == 1 + len(projects)
    assert selects[0]["rows"] == len(projects)
    assert sorted(q["rows"] for q in selects[1:]) == sorted(len(p["tasks"]) for p in projects)
