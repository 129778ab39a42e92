"""``Runtime.shutdown`` leaves no process of its actor system behind, even when
Thespian's own shutdown gives up: an actor that cannot answer (stopped by SIGSTOP here;
in the wild, a supervisor starting a replacement child as the program ended) made it
wait out its 10 s and return with the admin and the actors still running, after the
program had exited, holding their ports."""

from __future__ import annotations

import os
import signal

import psutil

from elixirscope.examples.workers import Counter
from elixirscope.runtime import Runtime
from elixirscope.runtime.system_processes import descendants, listening_on, system_roots
from elixirscope.transport import free_tcp_port


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_shutdown_ends_the_admin_and_actors_even_when_thespian_gives_up():
    rt = Runtime("multiprocTCPBase", admin_port=free_tcp_port())
    try:
        counter = rt.start(Counter)
        actor = rt.call(counter, "pid")
        system = descendants(system_roots(rt.admin_port, rt._started_at))
        assert actor in system and os.getpid() not in system
        os.kill(actor, signal.SIGSTOP)  # it cannot answer the admin's exit request
    except BaseException:
        rt.shutdown()
        raise
    rt.shutdown()
    assert not [pid for pid in system if _alive(pid)], system
    assert listening_on(rt.admin_port) == set()


def test_a_normal_shutdown_ends_every_process_it_started():
    rt = Runtime("multiprocTCPBase", admin_port=free_tcp_port())
    actor = rt.call(rt.start(Counter), "pid")
    system = descendants(system_roots(rt.admin_port, rt._started_at))
    assert actor in system and os.getpid() not in system
    rt.shutdown()
    assert len(system) >= 2 and not [pid for pid in system if _alive(pid)], system
