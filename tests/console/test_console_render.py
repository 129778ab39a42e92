"""Rendering Responses: shapes the daemon promises, and shapes it breaks."""

from __future__ import annotations

import json

from elixirscope.console.render import error_line, render_json, render_text
from elixirscope.contracts import ErrorInfo, Response


def _ok(data, status="ok") -> Response:
    return Response(id="r1", status=status, from_layer="app", data=data)


def test_an_unexpected_shape_is_shown_as_json_with_a_note_not_a_traceback():
    text = render_text("status", _ok({"node": "n"}))
    assert text.startswith(
        "(the daemon's answer to 'status' is not in the expected shape (KeyError"
    )
    assert json.loads(text.split("\n", 1)[1]) == {"node": "n"}


def test_config_values_are_json_so_strings_and_numbers_differ():
    text = render_text("config_get", _ok({"path": "a.b", "value": "5", "source": "env"}))
    assert text == 'a.b = "5"  (source: env)'


def test_config_set_of_a_missing_old_value_shows_null():
    assert render_text("config_set", _ok({"path": "a", "old": None, "new": 1})) == "a: null -> 1"


def test_a_partial_answer_says_so():
    text = render_text("stats", _ok({"layers": {"ai": {"calls": 1.5}}}, status="partial"))
    assert text == "ai\n  calls  1.5\n(partial answer: the daemon says more may follow)"


def test_empty_stats_say_there_are_none():
    assert render_text("stats", _ok({"layers": {}})) == "(no stats reported)"
    assert render_text("stats", _ok({"layers": {"ai": {}}})) == "ai\n  (no metrics)"


def test_stats_end_with_the_queue_lengths_per_actor_path():
    data = {"layers": {"ai": {"ai/planner": {"mailbox_depth": 2}}},
            "mailboxes": {"": {"depth": 0, "max": 1, "outbox": 0, "outbox_max": 3},
                          "ai/planner": {"depth": 2, "max": 7}}}
    assert render_text("stats", _ok(data)).splitlines()[2:] == [
        "",
        "MAILBOX OF  WAITING  MAX  OUTBOX  OUTBOX MAX",
        "(root)      0        1    0       3",
        "ai/planner  2        7    -       -",
    ]


def test_json_of_an_error_has_code_message_and_details():
    response = Response(
        id="r1",
        status="error",
        from_layer="app",
        error=ErrorInfo(code="not_found", message="no", details={"path": "x"}),
    )
    assert json.loads(render_json(response)) == {
        "error": {"code": "not_found", "message": "no", "details": {"path": "x"}}
    }
    assert error_line(response) == "error not_found: no"


def test_an_error_response_without_error_info_still_reads_as_an_error():
    response = Response(id="r1", status="error", from_layer="app")
    assert error_line(response).startswith("error unknown_error: ")
    assert json.loads(render_json(response))["error"]["code"] == "unknown_error"


def test_bytes_in_data_become_base64_json():
    assert json.loads(render_json(_ok({"blob": b"\x00\x01"}))) == {"blob": "AAE="}


def test_status_from_a_stale_view_says_how_old_and_why():
    layer = {"name": "foundation", "path": "foundation", "status": "running", "pid": 7, "restarts": 0}
    data = {"node": "n", "pid": 1, "uptime_s": 5.0, "started_at": 0.0, "endpoint": "tcp://x:1",
            "base": "multiprocTCPBase", "layers": [layer], "store": None,
            "layers_stale": {"reason": "the application supervisor did not answer: no reply "
                             "within 0.5 s", "read_at": 0.0, "age_s": 2.0}}
    text = render_text("status", _ok(data))
    assert text.endswith("layers as of 2.0 s ago: the application supervisor did not answer: "
                         "no reply within 0.5 s")
    del data["layers_stale"]
    assert "layers as of" not in render_text("status", _ok(data))
