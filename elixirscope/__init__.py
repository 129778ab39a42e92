"""ElixirScope: record what a Python program did, link it causally, replay it.

The runtime it is built on — GenServer, Supervisor, Registry — is
``elixirscope.runtime``; typed contracts are ``elixirscope.contracts``; the
ZeroMQ transport is ``elixirscope.transport``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "start", "stop"]

_app: Any = None


def start(
    config: str | Path | dict[str, Any] | None = None, *, environment: str | None = None
) -> Any:
    """Start ElixirScope's tree inside this process's lifetime; returns the Application.

    ``config`` is a TOML file, or a dict of dotted settings (``{"api.endpoint":
    "tcp://127.0.0.1:6000"}``) applied over the defaults. Actors run in their own
    processes; the host app is never made their parent of record beyond that.
    Calling start twice without stop raises RuntimeError.
    """
    global _app
    from elixirscope.supervisors.node import Application

    if _app is not None:
        raise RuntimeError(
            "elixirscope is already started in this process; call elixirscope.stop() first"
        )
    if isinstance(config, dict):
        app = Application(overrides=config, environment=environment)
    else:
        app = Application(user_file=config, environment=environment)
    _app = app.start()
    return _app


def stop(timeout: float = 30.0) -> None:
    """Stop the tree started by ``start`` (children in reverse order); a no-op if none."""
    global _app
    if _app is not None:
        app, _app = _app, None
        app.stop(timeout=timeout)
