"""``elixirscope ui``: serve the execution cinema (``elixirscope.visualization``) in a browser.

Over a data dir, on loopback by default. The URL printed carries a random token
(as Jupyter's does) that every page, API call and WebSocket must show; binding
any other address needs ``--allow-remote`` and prints a warning, since whoever
has the URL can read everything recorded.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from typing import Any

from elixirscope.cli.exits import EXIT_OK, EXIT_USAGE, CommandError
from elixirscope.visualization.serving import is_loopback

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from elixirscope.cli.keys import add_keys_argument

    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--data-dir",
        metavar="DIR",
        help="the event store's data dir (default: data_dir from the configuration)",
    )
    where.add_argument(
        "--daemon",
        metavar="ENDPOINT",
        help="have a running daemon's Visualization layer serve it (over the daemon's data dir)",
    )
    parser.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    add_keys_argument(parser)
    parser.add_argument(
        "--stop", action="store_true", help="with --daemon: stop the daemon's cinema"
    )
    parser.add_argument(
        "--port",
        metavar="N",
        type=_port,
        default=0,
        help="port to serve on (default 0: a free one)",
    )
    parser.add_argument(
        "--host", metavar="H", default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host that is not loopback (anyone with the URL can read the recordings)",
    )
    parser.add_argument("--open", action="store_true", help="open the URL in a web browser")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port 0 to 65535, got {value}")
    return value


def run(args: Any) -> int:
    from pathlib import Path

    from elixirscope.visualization.serving import bind, url_of

    if args.stop and not args.daemon:
        raise CommandError("--stop stops a daemon's cinema: give --daemon ENDPOINT", EXIT_USAGE)
    if not is_loopback(args.host) and not args.allow_remote:
        raise CommandError(
            f"--host {args.host} is not a loopback address: anyone who can reach it with the"
            " URL reads every recording; add --allow-remote to serve it anyway",
            EXIT_USAGE,
        )
    if args.daemon:
        return _in_daemon(args)
    try:
        import uvicorn  # noqa: F401

        from elixirscope.visualization.server import create_app
    except ImportError as exc:
        raise CommandError(
            f"the cinema needs {exc.name}: pip install 'elixirscope[ui]'", EXIT_USAGE
        ) from None
    from elixirscope.cli.reading import _data_dir

    data_dir = _data_dir(args)
    if not Path(data_dir).expanduser().is_dir():
        raise CommandError(f"no data dir {data_dir}: record something first (elixirscope run)")
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        raise CommandError(f"cannot serve on {args.host}:{args.port}: {exc.strerror}") from None
    port = sock.getsockname()[1]
    token = secrets.token_urlsafe(24)
    url = url_of(args.host, port, token)
    if not is_loopback(args.host):
        print(
            f"warning: serving on {args.host}, not loopback: anyone with this URL can read"
            " every recording in the data dir",
            file=sys.stderr,
        )
    print(f"ElixirScope cinema over {data_dir}\n  {url}\n(Ctrl-C stops it)", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    return _serve(create_app(data_dir, token, read_ahead=True), sock)


def _in_daemon(args: Any) -> int:
    """Ask the daemon's Visualization layer to serve (or stop); print where."""
    from elixirscope.cli.reading import _from_daemon

    if args.stop:
        report = _from_daemon(args, "ui_stop", {}, layer="visualization")
        print("stopped" if report["stopped"] else "the daemon was not serving the cinema")
        return EXIT_OK
    params = {"host": args.host, "port": args.port, "allow_remote": args.allow_remote}
    report = _from_daemon(args, "ui_start", params, layer="visualization")
    if not is_loopback(args.host):
        print(
            f"warning: serving on {args.host}, not loopback: anyone with this URL can read"
            " every recording in the daemon's data dir",
            file=sys.stderr,
        )
    print(
        f"ElixirScope cinema in the daemon at {args.daemon}\n  {report['url']}\n"
        f"(elixirscope ui --daemon {args.daemon}"
        + (f" --keys {args.keys}" if getattr(args, "keys", None) else "")
        + " --stop stops it)",
        flush=True,
    )
    return EXIT_OK


def _serve(app: Any, sock: Any) -> int:
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="websockets-sansio")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return EXIT_OK
