"""A recorded process that leaves by ``os._exit`` or ``os.exec*`` ships what it recorded first.

``os._exit`` ends the process at once: no ``atexit``, no ``finally``, so what it
recorded since the shipper's last batch (up to 50 ms of it, often its whole
story) would be lost, uncounted. Forked children leave so — ``os.fork()``, the
work, ``os._exit(0)`` is the idiom, and ``multiprocessing``'s fork workers do
after their finalizers — and so do some servers and test runners.

So while a recording is on (``elixirscope run`` and the processes it records),
``os._exit`` is a function of ours: it stops the recording — everything
recorded shipped, the run ended with that status, at most ``SHIP_WAIT_S`` —
then calls the real ``os._exit`` with the same status. In a process forked from
a recorded one (it inherits the function) it stops that process's own
recording. What changes: the process ends a moment later, the time to ship;
nothing else of the call. The recording stops on a thread of its own with a
bounded wait (as on SIGTERM: ``termination``), never waiting on a lock the
calling code holds; a call made while it stops (from that stopping, or from
another thread) leaves at once.

``os.exec*`` replaces the program the same way, with no ``atexit``: while a
recording is on, ``os.execv`` and ``os.execve`` (which every other ``exec``
function of ``os`` calls) ship what this process recorded (at most
``SHIP_WAIT_S``) before the real call. The recording is not stopped: if the
call fails (no such program), the process goes on recorded; if it succeeds,
the new program is recorded as any child of the run is (a Python one joins the
run as a producer of its own, under the same pid; from a recorded call, linked
to it: ``processes.linked_exec``), and the run's own end is left unwritten —
the process that would write it is gone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from elixirscope.capture.processes import linked_exec
from elixirscope.capture.termination import SHIP_WAIT_S, _on_a_thread, _stop_this_process

__all__ = ["ship_before_os_exit", "uninstall"]

_real_exit: list[Any] = []  # [the real os._exit] while installed
Stop = Callable[[int | None, float], object]
_stop: list[Stop] = []  # [the stop of the process that installed it]
_owner = [0]
_leaving = [0]  # the pid of the process whose os._exit is stopping its recording


def ship_before_os_exit(stop: Stop, before_exec: Callable[[], object] | None = None) -> None:
    """Make ``os._exit(status)`` call ``stop(status, SHIP_WAIT_S)`` first, and ``os.execv`` /
    ``os.execve`` ship what is recorded first (see the module doc).

    ``stop`` takes the exit status and a timeout: the recording's, which ships what is
    recorded and ends the run with that status. ``before_exec``, in this process, clears
    what only its end would have cleared (``elixirscope run``'s temporary directory)."""
    _before_exec[:] = [] if before_exec is None else [before_exec]
    if not _real_exit:
        _real_exit.append(os._exit)
        os._exit = _exit_after_shipping  # type: ignore[assignment]
        _real_exec.extend([os.execv, os.execve])
        os.execv = _shipped_first(os.execv, os.execve, has_env=False)
        os.execve = _shipped_first(os.execve, os.execve, has_env=True)
    _stop[:] = [stop]
    _owner[0] = os.getpid()


def uninstall() -> None:
    """``os._exit``, ``os.execv`` and ``os.execve`` are the real ones again."""
    if _real_exit:
        os._exit = _real_exit.pop()
        os.execv, os.execve = _real_exec
        _real_exec.clear()
    _stop.clear()


_real_exec: list[Any] = []  # [os.execv, os.execve] while installed
_before_exec: list[Callable[[], object]] = []


def _shipped_first(exec_function: Any, execve: Any, has_env: bool) -> Any:
    """``exec_function`` (the real ``os.execv`` or ``os.execve``) shipping first; linked to
    the recorded call making it by ``execve`` with the chain in the environment."""

    def exec_after_shipping(*args: Any, **kwargs: Any) -> Any:
        call = exec_function
        if not kwargs and len(args) == (3 if has_env else 2):  # linked, when it can be
            env = linked_exec(args[0], args[1], args[2] if has_env else None)
            if env is not None:
                call, args = execve, (args[0], args[1], env)
        try:
            _on_a_thread(_flush_this_process, SHIP_WAIT_S)
            if os.getpid() == _owner[0]:
                for clear in _before_exec:
                    clear()
        except BaseException:  # noqa: BLE001 - the program is replaced as asked, shipped or not
            pass
        return call(*args, **kwargs)

    exec_after_shipping.__wrapped__ = exec_function  # type: ignore[attr-defined]
    exec_after_shipping.__doc__ = exec_function.__doc__
    return exec_after_shipping


def _flush_this_process(timeout: float) -> None:
    from elixirscope.capture.session import current_session

    session = current_session()
    if session is not None:
        session.flush(timeout)


def _exit_after_shipping(status: int) -> None:
    real = _real_exit[0] if _real_exit else os._exit
    pid = os.getpid()
    if _leaving[0] != pid:
        _leaving[0] = pid
        try:
            code = int(status)
        except (TypeError, ValueError):
            code = None  # the real os._exit says what is wrong with it
        try:
            if pid == _owner[0] and _stop:
                stop = _stop[0]
                _on_a_thread(lambda timeout: stop(code, timeout), SHIP_WAIT_S)
            else:  # a fork of the process that installed it: its own session
                _on_a_thread(_stop_this_process, SHIP_WAIT_S)
        except BaseException:  # noqa: BLE001 - the process leaves as it asked, shipped or not
            pass
    real(status)
