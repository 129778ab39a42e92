"""StateTracing: structured actor and object state, deltas, replay and "why".

The home of the StateTracing layer's logic (seed 000 §2.4): state captured as
bounded structure, stored as deltas with keyframes, reconstructed at any
moment. Its actors live in ``elixirscope.actors`` and its tree in
``elixirscope.supervisors``; nothing here needs an actor system.

The reads, from Python (``elixirscope.state.api``): ``state``, ``history``,
``diff``, ``why``, ``replay``, ``recording``.
"""

from typing import Any

_API = ("diff", "history", "recording", "replay", "state", "why")
__all__ = list(_API)


def __getattr__(name: str) -> Any:
    """The API functions, imported on first use (recording imports this package)."""
    if name in _API:
        from elixirscope.state import api

        return getattr(api, name)
    raise AttributeError(f"module 'elixirscope.state' has no attribute {name!r}")
