"""Where the shipper parks recorded events while the program traces its own memory.

A program that measures itself with ``tracemalloc`` counts every Python
object of its process, the shipper thread's too. The ring keeps what waits
for shipping outside the Python heap (``ring``), but handing a batch to a sink
does not: the embedded store decodes it and writes it, a megabyte of
short-lived objects per thousand events that a leak test sees whenever it
measures while a batch is under way. So while ``tracemalloc`` is tracing, the
shipper does not hand batches on: the ring writes them, encoded as they are,
to a :class:`Spool` file (``RingBuffer.drain_to``: nothing of the Python heap
is used), and they go to the sink, in order, once tracing stops, or at
``flush``/``close`` (a run's end). The program's measurements then see no
recording at all; what it costs is the delay (and the disk).

The file is an unnamed temporary file (gone with the process). It holds
chunks: a 16-byte header — ``b"ESP1"``, events, payload bytes, and the ring
drops to report with them (each a big-endian u32) — then the msgpack list of
the chunk's events. At most ``max_bytes`` wait in it; past that (or when the
file cannot be written) the shipper hands batches on as usual.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Any

__all__ = ["DEFAULT_MAX_BYTES", "Spool", "tracing_memory"]

DEFAULT_MAX_BYTES = 1 << 30
_HEADER = struct.Struct(">4sIII")
_MAGIC = b"ESP1"

try:
    from _tracemalloc import is_tracing as _is_tracing
except ImportError:  # an interpreter without tracemalloc

    def _is_tracing() -> bool:
        return False


def tracing_memory() -> bool:
    """The program traces its memory allocations (``tracemalloc.start()``) now."""
    return _is_tracing()


def _unnamed_file() -> int:
    """A new file with no name, for this process only: its fd.

    Made with ``os`` alone: the spool is first needed while the program traces
    its memory, and importing ``tempfile`` then (it imports ``random``,
    ``shutil``...) would show up in the program's measurements as growth.
    """
    directory = os.environ.get("TMPDIR") or "/tmp"
    flag = getattr(os, "O_TMPFILE", 0)
    if flag:
        try:
            return os.open(directory, flag | os.O_RDWR, 0o600)
        except OSError:
            pass  # a file system without unnamed files: name one and unlink it at once
    path = os.path.join(directory, f"elixirscope-spool-{os.getpid()}-{os.urandom(6).hex()}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.unlink(path)
    return fd


class Spool:
    """Chunks of encoded events in an unnamed temporary file, taken back in order."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if type(max_bytes) is not int or max_bytes < 1:
            raise ValueError(f"Expected `max_bytes` an int >= 1, got {max_bytes!r} - at Spool")
        self.max_bytes = max_bytes
        self._file: int | None = None  # the fd of an unnamed file
        self._end = 0  # where the next chunk goes
        self._read = 0  # where the next chunk to take starts
        self.events = 0  # waiting now
        self.parked = 0  # ever parked

    @property
    def waiting(self) -> bool:
        return self._read < self._end

    @property
    def size(self) -> int:
        """Bytes waiting."""
        return self._end - self._read

    def has_room(self) -> bool:
        return self._end < self.max_bytes

    def park(self, ring: Any, max_n: int, dropped: Callable[[], int]) -> int:
        """Move up to ``max_n`` of ``ring``'s oldest records into a chunk, with the drops
        ``dropped()`` gives (asked after the drain); how many. ``OSError``: nothing moved."""
        fd = self._fd()
        start = self._end
        os.pwrite(fd, _HEADER.pack(_MAGIC, 0, 0, 0), start)
        os.lseek(fd, start + _HEADER.size, os.SEEK_SET)
        try:
            n, size = ring.drain_to(fd, max_n)
        except BaseException:
            os.ftruncate(fd, start)
            raise
        lost = dropped()
        if not n and not lost:
            os.ftruncate(fd, start)
            return 0
        os.pwrite(fd, _HEADER.pack(_MAGIC, n, size, lost), start)
        self._end = start + _HEADER.size + size
        self.events += n
        self.parked += n
        return n

    def peek(self) -> tuple[bytes, int, int] | None:
        """The oldest chunk: ``(msgpack list of its events, events, drops)``; None if none."""
        if not self.waiting:
            return None
        fd = self._fd()
        magic, n, size, lost = _HEADER.unpack(os.pread(fd, _HEADER.size, self._read))
        if magic != _MAGIC:
            raise OSError(f"the spool is damaged at byte {self._read} (no chunk header)")
        data = os.pread(fd, size, self._read + _HEADER.size)
        if len(data) != size:
            raise OSError(f"the spool is damaged at byte {self._read} (chunk cut short)")
        return data, n, lost

    def pop(self) -> None:
        """Done with the oldest chunk (shipped, or given up on)."""
        fd = self._fd()
        _, n, size, _ = _HEADER.unpack(os.pread(fd, _HEADER.size, self._read))
        self._read += _HEADER.size + size
        self.events -= n
        if self._read >= self._end:  # all taken: the file starts again, empty
            os.ftruncate(fd, 0)
            self._read = self._end = 0

    def close(self) -> None:
        if self._file is not None:
            os.close(self._file)
            self._file = None

    def _fd(self) -> int:
        if self._file is None:
            self._file = _unnamed_file()
        return self._file

    def __repr__(self) -> str:
        return f"<Spool {self.events} events, {self.size} bytes>"
