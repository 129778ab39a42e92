"""Servers that serve from processes they start afresh (uvicorn's ``--reload`` and
``--workers``) say so under ``elixirscope run``: those processes are not recorded, and a
run that records nothing without a word would be taken for a bug.
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


def _first_note(where, *options: str) -> list[str]:
    """stderr's lines until run's note (or two minutes of nothing); the run stopped."""
    server = serving(where, "-m", "uvicorn", "shop_app:app", "--host", "127.0.0.1",
                     "--port", "0", *options)
    try:
        return stderr_until(server, lambda seen: any(x.startswith("elixirscope run:") for x in seen))
    finally:
        stop(server, signal.SIGTERM)  # the run and what it started: its group


@pytest.mark.parametrize("options", [("--workers", "2"), ("--reload",)], ids=["workers", "reload"])
def test_uvicorns_fresh_processes_are_said_not_recorded(tmp_path, options) -> None:
    (tmp_path / "shop_app.py").write_text(APP)
    lines = _first_note(tmp_path, *options)
    notes = [line for line in lines if line.startswith("elixirscope run:")]
    assert notes == [
        "elixirscope run: uvicorn's --reload and --workers serve requests from processes it"
        " starts afresh, which are not recorded; run it as one process (without them)\n"
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
