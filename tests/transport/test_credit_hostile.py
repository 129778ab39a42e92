"""A CreditReceiver under hostile senders, over real sockets: fuzzed frames, seqs at
the top of u64, idle connections filling its table - and an honest sender still
gets every batch through."""

from __future__ import annotations

import random
import time

import zmq

from elixirscope.transport import CreditReceiver, CreditSender, free_tcp_port
from elixirscope.transport.credit_wire import encode_batch, encode_hello


def _dealer(context: zmq.Context, endpoint: str) -> zmq.Socket:
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 2000)
    sock.connect(endpoint)
    return sock


def _drain(receiver: CreditReceiver, until, sender: CreditSender | None = None,
           timeout: float = 30.0) -> list:
    """Batches taken until ``until(receiver, batches)``, pumping ``sender`` in the same
    thread (the timeout is a hang guard, not a limit)."""
    taken: list = []
    deadline = time.monotonic() + timeout
    while not until(receiver, taken):
        assert time.monotonic() < deadline, receiver.stats
        if sender is not None:
            sender.pump()
        batch = receiver.recv(timeout=0.1)
        if batch is not None:
            taken.append(batch)
    return taken


def test_fuzzed_frames_are_counted_and_an_honest_sender_gets_through():
    context = zmq.Context()
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    receiver = CreditReceiver(endpoint, window=4, context=context)
    rng = random.Random(9)
    hostile = _dealer(context, endpoint)
    try:
        hostile.send_multipart(encode_hello(2**64 - 1, "h"))
        hostile.send_multipart(encode_batch(2**64 - 1, 1, b"x"))
        for _ in range(500):
            frames = [bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 30)))
                      for _ in range(rng.randrange(1, 4))]
            if rng.random() < 0.5:  # a real header, so the parser goes further in
                frames[0] = b"CS\x01" + bytes([rng.randrange(0, 6)]) + frames[0]
            hostile.send_multipart(frames)
        _drain(receiver, lambda r, _: r.stats.malformed >= 2)
        assert "2**62" in receiver.stats.last_error or receiver.stats.malformed > 2
        with CreditSender(endpoint, stream="honest", context=context) as sender:
            for n in range(10):  # within its queue: nothing waits on credit here
                sender.send(b"payload-%d" % n, 1)
            honest = _drain(receiver, lambda _, got: sum(b.stream == "honest" for b in got) >= 10,
                            sender)
        assert [b.payload for b in honest if b.stream == "honest"] == [b"payload-%d" % n
                                                                       for n in range(10)]
    finally:
        hostile.close()
        receiver.close()
        context.term()


def test_idle_senders_are_evicted_to_admit_a_new_one():
    context = zmq.Context()
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    receiver = CreditReceiver(endpoint, window=2, max_senders=3, idle_timeout=0.2, context=context)
    idle = [_dealer(context, endpoint) for _ in range(3)]
    try:
        for n, sock in enumerate(idle):
            sock.send_multipart(encode_hello(0, f"idle-{n}"))
        _drain(receiver, lambda r, _: r.stats.senders == 3)
        time.sleep(0.3)  # they say nothing more: idle past idle_timeout
        with CreditSender(endpoint, stream="late", context=context) as sender:
            sender.send(b"made it", 1)
            got = _drain(receiver, lambda _, got: any(b.stream == "late" for b in got), sender)
        assert got[-1].payload == b"made it"
        assert receiver.stats.evicted_idle == 3 and receiver.stats.rejected == 0
    finally:
        for sock in idle:
            sock.close()
        receiver.close()
        context.term()
