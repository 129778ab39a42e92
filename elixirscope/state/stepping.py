"""The replay stepper's commands, over a local recording or a daemon's StateTracing layer.

``elixirscope replay`` reads one command a line - next, prev, goto, show,
diff, why, history - and answers in text. Each command is one of the
StateTracing layer's reports (``state``/``diff``/``why``/``history``) at the
stepper's change, asked of a daemon or computed over a data dir
(:func:`local_reader`): the same words give the same answers from both. (The
Python API's ``state.replay`` steps by deltas in memory instead.)

A step shows a state, message or error as the report's ``shown`` fields say it: an
actor's address named by the actor it reached (``<actor shop/stock>``,
``query.addresses``), where ``message`` and ``error`` are as recorded.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from elixirscope.store.errors import QueryError

__all__ = ["HELP", "Replay", "Source", "local_reader"]

HELP = """commands (an empty line repeats the last step, as in gdb and pdb):
  n, next [K]      forward one change (or K)
  p, prev, b, back [K]  back one change (or K)
  g, goto N        to change N
  s, show [FIELD]  the state (or one field) here
  d, diff          what this change changed
  w, why FIELD     where FIELD's value here came from
  h, history FIELD every change of FIELD
  q, quit"""


def _headline(change: int, changes: int, callback: str, message: Any, error: Any) -> str:
    return (
        f"change {change}/{changes}  {callback}"
        + (f" {message}" if message else "")
        + (f"  raised {error}" if error else "")
    )


def _shown(r: dict[str, Any]) -> str:
    """A state report's state (or field) alone."""
    shown: str = r.get("shown") or r["text"].split("\n", 2 if r.get("error") else 1)[-1]
    return shown


def local_reader(recording: Any) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """``ask`` for a :class:`Source` over a data dir: the reports the StateTracing layer
    serves, computed here over one :class:`StateRecording` (its timelines read once)."""
    from elixirscope.state import reports

    serve: dict[str, Callable[..., dict[str, Any]]] = {
        "state": reports.state_report,
        "diff": reports.diff_state_report,
        "why": reports.why_report,
        "history": reports.history_report,
    }

    def ask(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        params = {k: v for k, v in params.items() if k not in ("run", "all_runs")}
        return serve[operation](recording.data_dir, recording=recording, **params)

    return ask


class Source:
    """One target's recorded states, read through ``ask(operation, params)``: a daemon's
    StateTracing layer Request (the report dict it answers, or an error raised), or
    :func:`local_reader` over a data dir - the same reports either way."""

    def __init__(
        self,
        ask: Callable[[str, dict[str, Any]], dict[str, Any]],
        target: str,
        scope: dict[str, Any] | None = None,
    ) -> None:
        self._ask = ask
        self.scope = dict(scope or {})
        first = ask("state", {"target": target, "change": 1, **self.scope})
        self.target, self.changes = first["target"], int(first["changes"])

    def _state(self, index: int, **more: Any) -> dict[str, Any]:
        return self._ask(
            "state", {"target": self.target, "change": index + 1, **self.scope, **more}
        )

    def where(self, index: int) -> str:
        r = self._state(index)
        self.changes = max(self.changes, int(r["changes"]))  # a live recording grows
        message = r.get("shown_message", r["message"])  # a daemon before it: as recorded
        error = r.get("shown_error", r["error"])
        return _headline(r["change"], r["changes"], r["callback"], message, error) + (
            "\n" + _shown(r)
        )

    def show(self, index: int, field: str | None) -> str:
        r = self._state(index, **({"field": field} if field else {}))
        text = _shown(r)
        return text.split(" = ", 1)[-1] if field else text

    def diff(self, index: int) -> str:
        if index == 0:
            return "the first state here: nothing before it to compare"
        r = self._ask(
            "diff", {"target": self.target, "a": str(index), "b": str(index + 1), **self.scope}
        )
        lines = r["text"].split("\n")[1:]
        return "\n".join(lines) or "no change"

    def why(self, index: int, field: str) -> str:
        r = self._ask(
            "why", {"target": self.target, "field": field, "change": index + 1, **self.scope}
        )
        text: str = r["text"]
        return text

    def history(self, field: str | None) -> str:
        params: dict[str, Any] = {"target": self.target, "limit": 0, **self.scope}
        if field:
            params["field"] = field
        text: str = self._ask("history", params)["text"]
        return text


class Replay:
    """The stepper: a position in a :class:`Source`, moved and read by typed commands."""

    def __init__(self, source: Source, start: int = 0, say: Callable[[str], None] = print) -> None:
        if not 0 <= start < source.changes:
            raise QueryError(
                f"{source.target}: no change {start + 1}; changes 1 to {source.changes}"
            )
        self.source, self.index, self.say = source, start, say
        self.last_step: str | None = None  # what an empty line repeats: the last n or p

    def where(self) -> None:
        self.say(self.source.where(self.index))

    def _move(self, to: int) -> None:
        last = self.source.changes - 1
        if not 0 <= to <= last:
            raise ValueError(f"{self.source.target}: changes 1 to {last + 1}, not {to + 1}")
        self.index = to
        self.where()

    def command(self, line: str) -> bool:
        """Carry out one command; False when it was ``quit``."""
        from elixirscope.state.nodes import PathError
        from elixirscope.state.timeline import StateGap

        try:
            words = shlex.split(line)
        except ValueError as exc:
            self.say(f"cannot read that: {exc}")
            return True
        if not words:
            if self.last_step is None:
                return True
            words = shlex.split(self.last_step)
        verb, rest = words[0].lower(), words[1:]
        try:
            if verb in ("q", "quit", "exit"):
                return False
            if verb in ("n", "next", "p", "prev", "b", "back"):
                if rest and not rest[0].isdigit():
                    self.say(f"{verb} takes a number of changes, e.g. {verb} 3; got {rest[0]!r}")
                    return True
                count = int(rest[0]) if rest else 1
                self.last_step = " ".join(words)
                self._move(self.index + (count if verb in ("n", "next") else -count))
            elif verb in ("g", "goto"):
                if not rest or not rest[0].isdigit():
                    self.say("goto needs a change number, e.g. goto 3")
                    return True
                self._move(int(rest[0]) - 1)
            elif verb in ("s", "show"):
                self.say(self.source.show(self.index, rest[0] if rest else None))
            elif verb in ("d", "diff"):
                self.say(self.source.diff(self.index))
            elif verb in ("w", "why"):
                if not rest:
                    self.say("why needs a field, e.g. why tasks[0].assignee")
                    return True
                self.say(self.source.why(self.index, rest[0]))
            elif verb in ("h", "history"):
                self.say(self.source.history(rest[0] if rest else None))
            elif verb in ("?", "help"):
                self.say(HELP)
            else:
                self.say(f"unknown command {verb!r}\n{HELP}")
        except (StateGap, PathError, QueryError, ValueError) as exc:
            self.say(str(exc))
        return True
