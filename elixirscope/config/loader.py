"""Layered loading: defaults, shipped files, the user's file, environment variables.

Layers, each overriding the one before, every value remembering its source:

====  ===================================  ===========================================
 1    the schema's defaults                ``default``
 2    ``config/default.toml``              ``default.toml`` (package data)
 3    the overlay for ``node.environment`` ``dev.toml`` / ``test.toml`` / ``prod.toml``
 4    the user's file (``--config FILE``)  the path as given
 5    ``ELIXIRSCOPE_<SECTION>__<KEY>``     the variable's name
====  ===================================  ===========================================

``node.environment`` picks the overlay, so it is resolved first, highest
first: the ``environment`` argument (source ``argument``), ``ELIXIRSCOPE_ENV``,
``ELIXIRSCOPE_NODE__ENVIRONMENT``, the user's file, ``default.toml``, the
default. An overlay may not name another environment.

Environment variables: ``ELIXIRSCOPE_CAPTURE__BATCH_SIZE=500`` sets
``capture.batch_size`` (a double underscore between path parts, a key
without a section has none: ``ELIXIRSCOPE_DATA_DIR``); values are read with
:func:`~.schema.parse_text`. Every ``ELIXIRSCOPE_`` variable other than
``ELIXIRSCOPE_ENV`` must name a key.

Every layer is read and checked before anything is raised, so one
:class:`~.errors.ConfigErrors` lists every problem in every source. The
shipped files are optional (a missing one contributes nothing); the user's
file is not.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

from .errors import (
    ConfigError,
    file_error,
    invalid_value,
    raise_all,
    syntax_error,
    unknown_key,
)
from .schema import SCHEMA, SECTIONS, parse_text, suggest, validate

__all__ = ["ENV_PREFIX", "ENV_SELECT", "PACKAGE", "Loaded", "env_name", "load"]

ENV_PREFIX = "ELIXIRSCOPE_"
ENV_SELECT = "ELIXIRSCOPE_ENV"
# ELIXIRSCOPE_* variables that are not settings (read by other parts: the console's
# history file, the CLI's pager, the capture's C accelerator and its clock, what a
# recorded program's children join (cli.children) and the chain they run in
# (capture.processes); and the
# test suite's heavy profile, chaos figures and artifacts dir (the browser tests'
# screenshots), which the daemons and programs it starts inherit)
ENV_NOT_SETTINGS = frozenset(
    {
        ENV_SELECT,
        "ELIXIRSCOPE_HISTORY",
        "ELIXIRSCOPE_PAGER",
        "ELIXIRSCOPE_LOG_FORMAT",
        "ELIXIRSCOPE_NO_SPEEDUPS",
        "ELIXIRSCOPE_NO_TSC",
        "ELIXIRSCOPE_RUN_CHILD",
        "ELIXIRSCOPE_CHAIN",
        "ELIXIRSCOPE_HEAVY",
        "ELIXIRSCOPE_CHAOS_FIGURES",
        "ELIXIRSCOPE_ARTIFACTS",
    }
)
PACKAGE = "elixirscope.config_files"
ENV_KEY = "node.environment"


class Sourced(NamedTuple):
    value: object
    source: str


Layer = dict[str, Sourced]


@dataclass(frozen=True)
class Loaded:
    """The merged result: every key's value and the source it came from."""

    values: dict[str, object]
    sources: dict[str, str]
    environment: str


def env_name(path: str) -> str:
    """The environment variable that sets ``path``: ``capture.batch_size`` ->
    ``ELIXIRSCOPE_CAPTURE__BATCH_SIZE``."""
    return ENV_PREFIX + path.upper().replace(".", "__")


def load(
    user_file: str | os.PathLike[str] | None = None,
    environment: str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    config_dir: str | os.PathLike[str] | None = None,
    overlay: str | None = None,
) -> Loaded:
    """Read every layer; raise :class:`ConfigError` listing every problem found.

    ``config_dir`` replaces the packaged ``default.toml`` and overlays (tests,
    packagers); ``overlay`` forces which overlay is applied whatever
    ``node.environment`` resolves to (a reload keeps the running one).
    """
    env = os.environ if env is None else env
    errors: list[ConfigError] = []
    directory = _config_dir(config_dir, errors)
    base = {path: Sourced(key.default, "default") for path, key in SCHEMA.items()}
    shipped = _read_shipped(directory, config_dir, "default.toml", errors)
    user = _read_file(Path(user_file), str(user_file), errors) if user_file is not None else {}
    from_env = _read_env(env, errors)
    chosen = _choose(environment, env, errors)
    resolved = [
        layer[ENV_KEY].value
        for layer in (base, shipped, user, from_env, chosen)
        if ENV_KEY in layer
    ]
    name = overlay or str(resolved[-1])
    over = _read_shipped(directory, config_dir, f"{name}.toml", errors)
    _check_overlay(over, name, errors)
    raise_all(errors)
    return _merge([base, shipped, over, user, from_env, chosen])


def _merge(layers: list[Layer]) -> Loaded:
    merged: Layer = {}
    for layer in layers:
        merged.update(layer)
    values = {path: merged[path].value for path in SCHEMA}
    sources = {path: merged[path].source for path in SCHEMA}
    return Loaded(values, sources, str(values[ENV_KEY]))


# ------------------------------------------------------------------ environment choice


def _choose(environment: str | None, env: Mapping[str, str], errors: list[ConfigError]) -> Layer:
    """The layer that selects the environment explicitly, if anything does."""
    if environment is not None:
        return _checked({ENV_KEY: environment}, "argument", errors)
    if ENV_SELECT in env:
        return _checked({ENV_KEY: parse_text(ENV_KEY, env[ENV_SELECT])}, ENV_SELECT, errors)
    return {}


def _check_overlay(over: Layer, name: str, errors: list[ConfigError]) -> None:
    if ENV_KEY in over and over[ENV_KEY].value != name:
        value, source = over[ENV_KEY]
        detail = "an overlay cannot choose another environment"
        errors.append(invalid_value(repr(name), value, ENV_KEY, source, detail))


# ------------------------------------------------------------------ files


def _config_dir(
    config_dir: str | os.PathLike[str] | None, errors: list[ConfigError]
) -> Traversable | None:
    if config_dir is not None:
        return Path(config_dir)
    try:
        # A plain directory (an ordinary or editable install) is read as one; only a
        # zipped install needs importlib.resources, whose import costs every command.
        from importlib.util import find_spec

        spec = find_spec(PACKAGE)
        if spec is None:
            raise ModuleNotFoundError(PACKAGE)
        locations = list(spec.submodule_search_locations or ())
        if len(locations) == 1 and Path(locations[0]).is_dir():
            return Path(locations[0])
        from importlib import resources

        return resources.files(PACKAGE)
    except ModuleNotFoundError:
        reason = "the package data is not installed; reinstall elixirscope (pip install -e .)"
        errors.append(file_error("file_missing", f"{PACKAGE}/default.toml", reason))
        return None


def _read_shipped(
    directory: Traversable | None,
    config_dir: str | os.PathLike[str] | None,
    name: str,
    errors: list[ConfigError],
) -> Layer:
    """A file of the config directory; absent means empty. Labelled by its name
    when packaged, by its path when ``config_dir`` was given."""
    if directory is None:
        return {}
    resource = directory.joinpath(name)
    if not resource.is_file():
        return {}
    label = name if config_dir is None else str(Path(config_dir) / name)
    return _read_file(resource, label, errors)


def _read_file(file: Traversable, label: str, errors: list[ConfigError]) -> Layer:
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        errors.append(file_error("file_missing", label, "no such file"))
        return {}
    except OSError as exc:
        errors.append(file_error("file_unreadable", label, exc.strerror or str(exc)))
        return {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        errors.append(file_error("file_unreadable", label, f"not UTF-8 text (byte {exc.start})"))
        return {}
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        errors.append(_syntax(label, str(exc), text))
        return {}
    return _flatten(table, label, errors)


_POSITION = re.compile(
    r"^(?P<reason>.*) \(at (?:line (?P<line>\d+), column (?P<col>\d+)|end of document)\)$"
)


def _syntax(label: str, message: str, text: str) -> ConfigError:
    """tomllib says "Reason (at line L, column C)" or "(at end of document)"."""
    match = _POSITION.match(message)
    if match is None:
        return syntax_error(label, message, 0, 0)
    if match["line"] is None:  # end of document: its last line and column
        lines = text.split("\n")
        return syntax_error(label, match["reason"], len(lines), len(lines[-1]) + 1)
    return syntax_error(label, match["reason"], int(match["line"]), int(match["col"]))


def _flatten(
    table: Mapping[str, object], source: str, errors: list[ConfigError], prefix: str = ""
) -> Layer:
    out: Layer = {}
    for name, value in table.items():
        path = prefix + name
        if path in SCHEMA:
            out.update(_checked({path: value}, source, errors))
        elif path in SECTIONS and isinstance(value, dict):
            out.update(_flatten(value, source, errors, path + "."))
        elif path in SECTIONS:
            errors.append(invalid_value("table", value, path, source))
        else:
            errors.append(unknown_key(path, source, suggest(path)))
    return out


def _checked(values: Mapping[str, object], source: str, errors: list[ConfigError]) -> Layer:
    out: Layer = {}
    for path, value in values.items():
        try:
            out[path] = Sourced(validate(path, value, source), source)
        except ConfigError as exc:
            errors.append(exc)
    return out


# ------------------------------------------------------------------ environment variables


def _read_env(env: Mapping[str, str], errors: list[ConfigError]) -> Layer:
    out: Layer = {}
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in ENV_NOT_SETTINGS:
            continue
        path = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        if path not in SCHEMA:
            near = _keys_near(path)
            errors.append(unknown_key(path, name, near, [env_name(p) for p in near]))
            continue
        out.update(_checked({path: parse_text(path, env[name])}, name, errors))
    return out


def _keys_near(path: str) -> tuple[str, ...]:
    """Suggested keys, a suggested section replaced by its keys (a variable sets a key)."""
    keys = (key for near in suggest(path) for key in ((near,) if near in SCHEMA else suggest(near)))
    return tuple(dict.fromkeys(keys))[:3]
