"""The AI layer's engine (AIService) answers ``insights`` and ``explain`` Requests as the
data dir's own reports do, and bad params with an error that names them; the console's
commands become those Requests. (A daemon's tree starts it: tests/app checks every layer
runs.)"""

from __future__ import annotations

import json

from elixirscope.actors.ai_service import AIService
from programs import elixirscope

from elixirscope.console.commands import parse_command
from elixirscope.contracts import Request


def test_the_ai_layer_answers_insights_and_explain(runtime, recorded, tmp_path) -> None:
    data = recorded["crash_loop"]
    config = tmp_path / "es.toml"
    config.write_text("[insights]\ncrash_loop_crashes = 3\n")
    service = runtime.start(AIService, {"layer": "ai", "role": "planner", "data_dir": str(data),
                                        "config_args": {"user_file": str(config), "env": {}}})

    def ask(operation: str, **params):
        return runtime.call(service, Request(operation=operation, to_layer="ai", params=params),
                            timeout=60)

    response = ask("insights")
    assert response.ok, response.error
    local = elixirscope("insights", "--data-dir", str(data), "--json", cwd=tmp_path)
    assert json.loads(json.dumps(response.data["findings"])) == json.loads(local.stdout)["findings"]
    assert sorted(f["kind"] for f in response.data["findings"]) == ["crash_loop", "restart_storm"]
    first = response.data["findings"][0]
    explained = ask("explain", target=first["id"])
    assert explained.ok and explained.data["target"]["finding"] == first["id"]
    assert explained.data["answer"].startswith(first["title"])
    for operation, params, message in [
        ("explain", {"target": "nonsense"}, "cannot explain 'nonsense'"),
        ("explain", {}, "explain needs params {'target': EVENT_OR_FINDING}"),
        ("explain", {"target": "1", "colour": "red"}, "explain takes params target, run, producer"),
        ("insights", {"colour": "red"}, "insights takes params run; got ['colour']"),
        ("insights", {"run": "zzz"}, "no run 'zzz'"),
    ]:
        bad = ask(operation, **params)
        assert not bad.ok and bad.error.code == "invalid_params" and message in bad.error.message
    assert ask("health").ok


def test_console_commands_ask_the_ai_layer() -> None:
    insights = parse_command("insights 4f2a")
    assert (insights.to_layer, insights.operation, insights.params) == ("ai", "insights", {"run": "4f2a"})
    explain = parse_command("explain F12ab run=4f2a provider=offline")
    assert (explain.to_layer, explain.operation, explain.params) == (
        "ai", "explain", {"target": "F12ab", "run": "4f2a", "provider": "offline"})
