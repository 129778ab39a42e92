"""``elixirscope daemon``: the full tree as a long-lived process.

Logs structured lines with structlog (JSON when stderr is not a terminal,
or when ``logging.format = "json"``). SIGTERM or SIGINT stops the tree in
reverse order within ``--stop-timeout`` seconds, then the actor system; no
actor process is left behind. If the application supervisor itself dies
(its restart intensity exceeded), the daemon logs it and exits with status 1.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

__all__ = ["add_arguments", "configure_logging", "run"]

WATCH_INTERVAL = 2.0


def add_arguments(parser: Any) -> None:
    parser.add_argument("--config", metavar="FILE", help="a TOML file applied over the defaults")
    parser.add_argument("--env", choices=("dev", "test", "prod"), help="configuration overlay")
    parser.add_argument("--data-dir", metavar="DIR", help="where recorded data lives")
    parser.add_argument("--api", metavar="ENDPOINT", help="API endpoint, e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--node", metavar="NAME", help="this node's name")
    parser.add_argument(
        "--admin-port",
        type=int,
        metavar="PORT",
        help="Thespian's admin port (default: the configuration's; 0 picks a free one)",
    )
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long an orderly shutdown may take (default 30)",
    )


def configure_logging(fmt: str = "auto", level: str = "info") -> Any:
    """structlog to stderr: JSON lines unless a person is watching (or told otherwise).

    The same format for every line on stderr: the standard library's records (the
    runtime's, Thespian's) in this process go through the same renderer, and actor
    processes started afterwards inherit the choice (``log_lines.FORMAT_ENV``).
    """
    import logging

    import structlog

    from elixirscope.telemetry.log_lines import FORMAT_ENV, LineFormatter, renderer, resolve_format

    chosen = resolve_format(fmt, sys.stderr)
    os.environ[FORMAT_ENV] = chosen
    numeric = getattr(logging, level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer(chosen),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "elixirscope_daemon", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter(chosen))
    handler.elixirscope_daemon = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(max(numeric, logging.WARNING))  # the libraries: warnings and worse
    return structlog.get_logger("elixirscope.daemon")


def _overrides(args: Any) -> dict[str, Any]:
    pairs = {
        "api.endpoint": args.api,
        "node.name": args.node,
        "data_dir": args.data_dir,
        "runtime.admin_port": args.admin_port,
    }
    return {k: v for k, v in pairs.items() if v is not None}


def run(args: Any) -> int:
    log = configure_logging()  # until the configuration says otherwise: auto, info
    from elixirscope.config import ConfigError, DataDirError
    from elixirscope.runtime import StartError
    from elixirscope.supervisors.node import Application, InsecureEndpoint, PortInUse

    try:
        app = Application(user_file=args.config, environment=args.env, overrides=_overrides(args))
    except ConfigError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [""]
        # one record on one line, in the one format: the problems as a list, not "\n"s
        log.error("invalid configuration", error=lines[0], problems=lines[1:] or lines)
        return 2
    log = configure_logging(app.store.get("logging.format"), app.store.get("logging.level"))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, f: stop.set())
    try:
        app.start(subreaper=True)
    except (PortInUse, InsecureEndpoint, StartError, DataDirError) as exc:
        log.error("daemon failed to start", error=str(exc))
        return 1
    log.info(
        "daemon started",
        node=app.node,
        api=app.endpoint,
        admin_port=app.admin_port,
        ingest=app.data_plane["ingest_endpoint"],
        control=app.data_plane["control_endpoint"],
        data_dir=app.data_plane["data_dir"],
        base=app.store.get("runtime.system_base"),
        config=args.config,
    )
    status = 0
    while not stop.wait(WATCH_INTERVAL):
        if not app.alive():
            log.error("application supervisor is gone (restart intensity exceeded); exiting")
            status = 1
            break
    log.info("daemon stopping", reason="signal" if stop.is_set() else "tree gone")
    app.stop(timeout=args.stop_timeout)
    log.info("daemon stopped", node=app.node)
    return status
