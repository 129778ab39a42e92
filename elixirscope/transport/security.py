"""CURVE authentication for every ZeroMQ socket the transport binds or connects.

A node (the daemon, or an embedded ``elixirscope.start()``) has one key set
under its keys dir (``<data_dir>/keys`` by default), made on its first start
with owner-only permissions: the server's CURVE key pair, and one client key
pair that every legitimate client (console, hosts, ``run --daemon``, the
node's own writers) uses. A server socket accepts a connection only after
ZeroMQ's ZAP handshake has checked that the client's public key is among the
node's authorized ones; anything else never reaches our code, so a stranger's
frame is never decoded, let alone acted upon.

Why process-wide keys rather than a parameter on every socket: every socket
goes through :func:`~elixirscope.transport.endpoints.bind` /
:func:`~elixirscope.transport.endpoints.connect`, so authentication holds for
sockets that exist today and those added later, without each call site
remembering it. A node calls :func:`serve_with` once (actor processes inherit it
by fork); a client calls :func:`use_keys` once, or passes ``keys`` to one client.
"""

from __future__ import annotations

import os
import stat
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
import zmq.utils.z85

from .exceptions import EndpointError

__all__ = [
    "KeyProblem",
    "Keys",
    "auth_stats",
    "client_keys",
    "ensure_keys",
    "keys_dir",
    "load_keys",
    "secure_client",
    "secure_server",
    "serve_with",
    "server_keys",
    "use_keys",
]

ZAP_DOMAIN = b"elixirscope"
_ZAP_ENDPOINT = "inproc://zeromq.zap.01"
_SERVER, _CLIENT, _AUTHORIZED = "server", "client", "authorized"


class KeyProblem(EndpointError):
    """A key that is missing, unreadable or not owner-only; the message says which and what to do."""


@dataclass(frozen=True)
class Keys:
    """One node's key set, as read from its keys dir (z85-encoded CURVE keys)."""

    directory: Path
    server_public: bytes
    client_public: bytes
    client_secret: bytes
    server_secret: bytes | None = None  # only a node serving has it
    authorized: frozenset[bytes] = frozenset()


def ensure_keys(directory: str | Path) -> Keys:
    """The node's keys under ``directory``, made now if absent (dir 0700, secrets 0600)."""
    directory = Path(directory).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    authorized = directory / _AUTHORIZED
    authorized.mkdir(exist_ok=True)
    os.chmod(authorized, 0o700)
    for name in (_SERVER, _CLIENT):
        if not (directory / f"{name}.key_secret").exists():
            public, secret = zmq.auth.create_certificates(str(directory), name)
            os.chmod(secret, 0o600)
            os.chmod(public, 0o600)
    client_public = directory / f"{_CLIENT}.key"
    if not (authorized / client_public.name).exists():
        (authorized / client_public.name).write_bytes(client_public.read_bytes())
        os.chmod(authorized / client_public.name, 0o600)
    return load_keys(directory, serving=True)


def load_keys(directory: str | Path, *, serving: bool = False) -> Keys:
    """Read a key set; KeyProblem names the missing or too-open file and how to fix it."""
    directory = Path(directory).expanduser()
    server_file = directory / (f"{_SERVER}.key_secret" if serving else f"{_SERVER}.key")
    client_file = directory / f"{_CLIENT}.key_secret"
    for path in (server_file, client_file):
        if not path.is_file():
            raise KeyProblem(
                f"no key at {path}: the daemon makes its keys under its data dir on first start "
                f"(<data_dir>/keys); point this client at them with --keys DIR, "
                f"security.keys_dir in the config, or ELIXIRSCOPE_SECURITY__KEYS_DIR",
                str(path),
            )
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyProblem(
                f"key file {path} is readable by others (mode {oct(mode & 0o777)}); "
                f"make it owner-only: chmod 600 {path}",
                str(path),
            )
    try:
        server_public, server_secret = zmq.auth.load_certificate(str(server_file))
        client_public, client_secret = zmq.auth.load_certificate(str(client_file))
    except (OSError, ValueError) as exc:
        raise KeyProblem(f"cannot read the keys in {directory}: {exc}", str(directory)) from None
    if client_secret is None:
        raise KeyProblem(
            f"{client_file} holds a public key only; expected the secret key too "
            f"(delete it and the daemon makes a new pair on its next start)",
            str(client_file),
        )
    authorized: frozenset[bytes] = frozenset()
    if serving:
        keys_in = directory / _AUTHORIZED
        authorized = frozenset(
            zmq.auth.load_certificate(str(p))[0] for p in sorted(keys_in.glob("*.key"))
        )
    return Keys(
        directory,
        server_public,
        client_public,
        client_secret,
        server_secret if serving else None,
        authorized,
    )


# -------------------------------------------------------------- process-wide keys

_lock = threading.Lock()
_server: Keys | None = None
_client: Keys | None = None


def serve_with(keys: Keys | None) -> None:
    """Make every socket this process binds from now on a CURVE server for ``keys``
    (and every socket it connects a client with them); None turns it off."""
    global _server, _client
    if keys is not None and keys.server_secret is None:
        raise ValueError("serve_with needs a serving key set: load_keys(dir, serving=True)")
    with _lock:
        _server = keys
        _client = keys


def use_keys(keys: Keys | None) -> None:
    """Make every socket this process connects a CURVE client with ``keys``; None: plain."""
    global _client
    with _lock:
        _client = keys


def server_keys() -> Keys | None:
    return _server


def client_keys() -> Keys | None:
    return _client


def secure_server(socket: zmq.Socket, keys: Keys | None = None) -> None:
    """Before bind: make ``socket`` a CURVE server that admits only authorized clients."""
    keys = keys or _server
    if keys is None:
        return
    _zap_handler(socket.context, keys.authorized)
    socket.zap_domain = ZAP_DOMAIN
    socket.curve_secretkey = keys.server_secret
    socket.curve_publickey = keys.server_public
    socket.curve_server = True


def secure_client(socket: zmq.Socket, keys: Keys | None = None) -> None:
    """Before connect: make ``socket`` a CURVE client of the node ``keys`` belong to."""
    keys = keys or _client
    if keys is None:
        return
    socket.curve_serverkey = keys.server_public
    socket.curve_publickey = keys.client_public
    socket.curve_secretkey = keys.client_secret


# ------------------------------------------------------------------- ZAP handler


@dataclass
class AuthStats:
    """Handshakes the ZAP handlers of this process decided (across contexts)."""

    accepted: int = 0
    refused: int = 0


_stats = AuthStats()
_handlers: weakref.WeakKeyDictionary[zmq.Context, _ZapHandler] = weakref.WeakKeyDictionary()


def auth_stats() -> dict[str, int]:
    return {"accepted": _stats.accepted, "refused": _stats.refused}


def _zap_handler(context: zmq.Context, authorized: frozenset[bytes]) -> None:
    with _lock:
        handler = _handlers.get(context)
        if handler is None or not handler.is_alive():
            handler = _ZapHandler(context, authorized)
            handler.start()
            handler.ready.wait(5.0)
            _handlers[context] = handler
        else:
            handler.authorized = authorized


class _ZapHandler(threading.Thread):
    """Answers ZeroMQ's ZAP requests for one context: CURVE clients whose key is authorized.

    It ends by itself when the context is terminated (its socket sees ETERM and
    closes), so a context's ``term()`` never waits on it.
    """

    def __init__(self, context: zmq.Context, authorized: frozenset[bytes]) -> None:
        super().__init__(name="elixirscope-zap", daemon=True)
        self.context = context
        self.authorized = authorized
        self.ready = threading.Event()

    def run(self) -> None:
        try:
            sock = self.context.socket(zmq.REP)
        except zmq.ZMQError:
            self.ready.set()
            return
        try:
            sock.linger = 0
            sock.bind(_ZAP_ENDPOINT)
            self.ready.set()
            while True:
                try:
                    request = sock.recv_multipart()
                except zmq.ContextTerminated:
                    return
                sock.send_multipart(self._answer(request))
        except zmq.ZMQError:
            return  # the context is going away (ETERM) or the endpoint is taken: nothing to serve
        finally:
            self.ready.set()
            sock.close(linger=0)

    def _answer(self, request: list[bytes]) -> list[bytes]:
        if len(request) < 6:
            _stats.refused += 1
            return [b"1.0", b"", b"400", b"malformed ZAP request", b"", b""]
        version, request_id, domain, _address, _identity, mechanism = request[:6]
        credentials = request[6:]
        if (
            mechanism == b"CURVE"
            and credentials
            and zmq.utils.z85.encode(credentials[0]) in self.authorized
        ):
            _stats.accepted += 1
            return [version, request_id, b"200", b"OK", b"elixirscope", b""]
        _stats.refused += 1
        return [version, request_id, b"400", b"client key not authorized", b"", b""]


def keys_dir(configured: str, data_dir: str | Path) -> Path:
    """The keys dir a node uses and its clients read: ``configured``, else ``<data_dir>/keys``."""
    return Path(configured).expanduser() if configured else Path(data_dir).expanduser() / "keys"
