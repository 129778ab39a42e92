"""002 §2: the N+1 as 1 + N queries under one request, from the loop's line, and
the slow report, read back through the Python API and ESQL."""

from __future__ import annotations

import inspect

from taskflow_server import TaskFlowServer

from elixirscope.examples.taskflow import actors, queries
from elixirscope.query import call_tree, esql

TASKS_QUERY = "FROM tasks \nWHERE ? = tasks.project_id"


def loop_line() -> int:
    """The line of ``projects_with_tasks`` that reads ``project.tasks``."""
    source, first = inspect.getsourcelines(queries.projects_with_tasks)
    (offset,) = [i for i, line in enumerate(source) if "project.tasks" in line]
    return first + offset


def test_the_n_plus_one_is_one_query_for_the_projects_and_one_per_project(
    taskflow: TaskFlowServer,
) -> None:
    response = taskflow.client.get("/api/projects/with-tasks")
    assert response.status_code == 200
    n = len(response.json())
    chain = taskflow.recorded(response)
    (handler,) = chain.calls("queries.projects_with_tasks")
    inside = [e for e in chain.under(handler) if e["type"] == "query"]
    assert len(inside) == 1 + n == len(chain.of("query"))
    assert inside[0]["statement"].startswith("SELECT projects.id")
    assert all(TASKS_QUERY in q["statement"] for q in inside[1:])
    assert all(q["parameters"] == "(<redacted>,)" for q in inside[1:])


def test_the_call_tree_shows_the_queries_in_place_under_the_call_that_ran_them(
    taskflow: TaskFlowServer,
) -> None:
    response = taskflow.client.get("/api/projects/with-tasks")
    taskflow.recorded(response)
    roots = call_tree(taskflow.data_dir, response.headers["x-correlation-id"])
    (request,) = [r for r in roots if r.function == "elixirscope.web.request"]
    handler = next(c for c in request.children if c.function.endswith("projects_with_tasks"))
    data = next(c for c in handler.children if c.function.endswith("queries.projects_with_tasks"))
    in_place = [e.type for e in data.events if e.type in ("query", "call")]
    assert in_place.count("query") == 1 + len(response.json())
    assert [c.function.rsplit(".", 1)[-1] for c in data.children][:2] == ["task_json"] * 2


def test_the_n_queries_come_from_the_loops_line(taskflow: TaskFlowServer) -> None:
    response = taskflow.client.get("/api/projects/with-tasks")
    chain = taskflow.recorded(response)
    per_project = [q for q in chain.of("query") if TASKS_QUERY in q["statement"]]
    assert {(q["file"].rsplit("/", 2)[-2:][1], q["line"]) for q in per_project} == {
        ("queries.py", loop_line())
    }
    assert {q["caller"] for q in per_project} == {
        "elixirscope.examples.taskflow.queries.projects_with_tasks"
    }


def test_esql_counts_the_n_plus_one_by_line_for_one_request(taskflow: TaskFlowServer) -> None:
    response = taskflow.client.get("/api/projects/with-tasks")
    n = len(response.json())
    chain = taskflow.recorded(response)
    rows = list(
        esql.run(
            f"line, count(*) from queries where chain = '{chain.cid}' group by line",
            data_dir=taskflow.data_dir,
        )
    )
    counts = {row["line"]: row["count(*)"] for row in rows}
    assert counts[loop_line()] == n and sum(counts.values()) == 1 + n


def test_listing_projects_without_their_tasks_is_one_query(taskflow: TaskFlowServer) -> None:
    chain = taskflow.recorded(taskflow.client.get("/api/projects"))
    (query,) = chain.of("query")
    assert query["statement"].startswith("SELECT projects.id")


def test_the_slow_report_shows_where_its_time_goes(taskflow: TaskFlowServer) -> None:
    response = taskflow.client.get("/api/reports/projects")
    assert response.status_code == 200
    rows = response.json()
    chain = taskflow.recorded(response)
    renders = chain.calls("actors.render_row")
    assert len(renders) == len(rows)
    durations = {r["call_id"]: r["duration_ns"] for r in chain.of("return")}
    slow_ns = int(actors.SLOW_ROW_S * 1e9)
    assert all(durations[r["id"]] >= slow_ns for r in renders)
    assert chain.end["duration_ns"] >= slow_ns * len(rows)
    (generator,) = chain.calls("ReportGenerator.handle_call")
    queries_inside = [e for e in chain.under(generator) if e["type"] == "query"]
    assert len(queries_inside) == 1 + len(rows)  # the report has its own 1 + N


def test_esql_ranks_the_reports_functions_by_time(taskflow: TaskFlowServer) -> None:
    chain = taskflow.recorded(taskflow.client.get("/api/reports/projects"))
    rows = list(
        esql.run(
            f"function, count(*), sum(duration) from calls where chain = '{chain.cid}' "
            "group by function order by sum desc",
            data_dir=taskflow.data_dir,
        )
    )
    names = [row["function"].rsplit(".", 1)[-1] for row in rows]
    callers = {"request", "project_report", "call", "run", "handle_call", "<lambda>"}
    assert [n for n in names if n not in callers][0] == "render_row"  # the time is there
