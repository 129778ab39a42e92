"""``elixirscope console``: an interactive client for a running daemon.

It speaks ``Request``/``Response`` contracts to the daemon's API endpoint (a
ZeroMQ ROUTER, ``tcp://127.0.0.1:5555`` unless ``--connect`` says otherwise):
``status``, ``tree``, ``layers``, ``stats``, ``config get|set``,
``restart|terminate|kill PATH``, and ``send`` for any operation of any layer.
Type ``help`` inside it for the list.

Wiring into a command line (``elixirscope.cli`` does this)::

    console = subparsers.add_parser("console", help="...")
    add_arguments(console)
    ...
    return run(args)          # the exit status

Exit statuses of ``-c`` one-shot mode: 0 ok, 1 the daemon answered with an
error, 2 usage error (nothing was sent), 3 no answer in time. The REPL exits 0.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = [
    "COMMANDS",
    "DEFAULT_ENDPOINT",
    "DEFAULT_TIMEOUT",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "LocalCommand",
    "Session",
    "UsageError",
    "add_arguments",
    "parse_command",
    "run",
]

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
DEFAULT_TIMEOUT = 5.0
"""Seconds to wait for each answer when neither ``--timeout`` nor ``api.request_timeout_s``
(the configuration) says otherwise."""
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_INTERRUPTED = 130

_LAZY = {
    "COMMANDS": "commands",
    "LocalCommand": "commands",
    "UsageError": "commands",
    "parse_command": "commands",
    "Session": "session",
}


def __getattr__(name: str) -> Any:
    """The session and the command language load on first use, so that building the
    ``elixirscope`` parser (which adds the console's options) imports no transport."""
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected a positive number of seconds, got {text!r} (e.g. --timeout 2.5)"
        )
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the console's options to ``parser`` (its own or a subcommand's).

    The destinations are ``connect``, ``one_shot``, ``json`` and ``timeout``;
    ``-c`` is not stored as ``command``, which a parent parser's subcommand
    dispatch usually owns.
    """
    parser.add_argument(
        "--connect",
        metavar="ENDPOINT",
        default=DEFAULT_ENDPOINT,
        help=f"the daemon's API endpoint, tcp://HOST:PORT or ipc://PATH (default {DEFAULT_ENDPOINT})",
    )
    parser.add_argument(
        "-c",
        dest="one_shot",
        metavar="COMMAND",
        default=None,
        help="run one command and exit with its status (0 ok, 1 daemon error, "
        "2 usage error, 3 no answer), e.g. -c 'stats capture'",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the daemon's data (or its error) as JSON, for scripts",
    )
    from elixirscope.cli.keys import add_keys_argument
    from elixirscope.cli.output import add_arguments as add_output_arguments

    add_keys_argument(parser)
    add_output_arguments(parser)
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_seconds,
        default=None,
        help="how long to wait for each answer (default: api.request_timeout_s from the "
        f"configuration, {DEFAULT_TIMEOUT:g} unless set)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the console as ``args`` ask: one command with ``-c``, else the REPL."""
    import io

    from elixirscope.transport import EndpointError, KeyProblem

    from .repl import run_repl
    from .session import Session

    # a one-shot's text answer goes out as every report does (fitted, coloured and
    # paged on a terminal; exact into a pipe); JSON and the REPL print as they go
    shaped = args.one_shot is not None and not args.json
    collected = io.StringIO() if shaped else None
    from elixirscope.cli.keys import use_daemon_keys

    key_problem = None
    try:
        use_daemon_keys(getattr(args, "keys", None))
    except KeyProblem as exc:
        key_problem = f"elixirscope console: {exc}"
    try:
        timeout = args.timeout if args.timeout is not None else _configured_timeout()
        session = Session(
            args.connect, timeout=timeout, json_output=args.json, out=collected, live=sys.stdout
        )
    except EndpointError as exc:
        print(f"elixirscope console: --connect: {exc}", file=sys.stderr)
        return EXIT_USAGE
    session.key_problem = key_problem
    with session:
        try:
            if args.one_shot is not None:
                status = session.execute(args.one_shot)
                if collected is not None and collected.getvalue():
                    from elixirscope.cli.output import Output

                    Output.for_args(args).emit(collected.getvalue())
                return status
            return run_repl(session)
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return EXIT_INTERRUPTED


def _configured_timeout() -> float:
    """``api.request_timeout_s`` from the configuration (files and ELIXIRSCOPE_* variables),
    the one wait every command shares; the default if the configuration cannot be read."""
    from elixirscope.cli.exits import request_timeout

    return request_timeout(None, default=DEFAULT_TIMEOUT)
