"""The console's command language: the table of commands, parsing, help, completion.

The contract::

    parse_command(line: str) -> Request | LocalCommand     # raises UsageError

* a daemon command -> the ``Request`` to send (``to_layer="app"`` and
  ``from_layer="console"``, except ``send``, which goes to the layer named);
* ``help`` / ``quit`` / ``exit`` -> a :class:`LocalCommand`, answered without the
  daemon;
* anything else -> :class:`UsageError`, whose message teaches: the nearest
  command name, the usage line of the command given, or the position of a JSON
  syntax error.

Words are split on whitespace, with no shell quoting: the last argument of
``config set`` (VALUE) and of ``send`` (JSON-PARAMS) is the rest of the line,
taken verbatim, so ``send query run {"q": "a b"}`` needs no quotes.

Parsing touches no socket and no global state, so it is tested on its own and
shared by the REPL and ``-c`` one-shot mode.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from elixirscope.contracts import Request

__all__ = [
    "APP",
    "COMMANDS",
    "FROM_LAYER",
    "LAYERS",
    "Command",
    "LocalCommand",
    "UsageError",
    "app_request",
    "complete",
    "help_text",
    "nearest",
    "parse",
    "parse_command",
]

APP = "app"
"""The layer that answers the console's own operations (the daemon's API endpoint)."""

FROM_LAYER = "console"

LAYERS = (
    "foundation",
    "capture",
    "instrumentation",
    "state_tracing",
    "code_analysis",
    "query",
    "visualization",
    "ai",
    "api",
)
"""Layer names known when this console was built; used for completion only."""

Renderer = Literal[
    "status",
    "tree",
    "layers",
    "stats",
    "config_get",
    "config_set",
    "lifecycle",
    "response",
    "text",
    "local",
]


class UsageError(ValueError):
    """A line that is not a valid command; the message says what to type instead.

    ``command`` is the command it was meant for, when known (``""`` otherwise).
    In one-shot mode this is exit status 2; in the REPL it is printed and the
    loop goes on.
    """

    def __init__(self, message: str, command: str = "") -> None:
        super().__init__(message)
        self.command = command


@dataclass(frozen=True, slots=True)
class LocalCommand:
    """A command the console answers itself: ``help [COMMAND]``, ``quit``, or
    ``replay TARGET [change=N]`` (the session steps through a target's states,
    one StateTracing Request per step; ``topic`` is the target)."""

    name: Literal["help", "quit", "replay"]
    topic: str | None = None
    change: int = 1


Build = Callable[[Sequence[str]], "Request | LocalCommand"]


@dataclass(frozen=True, slots=True)
class Command:
    """One entry of the command table.

    ``params`` are the argument names shown in the usage line; the last
    ``optional`` of them may be left out. When ``rest`` is true the last
    argument takes the rest of the line verbatim. ``complete`` names what to
    offer for each argument position (``"layer"``, ``"config"``,
    ``"updatable"`` (config keys that can change at run time), ``"path"``,
    ``"command"`` or ``""`` for nothing).
    """

    name: str
    params: tuple[str, ...]
    summary: str
    details: str
    example: str
    build: Build
    renderer: Renderer
    optional: int = 0
    rest: bool = False
    complete: tuple[str, ...] = ()

    @property
    def usage(self) -> str:
        required = self.params[: len(self.params) - self.optional]
        optional = [f"[{p}]" for p in self.params[len(required) :]]
        return " ".join([self.name, *required, *optional])

    def parse_args(self, text: str) -> Request | LocalCommand:
        """Split ``text`` (the line after the command name) and build the result."""
        if self.rest and self.params:
            args = text.split(None, len(self.params) - 1)
        else:
            args = text.split()
        low, high = len(self.params) - self.optional, len(self.params)
        if not low <= len(args) <= high:
            expected = str(low) if low == high else f"{low} to {high}"
            raise UsageError(
                f"wrong number of arguments for '{self.name}' "
                f"(expected {expected}, got {len(args)})\nusage: {self.usage}",
                self.name,
            )
        return self.build(args)


# ------------------------------------------------------------------ builders


def app_request(operation: str, **params: object) -> Request:
    """A Request for the daemon's own ``operation`` (to the ``app`` layer, from the console)."""
    return Request(operation=operation, to_layer=APP, params=params, from_layer=FROM_LAYER)


def _no_params(operation: str) -> Build:
    return lambda args: app_request(operation)


def _path_op(operation: str) -> Build:
    return lambda args: app_request(operation, path=args[0])


def _stats(args: Sequence[str]) -> Request:
    return app_request("stats", layer=args[0] if args else None)


def _config_set(args: Sequence[str]) -> Request:
    return app_request("config_set", path=args[0], value=args[1])


def _send(args: Sequence[str]) -> Request:
    layer, operation = args[0], args[1]
    params = _json_params(args[2]) if len(args) == 3 else {}
    return Request(operation=operation, to_layer=layer, params=params, from_layer=FROM_LAYER)


def _pattern(word: str) -> str:
    """A trace pattern as written, quoted as a shell would have it (``'app.*'``) or not:
    quotes are no part of a module's or function's name."""
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        return word[1:-1]
    if word[:1] in "'\"" or word[-1:] in "'\"":
        raise UsageError(f"unbalanced quote in the pattern {word!r}", "trace")
    return word


def _trace(args: Sequence[str]) -> Request:
    params: dict[str, object] = {"pattern": _pattern(args[0])}
    if len(args) > 1:
        params["level"] = args[1]
    return Request(
        operation="trace", to_layer="instrumentation", params=params, from_layer=FROM_LAYER
    )


def _untrace(args: Sequence[str]) -> Request:
    params = {"all": True} if args[0] == "--all" else {"pattern": _pattern(args[0])}
    return Request(
        operation="untrace", to_layer="instrumentation", params=params, from_layer=FROM_LAYER
    )


def _traced(args: Sequence[str]) -> Request:
    return Request(operation="traced", to_layer="instrumentation", from_layer=FROM_LAYER)


EVENT_FILTERS = (
    "correlation",
    "function",
    "actor",
    "type",
    "since",
    "until",
    "limit",
    "run",
    "all_runs",
)


def _events(args: Sequence[str]) -> Request:
    params: dict[str, object] = {}
    for word in " ".join(args).split():
        key, eq, value = word.partition("=")
        if not eq or key not in EVENT_FILTERS or not value:
            raise UsageError(
                f"events takes KEY=VALUE filters ({', '.join(EVENT_FILTERS)}); got {word!r}\n"
                "e.g. events function=myapp.* type=exception limit=20",
                "events",
            )
        if key == "all_runs":
            params[key] = value.lower() in ("1", "true", "yes")
        else:
            params[key] = int(value) if key == "limit" and value.isdigit() else value
    return Request(operation="events", to_layer="query", params=params, from_layer=FROM_LAYER)


def _calltree(args: Sequence[str]) -> Request:
    return Request(
        operation="calltree",
        to_layer="query",
        params={"correlation": args[0]} if args else {},  # none: the latest run's chains
        from_layer=FROM_LAYER,
    )


STATE_OPTIONS = {
    "state": ("at", "event", "change", "before_crash", "field", "run", "all_runs"),
    "history": ("field", "limit", "run", "all_runs"),
    "why": ("at", "event", "change", "run", "all_runs"),
    "diff-state": ("field", "run", "all_runs"),
}
"""The KEY=VALUE options each state command takes (``elixirscope state --help`` explains them)."""
_STATE_OPERATIONS = {"state": "state", "history": "history", "why": "why", "diff-state": "diff"}
_WHOLE = {"event", "change", "limit"}
_FLAGS = {"before_crash", "all_runs"}
_YES, _NO = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _state_read(name: str, positional: tuple[str, ...]) -> Build:
    """A state command: its positional words, then KEY=VALUE options, to the StateTracing layer."""
    options = STATE_OPTIONS[name]

    def build(args: Sequence[str]) -> Request:
        words = " ".join(args).split()
        params: dict[str, object] = dict(zip(positional, words[: len(positional)], strict=True))
        if name == "history":
            params["limit"] = 50  # as `elixirscope history`
        for word in words[len(positional) :]:
            key, eq, value = word.partition("=")
            key = key.replace("-", "_")
            if key in _FLAGS and not eq:
                value = "yes"
            elif not eq or key not in options or not value:
                raise UsageError(
                    f"{name} takes KEY=VALUE options ({', '.join(options)}); got {word!r}\n"
                    f"usage: {COMMANDS[name].usage}",
                    name,
                )
            if key in _WHOLE:
                if not value.isdigit():
                    raise UsageError(f"{name}: {key} takes a whole number, got {value!r}", name)
                params[key] = int(value)
            elif key in _FLAGS:
                if value.lower() not in _YES + _NO:
                    raise UsageError(f"{name}: {key} takes yes or no, got {value!r}", name)
                params[key] = value.lower() in _YES
            else:
                params[key] = value
        return Request(
            operation=_STATE_OPERATIONS[name],
            to_layer="state_tracing",
            params=params,
            from_layer=FROM_LAYER,
        )

    return build


def _replay(args: Sequence[str]) -> LocalCommand:
    words = " ".join(args).split()
    change = 1
    for word in words[1:]:
        key, eq, value = word.partition("=")
        if key != "change" or not eq or not value.isdigit() or int(value) < 1:
            raise UsageError(
                f"replay takes change=N (a whole number from 1); got {word!r}\n"
                f"usage: {COMMANDS['replay'].usage}",
                "replay",
            )
        change = int(value)
    return LocalCommand("replay", words[0], change)


def _query(args: Sequence[str]) -> Request:
    return Request(
        operation="esql", to_layer="query", params={"query": args[0]}, from_layer=FROM_LAYER
    )


def _insights(args: Sequence[str]) -> Request:
    params = {"run": args[0]} if args else {}
    return Request(operation="insights", to_layer="ai", params=params, from_layer=FROM_LAYER)


def _explain(args: Sequence[str]) -> Request:
    params: dict[str, object] = {"target": args[0]}
    for word in " ".join(args[1:]).split():
        key, eq, value = word.partition("=")
        if not eq or key not in ("run", "producer", "provider") or not value:
            raise UsageError(
                f"explain takes run=ID, producer=P or provider=NAME after its target, "
                f"got {word!r}\nusage: {COMMANDS['explain'].usage}",
                "explain",
            )
        params[key] = value
    return Request(operation="explain", to_layer="ai", params=params, from_layer=FROM_LAYER)


def _json_params(text: str) -> dict:
    """``text`` as a JSON object, or a UsageError pointing at the broken character."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"invalid JSON params: {exc.msg} at column {exc.colno}\n"
            f"  {text}\n  {' ' * (exc.colno - 1)}^\n"
            'params are one JSON object, e.g. send query run {"limit": 10}',
            "send",
        ) from None
    if not isinstance(value, dict):
        raise UsageError(
            f"JSON params must be an object, got {_json_kind(value)}: {text}\n"
            'e.g. send query run {"limit": 10}',
            "send",
        )
    return value


def _json_kind(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _help(args: Sequence[str]) -> LocalCommand:
    return LocalCommand("help", " ".join(args) or None)


def _quit(args: Sequence[str]) -> LocalCommand:
    return LocalCommand("quit")


# --------------------------------------------------------------------- table

_LIFECYCLE = {
    "restart": "restart the actor at PATH",
    "terminate": "stop the actor at PATH in an orderly way",
    "kill": "kill the actor at PATH at once (brutal_kill)",
}

_TABLE: tuple[Command, ...] = (
    Command(
        "status",
        (),
        "node, pid, uptime and the state of each layer",
        "Shows the daemon's node name, OS pid, uptime, endpoint and actor system base, "
        "then one row per layer: path, status, pid and restart count.",
        "status",
        _no_params("status"),
        "status",
    ),
    Command(
        "tree",
        (),
        "the whole supervision tree",
        "One line per supervisor and worker, indented under its parent: path, kind, "
        "strategy, restart type, pid, restart count and state. The paths are what "
        "restart, terminate and kill take.",
        "tree",
        _no_params("tree"),
        "tree",
    ),
    Command(
        "layers",
        (),
        "the layer supervisors and their strategies",
        "One row per layer: name, path, strategy, status and pid.",
        "layers",
        _no_params("layers"),
        "layers",
    ),
    Command(
        "stats",
        ("LAYER",),
        "metrics of every layer, or of LAYER",
        "Counters and gauges per layer, as key/value lines; nested metrics are "
        "joined with dots (writer.queue).",
        "stats capture",
        _stats,
        "stats",
        optional=1,
        complete=("layer",),
    ),
    Command(
        "config get",
        ("PATH",),
        "a configuration value and where it came from",
        "PATH is dotted, e.g. capture.batch_size. Shows the value (as JSON) and its "
        "source (default, a file, the environment, or a config set).",
        "config get capture.batch_size",
        _path_op("config_get"),
        "config_get",
        complete=("config",),
    ),
    Command(
        "config set",
        ("PATH", "VALUE"),
        "change a configuration value at run time",
        "VALUE is the rest of the line, verbatim; the daemon parses and validates it. "
        "Only some keys can change at run time: the daemon names them when it "
        "refuses one (error not_updatable).",
        "config set capture.batch_size 500",
        _config_set,
        "config_set",
        rest=True,
        complete=("updatable",),
    ),
    Command(
        "send",
        ("LAYER", "OPERATION", "JSON-PARAMS"),
        "any operation to any layer; prints the whole Response",
        "LAYER is a layer (its front actor answers) or one actor's path, like "
        "foundation/event_store. JSON-PARAMS is one JSON object, the rest of the line "
        "verbatim (no quoting needed); it defaults to {}. The Response is printed as "
        "it came back.",
        'send query run {"limit": 10}',
        _send,
        "response",
        optional=1,
        rest=True,
        complete=("layer",),
    ),
    Command(
        "trace",
        ("PATTERN", "LEVEL"),
        "record matching code in every connected host, now",
        "PATTERN is a glob over module or module.qualname (myapp.*, myapp.Cart.add); "
        "LEVEL is boundaries (the default), args or full. Code already loaded is "
        "re-instrumented in place, without a restart; untrace reverses it exactly. "
        "Hosts that connect later follow the same rules.",
        "trace myapp.orders.* args",
        _trace,
        "text",
        optional=1,
    ),
    Command(
        "untrace",
        ("PATTERN",),
        "stop recording code traced with trace PATTERN (--all for every rule)",
        "The functions get their original code back in every connected host.",
        "untrace myapp.orders.*",
        _untrace,
        "text",
    ),
    Command(
        "traced",
        (),
        "the runtime trace rules in force, and how many hosts follow them",
        "One rule per pattern, with its level and sampling rate.",
        "traced",
        _traced,
        "text",
    ),
    Command(
        "events",
        ("FILTERS",),
        "the newest recorded events of the latest run (KEY=VALUE filters; run=ID, all_runs=yes)",
        f"Filters: {', '.join(EVENT_FILTERS)}. function is a glob over module.qualname; "
        "type is call, return, exception, state, send, receive, ... ; since/until take "
        "ISO times or 10m / 2h / 1d ago.",
        "events function=myapp.* type=exception limit=20",
        _events,
        "text",
        optional=1,
        rest=True,
    ),
    Command(
        "calltree",
        ("CORRELATION_ID",),
        "the nested calls of one correlation chain, with durations and values",
        "Shows every call of the chain indented under its caller: arguments, return "
        "value or exception, duration; state changes and messages inside the call. "
        "Without an id, the latest run's chains, each with what started it, to pick one.",
        "calltree 5f0c2a...",
        _calltree,
        "text",
        optional=1,
    ),
    Command(
        "state",
        ("TARGET", "OPTIONS"),
        "an actor's recorded state, now or at a moment (at=T, event=ID, change=N, before_crash)",
        f"TARGET is an actor's path or its last part. Options: {', '.join(STATE_OPTIONS['state'])}"
        "; field=PATH shows one field (tasks[3].assignee). The latest run unless run=ID or "
        "all_runs=yes. Same as `elixirscope state --daemon`.",
        "state desk before_crash field=orders",
        _state_read("state", ("target",)),
        "text",
        optional=1,
        rest=True,
    ),
    Command(
        "replay",
        ("TARGET", "OPTIONS"),
        "step through an actor's states: next, prev, goto N, show, diff, why FIELD, quit",
        "Enters the stepper (its prompt is replay[TARGET]>) at change 1, or change=N; each "
        "step asks the StateTracing layer, as `elixirscope replay --daemon` does. quit "
        "returns to the console.",
        "replay desk change=3",
        _replay,
        "local",
        optional=1,
        rest=True,
    ),
    Command(
        "history",
        ("TARGET", "OPTIONS"),
        "every change of an actor's state, or of one field (field=PATH, limit=N)",
        f"Options: {', '.join(STATE_OPTIONS['history'])}. limit=0 shows all (default 50: the "
        "last 50).",
        "history desk field=orders",
        _state_read("history", ("target",)),
        "text",
        optional=1,
        rest=True,
    ),
    Command(
        "why",
        ("TARGET", "FIELD", "OPTIONS"),
        "where the value of an actor's field came from, back across messages and actors",
        f"Options: {', '.join(STATE_OPTIONS['why'])} (the moment; default the latest).",
        "why desk orders",
        _state_read("why", ("target", "field")),
        "text",
        optional=1,
        rest=True,
    ),
    Command(
        "diff-state",
        ("TARGET", "A", "B", "OPTIONS"),
        "what differs in an actor's state between two moments",
        "A and B are moments: a change number (3), event:ID, before-crash, or a time. "
        f"Options: {', '.join(STATE_OPTIONS['diff-state'])}.",
        "diff-state desk 1 3",
        _state_read("diff-state", ("target", "a", "b")),
        "text",
        optional=1,
        rest=True,
    ),
    Command(
        "query",
        ("ESQL",),
        "ask the recording a question in ESQL (latest run; docs/esql.md)",
        "A query over every recorded event: calls, exceptions, states, messages, ... "
        "At most 1000 rows are shown. A bad query is pointed at with a caret.",
        "query calls of 'price' where return > 5 order by duration desc limit 10",
        _query,
        "text",
        rest=True,
    ),
    Command(
        "insights",
        ("RUN",),
        "findings in a run: N+1 queries or HTTP calls, row-by-row writes, races, latency anomalies, restart storms, crash "
        "loops, mailbox growth, slow or retried calls",
        "Runs every detector of the AI layer over the run (default: the latest; RUN is any "
        "unique prefix of its id) and lists the findings by severity, each with where, when, "
        "a fix and the commands to look further. Same as `elixirscope insights --daemon`.",
        "insights",
        _insights,
        "text",
        optional=1,
    ),
    Command(
        "explain",
        ("TARGET", "OPTIONS"),
        "explain an event (its id) or a finding (F...): offline rules, or a language model",
        "Options: run=ID, producer=P (when several processes recorded that event id), "
        "provider=offline|openai|gemini (default: ai.provider). The context is redacted "
        "before it leaves the daemon. Same as `elixirscope explain --daemon`.",
        "explain F1a2b3c4d5",
        _explain,
        "text",
        optional=1,
        rest=True,
    ),
    *(
        Command(
            name,
            ("PATH",),
            summary,
            f"{summary[0].upper()}{summary[1:]}. PATH is a path from 'tree', "
            "e.g. capture/ingest. Shows the pid before and after.",
            f"{name} capture/ingest",
            _path_op(name),
            "lifecycle",
            complete=("path",),
        )
        for name, summary in _LIFECYCLE.items()
    ),
    Command(
        "help",
        ("COMMAND",),
        "list the commands, or explain one",
        "help alone lists every command; help COMMAND shows its usage, what it does "
        "and an example.",
        "help config",
        _help,
        "local",
        optional=1,
        rest=True,
        complete=("command",),
    ),
    Command("quit", (), "leave the console (also exit, or Ctrl-D)", "", "quit", _quit, "local"),
    Command("exit", (), "leave the console (same as quit)", "", "exit", _quit, "local"),
)

COMMANDS: Mapping[str, Command] = {command.name: command for command in _TABLE}
"""Every command by its full name (``"config get"`` included), in help order."""

_GROUPS = {name.split()[0] for name in COMMANDS if " " in name}


# ------------------------------------------------------------------- parsing


def parse(line: str) -> tuple[Command, Request | LocalCommand]:
    """The command table entry ``line`` names and what it asks for; see the module doc."""
    words = line.strip().split(None, 1)
    if not words:
        raise UsageError("empty command; type 'help' for the list")
    name, rest = words[0], words[1] if len(words) > 1 else ""
    if name in _GROUPS:
        sub = rest.split(None, 1)
        if not sub:
            raise UsageError(_group_usage(name), name)
        name, rest = f"{name} {sub[0]}", sub[1] if len(sub) > 1 else ""
    command = COMMANDS.get(name)
    if command is None:
        raise UsageError(_unknown(name), name)
    return command, command.parse_args(rest)


def parse_command(line: str) -> Request | LocalCommand:
    """The ``Request`` to send for ``line``, or the LocalCommand it names."""
    return parse(line)[1]


def _unknown(name: str) -> str:
    group = name.split()[0] if " " in name else ""
    if group:
        candidates = [n for n in COMMANDS if n.startswith(group + " ")]
        hint = f"type 'help {group}' for its subcommands"
    else:
        candidates = [n.split()[0] for n in COMMANDS]
        hint = "type 'help' for the list"
    match = nearest(name.lower(), candidates)
    suggestion = f"; did you mean '{match}'?" if match else ""
    return f"unknown command '{name}'{suggestion} ({hint})"


def nearest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` is most likely a typo of, or None if none is close.

    Closest by edit distance counting a swap of neighbours as one edit (the
    commonest typo: stauts), then by length, so 'stauts' is 'status' rather
    than 'stats', which is also one edit away.
    """
    limit = max(1, len(word) // 3)
    scored = [
        (_typo_distance(word, c), abs(len(c) - len(word)), c) for c in dict.fromkeys(candidates)
    ]
    best = min(scored, default=None)
    return best[2] if best is not None and best[0] <= limit else None


def _typo_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insert, delete, substitute, swap neighbours."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[len(b)]


def _group_usage(group: str) -> str:
    lines = [COMMANDS[n].usage for n in COMMANDS if n.startswith(group + " ")]
    return f"'{group}' needs a subcommand\nusage: " + "\n       ".join(lines)


# ---------------------------------------------------------------------- help


def help_text(topic: str | None = None) -> str:
    """The command list, or the help of ``topic`` (a command or a group like ``config``)."""
    if not topic:
        width = max(len(c.usage) for c in COMMANDS.values())
        lines = [f"  {c.usage:<{width}}  {c.summary}" for c in COMMANDS.values()]
        return "commands:\n" + "\n".join(lines) + "\n\ntype 'help COMMAND' for details"
    topic = " ".join(topic.split())
    matches = [c for name, c in COMMANDS.items() if name == topic or name.startswith(topic + " ")]
    if not matches:
        raise UsageError(_unknown(topic).replace("unknown command", "no help for"), "help")
    return "\n\n".join(_one_help(c) for c in matches)


def _one_help(command: Command) -> str:
    lines = [f"usage: {command.usage}", f"  {command.summary}"]
    if command.details:
        lines.append(
            textwrap.fill(command.details, 78, initial_indent="  ", subsequent_indent="  ")
        )
    lines.append(f"  example: {command.example}")
    return "\n".join(lines)


# ---------------------------------------------------------------- completion


def complete(
    before: str, text: str, sources: Mapping[str, Callable[[], Iterable[str]]]
) -> list[str]:
    """Completions of the word ``text``, given the line ``before`` it.

    ``sources`` maps a kind (``"layer"``, ``"config"``, ``"path"``) to a function
    returning its candidates; it is called only when that kind is wanted, so a
    source that asks the daemon costs nothing until its completion is used.
    """
    words = before.split()
    if not words:
        return _starting(text, dict.fromkeys(n.split()[0] for n in COMMANDS))
    if words[0] in _GROUPS and len(words) == 1:
        subs = [n.split()[1] for n in COMMANDS if n.startswith(words[0] + " ")]
        return _starting(text, subs)
    name = " ".join(words[:2]) if words[0] in _GROUPS else words[0]
    command = COMMANDS.get(name)
    if command is None:
        return []
    position = len(words) - len(name.split())
    if position >= len(command.complete):
        return []
    kind = command.complete[position]
    if kind == "command":
        return _starting(text, dict.fromkeys(n.split()[0] for n in COMMANDS))
    source = sources.get(kind)
    return _starting(text, source()) if source else []


def _starting(text: str, candidates: Iterable[str]) -> list[str]:
    return sorted({c for c in candidates if c.startswith(text)})
