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

from elixirscope.cli.keys import add_keys_argument, use_daemon_keys
from elixirscope.transport import EndpointError, KeyProblem

from .commands import COMMANDS, LocalCommand, UsageError, parse_command
from .repl import run_repl
from .session import EXIT_ERROR, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, Session

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
EXIT_INTERRUPTED = 130


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
    add_keys_argument(parser)
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        help=f"how long to wait for each answer (default {DEFAULT_TIMEOUT:g})",
    )


def run(args: argparse.Namespace) -> int:
    """Run the console as ``args`` ask: one command with ``-c``, else the REPL."""
    try:
        use_daemon_keys(getattr(args, "keys", None))
    except KeyProblem as exc:
        print(f"elixirscope console: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        session = Session(args.connect, timeout=args.timeout, json_output=args.json)
    except EndpointError as exc:
        print(f"elixirscope console: --connect: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with session:
        try:
            if args.one_shot is not None:
                return session.execute(args.one_shot)
            return run_repl(session)
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return EXIT_INTERRUPTED
