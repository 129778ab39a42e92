"""The middleware and transports in this process, under a real capture session:
what they record, and that hostile input or a broken recorder never reaches the app."""

from __future__ import annotations

import asyncio
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elixirscope.capture import recorder
from elixirscope.capture.session import start_capture
from elixirscope.contracts.trace import HttpCall, RequestEnd, RequestStart, decode_batch
from elixirscope.integrations import asgi, recording, sampling
from elixirscope.integrations.asgi import ElixirScopeMiddleware
from elixirscope.integrations.httpx_calls import AsyncRecordingTransport, RecordingTransport
from elixirscope.integrations.wsgi import ElixirScopeWSGIMiddleware


class Collected:
    def __init__(self) -> None:
        self.events: list = []
        self.lock = threading.Lock()

    def __call__(self, frame: bytes, count: int) -> None:
        with self.lock:
            self.events.extend(decode_batch(frame).events)

    def of(self, kind: type) -> list:
        return [e for e in self.events if type(e) is kind]


class Capture:
    """A real capture session into a Collected sink; :meth:`stop` ships and returns it."""

    def __init__(self) -> None:
        self.out = Collected()
        self.session = start_capture(sink=self.out)

    def stop(self) -> Collected:
        stats = self.session.stop()
        assert not stats.get("events_dropped"), stats  # every event encoded and shipped
        return self.out


@pytest.fixture
def captured():
    capture = Capture()
    try:
        yield capture
    finally:
        capture.stop()


async def hello_app(scope, receive, send) -> None:  # noqa: ANN001 - a plain ASGI app
    if scope["type"] != "http":
        return
    await receive()
    await send({"type": "http.response.start", "status": 201, "headers": [(b"x-app", b"1")]})
    await send({"type": "http.response.body", "body": b"hello"})


def drive(app, scope: dict, sent: list[dict] | None = None) -> list[dict]:  # noqa: ANN001
    """Call an ASGI app once, as a server would; the messages it sent (into ``sent``)."""
    sent = [] if sent is None else sent

    async def receive() -> dict:
        return {"type": "http.request", "body": b"abc", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def http_scope(**over) -> dict:  # noqa: ANN003
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/p",
        "raw_path": b"/p",
        "query_string": b"a=1",
        "headers": [(b"content-length", b"3")],
        "client": ("127.0.0.1", 5000),
    }
    scope.update(over)
    return scope


def test_without_a_recorder_the_middleware_is_not_there(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(recorder, "_recorder", None)  # whatever an earlier test left installed
    assert recorder.current() is None
    assert drive(ElixirScopeMiddleware(hello_app), http_scope()) == drive(hello_app, http_scope())


def test_a_request_is_recorded_and_answered_as_the_app_answers(captured: Capture) -> None:
    trace, span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    headers = [(b"content-length", b"3"), (b"traceparent", f"00-{trace}-{span}-01".encode())]
    sent = drive(ElixirScopeMiddleware(hello_app), http_scope(headers=headers))
    assert sent[0]["status"] == 201 and sent[1]["body"] == b"hello"
    answered = dict(sent[0]["headers"])
    assert list(answered) == [b"x-app", b"traceparent", b"x-correlation-id"]
    assert answered[b"traceparent"].startswith(f"00-{trace}-".encode())
    assert answered[b"x-correlation-id"] == trace.encode()
    out = captured.stop()
    (start,) = out.of(RequestStart)
    (end,) = out.of(RequestEnd)
    assert (start.method, start.path, start.query, start.client) == (
        "POST",
        "/p",
        "a=1",
        "127.0.0.1:5000",
    )
    assert (start.trace_id, start.parent_span, start.correlation_id) == (trace, span, trace)
    assert (end.request_id, end.status, end.request_bytes, end.response_bytes) == (
        start.id,
        201,
        3,
        5,
    )
    assert end.parent_id == start.parent_id != 0  # both inside the request's own call


@pytest.mark.parametrize(
    ("tracestate", "echoed"),
    [(b"congo=t61rcWkgMzE", True), ("caf\u00e9=1".encode(), False), (b"x" * 513, False)],
)
def test_tracestate_is_sent_back_only_when_any_server_can_write_it(
    captured: Capture, tracestate: bytes, echoed: bool
) -> None:
    headers = [
        (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        (b"tracestate", tracestate),
    ]
    sent = drive(ElixirScopeMiddleware(hello_app), http_scope(headers=headers))
    answered = dict(sent[0]["headers"])
    assert (answered.get(b"tracestate") == tracestate) is echoed
    (start,) = captured.stop().of(RequestStart)
    assert (start.tracestate == tracestate.decode()) is echoed


@pytest.mark.parametrize(
    "headers", [[], [(b"x-correlation-id", b"c-1")]], ids=["in C", "in Python (a correlation)"]
)
def test_a_request_wrapped_twice_is_recorded_once(captured: Capture, headers: list) -> None:
    scope = http_scope(headers=headers)
    sent = drive(ElixirScopeMiddleware(ElixirScopeMiddleware(hello_app)), scope)
    assert [name for name, _ in sent[0]["headers"]] == [
        b"x-app",
        b"traceparent",
        b"x-correlation-id",
    ]
    out = captured.stop()
    assert len(out.of(RequestStart)) == len(out.of(RequestEnd)) == 1
    assert not asgi.handled_here()


@pytest.mark.parametrize("python", [False, True], ids=["in C", "in Python"])
def test_a_left_out_request_wrapped_twice_is_left_out_once(
    captured: Capture, python: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inner middleware sees the request handled (left out) and passes it on."""
    if python:
        monkeypatch.setattr(asgi, "_http_begin", None)
    was = sampling.request_sampling()
    sampling.set_request_sampling(0.0)
    try:
        left = recording.stats()["requests_sampled_out"]
        sent = drive(ElixirScopeMiddleware(ElixirScopeMiddleware(hello_app)), http_scope())
        assert recording.stats()["requests_sampled_out"] == left + 1
    finally:
        sampling.set_request_sampling(was)
    assert [name for name, _ in sent[0]["headers"]] == [b"x-app"]
    assert not captured.stop().of(RequestStart)
    assert not asgi.handled_here()


def test_hostile_scopes_never_reach_the_app(captured: Capture) -> None:
    before = recording.stats()["recording_errors"]
    hostile = [
        http_scope(headers=[("not", "bytes")]),  # str pairs
        http_scope(headers=[(b"traceparent", b"\xff\xfe"), (b"x-correlation-id", b"\x00")]),
        http_scope(client="nonsense"),
        http_scope(path=None, method=None, query_string=12),
        http_scope(headers=None),
    ]
    for scope in hostile:
        assert [m["type"] for m in drive(ElixirScopeMiddleware(hello_app), scope)] == [
            "http.response.start",
            "http.response.body",
        ]
    assert recording.stats()["recording_errors"] > before  # counted, never raised
    assert recording.stats()["last_error"] is not None


class Boom(Exception):
    pass


def test_text_that_is_not_utf8_is_recorded_escaped(captured: Capture) -> None:
    drive(ElixirScopeMiddleware(hello_app), http_scope(method="G\udcffT", path="/a\udce9"))
    (start,) = captured.stop().of(RequestStart)
    assert (start.method, start.path) == ("G\\udcffT", "/a\\udce9")


def test_an_app_error_passes_through_unchanged(captured: Capture) -> None:
    async def failing(scope, receive, send) -> None:  # noqa: ANN001
        raise Boom("bad")

    with pytest.raises(Boom, match="bad"):
        drive(ElixirScopeMiddleware(failing), http_scope())
    (end,) = captured.stop().of(RequestEnd)
    assert (end.status, end.exc_type, end.message) == (
        500,
        "test_middleware_in_process.Boom",
        "bad",
    )
    assert "raise Boom" in end.traceback_text


def _serve(app):  # noqa: ANN001
    class Quiet(WSGIRequestHandler):
        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def plain(environ, start_response):  # noqa: ANN001, ANN201
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ.get("HTTP_TRACEPARENT", "none").encode()]


def test_a_wsgi_request_without_length_nor_chunks_had_no_body(captured: Capture) -> None:
    """HTTP/1.1: a request with neither Content-Length nor Transfer-Encoding has no body
    (0 bytes, as the ASGI path counts it); a chunked one's size is not known (-1)."""
    server = _serve(ElixirScopeWSGIMiddleware(plain))
    base = f"http://127.0.0.1:{server.server_port}/x"
    try:
        with httpx.Client() as client:
            client.get(base)
            client.post(base, content=b"abc")
            client.post(base, content=iter([b"ab", b"c"]))  # chunked
    finally:
        server.shutdown()
        server.server_close()
    ends = captured.stop().of(RequestEnd)
    assert [(e.method, e.request_bytes) for e in ends] == [("GET", 0), ("POST", 3), ("POST", -1)]


def streamed(environ, start_response):  # noqa: ANN001, ANN201
    """A body produced after the app returned: each chunk recorded as it is made."""
    from elixirscope.capture.session import record

    start_response("200 OK", [("Content-Type", "text/plain")])

    def chunks():  # noqa: ANN202
        for n in range(3):
            record("chunk", n=n)
            yield b"x" * (n + 1)
        if environ.get("QUERY_STRING") == "fail":
            raise LookupError("gone mid-stream")

    return chunks()


class OneChunk:
    """A body with a len (wsgiref sets Content-Length from a one-chunk body's)."""

    def __init__(self) -> None:
        self.closed = False

    def __iter__(self):  # noqa: ANN204
        return iter([b"whole"])

    def __len__(self) -> int:
        return 1

    def close(self) -> None:
        self.closed = True


def test_a_streamed_wsgi_body_ends_its_request_once_served(captured: Capture) -> None:
    """The request ends when the server has iterated and closed the body: its size is
    what was streamed, what ran while streaming is in its chain, an exception raised
    mid-stream is its own (with the status already sent)."""
    server = _serve(ElixirScopeWSGIMiddleware(streamed))
    base = f"http://127.0.0.1:{server.server_port}/s"
    try:
        with httpx.Client() as client:
            assert client.get(base).content == b"xxxxxx"
            # wsgiref logs the error and closes the connection: the client reads what came
            assert client.get(base + "?fail").content == b"xxxxxx"
    finally:
        server.shutdown()
        server.server_close()
    out = captured.stop()
    ends, starts = out.of(RequestEnd), out.of(RequestStart)
    assert [(e.status, e.response_bytes, e.exc_type) for e in ends] == [
        (200, 6, None),
        (200, 6, "LookupError"),
    ]
    assert ends[1].message == "gone mid-stream"
    chunks = [e for e in out.events if type(e).__name__ == "CustomEvent"]
    for start, end in zip(starts, ends, strict=True):
        mine = [c for c in chunks if c.correlation_id == start.correlation_id]
        assert [c.data["n"] for c in mine] == ["0", "1", "2"]
        assert all(start.ts < c.ts < end.ts for c in mine)  # streamed within the request
        assert end.duration_ns >= mine[-1].ts - mine[0].ts


def test_a_wsgi_body_with_a_len_is_served_as_without_recording(captured: Capture) -> None:
    bodies: list[OneChunk] = []

    def one(environ, start_response):  # noqa: ANN001, ANN202
        start_response("200 OK", [("Content-Type", "text/plain")])
        bodies.append(OneChunk())
        return bodies[-1]

    answers = []
    for app in (one, ElixirScopeWSGIMiddleware(one)):
        server = _serve(app)
        try:
            got = httpx.get(f"http://127.0.0.1:{server.server_port}/")
            answers.append((got.content, got.headers.get("content-length")))
        finally:
            server.shutdown()
            server.server_close()
    assert answers == [(b"whole", "5"), (b"whole", "5")]
    assert [b.closed for b in bodies] == [True, True]
    (end,) = captured.stop().of(RequestEnd)
    assert (end.status, end.response_bytes) == (200, 5)


def test_a_wsgi_body_never_served_ends_when_recording_stops(captured: Capture) -> None:
    """A server (or test client) that never iterates nor closes the body: the request
    still ends, when recording stops, its duration up to the app's return."""
    held = ElixirScopeWSGIMiddleware(streamed)({"REQUEST_METHOD": "GET"}, lambda *a: None)
    (end,) = captured.stop().of(RequestEnd)
    assert (end.status, end.response_bytes, end.exc_type) == (200, 0, None)
    assert list(held) == [b"x", b"xx", b"xxx"]  # still served as the app made it


def test_explicit_httpx_transports_record_and_propagate(captured: Capture) -> None:
    server = _serve(ElixirScopeWSGIMiddleware(plain))
    base = f"http://127.0.0.1:{server.server_port}/x?secret=1"
    try:
        with httpx.Client(transport=RecordingTransport()) as client:
            seen = client.get(base).text

        async def fetch() -> str:
            async with httpx.AsyncClient(transport=AsyncRecordingTransport()) as client:
                return (await client.get(base)).text

        seen_async = asyncio.run(fetch())
    finally:
        server.shutdown()
        server.server_close()
    out = captured.stop()
    calls = out.of(HttpCall)
    assert [(c.library, c.method, c.status, c.attempt) for c in calls] == [
        ("httpx", "GET", 200, 1),
        ("httpx", "GET", 200, 1),
    ]
    assert all(c.url.endswith("/x?secret=<redacted>") for c in calls)
    assert [seen, seen_async] == [f"00-{c.trace_id}-{c.span_id}-01" for c in calls]
    starts = out.of(RequestStart)
    assert [s.parent_span for s in starts] == [c.span_id for c in calls]


OWN = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_request_sent_with_its_own_traceparent_is_recorded_with_that_one(
    captured: Capture,
) -> None:
    """The program set ``traceparent`` itself: that one goes out, and the attempt says so
    (it recorded a header never sent); a malformed one goes out too, recorded as none."""
    import urllib3

    from elixirscope.integrations import urllib3_calls

    server = _serve(ElixirScopeWSGIMiddleware(plain))
    base = f"http://127.0.0.1:{server.server_port}/x"
    urllib3_calls.install()
    try:
        with httpx.Client(transport=RecordingTransport()) as client:
            seen = [client.get(base, headers={"traceparent": own}).text for own in (OWN, "junk")]
        pool = urllib3.PoolManager()
        seen.append(pool.request("GET", base, headers={"Traceparent": OWN}).data.decode())
    finally:
        urllib3_calls.uninstall()
        server.shutdown()
        server.server_close()
    assert seen == [OWN, "junk", OWN]
    calls = captured.stop().of(HttpCall)
    assert [(c.library, c.trace_id, c.span_id) for c in calls] == [
        ("httpx", OWN[3:35], OWN[36:52]),
        ("httpx", None, None),
        ("urllib3", OWN[3:35], OWN[36:52]),
    ]


header_bytes = st.binary(max_size=40)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from(
                [b"traceparent", b"tracestate", b"x-correlation-id", b"content-length", b"host"]
            )
            | header_bytes,
            header_bytes,
        ),
        max_size=6,
    ),
    path=st.text(max_size=30),
    query=st.binary(max_size=40),
    method=st.sampled_from(["GET", "POST", "\udcff", ""]),
)
def test_any_request_is_answered_as_without_recording(
    captured: Capture, headers, path, query, method
) -> None:  # noqa: ANN001
    scope = http_scope(headers=headers, path=path, query_string=query, method=method)
    bare = drive(hello_app, dict(scope))
    recorded = drive(ElixirScopeMiddleware(hello_app), dict(scope))
    assert [m["type"] for m in recorded] == [m["type"] for m in bare]
    assert recorded[1] == bare[1]
    extra = [name for name, _ in recorded[0]["headers"]][1:]
    assert extra in (
        [],
        [b"traceparent", b"x-correlation-id"],
        [b"traceparent", b"tracestate", b"x-correlation-id"],
    )


def wsgi_call(app, environ: dict) -> tuple[list, bytes]:  # noqa: ANN001
    """Call a WSGI app once, as a server would: (status and headers given, body)."""
    started: list = []

    def start_response(status, headers, exc_info=None):  # noqa: ANN001, ANN202
        started.append((status, list(headers)))

    body = b"".join(app(environ, start_response))
    return started, body


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.binary(max_size=30).map(lambda b: b.decode("latin-1")),
    query=st.binary(max_size=30).map(lambda b: b.decode("latin-1")),
    traceparent=st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
    length=st.sampled_from(["", "12", "-1", "x", "99999999999999999999", "\u00b2"]),
    remote=st.sampled_from([None, "127.0.0.1", "::1"]),
)
def test_any_wsgi_request_is_answered_as_without_recording(
    captured: Capture, path: str, query: str, traceparent: str, length: str, remote: str | None
) -> None:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "HTTP_TRACEPARENT": traceparent,
        "CONTENT_LENGTH": length,
    }
    if remote is not None:
        environ["REMOTE_ADDR"] = remote
    bare = wsgi_call(plain, dict(environ))
    recorded = wsgi_call(ElixirScopeWSGIMiddleware(plain), dict(environ))
    assert recorded[1] == bare[1]
    assert recorded[0][0][0] == bare[0][0][0]
    assert recorded[0][0][1][: len(bare[0][0][1])] == bare[0][0][1]


@pytest.mark.parametrize("status", [10**30, -1, "200", None, 99])
def test_a_strange_status_is_passed_on_and_recorded_as_none(
    captured: Capture, status: object
) -> None:
    async def odd(scope, receive, send) -> None:  # noqa: ANN001
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent = drive(ElixirScopeMiddleware(odd), http_scope())
    assert sent[0]["status"] == status
    (end,) = captured.stop().of(RequestEnd)
    assert end.status == (200 if status == "200" else 0)


def test_record_flask_knows_routes_and_the_500s_flask_answers(captured: Capture) -> None:
    import flask

    from elixirscope.integrations.wsgi import record_flask

    app = flask.Flask("in_process")

    @app.route("/items/<int:n>")
    def item(n: int) -> dict:
        if n == 0:
            raise ZeroDivisionError("no item 0")
        return {"n": n}

    assert record_flask(app) is app
    client = app.test_client()
    assert client.get("/items/3").json == {"n": 3}
    answered = client.get("/items/0")
    assert answered.status_code == 500 and "traceparent" in answered.headers
    ends = captured.stop().of(RequestEnd)
    assert [(e.route, e.status, e.exc_type) for e in ends] == [
        ("/items/<int:n>", 200, None),
        ("/items/<int:n>", 500, "ZeroDivisionError"),
    ]


def test_any_wsgi_framework_names_its_route(captured: Capture) -> None:
    """Through the environ key or ``set_route``: here werkzeug's own router."""
    from werkzeug.routing import Map, Rule
    from werkzeug.test import Client

    from elixirscope.integrations.recording import set_route
    from elixirscope.integrations.wsgi import ROUTE_KEY

    urls = Map([Rule("/books/<int:n>", endpoint="book"), Rule("/shelf/<name>", endpoint="shelf")])

    def app(environ, start_response):  # noqa: ANN001, ANN202
        rule, _args = urls.bind_to_environ(environ).match(return_rule=True)
        if rule.endpoint == "book":
            environ[ROUTE_KEY] = rule.rule
        else:
            assert set_route(rule.rule) is True
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    client = Client(ElixirScopeWSGIMiddleware(app))
    assert client.get("/books/4").status_code == 200
    assert client.get("/shelf/top").status_code == 200
    assert set_route("/not-in-a-request") is False
    ends = captured.stop().of(RequestEnd)
    assert [(e.path, e.route) for e in ends] == [
        ("/books/4", "/books/<int:n>"),
        ("/shelf/top", "/shelf/<name>"),
    ]


def test_django_routes_and_the_500s_django_answers(captured: Capture) -> None:
    django = pytest.importorskip("django")
    from django.conf import settings as django_settings

    if not django_settings.configured:
        django_settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            SECRET_KEY="test-only",
            MIDDLEWARE=["elixirscope.integrations.django.ElixirScopeDjangoMiddleware"],
            LOGGING_CONFIG=None,
        )
        django.setup()
    from django.core.wsgi import get_wsgi_application
    from werkzeug.test import Client

    client = Client(ElixirScopeWSGIMiddleware(get_wsgi_application()))
    assert client.get("/items/3").get_data() == b"item 3"
    assert client.get("/items/0").status_code == 500  # Django's own 500 page
    ends = captured.stop().of(RequestEnd)
    assert [(e.route, e.status, e.exc_type) for e in ends] == [
        ("/items/<int:n>", 200, None),  # Django's pattern with the path's leading slash
        ("/items/<int:n>", 500, "ZeroDivisionError"),
    ]


def _django_item(request, n):  # noqa: ANN001, ANN202 - a Django view
    from django.http import HttpResponse

    return HttpResponse(f"item {n // n * n}")


def __getattr__(name: str):  # noqa: ANN202 - Django reads ROOT_URLCONF's urlpatterns lazily
    if name == "urlpatterns":
        from django.urls import path

        return [path("items/<int:n>", _django_item)]
    raise AttributeError(name)


def test_a_websocket_connection_counts_its_messages_bytes_on_the_wire(captured: Capture) -> None:
    """Each message's size is its frame's payload (a text frame's in UTF-8); the
    connection's reqend has the messages' bytes in and out."""
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.testclient import TestClient

    from elixirscope.contracts.trace import WebSocketMessage

    async def echo(ws) -> None:  # noqa: ANN001
        await ws.accept()
        await ws.send_text((await ws.receive_text()).upper())
        await ws.send_bytes(await ws.receive_bytes() * 2)
        await ws.close()

    app = ElixirScopeMiddleware(Starlette(routes=[WebSocketRoute("/echo", echo)]))
    with TestClient(app) as client, client.websocket_connect("/echo") as ws:
        ws.send_text("héllo")  # 5 characters, 6 bytes
        assert ws.receive_text() == "HÉLLO"
        ws.send_bytes(b"abc")
        assert ws.receive_bytes() == b"abcabc"
    out = captured.stop()
    sizes = [(m.kind, m.size) for m in out.of(WebSocketMessage) if m.kind in ("in", "out")]
    assert sizes == [("in", 6), ("out", 6), ("in", 3), ("out", 6)]
    (end,) = out.of(RequestEnd)
    assert (end.status, end.request_bytes, end.response_bytes) == (101, 9, 12)


def test_a_websocket_handlers_state_is_recorded_after_each_message(captured: Capture) -> None:
    """The LiveView analogue: a class-based handler declares itself its state."""
    from starlette.applications import Starlette
    from starlette.endpoints import WebSocketEndpoint
    from starlette.routing import WebSocketRoute
    from starlette.testclient import TestClient

    from elixirscope.contracts.trace import StateChange
    from elixirscope.integrations.websocket_state import track_state
    from elixirscope.state.delta import apply, decode_delta
    from elixirscope.state.nodes import decode_node, to_plain

    class Board(WebSocketEndpoint):
        encoding = "text"

        async def on_connect(self, websocket) -> None:  # noqa: ANN001
            self.tasks: list[str] = []
            self.viewers = 1
            track_state(self, fields=("tasks", "viewers"))
            await websocket.accept()

        async def on_receive(self, websocket, data: str) -> None:  # noqa: ANN001
            if data != "noop":
                self.tasks.append(data)
            await websocket.send_text(str(len(self.tasks)))

    app = ElixirScopeMiddleware(Starlette(routes=[WebSocketRoute("/board", Board)]))
    with TestClient(app) as client, client.websocket_connect("/board") as ws:
        for text in ("write", "noop", "test"):
            ws.send_text(text)
            ws.receive_text()
    assert track_state(["outside a connection"]) == ["outside a connection"]
    out = captured.stop()
    (start,) = out.of(RequestStart)
    states = out.of(StateChange)
    assert [(s.actor, s.callback, s.message, s.seq) for s in states] == [
        (f"websocket /board #{start.id}", "connect", None, 0),
        (f"websocket /board #{start.id}", "message", "'write'", 1),
        (f"websocket /board #{start.id}", "message", "'noop'", 2),
        (f"websocket /board #{start.id}", "message", "'test'", 3),
    ]
    assert states[2].delta is None  # "noop" changed nothing
    node = decode_node(states[0].key)
    seen = [to_plain(node)]
    for s in states[1:]:
        if s.delta is not None:
            node = apply(node, decode_delta(s.delta))
        seen.append(to_plain(node))
    assert [(v["tasks"], v["viewers"]) for v in seen] == [
        ([], 1),
        (["write"], 1),
        (["write"], 1),
        (["write", "test"], 1),
    ], seen


def test_a_websocket_push_records_the_state_it_left_only_when_it_changed(
    captured: Capture,
) -> None:
    """A frame sent while no received message is handled (LiveView's ``handle_info``)."""
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.testclient import TestClient

    from elixirscope.contracts.trace import StateChange
    from elixirscope.integrations.websocket_state import track_state

    async def feed(ws) -> None:  # noqa: ANN001
        state = track_state({"n": 0})
        await ws.accept()
        await ws.send_text("hello")  # a push that changed nothing: no state event
        state["n"] = 1
        await ws.send_text("one")  # a push after a change: its state
        text = await ws.receive_text()
        state["n"] = 2
        await ws.send_text(f"got {text}")  # the reply to a message: that message's state
        await ws.close()

    app = ElixirScopeMiddleware(Starlette(routes=[WebSocketRoute("/feed", feed)]))
    with TestClient(app) as client, client.websocket_connect("/feed") as ws:
        assert [ws.receive_text(), ws.receive_text()] == ["hello", "one"]
        ws.send_text("x")
        assert ws.receive_text() == "got x"
    out = captured.stop()
    states = out.of(StateChange)
    assert [(s.callback, s.message, s.after, s.seq) for s in states] == [
        ("connect", None, "{'n': 0}", 0),
        ("push", "'one'", "{'n': 1}", 1),
        ("message", "'x'", "{'n': 2}", 2),
    ]
