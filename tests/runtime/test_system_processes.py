"""``Runtime.shutdown`` leaves no process of its actor system behind, even when
Thespian's own shutdown gives up: an actor that cannot answer (stopped by SIGSTOP here;
in the wild, a supervisor starting a replacement child as the program ended) made it
wait out its 10 s and return with the admin and the actors still running, after the
program had exited, holding their ports."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from elixirscope.examples.workers import Counter
from elixirscope.runtime import CallError, ChildSpec, Runtime, SupervisorSpec
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


def _worker(id, **args):
    return ChildSpec(id, (Counter, args))


def test_a_program_ending_as_a_replacement_starts_stops_its_tree_in_otp_order(tmp_path):
    """The race of the module doc, made certain: the block ends while the supervisor starts
    a crashed child's replacement (its init sleeps). The tree is stopped newest first, each
    supervisor's children in reverse, their ``terminate`` run, before the system's shutdown."""
    log = tmp_path / "log"
    rt = Runtime("multiprocTCPBase", admin_port=free_tcp_port())
    try:
        spec = SupervisorSpec(
            "one_for_one",
            [_worker("a", log=str(log)), _worker("b", log=str(log), restart_sleep=1.0)],
        )
        sup = rt.start_supervisor(spec)
        rt.start(Counter, {"log": str(log)}, path="other")  # a top-level actor, started later
        b = next(c.address for c in rt.which_children(sup) if c.id == "b")
        with pytest.raises(CallError):
            rt.call(b, ("crash",))
        system = descendants(system_roots(rt.admin_port, rt._started_at))
    finally:
        rt.shutdown()
    lines = [  # "path what [reason]", without the pid
        " ".join(word for word in line.split() if not word.isdigit())
        for line in log.read_text().splitlines()
    ]
    assert lines[:4] == ["root/a init", "root/b init", "other init", "root/b terminate exception"]
    after = lines[4:]  # the replacement's init may end before or after `other` stopped
    assert sorted(after) == sorted(
        ["other terminate shutdown", "root/b init", "root/b terminate shutdown",
         "root/a terminate shutdown"]
    ), lines
    assert (after.index("other terminate shutdown") < after.index("root/b terminate shutdown")
            < after.index("root/a terminate shutdown")), lines  # newest first, children reversed
    assert after.index("root/b init") < after.index("root/b terminate shutdown"), lines
    assert not [pid for pid in system if _alive(pid)], system
