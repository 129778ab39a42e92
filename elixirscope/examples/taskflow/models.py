"""TaskFlow's tables: users, projects, tasks and comments (SQLAlchemy ORM).

The same models run on SQLite (the default: a file, or ``sqlite://`` in
memory) and on PostgreSQL (``postgresql://...``, through psycopg 3).
``Project.tasks`` loads lazily on purpose: reading it in a loop over projects
is the N+1 of :func:`elixirscope.examples.taskflow.queries.projects_with_tasks`.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text, create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.pool import StaticPool

__all__ = ["Base", "Comment", "Project", "Task", "User", "engine_for", "seed", "shared_engine"]


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)
    username: Mapped[str] = mapped_column(String(80))


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="active")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    tasks: Mapped[list[Task]] = relationship(back_populates="project", order_by="Task.id")


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="todo")
    priority: Mapped[str] = mapped_column(String(10), default="medium")
    hours: Mapped[int] = mapped_column(default=1)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    project: Mapped[Project] = relationship(back_populates="tasks")


class Comment(Base):
    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))


def engine_for(url: str) -> Engine:
    """An engine for ``url``; SQLite is shared by the event loop and the actors' thread."""
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        return create_engine(
            url,
            connect_args={"check_same_thread": False},
            **({"poolclass": StaticPool} if memory else {}),  # one in-memory database
        )
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_pre_ping=True)  # a connection the server dropped is replaced


USERS = [
    ("ada@taskflow.test", "ada"),
    ("grace@taskflow.test", "grace"),
    ("linus@taskflow.test", "linus"),
]
PROJECTS = ["apollo", "gemini", "mercury", "voyager"]
TASKS_PER_PROJECT = 5


def seed(engine: Engine) -> None:
    """Create the tables and, when there are no users yet, a small team's work."""
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        if session.scalar(select(User.id).limit(1)) is not None:
            return
        users = [User(email=email, username=name) for email, name in USERS]
        session.add_all(users)
        session.flush()
        for n, name in enumerate(PROJECTS):
            project = Project(name=name, owner_id=users[n % len(users)].id)
            project.tasks = [
                Task(title=f"{name} step {i}", hours=i + 1) for i in range(TASKS_PER_PROJECT)
            ]
            session.add(project)


_ENGINES: dict[str, Engine] = {}


def shared_engine(url: str) -> Engine:
    """One engine per URL in this process: the web layer and the actors share its pool."""
    engine = _ENGINES.get(url)
    if engine is None:
        engine = _ENGINES[url] = engine_for(url)
    return engine
