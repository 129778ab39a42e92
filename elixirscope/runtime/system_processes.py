"""The processes an actor system started, ended when it shuts down.

A multiproc base starts an admin process (detached: its parent is not the program's
process), and the admin forks one process per actor. Thespian's ``shutdown`` asks the
admin to stop them and waits at most 10 s; when the admin does not answer in time (a
supervisor was starting a replacement for a child that had just crashed), ``shutdown``
returns and the admin and its actors run on after the program has exited, holding their
ports. :class:`~elixirscope.runtime.Runtime` finds its admin by the admin port it chose
(:func:`system_roots`: a listener, up to the topmost process created since the system
started) and, once Thespian has shut down, waits for the admin and everything below it
to end, then ends stragglers (:func:`end_processes`). Only those pids are touched —
never a host app's processes.
"""

from __future__ import annotations

import os
import time

import psutil

__all__ = [
    "children_pids",
    "descendants",
    "end_processes",
    "kill_tree",
    "listening_on",
    "system_roots",
]

GRACE_S = 5.0
"""How long the system's processes have to end on their own before SIGKILL."""
KILL_WAIT_S = 2.0
"""How long a SIGKILLed process is given to be gone."""


def children_pids() -> set[int]:
    """The pids of this process's children, as they are now."""
    try:
        return {c.pid for c in psutil.Process().children()}
    except psutil.Error:
        return set()


def system_roots(port: int | None, since: float) -> set[int]:
    """The topmost processes of the actor system listening on its admin ``port``: from
    each listener (a socket several of its processes share is reported under one of
    them), up its parents while they were created at or after ``since`` (the system's
    start) and are not this process — never up to a process older than the system, nor
    to one that is no fork of this program (its command line is another: an init, a
    subreaper)."""
    roots: set[int] = set()
    try:
        ours = psutil.Process().cmdline()
    except psutil.Error:
        return roots
    for pid in listening_on(port):
        try:
            proc = psutil.Process(pid)
            if proc.cmdline() != ours:
                continue
            while True:
                parent = proc.parent()
                if (
                    parent is None
                    or parent.pid == os.getpid()
                    or parent.create_time() < since
                    or parent.cmdline() != ours
                ):
                    break
                proc = parent
            roots.add(proc.pid)
        except psutil.Error:
            continue
    return roots


def listening_on(port: int | None) -> set[int]:
    """The pids listening on TCP ``port`` (the admin's), or none."""
    if not port:
        return set()
    try:
        return {
            c.pid
            for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
        }
    except (psutil.Error, OSError):
        return set()


def descendants(roots: set[int]) -> set[int]:
    """The pids of ``roots`` and everything below them, as they are now."""
    found = set()
    for pid in roots:
        try:
            proc = psutil.Process(pid)
            found.add(pid)
            found.update(c.pid for c in proc.children(recursive=True))
        except psutil.Error:
            continue
    return found


def end_processes(pids: set[int], direct: set[int], grace: float = GRACE_S) -> None:
    """Wait for ``pids`` to end; SIGKILL stragglers; reap ``direct`` (our own children) and
    orphans adopted by this process as a subreaper."""
    deadline = time.monotonic() + grace
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    killed = [pid for pid in pids if _running(pid)]
    for pid in killed:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + KILL_WAIT_S  # gone, not merely dying, when we return
    while any(_running(pid) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.02)
    for pid in pids | direct:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def kill_tree(pid: int | None, within: set[int]) -> None:
    """SIGKILL ``pid`` and the processes below it, those of them in ``within`` only (the
    actor system's: never this process, nor one that is not the system's)."""
    if pid is None or pid not in within or pid == os.getpid():
        return
    for each in descendants({pid}) & within - {os.getpid()}:
        try:
            os.kill(each, 9)
        except ProcessLookupError:
            pass


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
