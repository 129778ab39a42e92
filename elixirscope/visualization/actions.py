"""The cinema's actions on a running daemon: kill, restart, trace, untrace, each confirmed.

A cinema served by a daemon (``elixirscope ui --daemon``) may change that daemon:
kill an actor (its supervisor restarts it), restart one through its supervisor,
trace or untrace a function pattern in the daemon's hosts. The Requests are the
console's (``kill``/``restart`` to the application, ``trace``/``untrace`` to the
Instrumentation layer), sent to the daemon's API endpoint like any client's.

Nothing changes on one request: :meth:`DaemonActions.propose` answers what would
happen and a one-time code (:class:`Confirmations`); only :meth:`DaemonActions.confirm`
with that code, for the same action, within ``CONFIRM_WINDOW_S``, performs it. A
stray click, a replayed request or a page that only reads can therefore never
change the system. Every refusal is an :class:`ActionError` naming what is wrong.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ACTIONS",
    "CONFIRM_WINDOW_S",
    "LEVELS",
    "Action",
    "ActionError",
    "Confirmations",
    "DaemonActions",
    "parse_action",
]

ACTIONS = ("kill", "restart", "trace", "untrace")
LEVELS = ("boundaries", "args", "full")
CONFIRM_WINDOW_S = 60.0
"""Seconds a confirmation code is good for."""
FORGET_AFTER_S = 600.0
"""Seconds a code is remembered (to say "expired" or "already used", not "unknown")."""
CINEMA_ACTOR = "visualization/live_stream"
"""The actor serving the cinema: killing it from here would cut the answer off."""

log = logging.getLogger(__name__)


class ActionError(ValueError):
    """An action refused; ``status`` the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Action:
    """One action and its arguments, checked: what a code is issued for."""

    kind: str
    path: str = ""
    reason: str = ""
    pattern: str = ""
    level: str = ""

    def as_dict(self) -> dict[str, str]:
        if self.kind in ("kill", "restart"):
            out = {"action": self.kind, "path": self.path}
            if self.kind == "kill":
                out["reason"] = self.reason
            return out
        out = {"action": self.kind, "pattern": self.pattern}
        if self.kind == "trace":
            out["level"] = self.level
        return out


def _text(body: dict[str, Any], name: str, limit: int = 200) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ActionError(f"`{name}` is missing: expected a non-empty string, got {value!r}")
    if len(value) > limit:
        raise ActionError(f"`{name}` is {len(value)} characters long; at most {limit}")
    return value.strip()


def parse_action(kind: str, body: Any) -> Action:
    """The action ``kind`` with the arguments in ``body`` (a JSON object), or ActionError."""
    if kind not in ACTIONS:
        raise ActionError(f"no action {kind!r}: the actions are {', '.join(ACTIONS)}", 404)
    if not isinstance(body, dict):
        raise ActionError(f"the body must be a JSON object, got {type(body).__name__}")
    known = {"path", "reason", "pattern", "level", "confirm"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ActionError(f"unknown field {unknown[0]!r}; fields: {', '.join(sorted(known))}")
    if kind == "kill":
        return Action(kind, path=_text(body, "path"), reason=_text(body, "reason"))
    if kind == "restart":
        return Action(kind, path=_text(body, "path"))
    pattern = _text(body, "pattern")
    if kind == "untrace":
        return Action(kind, pattern=pattern)
    level = body.get("level", "boundaries")
    if level not in LEVELS:
        raise ActionError(f"`level` must be one of {', '.join(LEVELS)}, got {level!r}")
    return Action(kind, pattern=pattern, level=level)


@dataclass
class _Issued:
    action: Action
    at: float
    used: bool = False


class Confirmations:
    """One-time codes, each for one action, good for ``window_s`` seconds."""

    def __init__(
        self, window_s: float = CONFIRM_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_s = window_s
        self.clock = clock
        self._issued: dict[str, _Issued] = {}
        self._lock = threading.Lock()

    def issue(self, action: Action) -> str:
        code = secrets.token_urlsafe(12)
        with self._lock:
            now = self.clock()
            for old in [c for c, i in self._issued.items() if now - i.at > FORGET_AFTER_S]:
                del self._issued[old]
            self._issued[code] = _Issued(action, now)
        return code

    def redeem(self, code: Any, action: Action) -> None:
        """Use ``code`` for ``action`` (once), or ActionError saying why not."""
        if not isinstance(code, str) or not code:
            raise ActionError(
                f"`confirm` must be the code the first request answered, got {code!r}"
            )
        with self._lock:
            issued = self._issued.get(code)
            if issued is None:
                raise ActionError("unknown confirmation code: ask again without `confirm`", 403)
            if issued.used:
                raise ActionError("this confirmation code was already used: ask again", 403)
            age = self.clock() - issued.at
            if age > self.window_s:
                raise ActionError(
                    f"this confirmation code expired ({age:.0f} s old, good for "
                    f"{self.window_s:.0f} s): ask again",
                    403,
                )
            if issued.action != action:
                raise ActionError(
                    f"this confirmation code is for {issued.action.as_dict()}, "
                    f"not {action.as_dict()}",
                    403,
                )
            issued.used = True


def _find(node: dict[str, Any], path: str, parent: dict[str, Any] | None = None) -> Any:
    if node.get("path") == path:
        return node, parent
    for child in node.get("children", []):
        found = _find(child, path, node)
        if found is not None:
            return found
    return None


class DaemonActions:
    """Proposes and performs actions on the daemon at ``endpoint`` (its API)."""

    def __init__(
        self,
        endpoint: str,
        timeout: float = 30.0,
        confirmations: Confirmations | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.confirmations = confirmations or Confirmations()

    def ask(self, operation: str, to_layer: str, **params: Any) -> Any:
        """The data of the daemon's answer to one Request, or ActionError (502) with its error."""
        from elixirscope.contracts import Request
        from elixirscope.transport import RequestClient, RequestTimeout

        request = Request(
            operation=operation, to_layer=to_layer, params=params, from_layer="visualization"
        )
        try:
            with RequestClient(self.endpoint, timeout=self.timeout) as client:
                response = client.request(request)
        except RequestTimeout:
            raise ActionError(
                f"the daemon at {self.endpoint} did not answer {operation} in {self.timeout:.0f} s",
                504,
            ) from None
        if not response.ok:
            error = response.error
            said = f"{error.code}: {error.message}" if error is not None else "no reason given"
            raise ActionError(f"the daemon refused {operation}: {said}", 502)
        return response.data

    def tree(self) -> dict[str, Any]:
        return self.ask("tree", "app")

    def _actor(self, path: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        found = _find(self.tree()["root"], path) if path else None
        if found is None:
            raise ActionError(f"no actor {path!r} in the daemon's supervision tree", 404)
        return found

    def describe(self, action: Action) -> dict[str, Any]:
        """What performing ``action`` would do, read from the daemon's tree now."""
        if action.kind in ("trace", "untrace"):
            traced = self.ask("traced", "instrumentation")
            hosts = traced.get("hosts", traced.get("subscribers"))
            where = "every connected host" + (f" ({hosts} now)" if hosts is not None else "")
            if action.kind == "trace":
                what = (
                    f"record functions matching {action.pattern} at level {action.level} "
                    f"in {where}, re-instrumenting loaded code in place"
                )
            else:
                what = f"stop recording functions traced as {action.pattern} in {where}"
            return {**action.as_dict(), "what": what}
        node, parent = self._actor(action.path)
        if node["path"] == CINEMA_ACTOR:
            raise ActionError(
                f"{CINEMA_ACTOR} serves this cinema: acting on it would cut this page off; "
                "use the console (elixirscope console) for it",
                409,
            )
        if node.get("kind") == "supervisor":
            raise ActionError(
                f"{action.path} is a supervisor: the cinema acts on workers only; "
                "use the console for a whole subtree",
                409,
            )
        sup = parent or {}
        sup_path = sup.get("path") or "the application"
        strategy = sup.get("strategy") or "?"
        if action.kind == "kill":
            if node.get("pid") is None:
                raise ActionError(f"{action.path} is not running (no pid)", 409)
            siblings = "" if strategy == "one_for_one" else f" ({strategy}: siblings restart too)"
            what = (
                f"kill -9 the actor {node['path']} (pid {node['pid']}), reason: {action.reason!r}; "
                f"its supervisor {sup_path} ({strategy}) restarts it "
                f"(restart: {node.get('restart')}){siblings}"
            )
        else:
            what = (
                f"stop the actor {node['path']} (pid {node.get('pid')}) in an orderly way, "
                f"then its supervisor {sup_path} ({strategy}) starts it again"
            )
        return {
            **action.as_dict(),
            "pid": node.get("pid"),
            "supervisor": sup_path,
            "strategy": strategy,
            "restarts": node.get("restarts"),
            "what": what,
        }

    def propose(self, action: Action) -> dict[str, Any]:
        """What would happen, and the code that performs it (once, within the window)."""
        described = self.describe(action)
        return {
            "would": described,
            "confirm": self.confirmations.issue(action),
            "expires_in_s": self.confirmations.window_s,
        }

    def confirm(self, action: Action, code: Any) -> dict[str, Any]:
        """Perform ``action`` with the code :meth:`propose` answered; the daemon's answer."""
        self.confirmations.redeem(code, action)
        log.warning("cinema action confirmed: %s", action.as_dict())
        if action.kind == "kill":
            answer = self.ask("kill", "app", path=action.path, reason=action.reason)
        elif action.kind == "restart":
            answer = self.ask("restart", "app", path=action.path)
        elif action.kind == "trace":
            answer = self.ask(
                "trace", "instrumentation", pattern=action.pattern, level=action.level
            )
        else:
            answer = self.ask("untrace", "instrumentation", pattern=action.pattern)
        return {"done": action.as_dict(), "daemon": answer}
