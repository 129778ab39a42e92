"""The credit-stream wire protocol: layouts round-trip, bad frames are named."""

from __future__ import annotations

import struct

import pytest

from elixirscope.transport.credit_wire import (
    BatchFrame,
    ByeFrame,
    CreditFrame,
    HelloFrame,
    WireError,
    encode_batch,
    encode_bye,
    encode_credit,
    encode_hello,
    parse_credit,
    parse_sender_message,
)


def test_sender_messages_round_trip():
    assert parse_sender_message(encode_hello(7, "trace")) == HelloFrame(7, "trace")
    assert parse_sender_message(encode_batch(2**40, 1000, b"payload")) == BatchFrame(
        2**40, 1000, b"payload"
    )
    assert parse_sender_message(encode_bye()) == ByeFrame()
    assert parse_credit(encode_credit(12, 4, 2**63)) == CreditFrame(12, 4, 2**63)


def test_layout_is_the_documented_one():
    header, payload = encode_batch(5, 3, b"p")
    assert header == b"CS" + bytes([1, 2]) + struct.pack("!QI", 5, 3)
    assert payload == b"p"
    assert encode_credit(9, 2, 5) == [b"CS\x01\x04" + struct.pack("!QIQ", 9, 2, 5)]


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([], "Expected a credit-stream message, got no frames"),
        ([b"XX\x01\x02"], "Expected a header frame starting with b'CS', got b'XX\\x01\\x02'"),
        ([b"C"], "Expected a header frame starting with b'CS', got b'C'"),
        ([b"CS\x02\x02"], "Protocol version 2 is not supported; this node speaks 1"),
        ([b"CS\x01\x09"], "Unknown message kind 9; expected one of [1, 2, 3, 4]"),
        ([b"CS\x01\x02" + b"\0" * 12], "Expected 2 frame(s) for BATCH, got 1"),
        ([b"CS\x01\x02", b"p"], "Expected a 16-byte BATCH header, got 4 bytes"),
        ([b"CS\x01\x03", b"extra"], "Expected 1 frame(s) for BYE, got 2"),
        (
            [b"CS\x01\x01" + b"\0" * 8, b"\xff\xfe"],
            "Expected a UTF-8 stream name in HELLO, got invalid bytes",
        ),
        ([b"CS\x01\x01" + b"\0" * 8, b""], "Expected a stream name of 1-255 bytes in HELLO"),
        (encode_credit(1, 1, 0), "Expected HELLO, BATCH or BYE from a sender, got CREDIT"),
    ],
)
def test_bad_sender_frames_are_named(frames, message):
    with pytest.raises(WireError) as caught:
        parse_sender_message(frames)
    assert str(caught.value) == message


def test_a_sender_message_is_not_a_credit():
    with pytest.raises(WireError, match="Expected CREDIT from a receiver, got BYE"):
        parse_credit(encode_bye())


@pytest.mark.parametrize(
    ("limit", "window", "message"),
    [
        (5, 0, "Expected a window of 1-65536 not above limit 5, got 0"),
        (5, 6, "Expected a window of 1-65536 not above limit 5, got 6"),
        (2**40, 2**20, "Expected a window of 1-65536 not above limit 1099511627776, got 1048576"),
    ],
)
def test_an_impossible_window_is_refused(limit, window, message):
    with pytest.raises(WireError) as caught:
        parse_credit(encode_credit(limit, window, 1))
    assert str(caught.value) == message
