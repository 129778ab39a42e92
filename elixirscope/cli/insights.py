"""``elixirscope insights`` and ``elixirscope explain``: findings, and what they mean.

``insights [RUN]`` runs every detector (``elixirscope.ai``) over a run and
prints its findings grouped by severity; ``explain EVENT_OR_FINDING`` builds a
bounded, redacted context around an event or a finding and asks a provider
(offline rules by default), printing the answer as it arrives. Both read a
data dir, or ask a daemon's AI layer.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from elixirscope.ai.answer_stream import follow
from elixirscope.cli.exits import EXIT_OK, EXIT_USAGE, CommandError
from elixirscope.cli.reading import _answer, _data_dir, _from_daemon, _print, _source_arguments

__all__ = ["add_explain_arguments", "add_insights_arguments", "run_explain", "run_insights"]


def add_insights_arguments(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "run",
        metavar="RUN",
        nargs="?",
        help="one run, by any unique prefix of its id (default: the latest; see `elixirscope runs`)",
    )
    which.add_argument(
        "--run", dest="run_option", metavar="ID", help="the same, as the other reads take it"
    )
    which.add_argument(
        "--all-runs", action="store_true", help="every run's findings, newest run first"
    )
    parser.add_argument(
        "--ui",
        metavar="URL",
        help="the cinema's URL as `elixirscope ui` prints it: each finding's link is printed "
        "whole (default: insights.ui_url; empty prints the part to paste after it)",
    )


def add_explain_arguments(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)
    parser.add_argument(
        "target",
        metavar="EVENT_OR_FINDING",
        help="an event id (see `elixirscope events`) or a finding id (F..., see `elixirscope insights`)",
    )
    parser.add_argument(
        "--run", metavar="ID", help="the run it is in (any unique prefix; default: the latest)"
    )
    parser.add_argument(
        "--producer",
        metavar="P",
        help="the process that recorded the event, when several have one with that id",
    )
    parser.add_argument(
        "--provider",
        choices=["offline", "openai", "gemini"],
        default=None,
        help="who explains (default: ai.provider from the configuration, offline unless set)",
    )
    parser.add_argument(
        "--show-context", action="store_true", help="print the (redacted) context sent, first"
    )


def _settings(args: Any) -> Any:
    from elixirscope.ai.settings import InsightSettings

    try:
        return InsightSettings.load(args.config)
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None


def _ui_url(text: str | None) -> str | None:
    if text is None:
        return None
    from elixirscope.config.checks import Invalid, UrlOrEmpty

    try:
        return UrlOrEmpty()(text)
    except Invalid as exc:
        raise CommandError(f"--ui: {exc.detail}", EXIT_USAGE) from None


def run_insights(args: Any) -> int:
    run = args.run or args.run_option
    if run and args.all_runs:
        raise CommandError("give RUN or --all-runs, not both", EXIT_USAGE)
    params: dict[str, Any] = {"run": run} if run else {}
    if args.all_runs:
        params["all_runs"] = True
    ui_url = _ui_url(args.ui)
    if args.daemon:
        if ui_url is not None:
            params["ui_url"] = ui_url
        report = _daemon_commands(_from_daemon(args, "insights", params, layer="ai"), args)
    else:
        import dataclasses

        from elixirscope.ai.insights import all_runs_report, insights_report

        settings = _settings(args)
        if ui_url is not None:
            settings = dataclasses.replace(settings, ui_url=ui_url)
        if args.all_runs:
            report = _answer(lambda: all_runs_report(_data_dir(args), settings))
        else:
            report = _answer(lambda: insights_report(_data_dir(args), settings=settings, **params))
    return _print(report, args)


def _daemon_commands(report: dict[str, Any], args: Any) -> dict[str, Any]:
    """A daemon's findings with the commands to run next pointed at the daemon, as this
    read was (``--daemon EP --keys DIR``): the daemon wrote them for its own data dir."""
    import re

    via = f"--daemon {args.daemon}" + (f" --keys {args.keys}" if args.keys else "")
    point = lambda text: re.sub(r"--data-dir \S+", lambda _m: via, text)  # noqa: E731
    if isinstance(report.get("text"), str):
        report["text"] = point(report["text"])
    for finding in report.get("findings") or ():
        if isinstance(finding, dict) and isinstance(finding.get("commands"), list):
            finding["commands"] = [
                point(c) if isinstance(c, str) else c for c in finding["commands"]
            ]
    return report


def _show(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


def _explain_streamed(args: Any, params: dict[str, Any]) -> int:
    """Ask the daemon's AI layer, printing the answer as it is written there (one
    ``explain_read`` after another), then who answered on stderr."""
    stream = _from_daemon(args, "explain", {**params, "stream": True}, layer="ai")["stream"]
    shown, part = "", {}
    pieces = follow(
        lambda read: _from_daemon(args, "explain_read", read, layer="ai"),
        stream,
        context=bool(args.show_context),
    )
    for kind, value in pieces:
        if kind == "context":
            _show(value + "\n\n")
        elif kind == "text":
            _show(value)
            shown += value
        else:
            part = value
    if shown and not shown.endswith("\n"):
        _show("\n")
    if part.get("error"):
        error = part["error"]
        raise CommandError(error["message"] + (" (the answer above is cut there)" if shown else ""))
    report = part["report"] or {}
    if not shown and report.get("answer"):  # nothing was streamed (an offline answer)
        _show(report["answer"] + ("" if report["answer"].endswith("\n") else "\n"))
    if report.get("footer"):
        print(report["footer"], file=sys.stderr)
    return EXIT_OK


def run_explain(args: Any) -> int:
    params: dict[str, Any] = {"target": args.target}
    for name in ("run", "producer", "provider"):
        if getattr(args, name):
            params[name] = getattr(args, name)
    if args.daemon:
        if not args.json:
            return _explain_streamed(args, params)
        report = _daemon_commands(_from_daemon(args, "explain", params, layer="ai"), args)
        return _print(report, args)
    import os

    from elixirscope.ai.explain import ExplainError, explain
    from elixirscope.config import ConfigStore

    try:
        get = ConfigStore.load(user_file=args.config, env=dict(os.environ)).get
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    data_dir = os.path.expanduser(args.data_dir or get("data_dir"))
    streamed = not args.json
    show = _show

    try:
        report = explain(
            data_dir,
            args.target,
            run=args.run,
            producer=args.producer,
            provider=args.provider,
            get=get,
            on_context=(lambda text: show(text + "\n\n"))
            if args.show_context and streamed
            else None,
            on_text=show if streamed else None,
        )
    except (ExplainError, LookupError) as exc:
        raise CommandError(str(exc)) from None
    except BrokenPipeError:  # the reader stopped early (| head): handled as for every command
        raise
    except (ValueError, OSError) as exc:
        raise CommandError(str(exc)) from None
    if streamed:
        show("\n" if not report["answer"].endswith("\n") else "")
        footer = report.get("footer")
        if footer:
            print(footer, file=sys.stderr)
        return EXIT_OK
    return _print(report, args)
