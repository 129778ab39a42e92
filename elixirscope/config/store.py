"""The configuration a running node uses: read it, change it, reload it.

A :class:`ConfigStore` holds the layered result of :func:`~.loader.load` plus
the values set at runtime. It is plain data and logic - no threads, no
actors; the ConfigServer actor wraps one and answers with what these methods
return.

- ``get(path)`` - a key's value, or a section as a dict.
- ``set(path, value) -> Change`` - only for keys whose ``Key.updatable`` is
  true; strings typed at a console are read as TOML literals (``"0.5"``).
- ``configure({path: value, ...}) -> tuple[Change, ...]`` - several at once,
  all or nothing; ``None`` leaves a key unchanged.
- ``reload() -> ReloadResult`` - reads every layer again. Changed updatable
  keys are applied and returned as :class:`Change`; changed fixed keys are
  refused (:class:`Refusal`, "needs a restart") and keep their running
  value. A value set at runtime survives a reload unless a layer changes that
  key. An invalid file raises and leaves the store as it was.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, not_updatable, raise_all, unknown_key
from .loader import ENV_KEY, Loaded, load
from .schema import SCHEMA, SECTIONS, UPDATABLE_KEYS, lookup, nest, parse_text, suggest, validate

__all__ = ["Change", "ConfigStore", "Refusal", "ReloadResult"]

RUNTIME = "runtime"


@dataclass(frozen=True)
class Change:
    """A key whose running value changed, and where the new value came from."""

    path: str
    old: Any
    new: Any
    source: str = RUNTIME

    def __str__(self) -> str:
        return f"`{self.path}` changed from {self.old!r} to {self.new!r} (from {self.source})"


@dataclass(frozen=True)
class Refusal:
    """A key a reload wanted to change but could not while the node runs."""

    path: str
    current: Any
    wanted: Any
    source: str
    reason: str = "needs a restart"

    def __str__(self) -> str:
        return (
            f"`{self.path}` stays {self.current!r}, not {self.wanted!r} (from {self.source}): "
            f"{self.reason}"
        )


@dataclass(frozen=True)
class ReloadResult:
    """What a reload applied and what it refused."""

    changes: tuple[Change, ...] = ()
    refused: tuple[Refusal, ...] = ()


class ConfigStore:
    """Layered configuration plus runtime changes; build one with :meth:`load`."""

    def __init__(
        self,
        loaded: Loaded,
        *,
        user_file: str | os.PathLike[str] | None = None,
        environment: str | None = None,
        env: Mapping[str, str] | None = None,
        config_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._loaded = loaded
        self._runtime: dict[str, object] = {}
        self._user_file = user_file
        self._environment = environment
        self._env = env
        self._config_dir = config_dir

    @classmethod
    def load(
        cls,
        user_file: str | os.PathLike[str] | None = None,
        environment: str | None = None,
        env: Mapping[str, str] | None = None,
        *,
        config_dir: str | os.PathLike[str] | None = None,
    ) -> ConfigStore:
        """Read every layer (see :mod:`.loader`); ``env`` defaults to ``os.environ``,
        read again by each reload. Raises :class:`ConfigError` listing every problem."""
        loaded = load(user_file, environment, env, config_dir=config_dir)
        return cls(
            loaded, user_file=user_file, environment=environment, env=env, config_dir=config_dir
        )

    # -------------------------------------------------------------- reading

    @property
    def environment(self) -> str:
        """The running environment (``node.environment``), fixed until restart."""
        return self._loaded.environment

    @property
    def user_file(self) -> Path | None:
        """The user's config file, the one worth watching for changes."""
        return None if self._user_file is None else Path(self._user_file)

    def get(self, path: str) -> Any:
        """A key's value (of type ``SCHEMA[path].type``), or a section's keys as a
        dict (``get("capture")``); an unknown path raises ``unknown_key``."""
        if path in SCHEMA:
            return self._runtime.get(path, self._loaded.values[path])
        if path in SECTIONS:
            return nest(self._values(), path)
        raise unknown_key(path, "", suggest(path))

    def as_dict(self) -> dict[str, Any]:
        """Every value, nested by section as in a TOML file."""
        return nest(self._values())

    def sources(self) -> dict[str, str]:
        """Where each key's value came from, by dotted path."""
        return {
            path: RUNTIME if path in self._runtime else src
            for path, src in self._loaded.sources.items()
        }

    def _values(self) -> dict[str, object]:
        return {**self._loaded.values, **self._runtime}

    # -------------------------------------------------------------- changing

    def set(self, path: str, value: object) -> Change:
        """Change an updatable key now; raises :class:`ConfigError` (``unknown_key``,
        ``not_updatable`` or ``invalid_value``) and changes nothing otherwise."""
        new = self._check_update(path, value)
        old = self.get(path)
        self._runtime[path] = new
        return Change(path, old, new)

    def configure(self, values: Mapping[str, object]) -> tuple[Change, ...]:
        """Change several updatable keys at once, or none if any is wrong (all
        problems raised together); a value of ``None`` leaves that key unchanged."""
        wanted = {path: value for path, value in values.items() if value is not None}
        errors: list[ConfigError] = []
        checked: dict[str, object] = {}
        for path, value in wanted.items():
            try:
                checked[path] = self._check_update(path, value)
            except ConfigError as exc:
                errors.append(exc)
        raise_all(errors)
        return tuple(self.set(path, value) for path, value in checked.items())

    def _check_update(self, path: str, value: object) -> object:
        key = lookup(path, RUNTIME)
        if not key.updatable:
            raise not_updatable(path, value, UPDATABLE_KEYS)
        if isinstance(value, str):
            value = parse_text(path, value)
        return validate(path, value, RUNTIME)

    # -------------------------------------------------------------- reloading

    def reload(self) -> ReloadResult:
        """Read every layer again and apply what may change while running."""
        new = load(
            self._user_file,
            self._environment,
            self._env,
            config_dir=self._config_dir,
            overlay=self.environment,
        )
        old = self._loaded
        values, sources = dict(old.values), dict(old.sources)
        changes: list[Change] = []
        refused: list[Refusal] = []
        for path, key in SCHEMA.items():
            wanted, source = new.values[path], new.sources[path]
            if wanted == old.values[path]:
                sources[path] = source
                continue
            current = self.get(path)
            if not key.updatable:
                refused.append(Refusal(path, current, wanted, source))
                continue
            values[path], sources[path] = wanted, source
            self._runtime.pop(path, None)
            if wanted != current:
                changes.append(Change(path, current, wanted, source))
        self._loaded = Loaded(values, sources, str(values[ENV_KEY]))
        return ReloadResult(tuple(changes), tuple(refused))
