"""Servers that serve from processes they start afresh (uvicorn's ``--reload`` and
``--workers``) are recorded whole under ``elixirscope run``: those processes join the run
(``cli.children``); with ``capture.record_children = false`` they are not, and run says
so — a run that records nothing without a word would be taken for a bug.
(Django's autoreloader: ``test_db_django``.)"""

from __future__ import annotations

import signal

import pytest
from recorded_programs import events, fetch_when_up, free_port, serving, stderr_until, stop

APP = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def hello(request):
    return PlainTextResponse("hello")


app = Starlette(routes=[Route("/", hello)])
"""
SERVER_OPTIONS = [("--workers", "2"), ("--reload",)]


@pytest.mark.parametrize("options", SERVER_OPTIONS, ids=["workers", "reload"])
def test_uvicorns_fresh_processes_are_recorded_into_the_run(tmp_path, options) -> None:
    (tmp_path / "shop_app.py").write_text(APP)
    port = free_port()
    server = serving(tmp_path, "--trace", "shop_app.*", "-m", "uvicorn", "shop_app:app",
                     "--host", "127.0.0.1", "--port", str(port), *options)
    seen: list[str] = []
    try:
        answer = fetch_when_up(server, f"http://127.0.0.1:{port}/")
        assert answer == b"hello", server.poll()
        if "--workers" in options:  # every worker up: Ctrl-C in one's start is python's error
            seen = _read_until_started(server, 2)
    finally:
        _, err = stop(server, signal.SIGINT)  # Ctrl-C: uvicorn stops its children, all flush
    err = "".join(seen) + err
    # no note, and no warning that shop_app.* matched nothing: it matched in the children
    assert "elixirscope" not in err, err
    evs = events(tmp_path / "data")
    (end,) = [e for e in evs if e["type"] == "reqend"]
    assert (end["path"], end["route"], end["status"]) == ("/", "/", 200)
    assert end["pid"] != server.pid and end["program"] == "uvicorn (multiprocessing)"
    (call,) = [e for e in evs if e["type"] == "call" and e["function"] == "shop_app.hello"]
    assert (call["pid"], call["correlation_id"]) == (end["pid"], end["correlation_id"])
    assert any(e["pid"] == server.pid for e in evs)  # the run's own process: one run, read whole
    # the child's last events too: uvicorn ends it by SIGTERM once it has shut down
    assert any(e["pid"] == end["pid"] and e["type"] == "return" and e["ts"] > end["ts"] for e in evs)


def _read_until_started(server, workers: int) -> list[str]:  # noqa: ANN001
    """The server's stderr, read off its pipe (no buffer left behind for ``communicate``),
    until ``workers`` workers said their application started (or two minutes went by)."""
    import os
    import select
    import time

    fd, got, until = server.stderr.fileno(), b"", time.monotonic() + 120
    while got.count(b"Application startup complete") < workers and time.monotonic() < until:
        ready, _, _ = select.select([fd], [], [], 1)
        chunk = os.read(fd, 65536) if ready else b""
        if ready and not chunk:
            break  # its end
        got += chunk
    return [got.decode(errors="replace")]


def _first_note(where, *options: str) -> list[str]:
    """stderr's lines until run's note (or two minutes of nothing); the run stopped."""
    server = serving(where, "-m", "uvicorn", "shop_app:app", "--host", "127.0.0.1",
                     "--port", "0", *options, env={"ELIXIRSCOPE_CAPTURE__RECORD_CHILDREN": "false"})
    try:
        return stderr_until(server, lambda seen: any(x.startswith("elixirscope run:") for x in seen))
    finally:
        stop(server, signal.SIGTERM)  # the run and what it started: its group


@pytest.mark.parametrize("options", SERVER_OPTIONS, ids=["workers", "reload"])
def test_uvicorns_fresh_processes_unrecorded_are_said(tmp_path, options) -> None:
    (tmp_path / "shop_app.py").write_text(APP)
    lines = _first_note(tmp_path, *options)
    notes = [line for line in lines if line.startswith("elixirscope run:")]
    assert notes == [
        "elixirscope run: uvicorn's --reload and --workers serve requests from processes it"
        " starts afresh, which are not recorded with capture.record_children = false; run it"
        " as one process (without them)\n"
    ], lines


FLASK_APP = """
from flask import Flask

app = Flask(__name__)


@app.get("/hi/<name>")
def hi(name):
    return {"hi": name}
"""


def test_flask_run_as_the_program_records_its_requests(tmp_path) -> None:
    """``elixirscope run -m flask run``: Flask is the program (its modules instrumented) and
    the Flask integration still wraps it."""
    (tmp_path / "hi_app.py").write_text(FLASK_APP)
    port = free_port()
    server = serving(tmp_path, "-m", "flask", "--app", "hi_app", "run", "--port", str(port))
    try:
        answer = fetch_when_up(server, f"http://127.0.0.1:{port}/hi/ada")
        assert answer is not None and b'"ada"' in answer, server.poll()
    finally:
        stop(server, signal.SIGINT)  # Ctrl-C: the server stops, elixirscope run flushes
    (end,) = [e for e in events(tmp_path / "data") if e["type"] == "reqend"]
    assert (end["path"], end["route"], end["status"]) == ("/hi/ada", "/hi/<name>", 200)
