"""ConfigServer: the running configuration, updated at runtime and from disk.

Wraps :class:`elixirscope.config.ConfigStore`. Registered as ``config``.
Calls: ``("get", path)`` → ``{"path", "value", "source"}``; ``("set", path,
value)`` → ``{"path", "old", "new"}`` for whitelisted keys only; a refusal
comes back as the ConfigError (its ``code``: ``unknown_key``,
``not_updatable``, ``invalid_value``). Every change — from ``set`` or from a
hot reload of the user file — is published as a ``config_changed`` Event to
the registry's ``config_changed`` subscribers (a duplicate key: the unique
``config`` only names this server). A user file that becomes invalid is
reported and ignored; the running configuration stays as it was.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from elixirscope.config import ConfigError, ConfigStore, FileWatcher
from elixirscope.contracts import Event
from elixirscope.runtime import GenServer, Reply

__all__ = ["CONFIG_TOPIC", "ConfigServer"]

CONFIG_TOPIC = "config_changed"  # registry key of the subscribers to configuration changes

log = logging.getLogger("elixirscope.config")


class ConfigServer(GenServer):
    """args: ``{"user_file": path | None, "environment": str | None, "env": {name: value}}``."""

    internal = True

    def init(self, args: dict[str, Any]) -> dict[str, Any]:
        user_file = args.get("user_file")
        self.store = ConfigStore.load(
            user_file=user_file,
            environment=args.get("environment"),
            env=args.get("env", dict(os.environ)),
        )
        self.interval = self.store.get("config.reload_interval_ms") / 1000.0
        self.watcher = FileWatcher(user_file, self.interval) if user_file else None
        if self.watcher is not None:
            self.send_after(self.interval, "watch")
        self.register("config")
        return {"reloads": 0, "reload_errors": 0, "refused": []}

    def handle_call(self, request: Any, from_: Any, state: dict[str, Any]) -> Reply:
        try:
            return Reply(self._serve(request), state)
        except ConfigError as exc:
            return Reply(exc, state)

    def _serve(self, request: Any) -> Any:
        op = request[0] if isinstance(request, tuple) and request else request
        if op == "get" and len(request) == 2:
            return {
                "path": request[1],
                "value": self.store.get(request[1]),
                "source": self.store.sources().get(request[1], "section"),
            }
        if op == "set" and len(request) == 3:
            change = self.store.set(request[1], request[2])
            self._publish([change], "runtime")
            return {"path": change.path, "old": change.old, "new": change.new}
        if op == "snapshot":
            return self.store.as_dict()
        raise ConfigError(
            f"ConfigServer answers ('get', path), ('set', path, value), 'snapshot'; "
            f"got {request!r}",
            code="invalid_value",
        )

    def handle_info(self, message: Any, state: dict[str, Any]) -> Any:
        if message == "watch":
            assert self.watcher is not None  # "watch" is only scheduled with a watcher
            if self.watcher.changed():
                self._reload(state)
            self.send_after(self.interval, "watch")
        return state

    def _reload(self, state: dict[str, Any]) -> None:
        try:
            result = self.store.reload()
        except ConfigError as exc:
            state["reload_errors"] += 1
            log.error("config reload refused, keeping the running configuration: %s", exc)
            return
        state["reloads"] += 1
        state["refused"] = [str(r) for r in result.refused]
        for refused in result.refused:
            log.warning("config reload: %s", refused)
        self._publish(result.changes, "reload")

    def _publish(self, changes: Sequence[Any], how: str) -> None:
        for change in changes:  # held while the registry restarts, sent to the next one
            event = Event(
                type="config_changed",
                source_layer="foundation",
                data={"path": change.path, "old": change.old, "new": change.new, "by": how},
            )
            self.dispatch(CONFIG_TOPIC, event)
