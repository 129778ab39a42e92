"""The AI layer's engine (AIService) answers ``insights`` and ``explain`` Requests as the
data dir's own reports do, and bad params with an error that names them; the console's
commands become those Requests. (A daemon's tree starts it: tests/app checks every layer
runs.)"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading

from elixirscope.actors.ai_service import AIService
from programs import elixirscope
from servers import serving
from test_providers import SSE, openai_chunks

from elixirscope.console.commands import parse_command
from elixirscope.contracts import Request
from elixirscope.query.runs import list_runs


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
    linked = ask("insights", ui_url="http://127.0.0.1:8765/?token=t")  # whole cinema links
    assert linked.ok, linked.error
    assert f"    open    http://127.0.0.1:8765/?token=t{first['cinema']}\n" in linked.data["text"]
    explained = ask("explain", target=first["id"])
    assert explained.ok and explained.data["target"]["finding"] == first["id"]
    assert explained.data["answer"].startswith(first["title"])
    for operation, params, message in [
        ("explain", {"target": "nonsense"}, "cannot explain 'nonsense'"),
        ("explain", {}, "explain needs params {'target': EVENT_OR_FINDING}"),
        ("explain", {"target": "1", "colour": "red"}, "explain takes params target, run, producer"),
        ("insights", {"colour": "red"}, "insights takes params run, all_runs, ui_url; got ['colour']"),
        ("insights", {"all_runs": "yes"}, "insights param all_runs: expected true or false"),
        ("insights", {"all_runs": True, "run": "a"}, "insights takes run or all_runs, not both"),
        ("insights", {"ui_url": "ftp://x"}, "insights param ui_url: 'ftp://x' is not an http"),
        ("insights", {"run": "zzz"}, "no run 'zzz'"),
    ]:
        bad = ask(operation, **params)
        assert not bad.ok and bad.error.code == "invalid_params" and message in bad.error.message
    every = ask("insights", all_runs=True)
    assert every.ok and [r["findings"] for r in every.data["runs"]] == [response.data["findings"]]
    assert ask("health").ok


def test_console_commands_ask_the_ai_layer() -> None:
    insights = parse_command("insights 4f2a")
    assert (insights.to_layer, insights.operation, insights.params) == ("ai", "insights", {"run": "4f2a"})
    explain = parse_command("explain F12ab run=4f2a provider=offline")
    assert (explain.to_layer, explain.operation, explain.params) == (
        "ai", "explain", {"target": "F12ab", "run": "4f2a", "provider": "offline"})


def held_answer(release: threading.Event, fail: bool):
    """An OpenAI-compatible streaming answer whose first piece goes at once and the rest
    only once ``release`` is set; with ``fail``, the server breaks off there instead."""

    async def handle(scope: dict, body: bytes):
        first, *rest = openai_chunks("The callback ", "holds its actor.")

        async def chunks():
            yield first
            for _ in range(6000):  # a hang guard, not a time limit
                if release.is_set():
                    break
                await asyncio.sleep(0.01)
            if fail:
                raise ConnectionResetError("the model's server went away mid-answer")
            for chunk in rest:
                yield chunk

        return 200, SSE, chunks()

    return handle


def test_a_streamed_explanation_is_read_piece_by_piece_as_the_model_writes_it(
    runtime, recorded, tmp_path
) -> None:
    data = recorded["crash_loop"]
    release, fail = threading.Event(), {"now": False}
    with serving(lambda scope, body: held_answer(release, fail["now"])(scope, body)) as (base, app):
        config = tmp_path / "llm.toml"
        config.write_text(f'[ai]\nprovider = "openai"\nopenai_url = "{base}/v1"\nopenai_key_var = ""\n'
                          "max_retries = 0\n")
        service = runtime.start(AIService, {"layer": "ai", "role": "planner", "data_dir": str(data),
                                            "config_args": {"user_file": str(config), "env": {}}})

        def ask(operation: str, **params):
            answer = runtime.call(service, Request(operation=operation, to_layer="ai", params=params),
                                  timeout=60)
            assert answer.ok, answer.error
            return answer.data

        def read(stream: str, offset: int, **params):
            """The next text or the end (a read with neither is a heartbeat: read again)."""
            for _ in range(120):  # a hang guard, not a time limit
                part = ask("explain_read", stream=stream, offset=offset, **params)
                if part["text"] or part["done"]:
                    return part
            raise AssertionError("no text came")

        first = ask("insights")["findings"][0]
        finding = first["id"]
        stream = ask("explain", target=finding, stream=True)["stream"]
        part = read(stream, 0, context=True)
        # the first piece arrives while the server still holds the rest of the answer
        assert (part["text"], part["done"], part["offset"]) == ("The callback ", False, 13)
        assert part["context"].startswith("# Explain this finding") and first["title"] in part["context"]
        release.set()
        text, offset = "", part["offset"]
        while not (part := read(stream, offset))["done"] or part["text"]:
            text, offset = text + part["text"], part["offset"]
            if part["done"]:
                break
        assert text == "holds its actor." and part["error"] is None
        assert part["report"]["answer"] == "The callback holds its actor."
        assert part["report"]["footer"].startswith("(openai gpt-4o-mini, 46 tokens, context ")
        gone = runtime.call(service, Request(operation="explain_read", to_layer="ai",
                                             params={"stream": stream}), timeout=60)
        assert gone.error.code == "invalid_params" and "ended and was read" in gone.error.message
        # a failure mid-answer: what came is given, then the error (nothing asked again)
        release.clear()
        fail["now"] = True
        stream = ask("explain", target=finding, stream=True)["stream"]
        part = read(stream, 0)
        assert (part["text"], part["done"]) == ("The callback ", False)
        release.set()
        end = read(stream, part["offset"])
        assert end["done"] and end["text"] == "" and end["report"] is None
        assert end["error"]["code"] == "invalid_params", end["error"]
        assert len(app.requests) == 2, end["error"]  # a broken answer is not asked again
    for params, message in [
        ({"stream": "nope"}, "no explanation stream 'nope'"),
        ({"stream": stream, "offset": -1}, "offset must be a whole number >= 0, got -1"),
        ({"stream": stream, "colour": 1}, "explain_read takes params stream, offset, context"),
    ]:
        bad = runtime.call(service, Request(operation="explain_read", to_layer="ai", params=params),
                           timeout=60)
        assert bad.error.code == "invalid_params" and message in bad.error.message
    bad = runtime.call(service, Request(operation="explain", to_layer="ai",
                                        params={"target": finding, "stream": "yes"}), timeout=60)
    assert bad.error.code == "invalid_params" and "stream must be true or false" in bad.error.message


def test_explain_through_the_daemon_prints_the_answer_as_it_comes(make_daemon, recorded, tmp_path) -> None:
    """The CLI against a real daemon: the first piece is on stdout while the model's server
    still holds the rest; a server that breaks off leaves what came, then says so."""
    data = tmp_path / "node-a-data"  # the daemon's own data dir holds the recording
    shutil.copytree(recorded["crash_loop"], data)
    (run,) = list_runs(data)
    release, fail = threading.Event(), {"now": False}
    with serving(lambda scope, body: held_answer(release, fail["now"])(scope, body)) as (base, app):
        d = make_daemon(config=f'[ai]\nprovider = "openai"\nopenai_url = "{base}/v1"\n'
                               'openai_key_var = ""\nmax_retries = 0\n')
        finding = d.request("insights", to_layer="ai", run=run.id).data["findings"][0]["id"]
        argv = [sys.executable, "-m", "elixirscope", "explain", "--daemon", d.endpoint, "--keys",
                str(d.keys_dir), "--run", run.id[:8], finding]
        console = [sys.executable, "-m", "elixirscope", "console", "--connect", d.endpoint,
                   "--keys", str(d.keys_dir), "--timeout", "60", "-c",
                   f"explain {finding} run={run.id[:8]}"]
        for command, failing in ((argv, False), (argv, True), (console, False), (console, True)):
            release.clear()
            fail["now"] = failing
            with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, stdin=subprocess.DEVNULL) as cli:
                assert cli.stdout.read(len("The callback ")) == "The callback "  # before the rest
                release.set()
                out, err = cli.communicate(timeout=120)
            if failing:
                assert cli.returncode == 1 and out == "\n", err
                assert err.startswith("elixirscope explain: " if command is argv else "error: ")
                assert err.endswith(" (the answer above is cut there)\n")
            else:
                assert cli.returncode == 0 and out == "holds its actor.\n", err
                assert err.startswith("(openai gpt-4o-mini, 46 tokens, context ")
        assert len(app.requests) == 4
