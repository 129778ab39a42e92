"""A client's key to a daemon: found from ``--keys``, the configuration or the data dir.

Every command that talks to a daemon (console, ``run --daemon``, the reads with
``--daemon``) calls :func:`use_daemon_keys` once before connecting, so all its
sockets are CURVE clients of that daemon; a missing key is a clear error before
anything is sent, rather than a request that is never heard.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = ["add_keys_argument", "use_daemon_keys"]


def add_keys_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keys",
        metavar="DIR",
        help="the daemon's keys dir (default: security.keys_dir, else "
        "<data_dir>/keys of the configuration)",
    )


def use_daemon_keys(
    keys: str | None = None, config_file: str | None = None, config: Any = None
) -> None:
    """Make this process a CURVE client of the daemon whose keys are in ``keys`` (or
    the configured keys dir); nothing when ``security.curve`` is off. Raises KeyProblem."""
    from elixirscope.transport import security

    if config is None:
        from elixirscope.config import ConfigStore

        config = ConfigStore.load(user_file=config_file, env=dict(os.environ))
    if not config.get("security.curve"):
        security.use_keys(None)
        return
    directory = security.keys_dir(keys or config.get("security.keys_dir"), config.get("data_dir"))
    security.use_keys(security.load_keys(directory))
