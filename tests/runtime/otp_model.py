"""An executable model of OTP supervisor restarts, to check the runtime against.

Written from OTP's ``supervisor.erl`` rules, not from
``elixirscope.runtime.supervisor``. The input is "worker W exits with reason
R"; the output is, per supervisor path, the lifecycle events the supervisor
must publish, in order, and which children are left running.

Rules (OTP):

- a child's exit is reported (``child_exited``). ``temporary`` is never
  restarted and its spec is removed; ``transient`` is restarted only after an
  abnormal exit (``normal`` and ``shutdown`` are not abnormal) and otherwise
  stays in the child list, not running; ``permanent`` is always restarted;
- a restart is first recorded against the intensity. With ``max_seconds``
  large, that is "more than ``max_restarts`` restarts in this incarnation":
  the supervisor reports ``restart_intensity_exceeded``, stops its running
  children in reverse start order (``child_terminated`` each), reports
  ``supervisor_shutdown`` and exits with reason ``shutdown``. Its parent sees
  that as the supervisor child's exit and applies *its* rules (escalation,
  one level at a time);
- otherwise the strategy picks the affected range: ``one_for_one`` the child,
  ``one_for_all`` every child, ``rest_for_one`` the child and those after it.
  Running children in the range other than the failed one are stopped in
  reverse order (``child_terminated``; a temporary one is removed), then every
  child left in the range is started in order (``child_restarted``) —
  including a transient that had exited normally, since OTP's
  ``start_children`` starts every remaining spec in the range;
- a supervisor that is started (again) runs ``init`` again: all its children
  from the original spec, a fresh restart count;
- a supervisor stopped by its parent stops its running children in reverse
  order, then reports ``supervisor_shutdown``.

Event order inside one supervisor follows OTP's ``supervisor.erl``: the exit
report, then the intensity report (``reached_max_restart_intensity``), then
``terminate/2`` stopping the children. A start is reported once: as
``child_started`` when the supervisor starts, as ``child_restarted`` when a
restart starts it (OTP has one progress report per start either way).

Events are tuples:

- ``("child_started", id)``
- ``("child_exited", id, reason_kind)``
- ``("child_terminated", id, reason_kind)``
- ``("child_restarted", id, restart_count)`` — restarts of that child spec in
  this supervisor incarnation, this one included
- ``("restart_intensity_exceeded", id)`` — the child whose restart was refused
- ``("supervisor_shutdown", reason_kind)``
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal, Union

__all__ = ["ChildState", "ModelTree", "SupModel", "WorkerModel"]

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
Restart = Literal["permanent", "transient", "temporary"]
ExitKind = Literal["normal", "exception", "shutdown"]

ABNORMAL = frozenset({"exception", "killed", "stop", "noproc"})


# ------------------------------------------------------------------- specs


@dataclass(frozen=True)
class WorkerModel:
    id: str
    restart: Restart = "permanent"


@dataclass(frozen=True)
class SupModel:
    """A supervisor; ``restart`` is its restart type as a child (ignored at the root)."""

    id: str
    strategy: Strategy
    max_restarts: int
    children: tuple[Union[WorkerModel, SupModel], ...]
    restart: Restart = "permanent"


Spec = Union[WorkerModel, SupModel]


@dataclass(frozen=True)
class ChildState:
    """What ``which_children`` should show for one child."""

    id: str
    status: Literal["running", "stopped"]
    restarts: int


# ------------------------------------------------------------------- state


@dataclass(eq=False)
class _Child:
    spec: Spec
    running: bool = False
    restarts: int = 0
    process: int = 0  # tree-wide number of the process now running it: new number, new pid
    sup: _Sup | None = None  # the running incarnation, for supervisor children


class _Sup:
    """One incarnation of a supervisor."""

    def __init__(self, tree: ModelTree, path: str, spec: SupModel, parent: _Sup | None) -> None:
        self.tree, self.path, self.spec, self.parent = tree, path, spec, parent
        self.children = [_Child(c) for c in spec.children]
        self.restarts = 0
        self.alive = True

    def publish(self, *event: object) -> None:
        self.tree.events[self.path].append(event)

    # ---------------------------------------------------------- start / stop
    def start_all(self) -> None:
        for child in self.children:
            self.start_child(child)

    def start_child(self, child: _Child, *, restart: bool = False) -> None:
        if isinstance(child.spec, SupModel):
            child.sup = _Sup(self.tree, f"{self.path}/{child.spec.id}", child.spec, self)
            child.sup.start_all()
        child.running = True
        child.process = self.tree.new_process()
        if restart:
            child.restarts += 1
            self.publish("child_restarted", child.spec.id, child.restarts)
        else:
            self.publish("child_started", child.spec.id)

    def terminate_child(self, child: _Child) -> None:
        if child.sup is not None:
            child.sup.shutdown()
            child.sup = None
        child.running = False
        self.publish("child_terminated", child.spec.id, "shutdown")

    def shutdown(self) -> None:
        for child in reversed(self.children):
            if child.running:
                self.terminate_child(child)
        self.publish("supervisor_shutdown", "shutdown")
        self.alive = False

    # ------------------------------------------------------------ exits
    def child_exited(self, child: _Child, kind: str) -> None:
        self.publish("child_exited", child.spec.id, kind)
        child.running, child.sup = False, None
        restart = child.spec.restart
        if restart == "temporary":
            self.children.remove(child)
        elif restart == "permanent" or kind in ABNORMAL:
            self.restart(child)

    def restart(self, child: _Child) -> None:
        self.restarts += 1
        if self.restarts > self.spec.max_restarts:
            self.publish("restart_intensity_exceeded", child.spec.id)
            self.shutdown()
            self.tree.supervisor_exited(self)
            return
        affected = self.affected(child)
        for other in reversed(affected):
            if other is not child and other.running:
                self.terminate_child(other)
                if other.spec.restart == "temporary":
                    self.children.remove(other)
        for target in [c for c in affected if c in self.children]:
            self.start_child(target, restart=True)

    def affected(self, child: _Child) -> list[_Child]:
        if self.spec.strategy == "one_for_all":
            return list(self.children)
        if self.spec.strategy == "rest_for_one":
            return self.children[self.children.index(child) :]
        return [child]

    def find(self, child_id: str) -> _Child:
        for child in self.children:
            if child.spec.id == child_id:
                return child
        raise KeyError(f"{self.path} has no child {child_id!r}")


# -------------------------------------------------------------------- tree


@dataclass
class ModelTree:
    """A running model tree: feed it exits, read expected events and children."""

    spec: SupModel
    root_path: str = "root"
    events: dict[str, list[tuple]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        self._processes = 0
        self.root = _Sup(self, self.root_path, self.spec, None)
        self.root.start_all()

    def new_process(self) -> int:
        self._processes += 1
        return self._processes

    @property
    def root_alive(self) -> bool:
        return self.root.alive

    def supervisor_exited(self, sup: _Sup) -> None:
        """``sup`` exceeded its intensity and exited with ``shutdown``: escalate."""
        parent = sup.parent
        if parent is not None:
            parent.child_exited(next(c for c in parent.children if c.sup is sup), "shutdown")

    def worker_exits(self, path: str, worker_id: str, kind: ExitKind) -> None:
        """The input event: running worker ``worker_id`` of ``path`` exits with ``kind``."""
        sup = self._live_sups()[path]
        child = sup.find(worker_id)
        if not child.running or isinstance(child.spec, SupModel):
            raise ValueError(f"{path}/{worker_id} is not a running worker")
        sup.child_exited(child, kind)

    # ---------------------------------------------------------------- queries
    def _live_sups(self) -> dict[str, _Sup]:
        out: dict[str, _Sup] = {}

        def walk(sup: _Sup) -> None:
            out[sup.path] = sup
            for child in sup.children:
                if child.sup is not None:
                    walk(child.sup)

        if self.root.alive:
            walk(self.root)
        return out

    def live_supervisors(self) -> list[str]:
        """Paths of running supervisors, root first, then depth-first in child order."""
        return list(self._live_sups())

    def live_workers(self) -> list[tuple[str, str]]:
        """``(supervisor path, worker id)`` of every running worker, in tree order."""
        return [
            (path, c.spec.id)
            for path, sup in self._live_sups().items()
            for c in sup.children
            if c.running and isinstance(c.spec, WorkerModel)
        ]

    def children(self, path: str) -> list[ChildState]:
        """What ``which_children`` of the live supervisor at ``path`` should return."""
        return [
            ChildState(c.spec.id, "running" if c.running else "stopped", c.restarts)
            for c in self._live_sups()[path].children
        ]

    def processes(self) -> dict[tuple[str, str], int]:
        """``(path, child id) -> process number`` of running children; a new number, a new pid."""
        return {
            (path, c.spec.id): c.process
            for path, sup in self._live_sups().items()
            for c in sup.children
            if c.running
        }

    def event_count(self) -> int:
        return sum(len(v) for v in self.events.values())
