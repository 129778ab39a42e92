"""The C request path (``Hooks.http_request``) records exactly what the Python path does.

A request without ``tracestate`` nor ``X-Correlation-ID``, and with no
``traceparent`` or a plain valid one, is recorded by ``_speedups.HttpRequest``; the
Python path (``RequestRecording`` and ``asgi._http``) takes every other one. Both
must give the same events, answer with the same headers and leave the context
as they found it: each test drives one app under both and compares.
"""

from __future__ import annotations

import asyncio
import contextvars

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_middleware_in_process import Capture, Collected, drive, http_scope

from elixirscope.capture import _select, context, hooks, recorder
from elixirscope.capture.context import current_correlation_id
from elixirscope.contracts.trace import FunctionEntry, RequestEnd, RequestStart
from elixirscope.integrations import asgi, recording, sampling
from elixirscope.integrations.asgi import ElixirScopeMiddleware

speedups = _select.speedups()
pytestmark = pytest.mark.skipif(speedups is None, reason="the C accelerator is not built")

START = (
    "protocol",
    "method",
    "path",
    "query",
    "client",
    "request_bytes",
    "parent_span",
    "tracestate",
    "traceparent_error",
)
END = (
    "method",
    "path",
    "route",
    "status",
    "request_bytes",
    "response_bytes",
    "exc_type",
    "message",
)


def recorded(app, scope: dict, *, python: bool, monkeypatch) -> tuple[Collected, list, int]:  # noqa: ANN001
    """Drive ``app`` once under the middleware: (events, messages sent, requests taken in C)."""
    with monkeypatch.context() as patch:
        if python:
            patch.setattr(asgi, "_http_begin", None)
        before = speedups.http_recorded()
        capture = Capture()
        sent: list[dict] = []
        try:
            drive(ElixirScopeMiddleware(app), scope, sent)
        except Boom:
            pass  # the app's, passed on: what it sent before is compared
        finally:
            out = capture.stop()
        return out, sent, speedups.http_recorded() - before


def shape(out: Collected, sent: list) -> tuple:
    """What both paths must agree on: the events' fields but ids, clocks and fresh ids;
    the messages, the trace ids in their headers replaced by what the events say."""
    (start,) = out.of(RequestStart)
    (end,) = out.of(RequestEnd)
    assert end.request_id == start.id and end.parent_id == start.parent_id != 0
    assert start.correlation_id == end.correlation_id
    assert len(start.trace_id) == 32 and len(start.span_id) == 16
    ours = {
        f"00-{start.trace_id}-{start.span_id}-{flags}".encode(): f"<traceparent {flags}>".encode()
        for flags in ("00", "01")
    }
    ours[start.correlation_id.encode()] = b"<correlation id>"  # the trace id, unless adopted
    caller = start.trace_id if start.parent_span else None  # a fresh one differs by run
    adopted = start.correlation_id if start.correlation_id != start.trace_id else None
    messages = []
    for message in sent:
        message = dict(message)
        if "headers" in message:
            message["headers"] = [(k, ours.get(v, v)) for k, v in message["headers"]]
        messages.append(message)
    tail = (end.traceback_text or "").splitlines()[-1:]
    return (
        caller,
        adopted,
        tuple(getattr(start, f) for f in START),
        tuple(getattr(end, f) for f in END),
        tail,
        messages,
    )


class Boom(Exception):
    pass


def app_of(status: object, body: bytes, headers: list, *, fails: bool = False, chunks: int = 1):  # noqa: ANN201
    async def app(scope, receive, send) -> None:  # noqa: ANN001
        await receive()
        scope["route"] = None
        await send({"type": "http.response.start", "status": status, "headers": list(headers)})
        for _ in range(chunks):
            await send({"type": "http.response.body", "body": body, "more_body": True})
        if fails:
            raise Boom("after the body")
        await send({"type": "http.response.body", "body": b""})

    return app


def test_a_plain_request_is_taken_in_c_and_recorded_as_python_does(monkeypatch) -> None:  # noqa: ANN001
    app = app_of(201, b"hello", [(b"x-app", b"1")])
    c_out, c_sent, taken = recorded(app, http_scope(), python=False, monkeypatch=monkeypatch)
    py_out, py_sent, not_taken = recorded(app, http_scope(), python=True, monkeypatch=monkeypatch)
    assert (taken, not_taken) == (1, 0)
    assert shape(c_out, c_sent) == shape(py_out, py_sent)
    assert [k for k, _ in c_sent[0]["headers"]] == [b"x-app", b"traceparent", b"x-correlation-id"]


TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"


def test_a_callers_plain_traceparent_is_taken_in_c_and_joined(monkeypatch) -> None:  # noqa: ANN001
    headers = [(b"Traceparent", TRACEPARENT)]
    out, sent, taken = recorded(
        app_of(200, b"x", []), http_scope(headers=headers), python=False, monkeypatch=monkeypatch
    )
    (start,) = out.of(RequestStart)
    assert taken == 1
    assert (start.trace_id, start.parent_span) == (
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
    )
    answered = dict(sent[0]["headers"])  # the caller's trace and flags, this request's span
    assert answered[b"traceparent"] == f"00-{start.trace_id}-{start.span_id}-00".encode()


@pytest.mark.parametrize(
    "headers",
    [
        [(b"traceparent", TRACEPARENT), (b"tracestate", b"congo=t61rcWkgMzE")],
        [(b"x-correlation-id", b"order-17")],
        [(b"traceparent", TRACEPARENT.upper())],
        [(b"traceparent", b"01" + TRACEPARENT[2:] + b"-more")],
        [(b"traceparent", b" " + TRACEPARENT)],
    ],
)
def test_other_trace_headers_go_the_python_way(monkeypatch, headers) -> None:  # noqa: ANN001
    app = app_of(200, b"x", [])
    c_out, c_sent, taken = recorded(
        app, http_scope(headers=headers), python=False, monkeypatch=monkeypatch
    )
    py_out, py_sent, _ = recorded(
        app, http_scope(headers=headers), python=True, monkeypatch=monkeypatch
    )
    assert taken == 0
    assert shape(c_out, c_sent) == shape(py_out, py_sent)


header_names = st.sampled_from(
    [b"content-length", b"Content-Length", b"host", b"x-app", b"accept", b"x-correlation-ie"]
)
header_values = st.one_of(
    st.sampled_from([b"3", b"0", b"12", b"-1", b"1e3", b"", b"9" * 19, b"\xff"]),
    st.binary(max_size=8),
)
traceparents = st.sampled_from(
    [
        TRACEPARENT,
        TRACEPARENT[:-2] + b"01",
        b"00-" + b"0" * 32 + TRACEPARENT[35:],  # an all-zero trace id: malformed
        TRACEPARENT[:36] + b"0" * 16 + b"-01",  # an all-zero span: malformed
        TRACEPARENT[:-1],
        b"ff" + TRACEPARENT[2:],
    ]
)
text = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=12),
    st.text(min_size=1, max_size=6),
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    method=text,
    path=st.one_of(text, st.just(""), st.binary(min_size=1, max_size=6)),
    query=st.one_of(st.just(b""), st.binary(max_size=10), st.just(b"a=1&token=s3cret")),
    client=st.one_of(
        st.none(),
        st.tuples(
            st.sampled_from(["127.0.0.1", "::1"]),
            st.integers(0, 65535) | st.integers(-(2**64), 2**64),  # any int says itself
        ),
    ),
    headers=st.lists(
        st.one_of(
            st.tuples(header_names, header_values),
            st.tuples(st.sampled_from([b"traceparent", b"TraceParent"]), traceparents),
        ),
        max_size=4,
    ),
    status=st.one_of(st.integers(0, 1200), st.sampled_from(["200", None, 2.5])),
    body=st.binary(max_size=20),
    answered=st.lists(
        st.tuples(st.sampled_from([b"traceparent", b"X-Correlation-ID", b"x-app"]), st.just(b"v")),
        max_size=2,
    ),
    fails=st.booleans(),
    chunks=st.integers(0, 3),
)
def test_both_paths_record_and_answer_the_same(  # noqa: PLR0913
    monkeypatch,
    method,
    path,
    query,
    client,
    headers,
    status,
    body,
    answered,
    fails,
    chunks,  # noqa: ANN001
) -> None:
    scope = http_scope(method=method, path=path, query_string=query, client=client, headers=headers)
    app = app_of(status, body, answered, fails=fails, chunks=chunks)
    c_out, c_sent, _ = recorded(app, dict(scope), python=False, monkeypatch=monkeypatch)
    py_out, py_sent, _ = recorded(app, dict(scope), python=True, monkeypatch=monkeypatch)
    assert shape(c_out, c_sent) == shape(py_out, py_sent)
    (start,) = c_out.of(RequestStart)
    assert start.traceparent_error is None or start.parent_span is None


def test_the_route_a_framework_names_and_its_500_are_recorded(monkeypatch) -> None:  # noqa: ANN001
    async def app(scope, receive, send) -> None:  # noqa: ANN001
        request = recording.current_request.get()
        assert recording.set_route("/items/{id}")
        request.error = Boom("handled as a 500")
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"oops"})

    for python in (False, True):
        out, _sent, taken = recorded(app, http_scope(), python=python, monkeypatch=monkeypatch)
        assert taken == (0 if python else 1)
        (end,) = out.of(RequestEnd)
        assert (end.route, end.status, end.exc_type, end.message) == (
            "/items/{id}",
            500,
            "test_http_request_c.Boom",
            "handled as a 500",
        )


def test_the_context_is_left_as_it_was_found() -> None:
    """The correlation, the current request and the middleware's own flag are set for the
    app and reset after, whether it returned or raised; the server's send runs in the
    context the request arrived in."""
    seen: dict = {}

    async def app(scope, receive, send) -> None:  # noqa: ANN001
        seen["request"] = recording.current_request.get()
        seen["correlation"] = current_correlation_id()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if scope["path"] == "/fail":
            raise Boom("x")

    async def serve(path: str) -> tuple:
        sent_in: list = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b""}

        async def send(message: dict) -> None:
            sent_in.append(current_correlation_id())

        try:
            await ElixirScopeMiddleware(app)(http_scope(path=path), receive, send)
        except Boom:
            pass
        return (
            sent_in,
            current_correlation_id(),
            recording.current_request.get(),
            asgi.handled_here(),
        )

    capture = Capture()
    try:
        for path in ("/ok", "/fail"):
            before = speedups.http_recorded()
            sent_in, after, request, inside = contextvars.copy_context().run(
                asyncio.run, serve(path)
            )
            assert speedups.http_recorded() == before + 1
            assert type(seen["request"]).__name__ == "HttpRequest"
            assert seen["correlation"] == seen["request"].trace_id
            assert sent_in == [None]  # the server's send: the arrival context's (none)
            assert (after, request, inside) == (None, None, False)
            assert not seen["request"].active
    finally:
        capture.stop()
    assert context.current_call_id() == 0


def test_a_broken_send_reaches_the_app_and_the_request_still_ends(monkeypatch) -> None:  # noqa: ANN001
    async def app(scope, receive, send) -> None:  # noqa: ANN001
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def serve() -> None:
        async def receive() -> dict:
            return {"type": "http.request"}

        async def send(message: dict) -> None:
            raise OSError("client went away")

        await ElixirScopeMiddleware(app)(http_scope(), receive, send)

    capture = Capture()
    try:
        with pytest.raises(OSError, match="client went away"):
            asyncio.run(serve())
    finally:
        out = capture.stop()
    (end,) = out.of(RequestEnd)
    assert (end.status, end.exc_type, end.message) == (200, "OSError", "client went away")


SAMPLED_CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
UNSAMPLED_CALLER = "00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"


@pytest.mark.parametrize(
    ("traceparent", "kept"),
    [(None, False), (UNSAMPLED_CALLER, False), (SAMPLED_CALLER, True)],
)
def test_sampled_in_c_as_python_samples(monkeypatch, traceparent, kept) -> None:  # noqa: ANN001
    """At request_sampling 0 a request is left out unless its caller sampled it, in C as
    in Python: one left out records nothing (a traced call under it neither), is
    counted, runs with handled_here() and recorder.sampled_out true, answers
    without trace headers, and leaves the context as found; one kept is recorded."""
    was = sampling.request_sampling()
    sampling.set_request_sampling(0.0)
    try:
        _sampled_in_c_as_python_samples(monkeypatch, traceparent, kept)
    finally:
        sampling.set_request_sampling(was)


def _sampled_in_c_as_python_samples(monkeypatch, traceparent, kept) -> None:  # noqa: ANN001
    fid = hooks.register("sampled_test", "handler", "args", 1.0, __file__, 1, "function")
    seen: list[tuple] = []

    async def app(scope, receive, send) -> None:  # noqa: ANN001
        with __elixirscope__.call(fid):  # noqa: F821 - the hooks builtin
            seen.append(
                (
                    recorder.sampled_out.get(),
                    asgi.handled_here(),
                    recording.current_request.get() is None,
                )
            )
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
        await send({"type": "http.response.body", "body": b"ok"})

    headers = [(b"traceparent", traceparent.encode())] if traceparent else []
    answers = {}
    for python in (False, True):
        taken = (speedups.http_recorded(), speedups.http_left_out())
        left_out = recording.stats()["requests_sampled_out"]
        out, sent, _ = recorded(
            app, http_scope(headers=headers), python=python, monkeypatch=monkeypatch
        )
        in_c = (speedups.http_recorded() - taken[0], speedups.http_left_out() - taken[1])
        assert in_c == ((0, 0) if python else (1, 0) if kept else (0, 1))
        assert recording.stats()["requests_sampled_out"] - left_out == (0 if kept else 1)
        calls = [e for e in out.of(FunctionEntry) if e.function.endswith("sampled_test.handler")]
        assert len(out.of(RequestStart)) == len(calls) == (1 if kept else 0)
        answers[python] = shape(out, sent) if kept else sent
    assert answers[False] == answers[True]
    if not kept:
        assert seen == [(True, True, True)] * 2
        assert all(b"traceparent" not in dict(m.get("headers", [])) for m in answers[False])
    assert recorder.sampled_out.get() is False and asgi.handled_here() is False
    assert context.current_call_id() == 0


def test_a_left_out_request_that_fails_leaves_the_context_as_found() -> None:
    """The app's exception goes on to the server; handled_here() and
    recorder.sampled_out are reset; end() takes an exception or None, once."""
    was = sampling.request_sampling()
    sampling.set_request_sampling(0.0)

    async def app(scope, receive, send) -> None:  # noqa: ANN001
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise Boom("after the start")

    capture = Capture()
    try:
        before = speedups.http_left_out()
        with pytest.raises(Boom, match="after the start"):
            drive(ElixirScopeMiddleware(app), http_scope())
        assert speedups.http_left_out() == before + 1
        assert recorder.sampled_out.get() is False and asgi.handled_here() is False

        async def begun() -> None:
            async def receive() -> dict:
                return {"type": "http.request"}

            async def send(message: dict) -> None:
                pass

            left = speedups.http_begin(http_scope(), receive, send)
            assert type(left).__name__ == "LeftOut" and left.active
            assert recorder.sampled_out.get() is True
            with pytest.raises(TypeError, match="Expected an exception or None, got str"):
                left.end("not an exception")
            left.end(None)
            left.end(None)  # a second end does nothing
            assert not left.active and recorder.sampled_out.get() is False

        contextvars.copy_context().run(asyncio.run, begun())
    finally:
        sampling.set_request_sampling(was)
        out = capture.stop()
    assert out.of(RequestStart) == [] and context.current_call_id() == 0
