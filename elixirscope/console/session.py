"""``Session``: run one console line against a daemon and say how it went.

The contract::

    Session(endpoint, timeout=..., json_output=...).execute(line) -> exit status

with one exit status per outcome, the same in the REPL (which prints and goes
on) and in ``-c`` one-shot mode (which exits with it):

* ``EXIT_OK`` (0) - the daemon answered ok (or partial), or a local command ran;
* ``EXIT_ERROR`` (1) - the daemon answered with an error Response
  (``error CODE: MESSAGE`` on stderr), or with bytes that are not a Response;
* ``EXIT_USAGE`` (2) - the line is not a valid command (nothing was sent);
* ``EXIT_UNREACHABLE`` (3) - no answer within the timeout.

Output goes to ``out`` (results) and ``err`` (errors); with ``json_output`` the
result or the daemon's error is printed to ``out`` as JSON, for scripts.
"""

from __future__ import annotations

import sys
from typing import Any, Self, TextIO

import msgspec

from elixirscope.contracts import Request, Response, new_id
from elixirscope.transport import (
    BadResponse,
    ConnectionLost,
    ConnectionRefused,
    KeyRefused,
    RequestClient,
    RequestTimeout,
)

from .commands import LocalCommand, UsageError, help_text, parse
from .render import error_line, render_json, render_text

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "Session",
    "unreachable_message",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


def unreachable_message(
    endpoint: str, timeout: float, refused: bool = False, lost: bool = False
) -> str:
    """What to tell a user whose daemon did not answer (``refused``: nothing listens
    there, known at once; ``lost``: it went away with the command unanswered), and
    what to do about it."""
    if lost:
        return (
            f"the daemon at {endpoint} went away before answering: its connection closed and "
            "is now refused, so the command may or may not have run (start it again with "
            "`elixirscope daemon`, or pass --connect)"
        )
    if refused:
        return (
            f"no daemon at {endpoint}: the connection was refused (start one with "
            "`elixirscope daemon`, or pass --connect)"
        )
    return (
        f"no answer from {endpoint} within {float(timeout)!r} s - is `elixirscope daemon` "
        "running there? (start one, or pass --connect)"
    )


class Session:
    """One daemon connection, the output streams, and what the console knows so far."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 5.0,
        json_output: bool = False,
        out: TextIO | None = None,
        err: TextIO | None = None,
        live: TextIO | None = None,
    ) -> None:
        self.client = RequestClient(endpoint, timeout=timeout, refused_ends=True)
        self.refused = False
        """The last request found nothing listening at the endpoint (said at once)."""
        self.endpoint = self.client.endpoint
        self.timeout = float(timeout)
        self.json_output = json_output
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.live = live or self.out
        """Where text that comes piece by piece goes as it comes (an explanation), when
        ``out`` collects a one-shot's answer to print it whole."""
        self.node: str | None = None
        """The daemon's node name, from its last ``status`` answer."""
        self.tree_paths: list[str] | None = None
        """Paths from the last ``tree`` answer, for completion."""
        self.quit_requested = False
        self.stepper: Any = None
        """The ``replay`` under way (``elixirscope.state.stepping.Replay``): lines go to it."""
        self.key_problem: str | None = None
        """Why this console holds no key to the daemon: local commands still work,
        anything sent to the daemon is refused with this message (exit status 2)."""

    # ----------------------------------------------------------------- commands

    def execute(self, line: str) -> int:
        """Run one command line, print its outcome, return its exit status."""
        if self.stepper is not None:
            if not self.stepper.command(line):
                self.stepper = None
                self._print("back to the console", self.out)
            return EXIT_OK
        try:
            command, parsed = parse(line)
            if isinstance(parsed, LocalCommand):
                return self._local(parsed)
        except UsageError as exc:
            self._print(str(exc), self.err)
            return EXIT_USAGE
        return self._remote(command.renderer, parsed)

    def _local(self, command: LocalCommand) -> int:
        if command.name == "quit":
            self.quit_requested = True
        elif command.name == "replay":
            return self._replay(command.topic or "", command.change)
        else:
            self._print(help_text(command.topic), self.out)
        return EXIT_OK

    def _remote(self, renderer: str, request: Request) -> int:
        if self.key_problem is not None:
            self._print(self.key_problem, self.err)
            return EXIT_USAGE
        request = msgspec.structs.replace(request, timeout=self.timeout)
        if request.operation == "explain" and not self.json_output:
            return self._explain_streamed(request)
        try:
            response = self.client.request(request)
        except KeyboardInterrupt:
            self._cancel(request)
            raise
        except (KeyRefused, RequestTimeout, BadResponse) as exc:
            return self._unanswered(exc)
        self._remember(renderer, response)
        return self._show(renderer, response)

    def _unanswered(self, exc: KeyRefused | RequestTimeout | BadResponse) -> int:
        """Say why the daemon gave no answer; the exit status for it."""
        if isinstance(exc, RequestTimeout):
            refused, lost = isinstance(exc, ConnectionRefused), isinstance(exc, ConnectionLost)
            said = unreachable_message(self.endpoint, self.timeout, refused, lost)
            self._print(said, self.err)
            return EXIT_UNREACHABLE
        if isinstance(exc, BadResponse):
            self._print(
                f"error {exc.code}: bad answer from {self.endpoint}: {exc.reason}", self.err
            )
        else:
            self._print(str(exc), self.err)
        return EXIT_ERROR

    def _explain_streamed(self, request: Request) -> int:
        """``explain`` printed as the AI layer writes it (a language model's answer
        takes seconds), as ``elixirscope explain --daemon`` does."""
        from elixirscope.ai.answer_stream import follow

        def ask(operation: str, params: dict[str, Any]) -> dict[str, Any]:
            response = self.client.request(
                msgspec.structs.replace(request, id=new_id(), operation=operation, params=params)
            )
            if not response.ok or not isinstance(response.data, dict):
                raise _Failed(response)
            return response.data

        shown = ""
        try:
            stream = ask("explain", {**request.params, "stream": True})["stream"]
            for kind, value in follow(lambda read: ask("explain_read", read), stream):
                if kind == "text":
                    self.live.write(value)
                    self.live.flush()
                    shown += value
                elif kind == "end":
                    end = value
        except _Failed as failed:
            self._print(error_line(failed.response), self.err)
            return EXIT_ERROR
        except (KeyRefused, RequestTimeout, BadResponse) as exc:
            return self._unanswered(exc)
        if shown and not shown.endswith("\n"):
            self._print("", self.live)
        if end.get("error"):
            cut = " (the answer above is cut there)" if shown else ""
            self._print(f"error: {end['error']['message']}{cut}", self.err)
            return EXIT_ERROR
        report = end.get("report") or {}
        if not shown and report.get("answer"):  # nothing was streamed (an offline answer)
            self._print(report["answer"].rstrip("\n"), self.live)
        if report.get("footer"):
            self._print(report["footer"], self.err)
        return EXIT_OK

    def _replay(self, target: str, change: int) -> int:
        """Start stepping through ``target``'s states (``self.stepper``)."""
        from elixirscope.state.stepping import Replay, Source
        from elixirscope.store.errors import QueryError

        if self.key_problem is not None:
            self._print(self.key_problem, self.err)
            return EXIT_USAGE
        try:
            source = Source(self._ask_state, target)
            stepper = Replay(source, change - 1, say=lambda text: self._print(text, self.out))
            stepper.where()
        except QueryError as exc:
            self._print(str(exc), self.err)
            return EXIT_ERROR
        self.stepper = stepper
        return EXIT_OK

    def _ask_state(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """One StateTracing Request for the stepper; what fails is a QueryError it says."""
        from elixirscope.store.errors import QueryError

        request = Request(
            operation=operation,
            to_layer="state_tracing",
            params=params,
            from_layer="console",
            timeout=self.timeout,
        )
        try:
            response = self.client.request(request)
        except RequestTimeout as exc:
            refused, lost = isinstance(exc, ConnectionRefused), isinstance(exc, ConnectionLost)
            said = unreachable_message(self.endpoint, self.timeout, refused, lost)
            raise QueryError(said) from None
        except (KeyRefused, BadResponse) as exc:
            raise QueryError(str(exc)) from None
        if not response.ok or not isinstance(response.data, dict):
            raise QueryError(response.error.message if response.error else error_line(response))
        return response.data

    def _show(self, renderer: str, response: Response) -> int:
        failed = response.status == "error"
        if self.json_output:
            self._print(render_json(response), self.out)
            return EXIT_ERROR if failed else EXIT_OK
        if renderer == "response" or not failed:
            self._print(render_text(renderer, response), self.out)
        if failed:
            self._print(error_line(response), self.err)
            return EXIT_ERROR
        return EXIT_OK

    def _remember(self, renderer: str, response: Response) -> None:
        """Keep what the prompt and completion need from answers the user asked for."""
        if not response.ok or not isinstance(response.data, dict):
            return
        if renderer == "status" and isinstance(response.data.get("node"), str):
            self.node = response.data["node"]
        elif renderer == "tree":
            self.tree_paths = tree_paths(response.data)

    def _cancel(self, request: Request) -> None:
        """Ctrl-C during a query: the Query layer is asked to stop it (best effort)."""
        if request.operation != "esql":
            return
        self.fetch(
            Request(
                operation="esql_cancel",
                to_layer="query",
                params={"request": request.id},
                from_layer=request.from_layer,
            ),
            timeout=2.0,
        )

    # ------------------------------------------------------------ quiet queries

    def fetch(self, request: Request, timeout: float | None = None) -> Response | None:
        """``request``'s Response, or None if there is none in time; prints nothing.

        For the prompt and tab completion, which must never fail loudly.
        """
        wait = self.timeout if timeout is None else min(timeout, self.timeout)
        request = msgspec.structs.replace(request, timeout=wait)
        try:
            response = self.client.request(request, timeout=wait)
        except (RequestTimeout, KeyRefused, BadResponse) as exc:
            self.refused = isinstance(exc, ConnectionRefused)
            return None
        self.refused = False
        return response

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _print(text: str, stream: TextIO) -> None:
        print(text, file=stream, flush=True)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Session {self.endpoint} node={self.node!r}>"


class _Failed(Exception):
    """A daemon's answer that is an error (or not the dict asked for)."""

    def __init__(self, response: Response) -> None:
        super().__init__(error_line(response))
        self.response = response


def tree_paths(data: object) -> list[str]:
    """Every non-empty path in a ``tree`` answer; [] if it is not in the expected shape."""
    paths: list[str] = []
    stack = [data.get("root")] if isinstance(data, dict) else []
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("path"), str) and node["path"]:
            paths.append(node["path"])
        stack.extend(node.get("children") or ())
    return sorted(paths)
