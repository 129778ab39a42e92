"""Printing a report the way a person at a terminal, and a pipe, each expect.

On a terminal: lines fit its width (cut with ``…``), colour marks what matters
(unless ``NO_COLOR`` is set or ``--color never``), and output longer than one
screen goes through a pager as git does (``ELIXIRSCOPE_PAGER``, else ``PAGER``,
else ``less``; ``LESS=FRX`` unless ``LESS`` is set; ``--no-pager`` or an empty
pager or ``cat`` turns it off). Into a pipe or a file: the text exactly, never
cut, no colour unless ``--color always``, no pager. A reader that stops early
(``elixirscope events | head``) ends the command quietly with status 0.

Every command that prints a report calls ``add_arguments`` on its parser and
``Output.for_args(args).emit(text)``; nothing here is imported by ``run``.
What only a terminal needs (its size, cell widths, the pager's process) is
imported when output goes to one: a pipe's reader should not wait for it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

__all__ = [
    "COLOR_CHOICES",
    "Output",
    "add_arguments",
    "fit",
    "highlight",
    "pager_command",
    "silence_stdout",
]

COLOR_CHOICES = ("auto", "always", "never")
ELLIPSIS = "…"

_RESET = "\x1b[0m"
_STYLES = {
    "time": "\x1b[2m",  # dim: ISO timestamps at the start of an event line
    "raised": "\x1b[1;31m",  # bold red: "!! ValueError: ..."
    "returned": "\x1b[32m",  # green: "-> value"
    "duration": "\x1b[2m",  # dim: "[1.2 µs]"
    "where": "\x1b[36m",  # cyan: file.py:12
    "call": "\x1b[1m",  # bold: the function called, "name("
    "etype": "\x1b[35m",  # magenta: the event type column
    "id": "\x1b[33m",  # yellow: a (shortened) correlation id
    "high": "\x1b[1;31m",  # bold red: "HIGH (2)", the most severe findings' heading
    "medium": "\x1b[1;33m",  # bold yellow: "MEDIUM (1)"
    "low": "\x1b[1m",  # bold: "LOW (1)"
    "finding": "\x1b[1;33m",  # bold yellow: a finding's id, F and nine hex digits
}
_TOKENS = re.compile(
    r"(?P<time>^\d{4}-\d\d-\d\dT[\d:.]+(?:[+-]\d\d:\d\d|Z)?)"
    r"|(?P<raised>!! .*?(?=  \[|$))"
    r"|(?P<returned>-> .*?(?=  \[|$))"
    r"|(?P<duration>\[[\d.,]+ ?(?:ns|µs|us|ms|s)\])"
    r"|(?P<where>[\w./\\-]+\.pyw?:\d+)"
    r"|(?P<etype>(?<=  )(?:call|return|exception|send|receive|state|spawn|exit|restart)(?=  ))"
    r"|(?P<id>(?<=  )[0-9a-f]{12}(?=  ))"
    r"|(?P<high>^HIGH \(\d+\)$)|(?P<medium>^MEDIUM \(\d+\)$)|(?P<low>^LOW \(\d+\)$)"
    r"|(?P<finding>(?<=^  )F[0-9a-f]{9}(?=  ))"
    r"|(?P<call>[A-Za-z_][\w.<>]*(?=\())",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--color`` and ``--no-pager`` for a command that prints a report."""
    parser.add_argument(
        "--color",
        choices=COLOR_CHOICES,
        default="auto",
        help="colour the text: auto (on a terminal, unless NO_COLOR is set), "
        "always, never (default auto)",
    )
    parser.add_argument(
        "--no-pager",
        action="store_true",
        help="never page long output (also: ELIXIRSCOPE_PAGER=cat)",
    )


def _cells(ch: str) -> int:
    import unicodedata

    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def fit(line: str, width: int | None) -> str:
    """``line`` cut to ``width`` terminal cells, ending in ``…`` when cut; whole when
    ``width`` is None."""
    if width is None or len(line) <= width and line.isascii():
        return line
    used, out = 0, []
    for ch in line:
        cells = _cells(ch)
        if used + cells > width:
            break
        used += cells
        out.append(ch)
    else:
        return line
    while out and used + 1 > width:  # room for the ellipsis
        used -= _cells(out.pop())
    return "".join(out) + ELLIPSIS


def highlight(line: str) -> str:
    """``line`` with ANSI colours on the parts of a report a reader looks for."""
    return _TOKENS.sub(lambda m: f"{_STYLES[m.lastgroup or '']}{m.group()}{_RESET}", line)


def _terminal_size() -> os.terminal_size:
    import shutil

    return shutil.get_terminal_size((80, 24))


def pager_command(env: Mapping[str, str]) -> str | None:
    """The pager to run, as git chooses it: ``ELIXIRSCOPE_PAGER``, ``PAGER``, ``less``;
    None when that is empty or ``cat``."""
    for name in ("ELIXIRSCOPE_PAGER", "PAGER"):
        if name in env:
            command = env[name].strip()
            break
    else:  # nobody chose: less if there is one (git falls back the same way)
        import shutil

        return "less" if shutil.which("less", path=env.get("PATH")) else None
    return None if command in ("", "cat") else command


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush after a reader
    closed the pipe raises nothing and prints nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


class Output:
    """Where a report goes and how: width, colour and pager decided once per command."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        color: str = "auto",
        pager: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.stream = stream or sys.stdout
        self.env = os.environ if env is None else env
        try:
            self.terminal = self.stream.isatty()
        except (AttributeError, ValueError):
            self.terminal = False
        if color not in COLOR_CHOICES:
            raise ValueError(f"--color must be one of {', '.join(COLOR_CHOICES)}, got {color!r}")
        no_color = bool(self.env.get("NO_COLOR")) or self.env.get("TERM") == "dumb"
        self.color = color == "always" or (color == "auto" and self.terminal and not no_color)
        size = _terminal_size() if self.terminal else None
        self.width = size.columns if size else None
        self.height = size.lines if size else None
        self.pager = pager_command(self.env) if pager and self.terminal else None

    @classmethod
    def for_args(cls, args: Any, stream: TextIO | None = None) -> Output:
        return cls(
            stream,
            color=getattr(args, "color", "auto") or "auto",
            pager=not getattr(args, "no_pager", False),
        )

    def render(self, text: str) -> str:
        """``text`` as it will be shown: each line fitted, then coloured."""
        lines = [fit(line, self.width) for line in text.splitlines()]
        if self.color:
            lines = [highlight(line) for line in lines]
        return "\n".join(lines) + "\n"

    def emit(self, text: str) -> None:
        """Show ``text``; through the pager when it is longer than the screen."""
        shown = self.render(text)
        if self.pager and self.height and shown.count("\n") >= self.height:
            if self._page(shown):
                return
        try:
            self.stream.write(shown)
            self.stream.flush()
        except BrokenPipeError:
            silence_stdout()

    def _page(self, shown: str) -> bool:
        """Run the pager on ``shown``; False if it could not start (then we print)."""
        env = dict(self.env)
        env.setdefault("LESS", "FRX")
        env.setdefault("LV", "-c")
        import subprocess

        try:
            self.stream.flush()
            proc = subprocess.Popen(
                self.pager or "less",
                shell=True,
                stdin=subprocess.PIPE,
                env=env,
                encoding=getattr(self.stream, "encoding", None) or "utf-8",
                errors="replace",
            )
        except OSError:
            return False
        try:
            assert proc.stdin is not None
            proc.stdin.write(shown)
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # the reader quit the pager early: that is fine
        while True:
            try:
                proc.wait()
                break
            except KeyboardInterrupt:
                continue  # as git does: the pager owns the terminal until it exits
        return proc.returncode != 127  # 127: the shell could not find the pager
