"""Chunk bytes: a list of events as msgpack, compressed; one tag byte says how.

The tag byte lets the codec change without rewriting old chunks: ``r`` raw,
``z`` zlib (level 1), ``Z`` zstandard (level -1, the default: smallest and
fastest of the three in scripts/bench_store.py) and ``4`` lz4 when that optional
package is installed (compared by the bench).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import msgspec
import zstandard

from elixirscope.contracts.trace import AnyEvent

__all__ = [
    "CODECS",
    "DEFAULT_CODEC",
    "decode_chunk",
    "encode_chunk",
    "msgpack_array",
    "pack_chunk",
]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[AnyEvent])

DEFAULT_CODEC = "zstd"

# name -> (tag, compress, decompress)
CODECS: dict[str, tuple[bytes, Callable[[bytes], bytes], Callable[[Any], bytes]]] = {
    "raw": (b"r", bytes, bytes),
    "zlib": (b"z", lambda raw: zlib.compress(raw, 1), zlib.decompress),
}
_zc, _zd = zstandard.ZstdCompressor(level=-1), zstandard.ZstdDecompressor()
CODECS["zstd"] = (b"Z", _zc.compress, _zd.decompress)
try:  # optional, for the bench's comparison
    import lz4.block

    CODECS["lz4"] = (b"4", lz4.block.compress, lz4.block.decompress)
except ImportError:  # pragma: no cover
    pass
_BY_TAG = {tag: decompress for tag, _, decompress in CODECS.values()}


def encode_chunk(events: list[Any], codec: str = DEFAULT_CODEC) -> bytes:
    """The stored bytes of some events."""
    return pack_chunk(_encoder.encode(events), codec)


def pack_chunk(raw: bytes, codec: str = DEFAULT_CODEC) -> bytes:
    """The stored bytes of an already msgpack-encoded list of events."""
    try:
        tag, compress, _ = CODECS[codec]
    except KeyError:
        raise ValueError(
            f"unknown chunk codec {codec!r}; expected one of {sorted(CODECS)}"
        ) from None
    return tag + compress(raw)


def msgpack_array(items: list[bytes]) -> bytes:
    """A msgpack array of already-encoded items (no re-encoding)."""
    n = len(items)
    if n < 16:
        head = bytes((0x90 | n,))
    elif n < 0x10000:
        head = b"\xdc" + n.to_bytes(2, "big")
    else:
        head = b"\xdd" + n.to_bytes(4, "big")
    return head + b"".join(items)


def decode_chunk(data: bytes) -> list[Any]:
    """The events stored by :func:`encode_chunk`."""
    decompress = _BY_TAG.get(data[:1])
    if decompress is None:
        raise ValueError(f"unknown chunk codec tag {data[:1]!r}; the store may be newer")
    return _decoder.decode(decompress(memoryview(data)[1:]))
