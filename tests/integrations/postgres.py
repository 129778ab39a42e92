"""A real, throwaway PostgreSQL server for the tests: never a mock.

:meth:`PostgresServer.start` runs ``initdb`` into a new directory under the
system temp dir, then ``postgres`` on a free loopback port with its unix
socket in that directory. PostgreSQL refuses to run as root, so as root
(``.ci/run`` on a fresh machine) both run as the unprivileged user ``nobody``,
which then owns the directory. :meth:`stop` stops the server by the pid it
started (a fast shutdown, then a kill if it lingers) and removes the directory.
When PostgreSQL is not installed or cannot start, :func:`server_or_skip`
skips the test with the reason (``.ci/run`` installs Debian's ``postgresql``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PostgresServer", "PostgresUnavailable", "postgres", "server_or_skip"]

START_WAIT_S = 60.0  # how long a busy machine may take to start it (not an assertion)


class PostgresUnavailable(Exception):
    """Why no server could be started."""


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise PostgresUnavailable(
            f"PostgreSQL's {name} is not installed (Debian: apt-get install postgresql)"
        )
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One running server: ``port``, ``socket_dir``, ``dsn`` (user postgres, trust auth)."""

    def __init__(self, root: Path, port: int, process: subprocess.Popen, log: Path) -> None:
        self.root = root
        self.port = port
        self.process = process
        self.log = log
        self.socket_dir = root

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls) -> PostgresServer:
        initdb, postgres_bin = _bin("initdb"), _bin("postgres")
        user: dict = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            user = {"user": nobody.pw_uid, "group": nobody.pw_gid}
        root = Path(tempfile.mkdtemp(prefix="elixirscope-pg-"))
        try:
            if user:
                os.chown(root, user["user"], user["group"])
            data = root / "data"
            done = subprocess.run(
                [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                 "--no-sync"],
                capture_output=True, text=True, cwd=root, timeout=START_WAIT_S, **user,
            )
            if done.returncode != 0:
                raise PostgresUnavailable(f"initdb failed: {done.stderr.strip()[-500:]}")
            port = _free_port()
            log = root / "server.log"
            with open(log, "w") as out:
                if user:
                    os.chown(log, user["user"], user["group"])
                process = subprocess.Popen(
                    [postgres_bin, "-D", str(data), "-p", str(port), "-k", str(root),
                     "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                     "-c", "max_connections=20", "-c", "shared_buffers=16MB"],
                    stdout=out, stderr=subprocess.STDOUT, cwd=root, **user,
                )
            server = cls(root, port, process, log)
            server._wait_ready()
            return server
        except BaseException:
            if "server" in locals():
                server.stop()
            else:
                shutil.rmtree(root, ignore_errors=True)
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_WAIT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PostgresUnavailable(
                    f"postgres exited with {self.process.returncode}: "
                    f"{self.log.read_text().strip()[-500:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                import psycopg

                with psycopg.connect(self.dsn, connect_timeout=5):
                    return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.1)
        self.stop()
        raise PostgresUnavailable(f"postgres did not accept connections within {START_WAIT_S} s")

    def stop(self) -> None:
        """Stop it (by the pid started here) and remove its directory."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def server_or_skip() -> PostgresServer:
    try:
        return PostgresServer.start()
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server for this test: {exc}")
    except OSError as exc:
        pytest.skip(f"no PostgreSQL server for this test: {type(exc).__name__}: {exc}")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A server shared by a module's tests."""
    server = server_or_skip()
    try:
        yield server
    finally:
        server.stop()
