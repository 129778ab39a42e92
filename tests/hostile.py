"""Frames an unauthenticated client can send a daemon, built byte by byte, and a raw
DEALER to send them with: shared by the hostile-message tests and scripts/chaos.py."""

from __future__ import annotations

import msgspec
import zmq

from elixirscope.contracts import decode_response
from elixirscope.contracts.trace import encode_batch
from elixirscope.transport import security
from elixirscope.transport.credit_wire import encode_batch as wire_batch
from elixirscope.transport.credit_wire import encode_hello
from elixirscope.transport.security import Keys

U64 = 2**64 - 1


def request_frame(operation: str, to_layer: str = "app", **fields) -> bytes:
    """A Request as a plain map, so fields can hold what the Struct would never make."""
    return msgspec.msgpack.encode({"kind": "request", "operation": operation,
                                   "to_layer": to_layer, **fields})


def deep_list(depth: int) -> bytes:
    """msgpack of a list nested ``depth`` deep (no encoder can make one this deep)."""
    return b"\x91" * depth + b"\x00"


def batch(*, seq: int = 1, dropped: int = 0, function: str = "f", events: list | None = None,
          producer: str = "hostile:1:1") -> bytes:
    return encode_batch(node="hostile", pid=1, program="hostile", producer=producer, seq=seq,
                        sent_ts=1, dropped=dropped,
                        events=events if events is not None else [("call", 1, 1, 1, None, 0, function, None)])


def batch_with_deep_custom_data(depth: int) -> bytes:
    """A batch whose one CustomEvent's data holds a list nested ``depth`` deep."""
    head = msgspec.msgpack.encode(("hostile", 1, "hostile", "hostile:1:1", 1, 1, 0))[1:]
    event = msgspec.msgpack.encode(("custom", 1, 1, 1, None, 0, "deep"))[1:]
    return b"\x98" + head + b"\x91" + b"\x98" + event + b"\x81\xa1a" + deep_list(depth)


def batch_with_raw_dropped(dropped_msgpack: bytes) -> bytes:
    """A batch whose ``dropped`` is the given msgpack bytes (2**64 - 1, -1 ...)."""
    head = msgspec.msgpack.encode(("hostile", 1, "hostile", "hostile:1:1", 1, 1))[1:]
    events = msgspec.msgpack.encode([("call", 1, 1, 1, None, 0, "f", None)])
    return b"\x98" + head + dropped_msgpack + events


class Raw:
    """A DEALER that sends any frames and reads whatever comes back."""

    def __init__(self, endpoint: str, context: zmq.Context | None = None,
                 keys: Keys | None = None) -> None:
        """``keys``: the daemon's client key - these frames come from a peer it lets in."""
        self._context = context or zmq.Context.instance()
        self.socket = self._context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 5000)  # what was sent goes out before close
        self.socket.setsockopt(zmq.SNDHWM, 0)
        security.secure_client(self.socket, keys)
        self.socket.connect(endpoint)

    def ask(self, payload: bytes, timeout: float = 30.0):
        """Send one Request frame; its Response (decoded) or None after ``timeout``."""
        self.socket.send_multipart([b"", payload])
        return self.answer(timeout)

    def answer(self, timeout: float = 30.0):
        if not self.socket.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        frames = self.socket.recv_multipart()
        return decode_response(frames[-1])

    def send(self, frames: list[bytes]) -> None:
        self.socket.send_multipart(frames)

    def close(self) -> None:
        self.socket.close()

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def hello(next_seq: int, stream: str = "hostile") -> list[bytes]:
    return encode_hello(next_seq, stream)


def wire(seq: int, events: int, payload: bytes) -> list[bytes]:
    return wire_batch(seq, events, payload)


def restarts(tree: dict) -> dict[str, tuple[int | None, int]]:
    """path -> (pid, restarts) of every node of a ``tree`` answer."""
    out: dict[str, tuple[int | None, int]] = {}

    def walk(node: dict) -> None:
        out[node["path"]] = (node["pid"], node["restarts"])
        for child in node.get("children", []):
            walk(child)
    walk(tree["root"])
    return out
