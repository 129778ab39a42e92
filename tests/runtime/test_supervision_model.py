"""Supervision trees on real actors publish what the OTP model (``otp_model``) predicts.

The property drives random trees (root plus up to two sub-supervisors, random
strategies, restart types and ``max_restarts``) through random crashes and
normal exits of running workers, and after each one compares, per supervisor
path, the lifecycle events and ``which_children`` with the model. The examples
below spell out the rarest cases by hand, which also checks the model.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import defaultdict
from collections.abc import Iterator

import psutil
import pytest
from effort import examples, timeout
from hypothesis import event, given, settings
from hypothesis import strategies as st
from otp_model import ChildState, ModelTree, SupModel, WorkerModel

from elixirscope.examples.workers import Counter, LifecycleRecorder
from elixirscope.runtime import (
    CallError,
    ChildInfo,
    ChildSpec,
    Runtime,
    Supervisor,
    SupervisorSpec,
)

MAX_SECONDS = 3600  # so the intensity window never slides during a test
HANG_GUARD = 60.0  # seconds to wait for predicted events; a hang guard, never asserted on
_paths = itertools.count(1)


# ------------------------------------------------------------- translation


def to_spec(model: SupModel) -> SupervisorSpec:
    return SupervisorSpec(
        model.strategy,
        [to_child(c) for c in model.children],
        max_restarts=model.max_restarts,
        max_seconds=MAX_SECONDS,
    )


def to_child(model: WorkerModel | SupModel) -> ChildSpec:
    if isinstance(model, SupModel):
        return ChildSpec(
            model.id, (Supervisor, to_spec(model)), restart=model.restart, type="supervisor"
        )
    return ChildSpec(model.id, (Counter, {}), restart=model.restart)


def as_tuple(published) -> tuple:
    """An Event in the model's shape (see ``otp_model``)."""
    data, kind = published.data, published.data.get("reason", {}).get("kind")
    if published.type == "child_started":
        return (published.type, data["child_id"])
    if published.type in ("child_exited", "child_terminated"):
        return (published.type, data["child_id"], kind)
    if published.type == "child_restarted":
        return (published.type, data["child_id"], data["restart_count"])
    if published.type == "restart_intensity_exceeded":
        return (published.type, data["child_id"])
    if published.type == "supervisor_shutdown":
        return (published.type, kind)
    return (published.type, data.get("child_id"), kind)  # never expected: shows up in the diff


def in_seq_order(events: list) -> list:
    """One supervisor path's events, each incarnation in ``seq`` order, incarnations in turn.

    A restarted supervisor is a new process numbering from 1; its events follow
    the old incarnation's causally but travel on another connection, so they
    are matched to incarnations by ``seq`` rather than trusted to arrive after.
    An incarnation's last event is its ``supervisor_shutdown``. Within one
    incarnation events must arrive in ``seq`` order.
    """
    incarnations: list[list] = []
    for published in events:
        seq = published.data["seq"]
        for run in incarnations:
            last = run[-1]
            if last.type != "supervisor_shutdown" and last.data["seq"] + 1 == seq:
                run.append(published)
                break
        else:
            assert seq == 1, f"{published.type} seq {seq} out of order in {incarnations!r}"
            incarnations.append([published])
    return [as_tuple(e) for run in incarnations for e in run]


def mismatch(observed: dict[str, list], expected: dict[str, list]) -> str:
    """Per path, where the observed events first differ from the model's."""
    lines = []
    for path in sorted(set(observed) | set(expected)):
        seen, want = observed.get(path, []), expected.get(path, [])
        if seen != want:
            at = next(
                (i for i, (a, b) in enumerate(zip(seen, want, strict=False)) if a != b),
                min(len(seen), len(want)),
            )
            lines.append(f"{path}: first difference at #{at}")
            lines.append(f"  observed {seen}")
            lines.append(f"  expected {want}")
    return "events differ from the model:\n" + "\n".join(lines)


# ------------------------------------------------------------------ driver


class TreeUnderTest:
    """A real tree under a fresh LifecycleRecorder, driven in step with its model."""

    def __init__(self, rt: Runtime, spec: SupModel) -> None:
        self.rt, self.spec, self.path = rt, spec, f"root{next(_paths)}"
        self.model = ModelTree(spec, self.path)
        self.recorder = self.root = None
        self.root_alive = False
        self.pids: dict[tuple[str, str], int] = {}
        self.seen_pids: set[int] = set()
        self.processes: dict[tuple[str, str], int] = {}

    def start(self) -> None:
        """Subscribe a fresh recorder, then start the tree (its path is new to this runtime)."""
        rt = self.rt
        self.recorder = rt.start(LifecycleRecorder, {})
        self.wait_for(
            lambda: any(
                a == self.recorder for a, _ in rt.call(rt.registry, ("lookup", "lifecycle"))
            )
        )
        self.root = rt.start_supervisor(to_spec(self.spec), path=self.path)
        self.root_alive = True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.root_alive:
                self.rt.stop(self.root, timeout=10)
        with contextlib.suppress(Exception):
            if self.recorder is not None:
                self.rt.stop(self.recorder, timeout=10)

    def wait_for(self, predicate) -> None:
        deadline = time.monotonic() + HANG_GUARD
        while not predicate():
            assert time.monotonic() < deadline, "condition not met (hang guard)"
            time.sleep(0.01)

    # ------------------------------------------------------------- actions
    def exit_worker(self, path: str, worker_id: str, kind: str) -> None:
        """Make a running worker crash (``exception``) or stop (``normal``); tell the model."""
        address = next(c.address for c in self.children()[path] if c.id == worker_id)
        if kind == "exception":
            with pytest.raises(CallError):
                self.rt.call(address, ("crash",))
        else:
            assert self.rt.call(address, ("stop", "normal")) == "stopping"
        self.model.worker_exits(path, worker_id, kind)
        self.root_alive = self.model.root_alive

    # -------------------------------------------------------------- reading
    def events(self, count: int) -> dict[str, list[tuple]]:
        """Per supervisor path, the events seen once ``count`` have arrived (or the guard ends)."""
        mine = []
        deadline = time.monotonic() + HANG_GUARD
        while len(mine) < count and time.monotonic() < deadline:
            time.sleep(0.02)
            mine = [
                e
                for e in self.rt.call(self.recorder, "events")
                if e.data["supervisor"] == self.path
                or e.data["supervisor"].startswith(self.path + "/")
            ]
        by_path: dict[str, list] = defaultdict(list)
        for published in mine:
            by_path[published.data["supervisor"]].append(published)
        return {path: in_seq_order(events) for path, events in by_path.items()}

    def children(self) -> dict[str, list[ChildInfo]]:
        """which_children of every running supervisor, found by walking from the root."""
        out: dict[str, list[ChildInfo]] = {}

        def walk(path: str, address) -> None:
            out[path] = self.rt.which_children(address)
            for info in out[path]:
                if info.type == "supervisor" and info.status == "running":
                    walk(f"{path}/{info.id}", info.address)

        if self.root_alive:
            walk(self.path, self.root)
        return out

    # ------------------------------------------------------------- checking
    def check(self) -> None:
        """Wait for the model's events, then compare events, children and pids with it."""
        expected = {path: list(evs) for path, evs in self.model.events.items() if evs}
        observed = self.events(self.model.event_count())
        assert observed == expected, mismatch(observed, expected)
        real = self.children()
        assert {
            path: [ChildState(i.id, i.status, i.restarts) for i in infos]
            for path, infos in real.items()
        } == {path: self.model.children(path) for path in self.model.live_supervisors()}
        self._check_pids(real)

    def _check_pids(self, real: dict[str, list[ChildInfo]]) -> None:
        """A child the model restarted has a pid never seen before; the others keep theirs."""
        processes = self.model.processes()
        pids = {
            (path, i.id): i.pid
            for path, infos in real.items()
            for i in infos
            if i.status == "running"
        }
        assert len(set(pids.values())) == len(pids), f"two running children share a pid: {pids}"
        for key, pid in pids.items():
            if self.processes.get(key) == processes[key]:
                assert pid == self.pids[key], f"{key} was not restarted but its pid changed"
            else:
                assert pid not in self.seen_pids, f"{key} was restarted but kept an old pid {pid}"
        self.pids, self.processes = pids, processes
        self.seen_pids |= set(pids.values())


@contextlib.contextmanager
def tree_under_test(rt: Runtime, spec: SupModel) -> Iterator[TreeUnderTest]:
    tree = TreeUnderTest(rt, spec)
    try:
        tree.start()
        yield tree
    finally:
        tree.close()


# ---------------------------------------------------------------- property

RESTART = st.sampled_from(["permanent", "transient", "temporary"])
STRATEGY = st.sampled_from(["one_for_one", "one_for_all", "rest_for_one"])
MAX_RESTARTS = st.integers(0, 3)
WORKERS = st.lists(RESTART, min_size=1, max_size=4).map(
    lambda restarts: [WorkerModel(f"w{i}", r) for i, r in enumerate(restarts)]
)


@st.composite
def trees(draw) -> SupModel:
    """A root with 1-4 workers and 0-2 sub-supervisors (1-4 workers each), in any order."""
    subs = [
        SupModel(f"s{i}", draw(STRATEGY), draw(MAX_RESTARTS), tuple(draw(WORKERS)), draw(RESTART))
        for i in range(draw(st.integers(0, 2)))
    ]
    children = draw(st.permutations(draw(WORKERS) + subs))
    return SupModel("root", draw(STRATEGY), draw(MAX_RESTARTS), tuple(children))


# Each example starts a real tree (up to 15 actor processes): ~1 s alone, several times that on
# a busy machine. 25 per run by default (new ones each run; failures replayed from the database),
# 300 under ELIXIRSCOPE_HEAVY=1.
@pytest.mark.timeout(timeout(900, 7200))
@settings(max_examples=examples(25, 300))
@given(spec=trees(), data=st.data())
def test_tree_follows_the_otp_model(module_runtime: Runtime, spec: SupModel, data) -> None:
    """Crashes and normal exits produce the model's events, children and new pids."""
    with tree_under_test(module_runtime, spec) as tree:
        tree.check()
        for _ in range(data.draw(st.integers(1, 6), label="actions")):
            live = tree.model.live_workers()
            if not live:
                break
            path, worker = live[data.draw(st.integers(0, len(live) - 1), label="worker")]
            kind = data.draw(st.sampled_from(["exception", "normal"]), label="reason")
            tree.exit_worker(path, worker, kind)
            tree.check()
        if not tree.model.root_alive:
            assert tree.model.events[tree.path][-1] == ("supervisor_shutdown", "shutdown")
        tally(tree.model)


def tally(model: ModelTree) -> None:
    """Label the example for ``--hypothesis-show-statistics``: which rules it reached."""
    for path, events in model.events.items():
        where = "root" if path == model.root_path else "sub-supervisor"
        for kind in {e[0] for e in events} - {"child_started"}:
            event(f"{where}: {kind}")
    # workers only exit normal or exception: a child_exited "shutdown" is a supervisor's
    if any(e[0] == "child_exited" and e[2] == "shutdown" for e in model.events[model.root_path]):
        event("root: a sub-supervisor's shutdown escalated to it")


# ---------------------------------------------------------------- examples


@contextlib.contextmanager
def run(
    rt: Runtime, spec: SupModel, actions: list[tuple[str, str, str]]
) -> Iterator[TreeUnderTest]:
    """Drive ``actions`` (path suffix, worker, reason), checking each step against the model."""
    with tree_under_test(rt, spec) as tree:
        tree.check()
        for suffix, worker, kind in actions:
            tree.exit_worker(tree.path + suffix, worker, kind)
            tree.check()
        yield tree


def assert_events(tree: TreeUnderTest, by_suffix: dict[str, list[tuple]]) -> None:
    """The tree's events, per path suffix ("" is the root), are exactly ``by_suffix``."""
    expected = {tree.path + suffix: events for suffix, events in by_suffix.items()}
    observed = tree.events(sum(map(len, expected.values())))
    assert observed == expected, mismatch(observed, expected)
    assert dict(tree.model.events) == expected  # the model agrees with the hand-written list


def test_sub_supervisor_with_zero_intensity_escalates_into_one_for_all_root(
    runtime: Runtime,
) -> None:
    """s0 (max_restarts=0) shuts down on its first crash; the root restarts everything."""
    sub = SupModel("s0", "one_for_one", 0, (WorkerModel("w0"),))
    spec = SupModel(
        "root", "one_for_all", 3, (WorkerModel("a"), sub, WorkerModel("t", "temporary"))
    )
    with run(runtime, spec, [("/s0", "w0", "exception")]) as tree:
        assert_events(
            tree,
            {
                "": [
                    ("child_started", "a"),
                    ("child_started", "s0"),
                    ("child_started", "t"),
                    ("child_exited", "s0", "shutdown"),
                    ("child_terminated", "t", "shutdown"),
                    ("child_terminated", "a", "shutdown"),
                    ("child_restarted", "a", 1),
                    ("child_restarted", "s0", 1),
                ],
                "/s0": [
                    ("child_started", "w0"),
                    ("child_exited", "w0", "exception"),
                    ("restart_intensity_exceeded", "w0"),
                    ("supervisor_shutdown", "shutdown"),
                    ("child_started", "w0"),  # the new incarnation
                ],
            },
        )
        assert [(c.id, c.status) for c in tree.children()[tree.path]] == [
            ("a", "running"),
            ("s0", "running"),
        ]


def test_rest_for_one_removes_a_temporary_sibling_after_the_failed_child(runtime: Runtime) -> None:
    """Children from b on restart, but temporary t is only stopped; t0 before b is untouched."""
    spec = SupModel(
        "root",
        "rest_for_one",
        3,
        (
            WorkerModel("t0", "temporary"),
            WorkerModel("a"),
            WorkerModel("b"),
            WorkerModel("t", "temporary"),
            WorkerModel("c", "transient"),
        ),
    )
    with run(runtime, spec, [("", "b", "exception")]) as tree:
        assert_events(
            tree,
            {
                "": [
                    ("child_started", "t0"),
                    ("child_started", "a"),
                    ("child_started", "b"),
                    ("child_started", "t"),
                    ("child_started", "c"),
                    ("child_exited", "b", "exception"),
                    ("child_terminated", "c", "shutdown"),
                    ("child_terminated", "t", "shutdown"),
                    ("child_restarted", "b", 1),
                    ("child_restarted", "c", 1),
                ]
            },
        )
        assert [(c.id, c.status, c.restarts) for c in tree.children()[tree.path]] == [
            ("t0", "running", 0),
            ("a", "running", 0),
            ("b", "running", 1),
            ("c", "running", 1),
        ]


def test_transient_stopped_normally_is_started_again_by_one_for_all(runtime: Runtime) -> None:
    """OTP's one_for_all starts every remaining spec, a transient that exited normally too."""
    spec = SupModel("root", "one_for_all", 3, (WorkerModel("p"), WorkerModel("tr", "transient")))
    with run(runtime, spec, [("", "tr", "normal")]) as tree:
        assert [(c.id, c.status) for c in tree.children()[tree.path]] == [
            ("p", "running"),
            ("tr", "stopped"),
        ]
        tree.exit_worker(tree.path, "p", "exception")
        tree.check()
        assert_events(
            tree,
            {
                "": [
                    ("child_started", "p"),
                    ("child_started", "tr"),
                    ("child_exited", "tr", "normal"),
                    ("child_exited", "p", "exception"),
                    ("child_restarted", "p", 1),
                    ("child_restarted", "tr", 1),
                ]
            },
        )


def test_root_past_its_intensity_stops_the_whole_tree(runtime: Runtime) -> None:
    """The second restart of a root with max_restarts=1 ends it and every process under it."""
    sub = SupModel("s0", "one_for_one", 3, (WorkerModel("w0"), WorkerModel("w1")))
    spec = SupModel("root", "one_for_one", 1, (WorkerModel("a"), sub))
    with run(runtime, spec, [("", "a", "exception")]) as tree:
        pids = list(tree.pids.values())
        tree.exit_worker(tree.path, "a", "exception")
        assert not tree.model.root_alive
        assert_events(
            tree,
            {
                "": [
                    ("child_started", "a"),
                    ("child_started", "s0"),
                    ("child_exited", "a", "exception"),
                    ("child_restarted", "a", 1),
                    ("child_exited", "a", "exception"),
                    ("restart_intensity_exceeded", "a"),
                    ("child_terminated", "s0", "shutdown"),
                    ("supervisor_shutdown", "shutdown"),
                ],
                "/s0": [
                    ("child_started", "w0"),
                    ("child_started", "w1"),
                    ("child_terminated", "w1", "shutdown"),
                    ("child_terminated", "w0", "shutdown"),
                    ("supervisor_shutdown", "shutdown"),
                ],
            },
        )
        tree.wait_for(lambda: not any(_running(pid) for pid in pids))


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
