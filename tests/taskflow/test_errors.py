"""002 §3: the project worker's crash and restart with its cause, the mail
service's timeouts as separate attempts, and an unhandled exception's 500."""

from __future__ import annotations

from taskflow_server import Served, TaskFlowServer, mail_mode

from elixirscope.examples.taskflow import mail as mail_module
from elixirscope.query import esql


def crash(taskflow: TaskFlowServer, project_id: int = 1):
    response = taskflow.client.post(
        f"/api/projects/{project_id}/estimate", json={"hours_per_day": 0}
    )
    return response, taskflow.recorded(response)


def test_a_bad_estimate_crashes_the_worker_and_the_request_says_it_was_restarted(
    taskflow: TaskFlowServer,
) -> None:
    response, chain = crash(taskflow)
    assert response.status_code == 422
    assert response.json() == {
        "error": "the project worker crashed: exception builtins.ZeroDivisionError: division by zero",
        "restarted": True,
    }
    assert chain.end["status"] == 422


def test_the_crash_is_recorded_where_it_was_raised_with_its_input(taskflow: TaskFlowServer) -> None:
    _, chain = crash(taskflow)
    (raised,) = [x for x in chain.of("exception") if x["function"].endswith("estimate_days")]
    assert raised["exc_type"] == "ZeroDivisionError"
    assert raised["traceback"][0].endswith(
        "elixirscope/examples/taskflow/actors.py:%d:estimate_days" % raised["line"]
    )
    (call,) = chain.calls("actors.estimate_days")
    assert call["args"]["hours_per_day"] == "0"
    (handle,) = chain.calls("ProjectWorker.handle_call")
    assert handle["args"]["request"].startswith("('estimate', ") and handle["args"][
        "request"
    ].endswith(", 0)")


def test_the_exit_then_the_restart_follow_the_crash_with_its_cause(
    taskflow: TaskFlowServer,
) -> None:
    _, chain = crash(taskflow, project_id=2)
    (raised,) = [x for x in chain.of("exception") if x["function"].endswith("estimate_days")]
    (exit_,) = chain.of("exit")
    (restart,) = chain.of("restart")
    assert exit_["path"] == restart["path"] and exit_["path"].startswith("taskflow/projects/")
    assert exit_["supervisor"] == restart["supervisor"] == "taskflow/projects"
    assert exit_["reason"] == "exception builtins.ZeroDivisionError: division by zero"
    assert raised["ts"] < exit_["ts"] < restart["ts"]
    (init,) = chain.calls("ProjectWorker.init")
    assert init["ts"] > exit_["ts"] and init["args"]["args"] == "[2]"


def test_the_restarted_worker_answers_again(taskflow: TaskFlowServer) -> None:
    crash(taskflow, project_id=3)
    response = taskflow.client.post("/api/projects/3/estimate", json={"hours_per_day": 5})
    assert response.status_code == 200 and response.json()["days"] > 0
    chain = taskflow.recorded(response)
    (state,) = chain.of("state", callback="handle_call")
    assert "'estimates': 1" in state["after"]  # a fresh state: the crash lost the old one


def test_esql_finds_the_crash_and_the_restart(taskflow: TaskFlowServer) -> None:
    _, chain = crash(taskflow, project_id=4)
    crashes = list(
        esql.run(
            f"exceptions where type = 'ZeroDivisionError' and chain = '{chain.cid}'",
            data_dir=taskflow.data_dir,
        )
    )
    restarts = list(esql.run(f"restarts where chain = '{chain.cid}'", data_dir=taskflow.data_dir))
    # raised in estimate_days, out through the callback that called it
    assert [c["function"].rsplit(".", 2)[-2:] for c in crashes] == [
        ["actors", "estimate_days"],
        ["ProjectWorker", "handle_call"],
    ]
    assert len(restarts) == 1 and restarts[0]["actor"].startswith("taskflow/projects/")


def assign_new_task(taskflow: TaskFlowServer, title: str):
    task = taskflow.client.post("/api/projects/1/tasks", json={"title": title}).json()
    response = taskflow.client.post(f"/api/tasks/{task['id']}/assign", json={"user_id": 1})
    assert response.status_code == 200, response.text
    return response, taskflow.recorded(response)


def test_a_hanging_mail_service_is_retried_and_each_attempt_is_recorded(
    taskflow: TaskFlowServer, mail: Served
) -> None:
    mail_mode(mail, "hang", 2)
    response, chain = assign_new_task(taskflow, "mail me twice")
    assert response.json()["email"] == "sent after 3 attempts"
    attempts = chain.of("http")
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert [a["timeout"] for a in attempts] == [True, True, False]
    assert [a["status"] for a in attempts] == [0, 0, 200]
    assert all(a["url"] == f"{mail.url}/send" and a["method"] == "POST" for a in attempts)
    timeout_ns = int(mail_module.TIMEOUT_S * 1e9)
    assert all(a["duration_ns"] >= timeout_ns for a in attempts[:2])


def test_the_attempts_sit_under_the_email_clients_call_in_the_request(
    taskflow: TaskFlowServer, mail: Served
) -> None:
    mail_mode(mail, "hang", 1)
    _, chain = assign_new_task(taskflow, "mail me once")
    (send,) = chain.calls("EmailClient.send")
    inside = [e for e in chain.under(send) if e["type"] == "http"]
    assert [a["attempt"] for a in inside] == [1, 2]
    assert inside[0]["error"] and inside[1]["status"] == 200


def test_a_failing_mail_service_is_a_503_attempt_then_a_success(
    taskflow: TaskFlowServer, mail: Served
) -> None:
    mail_mode(mail, "fail", 1)
    response, chain = assign_new_task(taskflow, "mail me after a 503")
    assert response.json()["email"] == "sent after 2 attempts"
    assert [(a["attempt"], a["status"], a["timeout"]) for a in chain.of("http")] == [
        (1, 503, False),
        (2, 200, False),
    ]


def test_esql_lists_the_retries(taskflow: TaskFlowServer, mail: Served) -> None:
    mail_mode(mail, "hang", 1)
    _, chain = assign_new_task(taskflow, "ask esql")
    rows = list(
        esql.run(f"http where attempt > 1 and chain = '{chain.cid}'", data_dir=taskflow.data_dir)
    )
    assert len(rows) == 1 and rows[0]["attempt"] == 2


def test_an_unhandled_exception_is_a_500_with_its_exception_and_the_query_before_it(
    taskflow: TaskFlowServer,
) -> None:
    response = taskflow.client.get("/api/users/999/summary")
    assert response.status_code == 500
    chain = taskflow.recorded(response)
    end = chain.end
    assert end["status"] == 500 and end["exc_type"] == "AttributeError"
    assert "'NoneType' object has no attribute 'username'" in end["message"]
    assert "queries.py" in end["traceback_text"] and "user_summary" in end["traceback_text"]
    (raised,) = [x for x in chain.of("exception") if x["function"].endswith("queries.user_summary")]
    assert raised["exc_type"] == "AttributeError"
    before = [q for q in chain.of("query") if q["ts"] < raised["ts"]]
    assert len(before) == 2 and before[0]["statement"].startswith("SELECT users.id")
