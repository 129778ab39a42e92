"""ElixirScope's threads take none of the program's signals (``capture.signals``)."""

from __future__ import annotations

import signal
import threading

from elixirscope.capture.signals import start_without_signals


def _mask_of_a_thread(start) -> set[int]:
    seen: list[set[int]] = []
    thread = threading.Thread(target=lambda: seen.append(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
    start(thread)
    thread.join(30)
    return seen[0]


def test_our_threads_block_the_programs_signals_from_their_start() -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    ours = _mask_of_a_thread(start_without_signals)
    assert {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1} <= ours
    assert not {signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGABRT} & ours  # faults
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before  # the caller's, as it was


def test_a_programs_thread_is_left_as_python_starts_it() -> None:
    assert signal.SIGTERM not in _mask_of_a_thread(threading.Thread.start)
