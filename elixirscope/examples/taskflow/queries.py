"""TaskFlow's data access: what each endpoint asks the database (the Ecto context modules).

Each function takes an open ``Session`` and runs its queries inside it; none
awaits, so no transaction is held while a request waits for something else.
The planted N+1 is :func:`projects_with_tasks`: one query for the projects,
then one more for each project's tasks, issued by the loop's line when it
touches ``project.tasks`` (lazy loading).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from elixirscope.examples.taskflow.models import Comment, Project, Task, User

__all__ = [
    "add_comment",
    "complete_task",
    "counts",
    "create_project",
    "create_task",
    "list_projects",
    "projects_with_tasks",
    "read_task",
    "register_user",
    "task_comments",
    "user_summary",
    "write_assignee",
]


def task_json(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "title": task.title,
        "status": task.status,
        "priority": task.priority,
        "hours": task.hours,
        "project_id": task.project_id,
        "assignee_id": task.assignee_id,
    }


def project_json(project: Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "status": project.status,
        "owner_id": project.owner_id,
    }


def register_user(session: Session, email: str, username: str) -> dict[str, Any] | None:
    """The new user, or None when the email is taken (checked first, then inserted)."""
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        return None
    user = User(email=email, username=username)
    session.add(user)
    session.flush()
    return {"id": user.id, "email": user.email, "username": user.username}


def user_summary(session: Session, user_id: int) -> dict[str, Any]:
    user = session.get(User, user_id)
    assigned = session.scalar(select(func.count(Task.id)).where(Task.assignee_id == user_id))
    # Planted (a plain bug): an unknown user is None here, and the request is a 500.
    return {"user": user.username, "assigned": assigned}  # type: ignore[union-attr]


def list_projects(session: Session) -> list[dict[str, Any]]:
    return [project_json(p) for p in session.scalars(select(Project).order_by(Project.id))]


def projects_with_tasks(session: Session) -> list[dict[str, Any]]:
    projects = session.scalars(select(Project).order_by(Project.id)).all()
    result = []
    for project in projects:
        tasks = [task_json(task) for task in project.tasks]  # planted N+1: one query a project
        result.append({**project_json(project), "tasks": tasks})
    return result


def create_project(session: Session, name: str, owner_id: int) -> dict[str, Any]:
    project = Project(name=name, owner_id=owner_id)
    session.add(project)
    session.flush()
    return project_json(project)


def create_task(
    session: Session, project_id: int, title: str, hours: int, priority: str
) -> dict[str, Any] | None:
    if session.get(Project, project_id) is None:
        return None
    task = Task(title=title, hours=hours, priority=priority, project_id=project_id)
    session.add(task)
    session.flush()
    return task_json(task)


def read_task(session: Session, task_id: int) -> dict[str, Any] | None:
    task = session.get(Task, task_id)
    return None if task is None else task_json(task)


def write_assignee(session: Session, task_id: int, user_id: int) -> None:
    session.execute(update(Task).where(Task.id == task_id).values(assignee_id=user_id))


def complete_task(session: Session, task_id: int) -> dict[str, Any] | None:
    task = session.get(Task, task_id)
    if task is None:
        return None
    task.status = "done"
    session.flush()
    return task_json(task)


def remaining_hours(session: Session, project_id: int) -> int | None:
    if session.get(Project, project_id) is None:
        return None
    total = session.scalar(
        select(func.coalesce(func.sum(Task.hours), 0)).where(
            Task.project_id == project_id, Task.status != "done"
        )
    )
    return int(total or 0)


def add_comment(session: Session, task_id: int, user_id: int, body: str) -> dict[str, Any] | None:
    if session.get(Task, task_id) is None:
        return None
    comment = Comment(task_id=task_id, user_id=user_id, body=body)
    session.add(comment)
    session.flush()
    return {"id": comment.id, "task_id": task_id, "user_id": user_id, "length": len(body)}


def task_comments(session: Session, task_id: int) -> list[dict[str, Any]]:
    found = session.scalars(select(Comment).where(Comment.task_id == task_id).order_by(Comment.id))
    return [{"id": c.id, "user_id": c.user_id, "length": len(c.body)} for c in found]


def counts(session: Session) -> dict[str, int]:
    return {
        "projects": session.scalar(select(func.count(Project.id))) or 0,
        "tasks": session.scalar(select(func.count(Task.id))) or 0,
        "open": session.scalar(select(func.count(Task.id)).where(Task.status != "done")) or 0,
    }
