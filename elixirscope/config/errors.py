"""Configuration errors: one exception type, its reason as data, one grammar.

Every problem with configuration is a :class:`ConfigError` (a ``ValueError``)
whose fields say what went wrong - ``code``, ``path``, ``value``, ``source``,
``expected``, ``suggestions`` - and whose message follows one grammar::

    invalid_value    Expected `int >= 0`, got `'x'` - at `supervision.max_restarts`
                     (from ELIXIRSCOPE_SUPERVISION__MAX_RESTARTS)
    unknown_key      Unknown key `capture.batchsize` (from /etc/es.toml);
                     did you mean `capture.batch_size`?
    not_updatable    `node.name` cannot be changed at runtime, it needs a restart; ...
    file_missing     Cannot read config file `/etc/es.toml`: no such file
    file_unreadable  Cannot read config file `/etc/es.toml`: Permission denied
    toml_syntax      Invalid TOML in `/etc/es.toml` at line 3, column 9: Invalid value
    multiple         3 configuration errors: (then one numbered line each)

Loading reports every problem it finds at once: a single one is raised as
itself, several as one :class:`ConfigErrors` listing each. Both have
``.errors`` (a tuple of single errors), so a caller can always iterate.
Errors pickle with their fields, so an actor can send one to a console.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Sequence
from typing import Literal

__all__ = ["ConfigError", "ConfigErrors", "ErrorCode"]

ErrorCode = Literal[
    "invalid_value",
    "unknown_key",
    "not_updatable",
    "file_missing",
    "file_unreadable",
    "toml_syntax",
    "multiple",
]

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 80
_repr.maxdict = _repr.maxlist = 6


def show(value: object) -> str:
    """A value as messages print it: its repr, shortened when long."""
    return _repr.repr(value)


class ConfigError(ValueError):
    """A configuration value, key or file that cannot be used.

    Raised by loading (files, environment variables), by ``ConfigStore.get``
    for an unknown path, and by ``ConfigStore.set`` for an unknown, fixed or
    invalid key. The store is unchanged when one is raised: fix what the
    message names (the ``source`` says where the value came from) and retry.
    """

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode,
        path: str = "",
        value: object = None,
        source: str = "",
        expected: str = "",
        suggestions: Sequence[str] = (),
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.path = path
        self.value = value
        self.source = source
        self.expected = expected
        self.suggestions = tuple(suggestions)
        self.line = line
        self.column = column

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        """The single errors this one stands for: itself."""
        return (self,)

    def __reduce__(self) -> tuple[object, ...]:
        return (_restore, (type(self), self.args, dict(self.__dict__)))


class ConfigErrors(ConfigError):
    """Several configuration errors found in one load, listed together."""

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        found = tuple(e for error in errors for e in error.errors)
        lines = "\n".join(f"  {i}. {e}" for i, e in enumerate(found, 1))
        super().__init__(f"{len(found)} configuration errors:\n{lines}", code="multiple")
        self._errors = found

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        return self._errors


def _restore(
    cls: type[ConfigError], args: tuple[object, ...], state: dict[str, object]
) -> ConfigError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


def raise_all(errors: Sequence[ConfigError]) -> None:
    """Raise nothing, the one error, or all of them as a :class:`ConfigErrors`."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)


# ------------------------------------------------------------------ builders


def _from(source: str) -> str:
    return f" (from {source})" if source else ""


def invalid_value(
    expected: str, value: object, path: str, source: str, detail: str = ""
) -> ConfigError:
    tail = f": {detail}" if detail else ""
    return ConfigError(
        f"Expected `{expected}`, got `{show(value)}` - at `{path}`{_from(source)}{tail}",
        code="invalid_value",
        path=path,
        value=value,
        source=source,
        expected=expected,
    )


def unknown_key(
    path: str, source: str, suggestions: Sequence[str], shown: Sequence[str] | None = None
) -> ConfigError:
    """``shown`` spells the suggestions in the source's own terms (env var names)."""
    names = ", ".join(f"`{s}`" for s in (suggestions if shown is None else shown))
    hint = f"; did you mean {names}?" if names else ""
    return ConfigError(
        f"Unknown key `{path}`{_from(source)}{hint}",
        code="unknown_key",
        path=path,
        source=source,
        suggestions=suggestions,
    )


def not_updatable(path: str, value: object, updatable: Sequence[str]) -> ConfigError:
    names = ", ".join(f"`{p}`" for p in updatable)
    return ConfigError(
        f"`{path}` cannot be changed at runtime, it needs a restart: set it in the config "
        f"file or environment and restart; keys that can be set at runtime: {names}",
        code="not_updatable",
        path=path,
        value=value,
        source="runtime",
    )


def file_error(code: ErrorCode, file: str, reason: str) -> ConfigError:
    return ConfigError(f"Cannot read config file `{file}`: {reason}", code=code, source=file)


def syntax_error(file: str, reason: str, line: int, column: int) -> ConfigError:
    return ConfigError(
        f"Invalid TOML in `{file}` at line {line}, column {column}: {reason}",
        code="toml_syntax",
        source=file,
        line=line,
        column=column,
    )
