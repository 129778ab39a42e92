"""OTP's defaults for supervisors and children, in one place.

``SupervisorSpec``, ``ChildSpec``, the configuration schema and the tree read
them from here: a module of plain data, so that loading the configuration (which
every command does) does not build the spec classes of :mod:`.specs`.
"""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = ["DEFAULTS", "Restart", "Shutdown"]

Restart = Literal["permanent", "transient", "temporary"]
Shutdown = int | Literal["brutal_kill", "infinity"]


class _Defaults(TypedDict):
    max_restarts: int
    max_seconds: float
    restart: Restart
    worker_shutdown_ms: int
    supervisor_shutdown: Shutdown


DEFAULTS: _Defaults = {
    "max_restarts": 3,
    "max_seconds": 5.0,
    "restart": "permanent",
    "worker_shutdown_ms": 5000,
    "supervisor_shutdown": "infinity",
}
