"""Two recorded processes, a client and a server: the server's request joins the
client's chain through ``traceparent``, and answers with the chain's ids."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from waiting import wait_until
from web_programs import calltree, events

SERVER = r"""
import socket
import sys
import threading

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


def total(n):
    return sum(range(n))


async def sum_to(request):
    return JSONResponse({"total": total(int(request.path_params["n"]))})


async def stop(request):
    SERVER.should_exit = True
    return PlainTextResponse("bye")


app = Starlette(routes=[Route("/sum/{n:int}", sum_to), Route("/stop", stop)])
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
SERVER = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(sock.getsockname()[1]))
__import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
SERVER.run(sockets=[sock])
"""

CLIENT = r"""
import sys

import httpx


def ask(base):
    response = httpx.get(base + "/sum/10")
    print(response.json()["total"], response.headers["x-correlation-id"], response.headers["traceparent"])


def main(port):
    base = f"http://127.0.0.1:{port}"
    ask(base)
    httpx.get(base + "/stop")


main(sys.argv[1])
"""


def run(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "elixirscope", "run", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def serve_and_ask(tmp_path: Path, server_data: Path, client_data: Path) -> str:
    """The server recorded into ``server_data``, the client into ``client_data``: what the
    client printed."""
    (tmp_path / "server.py").write_text(SERVER)
    (tmp_path / "client.py").write_text(CLIENT)
    port_file = tmp_path / "port"
    server = run("--data-dir", str(server_data), "server.py", str(port_file), cwd=tmp_path)
    try:
        wait_until(lambda: port_file.exists() or server.poll() is not None, timeout=60)
        assert port_file.exists(), server.communicate()[1]
        client = run("--data-dir", str(client_data), "client.py", port_file.read_text(), cwd=tmp_path)
        out, err = client.communicate(timeout=120)
        assert client.returncode == 0, err
        _server_out, server_err = server.communicate(timeout=120)
        assert server.returncode == 0, server_err
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return out


def test_the_server_joins_the_clients_chain(tmp_path: Path) -> None:
    out = serve_and_ask(tmp_path, tmp_path / "server-data", tmp_path / "client-data")
    total, correlation, traceparent = out.split()
    assert total == "45"
    (call,) = [e for e in events(tmp_path / "client-data", "http") if e["url"].endswith("/sum/10")]
    (start,) = [e for e in events(tmp_path / "server-data", "req") if e["path"] == "/sum/10"]
    # one chain across the two processes: the client's own chain id
    assert call["correlation_id"] == start["correlation_id"] == correlation
    assert start["parent_span"] == call["span_id"] and start["trace_id"] == call["trace_id"]
    assert traceparent == f"00-{call['trace_id']}-{start['span_id']}-01"
    served = calltree(tmp_path / "server-data", correlation)
    assert "request GET /sum/{n:int} -> 200" in served and "total()" in served
    asked = calltree(tmp_path / "client-data", correlation)
    assert "ask()" in asked and "http GET http://127.0.0.1:" in asked


def test_one_data_dir_s_call_tree_follows_the_chain_across_runs_and_says_where(
    tmp_path: Path,
) -> None:
    """Both recorded into one data dir (two runs): ``calltree --all-runs`` shows the
    server's request under the client's call that sent it, each part naming its process
    and run; within one run, the tree is the client's alone."""
    data = tmp_path / "data"
    _total, correlation, _tp = serve_and_ask(tmp_path, data, data).split()
    both = calltree(data, correlation, "--all-runs").splitlines()
    (ask,) = [i for i, line in enumerate(both) if line.startswith("  ask(")]
    (request,) = [i for i, line in enumerate(both) if "request GET /sum/{n:int}" in line]
    assert request > ask and both[request].startswith("    request ")  # under ask()
    assert re.search(r"\{process pid \d+, run [0-9a-f]{8} client\.py \d+, thread ", both[ask - 1])
    assert re.search(r"\{process pid \d+, run [0-9a-f]{8} server\.py \S+, thread ", both[request])
    assert "sum_to()" in both[request + 2] and "total()" in both[request + 3]
    latest = calltree(data, correlation)
    assert "ask()" in latest and "request GET" not in latest and "process pid" not in latest
