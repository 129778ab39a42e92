"""``elixirscope run`` turns the database and pub/sub integrations on as their libraries load.

Each integration is enabled once the program imports its library (never
imported here first: a program that does not use SQLAlchemy pays nothing for
it), unless its ``integrations.<name>`` key is false:

====================  ==============================  =====================================
key                   enabled when this is imported   what it does
====================  ==============================  =====================================
``sqlite3``           ``sqlite3``                     ``integrations.sqlite``
``sqlalchemy``        ``sqlalchemy``                  ``integrations.sqlalchemy``
``psycopg``           ``psycopg``                     ``integrations.psycopg``
``pubsub``            ``elixirscope.runtime.observe``  ``integrations.pubsub``
``thespian``          ``thespian.actors``              ``integrations.thespian_actors``
====================  ==============================  =====================================

``integrations.db_parameters`` says how SQL parameters are recorded
(``db_common``). :meth:`IntegrationWatch.stop` cancels the watches that have not
fired and disables the integrations that were enabled.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from elixirscope.integrations import db_common

__all__ = ["WATCHED", "IntegrationWatch", "watch_integrations"]

WATCHED: dict[str, tuple[str, str]] = {
    "sqlite3": ("sqlite3", "elixirscope.integrations.sqlite"),
    "sqlalchemy": ("sqlalchemy", "elixirscope.integrations.sqlalchemy"),
    "psycopg": ("psycopg", "elixirscope.integrations.psycopg"),
    "pubsub": ("elixirscope.runtime.observe", "elixirscope.integrations.pubsub"),
    "thespian": ("thespian.actors", "elixirscope.integrations.thespian_actors"),
}
"""Config key under ``integrations`` -> (the library's module, the integration's module)."""


class IntegrationWatch:
    """The import watches of one recording, and the integrations they enabled."""

    def __init__(self) -> None:
        self.watches: list[Any] = []
        self.enabled: list[str] = []  # integration modules this watch turned on

    def stop(self) -> list[str]:
        """Cancel and disable; returns what the program's user should hear: events the
        integrations could not record (counted, never raised), if any."""
        for watch in self.watches:
            watch.cancel()
        for name in reversed(self.enabled):
            try:
                importlib.import_module(name).disable()
            except Exception as exc:  # noqa: BLE001 - the program has ended anyway
                db_common.failed(exc)
        self.enabled.clear()
        news = []
        for what, stats in (
            ("database", db_common.STATS),
            ("pub/sub", _stats("elixirscope.integrations.pubsub")),
            ("Thespian actor", _stats("elixirscope.integrations.thespian_actors")),
        ):
            if stats.get("errors"):
                news.append(
                    f"{stats['errors']:,} {what} events could not be recorded "
                    f"(the program was not affected); the last: {stats['last_error']}"
                )
        return news

    def _enabler(self, integration: str, **options: Any) -> Callable[[Any], None]:
        def enable(_module: Any) -> None:
            try:
                if importlib.import_module(integration).enable(**options):
                    self.enabled.append(integration)
            except Exception as exc:  # noqa: BLE001 - the program runs on, unrecorded there
                db_common.failed(exc)

        return enable


def _options(key: str, get: Callable[[str], Any]) -> dict[str, Any]:
    """What ``enable`` of integration ``key`` takes from the configuration."""
    if key == "pubsub":
        return {"record_own": get("capture.record_own_actors")}
    if key == "thespian":  # plain numbers: the state modules load with Thespian, not before
        limits = tuple(
            get(f"state.{k}") for k in ("max_depth", "max_items", "max_string", "max_bytes")
        )
        return {"state_limits": limits, "keyframe_every": get("state.keyframe_every")}
    return {}


def _stats(module_name: str) -> dict[str, Any]:
    import sys

    module = sys.modules.get(module_name)
    return {} if module is None else module.STATS


def watch_integrations(get: Callable[[str], Any]) -> IntegrationWatch:
    """Watch for the libraries whose integration ``get`` (``ConfigStore.get``) leaves on."""
    from elixirscope.capture.on_import import when_imported

    db_common.set_parameter_mode(get("integrations.db_parameters"))
    watch = IntegrationWatch()
    for key, (library, integration) in WATCHED.items():
        if not get(f"integrations.{key}"):
            continue
        options = _options(key, get)
        watch.watches.append(when_imported(library, watch._enabler(integration, **options)))
    return watch
