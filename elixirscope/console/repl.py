"""The interactive loop: prompt, readline history and tab completion.

Every line goes to :meth:`Session.execute`, which prints its own outcome; the
loop only decides whether to go on. It ends on ``quit``, ``exit`` or Ctrl-D
(exit status 0); Ctrl-C abandons the line being typed or the request being
waited for, and the loop goes on.

History lives in ``$ELIXIRSCOPE_HISTORY``, else ``~/.elixirscope_history``, and
is written when the loop ends. Completion offers command names, layer names,
config paths (from the config schema) and supervision-tree paths, which are
asked of the daemon the first time they are wanted (with a timeout of at most
``COMPLETION_TIMEOUT``), so a dead daemon costs one short wait per Tab, not a
hang.

Without the ``readline`` module (Windows) the loop still works, without
history or completion.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from .commands import LAYERS, app_request, complete
from .session import EXIT_OK, Session, tree_paths, unreachable_message

try:
    import readline
except ImportError:  # pragma: no cover - Windows
    readline = None  # type: ignore[assignment]

__all__ = ["COMPLETION_TIMEOUT", "HISTORY_LENGTH", "history_path", "prompt", "run_repl"]

COMPLETION_TIMEOUT = 1.0
HISTORY_LENGTH = 1000


def history_path() -> Path:
    """Where the REPL keeps its history: ``$ELIXIRSCOPE_HISTORY`` or ``~/.elixirscope_history``."""
    configured = os.environ.get("ELIXIRSCOPE_HISTORY")
    return Path(configured) if configured else Path.home() / ".elixirscope_history"


def prompt(session: Session) -> str:
    """``elixirscope[NODE]> ``, or the endpoint while the node is not known;
    ``replay[TARGET]> `` while a replay steps."""
    if session.stepper is not None:
        return f"replay[{session.stepper.source.target}]> "
    return f"elixirscope[{session.node or session.endpoint}]> "


def run_repl(session: Session) -> int:
    """Read and run lines until quit, exit or end of input; see the module doc."""
    history = _start_readline(session)
    try:
        _greet(session)
        while not session.quit_requested:
            try:
                line = input(prompt(session))
            except EOFError:
                print(file=session.out)
                break
            except KeyboardInterrupt:
                print(file=session.out)
                continue
            if not line.strip():
                continue
            try:
                session.execute(line)
            except KeyboardInterrupt:
                print("interrupted; the daemon may still act on it", file=session.err)
    finally:
        if history is not None:
            _save_history(history, session)
    return EXIT_OK


def _greet(session: Session) -> None:
    """Say where we are connected, learning the node name for the prompt."""
    response = session.fetch(app_request("status"))
    if response is None:
        said = unreachable_message(session.endpoint, session.timeout, session.refused)
        print(said, file=session.err)
        print("commands will try again; type 'help' for the list", file=session.err)
        return
    data = response.data if response.ok and isinstance(response.data, dict) else {}
    session.node = data.get("node") if isinstance(data.get("node"), str) else None
    print(
        f"connected to {session.node or '?'} at {session.endpoint}; "
        "type 'help' for commands, 'quit' to leave",
        file=session.out,
    )


# ------------------------------------------------------------------ readline


def _start_readline(session: Session) -> Path | None:
    """Load history and install the completer; the history path, or None without readline."""
    if readline is None:
        return None
    path = history_path()
    try:
        readline.read_history_file(path)
    except (FileNotFoundError, OSError):
        pass
    readline.set_history_length(HISTORY_LENGTH)
    readline.set_completer_delims(" \t\n")
    readline.set_completer(Completer(session))
    if "libedit" in (readline.__doc__ or ""):  # macOS's readline is libedit
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")
    return path


def _save_history(path: Path, session: Session) -> None:
    try:
        readline.write_history_file(path)
    except OSError as exc:
        print(f"could not save history to {path}: {exc}", file=session.err)


class Completer:
    """readline's ``completer(text, state)`` over :func:`.commands.complete`."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._matches: list[str] = []
        self.sources: dict[str, Callable[[], Iterable[str]]] = {
            "layer": lambda: LAYERS,
            "path": self._tree_paths,
            "config": self._config_paths,
            "updatable": lambda: self._config_paths(updatable_only=True),
        }

    def __call__(self, text: str, state: int) -> str | None:
        if state == 0:
            before = readline.get_line_buffer()[: readline.get_begidx()]
            try:
                self._matches = complete(before, text, self.sources)
            except Exception:  # readline swallows errors; no completion beats a broken one
                self._matches = []
        return self._matches[state] if state < len(self._matches) else None

    def _tree_paths(self) -> list[str]:
        if self._session.tree_paths is None:
            response = self._session.fetch(app_request("tree"), COMPLETION_TIMEOUT)
            if response is not None and response.ok:
                self._session.tree_paths = tree_paths(response.data)
        return self._session.tree_paths or []

    @staticmethod
    def _config_paths(updatable_only: bool = False) -> list[str]:
        """Every key and section of the config schema this console was built with.

        Imported on the first Tab that wants it (the schema, not the daemon, is
        asked: it is the same list, without a round trip); only the runtime-
        updatable keys for ``config set``. Layer names if the schema is missing.
        """
        try:
            from elixirscope.config import SCHEMA, UPDATABLE_KEYS
        except ImportError:
            return list(LAYERS)
        if updatable_only:
            return list(UPDATABLE_KEYS)
        return sorted({*SCHEMA, *(p.rpartition(".")[0] for p in SCHEMA if "." in p)})
