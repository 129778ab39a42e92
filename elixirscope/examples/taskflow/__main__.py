"""``python -m elixirscope.examples.taskflow serve|mail``: TaskFlow or its mock mail service.

``serve --port N [--host H] [--database URL] [--mail-url URL]`` and ``mail
--port N``; port 0 takes a free port. The first line on stdout is the bound
URL (``http://127.0.0.1:PORT``); SIGINT or SIGTERM stops the server cleanly.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
from typing import Any

__all__ = ["main"]

GRACE_S = 2  # open requests (a hanging mail call) get this long to finish at a stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m elixirscope.examples.taskflow")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run TaskFlow")
    mail = commands.add_parser("mail", help="run the mock mail service")
    for command in (serve, mail):
        command.add_argument("--port", type=int, required=True, help="0 for a free port")
        command.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--database", default=None, help="SQLAlchemy URL (default: sqlite file)")
    serve.add_argument("--mail-url", default=None, help="the mail service's URL")
    args = parser.parse_args(argv)
    if args.command == "serve":
        from elixirscope.examples.taskflow.app import DEFAULT_DATABASE_URL, create_app

        app: Any = create_app(args.database or DEFAULT_DATABASE_URL, args.mail_url)
    else:
        from elixirscope.examples.taskflow.mail import create_mail_app

        app = create_mail_app()
    return _serve(app, args.host, args.port)


def _serve(app: Any, host: str, port: int) -> int:
    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        print(f"cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 2
    sock.listen(2048)  # connections wait in the backlog until the app has started
    bound = sock.getsockname()[1]
    print(f"http://{host}:{bound}", flush=True)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=GRACE_S)
    server = uvicorn.Server(config)
    # uvicorn stops gracefully on either signal, then raises it again: end normally then
    signal.signal(signal.SIGTERM, _stopped)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    return 0


def _stopped(signum: int, frame: Any) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
