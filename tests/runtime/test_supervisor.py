"""OTP supervisor semantics with real actor processes: who restarts, in what order, with which pids."""

import os
import signal

import pytest
from waiting import wait_until

from elixirscope.examples.workers import Counter, LifecycleRecorder
from elixirscope.runtime import (
    CallError,
    ChildSpec,
    StartError,
    Supervisor,
    SupervisorError,
    SupervisorSpec,
)


def worker(id, restart="permanent", **args):
    shutdown = args.pop("shutdown", None)
    return ChildSpec(id, (Counter, args), restart=restart, shutdown=shutdown)


def pids(rt, sup):
    return {c.id: c.pid for c in rt.which_children(sup)}


def crash(rt, sup, child_id):
    address = next(c.address for c in rt.which_children(sup) if c.id == child_id)
    with pytest.raises(CallError):
        rt.call(address, ("crash",))


def settled(rt, sup, before, changed):
    """Wait until exactly the children in ``changed`` have new pids (and all run)."""

    def check():
        now = pids(rt, sup)
        if any(p is None for p in now.values()):
            return None
        return now if {k for k in now if now[k] != before.get(k)} == set(changed) else None

    return wait_until(check)


@pytest.fixture
def recorder(runtime):
    return runtime.start(LifecycleRecorder)


def events(rt, recorder, sup_path="root", types=None):
    out = [e for e in rt.call(recorder, "events") if e.data["supervisor"] == sup_path]
    return [(e.type, e.data.get("child_id")) for e in out if types is None or e.type in types]


RESTART_TYPES = ("child_terminated", "child_restarted")


def expect_events(rt, recorder, expected, sup_path="root", types=None):
    """Events reach the recorder asynchronously: wait until they are exactly ``expected``."""
    seen = []

    def matches():
        seen[:] = events(rt, recorder, sup_path, types)
        return seen == expected

    try:
        wait_until(matches)
    except AssertionError:
        raise AssertionError(f"events of {sup_path}: expected {expected}, got {seen}") from None


def last_event(rt, recorder, type_):
    return wait_until(lambda: [e for e in rt.call(recorder, "events") if e.type == type_])[-1]


def test_one_for_one_restarts_only_the_failed_child(runtime, recorder):
    sup = runtime.start_supervisor(
        SupervisorSpec("one_for_one", [worker("a"), worker("b"), worker("c")])
    )
    before = pids(runtime, sup)
    crash(runtime, sup, "b")
    settled(runtime, sup, before, {"b"})
    expect_events(
        runtime,
        recorder,
        [("child_exited", "b"), ("child_restarted", "b")],
        types=RESTART_TYPES + ("child_exited",),
    )


def test_one_for_all_stops_others_in_reverse_and_starts_all_in_order(runtime, recorder):
    sup = runtime.start_supervisor(
        SupervisorSpec("one_for_all", [worker("a"), worker("b"), worker("c")])
    )
    before = pids(runtime, sup)
    crash(runtime, sup, "b")
    settled(runtime, sup, before, {"a", "b", "c"})
    expect_events(
        runtime,
        recorder,
        [
            ("child_terminated", "c"),
            ("child_terminated", "a"),
            ("child_restarted", "a"),
            ("child_restarted", "b"),
            ("child_restarted", "c"),
        ],
        types=RESTART_TYPES,
    )


def test_rest_for_one_restarts_the_failed_child_and_those_after_it(runtime, recorder):
    sup = runtime.start_supervisor(
        SupervisorSpec("rest_for_one", [worker("a"), worker("b"), worker("c")])
    )
    before = pids(runtime, sup)
    crash(runtime, sup, "b")
    settled(runtime, sup, before, {"b", "c"})
    expect_events(
        runtime,
        recorder,
        [("child_terminated", "c"), ("child_restarted", "b"), ("child_restarted", "c")],
        types=RESTART_TYPES,
    )


def test_transient_restarts_only_after_an_abnormal_exit(runtime):
    sup = runtime.start_supervisor(SupervisorSpec("one_for_one", [worker("t", "transient")]))
    before = pids(runtime, sup)
    crash(runtime, sup, "t")
    after = settled(runtime, sup, before, {"t"})
    address = runtime.which_children(sup)[0].address
    assert runtime.call(address, ("stop", "normal")) == "stopping"
    wait_until(lambda: runtime.which_children(sup)[0].status == "stopped")
    assert runtime.count_children(sup) == {"specs": 1, "active": 0, "supervisors": 0, "workers": 1}
    assert after["t"] != before["t"]


def test_temporary_is_never_restarted_even_when_a_sibling_takes_it_down(runtime, recorder):
    sup = runtime.start_supervisor(
        SupervisorSpec(
            "one_for_all", [worker("tmp", "temporary"), worker("p"), worker("tmp2", "temporary")]
        )
    )
    crash(runtime, sup, "p")
    wait_until(lambda: [c.id for c in runtime.which_children(sup)] == ["p"])
    crash(runtime, sup, "p")
    wait_until(lambda: runtime.which_children(sup)[0].restarts == 2)
    solo = runtime.start_supervisor(
        SupervisorSpec("one_for_one", [worker("tmp", "temporary")]), path="solo"
    )
    crash(runtime, solo, "tmp")
    wait_until(lambda: runtime.which_children(solo) == [])


def test_intensity_exceeded_escalates_exactly_one_level(runtime, recorder):
    sub = ChildSpec(
        "sub",
        (Supervisor, SupervisorSpec("one_for_one", [worker("w1"), worker("w2")], max_restarts=1)),
        type="supervisor",
    )
    sup = runtime.start_supervisor(
        SupervisorSpec("one_for_one", [worker("sibling"), sub], max_restarts=3)
    )
    root_before = pids(runtime, sup)
    sub_address = runtime.which_children(sup)[1].address
    sub_before = pids(runtime, sub_address)
    crash(runtime, sub_address, "w1")
    settled(runtime, sub_address, sub_before, {"w1"})
    crash(runtime, sub_address, "w1")  # the second restart in the window: more than max_restarts=1
    after = settled(runtime, sup, root_before, {"sub"})
    assert after["sibling"] == root_before["sibling"]
    # the old sub's events, then the new sub's (same path, seq starting again at 1)
    expect_events(
        runtime,
        recorder,
        [
            ("child_started", "w1"),
            ("child_started", "w2"),
            ("child_exited", "w1"),
            ("child_restarted", "w1"),
            ("child_exited", "w1"),
            ("restart_intensity_exceeded", "w1"),
            ("child_terminated", "w2"),
            ("supervisor_shutdown", None),  # w1 is already gone
            ("child_started", "w1"),
            ("child_started", "w2"),
        ],
        "root/sub",
    )
    # the root's events come from another actor than the new sub's: wait for them too
    expect_events(
        runtime,
        recorder,
        [("child_exited", "sub"), ("child_restarted", "sub")],
        "root",
        types=("child_exited", "child_restarted"),
    )
    exited = [
        e
        for e in runtime.call(recorder, "events")
        if e.type == "child_exited" and e.data["supervisor"] == "root"
    ]
    assert exited[0].data["reason"]["kind"] == "shutdown"
    new_sub = runtime.which_children(sup)[1].address
    assert {c.status for c in runtime.which_children(new_sub)} == {"running"}


def test_root_exceeding_intensity_shuts_the_tree_down(runtime, recorder):
    sup = runtime.start_supervisor(
        SupervisorSpec("one_for_one", [worker("a"), worker("b")], max_restarts=0)
    )
    crash(runtime, sup, "a")
    wait_until(lambda: ("supervisor_shutdown", None) in events(runtime, recorder))
    expect_events(
        runtime,
        recorder,
        [("restart_intensity_exceeded", "a"), ("child_terminated", "b")],
        types=("restart_intensity_exceeded", "child_terminated"),
    )


def test_shutdown_stops_children_in_reverse_order(runtime, tmp_path):
    log = tmp_path / "order"
    children = [worker(i, log=str(log)) for i in ("a", "b", "c")]
    sup = runtime.start_supervisor(SupervisorSpec("one_for_one", children))
    assert runtime.stop(sup).kind == "shutdown"
    lines = [line.split()[:2] for line in log.read_text().splitlines()]
    assert lines == [
        ["root/a", "init"],
        ["root/b", "init"],
        ["root/c", "init"],
        ["root/c", "terminate"],
        ["root/b", "terminate"],
        ["root/a", "terminate"],
    ]


def test_shutdown_timeout_is_followed_by_a_kill(runtime, recorder):
    slow = worker("slow", terminate_sleep=30, shutdown=200)
    sup = runtime.start_supervisor(SupervisorSpec("one_for_one", [slow, worker("quick")]))
    slow_pid = pids(runtime, sup)["slow"]
    assert runtime.terminate_child(sup, "slow", timeout=30) == "ok"
    assert last_event(runtime, recorder, "child_terminated").data["reason"]["kind"] == "killed"
    wait_until(lambda: not _alive(slow_pid))


def test_brutal_kill_skips_terminate(runtime, recorder, tmp_path):
    log = tmp_path / "log"
    sup = runtime.start_supervisor(
        SupervisorSpec("one_for_one", [worker("b", log=str(log), shutdown="brutal_kill")])
    )
    runtime.terminate_child(sup, "b")
    assert last_event(runtime, recorder, "child_terminated").data["reason"]["kind"] == "killed"
    assert "terminate" not in log.read_text()


def test_a_child_that_fails_to_start_fails_the_supervisor_start(runtime, tmp_path):
    log = tmp_path / "log"
    spec = SupervisorSpec(
        "one_for_one",
        [worker("ok", log=str(log)), worker("bad", fail_init=True), worker("never", log=str(log))],
    )
    with pytest.raises(StartError) as err:
        runtime.start_supervisor(spec)
    assert "failed_to_start_child bad" in str(err.value)
    assert "init refused: fail_init was set" in str(err.value)
    assert [line.split()[:2] for line in log.read_text().splitlines()] == [
        ["root/ok", "init"],
        ["root/ok", "terminate"],
    ]


def test_kill_minus_9_of_a_child_is_detected_and_restarted(runtime, recorder):
    sup = runtime.start_supervisor(SupervisorSpec("one_for_one", [worker("a"), worker("b")]))
    before = pids(runtime, sup)
    os.kill(before["a"], signal.SIGKILL)
    settled(runtime, sup, before, {"a"})
    assert last_event(runtime, recorder, "child_exited").data["reason"] == {"kind": "killed"}
    # told why first (the daemon's kill, the cinema's): the exit reason says it, once
    assert runtime.call(sup, ("note_kill", "a", "stuck in a loop")) == "ok"
    with pytest.raises(SupervisorError, match="no child 'zz'"):
        runtime.call(sup, ("note_kill", "zz", "x"))
    again = pids(runtime, sup)
    os.kill(again["a"], signal.SIGKILL)
    settled(runtime, sup, again, {"a"})
    assert last_event(runtime, recorder, "child_exited").data["reason"] == {
        "kind": "killed", "detail": "stuck in a loop"}


def test_kill_minus_9_of_a_supervisor_takes_its_children_with_it(runtime):
    sub = ChildSpec(
        "sub", (Supervisor, SupervisorSpec("one_for_one", [worker("w")])), type="supervisor"
    )
    sup = runtime.start_supervisor(SupervisorSpec("one_for_one", [sub]))
    sub_info = runtime.which_children(sup)[0]
    old_worker = pids(runtime, sub_info.address)["w"]
    os.kill(sub_info.pid, signal.SIGKILL)
    wait_until(lambda: not _alive(old_worker))
    new_sub = wait_until(
        lambda: (c := runtime.which_children(sup)[0]).pid not in (None, sub_info.pid) and c
    )
    assert pids(runtime, new_sub.address)["w"] != old_worker


def test_dynamic_child_management(runtime):
    sup = runtime.start_supervisor(SupervisorSpec("one_for_one", [worker("a")]))
    info = runtime.start_child(sup, worker("b"))
    assert (info.id, info.status, info.path) == ("b", "running", "root/b")
    with pytest.raises(SupervisorError, match="already_started"):
        runtime.start_child(sup, worker("b"))
    with pytest.raises(SupervisorError, match="running"):
        runtime.delete_child(sup, "b")
    assert runtime.terminate_child(sup, "b") == "ok"
    assert [c.status for c in runtime.which_children(sup)] == ["running", "stopped"]
    with pytest.raises(SupervisorError, match="already_present"):
        runtime.start_child(sup, worker("b"))
    assert runtime.restart_child(sup, "b").status == "running"
    runtime.terminate_child(sup, "b")
    assert runtime.delete_child(sup, "b") == "ok"
    with pytest.raises(SupervisorError, match="not_found"):
        runtime.terminate_child(sup, "zzz")
    with pytest.raises(SupervisorError, match="bad_child_spec: Expected `permanent"):
        runtime.start_child(sup, worker("c", restart="forever"))
    with pytest.raises(SupervisorError, match="unknown_request"):
        runtime.call(sup, ("reboot",))
    assert runtime.count_children(sup)["active"] == 1


def test_simple_one_for_one_starts_children_from_a_template(runtime):
    template = ChildSpec("conn", (Counter, {"start": 1}), restart="transient")
    sup = runtime.start_supervisor(SupervisorSpec("simple_one_for_one", [template]))
    assert runtime.which_children(sup) == []
    first = runtime.start_child(sup, {"start": 10})
    second = runtime.start_child(sup, {"start": 20})
    assert (first.id, second.id) == ("conn.1", "conn.2")
    with pytest.raises(CallError):
        runtime.call(first.address, ("crash",))
    wait_until(lambda: [c.restarts for c in runtime.which_children(sup)] == [1, 0])
    with pytest.raises(SupervisorError, match="simple_one_for_one"):
        runtime.restart_child(sup, "conn.1")
    runtime.terminate_child(sup, "conn.2")
    assert [c.id for c in runtime.which_children(sup)] == ["conn.1"]
    with pytest.raises(SupervisorError, match="list template"):
        runtime.start_child(sup, ["not", "a", "dict"])
    # a dynamic child by what start_child answered (its ChildInfo) or its address, as
    # OTP's simple_one_for_one takes its pid; call and cast take the ChildInfo too
    third, fourth = runtime.start_child(sup, {"start": 30}), runtime.start_child(sup, {"start": 40})
    assert runtime.call(third, "get") == runtime.call(third.address, "get")
    runtime.terminate_child(sup, third)
    runtime.terminate_child(sup, fourth.address)
    assert [c.id for c in runtime.which_children(sup)] == ["conn.1"]
    with pytest.raises(SupervisorError, match="not_found"):
        runtime.terminate_child(sup, fourth.address)


def test_lifecycle_events_are_contract_events(runtime, recorder):
    runtime.start_supervisor(SupervisorSpec("one_for_one", [worker("a")]))
    event = wait_until(lambda: runtime.call(recorder, "events"))[0]
    assert (event.type, event.source_layer) == ("child_started", "runtime")
    assert event.data["child_path"] == "root/a" and event.data["seq"] == 1
    assert isinstance(event.data["pid"], int)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split(")")[1].split()[0] != "Z"


def _crash_then_ask(rt) -> None:
    sup = rt.start_supervisor(SupervisorSpec("one_for_one", [worker("c")], 5, 5))
    for n in range(3):
        (before,) = rt.which_children(sup)
        with pytest.raises(CallError):
            rt.call(before.address, ("crash",))
        (after,) = rt.which_children(sup)  # at once: no waiting
        assert after.address is not None and after.address != before.address
        assert after.restarts == n + 1 and after.status == "running"
        rt.call(after.address, ("get",))


def test_a_caller_that_saw_the_crash_then_asks_sees_the_restart(runtime):
    """OTP's order: the supervisor handles the child's EXIT before a call sent after the
    caller learnt of the death, so ``which_children`` never shows the dead child."""
    _crash_then_ask(runtime)


def test_the_same_order_on_the_in_process_base():
    from elixirscope.runtime import Runtime

    with Runtime("simpleSystemBase") as rt:
        _crash_then_ask(rt)
