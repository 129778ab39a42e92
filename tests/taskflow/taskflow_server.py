"""TaskFlow served for the scenario tests: real subprocesses on free loopback ports.

``TaskFlowServer.start(where, recorded=True)`` runs ``python -m elixirscope run
--data-dir ... -m elixirscope.examples.taskflow serve --port 0`` (the real
recording) or, with ``recorded=False``, the same app under plain ``python``
(what it answers without ElixirScope). A test drives it over HTTP with
``client`` and reads its own request back with ``recorded(response)``: the
events of the response's ``X-Correlation-ID`` chain, once its request's end is
in the store (``wait_until``: a hang guard, never a time limit).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from waiting import wait_until

from elixirscope.query import events

ROOT = Path(__file__).resolve().parents[2]
TRACE = "elixirscope.examples.taskflow.*"
START_WAIT_S = 60.0  # a hang guard for a busy machine, not an assertion
STOP_WAIT_S = 30.0


def _python(*argv: str) -> list[str]:
    return [sys.executable, *argv]


class Served:
    """A subprocess that printed its URL as its first stdout line."""

    def __init__(self, argv: list[str], cwd: Path, log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            stdin=subprocess.DEVNULL,
            text=True,
            # the suite asserts no event is dropped: at exit, a writer starved by a busy
            # machine gets longer than the default 2 s without progress
            env={**os.environ, "PYTHONUNBUFFERED": "1", "ELIXIRSCOPE_CAPTURE__EXIT_TIMEOUT_S": "60"},
        )
        self.argv = argv
        self._url: str | None = None

    @property
    def url(self) -> str:
        """Its URL, once it printed it (so several can start at once)."""
        if self._url is None:
            assert self.process.stdout is not None
            self._url = self.process.stdout.readline().strip()
            if not self._url.startswith("http://"):
                self.process.kill()
                self.process.wait()
                raise AssertionError(
                    f"{self.argv} did not start: {self._url!r}\n{self.log.read_text()}"
                )
        return self._url

    def stop(self) -> int:
        """SIGINT (uvicorn's graceful stop), then a kill if it lingers; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()
        return self.process.returncode


def start_mail(where: Path) -> Served:
    return Served(
        _python("-m", "elixirscope.examples.taskflow", "mail", "--port", "0"),
        where,
        where / "mail.log",
    )


class TaskFlowServer:
    """One TaskFlow server (recorded or plain) and an HTTP client for it."""

    def __init__(self, served: Served, data_dir: Path | None, database: str) -> None:
        self.served = served
        self.data_dir = data_dir
        self.database = database
        self._client: httpx.Client | None = None

    @property
    def url(self) -> str:
        return self.served.url

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            # a fresh connection each request: a kept-alive one may be closed by the
            # server (its keep-alive timeout) just as the next request is sent
            no_reuse = httpx.Limits(max_keepalive_connections=0)
            self._client = httpx.Client(base_url=self.url, timeout=60.0, limits=no_reuse)
        return self._client

    @classmethod
    def start(
        cls, where: Path, *, recorded: bool, mail_url: str | None, database: str | None = None
    ) -> TaskFlowServer:
        where.mkdir(parents=True, exist_ok=True)
        database = database or f"sqlite:///{where / 'taskflow.db'}"
        serve = ["-m", "elixirscope.examples.taskflow", "serve", "--port", "0"]
        serve += ["--database", database] + (["--mail-url", mail_url] if mail_url else [])
        data_dir = where / "data" if recorded else None
        if recorded:
            argv = _python(
                "-m", "elixirscope", "run", "--data-dir", str(data_dir),
                "--trace", TRACE, "--level", "args", *serve,
            )  # fmt: skip
        else:
            argv = _python(*serve)
        return cls(Served(argv, where, where / "server.log"), data_dir, database)  # starting

    def stop(self) -> int:
        if self._client is not None:
            self._client.close()
        return self.served.stop()

    # ------------------------------------------------------------- reading back

    def recorded(self, response: httpx.Response | str) -> Chain:
        """The recorded events of a response's chain, once its request has ended."""
        assert self.data_dir is not None, "a plain server records nothing"
        cid = response if isinstance(response, str) else response.headers["x-correlation-id"]

        def ended() -> list[dict[str, Any]] | None:
            found = [e.to_dict() for e in events(self.data_dir, correlation_id=cid, limit=None)]
            return found if any(e["type"] == "reqend" for e in found) else None

        return Chain(cid, wait_until(ended, timeout=START_WAIT_S))  # type: ignore[arg-type]

    def recorded_many(self, cids: list[str]) -> dict[str, Chain]:
        """Many chains read at once (one pass over the store, not one per chain)."""
        wanted = set(cids)

        def all_ended() -> list[dict[str, Any]] | None:
            ended = {e["correlation_id"] for e in self.all_events(type="reqend")}
            return self.all_events() if wanted <= ended else None

        found: dict[str, list[dict[str, Any]]] = {cid: [] for cid in wanted}
        for e in wait_until(all_ended, timeout=START_WAIT_S):  # type: ignore[union-attr]
            if e.get("correlation_id") in found:
                found[e["correlation_id"]].append(e)
        return {cid: Chain(cid, chain) for cid, chain in found.items()}

    def all_events(self, **filters: Any) -> list[dict[str, Any]]:
        assert self.data_dir is not None
        return [e.to_dict() for e in events(self.data_dir, limit=None, **filters)]


class Chain:
    """One correlation chain's events, oldest first, with the lookups the tests use."""

    def __init__(self, cid: str, found: list[dict[str, Any]]) -> None:
        self.cid = cid
        self.events = sorted(found, key=lambda e: e["ts"])

    def of(self, kind: str, **fields: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["type"] == kind and all(e.get(k) == v for k, v in fields.items())
        ]

    def calls(self, suffix: str) -> list[dict[str, Any]]:
        return [e for e in self.of("call") if e["function"].endswith(suffix)]

    def one(self, kind: str, **fields: Any) -> dict[str, Any]:
        found = self.of(kind, **fields)
        assert len(found) == 1, (kind, fields, found)
        return found[0]

    @property
    def request(self) -> dict[str, Any]:
        return self.one("req")

    @property
    def end(self) -> dict[str, Any]:
        return self.one("reqend")

    def under(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        """The events nested (at any depth) under a recorded call."""
        inside = {call["id"]}
        found = []
        for e in self.events:
            if e.get("parent_id") in inside and e["id"] != call["id"]:
                found.append(e)
                if e["type"] == "call":
                    inside.add(e["id"])
        return found


def mail_mode(mail: Served, mode: str, times: int) -> None:
    """Tell the mock mail service to hang or fail for its next ``times`` messages."""
    response = httpx.post(f"{mail.url}/mode", json={"mode": mode, "times": times}, timeout=10)
    assert response.status_code == 200, response.text
