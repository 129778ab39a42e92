"""Instrumentation: plans, the AST rewriter, the import hook, and live trace/untrace.

- :class:`Plan` says which functions are instrumented, at which level, sampled how often;
- :func:`rewrite_module` / :func:`rewrite_source` wrap the chosen functions in calls to
  the capture hooks (the shapes in ``hooks_api.md``) without changing behaviour;
- :func:`install` / :func:`uninstall` rewrite modules as they are imported, and
  :func:`run_path` / :func:`run_module` run a main program instrumented;
- :func:`trace` / :func:`untrace` / :func:`traced` instrument already-loaded code and
  restore it, while the program runs.

The live ones are imported on first use: ``elixirscope run`` needs only the hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .hook import ImportHookHandle, install, installed, run_module, run_path, uninstall
from .plan import LEVELS, Plan, PlanError, Rule
from .rewriter import Instrumented, rewrite_module, rewrite_source

__all__ = [
    "LEVELS",
    "ImportHookHandle",
    "Instrumented",
    "Plan",
    "PlanError",
    "Rule",
    "install",
    "installed",
    "rewrite_module",
    "rewrite_source",
    "run_module",
    "run_path",
    "trace",
    "traced",
    "uninstall",
    "untrace",
]

if TYPE_CHECKING:
    from .live import trace, traced, untrace

_LIVE = ("trace", "traced", "untrace")


def __getattr__(name: str) -> Any:
    if name in _LIVE:
        from . import live

        return getattr(live, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
