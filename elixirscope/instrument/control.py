"""Runtime trace control: the table of active trace rules, and following it in a host.

The Instrumentation layer's TraceController owns a :class:`TraceTable` and
publishes its whole snapshot (Event ``trace_state``) whenever it changes and
whenever a host subscribes. A host's :class:`TraceFollower` applies the
difference between the snapshot it last applied and the new one with
``elixirscope.instrument.live.trace`` / ``untrace``. Sending state rather than
commands makes it idempotent: a host that connects late, misses an event or
reconnects after a daemon restart converges on the same rules.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from elixirscope.contracts.levels import check_level
from elixirscope.instrument.plan import Rule

__all__ = ["TraceError", "TraceFollower", "TraceTable", "checked_rule"]

SNAPSHOT_TOPIC = "trace_state"


class TraceError(ValueError):
    """A trace command that cannot be applied, saying why and what would work."""


def checked_rule(pattern: Any, level: Any = "boundaries", sampling: Any = 1.0) -> Rule:
    """A live trace rule (the plan's :class:`Rule`), or TraceError naming the bad field."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise TraceError(
            f"pattern: expected a module or module.qualname glob like 'myapp.*', got {pattern!r}"
        )
    try:
        check_level(level, allow_none=False)
    except ValueError as exc:
        raise TraceError(f"level: {exc} (to stop tracing use untrace)") from None
    if (
        isinstance(sampling, bool)
        or not isinstance(sampling, (int, float))
        or not 0 < sampling <= 1
    ):
        raise TraceError(f"sampling: expected a number in (0, 1], got {sampling!r}")
    return Rule(pattern.strip(), level, float(sampling))


class TraceTable:
    """Active runtime trace rules by pattern, persisted to ``path`` if given."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self.rules: dict[str, Rule] = {}
        self.version = 0
        if self.path is not None and self.path.exists():
            self._load()

    def trace(self, pattern: Any, level: Any = "boundaries", sampling: Any = 1.0) -> Rule:
        rule = checked_rule(pattern, level, sampling)
        self.rules[rule.pattern] = rule
        self._changed()
        return rule

    def untrace(self, pattern: Any) -> Rule:
        if pattern == "*" and self.rules and "*" not in self.rules:
            raise TraceError(
                f"'*' is not traced; traced patterns: {', '.join(self.rules)} "
                "(untrace each, or use untrace_all)"
            )
        try:
            rule = self.rules.pop(pattern)
        except (KeyError, TypeError):
            known = ", ".join(self.rules) or "none"
            raise TraceError(f"{pattern!r} is not traced; traced patterns: {known}") from None
        self._changed()
        return rule

    def untrace_all(self) -> list[Rule]:
        gone = list(self.rules.values())
        self.rules.clear()
        self._changed()
        return gone

    def snapshot(self) -> dict[str, Any]:
        return {"version": self.version, "rules": [r.as_list() for r in self.rules.values()]}

    def _changed(self) -> None:
        self.version += 1
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.snapshot()))
            os.replace(tmp, self.path)

    def _load(self) -> None:
        assert self.path is not None  # loaded only when there is a file
        try:
            data = json.loads(self.path.read_text())
            for pattern, level, sampling in data["rules"]:
                rule = checked_rule(pattern, level, sampling)
                self.rules[rule.pattern] = rule
            self.version = int(data.get("version", 0))
        except (ValueError, KeyError, TypeError, OSError):
            self.rules.clear()  # a damaged file starts an empty table rather than a crash loop


def rules_of(snapshot: dict[str, Any]) -> dict[str, Rule]:
    return {r[0]: checked_rule(*r) for r in snapshot.get("rules", [])}


class TraceFollower:
    """Subscribe to a TraceController's snapshots and apply them in this process.

    Runs one daemon thread; ``applied`` holds the rules in force here and
    ``errors`` counts snapshots it could not apply (the host carries on).
    """

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.applied: dict[str, Rule] = {}
        self.traced: dict[str, list[str]] = {}
        self.snapshots = 0
        self.errors = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="elixirscope-trace-follower", daemon=True
        )

    def start(self) -> TraceFollower:
        from elixirscope.capture.signals import start_without_signals

        start_without_signals(self._thread)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def apply(self, snapshot: dict[str, Any]) -> None:
        """Bring this process's runtime tracing to ``snapshot``."""
        from elixirscope.instrument import live

        wanted = rules_of(snapshot)
        for pattern, rule in list(self.applied.items()):
            if wanted.get(pattern) != rule:
                live.untrace(pattern)
                self.applied.pop(pattern)
                self.traced.pop(pattern, None)
        for pattern, rule in wanted.items():
            if pattern not in self.applied:
                self.traced[pattern] = list(live.trace(pattern, rule.level, rule.sampling))
                self.applied[pattern] = rule
        self.snapshots += 1

    def _run(self) -> None:
        from elixirscope.transport import EventSubscriber

        with EventSubscriber(self.endpoint, topics=[SNAPSHOT_TOPIC]) as subscriber:
            while not self._stop.is_set():
                event = subscriber.recv(timeout=0.2)
                if event is None:
                    continue
                try:
                    self.apply(event.data)
                except Exception as exc:  # noqa: BLE001 - a bad snapshot never hurts the host
                    self.errors += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
