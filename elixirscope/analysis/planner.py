"""The planner: an instrumentation plan chosen from the analysis, within an overhead budget.

What is worth recording comes from the source: the callbacks of GenServers and
Thespian actors, web and WebSocket handlers and background jobs get ``args``
(what they were asked matters); functions that query a database, start tasks
or send messages, and the complex ones, get ``boundaries``; the rest of the
project's functions get ``boundaries`` too while the budget allows. What it
costs comes from a recording (``from_run``): each function's recorded calls
times a per-call cost by level (:data:`COST_NS`), over the program's own time
(the run's duration less what its recording cost). Functions are admitted by
priority, then cheapest first, down to ``boundaries`` and then left out when
the budget is spent. Without a recording every function is admitted and the
overhead is not estimated (nothing says how often each runs).

The plan is the TOML ``elixirscope run --plan`` reads (one rule per function,
``default_level = "none"``), headed by comments that say why.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from elixirscope.analysis.project import GENSERVER_CALLBACKS, Project

__all__ = ["COST_NS", "PlanChoice", "choose_plan", "recorded_calls"]

COST_NS = {"boundaries": 3_300, "args": 4_200, "full": 6_000}
"""What recording one call adds to the program's time, embedded, by level (ns): the
hooks and the shipper's share of the GIL for its two events, measured with
``scripts/bench_planner.py`` on a call-heavy program (2-vCPU development machine)."""
HANDLER_KINDS = ("route", "websocket", "job")
ACTIVE_KINDS = ("sqlalchemy_query", "asyncio_task", "pubsub", "registry")
COMPLEX = 10
"""Cognitive complexity from which a function is worth its boundaries for itself."""
PRIORITY = {"handler": 0, "active": 1, "complex": 2, "other": 3}


@dataclass
class PlanChoice:
    """The functions chosen, each with its level, and what the choice is estimated to cost."""

    rules: list[tuple[str, str, str]] = field(default_factory=list)  # (function, level, why)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (function, why)
    overhead: float | None = None  # estimated fraction of the program's own time
    budget: float = 0.05
    program_ns: int | None = None
    source: str = ""

    def toml(self) -> str:
        head = [f"# elixirscope plan for {self.source}: budget {self.budget:.1%}"]
        if self.overhead is None:
            head.append("# estimated overhead: unknown (plan --from-run RUN to estimate it)")
        else:
            head.append(
                f"# estimated overhead: {self.overhead:.2%} of the program's own time "
                f"({self.program_ns / 1e9:.3f} s in the run it was estimated from)"
                if self.program_ns
                else f"# estimated overhead: {self.overhead:.2%}"
            )
        if self.left_out:
            head.append(f"# left out to stay within the budget: {len(self.left_out)} functions")
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
            "program_ns": self.program_ns,
            "rules": [{"function": f, "level": lv, "why": w} for f, lv, w in self.rules],
            "left_out": [{"function": f, "why": w} for f, w in self.left_out],
        }


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def choose_plan(
    project: Project,
    *,
    budget: float = 0.05,
    calls: dict[str, int] | None = None,
    program_ns: int | None = None,
    source: str = "",
) -> PlanChoice:
    """Rules for ``project``'s functions within ``budget`` (a fraction: 0.05 is 5 %).

    ``calls``: recorded calls per ``module.qualname``; ``program_ns``: the program's
    own time in that recording. Both or neither."""
    if not 0 < budget <= 10:
        raise ValueError(f"budget must be a fraction above 0 (0.05 is 5%), got {budget!r}")
    if (calls is None) != (program_ns is None):
        raise ValueError("calls and program_ns come together, from one recording")
    if program_ns is not None and program_ns <= 0:
        raise ValueError(f"the program's own time must be positive, got {program_ns!r} ns")
    wanted = _wanted(project)
    choice = PlanChoice(budget=budget, program_ns=program_ns, source=source)
    if calls is None or program_ns is None:
        choice.rules = [(f, level, why) for f, (_, level, why) in sorted(wanted.items())]
        return choice
    allowance = budget * program_ns
    spent = 0.0
    order = sorted(wanted, key=lambda f: (PRIORITY[wanted[f][0]], calls.get(f, 0), f))
    for function in order:
        _kind, level, why = wanted[function]
        count = calls.get(function, 0)
        for option in _levels_from(level):
            cost = count * COST_NS[option]
            if spent + cost <= allowance:
                spent += cost
                note = why if option == level else f"{why}; boundaries only, for the budget"
                choice.rules.append((function, option, f"{note}; {count:,} calls recorded"))
                break
        else:
            choice.left_out.append((function, f"{count:,} calls recorded would exceed the budget"))
    choice.rules.sort()
    choice.left_out.sort()
    choice.overhead = spent / program_ns
    return choice


def _levels_from(level: str) -> tuple[str, ...]:
    return ("args", "boundaries") if level == "args" else (level,)


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
                    if name in GENSERVER_CALLBACKS or name == "receiveMessage" or name.startswith("receiveMsg_"):
                        handlers.add(f"{node['module']}.{node['qualname']}")
    out: dict[str, tuple[str, str, str]] = {}
    for node in project.nodes.values():
        if node["kind"] not in ("function", "method") or "<locals>" in node["qualname"]:
            continue
        name = f"{node['module']}.{node['qualname']}"
        kinds = by_node.get(node["id"], [])
        if name in handlers or any(k in HANDLER_KINDS for k in kinds):
            out[name] = ("handler", "args", "a handler: " + (", ".join(sorted(set(kinds))) or "callback"))
        elif any(k in ACTIVE_KINDS for k in kinds):
            out[name] = ("active", "boundaries", ", ".join(sorted(set(kinds))))
        elif node["cognitive"] >= COMPLEX:
            out[name] = ("complex", "boundaries", f"cognitive complexity {node['cognitive']}")
        else:
            out[name] = ("other", "boundaries", "a function of the project")
    return out


def recorded_calls(data_dir: str | os.PathLike[str], run: str | None = None) -> tuple[dict[str, int], int, str]:
    """Calls per function in one recording (the latest, or ``run``), the program's own
    time in it (its duration less what recording those calls cost) and the run's id."""
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
    cost = sum(COST_NS[level] * n for level, n in levels.items())
    return dict(counts), max(duration - cost, duration // 10), scope.run.id
