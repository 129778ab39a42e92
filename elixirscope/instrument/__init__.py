"""Instrumentation: plans, the AST rewriter, the import hook, and live trace/untrace.

- :class:`Plan` says which functions are instrumented, at which level, sampled how often;
- :func:`rewrite_module` / :func:`rewrite_source` wrap the chosen functions in calls to
  the capture hooks (the shapes in ``hooks_api.md``) without changing behaviour;
- :func:`install` / :func:`uninstall` rewrite modules as they are imported, and
  :func:`run_path` / :func:`run_module` run a main program instrumented;
- :func:`trace` / :func:`untrace` / :func:`traced` instrument already-loaded code and
  restore it, while the program runs.
"""

from __future__ import annotations

from .hook import ImportHookHandle, install, installed, run_module, run_path, uninstall
from .live import trace, traced, untrace
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
