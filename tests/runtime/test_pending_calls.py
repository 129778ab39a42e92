"""Every call gets an answer: the exit reason when its server exits, ``noproc`` when it is gone.

OTP's ``gen:call`` monitors the server, so a caller learns at once why the
server exited, whether its call was being handled or still waiting in the
mailbox, and a call to a process that no longer exists fails with ``noproc``.
Here on both bases, with real actor systems.
"""

import os
import signal
import threading

import psutil
import pytest
from waiting import wait_until

from elixirscope.examples.workers import Caller, Counter
from elixirscope.runtime import CallError, ChildSpec, SupervisorSpec
from elixirscope.runtime import messages as m
from elixirscope.runtime.system import MONITOR_AFTER

HANG_GUARD = 60.0  # seconds; a regression shows as CallTimeout, not as a slow pass


def collect(rt, refs):
    """Listen until every ref in ``refs`` is answered; the answers by ref."""
    got = {}

    def answered():
        reply = rt.system.listen(0.5)
        if isinstance(reply, (m.Reply, m.CallFailed)) and reply.ref in refs:
            got[reply.ref] = reply
        return set(got) == set(refs)

    wait_until(answered, timeout=HANG_GUARD, interval=0)
    return got


def tell_call(rt, address, ref, request):
    rt.system.tell(address, m.Call(ref, request, caller=rt._client_address()))


# ------------------------------------------------------------------ supervisors
def gated_tree(rt, tmp_path, max_restarts):
    """A supervisor whose child "slow" blocks in terminate until the test opens the gate."""
    log, gate = tmp_path / "log", tmp_path / "gate"
    spec = SupervisorSpec("one_for_one", [
        ChildSpec("slow", (Counter, {"log": str(log), "terminate_gate": str(gate)}), shutdown=120_000),
        ChildSpec("crasher", (Counter, {})),
    ], max_restarts=max_restarts)
    sup = rt.start_supervisor(spec, path="sup")
    return sup, log, gate


def test_calls_queued_at_a_supervisor_that_exceeds_its_intensity_get_its_exit_reason(runtime, tmp_path):
    sup, log, gate = gated_tree(runtime, tmp_path, max_restarts=0)
    try:
        crasher = next(c.address for c in runtime.which_children(sup) if c.id == "crasher")
        with pytest.raises(CallError):
            runtime.call(crasher, ("crash",))
        # the supervisor gave up and is stopping "slow", which waits at the gate
        wait_until(lambda: log.exists() and "sup/slow terminate" in log.read_text(), timeout=HANG_GUARD)
        refs = [f"queued-{i}" for i in range(3)]
        for ref in refs:
            tell_call(runtime, sup, ref, ("which_children",))  # queued behind the stop
    finally:
        gate.touch()
    answers = collect(runtime, refs)
    assert {type(a) for a in answers.values()} == {m.CallFailed}
    assert {str(a.reason) for a in answers.values()} == {"shutdown (reached_max_restart_intensity)"}


def test_a_killed_supervisor_fails_the_call_in_progress_and_the_queued_ones(runtime, tmp_path):
    sup, log, gate = gated_tree(runtime, tmp_path, max_restarts=3)
    try:
        tell_call(runtime, sup, "in-progress", ("terminate_child", "slow"))
        wait_until(lambda: log.exists() and "sup/slow terminate" in log.read_text(), timeout=HANG_GUARD)
        tell_call(runtime, sup, "queued", ("count_children",))
        runtime.system.tell(sup, m.Kill())
        answers = collect(runtime, ["in-progress", "queued"])
    finally:
        gate.touch()
    assert {ref: (type(a), a.reason.kind) for ref, a in answers.items()} == {
        "in-progress": (m.CallFailed, "killed"), "queued": (m.CallFailed, "killed")}


def test_simple_base_supervisor_past_its_intensity_fails_the_calls_it_had_queued(simple_runtime):
    """One thread, messages in order: a terminate_child job holds the supervisor while a child
    crashes and three calls queue; when the job ends the crash exceeds the intensity."""
    rt = simple_runtime
    sup = rt.start_supervisor(SupervisorSpec("one_for_one", [
        ChildSpec("slow", (Counter, {})), ChildSpec("crasher", (Counter, {})),
    ], max_restarts=0), path="sup")
    crasher = next(c.address for c in rt.which_children(sup) if c.id == "crasher")
    caller = rt.start(Caller)
    rt.cast(caller, ("call", [(sup, ("terminate_child", "slow")), (crasher, ("crash",)),
                              *[(sup, ("which_children",))] * 3], HANG_GUARD))
    results = wait_until(lambda: len(r := rt.call(caller, "results")) == 5 and r, timeout=HANG_GUARD)
    by_request = [(request, ok, answer if ok else str(answer)) for request, ok, answer in results]
    assert (("terminate_child", "slow"), True, "ok") in by_request
    queued = [r for r in by_request if r[0] == ("which_children",)]
    assert queued == [(("which_children",), False, "shutdown (reached_max_restart_intensity)")] * 3


# ---------------------------------------------------------------------- genserver
@pytest.mark.parametrize("base_fixture", ["runtime", "simple_runtime"])
def test_a_call_behind_one_that_crashes_is_answered(base_fixture, request):
    """Calls already waiting when the server crashes are answered: with its reason when it
    still holds them, ``noproc`` when they reach it after it ended - never a timeout."""
    rt = request.getfixturevalue(base_fixture)
    c = rt.start(Counter)
    tell_call(rt, c, "busy", ("sleep", 0.5))
    tell_call(rt, c, "crash", ("crash",))
    refs = [f"behind-{i}" for i in range(3)]
    for ref in refs:
        tell_call(rt, c, ref, "get")
    answers = collect(rt, ["busy", "crash", *refs])
    assert answers["busy"] == m.Reply("busy", "slept")
    assert answers["crash"].reason.kind == "exception"
    assert {answers[ref].reason.kind for ref in refs} <= {"exception", "noproc"}


@pytest.mark.parametrize("how", ["crash", "stop", "kill"])
@pytest.mark.parametrize("base_fixture", ["runtime", "simple_runtime"])
def test_a_pending_noreply_call_gets_the_exit_reason(base_fixture, how, request):
    """A call the server holds (NoReply) fails with the reason it exits with, however it exits."""
    rt = request.getfixturevalue(base_fixture)
    c = rt.start(Counter)
    tell_call(rt, c, "held", "later")
    if how == "crash":
        rt.cast(c, "crash")
    elif how == "stop":
        rt.cast(c, ("stop", "normal"))
    else:
        rt.system.tell(c, m.Kill())
    answer = collect(rt, ["held"])["held"]
    expected = {"crash": "exception", "stop": "normal", "kill": "killed"}[how]
    assert (type(answer), answer.reason.kind) == (m.CallFailed, expected)


# ------------------------------------------------------------------------ noproc
def gone(rt, pid):
    """True once the actor's OS process has ended (at once on simpleSystemBase: no process)."""
    if pid == os.getpid():
        return True
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("base_fixture", ["runtime", "simple_runtime"])
def test_a_call_to_an_actor_that_no_longer_exists_fails_with_noproc(base_fixture, request):
    rt = request.getfixturevalue(base_fixture)
    crashed, stopped = rt.start(Counter), rt.start(Counter)
    pids = {"crashed": rt.call(crashed, "pid"), "stopped": rt.call(stopped, "pid")}
    with pytest.raises(CallError):
        rt.call(crashed, ("crash",))
    rt.stop(stopped)
    for name, address, reason in [("crashed", crashed, "exception"), ("stopped", stopped, "shutdown")]:
        with pytest.raises(CallError) as err:  # right after: answered as it ends, or noproc
            rt.call(address, "get", timeout=HANG_GUARD)
        assert err.value.reason.kind in (reason, "noproc")
        wait_until(lambda: gone(rt, pids[name]), timeout=HANG_GUARD)  # noqa: B023 - used at once
        with pytest.raises(CallError) as err:
            rt.call(address, "get", timeout=HANG_GUARD)
        assert err.value.reason.kind == "noproc"


@pytest.mark.parametrize("base_fixture", ["runtime", "simple_runtime"])
def test_call_async_to_an_actor_that_no_longer_exists_gets_a_noproc_result(base_fixture, request):
    rt = request.getfixturevalue(base_fixture)
    gone = rt.start(Counter)
    rt.stop(gone)
    caller = rt.start(Caller)
    rt.cast(caller, ("call", [(gone, "get")], HANG_GUARD))
    results = wait_until(lambda: rt.call(caller, "results"), timeout=HANG_GUARD)
    assert [(req, ok, str(answer)) for req, ok, answer in results] == [("get", False, "noproc")]


def test_a_call_to_a_server_killed_with_kill_9_fails_at_once(runtime):
    """A call still unanswered after MONITOR_AFTER monitors its server: a kill -9 fails it."""
    c = runtime.start(Counter)
    pid = runtime.call(c, "pid")
    killer = threading.Timer(MONITOR_AFTER + 1.0, os.kill, (pid, signal.SIGKILL))
    killer.start()
    try:
        with pytest.raises(CallError) as err:
            runtime.call(c, ("sleep", 600), timeout=HANG_GUARD)
    finally:
        killer.cancel()
    # killed when the monitor was in place, noproc when it reached the server only as it died
    assert err.value.reason.kind in ("killed", "noproc")
    assert runtime.call(runtime.start(Counter), "get") == 0  # the client carries on


def test_call_async_to_a_server_killed_with_kill_9_gets_a_failed_result(runtime):
    """call_async monitors a server that has not answered after MONITOR_AFTER, as gen:call does."""
    slow, doomed = runtime.start(Counter), runtime.start(Counter)
    pid = runtime.call(doomed, "pid")
    caller = runtime.start(Caller)
    runtime.cast(caller, ("call", [(slow, ("sleep", MONITOR_AFTER + 1.0)), (doomed, ("sleep", 600))],
                          HANG_GUARD))
    killer = threading.Timer(MONITOR_AFTER + 1.0, os.kill, (pid, signal.SIGKILL))
    killer.start()
    try:
        results = wait_until(lambda: len(r := runtime.call(caller, "results")) == 2 and r,
                             timeout=HANG_GUARD)
    finally:
        killer.cancel()
    by_request = {request: (ok, answer) for request, ok, answer in results}
    assert by_request[("sleep", MONITOR_AFTER + 1.0)] == (True, "slept")  # monitored, answered
    ok, reason = by_request[("sleep", 600)]
    assert not ok and reason.kind in ("killed", "noproc")


@pytest.mark.parametrize("base_fixture", ["runtime", "simple_runtime"])
def test_stopping_an_actor_that_no_longer_exists_answers_noproc(base_fixture, request):
    rt = request.getfixturevalue(base_fixture)
    c = rt.start(Counter)
    pid = rt.call(c, "pid")
    assert rt.stop(c).kind == "shutdown"
    wait_until(lambda: gone(rt, pid), timeout=HANG_GUARD)
    assert rt.stop(c, timeout=HANG_GUARD).kind == "noproc"
