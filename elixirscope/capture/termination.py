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
as it would have, by the same signal, a moment later. A process forked from
one with the handler (the workers of a ``forkserver``, itself a child started
afresh) inherits it: there it stops that process's own recording. A program that sets a
handler of its own replaces this one (and, as uvicorn does, may put it back).
Python runs the handler in the main thread between bytecodes: a main thread
inside a long call that does not let go (a computation in C) ends when it
returns. While the recording ships in the main thread itself (a
``multiprocessing`` child's exit finalizer, ``atexit``), SIGTERM waits
(:func:`sigterm_held`): its handler would otherwise interrupt the shipping it
then waits for — ``Pool.terminate()`` often comes just as a worker that was
told to stop is shipping its last batch — and then ends the process.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["SHIP_WAIT_S", "ship_before_sigterm", "sigterm_held"]

SHIP_WAIT_S = 2.0


def ship_before_sigterm(stop: Callable[[float], object]) -> bool:
    """Make SIGTERM call ``stop(SHIP_WAIT_S)`` (the recording's, which ships what is
    recorded), then end the process by SIGTERM, if its action is the default (or one of
    these, inherited by a fork) and this is the main thread; returns whether it did."""
    if threading.current_thread() is not threading.main_thread():
        return False
    current = signal.getsignal(signal.SIGTERM)
    if current is not signal.SIG_DFL and not getattr(current, "ships_first", False):
        return False
    owner = os.getpid()

    def ship_then_end(signum: int, _frame: object) -> None:
        signal.signal(signum, signal.SIG_DFL)
        try:
            if os.getpid() == owner:
                stop(SHIP_WAIT_S)
            else:  # inherited by a fork (a forkserver's worker): this process's own session
                _stop_this_process(SHIP_WAIT_S)
        finally:
            os.kill(os.getpid(), signum)

    ship_then_end.ships_first = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, ship_then_end)
    return True


def _stop_this_process(timeout: float) -> None:
    from elixirscope.capture.session import current_session

    session = current_session()
    if session is not None:
        session.stop(timeout)


@contextmanager
def sigterm_held() -> Iterator[None]:
    """SIGTERM blocked in the main thread while it ships (see the module doc), when the
    handler is installed; delivered, and handled, as soon as the shipping is done."""
    handler = signal.getsignal(signal.SIGTERM)
    if (
        not getattr(handler, "ships_first", False)
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
