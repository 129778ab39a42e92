"""ESQL's ``websockets`` source (and ``events where kind = 'ws'``) over a recorded WebSocket
echo served by uvicorn; and ``status`` on requests and http, which is ``code`` there."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from esql_recordings import elixirscope

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from served_program import SERVED  # noqa: E402

from elixirscope.query import esql  # noqa: E402

PROGRAM = textwrap.dedent(
    """
    import socket
    import threading
    import time

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route, WebSocketRoute


    async def echo(ws):
        await ws.accept()
        while True:
            text = await ws.receive_text()
            if text == "bye":
                await ws.close(code=4000)
                return
            await ws.send_text(text.upper() + "!")


    async def boom(request):
        return PlainTextResponse("no", status_code=500)


    app = Starlette(routes=[WebSocketRoute("/ws/{room}", echo), Route("/boom", boom)])


    def client(url):
        import httpx
        from websockets.sync.client import connect

        httpx.get(url + "/boom")
        with connect(url.replace("http", "ws") + "/ws/7") as ws:
            for text in ("hello", "héllo"):
                ws.send(text)
                ws.recv()
            ws.send("bye")
            try:
                ws.recv()
            except Exception:
                pass
    """
) + SERVED


@pytest.fixture(scope="module")
def ws_data(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("esql-ws")
    (where / "ws_prog.py").write_text(PROGRAM)
    data = where / "data"
    done = elixirscope("run", "--data-dir", str(data), "ws_prog.py", cwd=where)
    assert done.returncode == 0, done.stderr
    return data


def test_websockets_lists_each_step_of_a_connection(ws_data: Path) -> None:
    rows = list(esql.run("action, direction, size, preview, code, path, route from websockets",
                         data_dir=ws_data))
    assert [r["action"] for r in rows] == ["accept", "in", "out", "in", "out", "in", "close"]
    assert {(r["path"], r["route"]) for r in rows} == {("/ws/7", "/ws/{room}")}
    messages = [r for r in rows if r["direction"]]
    assert [(r["direction"], r["size"]) for r in messages] == [
        ("in", 5), ("out", 6), ("in", 6), ("out", 7), ("in", 3)]  # héllo: 6 bytes in UTF-8
    assert "HELLO!" in messages[1]["preview"]
    assert rows[-1]["code"] == 4000 and rows[0]["code"] is None


def test_a_websocket_step_names_its_request(ws_data: Path) -> None:
    (start,) = esql.run("id from events where kind = 'req' and path = '/ws/7'", data_dir=ws_data)
    rows = list(esql.run("request, kind, chain from events where kind = 'ws'", data_dir=ws_data))
    assert {r["request"] for r in rows} == {start["id"]} and {r["kind"] for r in rows} == {"ws"}
    assert all(r["chain"] for r in rows)


def test_of_and_singular_and_aggregates(ws_data: Path) -> None:
    assert len(list(esql.run("websockets of '/ws/*' where action = 'in'", data_dir=ws_data))) == 3
    (agg,) = esql.run("sum(size), count(*) from websockets where direction = 'out'",
                      data_dir=ws_data)
    assert agg == {"sum(size)": 13, "count(*)": 2}
    after = "requests where within 10s before websocket of '/ws/7'"
    assert [r["path"] for r in esql.run(after, data_dir=ws_data)] == ["/boom"]


def test_a_direction_that_cannot_be_is_refused(ws_data: Path) -> None:
    with pytest.raises(esql.EsqlError, match="direction is one of 'in', 'out'"):
        list(esql.run("websockets where direction = 'sideways'", data_dir=ws_data))


def test_status_on_requests_and_http_names_code(ws_data: Path) -> None:
    with pytest.raises(esql.EsqlError) as caught:
        list(esql.run("requests where status = 500", data_dir=ws_data))
    assert str(caught.value).startswith(
        "unknown field 'status' for requests: a request's HTTP status is `code`"
        " (requests where code = 500); did you mean 'code'?"
    )
    assert caught.value.suggestion == "code"
    with pytest.raises(esql.EsqlError, match="an HTTP attempt's status is `code`"):
        list(esql.run("http where status >= 500", data_dir=ws_data))
    assert [r["code"] for r in esql.run("requests where code = 500", data_dir=ws_data)] == [500]
    assert list(esql.run("calls where status = 'ok' limit 1", data_dir=ws_data))  # still calls'


def test_requests_are_grouped_by_endpoint_method_and_route(tmp_path) -> None:
    """``route`` alone puts a GET and a POST of one path in one row; ``endpoint`` keeps
    them apart, as summary's Web requests table does."""
    from elixirscope.contracts.trace import decode_batch, encode_batch
    from elixirscope.query import esql
    from elixirscope.store import EventStore

    t0 = 1_700_000_000_000_000_000
    ends = [("reqend", i + 1, t0 + i, 1, f"c{i}", 0, i + 1, method, "/orders", "/orders",
             200, 10, 0, 0, None, None, None)
            for i, method in enumerate(["GET", "POST", "POST"])]
    ends += [("reqend", 10 + i, t0 + 10 + i, 1, f"s{i}", 0, 10 + i, "GET", path, None,
              404, 10, 0, 0, None, None, None)
             for i, path in enumerate(["/wp-admin", "/.env"])]  # a scanner: no route took them
    with EventStore.open(tmp_path / "data") as store:
        store.append(decode_batch(encode_batch(
            node="n", pid=1, program="p.py", producer="n:1:0", seq=1, sent_ts=t0, dropped=0,
            events=ends, run="ab" * 16)))
    got = esql.run("endpoint, count(*) from requests group by endpoint", tmp_path / "data")
    assert sorted(got.tuples()) == [
        ("GET (no route matched)", 2), ("GET /orders", 1), ("POST /orders", 2)]
    by_route = esql.run("route, count(*) from requests where code < 400 group by route",
                        tmp_path / "data")
    assert list(by_route.tuples()) == [("/orders", 3)]
