"""Is an actor's OS process still alive?

Thespian can miss a ``kill -9`` (no ``ChildActorExited``, upstream issue #85),
so parents and monitors check the process themselves. An identity is
``(host, pid, start time)``: the start time guards against pid reuse, and a
process on another host is never judged from here.
"""

from __future__ import annotations

import os
import signal
import socket
from dataclasses import dataclass

import psutil

__all__ = ["ProcessIdentity", "current_identity", "is_alive", "kill_process"]

_HOST = socket.gethostname()


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    host: str
    pid: int
    started: float

    @property
    def local(self) -> bool:
        return self.host == _HOST

    @property
    def separate(self) -> bool:
        """True when this is another OS process on this host (so it can be checked and killed)."""
        return self.local and self.pid != os.getpid()


def current_identity() -> ProcessIdentity:
    pid = os.getpid()
    return ProcessIdentity(_HOST, pid, _start_time(pid))


def _start_time(pid: int) -> float:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return 0.0


def is_alive(identity: ProcessIdentity) -> bool:
    """False only when we can tell the process is gone (or a zombie, or a new one on its pid)."""
    if not identity.separate:
        return True
    try:
        proc = psutil.Process(identity.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(proc.create_time() - identity.started) < 0.01
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


def kill_process(identity: ProcessIdentity) -> bool:
    """SIGKILL the process if it is a separate, still-alive one of ours; True if signalled."""
    if not identity.separate or not is_alive(identity):
        return False
    try:
        os.kill(identity.pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False
