"""A recorded child process ended by SIGTERM ships what it recorded first.

Processes that start others end them with SIGTERM: ``multiprocessing``'s
``terminate()`` (a ``Pool`` leaving its ``with`` block), uvicorn stopping its
``--workers`` and ``--reload`` children (which, once shut down, raise SIGTERM
on themselves again with the default action). The default action ends the
process at once: no ``atexit``, so what it recorded since the shipper's last
batch — the end of its story — would be lost, uncounted.

So a recorded child whose SIGTERM has the default action gets a handler that
stops its recording (everything recorded shipped, at most ``SHIP_WAIT_S``),
puts the default action back and sends itself SIGTERM again: the process ends
as it would have, by the same signal, a moment later (a SIGTERM meanwhile
changes nothing: that moment is at most ``SHIP_WAIT_S`` + 1 s away). A process forked from
one with the handler (the workers of a ``forkserver``, itself a child started
afresh) inherits it: there it stops that process's own recording. A program that sets a
handler of its own replaces this one (and, as uvicorn does, may put it back).
Python runs the handler in the main thread between bytecodes: a main thread
inside a long call that does not let go (a computation in C) ends when it
returns.

While the recording stops and ships in the main thread itself (a
``multiprocessing`` child's exit finalizer, ``atexit``), SIGTERM waits
(:func:`sigterm_held`): its handler would otherwise interrupt the shipping —
``Pool.terminate()`` often comes just as a worker told to stop is ending its
recording — and end the process before it is done. The handler cannot be kept
out by a signal mask (the kernel hands the signal to any thread not blocking
it, and Python runs the handler in the main thread all the same): it sees the
main thread inside :func:`sigterm_held` and leaves SIGTERM for its end. The
handler stops the recording on a thread of its own (:func:`_on_a_thread`),
never waiting on a lock held by the code it interrupted.

A Python handler has a hazard the default action has not: Python runs it only
once the main thread runs bytecode again, and a signal that arrives just before
the main thread blocks in C — a ``Pool`` worker going back to wait for its next
task on a semaphore, as ``terminate()`` comes — wakes nothing: the process would
wait forever. So the process's signal wakeup fd (``signal.set_wakeup_fd``, when
the program uses none) tells a thread of ours (:class:`_Nudger`) that SIGTERM
came; if the handler has not begun soon after, it sends SIGTERM to the main
thread itself (``pthread_kill``), which interrupts its wait and runs the handler.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from elixirscope.capture.signals import start_without_signals

__all__ = ["SHIP_WAIT_S", "ship_before_sigterm", "sigterm_held"]

SHIP_WAIT_S = 2.0


def ship_before_sigterm(stop: Callable[[float], object]) -> bool:
    """Make SIGTERM call ``stop(SHIP_WAIT_S)`` (the recording's, which ships what is
    recorded), then end the process by SIGTERM, if its action is the default (or one of
    these, inherited by a fork) and this is the main thread; returns whether it did."""
    if threading.current_thread() is not threading.main_thread():
        return False
    current = _current_handler()
    if current is not signal.SIG_DFL and not _ours(current):
        return False
    owner = os.getpid()

    def ship_then_end(signum: int, _frame: object) -> None:
        _Nudger.handled += 1
        if _held[0]:  # the main thread is stopping the recording: SIGTERM once it is done
            _held[1] = True
            return
        if _ending[0] == os.getpid():  # a nudge, or a second SIGTERM: this one ends it
            return
        _ending[0] = os.getpid()
        try:  # else inherited by a fork (a forkserver's worker): this process's own session
            _on_a_thread(stop if os.getpid() == owner else _stop_this_process, SHIP_WAIT_S)
        finally:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    ship_then_end.ships_first = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, ship_then_end)
    _Nudger.arm()
    return True


class _Nudger:
    """Wakes a main thread blocked in C when SIGTERM came (see the module doc): one a
    process, reading the wakeup fd it set, while the handler is ours."""

    NUDGE_AFTER_S = 0.1
    handled = 0  # times the handler began
    armed: _Nudger | None = None

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd, self.write_fd = read_fd, write_fd
        self.main = threading.main_thread().ident

    @classmethod
    def arm(cls) -> None:
        """Read the wakeup fd from a thread of ours: a new one, or again (a forkserver's
        child is given none), unless the program set one of its own meanwhile."""
        nudger = cls.armed
        if nudger is not None:
            previous = _set_wakeup_fd(nudger.write_fd)
            if previous not in (None, -1, nudger.write_fd):
                _set_wakeup_fd(previous)
            return
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        previous = _set_wakeup_fd(write_fd)
        if previous != -1:  # the program's own (asyncio's): left alone
            if previous is not None:
                _set_wakeup_fd(previous)
            os.close(read_fd)
            os.close(write_fd)
            return
        nudger = cls.armed = cls(read_fd, write_fd)
        start_without_signals(
            threading.Thread(target=nudger.watch, name="elixirscope-sigterm-watch", daemon=True)
        )

    @classmethod
    def after_fork_in_child(cls) -> None:
        """A fork's copy writes to the parent's pipe, which the parent's thread reads (and
        would nudge the parent for the child's SIGTERM): a pipe and a thread of its own."""
        copy, cls.armed = cls.armed, None
        if copy is None:
            return
        try:
            previous = _set_wakeup_fd(-1)
            if previous not in (None, -1, copy.write_fd):
                _set_wakeup_fd(previous)  # the program's own: as it was
            os.close(copy.read_fd)
            os.close(copy.write_fd)
            if _ours(_current_handler()):
                cls.arm()
        except (ValueError, OSError):
            return

    def watch(self) -> None:
        import select

        while True:
            try:
                select.select([self.read_fd], [], [])
                came = os.read(self.read_fd, 512)
            except BlockingIOError:
                continue
            except (OSError, ValueError):  # closed
                return
            if signal.SIGTERM in came:
                self.nudge(_Nudger.handled)

    def nudge(self, handled: int) -> None:
        """Until the handler begins (or is not ours any more), SIGTERM to the main thread."""
        import time

        for _ in range(50):
            time.sleep(self.NUDGE_AFTER_S)
            if _Nudger.handled != handled or not _ours(_current_handler()):
                return
            try:
                signal.pthread_kill(self.main, signal.SIGTERM)  # type: ignore[arg-type]
            except (OSError, ValueError):
                return


os.register_at_fork(after_in_child=_Nudger.after_fork_in_child)


def _set_wakeup_fd(fd: int) -> int | None:
    """``signal.set_wakeup_fd``: the fd it replaced, or None if it could not be set."""
    try:
        return signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
    except (ValueError, OSError):
        return None


def _ours(handler: object) -> bool:
    """Whether ``handler`` is one :func:`ship_before_sigterm` installed."""
    return bool(getattr(handler, "ships_first", False))


def _current_handler() -> object:
    try:
        return signal.getsignal(signal.SIGTERM)
    except (OSError, ValueError):
        return None


def _on_a_thread(stop: Callable[[float], object], timeout: float) -> None:
    """``stop(timeout)`` on a thread of its own, waited for at most ``timeout`` + 1 s.
    The handler runs on top of whatever the main thread was doing, which may hold a
    lock stopping takes (an integration's count, say): taken in the main thread, it
    would never be released, and the process would hang instead of ending. On a
    thread, it waits for it in vain at worst, and the process ends."""
    helper = threading.Thread(target=stop, args=(timeout,), name="elixirscope-sigterm", daemon=True)
    start_without_signals(helper)
    helper.join(timeout + 1.0)


def _stop_this_process(timeout: float) -> None:
    from elixirscope.capture.session import current_session

    session = current_session()
    if session is not None:
        session.stop(timeout)


_held = [0, False]
"""[depth of :func:`sigterm_held` in the main thread, a SIGTERM arrived meanwhile]."""
_ending = [0]
"""The pid of the process whose handler is stopping its recording, to end it after."""


@contextmanager
def sigterm_held() -> Iterator[None]:
    """SIGTERM waits while the main thread is in here (it stops and ships the
    recording; see the module doc), when the handler is installed; handled as soon
    as the outermost ``sigterm_held`` is left."""
    if not _ours(_current_handler()) or threading.current_thread() is not threading.main_thread():
        yield
        return
    _held[0] += 1
    try:
        yield
    finally:
        _held[0] -= 1
        if not _held[0] and _held[1]:
            _held[1] = False
            os.kill(os.getpid(), signal.SIGTERM)  # handled now, in this thread
