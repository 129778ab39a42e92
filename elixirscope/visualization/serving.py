"""The cinema served on a thread of a longer-lived process (the daemon's Visualization layer).

``elixirscope ui`` serves in its own main thread; an actor cannot, so
:class:`ThreadedCinema` runs uvicorn on a thread with its own event loop, bound
before it starts (the port is known, and taken, when :meth:`start` returns),
and stops it on :meth:`stop`. The same rules as the command's: loopback unless
``allow_remote``, a fresh random token each start.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import threading
import time
from typing import Any

__all__ = ["ThreadedCinema", "bind", "is_loopback", "url_of"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_of(host: str, port: int, token: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={token}"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one); OSError if it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)  # a client that reads the URL at once waits for the server
    except OSError:
        sock.close()
        raise
    return sock


class ThreadedCinema:
    """One cinema over ``data_dir`` at a time, on a thread; with ``daemon`` (the API
    endpoint of the daemon it runs in) it offers that daemon's actions; ``models``: the
    runs read so far (``views.Models``), kept across starts and read ahead by its owner."""

    def __init__(
        self, data_dir: str | os.PathLike[str], daemon: str | None = None, models: Any = None
    ) -> None:
        self.data_dir = data_dir
        self.daemon = daemon
        self.models = models
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.url: str | None = None
        self.host: str | None = None

    def status(self) -> dict[str, Any]:
        running = self._thread is not None and self._thread.is_alive()
        return {"running": running, "url": self.url if running else None, "host": self.host}

    def start(
        self, host: str = "127.0.0.1", port: int = 0, allow_remote: bool = False
    ) -> dict[str, Any]:
        """Serve (the URL, with its token); already serving: the same URL. ValueError for a
        host that is not loopback without ``allow_remote``, or a port it cannot bind."""
        if self.status()["running"]:
            return {**self.status(), "started": False}
        if not isinstance(host, str) or not host:
            raise ValueError(f"`host` must be an address, got {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"`port` must be 0 to 65535, got {port!r}")
        if not is_loopback(host) and not allow_remote:
            raise ValueError(
                f"`host` {host} is not a loopback address: anyone who can reach it with the URL"
                " reads every recording; pass allow_remote to serve it anyway"
            )
        try:
            import uvicorn

            from elixirscope.visualization.server import create_app
        except ImportError as exc:
            raise ValueError(
                f"the cinema needs {exc.name}, not installed here: pip install 'elixirscope[ui]'"
            ) from None
        try:
            sock = bind(host, port)
        except OSError as exc:
            raise ValueError(f"cannot serve on {host}:{port}: {exc.strerror}") from None
        token = secrets.token_urlsafe(24)
        config = uvicorn.Config(
            create_app(self.data_dir, token, daemon=self.daemon, models=self.models),
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="cinema", daemon=True
        )
        thread.start()
        self._server, self._thread, self._sock = server, thread, sock
        self.host = host
        self.url = url_of(host, sock.getsockname()[1], token)
        return {**self.status(), "started": True}

    def stop(self, wait_s: float = 5.0) -> bool:
        """Stop serving; True if it was serving."""
        if self._server is None:
            return False
        self._server.should_exit = True
        if self._thread is not None:
            deadline = time.monotonic() + wait_s
            while self._thread.is_alive() and time.monotonic() < deadline:
                self._thread.join(0.05)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None
        self.url = None
        return True
