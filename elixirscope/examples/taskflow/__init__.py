"""TaskFlow: the seeds' sample application, a task manager to record end to end.

This is the issue's ``examples/taskflow/``, shipped inside the package so
``elixirscope demo taskflow`` works from an installed wheel. A Starlette JSON
API (users, projects, tasks, comments) and a WebSocket dashboard (``app``),
SQLAlchemy models on SQLite by default or PostgreSQL (``models``,
``queries``), and actors on ``elixirscope.runtime`` in the web process
(``actors``, ``gateway``): TaskManager, ProjectSupervisor with
``simple_one_for_one`` ProjectWorkers, NotificationService (pub/sub through
the registry's dispatch), ReportGenerator, and an EmailClient calling a local
mock mail service over httpx (``mail``).

Planted on purpose, for a recording to show:

- an N+1: ``GET /api/projects/with-tasks`` runs one query for the projects and
  one per project for its tasks (``queries.projects_with_tasks``'s loop);
- a race: ``POST /api/tasks/{id}/assign`` reads the task, checks it is free,
  waits for the workload check, then writes; two concurrent requests both
  pass the check, both answer 200, the later write wins and the
  TaskManager's state shows the first assignment overwritten;
- a crash: ``POST /api/projects/{id}/estimate`` with ``hours_per_day: 0``
  divides by zero in the ProjectWorker; its supervisor restarts it and the
  request answers 422;
- a timing-out email call with retries: when the mail service hangs (or
  fails), each of ``mail.ATTEMPTS`` attempts times out after
  ``mail.TIMEOUT_S`` and is tried again;
- a slow report: ``GET /api/reports/projects`` renders each project's row
  slowly (``actors.SLOW_ROW_S``);
- and a plain bug: ``GET /api/users/{id}/summary`` of an unknown user is a 500.

Run it: ``python -m elixirscope.examples.taskflow serve --port 0`` (prints its
URL first), ``... mail --port 0`` for the mail service; record it with
``elixirscope run -m elixirscope.examples.taskflow serve ...`` or see it all
with ``elixirscope demo taskflow``.
"""
