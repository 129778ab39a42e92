"""ElixirScope's threads take none of the program's signals.

A signal sent to a process goes to any one of its threads that does not block it.
Python runs the handlers (its ``KeyboardInterrupt`` on SIGINT, a program's own,
the SIGTERM one ``termination`` installs) in the main thread only, once that
thread runs bytecode again: a signal the kernel hands to one of our threads while
the main thread waits in C — a ``multiprocessing`` worker waiting for a task on a
semaphore — trips the handler, but nothing wakes the main thread to run it, and
the process, which would have ended, waits forever. A process without our threads
never has that choice. So each of our threads blocks every asynchronous signal
from its birth (:func:`start_without_signals`: a thread takes the mask of the
thread that starts it), as libzmq's threads do: the kernel hands them to the
program's threads, as it would without us.
"""

from __future__ import annotations

import signal
import threading

__all__ = ["start_without_signals"]

_KEPT = {
    getattr(signal, name)
    for name in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS", "SIGABRT")
    if hasattr(signal, name)
}
"""Signals a thread raises on itself (a fault; faulthandler reports it there)."""


def start_without_signals(thread: threading.Thread) -> None:
    """``thread.start()``, the thread blocking every asynchronous signal from its first
    instruction on. Meanwhile they wait in the calling thread, which has them again after."""
    try:
        before = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals() - _KEPT)
    except (AttributeError, OSError, ValueError):  # no pthread_sigmask here: as before
        thread.start()
        return
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
