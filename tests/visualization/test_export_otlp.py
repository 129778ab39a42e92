"""``export --format otlp``: OTLP/HTTP protobuf decoded with opentelemetry-proto, to a
file and to a real receiver (an HTTP server on a loopback port in the test), checked
against the recording: a span per call, query and HTTP call, the request as the server
span with its recorded W3C ids, parents that exist, exceptions as events."""

from __future__ import annotations

import http.server
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from export_recordings import elixirscope, stored
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from elixirscope.contracts.trace import REQUEST_FUNCTION
from elixirscope.visualization.export import export_run


def decode(data: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    request.ParseFromString(data)
    return request


def spans_of(request: ExportTraceServiceRequest) -> list[tuple[dict[str, Any], Any]]:
    """(resource attributes, span) of every span."""
    out = []
    for rs in request.resource_spans:
        resource = {a.key: _value(a.value) for a in rs.resource.attributes}
        for ss in rs.scope_spans:
            assert ss.scope.name == "elixirscope"
            out.extend((resource, span) for span in ss.spans)
    return out


def _value(v: Any) -> Any:
    return getattr(v, v.WhichOneof("value"))


def attrs(span: Any) -> dict[str, Any]:
    return {a.key: _value(a.value) for a in span.attributes}


@pytest.fixture(scope="module")
def web_spans(web_run, tmp_path_factory) -> tuple[list[Any], dict[str, Any], bytes]:
    data, run = web_run
    out = tmp_path_factory.mktemp("otlp") / "web.otlp.pb"
    report = export_run(str(data), "otlp", str(out), run=run, batch_spans=3)
    raw = out.read_bytes()
    return spans_of(decode(raw)), report, raw


@pytest.fixture(scope="module")
def actor_spans(actors_run, tmp_path_factory) -> list[Any]:
    data, run = actors_run
    out = tmp_path_factory.mktemp("otlp") / "actors.otlp.pb"
    export_run(str(data), "otlp", str(out), run=run)
    return spans_of(decode(out.read_bytes()))


def test_a_span_per_call_with_parents_that_exist(actors_run, actor_spans):
    data, run = actors_run
    events = stored(data, run)
    spans = [s for _, s in actor_spans]
    assert Counter(s.name for s in spans) == Counter(
        se.event.function for se in events if se.type in ("return", "exception"))
    ids = {s.span_id for s in spans}
    assert len(ids) == len(spans) and all(len(i) == 8 for i in ids)
    for s in spans:
        assert not s.parent_span_id or s.parent_span_id in ids
        assert len(s.trace_id) == 16 and s.end_time_unix_nano >= s.start_time_unix_nano
    by_call = {attrs(s)["elixirscope.call_id"]: s for s in spans}
    main = next(s for s in spans if s.name == "__main__.main")
    for s in spans:
        if s.name in ("__main__.square", "__main__.evens", "__main__.fail") \
                and attrs(s).get("elixirscope.correlation_id") \
                == attrs(main).get("elixirscope.correlation_id"):
            assert s.parent_span_id == main.span_id and s.trace_id == main.trace_id
    for se in events:
        if se.type == "call":
            assert by_call[se.event.id].start_time_unix_nano == se.event.ts
            for name, value in (se.event.args or {}).items():
                assert attrs(by_call[se.event.id])[f"elixirscope.arg.{name}"] == value


def test_exceptions_are_error_spans_with_an_exception_event(actors_run, actor_spans):
    data, run = actors_run
    raised = [se.event for se in stored(data, run) if se.type == "exception"]
    errors = [s for _, s in actor_spans if s.status.code == Status.STATUS_CODE_ERROR]
    assert len(errors) == len(raised) >= 6
    for s, ev in zip(sorted(errors, key=lambda s: s.end_time_unix_nano), raised, strict=True):
        [event] = s.events
        assert event.name == "exception" and event.time_unix_nano == ev.ts
        got = {a.key: _value(a.value) for a in event.attributes}
        assert got["exception.type"] == ev.exc_type and got["exception.message"] == ev.message


def test_the_resource_is_the_program(actors_run, actor_spans):
    data, run = actors_run
    se = stored(data, run)[0]
    for resource, _ in actor_spans:
        assert resource == {"service.name": "prog.py", "process.pid": se.pid,
                            "host.name": se.node, "elixirscope.producer": se.producer,
                            "elixirscope.run": run}


def test_a_request_is_the_server_span_with_its_w3c_ids(web_run, web_spans):
    data, run = web_run
    spans = [s for _, s in web_spans[0]]
    events = stored(data, run)
    starts = [se.event for se in events if se.type == "req"]
    calls = [se.event for se in events if se.type == "http"]
    servers = sorted((s for s in spans if s.kind == Span.SPAN_KIND_SERVER),
                     key=lambda s: s.start_time_unix_nano)
    assert [s.name for s in servers] == ["GET /tasks/{id}"] * 2 == [
        f"GET {se.event.route}" for se in events if se.type == "reqend"]
    clients = sorted((s for s in spans if s.kind == Span.SPAN_KIND_CLIENT
                      and "url.full" in attrs(s)), key=lambda s: s.start_time_unix_nano)
    for server, start, client, call in zip(servers, starts, clients, calls, strict=True):
        assert server.trace_id.hex() == start.trace_id
        assert server.span_id.hex() == start.span_id
        assert server.parent_span_id.hex() == start.parent_span
        # the caller's span is the HTTP call that sent the traceparent: one trace
        assert client.span_id.hex() == call.span_id == start.parent_span
        assert client.trace_id.hex() == call.trace_id == start.trace_id
        assert attrs(server)["http.response.status_code"] == 200
        assert attrs(server)["http.route"] == "/tasks/{id}"
    assert REQUEST_FUNCTION not in {s.name for s in spans}
    handlers = [s for s in spans if s.name == "__main__.tasks"]
    assert sorted(h.parent_span_id for h in handlers) == sorted(s.span_id for s in servers)


def test_queries_are_client_spans_under_the_call_that_ran_them(web_run, web_spans):
    data, run = web_run
    spans = [s for _, s in web_spans[0]]
    queries = [s for s in spans if "db.query.text" in attrs(s)]
    assert len(queries) == sum(1 for se in stored(data, run) if se.type == "query")
    by_id = {s.span_id: s for s in spans}
    selects = [q for q in queries if attrs(q)["db.query.text"].startswith("select")]
    assert len(selects) == 2
    for q in selects:
        parent = by_id[q.parent_span_id]
        assert parent.name == "__main__.titles" and q.trace_id == parent.trace_id
        assert attrs(q)["db.system.name"] == "sqlite"
    assert all(not s.parent_span_id or s.parent_span_id in by_id for s in spans)


def test_batches_concatenate_to_one_request(web_spans):
    spans, report, raw = web_spans
    assert report["written"]["batches"] > 3  # batch_spans=3
    assert report["written"]["spans"] == len(spans)
    assert report["bytes"] == len(raw)


# ------------------------------------------------------------ to a collector


class Receiver(http.server.ThreadingHTTPServer):
    """An OTLP/HTTP receiver on a loopback port: decodes each POST with opentelemetry-proto;
    ``status`` is what it answers."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[tuple[str, str, ExportTraceServiceRequest]] = []
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.requests.append((self.path, self.headers["content-type"], decode(body)))
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(self.server.status)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def key(span: Any) -> tuple[bytes, bytes, bytes, str, int]:
    return (span.trace_id, span.span_id, span.parent_span_id, span.name,
            span.start_time_unix_nano)


def test_the_receiver_gets_the_same_spans_in_batches(web_run, web_spans, receiver):
    data, run = web_run
    report = export_run(str(data), "otlp", endpoint=receiver.url, run=run, batch_spans=4)
    assert report["file"] is None and report["endpoint"] == receiver.url
    got = [s for _, _, r in receiver.requests for _, s in spans_of(r)]
    assert len(receiver.requests) == report["written"]["batches"] > 1
    assert {(p, t) for p, t, _ in receiver.requests} == {("/v1/traces",
                                                          "application/x-protobuf")}
    assert sorted(map(key, got)) == sorted(key(s) for _, s in web_spans[0])


def test_the_command_posts_and_prints_a_summary(actors_run, actor_spans, receiver, tmp_path):
    import json

    data, run = actors_run
    done = elixirscope("export", run[:8], "--data-dir", str(data), "--format", "otlp",
                       "--endpoint", receiver.url, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["format"] == "otlp" and summary["endpoint"] == receiver.url
    got = [s for _, _, r in receiver.requests for _, s in spans_of(r)]
    assert summary["written"]["spans"] == len(got) == len(actor_spans)
    assert summary["bytes"] == sum(len(r.SerializeToString()) for _, _, r in receiver.requests)


def test_a_collector_that_refuses_is_one_line_and_status_1(actors_run, tmp_path):
    data, run = actors_run
    server = Receiver(status=503)
    try:
        done = elixirscope("export", "--data-dir", str(data), "--format", "otlp",
                           "--endpoint", server.url, cwd=tmp_path)
    finally:
        server.close()
    assert done.returncode == 1
    assert done.stderr == (f"elixirscope export: the collector at {server.url} refused the "
                           "spans: HTTP 503\n")


def test_no_collector_is_status_3_and_a_bad_url_status_2(actors_run, tmp_path):
    data, _ = actors_run
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1/traces"
    done = elixirscope("export", "--data-dir", str(data), "--format", "otlp", "--endpoint", url,
                       "--timeout", "5", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith(f"elixirscope export: cannot reach the collector at {url}")
    assert done.stderr.count("\n") == 1
    for bad in ("ftp://127.0.0.1/v1/traces", "127.0.0.1:4318", "http://[::1/x"):
        done = elixirscope("export", "--data-dir", str(data), "--format", "otlp",
                           "--endpoint", bad, cwd=tmp_path)
        assert done.returncode == 2, (bad, done.stderr)
        assert f"--endpoint {bad!r}" in done.stderr and done.stderr.count("\n") == 1
    assert not list(tmp_path.iterdir())
