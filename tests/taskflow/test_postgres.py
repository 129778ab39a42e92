"""TaskFlow on PostgreSQL (a real throwaway cluster, never a mock; skipped, saying
why, when none can start): the N+1, the race and registration recorded the same
way, and a database connection that disappears in the middle of the slow report."""

from __future__ import annotations

import asyncio
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from taskflow_server import Served, TaskFlowServer
from test_concurrency import _both
from test_performance import loop_line
from waiting import wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integrations"))
from postgres import PostgresServer, server_or_skip  # noqa: E402


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for this module (skips, saying why, without one)."""
    server = server_or_skip()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def on_postgres(
    tmp_path_factory: pytest.TempPathFactory, pg: PostgresServer, mail: Served
) -> Iterator[TaskFlowServer]:
    server = TaskFlowServer.start(
        tmp_path_factory.mktemp("pg"), recorded=True, mail_url=mail.url, database=pg.url
    )
    # more projects: more moments in the slow report for the database to vanish in
    server.created = [  # type: ignore[attr-defined]
        server.client.post("/api/projects", json={"name": f"pg {i}", "owner_id": 1})
        for i in range(4)
    ]
    yield server
    assert server.stop() == 0, server.served.log.read_text()


@pytest.fixture(scope="module")
def plain_on_postgres(
    tmp_path_factory: pytest.TempPathFactory, pg: PostgresServer, mail: Served
) -> Iterator[TaskFlowServer]:
    server = TaskFlowServer.start(
        tmp_path_factory.mktemp("pg-plain"), recorded=False, mail_url=mail.url, database=pg.url
    )
    yield server
    server.stop()


def test_the_n_plus_one_on_postgresql(on_postgres: TaskFlowServer) -> None:
    response = on_postgres.client.get("/api/projects/with-tasks")
    n = len(response.json())
    chain = on_postgres.recorded(response)
    queries = chain.of("query")
    assert len(queries) == 1 + n
    assert {q["system"] for q in queries} == {"postgresql"}
    # recorded at the driver, by the psycopg integration
    assert {q["source"] for q in queries} == {"psycopg"}
    assert all(q["database"].startswith("postgresql://postgres@127.0.0.1:") for q in queries)
    assert all("FROM tasks" in q["statement"] for q in queries[1:])
    assert [q["line"] for q in queries[1:]] == [loop_line()] * n


def test_creating_a_project_starts_its_worker_under_the_project_supervisor(
    on_postgres: TaskFlowServer,
) -> None:
    response = on_postgres.created[-1]  # type: ignore[attr-defined]
    assert response.status_code == 201
    chain = on_postgres.recorded(response)
    (spawn,) = chain.of("spawn")
    assert spawn["supervisor"] == "taskflow/projects"
    (init,) = chain.calls("ProjectWorker.init")
    assert init["args"]["args"] == f"[{response.json()['id']}]"
    assert [q["statement"].split()[0] for q in chain.of("query")] == ["INSERT"]


def test_a_registration_on_postgresql_inserts_and_commits(on_postgres: TaskFlowServer) -> None:
    email = f"{uuid.uuid4().hex[:8]}@taskflow.test"
    response = on_postgres.client.post("/api/users", json={"email": email, "username": "pg"})
    assert response.status_code == 201
    chain = on_postgres.recorded(response)
    statements = [q["statement"].split()[0] for q in chain.of("query")]
    assert statements == ["SELECT", "INSERT"]
    assert [t["action"] for t in chain.of("tx")][-1] == "commit"
    assert email not in str(chain.of("query"))  # parameters redacted


def test_the_race_on_postgresql(on_postgres: TaskFlowServer) -> None:
    task = on_postgres.client.post("/api/projects/2/tasks", json={"title": "pg race"}).json()
    responses = asyncio.run(_both(on_postgres.url, task["id"]))
    assert [r.status_code for r in responses] == [200, 200]
    chains = [on_postgres.recorded(r) for r in responses]
    reads = [
        q["ts"]
        for c in chains
        for q in c.of("query")
        if q["statement"].startswith("SELECT tasks.id")
    ]
    writes = [
        q["ts"] for c in chains for q in c.of("query") if q["statement"].startswith("UPDATE tasks")
    ]
    assert len(reads) == len(writes) == 2 and max(reads) < min(writes)


def _report_losing_its_database(server: TaskFlowServer, pg: PostgresServer) -> httpx.Response:
    """Ask for the slow report; while its transaction is open between two queries,
    terminate its connection (the database disappears under it)."""
    import psycopg

    answer: dict[str, Any] = {}
    asking = threading.Thread(
        target=lambda: answer.setdefault("r", server.client.get("/api/reports/projects"))
    )
    asking.start()
    with psycopg.connect(pg.dsn, autocommit=True) as admin:

        def in_the_report() -> list[tuple[Any, ...]]:
            return admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE state = 'idle in transaction' "
                "AND query LIKE 'SELECT tasks.%%'"
            ).fetchall()

        (pid,) = wait_until(in_the_report, interval=0.005)[0]  # type: ignore[index]
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    asking.join()
    return answer["r"]


def test_a_database_that_disappears_mid_report_is_a_503_and_recorded(
    on_postgres: TaskFlowServer, plain_on_postgres: TaskFlowServer, pg: PostgresServer
) -> None:
    recorded = _report_losing_its_database(on_postgres, pg)
    unrecorded = _report_losing_its_database(plain_on_postgres, pg)
    assert recorded.status_code == unrecorded.status_code == 503, (recorded.text, unrecorded.text)
    assert (
        recorded.json()["error"].split(":")[0]
        == unrecorded.json()["error"].split(":")[0]
        == ("database unavailable")
    )
    chain = on_postgres.recorded(recorded)
    failed = [q for q in chain.of("query") if q["error"]]
    assert len(failed) == 1 and failed[0]["statement"].startswith("SELECT tasks.")
    assert "terminat" in failed[0]["error"] or "closed" in failed[0]["error"]
    ok = [q for q in chain.of("query") if not q["error"]]
    assert ok and all(q["ts"] < failed[0]["ts"] for q in ok)  # what ran before it went away
    assert chain.end["status"] == 503


def test_the_app_and_its_recording_carry_on_after_the_database_came_back(
    on_postgres: TaskFlowServer,
) -> None:
    response = on_postgres.client.get("/api/reports/projects")
    assert response.status_code == 200, response.text
    assert on_postgres.recorded(response).end["status"] == 200
