"""One grammar of exit statuses and waits for every ``elixirscope`` command.

* ``EXIT_OK`` (0): the command did what was asked;
* ``EXIT_ERROR`` (1): it got an error answer (an unknown id, a daemon's error
  Response, a store it cannot read);
* ``EXIT_USAGE`` (2): the command line or the configuration is wrong (nothing
  was asked of anyone);
* ``EXIT_UNREACHABLE`` (3): nothing answered - the daemon is not there or did
  not answer within ``api.request_timeout_s``.

A command says what went wrong by raising :class:`CommandError` with one of
these statuses; ``elixirscope.cli.main`` prints its message, never a Python
exception name, prefixed by the command.
"""

from __future__ import annotations

import os

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "CommandError",
    "request_timeout",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
DEFAULT_TIMEOUT_S = 5.0


class CommandError(Exception):
    """What a command could not do, with the exit status that says which kind of failure."""

    def __init__(self, message: str, status: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.status = status


def request_timeout(config_file: str | None, default: float = DEFAULT_TIMEOUT_S) -> float:
    """Seconds every command waits for an answer: ``api.request_timeout_s`` from the
    configuration (``config_file`` and ``ELIXIRSCOPE_*`` variables); ``default`` when it
    cannot be read (a broken configuration is reported by whatever reads it next)."""
    from elixirscope.config import ConfigError, ConfigStore

    try:
        return float(
            ConfigStore.load(user_file=config_file, env=dict(os.environ)).get(
                "api.request_timeout_s"
            )
        )
    except (ConfigError, OSError):
        return default
