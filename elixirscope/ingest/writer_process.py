"""The embedded store's writer in a process of its own, fed through a pipe.

Written by a thread of the recording process, the store competes with the
program for the GIL: SQLite and zstd let go of it around every statement and
every chunk, and each time the program's thread must wait to take it back
(measured on a recorded web server: the main thread paid 40 to 100 µs a
request for it, and answered 15 to 20 % fewer requests a second). A long run
therefore hands its frames to a child process that decodes and stores them:
the recording process only writes bytes to a pipe.

Host side, :class:`WriterProcess`: ``python -P -m elixirscope.ingest.writer_process
DATA_DIR MAX_AGE_HOURS MAX_SIZE_MB NICE``, in a session of its own (a terminal's
Ctrl-C is the program's business; the writer ends when its input does), ``NICE``
lower in priority than the program (``store.writer_nice``): the writer's work
can wait, the program's cannot. At the program's priority, on the bench's two
cores (``scripts/bench_web.py``: uvicorn, wrk and the writer), each wake-up of
the writer preempted the server's thread: the recorded server answered 14 to 21 %
fewer requests a second than plain, against 10 to 16 % with the writer at nice 10
in the same runs (README, Benchmarks → Web).
:meth:`WriterProcess.send` writes one frame (8-byte little-endian length, then
the frame) and blocks while the pipe is full: a writer that falls behind slows
the shipper, the ring fills, and its overflow policy decides, as it does for an
in-thread store that falls behind.

Child side, :func:`main`: reads frames, stores those waiting together in one
transaction, and after each answers the frames handled so far and the events
it could not store (two 8-byte counts) on its stdout. At the end of its input
(the host closed it, or died) it stores what it has, closes the store and
exits: a host killed mid-run loses nothing it had written to the pipe. A frame
that is not a batch is counted and reported on stderr; the writer goes on.

What is lost is counted: events the child could not store, and, when the child
dies, the events it had not confirmed (:attr:`WriterProcess.events_lost`). Those
frames are kept until confirmed (:attr:`WriterProcess.unconfirmed`), so that the host
can store the ones the child did not (``stores.RunStore``: a killed writer loses nothing).
A process forked from the host closes its copies of the pipe (else the child
would wait for it to end); it records, if at all, through a writer of its own.
"""

from __future__ import annotations

import os
import select
import signal
import struct
import subprocess
import sys
import time
import weakref
from collections import deque
from typing import Any

__all__ = ["WriterProcess", "main"]

_HEADER = struct.Struct("<Q")
_ACK = struct.Struct("<QQ")
MAX_FRAME_BYTES = 1 << 30
FRAMES_PER_COMMIT = 16
"""At most this many waiting frames go into one transaction (fewer commits, fewer pages)..."""
BYTES_PER_COMMIT = 5 << 19
"""... and frames of at most this many bytes once the first is taken (2.5 MB: 16 frames of
1,000 events). A writer that fell behind decodes a transaction's frames at once: this
bounds that peak whatever ``capture.batch_size`` the host ships with."""
PIPE_BYTES = 1 << 20
"""The pipe's capacity, asked of Linux (the default, 64 KiB, holds about one batch)."""
CLOSED = "closed"
"""What :attr:`WriterProcess.ended` says of a writer that stored all it was given and exited."""
NO_PROGRESS_S = 10.0
"""Closing waits at least this long without a confirmation before it gives up on the child."""


# --------------------------------------------------------------------------- host


_live: weakref.WeakSet[WriterProcess] = weakref.WeakSet()


def _forget_in_child() -> None:
    for writer in list(_live):
        writer._forget()


os.register_at_fork(after_in_child=_forget_in_child)


class WriterProcess:
    """A child process storing the frames :meth:`send` gives it (see the module doc).

    Not thread-safe: one thread (the shipper's, under its lock) calls it."""

    def __init__(
        self, data_dir: str, max_age_hours: float = 0.0, max_size_mb: int = 0, nice: int = 0
    ) -> None:
        argv = [
            sys.executable,
            "-P",  # the program's directory is not on its path: nothing there shadows ours
            "-m",
            "elixirscope.ingest.writer_process",
            os.path.abspath(data_dir),
            repr(float(max_age_hours)),
            str(int(max_size_mb)),
            str(int(nice)),
        ]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            bufsize=0,
            start_new_session=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()
        os.set_blocking(self._out, False)
        try:
            import fcntl

            fcntl.fcntl(self._in, 1031, PIPE_BYTES)  # F_SETPIPE_SZ
        except (ImportError, OSError):
            pass  # the default capacity: the pipe is only fuller sooner
        self.pid = self.proc.pid
        self.sent = 0  # frames written to the pipe
        self.handled = 0  # frames the child answered for
        self.events_failed = 0  # events the child could not store
        self.ended: str | None = None  # why the child is gone, once it is (CLOSED: done)
        self.unconfirmed: list[tuple[bytes, int]] = []  # once gone: what it never answered for
        self._waiting: deque[tuple[bytes, int]] = deque()  # frames not yet answered, and events
        self._acks = bytearray()
        self._forked = False
        _live.add(self)

    @property
    def events_lost(self) -> int:
        """Events of the frames the child never answered for (it died), until the host
        stores them itself (``stores.RunStore``)."""
        return sum(events for _, events in self.unconfirmed)

    @property
    def alive(self) -> bool:
        return self.ended is None and not self._forked

    def send(self, frame: bytes, event_count: int) -> bool:
        """Hand one frame to the child; False if the child is gone (then
        :attr:`ended` says why, and its unconfirmed events are in :attr:`events_lost`)."""
        if not self.alive:
            return False
        frame = bytes(frame)  # kept until answered for: not a buffer the caller reuses
        data = memoryview(_HEADER.pack(len(frame)) + frame)
        try:
            while data:
                written = os.write(self._in, data)
                data = data[written:]
        except OSError as exc:  # BrokenPipeError: the child is gone
            self._gone(f"{type(exc).__name__}: {exc}")
            return False
        self.sent += 1
        self._waiting.append((frame, event_count))
        self._read_acks()
        return True

    def flush(self, timeout: float) -> bool:
        """Wait until the child answered for every frame sent; False on timeout or if
        it is gone."""
        deadline = time.monotonic() + timeout
        while self.alive and self.handled < self.sent:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._wait_acks(left)
        return self.alive and self.handled >= self.sent

    def close(self, patience: float = 0.0) -> None:
        """End the child's input and wait while it keeps answering (at least
        :data:`NO_PROGRESS_S` without an answer before giving up on it)."""
        if self._forked:
            return
        _close(self.proc.stdin)
        patience = max(patience, NO_PROGRESS_S)
        last, answered = time.monotonic(), self.handled
        stopped = False
        while self.ended is None:
            if self._wait_acks(0.2) is None:  # end of its output: it has exited
                break
            if self.handled != answered:
                last, answered = time.monotonic(), self.handled
            elif time.monotonic() - last > patience:
                self.proc.kill()
                stopped = True
                break
        try:
            code = self.proc.wait(timeout=patience)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code, stopped = self.proc.wait(), True
        if stopped:
            self._gone(f"was stopped: it had not finished {patience:g} s after its input ended")
        elif self.ended is None:
            self._gone(f"exited with status {code}" if code else CLOSED)
        _close(self.proc.stdout)

    def stats(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "frames_sent": self.sent,
            "frames_stored": self.handled,
            "events_failed": self.events_failed,
            "events_lost": self.events_lost,
            "ended": self.ended,
        }

    # ----------------------------------------------------------------- machinery

    def _read_acks(self) -> bool | None:
        """Take what the child answered so far; None at the end of its output."""
        try:
            chunk = os.read(self._out, 1 << 16)
        except BlockingIOError:
            return False
        except OSError as exc:
            self._gone(f"{type(exc).__name__}: {exc}")
            return None
        if not chunk:
            if self.handled < self.sent:
                self._gone(f"exited with status {self.proc.wait()}")
            return None
        self._acks += chunk
        whole = len(self._acks) - len(self._acks) % _ACK.size
        for offset in range(0, whole, _ACK.size):
            handled, failed = _ACK.unpack_from(self._acks, offset)
            for _ in range(handled - self.handled):
                self._waiting.popleft()
            self.handled, self.events_failed = handled, failed
        del self._acks[:whole]
        return True

    def _wait_acks(self, timeout: float) -> bool | None:
        ready, _, _ = select.select([self._out], [], [], max(0.0, timeout))
        return self._read_acks() if ready else False

    def _gone(self, why: str) -> None:
        if self.ended is not None:
            return
        self.ended = why
        try:  # what it answered before it went is still in the pipe
            while self._read_acks():
                pass
        except Exception:  # noqa: BLE001 - then those are counted lost
            pass
        self.unconfirmed = list(self._waiting)
        self._waiting.clear()

    def _forget(self) -> None:
        """In a forked child: let go of the pipe (the parent's), touch nothing else."""
        self._forked = True
        _close(self.proc.stdin)
        _close(self.proc.stdout)


def _close(pipe: Any) -> None:
    try:
        if pipe is not None:
            pipe.close()
    except OSError:
        pass


# --------------------------------------------------------------------------- child


def main(argv: list[str]) -> int:
    """The child: store the frames on stdin until it ends (see the module doc)."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # its input's end is its only signal
    data_dir, max_age_hours, max_size_mb = argv[0], float(argv[1]), int(argv[2])
    nice = int(argv[3]) if len(argv) > 3 else 0
    if nice > 0:
        try:
            os.nice(nice)
        except (OSError, AttributeError) as exc:  # not allowed, or no nice (not Unix)
            _say(f"could not lower its priority by {nice} ({exc}); it runs at the program's")
    from elixirscope.contracts import ContractError
    from elixirscope.contracts.trace import EventBatch, decode_batch
    from elixirscope.ingest.stores import open_writer_store

    store = open_writer_store(data_dir, max_age_hours=max_age_hours, max_size_mb=max_size_mb)
    frames = _Frames(sys.stdin.fileno())
    handled = failed = malformed = 0
    out = sys.stdout.fileno()
    try:
        while True:
            waiting = frames.next_group(FRAMES_PER_COMMIT, BYTES_PER_COMMIT)
            if not waiting:
                break
            pairs: list[EventBatch | tuple[EventBatch, bytes | None]] = []
            events = 0
            for frame in waiting:
                try:
                    batch = decode_batch(frame)
                    pairs.append((batch, frame))
                    events += len(batch.events)
                except ContractError as exc:
                    malformed += 1
                    if malformed == 1:
                        _say(f"a frame that is not an event batch was skipped ({exc})")
            try:
                if pairs:
                    store.append_many(pairs)
            except Exception as exc:  # noqa: BLE001 - counted, said, and on to the next
                failed += events
                _say(f"{len(pairs)} batches ({events} events) could not be stored: {exc}")
            handled += len(waiting)
            os.write(out, _ACK.pack(handled, failed))
    finally:
        store.close()
    if malformed:
        _say(f"{malformed} frames that were not event batches were skipped")
    return 0


def _say(text: str) -> None:
    print(f"elixirscope run: the store's writer: {text}", file=sys.stderr, flush=True)


class _Frames:
    """Length-prefixed frames from a pipe: the next one, and any others already there."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.eof = False

    def next_group(self, most: int, most_bytes: int = MAX_FRAME_BYTES) -> list[bytes]:
        """At least one frame (waiting for it), then those already readable, up to
        ``most`` frames and, past the first, ``most_bytes`` in all; empty at the end of
        the input."""
        group: list[bytes] = []
        while not group:
            self._complete(group, most, most_bytes)
            if group or self.eof:
                break
            self._read(block=True)
        while self._complete(group, most, most_bytes) and not self.eof:
            if not self._read(block=False):
                break
        return group

    def _complete(self, group: list[bytes], most: int, most_bytes: int) -> bool:
        """Move the frames the buffer holds whole into ``group`` (the first whatever its
        size, then while ``most`` and ``most_bytes`` allow); whether it could take more."""
        taken = sum(map(len, group))
        while len(group) < most and len(self.buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self.buf)
            if size > MAX_FRAME_BYTES:
                raise SystemExit(f"elixirscope run: the store's writer: a frame of {size} bytes")
            if group and taken + size > most_bytes:
                return False
            if len(self.buf) < _HEADER.size + size:
                return True
            group.append(bytes(self.buf[_HEADER.size : _HEADER.size + size]))
            del self.buf[: _HEADER.size + size]
            taken += size
        return len(group) < most

    def _read(self, *, block: bool) -> bool:
        if not block:
            ready, _, _ = select.select([self.fd], [], [], 0)
            if not ready:
                return False
        chunk = os.read(self.fd, 1 << 20)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
