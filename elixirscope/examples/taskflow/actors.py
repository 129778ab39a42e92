"""TaskFlow's actors on ``elixirscope.runtime`` (importable: actor classes are found by name).

The tree (``taskflow_spec``), ``one_for_one``::

    taskflow
      task_manager   TaskManager: who is assigned to what (GenServer)
      notifications  NotificationService: publishes task events through the
                     registry's dispatch (pub/sub) and mails the assignee
      reports        ReportGenerator: the slow project report
      projects       ProjectSupervisor: ``simple_one_for_one`` ProjectWorkers,
                     one per project, subscribed to the task events

Two of the planted defects live here: ``TaskManager`` takes any assignment it
is given (the race between two requests is the web layer's read-modify-write,
and the manager's state shows the second one overwriting the first), and
``ProjectWorker.estimate`` divides by the hours a day it is given, so ``0``
crashes it and its supervisor restarts it. The slow report is
``ReportGenerator``'s (``render_row`` takes ``SLOW_ROW_S`` a project).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from elixirscope.examples.taskflow.mail import EmailClient
from elixirscope.examples.taskflow.models import Project, Task, shared_engine
from elixirscope.runtime import ChildSpec, GenServer, Reply, Supervisor, SupervisorSpec

__all__ = [
    "NotificationService",
    "ProjectWorker",
    "ReportGenerator",
    "TaskManager",
    "project_supervisor_spec",
    "taskflow_spec",
]

TASK_EVENTS = "task_events"
"""The registry key task events are dispatched under (the Phoenix.PubSub topic)."""
SLOW_ROW_S = 0.05


class TaskManager(GenServer):
    """Task orchestration: open tasks, assignments and completions, by task id."""

    def init(self, args: Any) -> dict[str, Any]:
        return {"assignments": {}, "created": 0, "completed": []}

    def handle_call(self, request: Any, from_: Any, state: dict[str, Any]) -> Reply:
        op = request[0]
        if op == "created":
            return Reply("ok", {**state, "created": state["created"] + 1})
        if op == "assign":
            _, task_id, user_id = request
            previous = state["assignments"].get(str(task_id))
            # Planted: whoever asks last wins; an assignment already made is overwritten.
            assignments = {**state["assignments"], str(task_id): user_id}
            return Reply(previous, {**state, "assignments": assignments})
        if op == "complete":
            return Reply("ok", {**state, "completed": [*state["completed"], request[1]]})
        if op == "workload":
            user_id = request[1]
            return Reply(sum(1 for u in state["assignments"].values() if u == user_id), state)
        return Reply(("error", f"unknown request {op!r}"), state)


class NotificationService(GenServer):
    """Tells everyone about task events: the registry's subscribers, and the assignee by mail."""

    def init(self, args: Any) -> dict[str, Any]:
        self.mail = EmailClient(args.get("mail_url"))
        return {"published": 0, "emails_sent": 0, "emails_failed": 0, "last": None}

    def handle_call(self, request: Any, from_: Any, state: dict[str, Any]) -> Reply:
        event = request
        self.dispatch(TASK_EVENTS, event)
        state = {**state, "published": state["published"] + 1, "last": event["event"]}
        if event["event"] != "task_assigned" or not event.get("email"):
            return Reply("published", state)
        outcome = self.mail.send(event["email"], f"You were given: {event['title']}")
        if outcome.startswith("not sent"):
            return Reply(outcome, state)
        key = "emails_sent" if outcome.startswith("sent") else "emails_failed"
        return Reply(outcome, {**state, key: state[key] + 1})


class ProjectWorker(GenServer):
    """One project's live figures; follows the task events of its project."""

    def init(self, args: Any) -> dict[str, Any]:
        project_id = args[0]
        self.register(f"project:{project_id}")
        self.register(TASK_EVENTS, unique=False)
        return {"project_id": project_id, "events": 0, "estimates": 0}

    def handle_call(self, request: Any, from_: Any, state: dict[str, Any]) -> Reply:
        if request[0] == "estimate":
            _, remaining_hours, hours_per_day = request
            days = estimate_days(remaining_hours, hours_per_day)
            return Reply(days, {**state, "estimates": state["estimates"] + 1})
        return Reply(dict(state), state)

    def handle_info(self, message: Any, state: dict[str, Any]) -> dict[str, Any]:
        if isinstance(message, dict) and message.get("project_id") == state["project_id"]:
            return {**state, "events": state["events"] + 1}
        return state


def estimate_days(remaining_hours: int, hours_per_day: float) -> float:
    # Planted: no check of the input; 0 hours a day divides by zero and crashes the worker.
    return round(remaining_hours / hours_per_day, 1)


class ReportGenerator(GenServer):
    """The project report: one query per project and a slow rendering of each row."""

    def init(self, args: Any) -> dict[str, Any]:
        self.database_url = args["database_url"]
        return {"reports": 0, "rows": 0}

    def handle_call(self, request: Any, from_: Any, state: dict[str, Any]) -> Reply:
        try:
            rows = project_report(self.database_url)
        except Exception as exc:  # the database went away: say so, keep serving
            return Reply(("error", f"{type(exc).__name__}: {str(exc).splitlines()[0]}"), state)
        return Reply(rows, {"reports": state["reports"] + 1, "rows": state["rows"] + len(rows)})


def project_report(database_url: str) -> list[dict[str, Any]]:
    with Session(shared_engine(database_url)) as session:
        projects = session.scalars(select(Project).order_by(Project.id)).all()
        rows = []
        for project in projects:
            tasks = session.scalars(select(Task).where(Task.project_id == project.id)).all()
            rows.append(render_row(project.name, tasks))
        return rows


def render_row(name: str, tasks: Any) -> dict[str, Any]:
    time.sleep(SLOW_ROW_S)  # planted: the slow part of the report
    done = sum(1 for t in tasks if t.status == "done")
    return {
        "project": name,
        "tasks": len(tasks),
        "done": done,
        "hours": sum(t.hours for t in tasks),
    }


def project_supervisor_spec() -> SupervisorSpec:
    return SupervisorSpec(
        "simple_one_for_one",
        [ChildSpec("project", (ProjectWorker, []))],
        max_restarts=50,
        max_seconds=5,
    )


def taskflow_spec(database_url: str, mail_url: str | None) -> SupervisorSpec:
    return SupervisorSpec(
        "one_for_one",
        [
            ChildSpec("task_manager", (TaskManager, None)),
            ChildSpec("notifications", (NotificationService, {"mail_url": mail_url})),
            ChildSpec("reports", (ReportGenerator, {"database_url": database_url})),
            ChildSpec("projects", (Supervisor, project_supervisor_spec()), type="supervisor"),
        ],
    )
