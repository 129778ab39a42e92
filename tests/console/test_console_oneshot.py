"""``elixirscope console -c``: each command against a real socket, exit codes, --json."""

from __future__ import annotations

import json

import pytest

from elixirscope.transport import free_tcp_port


def test_status_prints_the_header_and_a_row_per_layer(daemon, console):
    result = console("--connect", daemon.endpoint, "-c", "status")
    assert result.code == 0 and result.err == ""
    lines = result.out.splitlines()
    assert lines[0].split() == ["node", "es-test@localhost"]
    assert lines[2].split()[:3] == ["uptime", "1h", "02m"]
    assert lines[6].split() == ["LAYER", "PATH", "STATUS", "PID", "RESTARTS"]
    assert lines[8].split() == ["capture", "capture", "running", "4303", "0"]


def test_the_console_sends_to_the_app_layer_as_console_with_its_timeout(daemon, console):
    console("--connect", daemon.endpoint, "--timeout", "2.5", "-c", "status")
    [request] = daemon.fake.received
    assert (request.operation, request.to_layer, request.from_layer, request.timeout) == (
        "status",
        "app",
        "console",
        2.5,
    )


def test_tree_indents_children_under_their_supervisor(daemon, console):
    result = console("--connect", daemon.endpoint, "-c", "tree")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == "node es-test@localhost"
    assert lines[2].split() == [
        "PATH", "KIND", "STRATEGY", "RESTART", "PID", "RESTARTS", "STATUS"
    ]  # fmt: skip
    assert lines[3].split() == [
        "app",
        "supervisor",
        "rest_for_one",
        "permanent",
        "4242",
        "0",
        "running",
    ]
    assert lines[4].startswith("  foundation ")
    assert lines[5].startswith("    foundation/config ")
    assert lines[5].split()[1:] == ["worker", "-", "permanent", "4301", "0", "running"]


def test_layers_is_a_table_with_strategies(daemon, console):
    result = console("--connect", daemon.endpoint, "-c", "layers")
    assert result.code == 0
    assert [line.split()[2] for line in result.out.splitlines()[1:]] == [
        "one_for_one",
        "one_for_all",
        "one_for_one",
    ]


def test_stats_flattens_nested_metrics_per_layer(daemon, console):
    result = console("--connect", daemon.endpoint, "-c", "stats")
    assert result.code == 0
    assert result.out.splitlines() == [
        "capture",
        "  events_in     1200",
        "  batches       12",
        "  writer.queue  3",
        "  writer.lag_s  0.25",
        "query",
        "  queries  7",
    ]


def test_stats_of_one_layer_sends_it_and_shows_only_it(daemon, console):
    result = console("--connect", daemon.endpoint, "-c", "stats query")
    assert result.out == "query\n  queries  7\n"
    assert daemon.fake.received[0].params == {"layer": "query"}


def test_config_get_shows_value_and_source(daemon, console):
    result = console("--connect", daemon.endpoint, "-c", "config get capture.overflow")
    assert (result.code, result.out) == (0, 'capture.overflow = "drop_oldest"  (source: default)\n')


def test_config_set_shows_old_and_new(daemon, console):
    result = console("--connect", daemon.endpoint, "-c", "config set capture.batch_size 500")
    assert (result.code, result.out) == (0, "capture.batch_size: 100 -> 500\n")
    assert daemon.fake.config["capture"]["batch_size"] == 500


@pytest.mark.parametrize(
    ("line", "code", "message"),
    [
        (
            "config set capture.overflow block",
            "not_updatable",
            "capture.overflow cannot change at run time; "
            "updatable keys: capture.batch_size, foundation.log_level",
        ),
        (
            "config set capture.batch_size lots",
            "invalid_value",
            "Expected a positive `int`, got 'lots' - at `capture.batch_size`",
        ),
        ("config set capture.nope 1", "unknown_key", "No config key 'capture.nope'"),
        ("restart capture/nope", "not_found", "No actor at 'capture/nope'; see 'tree'"),
    ],
)
def test_error_responses_exit_1_with_code_and_message_on_stderr(
    daemon, console, line, code, message
):
    result = console("--connect", daemon.endpoint, "-c", line)
    assert (result.code, result.out, result.err) == (1, "", f"error {code}: {message}\n")


@pytest.mark.parametrize(
    ("command", "new_pid"), [("restart", "4308"), ("kill", "-"), ("terminate", "-")]
)
def test_lifecycle_commands_show_the_pid_before_and_after(daemon, console, command, new_pid):
    result = console("--connect", daemon.endpoint, "-c", f"{command} capture/ingest")
    assert (result.code, result.out) == (0, f"{command} capture/ingest (pid 4304 -> {new_pid})\n")
    assert daemon.fake.received[0].params == {"path": "capture/ingest"}


def test_send_prints_the_whole_response(daemon, console):
    result = console("--connect", daemon.endpoint, "-c", 'send query run {"limit": 3}')
    assert result.code == 0
    response = json.loads(result.out)
    assert (response["status"], response["from_layer"], response["data"]) == (
        "ok",
        "query",
        [0, 1, 2],
    )
    request = daemon.fake.received[0]
    assert (request.to_layer, request.operation, request.params) == ("query", "run", {"limit": 3})


def test_send_with_an_error_prints_the_response_and_exits_1(daemon, console):
    result = console("--connect", daemon.endpoint, "-c", 'send query run {"limit": "3"}')
    assert result.code == 1
    assert json.loads(result.out)["error"]["code"] == "invalid_params"
    assert result.err == (
        "error invalid_params: Invalid params for 'run': "
        "Expected `int`, got `str` - at `$.params.limit`\n"
    )


def test_json_prints_the_data(daemon, console):
    result = console("--connect", daemon.endpoint, "--json", "-c", "status")
    data = json.loads(result.out)
    assert result.code == 0
    assert data["node"] == "es-test@localhost"
    assert [layer["name"] for layer in data["layers"]] == ["foundation", "capture", "query"]


def test_json_prints_the_error_and_exits_1(daemon, console):
    result = console("--connect", daemon.endpoint, "--json", "-c", "kill nowhere")
    assert result.code == 1 and result.err == ""
    assert json.loads(result.out) == {
        "error": {
            "code": "not_found",
            "message": "No actor at 'nowhere'; see 'tree'",
            "details": {},
        }
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("stauts", "unknown command 'stauts'; did you mean 'status'? (type 'help' for the list)\n"),
        (
            "restart",
            "wrong number of arguments for 'restart' (expected 1, got 0)\nusage: restart PATH\n",
        ),
    ],
)
def test_usage_errors_exit_2_and_send_nothing(daemon, console, line, message):
    result = console("--connect", daemon.endpoint, "-c", line)
    assert (result.code, result.out, result.err) == (2, "", message)
    assert daemon.fake.received == []


def test_an_unreachable_daemon_exits_3_with_what_to_do(console):
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    # nothing listens: said at once (a wait of 60 s would otherwise run), as what it is
    result = console("--connect", endpoint, "--timeout", "60", "-c", "status")
    assert (result.code, result.out) == (3, "")
    assert result.err == (
        f"no daemon at {endpoint}: the connection was refused (start one with "
        "`elixirscope daemon`, or pass --connect)\n"
    )


def test_params_the_daemon_refuses_come_back_as_invalid_params(daemon, console):
    result = console("--connect", daemon.endpoint, "-c", 'send app stats {"layer": 7}')
    assert result.code == 1
    assert result.err == (
        "error invalid_params: Invalid params for 'stats': "
        "Expected `str | None`, got `7` - at `$.params.layer`\n"
    )


def test_a_bad_endpoint_is_a_usage_error(console):
    result = console("--connect", "tcp://nowhere", "-c", "status")
    assert result.code == 2
    assert result.err.startswith("elixirscope console: --connect: ")


def test_a_bad_timeout_is_refused_by_argparse(console, capsys):
    with pytest.raises(SystemExit) as exit_info:
        console("--timeout", "0", "-c", "status")
    assert exit_info.value.code == 2
    assert "expected a positive number of seconds, got '0'" in capsys.readouterr().err


def test_help_and_quit_run_without_a_daemon(console):
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    helped = console("--connect", endpoint, "--timeout", "0.1", "-c", "help restart")
    assert helped.code == 0 and helped.out.startswith("usage: restart PATH\n")
    assert console("--connect", endpoint, "-c", "quit").code == 0
