"""The planner: an instrumentation plan chosen from the analysis, within an overhead budget.

What is worth recording comes from the source: the callbacks of GenServers and
Thespian actors, web and WebSocket handlers and background jobs get ``args``
(what they were asked matters); functions that query a database, start tasks
or send messages, and the complex ones, get ``boundaries``; the rest of the
project's functions get ``boundaries`` too while the budget allows.

What it costs is :mod:`elixirscope.analysis.overhead`'s model: Σ calls(f) ×
cost(level(f)) + the fixed cost, with costs calibrated on this machine and
calls counted in a recording (``calls``), over the program's own time in that
recording (its duration less what recording it cost, estimated the same way).
The plan is built in steps — each function at ``boundaries``, then each
handler raised to ``args`` — taken in order of their cost weighted by priority
(a handler's step counts a quarter of its cost, an active function's half, a
complex one's three quarters), up to the first step that does not fit. So the
estimate stays within the budget whenever the fixed cost does, and a larger
budget records everything a smaller one does, and more. Without a recording
every function is planned and the estimate is relative: what 1,000 calls of a
function cost at its level.

The plan is the TOML ``elixirscope run --plan`` reads (one rule per function,
``default_level = "none"``), headed by comments that say why.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from elixirscope.analysis.overhead import (
    Calibration,
    call_cost_ns,
    estimate_ns,
)
from elixirscope.analysis.project import GENSERVER_CALLBACKS, Project

__all__ = ["PlanChoice", "RecordedRun", "choose_plan", "plan_steps", "recorded_run"]

HANDLER_KINDS = ("route", "websocket", "job")
ACTIVE_KINDS = ("sqlalchemy_query", "asyncio_task", "pubsub", "registry")
COMPLEX = 10
"""Cognitive complexity from which a function is worth its boundaries for itself."""
WEIGHT = {"handler": 0.25, "active": 0.5, "complex": 0.75, "other": 1.0}
"""How much of a step's cost counts when ordering the steps: the lower, the earlier."""
PER = 1_000
"""Without a recording, costs are given per this many calls."""


@dataclass(frozen=True)
class RecordedRun:
    """What the planner takes from a recording: calls per function and the program's own time."""

    run_id: str
    calls: dict[str, int]
    duration_ns: int
    recorded_cost_ns: float  # what recording it cost in the program's thread, by the model
    drain_ns: float = 0.0  # and beside it, by the model

    @property
    def program_ns(self) -> float:
        """The run's duration less what recording it cost. When the drain outlasted what
        is left, the program's own time is hidden under it: then a tenth of the duration
        (and :attr:`uncertain` says so)."""
        if self.uncertain:
            return self.duration_ns / 10
        return self.duration_ns - self.recorded_cost_ns

    @property
    def uncertain(self) -> bool:
        left = self.duration_ns - self.recorded_cost_ns
        return left < max(self.drain_ns, self.duration_ns / 10)


@dataclass
class PlanChoice:
    """The functions chosen, each with its level, and what the choice is estimated to cost."""

    rules: list[tuple[str, str, str]] = field(default_factory=list)  # (function, level, why)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (function, why)
    budget: float = 0.05
    calibration: Calibration | None = None
    run: RecordedRun | None = None
    estimate_ns: float | None = None  # with a recording: calls' cost + fixed
    source: str = ""

    @property
    def overhead(self) -> float | None:
        """The estimate as a fraction of the program's own time (with a recording)."""
        if self.run is None or self.estimate_ns is None:
            return None
        return self.estimate_ns / self.run.program_ns

    @property
    def levels(self) -> dict[str, tuple[str, float]]:
        return {f: (level, 1.0) for f, level, _ in self.rules}

    def per_thousand_ns(self) -> dict[str, float]:
        """Without a recording: what 1,000 calls of each planned level cost (ns)."""
        assert self.calibration is not None
        used = sorted({level for _, level, _ in self.rules})
        return {level: PER * call_cost_ns(self.calibration, level) for level in used}

    def summary(self) -> str:
        """The estimate in one line, as the command prints it."""
        head = f"{len(self.rules)} functions planned, {len(self.left_out)} left out"
        if self.calibration is None:
            return head
        fixed = f"{self.calibration.fixed_ns / 1e6:.0f} ms"
        if self.run is None or self.overhead is None or self.estimate_ns is None:
            costs = ", ".join(
                f"{lv} {ns / 1e6:.1f} ms" for lv, ns in self.per_thousand_ns().items()
            )
            drains = self.calibration.drain_ns_per_call
            drain = max((drains.get(lv, 0.0) for _, lv, _ in self.rules), default=0.0)
            saving = (
                f" in the program's thread and up to {PER * drain / 1e6:.0f} ms beside it "
                "(hidden while the program runs longer)"
                if drain
                else ""
            )
            return (
                f"{head}; estimate relative (no recording): per 1,000 calls "
                f"{costs or 'nothing'}{saving}, plus {fixed} per run"
            )
        return (
            f"{head}; estimated overhead {self.overhead:.1%} (budget {_percent(self.budget)}): "
            f"{(self.estimate_ns - self.calibration.fixed_ns) / 1e6:.0f} ms for "
            f"{sum(self.run.calls.get(f, 0) for f, _, _ in self.rules):,} calls + {fixed} fixed, "
            f"over {self.run.program_ns / 1e9:.2f} s of the program's own time in run {self.run.run_id[:8]}"
            + (
                " (uncertain: recording that run cost nearly all of it)"
                if self.run.uncertain
                else ""
            )
        )

    def toml(self) -> str:
        budget = "" if self.run is None else f": budget {_percent(self.budget)}"
        head = [f"# elixirscope plan for {self.source}{budget}"]
        head.append("# " + self.summary())
        if self.calibration is not None:
            head.append("# costs " + self.calibration.describe())
        lines = [*head, 'default_level = "none"', ""]
        for function, level, why in self.rules:
            lines += [
                f"[[rules]]  # {why}",
                f"pattern = {_toml_string(function)}",
                f'level = "{level}"',
                "sampling = 1.0",
                "",
            ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "budget": self.budget,
            "overhead": self.overhead,
            "estimate_ns": self.estimate_ns,
            "program_ns": None if self.run is None else self.run.program_ns,
            "run": None if self.run is None else self.run.run_id,
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "per_1000_calls_ns": None
            if self.run is not None or self.calibration is None
            else self.per_thousand_ns(),
            "rules": [{"function": f, "level": lv, "why": w} for f, lv, w in self.rules],
            "left_out": [{"function": f, "why": w} for f, w in self.left_out],
        }


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def plan_steps(
    wanted: dict[str, tuple[str, str, str]], calls: dict[str, int], calibration: Calibration
) -> list[tuple[float, str, str, float, float]]:
    """The steps a plan is built from, in the order they are taken: (weighted key,
    function, level it brings the function to, cost it adds in the program's thread
    and beside it, in ns)."""
    steps = []
    drains = calibration.drain_ns_per_call
    for function, (kind, level, _why) in wanted.items():
        count = calls.get(function, 0)
        base = count * call_cost_ns(calibration, "boundaries")
        base_drain = count * drains.get("boundaries", 0.0)
        steps.append(((base + base_drain) * WEIGHT[kind], function, "boundaries", base, base_drain))
        if level != "boundaries":
            more = count * call_cost_ns(calibration, level) - base
            more_drain = count * drains.get(level, 0.0) - base_drain
            # after its own boundaries step, whatever it costs
            key = max(base + base_drain, more + more_drain) * WEIGHT[kind]
            steps.append((key, function, level, more, more_drain))
    order = {"boundaries": 0, "args": 1, "full": 2}
    steps.sort(key=lambda s: (s[0], order[s[2]], s[1]))
    return steps


def choose_plan(
    project: Project,
    calibration: Calibration,
    *,
    budget: float = 0.05,
    run: RecordedRun | None = None,
    source: str = "",
) -> PlanChoice:
    """Rules for ``project``'s functions within ``budget`` (a fraction: 0.05 is 5 %)."""
    return choose_from(_wanted(project), calibration, budget=budget, run=run, source=source)


def choose_from(
    wanted: dict[str, tuple[str, str, str]],
    calibration: Calibration,
    *,
    budget: float = 0.05,
    run: RecordedRun | None = None,
    source: str = "",
) -> PlanChoice:
    """:func:`choose_plan` over ``wanted``: function -> (priority kind, level, why)."""
    if not 0 < budget <= 1:
        raise ValueError(f"budget must be above 0% and at most 100%, got {_percent(budget)}")
    if run is not None and run.duration_ns <= 0:
        raise ValueError(f"run {run.run_id[:8]} has no duration to estimate from")
    choice = PlanChoice(budget=budget, calibration=calibration, run=run, source=source)
    if run is None:
        choice.rules = [(f, level, why) for f, (_, level, why) in sorted(wanted.items())]
        return choice
    own = run.program_ns
    allowance = budget * own
    spent = drained = 0.0
    chosen: dict[str, str] = {}
    stopped = False
    for _key, function, level, cost, drain in plan_steps(wanted, run.calls, calibration):
        after = spent + cost + max(0.0, drained + drain - own) + calibration.fixed_ns
        if stopped or after > allowance:
            stopped = True
            continue
        spent, drained = spent + cost, drained + drain
        chosen[function] = level
    for function, (_kind, level, why) in sorted(wanted.items()):
        count = run.calls.get(function, 0)
        if function in chosen:
            note = why if chosen[function] == level else f"{why}; boundaries only, for the budget"
            choice.rules.append((function, chosen[function], f"{note}; {count:,} calls recorded"))
        else:
            choice.left_out.append((function, f"{count:,} calls recorded would exceed the budget"))
    choice.estimate_ns = estimate_ns(calibration, run.calls, choice.levels, own)
    return choice


def _wanted(project: Project) -> dict[str, tuple[str, str, str]]:
    """Every function of the project: (priority kind, level, why)."""
    by_node: dict[str, list[str]] = {}
    for pattern in project.patterns:
        by_node.setdefault(pattern["node"], []).append(pattern["kind"])
    handlers: set[str] = set()
    for pattern in project.patterns:
        if pattern["kind"] in ("route", "websocket") and pattern.get("handler"):
            handlers.add(pattern["handler"])
        if pattern["kind"] in ("genserver", "supervisor", "thespian_actor"):
            for node in project.nodes.values():
                if node["kind"] == "method" and node["parent"] == pattern["node"]:
                    name = node["qualname"].rpartition(".")[2]
                    if (
                        name in GENSERVER_CALLBACKS
                        or name == "receiveMessage"
                        or name.startswith("receiveMsg_")
                    ):
                        handlers.add(f"{node['module']}.{node['qualname']}")
    out: dict[str, tuple[str, str, str]] = {}
    for node in project.nodes.values():
        if node["kind"] not in ("function", "method") or "<locals>" in node["qualname"]:
            continue
        name = f"{node['module']}.{node['qualname']}"
        kinds = by_node.get(node["id"], [])
        if name in handlers or any(k in HANDLER_KINDS for k in kinds):
            out[name] = (
                "handler",
                "args",
                "a handler: " + (", ".join(sorted(set(kinds))) or "callback"),
            )
        elif any(k in ACTIVE_KINDS for k in kinds):
            out[name] = ("active", "boundaries", ", ".join(sorted(set(kinds))))
        elif node["cognitive"] >= COMPLEX:
            out[name] = ("complex", "boundaries", f"cognitive complexity {node['cognitive']}")
        else:
            out[name] = ("other", "boundaries", "a function of the project")
    return out


def recorded_run(
    data_dir: str | os.PathLike[str], run: str | None, calibration: Calibration
) -> RecordedRun:
    """Calls per function in one recording (the latest, or ``run``) and its duration;
    what recording it cost is estimated from each call's level (``args`` when it
    carries arguments, else ``boundaries``)."""
    from elixirscope.query.runs import select_run
    from elixirscope.store.eventstore import EventStore

    scope = select_run(data_dir, run)
    if scope.run is None:
        raise ValueError(f"no recorded run under {str(data_dir)!r} to estimate from")
    duration = scope.run.duration_ns
    if not duration:
        raise ValueError(f"run {scope.run.short_id} has no duration (it did not end)")
    counts: Counter[str] = Counter()
    levels: Counter[str] = Counter()
    with EventStore.open(data_dir, readonly=True) as store:
        for stored in store.query(type="call", run=scope.run.id, limit=None):
            event = stored.event
            counts[event.function] += 1  # type: ignore[union-attr]
            levels["args" if getattr(event, "args", None) is not None else "boundaries"] += 1
    cost = sum(n * call_cost_ns(calibration, level) for level, n in levels.items())
    drain = sum(n * calibration.drain_ns_per_call.get(level, 0.0) for level, n in levels.items())
    return RecordedRun(
        scope.run.id, dict(counts), duration, cost + calibration.fixed_in_run_ns, drain
    )
