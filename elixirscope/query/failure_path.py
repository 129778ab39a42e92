"""The recorded path to a failure: a call tree trimmed to the branch that raised.

A failing test's correlation chain can hold hundreds of calls; what a reader
wants first is the one branch the exception came up through, with the
arguments and return values on the way. ``failure_report`` keeps, from the
last top-level call that raised the test's exception, at each level the last
child that raised, down to where it was raised; every other call is counted,
not shown, and the command that shows them all is named. When no recorded call
raised it (an ``assert`` in the test on a value the code returned), the test's
last top-level calls are shown instead, their return values being what the
assertion looked at.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

__all__ = ["failure_branch", "failure_report"]

LAST_CALLS = 5


def _count(nodes: list[Any]) -> int:
    return sum(1 + _count(n.children) for n in nodes)


def _raised_branch(node: Any) -> Any:
    raised = [c for c in node.children if c.status == "raised"]
    return replace(node, children=[_raised_branch(raised[-1])] if raised else [], events=[])


def _same_error(node: Any, exc_type: str | None) -> bool:
    if exc_type is None or node.error is None:
        return True
    recorded = node.error[0]
    return recorded == exc_type or recorded.rsplit(".", 1)[-1] == exc_type.rsplit(".", 1)[-1]


def failure_branch(
    roots: list[Any], exc_type: str | None = None, last_calls: int = LAST_CALLS
) -> tuple[list[Any], bool]:
    """The trimmed roots, and whether they are the branch that raised ``exc_type``
    (False: no recorded call raised it; then the last ``last_calls`` roots, untrimmed
    below their first level)."""
    raised = [r for r in roots if r.status == "raised" and _same_error(r, exc_type)]
    if raised:
        return [_raised_branch(raised[-1])], True
    return [replace(r, children=[], events=[]) for r in roots[-last_calls:]], False


def failure_report(
    data_dir: str, correlation: str, *, exc_type: str | None = None, command: str | None = None
) -> dict[str, Any]:
    """What to print under a failing test: the trimmed tree as data and as text.

    ``command`` is how the reader sees the whole chain (default: ``elixirscope
    calltree --data-dir DATA_DIR ID``)."""
    from elixirscope.query.calltree import render_call_tree

    roots = _roots(data_dir, correlation)
    command = command or f"elixirscope calltree --data-dir {data_dir} {correlation[:12]}"
    if not roots:
        return {
            "correlation": correlation,
            "calls": [],
            "raised": False,
            "omitted": 0,
            "text": "nothing was recorded while this test ran: no function selected by "
            "--elixirscope-trace was called",
        }
    kept, raised = failure_branch(roots, exc_type)
    omitted = _count(roots) - _count(kept)
    head = (
        "the branch that raised, as recorded:"
        if raised
        else f"no recorded call raised {exc_type or 'it'}; the test's last calls, as recorded:"
    )
    lines = [head, render_call_tree(kept)]
    if omitted:
        lines.append(f"({omitted} other call{'s' if omitted != 1 else ''} of this test not shown)")
    lines.append(f"all of it: {command}")
    return {
        "correlation": correlation,
        "calls": [n.to_dict() for n in kept],
        "raised": raised,
        "omitted": omitted,
        "text": "\n".join(lines),
    }


def _roots(data_dir: str, correlation: str) -> list[Any]:
    from pathlib import Path

    from elixirscope.query.reading import call_tree

    if not (Path(data_dir).expanduser() / "events").is_dir():
        return []
    return call_tree(data_dir, correlation)
