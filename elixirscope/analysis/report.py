"""The analysis report: what ``elixirscope analyze`` prints, as data and as text.

The data (``--json``) holds every pattern, supervision tree, message flow and
hot spot; the text draws them with rich (tables, the supervision tree as a
tree) at a fixed width, so it reads the same in a terminal, a pipe and the
README, and keeps the longest lists short (the data has them whole).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

from elixirscope.analysis.project import PATTERN_KINDS, Project
from elixirscope.analysis.repository import Repository

__all__ = ["WIDTH", "analysis_report", "render"]

WIDTH = 200
"""Wide enough that no table cell is cut or wrapped; a terminal fits each line to its width."""
SHOWN_PER_PATTERN = 3
SHOWN_FLOWS = 20


def analysis_report(
    repo: Repository,
    target: str,
    *,
    workers: int | None = None,
    top: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Analyse ``target`` (incrementally) and report on it."""
    summary = repo.analyze(target, workers=workers, progress=progress)
    project = repo.project(summary["target"])
    report = project_report(project, summary, top=top)
    report["text"] = render(report)
    return report


def project_report(project: Project, summary: dict[str, Any], *, top: int = 10) -> dict[str, Any]:
    kinds: dict[str, int] = {}
    for node in project.nodes.values():
        kinds[node["kind"]] = kinds.get(node["kind"], 0) + 1
    graph = project.module_graph
    calls = project.call_graph
    return {
        "analysis": summary,
        "nodes": kinds,
        "pattern_counts": project.pattern_counts(),
        "patterns": project.patterns,
        "supervision_trees": project.supervision_trees,
        "message_flows": project.flows,
        "hot_spots": [
            {k: n[k] for k in ("id", "path", "line", "cyclomatic", "cognitive", "nesting", "lines")}
            | {"name": f"{n['module']}.{n['qualname']}"}
            for n in project.hot_spots(top)
        ],
        "module_graph": graph,
        "call_graph": {
            "edges": sum(len(v) for v in calls.values()),
            "callers": len(calls),
            "calls": calls,  # caller node id -> [[callee node id, line], ...]
        },
        "errors": summary["errors"],
    }


def render(report: dict[str, Any]) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.tree import Tree

    out = io.StringIO()
    console = Console(
        file=out,
        width=WIDTH,
        color_system=None,
        force_terminal=False,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=True,
    )
    summary = report["analysis"]
    root = summary["root"]

    def where(path: str, line: int) -> str:
        return f"{_relative(path, root)}:{line}"

    nodes = report["nodes"]
    console.print(
        f"Analysed {_relative(summary['target'], os.getcwd())}: {summary['files']} files "
        f"({summary['parsed']} parsed, {summary['unchanged']} unchanged, "
        f"{summary['removed']} removed), {len(summary['errors'])} with errors"
    )
    console.print(
        f"Nodes: {nodes.get('module', 0)} modules, {nodes.get('class', 0)} classes, "
        f"{nodes.get('function', 0)} functions, {nodes.get('method', 0)} methods; "
        f"call graph: {report['call_graph']['edges']} resolved calls"
    )

    console.print()
    patterns = Table(title="Patterns", box=box.SIMPLE, title_justify="left", expand=False)
    patterns.add_column("pattern", no_wrap=True)
    patterns.add_column("count", justify="right", no_wrap=True)
    patterns.add_column("where (first ones)", no_wrap=True)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for p in report["patterns"]:
        by_kind.setdefault(p["kind"], []).append(p)
    for kind in PATTERN_KINDS:
        found = by_kind.get(kind)
        if not found:
            continue
        shown = [f"{where(p['path'], p['line'])} {_label(p)}" for p in found[:SHOWN_PER_PATTERN]]
        if len(found) > SHOWN_PER_PATTERN:
            shown.append(f"... {len(found) - SHOWN_PER_PATTERN} more")
        patterns.add_row(kind, str(len(found)), "\n".join(shown))
    if report["patterns"]:
        console.print(patterns)
    else:
        console.print("Patterns: none found")

    trees = report["supervision_trees"]
    console.print(
        "Supervision trees (from source)" if trees else "Supervision trees: none in source"
    )
    for spec in trees:
        started = f", started as {spec['started_at']!r}" if spec.get("started_at") else ""
        tree = Tree(
            f"{spec['name']} ({_strategy(spec)}) {where(spec['path'], spec['line'])}{started}"
        )
        _grow(tree, spec)
        console.print(tree)
    console.print()

    flows = [f for f in report["message_flows"] if f["receivers"]]
    loose = len(report["message_flows"]) - len(flows)
    console.print(
        f"Message flows: {len(flows)} linked to the clauses that receive them"
        + (f", {loose} not linked (untagged or no matching clause)" if loose else "")
    )
    if flows:
        table = Table(box=box.SIMPLE, expand=False)
        for column in ("sent from", "op", "tag", "received by"):
            table.add_column(column, no_wrap=True)
        for flow in flows[:SHOWN_FLOWS]:
            receivers = "\n".join(
                f"{_short(r['handler'])} {where(r['path'], r['line'])}" for r in flow["receivers"]
            )
            table.add_row(
                f"{_short(flow['from'])} {where(flow['path'], flow['line'])}",
                flow["op"],
                repr(flow["tag"]),
                receivers,
            )
        console.print(table)
        if len(flows) > SHOWN_FLOWS:
            console.print(f"... {len(flows) - SHOWN_FLOWS} more (--json lists them all)")

    spots = report["hot_spots"]
    if spots:
        table = Table(title="Hot spots by complexity", box=box.SIMPLE, title_justify="left")
        table.add_column("function", no_wrap=True)
        table.add_column("where", no_wrap=True)
        for column in ("cyclomatic", "cognitive", "nesting", "lines"):
            table.add_column(column, justify="right", no_wrap=True)
        for spot in spots:
            table.add_row(
                _short(spot["name"]),
                where(spot["path"], spot["line"]),
                *(str(spot[k]) for k in ("cyclomatic", "cognitive", "nesting", "lines")),
            )
        console.print(table)

    graph = report["module_graph"]
    edges = sum(len(v) for v in graph["internal"].values())
    outside = ", ".join(f"{name} ({n})" for name, n in list(graph["external"].items())[:8])
    console.print(
        f"Module dependencies: {edges} between the analysed modules; outside: {outside or 'none'}"
    )
    if report["errors"]:
        console.print()
        console.print(f"Not analysed ({len(report['errors'])}):")
        for error in report["errors"]:
            console.print(f"  {_relative(error['path'], root)}: {error['error']}")
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines()) + "\n"


def _grow(branch: Any, spec: dict[str, Any]) -> None:
    for child in spec["children"]:
        start = child["start"] or "?"
        kind = f" [{child['kind']}]" if child["kind"] else ""
        label = f"{child['id']}: {_short(start)}{kind}"
        if child.get("strategy"):
            label += f" ({_strategy(child)})"
        if child.get("restart") not in (None, "permanent"):
            label += f" restart={child['restart']}"
        sub = branch.add(label)
        if child.get("children") or child.get("more"):
            _grow(sub, child)
    if spec.get("more"):
        branch.add("... children made at run time")


def _strategy(spec: dict[str, Any]) -> str:
    return "strategy chosen at run time" if spec["strategy"] == "?" else spec["strategy"]


def _label(p: dict[str, Any]) -> str:
    kind = p["kind"]
    name = _short(p["name"])
    if kind in ("route", "websocket") and p.get("route") is not None:
        methods = ",".join(p.get("methods") or [])
        return (
            f"{methods + ' ' if methods else ''}{p['route']} -> {_short(p.get('handler') or name)}"
        )
    if kind == "sqlalchemy_model" and p.get("table"):
        return f"{name} (table {p['table']})"
    if kind in ("registry", "pubsub") and (p.get("key") or p.get("topic")):
        role = p.get("op") or p.get("role")
        return f"{role} {p.get('key') or p.get('topic')!r} in {name}"
    return name


def _short(name: str) -> str:
    """The last two parts of a dotted name: enough to recognise, short enough to read."""
    parts = name.split(".")
    return ".".join(parts[-2:])


def _relative(path: str, root: str) -> str:
    if path == root and not os.path.isdir(root):
        return os.path.basename(path)
    base = root if os.path.isdir(root) else os.path.dirname(root)
    try:
        rel = os.path.relpath(path, base)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel
