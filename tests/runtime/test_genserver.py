"""GenServer semantics on real actor processes (multiprocTCPBase)."""

import os
import signal

import pytest
from waiting import wait_until

from elixirscope.examples.workers import Counter
from elixirscope.runtime import (
    CallbackRecord,
    CallError,
    CallTimeout,
    GenServer,
    Reply,
    Runtime,
    StartError,
    add_callback_observer,
    observe,
    remove_callback_observer,
)


def test_call_cast_and_timers(runtime):
    c = runtime.start(Counter, {"start": 5})
    assert runtime.call(c, "get") == 5
    assert runtime.call(c, ("add", 3)) == 8
    runtime.cast(c, "bump")
    assert runtime.call(c, "get") == 9  # a cast is handled before a later call from the same sender
    runtime.cast(c, ("tick_after", 0.05, 100))
    wait_until(lambda: runtime.call(c, "get") == 109)


def test_each_actor_is_its_own_process(runtime):
    a = runtime.start(Counter)
    b = runtime.start(Counter)
    pids = {runtime.call(a, "pid"), runtime.call(b, "pid"), os.getpid()}
    assert len(pids) == 3


def test_noreply_then_reply_later(runtime):
    """handle_call may return NoReply and answer from a later callback."""
    from elixirscope.runtime import messages as m

    c = runtime.start(Counter, {"start": 7})
    runtime.system.tell(c, m.Call("ref-later", "later"))
    runtime.cast(c, "release")
    assert runtime.system.listen(10) == m.Reply("ref-later", 7)


def test_crash_in_callback_is_an_exit_with_the_exception(runtime):
    c = runtime.start(Counter)
    with pytest.raises(CallError) as err:
        runtime.call(c, ("crash", "now"))
    reason = err.value.reason
    assert (reason.kind, reason.exc_type) == ("exception", "builtins.ValueError")
    assert reason.message == "asked to crash: ('now',)"
    assert 'raise ValueError(f"asked to crash' in reason.traceback
    with pytest.raises(CallError) as gone:
        runtime.call(c, "get", timeout=60)  # it is gone: no PoisonMessage retry, no revival
    assert gone.value.reason.kind in ("exception", "noproc")  # held as it ended, or after


def test_bad_return_value_crashes_with_a_teaching_reason(runtime):
    c = runtime.start(Counter)
    with pytest.raises(CallError) as err:
        runtime.call(c, "bad_return")
    assert err.value.reason.exc_type == "elixirscope.runtime.genserver.BadReturn"
    assert err.value.reason.message == (
        "handle_call must return Reply(value, state), NoReply(state) or Stop(reason, state); "
        "got ('not', 'a', 'Reply')"
    )


def test_call_timeout_is_clear_and_the_actor_survives(runtime):
    c = runtime.start(Counter, {"start": 1})
    with pytest.raises(CallTimeout) as err:
        runtime.call(c, ("sleep", 1.0), timeout=0.2)
    assert "timed out after 0.2 s (request ('sleep', 1.0))" in str(err.value)
    assert runtime.call(c, "get", timeout=10) == 1  # the late reply to the first call is skipped


def test_stop_with_reply_and_terminate_runs(runtime, tmp_path):
    log = tmp_path / "log"
    c = runtime.start(Counter, {"log": str(log)}, path="worker")
    ref = runtime.call(c, ("stop", "normal"))
    assert ref == "stopping"
    wait_until(lambda: log.exists() and "terminate normal" in log.read_text())


def test_init_failure_raises_start_error(runtime):
    with pytest.raises(StartError) as err:
        runtime.start(Counter, {"fail_init": True})
    assert "init refused: fail_init was set" in str(err.value)
    with pytest.raises(StartError, match=r"stop \(init asked to stop\)"):
        runtime.start(Counter, {"stop_init": True})


def test_graceful_stop_returns_the_exit_reason(runtime, tmp_path):
    log = tmp_path / "log"
    c = runtime.start(Counter, {"log": str(log)}, path="w")
    assert runtime.stop(c).kind == "shutdown"
    assert "w terminate shutdown" in log.read_text()


def test_monitor_gets_down_with_reason_on_crash_kill_and_noproc(runtime):
    from elixirscope.examples.workers import Watcher

    target = runtime.start(Counter)
    watcher = runtime.start(Watcher)
    runtime.call(watcher, ("monitor", target))
    wait_until(lambda: runtime.call(watcher, "acked") >= 1)  # the monitor is in place
    with pytest.raises(CallError):
        runtime.call(target, ("crash",))
    downs = wait_until(lambda: runtime.call(watcher, "downs"))
    assert [d.reason.kind for d in downs] == ["exception"]

    victim = runtime.start(Counter)
    pid = runtime.call(victim, "pid")
    runtime.call(watcher, ("monitor", victim))
    wait_until(lambda: runtime.call(watcher, "acked") >= 2)
    os.kill(pid, signal.SIGKILL)
    downs = wait_until(
        lambda: len(runtime.call(watcher, "downs")) == 2 and runtime.call(watcher, "downs")
    )
    assert downs[1].reason.kind == "killed"


def test_observer_sees_every_callback_with_state_before_and_after(simple_runtime):
    records: list[CallbackRecord] = []
    add_callback_observer(records.append)
    try:
        c = simple_runtime.start(Counter, {"start": 1}, path="obs")
        simple_runtime.call(c, ("add", 2))
        with pytest.raises(CallError):
            simple_runtime.call(c, ("crash",))
    finally:
        remove_callback_observer(records.append)
    mine = [r for r in records if r.actor == "obs"]
    assert [r.callback for r in mine] == ["init", "handle_call", "handle_call", "terminate"]
    add = mine[1]
    assert add.message == ("add", 2)
    assert add.state_after["count"] == 3 and add.result.value == 3
    assert add.duration_ns > 0 and add.exception is None
    crash = mine[2]
    assert isinstance(crash.exception, ValueError)
    assert mine[3].message.kind == "exception"


def test_a_failing_observer_never_breaks_the_actor(simple_runtime):
    def broken(record):
        raise RuntimeError("observer bug")

    before = observe.observer_errors()
    add_callback_observer(broken)
    try:
        c = simple_runtime.start(Counter, {"start": 4})
        assert simple_runtime.call(c, "get") == 4
    finally:
        remove_callback_observer(broken)
    assert observe.observer_errors() >= before + 2


class _Asker(GenServer):
    """Tries to wait for another actor's reply inside a callback, as Elixir allows."""

    def handle_call(self, request, from_, state):
        return Reply(self.call(request, "get"), state)


def test_a_callback_waiting_on_another_actor_is_told_to_use_call_async():
    with Runtime("simpleSystemBase") as rt:
        counter = rt.start(Counter, {"start": 1})
        asker = rt.start(_Asker)
        with pytest.raises(CallError) as err:
            rt.call(asker, counter)
    reason = err.value.reason
    assert reason.exc_type == "builtins.TypeError", reason
    assert reason.message.startswith("_Asker.call: a GenServer cannot wait inside a callback")
    assert "self.call_async(address, request)" in reason.message
