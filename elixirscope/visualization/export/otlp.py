"""A run as OpenTelemetry traces: OTLP/HTTP protobuf (``ExportTraceServiceRequest``),
to a file or POSTed to a collector, so a recording joins a team's tracing backend.

* every call is a span (``INTERNAL``), its parent the call that made it; a call
  that raised has status ``ERROR`` and an ``exception`` event (type, message,
  stack trace), a generator's or coroutine's span covers it from first entry to
  its end;
* a web request is the ``SERVER`` span of the call that served it, with the W3C
  ids it was recorded with: its ``trace_id``, its ``span_id`` (the one sent
  back to the caller) and the caller's span as its parent, so the spans join
  the caller's trace in the backend; the handler's calls are its children;
* database queries and transactions and outgoing HTTP calls are ``CLIENT``
  spans under the call that made them; an HTTP call keeps the ``traceparent``
  it sent (its trace and span id), which the callee's request names as parent;
* a span's trace id is its parent's; a root call's is its correlation chain's
  (ElixirScope's chain ids are W3C trace ids; another id is hashed to one).
  Other span ids are derived from the recording (process and event id), so the
  same run exports to the same ids every time;
* each recording process is a resource: ``service.name`` its program,
  ``process.pid``, ``host.name`` its node, ``elixirscope.producer`` and
  ``elixirscope.run``.

Spans go out in batches of ``batch_spans``. A file gets the batches one after
another: protobuf merges concatenated messages of one type by appending their
repeated fields, so the file is itself one ``ExportTraceServiceRequest``
holding every span, written without holding them all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from elixirscope.contracts.trace import HttpCall, RequestStart
from elixirscope.visualization.export.walk import Call, Close, Item, Lane, Open, Span

__all__ = ["BATCH_SPANS", "CollectorError", "OtlpWriter", "post_to", "span_id_of"]

BATCH_SPANS = 2048
"""Spans per ``ExportTraceServiceRequest`` (one POST): collectors take a few MB a request."""


class CollectorError(Exception):
    """The collector did not take a batch: ``unreachable`` (nothing answered) or refused."""

    def __init__(self, message: str, unreachable: bool) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def span_id_of(producer: str, key: str) -> bytes:
    """8 bytes for something recorded, the same on every export of it."""
    return hashlib.blake2b(f"{producer}/{key}".encode(), digest_size=8).digest()


def _trace_for_chain(correlation_id: str | None, producer: str, call_id: int) -> bytes:
    if correlation_id and len(correlation_id) == 32:
        try:
            raw = bytes.fromhex(correlation_id)
            if any(raw):
                return raw
        except ValueError:
            pass
    seed = correlation_id if correlation_id else f"{producer}/root/{call_id}"
    return hashlib.blake2b(seed.encode("utf-8", "backslashreplace"), digest_size=16).digest()


def _hex(value: str | None, size: int) -> bytes | None:
    if not value or len(value) != size * 2:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw if any(raw) else None


class OtlpWriter:
    """Spans of the walk, gathered into batches; ``send`` gets each serialized batch."""

    def __init__(
        self, send: Callable[[bytes], None], *, run: str | None, batch_spans: int = BATCH_SPANS
    ) -> None:
        from elixirscope import __version__

        self.send = send
        self.run = run
        self.version = __version__
        self.batch_spans = batch_spans
        self.pending: dict[str, list[Any]] = {}
        self.resources: dict[str, Lane] = {}
        self.pending_count = 0
        self.spans = 0
        self.batches = 0
        self.bytes = 0
        self.open: dict[tuple[str, int], tuple[Call, bytes, bytes]] = {}  # call -> trace, span

    # ------------------------------------------------------------ ids

    def _ids_at_open(self, call: Call) -> tuple[bytes, bytes]:
        parent = self.open.get((call.producer, call.parent_id))
        if parent is not None:
            trace = self._trace_of(*parent)
        else:
            trace = _trace_for_chain(call.correlation_id, call.producer, call.call_id)
        return trace, span_id_of(call.producer, str(call.call_id))

    @staticmethod
    def _trace_of(call: Call, trace: bytes, span: bytes) -> bytes:
        if call.request is not None:
            return _hex(call.request.trace_id, 16) or trace
        return trace

    @staticmethod
    def _span_of(call: Call, trace: bytes, span: bytes) -> bytes:
        if call.request is not None:
            return _hex(call.request.span_id, 8) or span
        return span

    def _parent(self, producer: str, parent_id: int) -> tuple[bytes, bytes] | None:
        """(trace, span id) of the call open as ``parent_id`` in ``producer``."""
        found = self.open.get((producer, parent_id))
        if found is None:
            return None
        return self._trace_of(*found), self._span_of(*found)

    # ------------------------------------------------------------ items

    def add(self, item: Item) -> None:
        kind = type(item)
        if kind is Open:
            assert isinstance(item, Open)
            if item.first:
                call = item.call
                self.open[(call.producer, call.call_id)] = (call, *self._ids_at_open(call))
        elif kind is Close:
            assert isinstance(item, Close)
            if item.final:
                self._call_span(item.call)
        elif kind is Span:
            assert isinstance(item, Span)
            self._other_span(item)  # a request its call served is that call's span
        elif kind is Lane:
            assert isinstance(item, Lane)
            self.resources.setdefault(item.producer, item)

    def _call_span(self, call: Call) -> None:
        from opentelemetry.proto.trace.v1 import trace_pb2

        found = self.open.pop((call.producer, call.call_id), None)
        if found is None:  # closed without an open (cannot happen from walk)
            found = (call, *self._ids_at_open(call))
        trace, span_id = self._trace_of(*found), self._span_of(*found)
        parent = self._parent(call.producer, call.parent_id)
        span = trace_pb2.Span(
            trace_id=trace,
            span_id=span_id,
            name=call.function,
            kind=trace_pb2.Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=call.start_ns,
            end_time_unix_nano=max(call.end_ns, call.start_ns),
        )
        attrs: dict[str, Any] = {
            "code.function.name": call.function,
            "elixirscope.call_id": call.call_id,
        }
        if call.file:
            attrs["code.file.path"] = call.file
            attrs["code.line.number"] = call.line
        if call.correlation_id:
            attrs["elixirscope.correlation_id"] = call.correlation_id
        for name, value in (call.args or {}).items():
            attrs[f"elixirscope.arg.{name}"] = value
        if call.result is not None:
            attrs["elixirscope.result"] = call.result
        if call.status == "unfinished":
            attrs["elixirscope.unfinished"] = True
        request = call.request
        if request is not None:
            self._as_server(span, attrs, request, call)
        elif parent is not None:
            span.parent_span_id = parent[1]
        if call.error is not None:
            exc_type, message = call.error
            span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
            span.status.message = f"{exc_type}: {message}"
            event = span.events.add(name="exception", time_unix_nano=call.end_ns)
            _attributes(
                event.attributes,
                {
                    "exception.type": exc_type,
                    "exception.message": message,
                    "exception.stacktrace": "\n".join(call.traceback or []) or None,
                },
            )
        _attributes(span.attributes, attrs)
        self._queue(call.producer, span)

    def _as_server(
        self, span: Any, attrs: dict[str, Any], request: RequestStart, call: Call
    ) -> None:
        from opentelemetry.proto.trace.v1 import trace_pb2

        end = call.request_end
        route = end.route if end is not None else None
        span.name = f"{request.method} {route or request.path}"
        span.kind = trace_pb2.Span.SPAN_KIND_SERVER
        span.start_time_unix_nano = min(span.start_time_unix_nano, request.ts)
        remote = _hex(request.parent_span, 8)
        if remote is not None:
            span.parent_span_id = remote
        else:
            parent = self._parent(call.producer, call.parent_id)
            if parent is not None:
                span.parent_span_id = parent[1]
        if request.tracestate:
            span.trace_state = request.tracestate
        attrs.update(
            {
                "http.request.method": request.method,
                "url.path": request.path,
                "url.query": request.query,
                "client.address": request.client,
                "network.protocol.name": request.protocol,
            }
        )
        if end is not None:
            attrs["http.route"] = end.route
            if end.status:
                attrs["http.response.status_code"] = end.status
            if end.status >= 500 or end.exc_type:
                span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
                span.status.message = (
                    f"{end.exc_type}: {end.message or ''}" if end.exc_type else f"HTTP {end.status}"
                )

    def _other_span(self, item: Span) -> None:
        from opentelemetry.proto.trace.v1 import trace_pb2

        ev = item.event
        parent = self._parent(item.producer, item.parent_id)
        key = f"{item.kind}/{(ev[1] if item.kind == 'request' else ev).id}"
        span_id = span_id_of(item.producer, key)
        trace = parent[0] if parent else _trace_for_chain(item.correlation_id, item.producer, 0)
        kind = trace_pb2.Span.SPAN_KIND_CLIENT
        attrs: dict[str, Any] = {}
        parent_span = parent[1] if parent else None
        if item.kind == "http":
            assert isinstance(ev, HttpCall)
            trace = _hex(ev.trace_id, 16) or trace
            span_id = _hex(ev.span_id, 8) or span_id
            attrs = {
                "http.request.method": ev.method,
                "url.full": ev.url,
                "http.response.status_code": ev.status or None,
                "elixirscope.http.library": ev.library,
                "http.request.resend_count": ev.attempt - 1 or None,
                "error.type": "timeout" if ev.timeout else None,
            }
        elif item.kind in ("query", "tx"):
            attrs = {
                "db.system.name": ev.system,
                "db.namespace": ev.database,
                "db.query.text": getattr(ev, "statement", None),
                "db.operation.name": getattr(ev, "action", None),
                "code.file.path": ev.file,
                "code.line.number": ev.line or None,
                "elixirscope.caller": ev.caller,
            }
            rows = getattr(ev, "rows", -1)
            if rows >= 0:
                attrs["db.response.returned_rows"] = rows
        else:  # a request recorded outside its own call
            kind = trace_pb2.Span.SPAN_KIND_SERVER
            start, end = ev
            if start is not None:
                trace = _hex(start.trace_id, 16) or trace
                span_id = _hex(start.span_id, 8) or span_id
                parent_span = _hex(start.parent_span, 8) or parent_span
            attrs = {
                "http.request.method": end.method,
                "url.path": end.path,
                "http.route": end.route,
                "http.response.status_code": end.status or None,
            }
        span = trace_pb2.Span(
            trace_id=trace,
            span_id=span_id,
            name=item.name,
            kind=kind,
            start_time_unix_nano=item.start_ns,
            end_time_unix_nano=max(item.end_ns, item.start_ns),
        )
        if parent_span:
            span.parent_span_id = parent_span
        if item.error:
            span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
            span.status.message = item.error
        _attributes(span.attributes, attrs)
        self._queue(item.producer, span)

    # ------------------------------------------------------------ batches

    def _queue(self, producer: str, span: Any) -> None:
        self.pending.setdefault(producer, []).append(span)
        self.pending_count += 1
        self.spans += 1
        if self.pending_count >= self.batch_spans:
            self.flush()

    def flush(self) -> None:
        """Send what is gathered as one request (nothing when nothing is)."""
        if not self.pending_count:
            return
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        request = trace_service_pb2.ExportTraceServiceRequest()
        for producer, spans in self.pending.items():
            lane = self.resources.get(producer)
            resource_spans = request.resource_spans.add()
            _attributes(
                resource_spans.resource.attributes,
                {
                    "service.name": lane.program if lane else "unknown",
                    "process.pid": lane.os_pid if lane else None,
                    "host.name": lane.node if lane else None,
                    "elixirscope.producer": producer,
                    "elixirscope.run": self.run,
                },
            )
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.scope.name = "elixirscope"
            scope_spans.scope.version = self.version
            scope_spans.spans.extend(spans)
        data = request.SerializeToString()
        self.send(data)
        self.batches += 1
        self.bytes += len(data)
        self.pending.clear()
        self.pending_count = 0

    def write_all(self, items: Iterable[Item]) -> dict[str, int]:
        for item in items:
            self.add(item)
        self.flush()
        return {"spans": self.spans, "batches": self.batches, "bytes": self.bytes}


def _attributes(target: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        if value is None:
            continue
        attr = target.add(key=key)
        if isinstance(value, bool):
            attr.value.bool_value = value
        elif isinstance(value, int):
            attr.value.int_value = value
        else:
            attr.value.string_value = str(value)


def post_to(
    endpoint: str, *, timeout_s: float
) -> tuple[Callable[[bytes], None], Callable[[], None]]:
    """A sender POSTing each batch to ``endpoint`` (OTLP/HTTP protobuf), and a closer.
    A batch the collector does not take raises :class:`CollectorError`."""
    import httpx

    client = httpx.Client(timeout=timeout_s)

    def send(data: bytes) -> None:
        try:
            response = client.post(
                endpoint, content=data, headers={"content-type": "application/x-protobuf"}
            )
        except httpx.TimeoutException:
            raise CollectorError(
                f"the collector at {endpoint} did not answer within {timeout_s:g} s", True
            ) from None
        except httpx.TransportError as exc:
            raise CollectorError(f"cannot reach the collector at {endpoint}: {exc}", True) from None
        if not 200 <= response.status_code < 300:
            said = " ".join(response.text.split())[:200]
            raise CollectorError(
                f"the collector at {endpoint} refused the spans: HTTP "
                f"{response.status_code}{': ' + said if said else ''}",
                False,
            )
        _check_partial(response.content, endpoint)

    return send, client.close


def _check_partial(body: bytes, endpoint: str) -> None:
    """A collector that took the request but rejected spans says so (partial success)."""
    if not body:
        return
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    answer = trace_service_pb2.ExportTraceServiceResponse()
    try:
        answer.ParseFromString(body)
    except Exception:  # noqa: BLE001 - protobuf's DecodeError
        return  # not protobuf (some collectors answer JSON or nothing): taken
    rejected = answer.partial_success.rejected_spans
    if rejected:
        raise CollectorError(
            f"the collector at {endpoint} rejected {rejected} spans: "
            f"{answer.partial_success.error_message}",
            False,
        )
