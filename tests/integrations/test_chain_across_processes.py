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
import asyncio
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


async def slow(request):
    await asyncio.sleep(1.2)  # longer than its caller waits
    return JSONResponse({"late": True})


async def stop(request):
    SERVER.should_exit = True
    return PlainTextResponse("bye")


app = Starlette(routes=[Route("/sum/{n:int}", sum_to), Route("/slow", slow), Route("/stop", stop)])
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


IMPATIENT = r"""
import sys
import time

import httpx
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry


def ask(base):
    session = requests.Session()  # a read timeout retried once: two attempts
    session.mount("http://", HTTPAdapter(max_retries=Retry(total=1, read=1, backoff_factor=0)))
    try:
        session.get(base + "/slow", timeout=0.3)
    except requests.exceptions.ConnectionError:
        print("gave up")


def main(port):
    base = f"http://127.0.0.1:{port}"
    for n in range(6):  # the server's usual requests: quick
        httpx.get(base + f"/sum/{n}")
    ask(base)
    time.sleep(2.5)  # the server finishes the requests no one waits for
    httpx.get(base + "/stop")


main(sys.argv[1])
"""
"""A client that gives up on a slow request (its timeout) while the server goes on."""


def run(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "elixirscope", "run", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def serve_and_ask(
    tmp_path: Path, server_data: Path, client_data: Path, client_program: str = CLIENT
) -> str:
    """The server recorded into ``server_data``, the client into ``client_data``: what the
    client printed."""
    (tmp_path / "server.py").write_text(SERVER)
    (tmp_path / "client.py").write_text(client_program)
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
    server_run = re.search(r"run ([0-9a-f]{8}) server\.py", both[request]).group(1)
    assert latest.rstrip().endswith(
        f"(the chain continues in run {server_run} (server.py {argument_of(both[request])}): "
        "--all-runs shows it whole)"), latest
    # exported for Perfetto, an arrow from the client's attempt to the server's request
    import json

    from elixirscope.visualization.export import export_run

    export_run(str(data), "perfetto", str(tmp_path / "both.json"), all_runs=True)
    events = json.loads((tmp_path / "both.json").read_text())["traceEvents"]
    ends = {e["ph"]: e for e in events if e.get("cat") == "traceparent" and e["ph"] in "sf"}
    assert set(ends) == {"s", "f"} and ends["s"]["id"] == ends["f"]["id"]
    assert ends["s"]["pid"] != ends["f"]["pid"]  # from the client's process to the server's
    assert ends["s"]["ts"] <= ends["f"]["ts"]


def test_a_request_its_caller_gave_up_on_says_so_in_the_tree_and_the_finding(
    tmp_path: Path,
) -> None:
    """The client's attempt timed out after 0.3 s; the server's request ran 1.2 s: the tree
    across runs says how long it went on answering no one, and the slow request's finding
    says its caller gave up first (read from the client's run in the same data dir)."""
    from elixirscope.ai.insights import insights_report

    data = tmp_path / "data"
    assert serve_and_ask(tmp_path, data, data, IMPATIENT).split() == ["gave", "up"]
    attempts = [e for e in events(data, "http") if e["url"].endswith("/slow")]
    assert [a["attempt"] for a in attempts] == [1, 2]
    tree = calltree(data, attempts[0]["correlation_id"], "--all-runs").splitlines()
    requests = [line for line in tree if "request GET /slow -> 200" in line]
    assert len(requests) == 2
    for request in requests:
        assert "[its caller's attempt timed out after 3" in request, request
        assert re.search(r"this ran (\d+\.\d+|\d+) ms more, answering no one\]", request)
    runs = {r["command"][0]: r["id"] for r in _runs(data)}
    found = insights_report(data, run=runs["server.py"])["findings"]
    (slow,) = [f for f in found if f["kind"] == "slow_request"]
    assert "Its caller gave up first: its attempt (GET http://127.0.0.1:" in slow["explanation"]
    assert "/slow from client.py) timed out after 3" in slow["explanation"]
    # and the caller's retried call says what the service did with each attempt
    found = insights_report(data, run=runs["client.py"])["findings"]
    (retried,) = [f for f in found if f["kind"] == "retried_call"]
    said = " ".join(retried["explanation"].split())
    assert "The service called was recorded too (server.py): its GET /slow took" in said
    assert re.search(r"1: 1\d\d\d ms \(\d+ ms after the caller gave up\); 2: 1\d\d\d ms", said), said


def _runs(data: Path) -> list[dict]:
    import json

    done = subprocess.run([sys.executable, "-m", "elixirscope", "runs", "--data-dir", str(data),
                           "--json"], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)["runs"]


def argument_of(line: str) -> str:
    """The argument a server's run was given (its port file), from a tree's label."""
    return re.search(r"server\.py (\S+),", line).group(1)
