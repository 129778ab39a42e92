"""Parsing console lines: one Request per daemon command, errors that teach."""

from __future__ import annotations

import pytest

from elixirscope.console import COMMANDS, LocalCommand, UsageError, parse_command
from elixirscope.console.commands import complete, help_text, nearest
from elixirscope.contracts import Request


def _sent(line: str) -> tuple[str, str, str, dict]:
    request = parse_command(line)
    assert isinstance(request, Request)
    return request.to_layer, request.operation, request.from_layer, request.params


def _usage_error(line: str) -> str:
    with pytest.raises(UsageError) as info:
        parse_command(line)
    return str(info.value)


@pytest.mark.parametrize(
    ("line", "operation", "params"),
    [
        ("status", "status", {}),
        ("tree", "tree", {}),
        ("layers", "layers", {}),
        ("stats", "stats", {"layer": None}),
        ("stats capture", "stats", {"layer": "capture"}),
        ("config get capture.batch_size", "config_get", {"path": "capture.batch_size"}),
        (
            "config set capture.batch_size 500",
            "config_set",
            {"path": "capture.batch_size", "value": "500"},
        ),
        ("restart capture/ingest", "restart", {"path": "capture/ingest"}),
        ("terminate capture/ingest", "terminate", {"path": "capture/ingest"}),
        ("kill capture/ingest", "kill", {"path": "capture/ingest"}),
        ("  status   ", "status", {}),
    ],
)
def test_daemon_commands_become_app_requests_from_the_console(line, operation, params):
    assert _sent(line) == ("app", operation, "console", params)


def test_config_set_takes_the_rest_of_the_line_verbatim_as_the_value():
    assert _sent('config set foundation.tags ["a b",  "c"]')[3] == {
        "path": "foundation.tags",
        "value": '["a b",  "c"]',
    }


def test_send_goes_to_the_named_layer_with_json_params():
    assert _sent('send query run {"q": "a  b", "limit": 10}') == (
        "query",
        "run",
        "console",
        {"q": "a  b", "limit": 10},
    )


def test_calltree_with_a_chain_asks_for_it_and_without_one_for_the_runs_chains():
    assert _sent("calltree 5f0c2a") == ("query", "calltree", "console", {"correlation": "5f0c2a"})
    assert _sent("calltree") == ("query", "calltree", "console", {})
    assert _usage_error("calltree a b") == (
        "wrong number of arguments for 'calltree' (expected 0 to 1, got 2)\nusage: calltree [CORRELATION_ID]"
    )


def test_send_without_params_sends_an_empty_object():
    assert _sent("send capture flush") == ("capture", "flush", "console", {})


def test_help_and_quit_are_local():
    assert parse_command("help") == LocalCommand("help")
    assert parse_command("help config set") == LocalCommand("help", "config set")
    assert parse_command("quit") == LocalCommand("quit")
    assert parse_command("exit") == LocalCommand("quit")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("stauts", "unknown command 'stauts'; did you mean 'status'? (type 'help' for the list)"),
        ("lyaers", "unknown command 'lyaers'; did you mean 'layers'? (type 'help' for the list)"),
        ("frobnicate", "unknown command 'frobnicate' (type 'help' for the list)"),
        (
            "config gte a.b",
            "unknown command 'config gte'; did you mean 'config get'? "
            "(type 'help config' for its subcommands)",
        ),
        (
            "config",
            "'config' needs a subcommand\nusage: config get PATH\n       config set PATH VALUE",
        ),
        ("", "empty command; type 'help' for the list"),
    ],
)
def test_unknown_commands_suggest_the_nearest(line, message):
    assert _usage_error(line) == message


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("status now", "wrong number of arguments for 'status' (expected 0, got 1)\nusage: status"),
        (
            "stats a b",
            "wrong number of arguments for 'stats' (expected 0 to 1, got 2)\nusage: stats [LAYER]",
        ),
        (
            "config get",
            "wrong number of arguments for 'config get' (expected 1, got 0)\nusage: config get PATH",
        ),
        (
            "config set a.b",
            "wrong number of arguments for 'config set' (expected 2, got 1)\n"
            "usage: config set PATH VALUE",
        ),
        ("kill a b", "wrong number of arguments for 'kill' (expected 1, got 2)\nusage: kill PATH"),
        (
            "send query",
            "wrong number of arguments for 'send' (expected 2 to 3, got 1)\n"
            "usage: send LAYER OPERATION [JSON-PARAMS]",
        ),
        ("quit now", "wrong number of arguments for 'quit' (expected 0, got 1)\nusage: quit"),
    ],
)
def test_wrong_argument_counts_show_the_usage_line(line, message):
    assert _usage_error(line) == message


def test_invalid_json_params_point_at_the_error():
    assert _usage_error('send query run {"limit": 10,}') == (
        "invalid JSON params: Expecting property name enclosed in double quotes at column 14\n"
        '  {"limit": 10,}\n'
        "               ^\n"
        'params are one JSON object, e.g. send query run {"limit": 10}'
    )


def test_json_params_must_be_an_object():
    assert _usage_error("send query run [1, 2]").startswith(
        "JSON params must be an object, got an array: [1, 2]\n"
    )


def test_every_command_has_usage_summary_and_a_parsable_example():
    for name, command in COMMANDS.items():
        assert command.usage.startswith(name) and command.summary
        parse_command(command.example)


def test_help_lists_every_command_and_explains_one_or_a_group():
    listing = help_text()
    assert all(command.usage in listing for command in COMMANDS.values())
    assert help_text("restart").startswith("usage: restart PATH\n")
    assert [line for line in help_text("config").splitlines() if line.startswith("usage")] == [
        "usage: config get PATH",
        "usage: config set PATH VALUE",
    ]


def test_help_for_an_unknown_topic_suggests_one():
    with pytest.raises(UsageError, match="no help for 'kil'; did you mean 'kill'"):
        help_text("kil")


def test_nearest_prefers_a_swap_over_a_deletion_and_gives_up_when_far():
    assert nearest("stauts", ["stats", "status"]) == "status"
    assert nearest("zz", ["tree", "kill"]) is None


def test_completion_offers_commands_then_what_each_argument_takes():
    sources = {"layer": lambda: ["capture", "query"], "path": lambda: ["capture/ingest"]}
    assert complete("", "st", sources) == ["state", "stats", "status"]
    assert complete("config ", "s", sources) == ["set"]
    assert complete("stats ", "c", sources) == ["capture"]
    assert complete("send ", "", sources) == ["capture", "query"]
    assert complete("send query ", "", sources) == []
    assert complete("restart ", "cap", sources) == ["capture/ingest"]
    assert complete("help ", "ki", sources) == ["kill"]
    assert complete("nonsense ", "", sources) == []


def test_completion_asks_a_source_only_when_its_kind_is_wanted():
    def boom():
        raise AssertionError("asked")

    assert complete("stats ", "", {"layer": lambda: ["ai"], "path": boom}) == ["ai"]


@pytest.mark.parametrize("line", ["trace 'app.*' args", 'trace "app.*" args', "trace app.* args"])
def test_a_trace_pattern_quoted_as_in_a_shell_is_the_pattern(line):
    request = parse_command(line)
    assert isinstance(request, Request)
    assert request.params == {"pattern": "app.*", "level": "args"}
    assert parse_command("untrace 'app.*'").params == {"pattern": "app.*"}  # type: ignore[union-attr]


def test_a_pattern_with_one_quote_is_refused_naming_it():
    with pytest.raises(UsageError, match="unbalanced quote in the pattern \"'app.*\""):
        parse_command("trace 'app.* args")
