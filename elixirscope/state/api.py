"""Time travel from Python: the same reads as ``elixirscope state|history|diff-state|why|replay``.

Each function reads one run of a data dir (default: the configured
``data_dir``; the latest run unless ``run`` names one by any prefix of its id)
and returns plain data (dicts, lists, scalars; see ``state.nodes.to_plain``),
raising ``QueryError`` with a message naming what is wrong::

    from elixirscope import state
    state.state("desk", before_crash=True)            # the state before the crash
    state.history("desk", "served")                   # every change of one field
    state.why("desk", "serving", before_crash=True)   # where its value came from
    stepper = state.replay("desk")                    # .next(), .prev(), .goto(i), .node
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["diff", "history", "recording", "replay", "state", "why"]

Where = str | os.PathLike[str] | None


def _where(data_dir: Where) -> str | os.PathLike[str]:
    if data_dir is not None:
        return data_dir
    from elixirscope.config import ConfigStore

    return os.path.expanduser(ConfigStore.load(env=dict(os.environ)).get("data_dir"))


def recording(data_dir: Where = None, run: str | None = None, all_runs: bool = False) -> Any:
    """The run's recorded states (``StateRecording``: targets, timelines, moments)."""
    from elixirscope.state.recorded import StateRecording

    return StateRecording(_where(data_dir), run, all_runs)


def state(
    target: str,
    *,
    field: str | None = None,
    data_dir: Where = None,
    run: str | None = None,
    **moment: Any,
) -> Any:
    """``target``'s state (or one ``field`` of it) at a moment: ``at`` (a time),
    ``event`` (an event id), ``change`` (1-based), ``before_crash``; default the latest."""
    from elixirscope.state.reports import state_report

    return state_report(_where(data_dir), target, field=field, run=run, **moment)["state"]


def history(
    target: str, field: str | None = None, *, data_dir: Where = None, run: str | None = None
) -> list[dict[str, Any]]:
    """Every change of ``target``'s state (or of ``field``): change, ts, callback, message, old, new."""
    from elixirscope.state.reports import history_report

    return history_report(_where(data_dir), target, field=field, run=run)["changes"]


def diff(
    target: str,
    a: str | int,
    b: str | int,
    *,
    field: str | None = None,
    data_dir: Where = None,
    run: str | None = None,
) -> list[dict[str, Any]]:
    """What differs between two moments (change numbers, ``event:ID``, times)."""
    from elixirscope.state.reports import diff_state_report

    return diff_state_report(_where(data_dir), target, str(a), str(b), field=field, run=run)[
        "differences"
    ]


def why(
    target: str, field: str, *, data_dir: Where = None, run: str | None = None, **moment: Any
) -> list[dict[str, Any]]:
    """The causal path of ``field``'s value, newest link first (see ``state.origin``)."""
    from elixirscope.state.reports import why_report

    return why_report(_where(data_dir), target, field, run=run, **moment)["steps"]


def replay(target: str, *, change: int = 1, data_dir: Where = None, run: str | None = None) -> Any:
    """A ``Stepper`` over ``target``'s changes, at ``change`` (1-based)."""
    from elixirscope.state.timeline import Stepper

    timeline = recording(data_dir, run).timeline(target)
    return Stepper(timeline, change - 1)
