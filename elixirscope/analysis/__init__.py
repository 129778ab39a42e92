"""CodeAnalysis: the AST repository, patterns found in source, and the planner.

The home of the CodeAnalysis layer's logic (seed 003): every module, class and
function with a stable node id (:mod:`.node_ids`), its span and complexity
(:mod:`.complexity`), the facts each file states (:mod:`.facts`), what they say
together — patterns, message flows, supervision trees, call and module graphs
(:mod:`.project`) — kept under the data dir and linked to what ran
(:mod:`.repository`), reported by ``elixirscope analyze`` (:mod:`.report`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from elixirscope.analysis.repository import LineIndex, Repository, open_repository
    from elixirscope.analysis.sources import AnalysisError

__all__ = ["AnalysisError", "LineIndex", "Repository", "open_repository"]

_HOMES = {
    "AnalysisError": "sources",
    "LineIndex": "repository",
    "Repository": "repository",
    "open_repository": "repository",
}


def __getattr__(name: str) -> Any:
    """Names load on first use: the workers import only what parsing needs."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'elixirscope.analysis' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"elixirscope.analysis.{home}"), name)
