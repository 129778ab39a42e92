"""Mail: the EmailClient TaskFlow sends with, and the local mock mail service it calls.

``EmailClient.send`` POSTs to the mail service over httpx with a short
timeout and tries up to ``ATTEMPTS`` times (a timeout or a 5xx is tried
again, after ``BACKOFF_S``); each attempt is an ``http`` event of its own in
a recording. Without a mail URL nothing is sent.

The mock service (``python -m elixirscope.examples.taskflow mail --port N``)
accepts ``POST /send`` and keeps what it received (``GET /sent``). It can be
told to misbehave for its next messages: ``POST /mode`` with
``{"mode": "hang" | "fail" | "ok", "times": N}`` - ``hang`` holds each answer
for ``HANG_S`` (longer than any client waits), ``fail`` answers 503.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["ATTEMPTS", "EmailClient", "create_mail_app"]

ATTEMPTS = 3
TIMEOUT_S = 0.5
BACKOFF_S = 0.05
HANG_S = 2.0


class EmailClient:
    """Sends mail through the mail service's HTTP API, with timeouts and retries."""

    def __init__(self, mail_url: str | None, timeout: float = TIMEOUT_S) -> None:
        self.mail_url = mail_url.rstrip("/") if mail_url else None
        self.timeout = timeout
        # one client for every send, made here: making one loads TLS certificates,
        # which takes longer than a mail (and would hold the sending actor each time)
        self.client = httpx.Client(timeout=timeout) if self.mail_url else None

    def send(self, to: str, subject: str) -> str:
        """``sent after N attempt(s)``, or ``failed after N attempts: WHY``; never raises."""
        if self.mail_url is None or self.client is None:
            return "not sent: no mail service configured"
        why = ""
        client = self.client
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = client.post(f"{self.mail_url}/send", json={"to": to, "subject": subject})
            except httpx.TimeoutException:
                why = "timed out"
            except httpx.HTTPError as exc:
                why = f"{type(exc).__name__}"
            else:
                if response.status_code < 500:
                    return f"sent after {attempt} attempt{'s' if attempt > 1 else ''}"
                why = f"status {response.status_code}"
            time.sleep(BACKOFF_S)
        return f"failed after {ATTEMPTS} attempts: {why}"


def create_mail_app() -> Starlette:
    """The mock mail service (its state is the app's own)."""
    sent: list[dict[str, Any]] = []
    mode: dict[str, Any] = {"mode": "ok", "times": 0}

    async def send(request: Request) -> JSONResponse:
        message = await request.json()
        if mode["times"] > 0:
            mode["times"] -= 1
            if mode["mode"] == "hang":
                await asyncio.sleep(HANG_S)
            if mode["mode"] == "fail":
                return JSONResponse({"error": "mail service unavailable"}, status_code=503)
        sent.append(message)
        return JSONResponse({"queued": len(sent)})

    async def set_mode(request: Request) -> JSONResponse:
        asked = await request.json()
        if asked.get("mode") not in ("ok", "hang", "fail") or not isinstance(
            asked.get("times", 1), int
        ):
            return JSONResponse(
                {"error": "expected {'mode': 'ok' | 'hang' | 'fail', 'times': N}"}, status_code=400
            )
        mode.update(mode=asked["mode"], times=asked.get("times", 1))
        return JSONResponse(mode)

    async def list_sent(request: Request) -> JSONResponse:
        return JSONResponse(sent)

    return Starlette(
        routes=[
            Route("/send", send, methods=["POST"]),
            Route("/mode", set_mode, methods=["POST"]),
            Route("/sent", list_sent),
        ]
    )
