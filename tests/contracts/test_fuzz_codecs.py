"""Fuzzing the decoders every peer's bytes go through: Request, EventBatch, the
credit-stream wire and the Request intake.

The invariant is the same for each: whatever arrives, the decoder either returns
a value inside the contract's bounds or raises its one error type
(``ContractError``, ``WireError``) with a message - never anything else, which
is what used to kill actors and threads. A few hundred cases per property in the
default suite; ``ELIXIRSCOPE_HEAVY=1`` runs 10^5 each.
"""

from __future__ import annotations

import math
import os

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elixirscope.contracts import (
    ContractError,
    Limits,
    Request,
    decode_request,
    encode,
    ok_response,
)
from elixirscope.contracts.limits import INT64, MAX_NAME_CHARS, MAX_TIMEOUT_S, check_value
from elixirscope.contracts.trace import MAX_TEXT_CHARS, EventBatch, decode_batch, encode_batch
from elixirscope.transport import RequestIntake
from elixirscope.transport.credit_wire import (
    MAX_SEQ,
    BatchFrame,
    HelloFrame,
    WireError,
    encode_hello,
    parse_credit,
    parse_sender_message,
)
from elixirscope.transport.credit_wire import (
    encode_batch as wire_batch,
)

HEAVY = bool(os.environ.get("ELIXIRSCOPE_HEAVY"))
FUZZ = settings(max_examples=100_000 if HEAVY else 300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LIMITS = Limits(max_frame_bytes=64 << 10, max_depth=8, max_string_chars=512, max_items=1000)

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
           | st.floats() | st.text(max_size=40) | st.binary(max_size=40))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=30)
# Request-shaped maps whose fields hold anything at all
request_maps = st.fixed_dictionaries(
    {"kind": st.sampled_from(["request", "response", "event", ""])},
    optional={"operation": values, "to_layer": values, "from_layer": values, "params": values,
              "id": values, "correlation_id": values, "timeout": values, "priority": values,
              "v": values},
)
good_request = encode(Request(operation="status", to_layer="app", params={"a": [1, "x"]}))


def mutations(frame: bytes):
    """The frame with bytes flipped, cut off or repeated."""
    return st.one_of(
        st.tuples(st.integers(0, len(frame) - 1), st.integers(0, 255)).map(
            lambda p: frame[: p[0]] + bytes([p[1]]) + frame[p[0] + 1:]),
        st.integers(0, len(frame)).map(lambda n: frame[:n]),
        st.tuples(st.integers(0, len(frame)), st.binary(max_size=16)).map(
            lambda p: frame[: p[0]] + p[1] + frame[p[0]:]),
    )


def _request_in_bounds(request: Request) -> None:
    assert math.isfinite(request.timeout) and 0 < request.timeout <= MAX_TIMEOUT_S
    for name in (request.operation, request.to_layer, request.from_layer, request.id):
        assert isinstance(name, str) and len(name) <= MAX_NAME_CHARS
    check_value(request.params, LIMITS)  # within the limits it was decoded with


def _decodes_in_bounds_or_refuses(data: bytes) -> None:
    try:
        request = decode_request(data, LIMITS)
    except ContractError as exc:
        assert exc.code in ("malformed_request", "unsupported_version", "limit_exceeded")
        assert str(exc)
        return
    _request_in_bounds(request)


@FUZZ
@given(request_maps)
def test_request_decoder_returns_bounded_requests_or_contract_errors(fields):
    _decodes_in_bounds_or_refuses(msgspec.msgpack.encode(fields))


@FUZZ
@given(st.binary(max_size=256) | mutations(good_request))
def test_request_decoder_on_arbitrary_bytes(data):
    _decodes_in_bounds_or_refuses(data)


events = st.lists(st.one_of(
    st.tuples(st.just("call"), values, values, values, values, values, values, values),
    st.tuples(st.just("custom"), st.integers(0, 9), st.integers(0, 9), st.integers(0, 9),
              st.none(), st.integers(0, 9), st.text(max_size=5), values),
    st.tuples(st.just("return"), st.integers(), st.integers(), st.integers(), st.none(),
              st.integers(), st.integers(), st.text(max_size=5), st.integers()),
), max_size=4)
batches = st.tuples(values, values, values, values, values, values, values, events)
good_batch = encode_batch(node="n", pid=1, program="p", producer="n:1:1", seq=1, sent_ts=1,
                          dropped=0, events=[("call", 1, 2, 3, None, 0, "f", {"a": "1"})])


def _batch_in_bounds_or_refused(data: bytes) -> None:
    try:
        batch = decode_batch(data)
    except ContractError as exc:
        assert exc.code == "malformed_batch" and str(exc)
        return
    assert isinstance(batch, EventBatch)
    for value in (batch.pid, batch.seq, batch.dropped):
        assert 0 <= value <= INT64
    assert -(2**63) <= batch.sent_ts <= INT64
    for text in (batch.node, batch.program, batch.producer):
        assert len(text) <= MAX_TEXT_CHARS
    for event in batch.events:
        assert -(2**63) <= event.id <= INT64 and -(2**63) <= event.ts <= INT64


@FUZZ
@given(batches)
def test_batch_decoder_returns_bounded_batches_or_contract_errors(fields):
    try:
        data = msgspec.msgpack.encode(fields)
    except (OverflowError, TypeError):
        return  # not encodable: no peer can send it either
    _batch_in_bounds_or_refused(data)


@FUZZ
@given(st.binary(max_size=256) | mutations(good_batch))
def test_batch_decoder_on_arbitrary_bytes(data):
    _batch_in_bounds_or_refused(data)


frames = st.lists(st.binary(max_size=24), max_size=4)
headers = st.tuples(st.sampled_from([b"CS", b"XX"]), st.integers(0, 3), st.integers(0, 6)).map(
    lambda h: h[0] + bytes(h[1:]))
wire_messages = st.one_of(
    frames,
    st.tuples(headers, st.binary(max_size=20), st.lists(st.binary(max_size=8), max_size=2)).map(
        lambda m: [m[0] + m[1], *m[2]]),
    st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1), st.binary(max_size=8)).map(
        lambda m: wire_batch(*m)),
    st.tuples(st.integers(0, 2**64 - 1), st.text(max_size=300)).map(
        lambda m: encode_hello(m[0], m[1]) if m[1].encode() else [b"CS"]),
)


@FUZZ
@given(wire_messages)
def test_wire_parser_returns_bounded_frames_or_wire_errors(message):
    try:
        parsed = parse_sender_message(message)
    except WireError as exc:
        assert str(exc)
    else:
        if isinstance(parsed, BatchFrame):
            assert 0 <= parsed.seq <= MAX_SEQ and 0 <= parsed.event_count < 2**32
        elif isinstance(parsed, HelloFrame):
            assert 0 <= parsed.next_seq <= MAX_SEQ and 1 <= len(parsed.stream.encode()) <= 255
    try:
        credit = parse_credit(message)
    except WireError as exc:
        assert str(exc)
    else:
        assert 1 <= credit.window <= credit.limit


envelopes = st.lists(st.binary(min_size=0, max_size=6), min_size=1, max_size=3)


@FUZZ
@given(st.lists(st.tuples(envelopes, st.binary(max_size=64) | st.just(good_request)
                          | mutations(good_request)), max_size=12),
       st.integers(1, 4), st.integers(1, 3))
def test_intake_answers_each_frame_once_and_frees_every_slot(messages, total, per_client):
    intake = RequestIntake("api", limits=LIMITS, max_in_flight=total,
                           max_in_flight_per_client=per_client)
    admitted = []
    for envelope, body in messages:
        taken = intake.admit([*envelope, body])
        if taken.reply is None:
            assert taken.request is not None
            admitted.append(taken)
        else:
            assert msgspec.msgpack.decode(taken.reply)["status"] == "error"
        assert intake.stats.in_flight <= total
    for taken in admitted:
        intake.reply(taken, ok_response(taken.request, {"x": 1}, from_layer="api"))
    stats = intake.stats
    assert stats.in_flight == 0 and stats.requests == len(messages)
    assert stats.requests == stats.ok + stats.partial + stats.errors
    assert stats.ok == len(admitted)


def test_intake_answers_busy_past_either_limit_and_names_it():
    intake = RequestIntake("api", max_in_flight=3, max_in_flight_per_client=2)
    frame = encode(Request(operation="status", to_layer="app"))
    first, second = intake.admit([b"A", b"", frame]), intake.admit([b"A", b"", frame])
    third = intake.admit([b"A", b"", frame])
    busy = msgspec.msgpack.decode(third.reply)
    assert busy["error"]["code"] == "busy" and "max_in_flight_per_client 2" in busy["error"]["message"]
    assert intake.admit([b"B", b"", frame]).reply is None  # another connection still gets in
    over = msgspec.msgpack.decode(intake.admit([b"C", b"", frame]).reply)
    assert over["error"]["code"] == "busy" and "max_in_flight 3" in over["error"]["message"]
    intake.reply(first, ok_response(first.request, 1, from_layer="api"))
    assert intake.admit([b"C", b"", frame]).reply is None  # a freed slot is used again
    assert intake.stats.busy == 2 and intake.stats.in_flight == 3
    intake.fail(second, RuntimeError("boom"))
    assert intake.stats.handler_failures == 1 and intake.stats.in_flight == 2


def test_a_batch_head_is_read_without_its_events():
    from elixirscope.contracts.trace import batch_head

    frame = encode_batch(node="n", pid=3, program="p", producer="n:3:9", seq=12, sent_ts=1,
                         dropped=0, events=[("call", 1, 1, 1, None, 0, "f", None)], run="ab" * 8)
    head = batch_head(frame)
    assert (head.producer, head.seq, head.pid) == ("n:3:9", 12, 3)
    with pytest.raises(ContractError, match="malformed event batch head"):
        batch_head(b"\x93\x01")
