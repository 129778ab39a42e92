"""What stands between ``explain`` and a paid API: a circuit breaker, a rate limit and a
daily token budget, kept in one file under the data dir so that every process (each
``elixirscope explain``, the daemon's AI layer) counts against the same limits.

``<data_dir>/ai/usage.json``: the UTC day and the tokens used on it, the start
times of the requests of the last minute, and per provider the failures in a
row and when its circuit opened. It is read and written under an exclusive
``fcntl`` lock; a damaged file is replaced (the limits start again from zero)
and said so in the guard's ``notes``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BudgetExhausted", "CircuitOpen", "Guard", "GuardError", "Limits", "RateLimited"]


class GuardError(RuntimeError):
    """A request was not sent: the message says which limit and until when."""


class CircuitOpen(GuardError):
    pass


class RateLimited(GuardError):
    pass


class BudgetExhausted(GuardError):
    pass


@dataclass(frozen=True)
class Limits:
    breaker_failures: int = 5
    breaker_reset_s: float = 60.0
    requests_per_minute: int = 20
    daily_token_budget: int = 200_000
    max_wait_s: float = 30.0  # the longest a request waits for its turn under the rate limit


def _today() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")


class Guard:
    """The limits of ``provider``, persisted in ``<data_dir>/ai/usage.json``."""

    def __init__(self, data_dir: str | os.PathLike[str], provider: str, limits: Limits) -> None:
        self.path = Path(data_dir).expanduser() / "ai" / "usage.json"
        self.provider = provider
        self.limits = limits
        self.notes: list[str] = []

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self._read()
                yield state
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(state))
                os.replace(tmp, self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, Any]:
        try:
            state = json.loads(self.path.read_text())
            if not isinstance(state, dict):
                raise ValueError("not an object")
        except FileNotFoundError:
            state = {}
        except (OSError, ValueError) as exc:
            self.notes.append(f"{self.path} could not be read ({exc}); its counts start again")
            state = {}
        if state.get("day") != _today():
            state["day"], state["tokens"] = _today(), 0
        state.setdefault("requests", [])
        state.setdefault("breakers", {})
        return state

    def usage(self) -> dict[str, Any]:
        """Today's tokens and this provider's circuit, as stored."""
        with self._locked() as state:
            return {
                "day": state["day"],
                "tokens": state["tokens"],
                "budget": self.limits.daily_token_budget,
                "breaker": dict(state["breakers"].get(self.provider) or {}),
            }

    def admit(self) -> None:
        """Let one request through, or raise which limit stops it. Waits (up to
        ``max_wait_s``) for its turn under the rate limit."""
        while True:
            with self._locked() as state:
                now = time.time()
                self._check_breaker(state, now)
                budget = self.limits.daily_token_budget
                if budget and state["tokens"] >= budget:
                    raise BudgetExhausted(
                        f"today's token budget is spent: {state['tokens']:,} of {budget:,} tokens "
                        "(ai.daily_token_budget); it renews at 00:00 UTC, or use --provider offline"
                    )
                recent = [t for t in state["requests"] if now - t < 60.0]
                if len(recent) < self.limits.requests_per_minute:
                    recent.append(now)
                    state["requests"] = recent
                    return
                state["requests"] = recent
                wait = 60.0 - (now - min(recent))
            if wait > self.limits.max_wait_s:
                raise RateLimited(
                    f"rate limit: {len(recent)} requests in the last minute "
                    f"(ai.requests_per_minute = {self.limits.requests_per_minute}); "
                    f"the next may go in {wait:.0f} s"
                )
            time.sleep(wait + 0.01)

    def _check_breaker(self, state: dict[str, Any], now: float) -> None:
        breaker = state["breakers"].get(self.provider) or {}
        opened = breaker.get("opened_at")
        if opened is None:
            return
        if now - opened < self.limits.breaker_reset_s:
            raise CircuitOpen(
                f"the circuit to {self.provider} is open after {breaker.get('failures', 0)} "
                f"failed requests in a row; it lets one request through in "
                f"{self.limits.breaker_reset_s - (now - opened):.0f} s (ai.breaker_reset_s)"
            )
        breaker["half_open"] = True  # one trial request: its outcome closes or reopens it
        state["breakers"][self.provider] = breaker

    def succeeded(self, tokens: int) -> None:
        with self._locked() as state:
            state["tokens"] += max(0, int(tokens))
            state["breakers"][self.provider] = {"failures": 0}

    def failed(self) -> None:
        with self._locked() as state:
            breaker = state["breakers"].get(self.provider) or {}
            failures = int(breaker.get("failures", 0)) + 1
            new: dict[str, float] = {"failures": failures}
            if breaker.get("half_open") or failures >= self.limits.breaker_failures:
                new["opened_at"] = time.time()
            state["breakers"][self.provider] = new
