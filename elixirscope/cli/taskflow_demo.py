"""``elixirscope demo taskflow``: record TaskFlow serving a scripted session, then say what happened.

It starts the mock mail service, then TaskFlow under ``elixirscope run`` as a
user would (a subprocess, the embedded pipeline, a data dir), drives the
session of :mod:`elixirscope.examples.taskflow.session` over real HTTP (one
request for each planted defect), stops the server (SIGINT, as Ctrl-C) and
reads the event store back: every request with its query count, then the
N+1, the race, the crash and restart, the retries, the slow report and the
500, each from the events of its own request's chain; and the commands to
look further. Nothing shown is scripted but the requests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from elixirscope.query.calltree import format_duration
from elixirscope.query.reading import events

__all__ = ["run_taskflow_demo"]

TRACE = "elixirscope.examples.taskflow.*"
APP = "elixirscope.examples.taskflow"
STOP_WAIT_S = 30.0


class _Served:
    """A subprocess that prints its URL first (``serve`` or ``mail`` of TaskFlow)."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        self.log = log

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


NEEDS = ("starlette", "uvicorn", "websockets", "httpx", "sqlalchemy")


def run_taskflow_demo(data_dir: str | None = None, out: TextIO = sys.stdout) -> int:
    import importlib.util

    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"elixirscope demo taskflow: TaskFlow needs {', '.join(missing)}; "
            "pip install 'elixirscope[taskflow]'",
            file=sys.stderr,
        )
        return 2
    from elixirscope.examples.taskflow.session import drive

    where = Path(data_dir or tempfile.mkdtemp(prefix="elixirscope-taskflow-"))
    where.mkdir(parents=True, exist_ok=True)
    mail = _Served([sys.executable, "-m", APP, "mail", "--port", "0"], where / "mail.log")
    if not mail.url.startswith("http://"):
        out.write(f"the mock mail service did not start; see {mail.log}\n")
        mail.stop()
        return 1
    database = f"sqlite:///{where / 'taskflow.db'}"
    serve = ["serve", "--port", "0", "--database", database, "--mail-url", mail.url]
    out.write(
        f"$ elixirscope run --data-dir {where} --trace '{TRACE}' --level args "
        f"-m {APP} {' '.join(serve)}\n"
    )
    out.flush()
    command = [sys.executable, "-m", "elixirscope", "run", "--data-dir", str(where)]
    command += ["--trace", TRACE, "--level", "args", "-m", APP, *serve]
    server = _Served(command, where / "server.log")
    try:
        if not server.url.startswith("http://"):
            out.write(f"TaskFlow did not start; see {server.log}\n")
            return 1
        out.write(f"TaskFlow is serving on {server.url}; the session:\n")
        chains = drive(server.url, mail.url, lambda line: out.write(f"  {line}\n"))
    finally:
        status = server.stop()
        mail.stop()
    if status != 0:
        out.write(f"the recorded server exited with status {status}; see {server.log}\n")
        return 1
    out.write("\n" + summary(str(where), chains) + "\n")
    return 0


def summary(data_dir: str, chains: dict[str, str]) -> str:
    """What the recording under ``data_dir`` says about the session's requests."""
    recorded = [e.to_dict() for e in events(data_dir, limit=None)]
    by_chain: dict[str, list[dict[str, Any]]] = {}
    for e in recorded:
        if e.get("correlation_id"):
            by_chain.setdefault(e["correlation_id"], []).append(e)
    lines = [f"Recorded: {len(recorded)} events. The requests, with the queries each ran:"]
    lines.append(f"  {'status':>6}  {'duration':>9}  {'queries':>7}  request")
    ends = sorted((e for e in recorded if e["type"] == "reqend"), key=lambda e: e["ts"])
    for end in ends:
        queries = sum(1 for e in by_chain.get(end["correlation_id"], ()) if e["type"] == "query")
        lines.append(
            f"  {end['status']:>6}  {format_duration(end['duration_ns']):>9}  {queries:>7}  "
            f"{end['method']} {end['path']}"
        )
    sections = (
        (_n_plus_one, "n_plus_one"),
        (_race, "race_1"),
        (_crash, "crash"),
        (_retries, "retries"),
        (_report, "report"),
        (_error, "error"),
    )
    for section, name in sections:
        found = by_chain.get(chains.get(name, ""), [])
        if found:
            lines += ["", *section(found, by_chain.get(chains.get("race_2", ""), []))]
    n1 = chains.get("n_plus_one", "CORRELATION_ID")
    lines += [
        "",
        "Look further:",
        f"  elixirscope calltree --data-dir {data_dir} {n1}",
        f"  elixirscope query --data-dir {data_dir} \"line, count(*) from queries where chain = '{n1}' group by line\"",
        f"  elixirscope query --data-dir {data_dir} \"states of 'task_manager'\"",
        f'  elixirscope query --data-dir {data_dir} "http where attempt > 1"',
        f'  elixirscope query --data-dir {data_dir} "restarts"',
        f'  elixirscope query --data-dir {data_dir} "endpoint, count(*), p95(duration) from requests group by endpoint"',
    ]
    return "\n".join(lines)


def _of(found: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return sorted((e for e in found if e["type"] == kind), key=lambda e: e["ts"])


def _title(found: list[dict[str, Any]], what: str) -> str:
    (end,) = _of(found, "reqend") or [{"method": "?", "path": "?", "status": 0}]
    return f"{what} ({end['method']} {end['path']} -> {end['status']}):"


def _n_plus_one(found: list[dict[str, Any]], _: Any) -> list[str]:
    queries = _of(found, "query")
    shapes = Counter(
        (os.path.basename(q["file"] or "?"), q["line"], q["statement"].split("\n")[0][:40])
        for q in queries
    )
    lines = [_title(found, f"The N+1: {len(queries)} queries in one request")]
    for (file, line, start), n in shapes.items():
        lines.append(f"  {n} x {file}:{line}  {start}...")
    return lines


def _race(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[str]:
    both = [first, second] if second else [first]
    reads = [
        q["ts"] for f in both for q in _of(f, "query") if q["statement"].startswith("SELECT tasks")
    ]
    writes = [q["ts"] for f in both for q in _of(f, "query") if q["statement"].startswith("UPDATE")]
    statuses = " and ".join(str(_of(f, "reqend")[0]["status"]) for f in both if _of(f, "reqend"))
    lines = [_title(first, f"The race: two assignments at once, answered {statuses}")]
    if reads and writes:
        order = "before" if max(reads) < min(writes) else "not all before"
        lines.append(f"  both read the task {order} either wrote it (read-modify-write)")
    states = sorted(
        (
            s
            for f in both
            for s in _of(f, "state")
            if s["actor"] == "taskflow/task_manager" and s["message"].startswith("('assign'")
        ),
        key=lambda s: s["ts"],
    )
    for s in states:
        changes = "; ".join(_delta_text(d) for d in s["delta"] or ())
        lines.append(f"  {s['actor']} after {s['message']}: {changes}")
    return lines


def _delta_text(delta: dict[str, Any]) -> str:
    if delta.get("op") == "set":
        return f"{delta['path']}: {delta['old']!r} -> {delta['new']!r}"
    if delta.get("op") == "add":
        return f"+ {delta['path']}: {delta['new']!r}"
    return f"{delta.get('op')} {delta['path']}"


def _crash(found: list[dict[str, Any]], _: Any) -> list[str]:
    lines = [_title(found, "The crash and the restart")]
    raised = _of(found, "exception")
    if raised:
        x = raised[0]
        where = x["traceback"][-1].rsplit(":", 2)[0] if x["traceback"] else "?"
        where = where.split("elixirscope/", 1)[-1]
        lines.append(
            f"  {x['exc_type']}: {x['message']}  raised at elixirscope/{where}:{x['line']} "
            f"in {x['function'].rsplit('.', 1)[-1]}"
        )
    for e in _of(found, "exit") + _of(found, "restart"):
        lines.append(f"  {e['type']:<8} {e['path']}: {e['reason']}")
    return lines


def _retries(found: list[dict[str, Any]], _: Any) -> list[str]:
    lines = [_title(found, "The retries: each attempt at the mail service")]
    for a in _of(found, "http"):
        outcome = "timed out" if a["timeout"] else f"-> {a['status']}"
        lines.append(
            f"  attempt {a['attempt']}  {a['method']} {a['url']}  {outcome}  "
            f"[{format_duration(a['duration_ns'])}]"
        )
    return lines


def _report(found: list[dict[str, Any]], _: Any) -> list[str]:
    ends = {e["call_id"]: e for e in found if e["type"] == "return"}
    rows = [c for c in _of(found, "call") if c["function"].endswith(".render_row")]
    spent = sum(ends[c["id"]]["duration_ns"] for c in rows if c["id"] in ends)
    (end,) = _of(found, "reqend")
    return [
        _title(found, f"The slow report: {format_duration(end['duration_ns'])}"),
        f"  {len(rows)} x render_row: {format_duration(spent)} of it",
    ]


def _error(found: list[dict[str, Any]], _: Any) -> list[str]:
    (end,) = _of(found, "reqend")
    return [_title(found, "The 500"), f"  {end['exc_type']}: {end['message']}"]
