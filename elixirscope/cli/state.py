"""``elixirscope state | history | diff-state | why | replay``: time travel over actor state.

Each reads one run (the latest by default, ``--run ID``, ``--all-runs``) from a
data dir, or asks a daemon's StateTracing layer (``--daemon ENDPOINT``), and
prints what ``elixirscope.state.reports`` renders. ``replay`` is an
interactive stepper over one actor's changes (commands: next, prev, goto N,
diff, why FIELD, show [FIELD], history [FIELD], quit); it reads its commands
from stdin, so it can be scripted too.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from elixirscope.cli.exits import EXIT_OK, CommandError
from elixirscope.cli.reading import (
    _answer,
    _data_dir,
    _from_daemon,
    _print,
    _run_arguments,
    _source_arguments,
    whole_number,
)

__all__ = ["ADDERS", "RUNNERS"]


def _moment_arguments(parser: argparse.ArgumentParser, crash: bool = True) -> None:
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--at", metavar="T", help="the state at time T (ISO time, 10s ago, or ns)")
    when.add_argument(
        "--event", metavar="ID", type=whole_number(1), help="the state at event ID (see `events`)"
    )
    when.add_argument(
        "--change", metavar="N", type=whole_number(1), help="the state after the actor's change N"
    )
    if crash:
        when.add_argument(
            "--before-crash",
            action="store_true",
            help="the state just before the last callback that raised",
        )


def _common(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)
    _run_arguments(parser)
    parser.add_argument(
        "target", metavar="TARGET", help="an actor's path (or its last part), or address"
    )


def add_state_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    _moment_arguments(parser)
    parser.add_argument(
        "--before",
        action="store_true",
        help="the state just before that change (with --change, --event or --at)",
    )
    parser.add_argument("--field", metavar="PATH", help="one field, e.g. tasks[3].assignee")


def add_history_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--field", metavar="PATH", help="only changes of this field")
    parser.add_argument(
        "--limit",
        metavar="N",
        type=whole_number(0, " (0: all)"),
        default=50,
        help="the last N changes (default 50; 0: all)",
    )


def add_diff_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    for name in ("a", "b"):
        parser.add_argument(
            name,
            metavar=name.upper(),
            help="a moment: change number (3), event:ID, before-crash, or a time",
        )
    parser.add_argument("--field", metavar="PATH", help="compare only this field")


def add_why_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("field", metavar="FIELD", help="the field whose value to explain")
    _moment_arguments(parser)


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)
    _run_arguments(parser)
    parser.add_argument("target", metavar="TARGET", help="an actor's path (or its last part)")
    parser.add_argument(
        "--change", metavar="N", type=whole_number(1), default=1, help="start at change N"
    )


def _scope(args: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.run:
        out["run"] = args.run
    if args.all_runs:
        out["all_runs"] = True
    return out


def _moment(args: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("at", "event", "change"):
        if getattr(args, name, None) is not None:
            out[name] = getattr(args, name)
    if getattr(args, "before_crash", False):
        out["before_crash"] = True
    return out


def _read(args: Any, operation: str, params: dict[str, Any], local: Any) -> int:
    if args.daemon:
        report = _from_daemon(args, operation, params, layer="state_tracing")
    else:
        report = _answer(lambda: local(_data_dir(args), **params))
    return _print(report, args)


def run_state(args: Any) -> int:
    from elixirscope.state.reports import state_report

    params = {"target": args.target, **_scope(args), **_moment(args)}
    if args.field:
        params["field"] = args.field
    if args.before:
        params["before"] = True
    return _read(args, "state", params, state_report)


def run_history(args: Any) -> int:
    from elixirscope.state.reports import history_report

    params = {"target": args.target, "limit": args.limit, **_scope(args)}
    if args.field:
        params["field"] = args.field
    return _read(args, "history", params, history_report)


def run_diff(args: Any) -> int:
    from elixirscope.state.reports import diff_state_report

    params = {"target": args.target, "a": args.a, "b": args.b, **_scope(args)}
    if args.field:
        params["field"] = args.field
    return _read(args, "diff", params, diff_state_report)


def run_why(args: Any) -> int:
    from elixirscope.state.reports import why_report

    params = {"target": args.target, "field": args.field, **_scope(args), **_moment(args)}
    return _read(args, "why", params, why_report)


# ------------------------------------------------------------------ replay

_HELP = """commands:
  n, next [K]      forward one change (or K)
  p, prev [K]      back one change (or K)
  g, goto N        to change N
  s, show [FIELD]  the state (or one field) here
  d, diff          what this change changed
  w, why FIELD     where FIELD's value here came from
  h, history FIELD every change of FIELD
  q, quit"""


def run_replay(args: Any) -> int:
    if args.daemon:
        raise CommandError("replay reads a data dir; give --data-dir (not --daemon)", 2)
    from elixirscope.state.recorded import StateRecording
    from elixirscope.state.timeline import Stepper

    def open_timeline() -> Any:
        recording = StateRecording(_data_dir(args), args.run, bool(args.all_runs))
        return recording, recording.timeline(args.target)

    recording, timeline = _answer(open_timeline)  # type: tuple[Any, Any]
    if args.change > len(timeline):
        raise CommandError(
            f"{timeline.target}: no change {args.change}; changes 1 to {len(timeline)}"
        )
    stepper = Stepper(timeline, args.change - 1)
    replay = _Replay(recording, stepper, args)
    replay.where()
    interactive = sys.stdin.isatty()
    while True:
        try:
            line = input("replay> " if interactive else "")
        except EOFError:
            break
        if not replay.command(line):
            break
    return EXIT_OK


class _Replay:
    def __init__(self, recording: Any, stepper: Any, args: Any) -> None:
        self.recording, self.stepper, self.args = recording, stepper, args
        self.timeline = stepper.timeline

    def say(self, text: str) -> None:
        print(text, flush=True)

    def where(self) -> None:
        from elixirscope.state.render import render

        c = self.timeline.changes[self.stepper.index]
        self.say(
            f"change {c.index + 1}/{len(self.timeline)}  {c.callback}"
            + (f" {c.message}" if c.message else "")
            + (f"  raised {c.error}" if c.error else "")
        )
        self.say(render(self.stepper.node, 100))

    def command(self, line: str) -> bool:
        from elixirscope.state.nodes import PathError, node_at, parse_path
        from elixirscope.state.render import compare, render, render_change
        from elixirscope.state.timeline import StateGap

        try:
            words = shlex.split(line)
        except ValueError as exc:
            self.say(f"cannot read that: {exc}")
            return True
        if not words:
            return True
        verb, rest = words[0].lower(), words[1:]
        try:
            if verb in ("q", "quit", "exit"):
                return False
            if verb in ("n", "next", "p", "prev"):
                count = int(rest[0]) if rest else 1
                for _ in range(count):
                    self.stepper.next() if verb in ("n", "next") else self.stepper.prev()
                self.where()
            elif verb in ("g", "goto"):
                if not rest or not rest[0].isdigit():
                    self.say("goto needs a change number, e.g. goto 3")
                    return True
                self.stepper.goto(int(rest[0]) - 1)
                self.where()
            elif verb in ("s", "show"):
                node = self.stepper.node
                if rest:
                    node = node_at(node, parse_path(rest[0]))
                self.say(render(node, 100))
            elif verb in ("d", "diff"):
                i = self.stepper.index
                if i == 0 or not self.timeline.linked(i):
                    self.say("the first state here: nothing before it to compare")
                else:
                    diffs = compare(self.timeline.state(i - 1), self.stepper.node)
                    self.say("\n".join(render_change(p, o, n) for p, o, n in diffs) or "no change")
            elif verb in ("w", "why"):
                from elixirscope.state.origin import why

                if not rest:
                    self.say("why needs a field, e.g. why tasks[0].assignee")
                    return True
                for step in why(self.recording, self.timeline.target, rest[0], self.stepper.index):
                    self.say(step.text)
            elif verb in ("h", "history"):
                path = parse_path(rest[0]) if rest else ()
                for fc in self.timeline.history(path):
                    self.say(
                        f"#{fc.change.index + 1} {fc.change.callback}: "
                        + render_change(path, fc.old, fc.new)
                    )
            elif verb in ("?", "help"):
                self.say(_HELP)
            else:
                self.say(f"unknown command {verb!r}\n{_HELP}")
        except (StateGap, PathError, ValueError) as exc:
            self.say(str(exc))
        return True


ADDERS = {
    "state": add_state_arguments,
    "history": add_history_arguments,
    "diff-state": add_diff_arguments,
    "why": add_why_arguments,
    "replay": add_replay_arguments,
}
RUNNERS = {
    "state": run_state,
    "history": run_history,
    "diff-state": run_diff,
    "why": run_why,
    "replay": run_replay,
}
