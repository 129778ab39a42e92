"""The planner: an instrumentation plan chosen from the analysis, within an overhead budget.

What is worth recording comes from the source: the callbacks of GenServers and
Thespian actors, web and WebSocket handlers and background jobs get ``args``
(what they were asked matters); functions that query a database, start tasks
or send messages, and the complex ones, get ``boundaries``; the rest of the
project's functions get ``boundaries`` too while the budget allows.

What it costs is :mod:`elixirscope.analysis.overhead`'s model: root calls ×
root cost + nested calls × nested cost + batches written × batch cost + the
integrations' events × event cost + the lines of the modules rewritten at
import × rewrite cost + the fixed cost, in CPU time, with costs
calibrated on this machine and calls counted in a recording, by caller and
callee (a call whose caller the plan leaves out becomes a root; one whose
caller is sampled is recorded as often as its caller; one whose caller the
integrations record whatever the plan, a web request's own call, is nested),
over the program's own time in that recording (its duration less what
recording it cost, estimated the same way). The integrations' events (a
request's ``req``/``reqend``, its queries and transactions, actors' messages)
and the batches the recording wrote are counted in it too: the events are a
part of every plan's cost, whichever functions it records.
The plan is built in steps — each function at ``boundaries``, then each
handler raised to ``args`` — taken in order of their cost weighted by priority
(a handler's step counts a quarter of its cost, an active function's half, a
complex one's three quarters), up to the first step that does not fit. That
step, when it brings a function to ``boundaries``, is taken sampled instead,
at the highest rate in :data:`SAMPLING_RATES` that fits (a sampled root call
records its whole call tree or none of it). So the estimate stays within the
budget whenever the fixed cost does, and a larger budget records everything a
smaller one does, and more. Without a recording
every function is planned and the estimate is relative: what 1,000 calls cost
at each level, nested and as roots.

The plan is the TOML ``elixirscope run --plan`` reads (one rule per function,
``default_level = "none"``), headed by comments that say why.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elixirscope.analysis.overhead import (
    ALWAYS_RECORDED_CALLS,
    WEB_KIND,
    Breakdown,
    Calibration,
    breakdown,
    call_cost_ns,
    integration_events,
)
from elixirscope.analysis.project import GENSERVER_CALLBACKS, Project

__all__ = [
    "SAMPLING_RATES",
    "PlanChoice",
    "RecordedRun",
    "calls_under",
    "choose_plan",
    "plan_steps",
    "recorded_run",
]

HANDLER_KINDS = ("route", "websocket", "job")
ACTIVE_KINDS = ("sqlalchemy_query", "asyncio_task", "pubsub", "registry")
COMPLEX = 10
"""Cognitive complexity from which a function is worth its boundaries for itself."""
WEIGHT = {"handler": 0.25, "active": 0.5, "complex": 0.75, "other": 1.0}
"""How much of a step's cost counts when ordering the steps: the lower, the earlier."""
PER = 1_000
"""Without a recording, costs are given per this many calls."""
SAMPLING_RATES = (0.5, 0.2, 0.1, 0.05, 0.02, 0.01)
"""The rates a function that does not fit whole may be sampled at, highest first."""


Edges = dict[tuple[str | None, str], int]
"""Calls counted by (caller's function, or None for a root call; function called)."""


@dataclass(frozen=True)
class RecordedRun:
    """What the planner takes from a recording: calls per function, who called them,
    and the program's own time."""

    run_id: str
    calls: dict[str, int]
    duration_ns: int
    recorded_cost_ns: float  # what recording it cost, by the model
    edges: Edges = field(default_factory=dict)
    sampled_out: int = 0  # calls its own plan's sampling left out (not counted)
    events: dict[str, int] = field(default_factory=dict)  # the integrations', by kind
    batches: int | None = None  # the batches the store holds of it (None: not counted)

    @property
    def program_ns(self) -> float:
        """The run's duration less what recording it cost; when the model says that was
        nearly all of it, a tenth of the duration (and :attr:`uncertain` says so)."""
        return max(self.duration_ns - self.recorded_cost_ns, self.duration_ns / 10)

    @property
    def uncertain(self) -> bool:
        return self.recorded_cost_ns > 0.9 * self.duration_ns


def roots_under(levels: dict[str, tuple[str, float]], edges: Edges) -> dict[str, int]:
    """Each planned function's root calls under a plan: those whose caller it does not
    record (a caller's caller is not looked at: an upper bound)."""
    return calls_under(levels, edges)[0]


def calls_under(
    levels: dict[str, tuple[str, float]], edges: Edges
) -> tuple[dict[str, int], dict[str, float]]:
    """Each planned function's root calls and its nested calls recorded under a plan:
    a call whose caller the plan records is nested, and recorded when its caller's
    root was sampled in (the caller's rate; its caller's is not looked at); so is
    one whose caller the integrations record whatever the plan."""
    roots: dict[str, int] = {}
    nested: dict[str, float] = {}
    for (caller, callee), count in edges.items():
        if callee not in levels:
            continue
        if caller in ALWAYS_RECORDED_CALLS and caller not in levels:
            nested[callee] = nested.get(callee, 0.0) + count
        elif caller is None or caller not in levels or levels[caller][0] == "none":
            roots[callee] = roots.get(callee, 0) + count
        else:
            nested[callee] = nested.get(callee, 0.0) + count * levels[caller][1]
    return roots, nested


@dataclass
class PlanChoice:
    """The functions chosen, each with its level, and what the choice is estimated to cost."""

    rules: list[tuple[str, str, str]] = field(default_factory=list)  # (function, level, why)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (function, why)
    budget: float = 0.05
    calibration: Calibration | None = None
    run: RecordedRun | None = None
    estimate_ns: float | None = None  # with a recording: calls' cost + batches + fixed
    source: str = ""
    sampling: dict[str, float] = field(default_factory=dict)  # functions sampled, by rate
    parts: Breakdown | None = None  # the estimate in its parts (with a recording)
    sources: dict[str, tuple[str, int]] = field(default_factory=dict)  # function -> module, lines
    everything_ns: float | None = None  # when the fixed cost left no room: all of them planned

    @property
    def overhead(self) -> float | None:
        """The estimate as a fraction of the program's own time (with a recording)."""
        if self.run is None or self.estimate_ns is None:
            return None
        return self.estimate_ns / self.run.program_ns

    @property
    def levels(self) -> dict[str, tuple[str, float]]:
        return {f: (level, self.sampling.get(f, 1.0)) for f, level, _ in self.rules}

    def per_thousand_ns(self) -> dict[str, tuple[float, float]]:
        """Without a recording: what 1,000 calls at each planned level cost (ns), nested
        in a recorded call and as root calls."""
        assert self.calibration is not None
        used = sorted({level for _, level, _ in self.rules})
        return {
            level: (
                PER * call_cost_ns(self.calibration, level),
                PER * call_cost_ns(self.calibration, level, root=True),
            )
            for level in used
        }

    def summary(self) -> str:
        """The estimate, as the command prints it: one line, and with a recording its
        parts, one a line."""
        head = f"{len(self.rules)} functions planned, {len(self.left_out)} left out"
        if self.sampling:
            head += f" ({len(self.sampling)} sampled)"
        if self.calibration is None:
            return head
        fixed = f"{self.calibration.fixed_ns / 1e6:.0f} ms"
        if self.run is None or self.overhead is None or self.estimate_ns is None:
            costs = ", ".join(
                f"{lv} {nested / 1e6:.0f} ms nested, {root / 1e6:.0f} ms as root calls"
                for lv, (nested, root) in self.per_thousand_ns().items()
            )
            return (
                f"{head}; estimate relative (no recording): per 1,000 calls "
                f"{costs or 'nothing'}; plus {fixed} per run and "
                f"{self.calibration.batch_ns / 1e6:.1f} ms per batch written"
            )
        first = (
            f"{head}; estimated overhead {self.overhead:.1%} (budget {_percent(self.budget)}): "
            f"{self.estimate_ns / 1e6:,.0f} ms of CPU over {self.run.program_ns / 1e9:.2f} s of "
            f"the program's own time in run {self.run.run_id[:8]}"
            + (
                " (uncertain: recording that run cost nearly all of it)"
                if self.run.uncertain
                else ""
            )
            + (
                "; the fixed cost alone is over the budget"
                if self.calibration.fixed_ns > self.budget * self.run.program_ns
                else ""
            )
            + (
                f"; that run sampled out {self.run.sampled_out:,} calls, not counted here"
                if self.run.sampled_out
                else ""
            )
            + (
                f"; {_ms(self.parts.events_ns)} of it are events the integrations "
                "record whatever the plan (a part of any plan's cost while they are on)"
                if self.parts is not None and self.parts.events
                else ""
            )
            + self._sample_requests()
            + self._room_needed()
        )
        parts = [] if self.parts is None else self.parts.lines()
        return "\n".join([first, *(f"  {line}" for line in parts)])

    def _sample_requests(self) -> str:
        """Where the web requests' recording alone is over the budget: the setting that
        records a share of them (the planner plans functions, not integrations)."""
        parts, run = self.parts, self.run
        if parts is None or run is None or not any(e.kind == WEB_KIND for e in parts.events):
            return ""
        if parts.fixed_ns + parts.events_ns <= self.budget * run.program_ns:
            return ""
        return (
            "; the web requests' recording alone is over the budget:"
            " integrations.request_sampling = 0.1 records a tenth of them (README"
            ' "Web requests and outgoing HTTP"; not in this estimate)'
        )

    def _room_needed(self) -> str:
        """For a run too short for the budget's fixed cost: what planning every function
        would cost, and the budget that allows it."""
        if self.everything_ns is None or self.run is None:
            return ""
        wanted = len(self.rules) + len(self.left_out)
        share = self.everything_ns / self.run.program_ns
        more = max(0.0, self.everything_ns - (self.estimate_ns or 0.0))
        text = (
            f"; a run this short pays mostly ElixirScope's start-up: planning all {wanted} "
            f"functions would cost {_ms(more)} more, {share:.1%} in all"
        )
        if share <= 1:
            return text + f": --budget {math.ceil(share * 100)}% plans them all"
        return text + ": over 100 %, too short a run for a budget; --budget 100% plans what fits"

    def toml(self) -> str:
        budget = "" if self.run is None else f": budget {_percent(self.budget)}"
        head = [f"# elixirscope plan for {self.source}{budget}"]
        head += ["# " + line for line in self.summary().splitlines()]
        if self.calibration is not None:
            head.append("# costs " + self.calibration.describe())
        lines = [*head, 'default_level = "none"', ""]
        for function, level, why in self.rules:
            lines += [
                f"[[rules]]  # {why}",
                f"pattern = {_toml_string(function)}",
                f'level = "{level}"',
                f"sampling = {self.sampling.get(function, 1.0)!r}",
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
            "breakdown": None if self.parts is None else self.parts.to_dict(),
            "rules": [
                {"function": f, "level": lv, "sampling": self.sampling.get(f, 1.0), "why": w}
                for f, lv, w in self.rules
            ],
            "left_out": [{"function": f, "why": w} for f, w in self.left_out],
        }


def _ms(ns: float) -> str:
    """Milliseconds as a person reads them: ``0.1 ms``, ``12 ms``, ``1,250 ms``."""
    ms = ns / 1e6
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:,.0f} ms"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def plan_steps(
    wanted: dict[str, tuple[str, str, str]], run: RecordedRun, calibration: Calibration
) -> list[tuple[float, str, str]]:
    """The steps a plan is built from, in the order they are taken: (weighted key,
    function, level it brings the function to). The key is what the function's calls
    cost with the callers the recording saw, weighted by priority."""
    steps = []
    for function, (kind, level, _why) in wanted.items():
        count = run.calls.get(function, 0)
        rooted = run.edges.get((None, function), 0)

        def cost(lv: str, f: str = function, n: int = count, r: int = rooted) -> float:
            return r * call_cost_ns(calibration, lv, root=True) + (n - r) * call_cost_ns(
                calibration, lv
            )

        base = cost("boundaries")
        steps.append((base * WEIGHT[kind], function, "boundaries"))
        if level != "boundaries":  # after its own boundaries step, whatever it costs
            steps.append((max(base, cost(level) - base) * WEIGHT[kind], function, level))
    order = {"boundaries": 0, "args": 1, "full": 2}
    steps.sort(key=lambda s: (s[0], order[s[2]], s[1]))
    return steps


def rewritten_modules(
    levels: dict[str, tuple[str, float]], sources: dict[str, tuple[str, int]] | None
) -> dict[str, int]:
    """The modules the import hook rewrites under a plan (one of their functions
    planned), with their lines, from ``sources`` (function -> (module, lines))."""
    out: dict[str, int] = {}
    for function, (level, _rate) in levels.items():
        if level != "none" and sources and function in sources:
            module, lines = sources[function]
            out[module] = lines
    return out


def plan_breakdown(
    calibration: Calibration,
    run: RecordedRun,
    levels: dict[str, tuple[str, float]],
    sources: dict[str, tuple[str, int]] | None = None,
) -> Breakdown:
    """The model's estimate for a plan giving ``levels``, from the calls in ``run``
    (and its duration and the batches it wrote: how many batches its calls make) and
    the integrations' events and calls in it (recorded whatever the plan), in its parts."""
    roots, nested = calls_under(levels, run.edges)
    always = {}
    for function in ALWAYS_RECORDED_CALLS:
        if function in levels or not run.calls.get(function):
            continue
        rooted = sum(n for (caller, f), n in run.edges.items() if f == function and caller is None)
        always[function] = (rooted, run.calls[function] - rooted)
    return breakdown(
        calibration,
        run.calls,
        levels,
        roots,
        nested,
        run.duration_ns,
        events=run.events,
        always_calls=always,
        written=run.batches,
        rewritten=rewritten_modules(levels, sources),
    )


def plan_estimate_ns(
    calibration: Calibration,
    run: RecordedRun,
    levels: dict[str, tuple[str, float]],
    sources: dict[str, tuple[str, int]] | None = None,
) -> float:
    """The model's estimate for a plan giving ``levels``, from the calls in ``run``."""
    return plan_breakdown(calibration, run, levels, sources).total_ns


def choose_plan(
    project: Project,
    calibration: Calibration,
    *,
    budget: float = 0.05,
    run: RecordedRun | None = None,
    source: str = "",
) -> PlanChoice:
    """Rules for ``project``'s functions within ``budget`` (a fraction: 0.05 is 5 %)."""
    return choose_from(
        _wanted(project),
        calibration,
        budget=budget,
        run=run,
        source=source,
        sources=_sources(project),
    )


def choose_from(
    wanted: dict[str, tuple[str, str, str]],
    calibration: Calibration,
    *,
    budget: float = 0.05,
    run: RecordedRun | None = None,
    source: str = "",
    sources: dict[str, tuple[str, int]] | None = None,
) -> PlanChoice:
    """:func:`choose_plan` over ``wanted``: function -> (priority kind, level, why);
    ``sources``: each function's module and its lines (what rewriting it costs)."""
    if not 0 < budget <= 1:
        raise ValueError(f"budget must be above 0% and at most 100%, got {_percent(budget)}")
    if run is not None and run.duration_ns <= 0:
        raise ValueError(f"run {run.run_id[:8]} has no duration to estimate from")
    choice = PlanChoice(
        budget=budget, calibration=calibration, run=run, source=source, sources=dict(sources or {})
    )
    if run is None:
        choice.rules = [(f, level, why) for f, (_, level, why) in sorted(wanted.items())]
        return choice
    allowance = budget * run.program_ns
    chosen: dict[str, tuple[str, float]] = {}
    for _key, function, level in plan_steps(wanted, run, calibration):
        trial = {**chosen, function: (level, 1.0)}
        if plan_estimate_ns(calibration, run, trial, sources) <= allowance:
            chosen = trial
            continue
        if function not in chosen:  # its first step: sampled, if some rate fits
            for rate in SAMPLING_RATES:
                trial = {**chosen, function: (level, rate)}
                if plan_estimate_ns(calibration, run, trial, sources) <= allowance:
                    chosen = trial
                    break
        break  # up to the first step that does not fit: a larger budget keeps all these
    for function, (_kind, level, why) in sorted(wanted.items()):
        count = run.calls.get(function, 0)
        if function in chosen:
            got, rate = chosen[function]
            note = why if got == level else f"{why}; boundaries only, for the budget"
            if rate < 1.0:
                choice.sampling[function] = rate
                note += f"; {rate:.0%} of its root calls (whole call trees), for the budget"
            choice.rules.append((function, got, f"{note}; {count:,} calls recorded"))
        else:
            choice.left_out.append((function, f"{count:,} calls recorded would exceed the budget"))
    choice.parts = plan_breakdown(calibration, run, choice.levels, sources)
    choice.estimate_ns = choice.parts.total_ns
    if not chosen and wanted and calibration.fixed_ns > allowance:
        everything = {f: (level, 1.0) for f, (_, level, _) in wanted.items()}
        choice.everything_ns = plan_estimate_ns(calibration, run, everything, sources)
    return choice


def _sources(project: Project) -> dict[str, tuple[str, int]]:
    """Each function of the project: its module and the module's lines."""
    return {
        f"{node['module']}.{node['qualname']}": (
            node["module"],
            int(project.modules[node["module"]].get("lines") or 0),
        )
        for node in project.nodes.values()
        if node["kind"] in ("function", "method") and node["module"] in project.modules
    }


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
    """Calls per function in one recording (the latest, or ``run``), who called them,
    and its duration; what recording it cost is estimated from each function's level
    in it (``args`` when its calls carry arguments, else ``boundaries``)."""
    from elixirscope.query.runs import select_run
    from elixirscope.store.eventstore import EventStore
    from elixirscope.store.runs import read_runs

    scope = select_run(data_dir, run)
    if scope.run is None:
        raise ValueError(f"no recorded run under {str(data_dir)!r} to estimate from")
    duration = scope.run.duration_ns
    if not duration:
        raise ValueError(f"run {scope.run.short_id} has no duration (it did not end)")
    script = next((Path(a).stem for a in scope.run.command if a.endswith(".py")), None)

    def named(function: str) -> str:  # a script runs as __main__; the analysis names its file
        if script and function.startswith("__main__."):
            return f"{script}.{function[len('__main__.') :]}"
        return function

    counts: Counter[str] = Counter()
    edges: Counter[tuple[str | None, str]] = Counter()
    with_args: set[str] = set()
    function_of: dict[int, str] = {}
    with EventStore.open(data_dir, readonly=True) as store:
        for stored in store.query(type="call", run=scope.run.id, limit=None):
            event: Any = stored.event
            function = named(event.function)
            function_of[event.id] = function
            counts[function] += 1
            edges[(function_of.get(event.parent_id), function)] += 1
            if getattr(event, "args", None) is not None:
                with_args.add(function)
        written = store.run_totals().get(scope.run.id, {}).get("batches")
    events = integration_events(data_dir, scope.run.id)
    levels = {
        f: ("args" if f in with_args else "boundaries", 1.0)
        for f in counts
        if f not in ALWAYS_RECORDED_CALLS
    }
    recorded = RecordedRun(
        scope.run.id, dict(counts), duration, 0.0, dict(edges), 0, events, written
    )
    cost = plan_estimate_ns(calibration, recorded, levels) - calibration.fixed_ns
    sampled_out = int(read_runs(data_dir).get(scope.run.id, {}).get("sampled_out") or 0)
    return RecordedRun(
        scope.run.id,
        dict(counts),
        duration,
        cost + calibration.fixed_in_run_ns,
        dict(edges),
        sampled_out,
        events,
        written,
    )
