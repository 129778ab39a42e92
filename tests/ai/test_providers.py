"""The explanation providers against real local HTTP servers (uvicorn on a free loopback
port) that speak OpenAI's chat-completions and Gemini's generateContent protocols,
streaming included, and fail the ways real ones do: 429 with Retry-After, 500, answers
too slow, malformed answers; and the guard around them: the circuit breaker, the rate
limit and the daily token budget, persisted under the data dir."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from servers import as_json, serving

from elixirscope.ai.context import Context
from elixirscope.ai.explain import make_provider
from elixirscope.ai.guard import BudgetExhausted, CircuitOpen, RateLimited
from elixirscope.ai.providers import ProviderError
from elixirscope.config.schema import SCHEMA

KEY = "test-key-0123"


def config(**overrides: Any) -> Callable[[str], Any]:
    values = {path: key.default for path, key in SCHEMA.items()}
    values.update({"ai.backoff_s": 0.01, "ai.timeout_s": 5.0, "ai.openai_key_var": "ES_TEST_KEY",
                   "ai.gemini_key_var": "ES_TEST_KEY"})
    values.update({f"ai.{k}": v for k, v in overrides.items()})
    return values.__getitem__


def context() -> Context:
    ctx = Context("# Explain this recorded event\ncall shop.checkout(basket={'tea': 2})")
    ctx.add("The event", "shop.checkout raised KeyError: 'coffee' (line 12)", 0)
    return ctx


def sse(*events: Any) -> list[str]:
    return [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]


def openai_chunks(*pieces: str, usage: tuple[int, int] = (40, 6)) -> list[str]:
    return sse(
        *({"choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces),
        {"choices": [], "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]}},
        "[DONE]",
    )


def scripted(*answers: Any) -> Callable:
    """A handler answering request n with ``answers[n]`` (the last one from then on):
    (status, headers, body) or ("sleep", seconds, then)."""
    calls = {"n": 0}

    async def handle(scope: dict, body: bytes) -> tuple[int, dict, Any]:
        answer = answers[min(calls["n"], len(answers) - 1)]
        calls["n"] += 1
        if answer[0] == "sleep":
            await asyncio.sleep(answer[1])
            answer = answer[2]
        return answer

    return handle


SSE = {"content-type": "text/event-stream"}
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def server() -> Any:
    with serving(scripted((500, {}, b"no script"))) as (base, app):
        yield base, app


def serve(server: Any, handler: Callable) -> tuple[str, Any]:
    """The module's server, answering with ``handler`` from now on, its requests cleared."""
    base, app = server
    app.handler = handler
    app.requests.clear()
    return base, app


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ES_TEST_KEY", KEY)
    return KEY


def ask(name: str, base: str, data_dir: Path, **overrides: Any) -> tuple[Any, list[str]]:
    pieces: list[str] = []
    provider = make_provider(name, config(**{f"{name}_url": base, **overrides}), data_dir)
    return provider.explain(context(), pieces.append), pieces


# ---------------------------------------------------------------- protocols


def test_openai_streams_its_answer_piece_by_piece(tmp_path: Path, key: str, server) -> None:
    base, app = serve(server, scripted(
        (200, SSE, openai_chunks("The basket ", "held coffee, ", "unknown."))))
    answer, pieces = ask("openai", base + "/v1", tmp_path, openai_model="m-1")
    assert pieces == ["The basket ", "held coffee, ", "unknown."]
    assert answer.text == "The basket held coffee, unknown."
    assert (answer.tokens_in, answer.tokens_out, answer.model) == (40, 6, "m-1")
    (request,) = app.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    body = json.loads(request["body"])
    assert body["model"] == "m-1" and body["stream"] is True
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"] == context().text()


def test_openai_compatible_servers_that_do_not_stream_are_read_whole(tmp_path: Path, key: str, server) -> None:
    whole = {"choices": [{"message": {"role": "assistant", "content": "All at once."}}],
             "usage": {"prompt_tokens": 9, "completion_tokens": 3}}
    base, _ = serve(server, scripted((200, JSON, as_json(whole))))
    answer, pieces = ask("openai", base, tmp_path)
    assert pieces == ["All at once."] and answer.tokens == 12


def test_gemini_streams_server_sent_events(tmp_path: Path, key: str, server) -> None:
    chunks = sse(
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "A KeyError "}]}}]},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "in checkout."}]}}],
         "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 5, "totalTokenCount": 35}},
    )
    base, app = serve(server, scripted((200, SSE, chunks)))
    answer, pieces = ask("gemini", base + "/v1beta", tmp_path, gemini_model="gemini-x")
    assert pieces == ["A KeyError ", "in checkout."] and answer.tokens == 35
    (request,) = app.requests
    assert request["path"] == "/v1beta/models/gemini-x:streamGenerateContent"
    assert request["query"] == "alt=sse"
    assert request["headers"]["x-goog-api-key"] == KEY
    body = json.loads(request["body"])
    assert body["contents"][0]["parts"][0]["text"] == context().text()
    assert "systemInstruction" in body


def test_gemini_answering_a_json_array_is_read_too(tmp_path: Path, key: str, server) -> None:
    array = [{"candidates": [{"content": {"parts": [{"text": "One "}]}}]},
             {"candidates": [{"content": {"parts": [{"text": "two."}]}}]}]
    base, _ = serve(server, scripted((200, JSON, as_json(array))))
    answer, pieces = ask("gemini", base, tmp_path)
    assert answer.text == "One two." and pieces == ["One ", "two."]


# ---------------------------------------------------------------- failures


def test_a_429_is_retried_after_its_retry_after(tmp_path: Path, key: str, server) -> None:
    base, app = serve(server, scripted((429, {"retry-after": "0"}, b"slow down"),
                                       (200, SSE, openai_chunks("ok"))))
    answer, _ = ask("openai", base, tmp_path)
    assert answer.text == "ok" and answer.attempts == 2 and len(app.requests) == 2


def test_a_429_asking_for_too_long_a_wait_fails_at_once(tmp_path: Path, key: str, server) -> None:
    base, app = serve(server, scripted((429, {"retry-after": "3600"}, b"come back later")))
    with pytest.raises(ProviderError, match="429 Too Many Requests, Retry-After 3600 s"):
        ask("openai", base, tmp_path)
    assert len(app.requests) == 1


def test_a_500_is_retried_with_backoff_then_given_up(tmp_path: Path, key: str, server) -> None:
    base, app = serve(server, scripted((500, {}, b"oops"), (200, SSE, openai_chunks("fine"))))
    assert ask("openai", base, tmp_path)[0].text == "fine"
    base, app = serve(server, scripted((500, {}, b"oops")))
    with pytest.raises(ProviderError, match="the server answered 500; gave up after 3 attempts"):
        ask("openai", base, tmp_path / "b", max_retries=2)
    assert len(app.requests) == 3


def test_an_answer_too_slow_is_a_timeout(tmp_path: Path, key: str, server) -> None:
    base, app = serve(server, scripted(("sleep", 0.7, (200, SSE, openai_chunks("late")))))
    with pytest.raises(ProviderError, match=r"timed out \(ai.timeout_s = 0.2\); gave up after 2"):
        ask("openai", base, tmp_path, timeout_s=0.2, max_retries=1)
    assert len(app.requests) == 2


def test_a_refusal_is_not_retried(tmp_path: Path, key: str, server) -> None:
    base, app = serve(server, scripted((401, JSON, b'{"error": "bad key"}')))
    with pytest.raises(ProviderError, match="refused the request: 401"):
        ask("gemini", base, tmp_path)
    assert len(app.requests) == 1


@pytest.mark.parametrize(
    ("name", "answer", "message"),
    [
        ("openai", (200, SSE, sse("{not json")), "an event that is not JSON"),
        ("openai", (200, JSON, b'{"id": 1}'), "malformed answer"),
        ("openai", (200, SSE, sse({"choices": "x"}, "[DONE]")), "unexpected chunk"),
        ("openai", (200, SSE, sse("[DONE]")), "the answer held no text"),
        ("gemini", (200, SSE, sse({"nothing": 1})), "a chunk without candidates"),
        ("gemini", (200, JSON, b"<html>"), "malformed answer"),
    ],
)
def test_malformed_answers_are_errors_that_say_so(tmp_path, key, name, answer, message, server) -> None:
    base, _ = serve(server, scripted(answer))
    with pytest.raises(ProviderError, match=message):
        ask(name, base, tmp_path)


def test_no_key_in_the_environment_is_said_before_anything_is_sent(tmp_path, monkeypatch, server) -> None:
    monkeypatch.delenv("ES_TEST_KEY", raising=False)
    base, app = serve(server, scripted((200, SSE, openai_chunks("x"))))
    with pytest.raises(ProviderError, match="the environment variable ES_TEST_KEY"):
        ask("openai", base, tmp_path)
    assert app.requests == []


# ---------------------------------------------------------------- the guard


def test_the_circuit_opens_after_failures_in_a_row_and_lets_a_trial_through_later(
    tmp_path: Path, key: str, server
) -> None:
    base, app = serve(server, scripted((500, {}, b"down")))
    for _ in range(2):
        with pytest.raises(ProviderError):
            ask("openai", base, tmp_path, max_retries=0, breaker_failures=2)
    with pytest.raises(CircuitOpen, match="the circuit to openai is open after 2 failed"):
        ask("openai", base, tmp_path, max_retries=0, breaker_failures=2)
    assert len(app.requests) == 2  # the open circuit sent nothing
    # after breaker_reset_s one trial goes through; it fails, so the circuit opens again
    with pytest.raises(ProviderError):
        ask("openai", base, tmp_path, max_retries=0, breaker_failures=2, breaker_reset_s=0)
    assert len(app.requests) == 3
    with pytest.raises(CircuitOpen):
        ask("openai", base, tmp_path, max_retries=0, breaker_failures=2)
    base, _ = serve(server, scripted((200, SSE, openai_chunks("back"))))
    assert ask("openai", base, tmp_path, breaker_reset_s=0)[0].text == "back"
    assert ask("openai", base, tmp_path)[0].text == "back"  # closed again


def test_the_rate_limit_refuses_what_it_cannot_wait_for(tmp_path: Path, key: str, server) -> None:
    base, app = serve(server, scripted((200, SSE, openai_chunks("one"))))
    ask("openai", base, tmp_path, requests_per_minute=1, timeout_s=0.5)
    with pytest.raises(RateLimited, match=r"1 requests in the last minute \(ai.requests_per_minute = 1\)"):
        ask("openai", base, tmp_path, requests_per_minute=1, timeout_s=0.5)
    assert len(app.requests) == 1


def test_the_daily_token_budget_is_counted_in_the_data_dir(tmp_path: Path, key: str, server) -> None:
    base, app = serve(server, scripted((200, SSE, openai_chunks("spent", usage=(70, 30)))))
    ask("openai", base, tmp_path, daily_token_budget=100)
    usage = json.loads((tmp_path / "ai" / "usage.json").read_text())
    assert usage["tokens"] == 100
    with pytest.raises(BudgetExhausted, match="100 of 100 tokens"):
        ask("openai", base, tmp_path, daily_token_budget=100)
    assert len(app.requests) == 1
    ask("openai", base, tmp_path, daily_token_budget=0)  # 0: no limit


def test_a_damaged_usage_file_is_replaced_and_said(tmp_path: Path) -> None:
    from elixirscope.ai.guard import Guard, Limits

    (tmp_path / "ai").mkdir()
    (tmp_path / "ai" / "usage.json").write_text("{broken")
    guard = Guard(tmp_path, "openai", Limits())
    guard.admit()
    assert "could not be read" in guard.notes[0]
    assert json.loads((tmp_path / "ai" / "usage.json").read_text())["tokens"] == 0
