"""Which hosts a socket may bind to: loopback, unless the configuration allows more.

Every endpoint of a node (API, events, ingest, control, forward) defaults to
``127.0.0.1``. Binding one to another interface - ``*``, ``0.0.0.0``, a LAN
address - exposes it to other machines, so it is refused with an error naming
the setting that allows it, ``network.allow_remote``. A node started with that
setting calls :func:`allow_remote_binds` (its actor processes inherit it by
fork), and each such bind is then logged as a warning.
"""

from __future__ import annotations

import ipaddress
import logging

from .exceptions import EndpointError

__all__ = [
    "ALLOW_REMOTE_KEY",
    "allow_remote_binds",
    "check_bind_host",
    "is_loopback",
    "remote_binds_allowed",
]

ALLOW_REMOTE_KEY = "network.allow_remote"

log = logging.getLogger("elixirscope.transport.exposure")

_allowed = False


def allow_remote_binds(allowed: bool) -> None:
    """Set by the node from ``network.allow_remote``; inherited by processes forked later."""
    global _allowed
    _allowed = bool(allowed)


def remote_binds_allowed() -> bool:
    return _allowed


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (``127.0.0.0/8``, ``[::1]``)."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # '*', an interface name or a host name: not known to be loopback


def check_bind_host(host: str, endpoint: str) -> None:
    """Raise :class:`EndpointError` for a non-loopback bind unless remote binds are allowed."""
    if is_loopback(host):
        return
    if not _allowed:
        raise EndpointError(
            f"Refusing to bind {endpoint}: {host!r} is not a loopback address, so other machines "
            f"could connect. Set {ALLOW_REMOTE_KEY} = true to allow it, or bind to 127.0.0.1",
            endpoint,
        )
    log.warning(
        "binding %s: reachable from other machines (allowed by %s)", endpoint, ALLOW_REMOTE_KEY
    )
