"""Endpoint strings: parse and validate them, bind and connect with clear errors.

Two forms are accepted, and nothing else:

* ``tcp://HOST:PORT`` - ``PORT`` is 1-65535, or ``0`` / ``*`` for "pick a free
  port" (bind only); ``HOST`` defaults to ``127.0.0.1`` when left empty
  (``tcp://:5555``), ``*`` means every interface (bind only), and an IPv6
  address goes in brackets (``tcp://[::1]:5555``).
* ``ipc://PATH`` - a Unix socket path of at most 107 bytes, or ``@name`` for
  Linux's abstract namespace.

Why validate here rather than let ZeroMQ complain: ZeroMQ's errors name an errno,
not the mistake ("No such device"), and for ``ipc://`` it does not complain at
all - binding a path another process is serving silently steals it. :func:`bind`
probes such a path first and raises :class:`EndpointInUse` instead.
"""

from __future__ import annotations

import errno
import os
import random as _random
import socket as _socket
import stat
from dataclasses import dataclass
from typing import Literal

import zmq

from . import security
from .connections import limit_handshake
from .exceptions import EndpointError, EndpointInUse
from .exposure import check_bind_host

__all__ = ["ACCEPTED_FORMS", "Endpoint", "bind", "connect", "free_tcp_port", "parse_endpoint"]

ACCEPTED_FORMS = (
    "tcp://HOST:PORT (PORT 1-65535, or 0 or * to pick a free port; "
    "HOST defaults to 127.0.0.1) or ipc://PATH"
)
LOOPBACK = "127.0.0.1"
IPC_PATH_MAX = getattr(zmq, "IPC_PATH_MAX_LEN", 107) or 107


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A validated endpoint; ``port is None`` means "any free port"."""

    transport: Literal["tcp", "ipc"]
    host: str = ""
    port: int | None = None
    path: str = ""

    def __str__(self) -> str:
        if self.transport == "ipc":
            return f"ipc://{self.path}"
        return f"tcp://{self.host}:{'*' if self.port is None else self.port}"

    @property
    def is_ipv6(self) -> bool:
        return self.host.startswith("[")

    def connect_address(self) -> str:
        """The address to connect to; only concrete endpoints can be connected to."""
        if self.transport == "tcp" and (self.port is None or self.host == "*"):
            raise EndpointError(
                f"Cannot connect to {self}: a port of 0 or * and a host of * only make "
                "sense for bind; connect to the endpoint the server actually bound "
                "(its .endpoint attribute), e.g. tcp://127.0.0.1:5555",
                str(self),
            )
        return str(self)


def _invalid(text: object, why: str) -> EndpointError:
    return EndpointError(f"Invalid endpoint {text!r}: {why}; expected {ACCEPTED_FORMS}", str(text))


def parse_endpoint(text: str | Endpoint) -> Endpoint:
    """Validate an endpoint string; raises :class:`EndpointError` naming the problem."""
    if isinstance(text, Endpoint):
        return text
    if not isinstance(text, str):
        raise _invalid(text, f"expected `str`, got `{type(text).__name__}`")
    if text.startswith("tcp://"):
        return _parse_tcp(text, text[len("tcp://") :])
    if text.startswith("ipc://"):
        return _parse_ipc(text, text[len("ipc://") :])
    scheme = text.partition("://")[0] if "://" in text else None
    why = f"unsupported transport {scheme!r}" if scheme else "no tcp:// or ipc:// prefix"
    raise _invalid(text, why)


def _parse_tcp(text: str, rest: str) -> Endpoint:
    host, sep, port_text = rest.rpartition(":")
    if not sep:
        raise _invalid(text, "missing :PORT")
    host = host or LOOPBACK
    if any(ch.isspace() or ch in "/?#@" for ch in host) or (
        ":" in host and not (host.startswith("[") and host.endswith("]"))
    ):
        raise _invalid(text, f"bad host {host!r} (put IPv6 addresses in brackets)")
    if port_text in ("*", "0"):
        return Endpoint("tcp", host=host, port=None)
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise _invalid(text, f"port must be 1-65535, 0 or *, got {port_text!r}")
    return Endpoint("tcp", host=host, port=int(port_text))


def _parse_ipc(text: str, path: str) -> Endpoint:
    if not path or path == "*":
        raise _invalid(text, "missing PATH")
    if "\0" in path:
        raise _invalid(text, "PATH contains a NUL byte")
    if len(os.fsencode(path)) > IPC_PATH_MAX:
        raise _invalid(text, f"PATH is longer than {IPC_PATH_MAX} bytes (a Unix socket limit)")
    return Endpoint("ipc", path=path)


# ------------------------------------------------------------- bind / connect


def bind(socket: zmq.Socket, endpoint: str | Endpoint) -> str:
    """Bind ``socket`` and return the endpoint it actually bound (``LAST_ENDPOINT``).

    When this process serves with keys (:func:`security.serve_with`), the socket
    is a CURVE server that admits only the node's authorized clients; a
    connection that does not complete its handshake within the process's
    handshake timeout is dropped (see :mod:`.connections`).
    Raises :class:`EndpointInUse` when the address is taken (for ``ipc://``, when
    a live process answers on the path), :class:`EndpointError` for any other
    address the caller must change - including a host other than loopback
    while ``network.allow_remote`` is off (see :mod:`.exposure`).
    """
    ep = parse_endpoint(endpoint)
    if ep.transport == "ipc":
        _refuse_live_ipc_path(ep)
    else:
        check_bind_host(ep.host, str(ep))
    if ep.is_ipv6:
        socket.setsockopt(zmq.IPV6, 1)
    address = str(ep) if ep.transport == "ipc" else f"tcp://{ep.host}:{ep.port or '*'}"
    security.secure_server(socket)
    limit_handshake(socket)
    try:
        socket.bind(address)
    except zmq.ZMQError as exc:
        raise _bind_error(ep, exc) from None
    return socket.getsockopt_string(zmq.LAST_ENDPOINT)


def connect(socket: zmq.Socket, endpoint: str | Endpoint, keys: security.Keys | None = None) -> str:
    """Connect ``socket``; ZeroMQ connects lazily, so this never waits for a peer.

    With ``keys`` (or the process's, :func:`security.use_keys`) the socket is a
    CURVE client of the node those keys belong to.
    """
    ep = parse_endpoint(endpoint)
    address = ep.connect_address()
    if ep.is_ipv6:
        socket.setsockopt(zmq.IPV6, 1)
    security.secure_client(socket, keys)
    try:
        socket.connect(address)
    except zmq.ZMQError as exc:
        raise EndpointError(f"Cannot connect to {address}: {exc.strerror}", address) from None
    return address


def _bind_error(ep: Endpoint, exc: zmq.ZMQError) -> EndpointError:
    if exc.errno == errno.EADDRINUSE:
        return EndpointInUse(str(ep))
    if exc.errno in (errno.ENODEV, errno.EADDRNOTAVAIL):
        return EndpointError(
            f"Cannot bind {ep}: {ep.host!r} is not an address or interface of this "
            "machine; bind to 127.0.0.1, a local IP address, or * for all interfaces",
            str(ep),
        )
    if exc.errno == errno.ENOENT:
        return EndpointError(
            f"Cannot bind {ep}: directory {os.path.dirname(ep.path) or '.'!r} does not "
            "exist; create it first or choose another path",
            str(ep),
        )
    return EndpointError(f"Cannot bind {ep}: {exc.strerror}", str(ep))


def _refuse_live_ipc_path(ep: Endpoint) -> None:
    """ZeroMQ unlinks an existing ipc path on bind; refuse if someone is serving it."""
    if ep.path.startswith("@"):
        return  # abstract namespace: the kernel itself reports EADDRINUSE
    try:
        mode = os.stat(ep.path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise EndpointError(
            f"Cannot bind {ep}: {ep.path!r} exists and is not a socket; binding would "
            "delete it - choose another path",
            str(ep),
        )
    probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(ep.path)
    except OSError:
        return  # a stale file left by a process that died: safe to replace
    finally:
        probe.close()
    raise EndpointInUse(str(ep))


def refuses(endpoint: str | Endpoint) -> bool:
    """Whether a TCP endpoint's port refuses a connection at once (nothing listens: a
    daemon that stopped), told apart from one that is busy or slow to answer, which a
    request waits its timeout for; False for what is not a TCP endpoint or cannot be
    read (the request itself will say)."""
    try:
        where = parse_endpoint(endpoint)
    except EndpointError:
        return False
    if where.transport != "tcp" or where.port is None or where.host in ("*", ""):
        return False
    try:
        with _socket.create_connection((where.host.strip("[]"), where.port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False  # unreachable, or slow to answer


def free_tcp_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free a moment ago, for tests and daemons.

    Chosen below the kernel's ephemeral range (``ip_local_port_range``), so no
    socket that lets the kernel pick its port — an outgoing connection, an
    actor's listener — can take it between this call and the bind. Still racy
    against another program choosing ports the same way (within one process, a
    port is not returned again while it is among the last 512 returned); when you can, bind to
    ``tcp://HOST:0`` and read the actual endpoint back instead.
    """
    low, high = _non_ephemeral_range()
    for _ in range(200):
        port = _random.randrange(low, high)
        if port in _handed_out:
            continue
        with _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
        return _hand_out(port)
    with _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return _hand_out(probe.getsockname()[1])


_handed_out: dict[int, None] = {}  # the last ports returned, oldest first
_HANDED_OUT_KEPT = 512


def _hand_out(port: int) -> int:
    """Note ``port`` as returned: a node picks several ports before it binds any, and two
    picks of one process must not name the same still-unbound port."""
    _handed_out[port] = None
    while len(_handed_out) > _HANDED_OUT_KEPT:
        del _handed_out[next(iter(_handed_out))]
    return port


def _non_ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            ephemeral_low = int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    return (max(1024, ephemeral_low - 12000), max(1025, ephemeral_low))
