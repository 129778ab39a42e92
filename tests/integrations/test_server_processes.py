"""Servers that serve from processes they start afresh (uvicorn's ``--reload`` and
``--workers``) say so under ``elixirscope run``: those processes are not recorded, and a
run that records nothing without a word would be taken for a bug.
(Django's autoreloader: ``test_db_django``.)"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys

import pytest

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
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELIXIRSCOPE_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "elixirscope", "run", "--data-dir", str(where / "data"),
         "-m", "uvicorn", "shop_app:app", "--host", "127.0.0.1", "--port", "0", *options],
        cwd=where, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    lines: list[str] = []
    try:
        while not any(line.startswith("elixirscope run:") for line in lines):
            ready, _, _ = select.select([server.stderr], [], [], 120)
            line = server.stderr.readline() if ready else ""
            if not line:  # nothing for two minutes, or it ended
                break
            lines.append(line)
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the run and what it started: its group
        try:
            server.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # a child started just after the signal
            os.killpg(server.pid, signal.SIGKILL)
            server.communicate(timeout=120)
    return lines


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
    import socket
    import time
    import urllib.request

    from recorded_programs import events

    (tmp_path / "hi_app.py").write_text(FLASK_APP)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELIXIRSCOPE_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "elixirscope", "run", "--data-dir", str(tmp_path / "data"),
         "-m", "flask", "--app", "hi_app", "run", "--port", str(port)],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline, answer = time.monotonic() + 120, None
        while answer is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/hi/ada", timeout=10) as got:
                    answer = got.read()
            except OSError:
                time.sleep(0.2)
        assert answer is not None and b'"ada"' in answer, server.poll()
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C: the server stops, elixirscope run flushes
        server.communicate(timeout=120)
    (end,) = [e for e in events(tmp_path / "data") if e["type"] == "reqend"]
    assert (end["path"], end["route"], end["status"]) == ("/hi/ada", "/hi/<name>", 200)
