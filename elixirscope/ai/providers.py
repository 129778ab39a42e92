"""Who writes an explanation: offline rules, an OpenAI-compatible API, or Gemini.

Every provider takes the same :class:`~elixirscope.ai.context.Context` and
calls ``on_text`` with each piece of its answer as it arrives, then returns the
whole :class:`Answer`. The HTTP providers stream (Server-Sent Events: OpenAI's
``data: {...}`` chunks up to ``data: [DONE]``; Gemini's
``streamGenerateContent?alt=sse``, or its JSON array when a server answers
without SSE), through httpx with a timeout on every step, retries with
exponential backoff after a timeout, a connection error, 429 (honouring
``Retry-After``) or 5xx — never once part of an answer was shown — and the
:class:`~elixirscope.ai.guard.Guard`'s breaker, rate limit and token budget.
Only the context's text is sent; the API key is read from the environment
variable the configuration names, never stored or logged.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from elixirscope.ai.context import Context
from elixirscope.ai.findings import shown_path
from elixirscope.ai.guard import Guard

__all__ = [
    "Answer",
    "GeminiProvider",
    "HttpPolicy",
    "OfflineProvider",
    "OpenAIProvider",
    "ProviderError",
    "SYSTEM_PROMPT",
]

SYSTEM_PROMPT = (
    "You are ElixirScope's debugging assistant. You are given what a recorded Python "
    "program did around one event or one finding: the call path with arguments, the "
    "source of the functions involved, actor state and messages, and evidence. Explain "
    "in a few short paragraphs what happened and why, citing file:line, then say what "
    "to change. Do not invent facts the context does not show; say what is missing."
)
MAX_RETRY_AFTER_S = 60.0
"""The longest a 429's Retry-After is honoured for; longer ones fail the request."""

OnText = Callable[[str], None]


class ProviderError(RuntimeError):
    """The provider gave no usable answer; the message says why (status, timeout, shape)."""


@dataclass
class Answer:
    text: str
    provider: str
    model: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    attempts: int = 1

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "provider": self.provider,
            "model": self.model,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "attempts": self.attempts,
        }


def _estimate(text: str) -> int:
    """Tokens of a text when the provider does not say: about four characters each."""
    return max(1, len(text) // 4)


# ---------------------------------------------------------------- offline


class OfflineProvider:
    """Rules over the context's facts: useful with no network and no key at all."""

    name = "offline"

    def explain(self, context: Context, on_text: OnText | None = None) -> Answer:
        parts = (
            _finding_text(context.facts)
            if context.facts.get("kind") == "finding"
            else _event_text(context.facts)
        )
        import textwrap

        text = ""
        for part in parts:
            piece = (
                textwrap.fill(part, WIDTH, break_long_words=False, break_on_hyphens=False) + "\n\n"
            )
            text += piece
            if on_text is not None:
                on_text(piece)
        return Answer(text.rstrip() + "\n", "offline", None, 0, 0)


WIDTH = 96
"""The offline explainer's line width."""


def _where(entry: dict[str, Any]) -> str:
    return (
        f"{shown_path(entry['file'])}:{entry['line']}"
        if entry.get("file")
        else "an unrecorded place"
    )


def _finding_text(facts: dict[str, Any]) -> list[str]:
    f = facts["finding"]
    parts = [f"{f['title']} ({f['severity']})", f["explanation"]]
    if f["locations"]:
        parts.append(
            "Where: "
            + "; ".join(
                f"{shown_path(loc['file'])}:{loc['line']}"
                + (f" ({loc['role']})" if loc.get("role") else "")
                for loc in f["locations"]
            )
        )
    before = facts.get("state_before")
    if before:
        message = facts.get("message")
        handling = f" when {message} arrived" if message else ""
        parts.append(f"The state of {before['actor']}{handling} was {before['state']}.")
    parts.append("What to do: " + f["fix"])
    moment = f.get("moment")
    if moment:
        parts.append(f"It starts at event {moment['id']}; `{f['commands'][0]}` shows more.")
    return parts


def _raised_at(traceback_text: str | None) -> str | None:
    """``It was raised in f at app.py:12: `return a / b```: the program's innermost frame
    (and the library's it was raised in, when it was: ``(inside starlette: …)``)."""
    from elixirscope.ai.server_errors import last_frame, raising_frames
    from elixirscope.ai.source import read_lines

    ours, library = raising_frames(traceback_text)
    if ours is None and library is None:
        return None
    if ours is None:  # only library frames: the innermost, with its printed line
        frame = last_frame(traceback_text)
        assert frame is not None
        file, line, function, code = frame
    else:
        file, line, function = ours
        text = read_lines(file, line, line)  # else the line the traceback printed under it
        code = text[0][1] if text else _printed_under(traceback_text or "", file, line)
        code = code.split("  # ")[0].strip()
    said = f"It was raised in {function} at {shown_path(file)}:{line}" + (
        f": `{code}`" if code else ""
    )
    if ours is not None and library is not None:
        lib_file, lib_line, lib_function = library
        said += f" (inside {lib_file.rpartition('/')[2]}:{lib_line} in {lib_function})"
    return said + "."


def _printed_under(traceback_text: str, file: str, line: int) -> str:
    """The source line a formatted traceback printed under the frame at ``file:line``."""
    head = f'File "{file}", line {line},'
    at = traceback_text.find(head)
    if at < 0:
        return ""
    after = traceback_text[at:].split("\n", 2)
    code = after[1].strip() if len(after) > 1 else ""
    return "" if code.startswith(("File ", "^", "~")) else code


def _cli(facts: dict[str, Any], command: str, *args: str) -> str:
    """``elixirscope calltree --data-dir D --run R ID`` (quoted) for the recording explained: a
    command pasted as it is reads the same run (as a finding's ``look`` lines do)."""
    words = ["elixirscope", command]
    if facts.get("data_dir"):
        words += ["--data-dir", shlex.quote(str(facts["data_dir"]))]
    if facts.get("run"):
        words += ["--run", str(facts["run"])[:8]]
    return "`" + " ".join([*words, *args]) + "`"


def _path_line(path: list[dict[str, Any]]) -> str:
    return " -> ".join(p["function"].rpartition(".")[2] for p in path)


def _event_text(facts: dict[str, Any]) -> list[str]:
    ev, t = facts["event"], facts["type"]
    path = facts.get("path") or []
    via = f" It ran inside {_path_line(path)}." if path else ""
    parts: list[str] = []
    if t == "exception":
        from elixirscope.query.calltree import raised_at

        site = raised_at(ev.get("traceback"), ev.get("line") or 0) or "an unknown line"
        error = f"{ev['exc_type']}: {ev['message']}" if ev.get("message") else ev["exc_type"]
        parts.append(f"{ev['function']} raised {error} at {site}.{via}")
        args = path[-1]["args"] if path else {}
        if args:
            parts.append(
                "It was called with "
                + ", ".join(f"{k}={v}" for k, v in args.items())
                + "; check which of these the code did not expect."
            )
        chain = ev.get("correlation_id")
        parts.append(
            "What to do: handle this case where it is raised, or check the input "
            "earlier on the path; "
            + _cli(facts, "calltree", *([chain[:12]] if chain else []))
            + " shows the whole chain."
        )
    elif t == "query":
        parts.append(
            f"The program ran `{ev['statement']}` at {_where(ev)} "
            f"in {ev['duration_ns'] / 1e6:.2f} ms"
            + (f" and it failed: {ev['error']}." if ev.get("error") else ".")
            + via
        )
        parts.append(
            f"{_cli(facts, 'insights')} says whether it is part of an N+1 pattern or a race."
        )
    elif t == "state":
        parts.append(
            f"{ev['actor']} handled {ev.get('message')} in {ev['callback']}"
            + (f" and raised {ev['error']}." if ev.get("error") else ".")
        )
        if facts.get("message"):
            parts.append(f"The message was: {facts['message']}")
        parts.append(
            f"{_cli(facts, 'history', shlex.quote(ev['actor']))} shows every change around it."
        )
    elif t in ("exit", "restart"):
        parts.append(f"{ev['path']} {'exited' if t == 'exit' else 'was restarted'}: {ev['reason']}")
        parts.append(
            f"{_cli(facts, 'insights')} says whether this is a crash loop or a restart storm."
        )
    elif t == "http":
        outcome = ev.get("status") or ("a timeout" if ev.get("timeout") else ev.get("error"))
        parts.append(
            f"{ev['method']} {ev['url']} (attempt {ev['attempt']}) ended with {outcome} "
            f"after {ev['duration_ns'] / 1e6:.1f} ms.{via}"
        )
    elif t == "reqend":
        route = f" (route {ev['route']})" if ev.get("route") and ev["route"] != ev["path"] else ""
        parts.append(
            f"{ev['method']} {ev['path']}{route} was answered {ev['status']} after "
            f"{ev['duration_ns'] / 1e6:.1f} ms"
            + (
                f": {ev['exc_type']}: {ev.get('message') or ''} reached the server unhandled."
                if ev.get("exc_type")
                else "."
            )
        )
        raised = _raised_at(ev.get("traceback_text"))
        if raised:
            parts.append(raised)
        chain = ev.get("correlation_id")
        parts.append(
            _cli(facts, "calltree", *([chain[:12]] if chain else []))
            + " shows the handler's calls, queries and HTTP calls in place; "
            + _cli(facts, "insights")
            + " groups the route's server errors."
        )
    elif t == "req":
        came = f" from {ev['client']}" if ev.get("client") else ""
        parts.append(f"{ev['method']} {ev['path']} arrived{came}.")
        if ev.get("traceparent_error"):
            parts.append(f"Its traceparent was ignored: {ev['traceparent_error']}.")
        elif ev.get("parent_span"):
            parts.append(
                f"It came with a traceparent: trace {ev['trace_id']}, caller's span "
                f"{ev['parent_span']}; its work runs in that trace's chain."
            )
    elif t == "tx":
        opened = (
            f" after the transaction was open {ev['open_ns'] / 1e6:.1f} ms"
            if ev.get("open_ns")
            else ""
        )
        parts.append(
            f"{ev['action']} on {ev.get('database') or ev['system']} at {_where(ev)}{opened}"
            + (f", and it failed: {ev['error']}." if ev.get("error") else ".")
            + via
        )
    elif t in ("call", "return"):
        name = ev["function"]
        entry = path[-1] if path else {}
        parts.append(
            f"{name} was called at {_where(entry)}"
            + (
                " with " + ", ".join(f"{k}={v}" for k, v in entry.get("args", {}).items())
                if entry.get("args")
                else ""
            )
            + "."
            + via
        )
        if t == "return":
            parts.append(f"It returned {ev.get('result')} after {ev['duration_ns'] / 1e6:.2f} ms.")
    else:
        parts.append(f"A {t} event." + via)
    return parts


# ---------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class HttpPolicy:
    timeout_s: float = 30.0
    max_retries: int = 3
    backoff_s: float = 0.5


class _Retry(Exception):
    def __init__(self, why: str, wait: float | None = None) -> None:
        super().__init__(why)
        self.why, self.wait = why, wait


def _retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


class _HttpProvider:
    name = "http"

    def __init__(
        self, base_url: str, model: str, key_var: str, policy: HttpPolicy, guard: Guard | None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.key_var = key_var
        self.policy = policy
        self.guard = guard

    def _key(self) -> str | None:
        if not self.key_var:
            return None
        key = os.environ.get(self.key_var)
        if not key:
            raise ProviderError(
                f"no API key: the environment variable {self.key_var} (ai.{self.name}_key_var) "
                "is not set"
            )
        return key

    def _request(self, context: Context) -> tuple[str, dict[str, str], dict[str, Any]]:
        raise NotImplementedError

    def _pieces(self, response: Any, usage: dict[str, int]) -> Iterator[str]:
        raise NotImplementedError

    def explain(self, context: Context, on_text: OnText | None = None) -> Answer:
        try:
            import httpx
        except ImportError:
            raise ProviderError(
                f"the {self.name} provider needs httpx: pip install 'elixirscope[ai]'"
            ) from None
        url, headers, body = self._request(context)
        timeout = httpx.Timeout(self.policy.timeout_s)
        attempt = 0
        while True:
            attempt += 1
            if self.guard is not None:
                self.guard.admit()
            shown: list[str] = []
            usage: dict[str, int] = {}
            try:
                with (
                    httpx.Client(timeout=timeout, trust_env=False) as client,
                    client.stream("POST", url, headers=headers, json=body) as response,
                ):
                    self._check_status(response)
                    for piece in self._pieces(response, usage):
                        shown.append(piece)
                        if on_text is not None:
                            on_text(piece)
            except _Retry as retry:
                self._failed()
                if attempt > self.policy.max_retries:
                    raise ProviderError(
                        f"{self.name}: {retry.why}; gave up after {attempt} attempts"
                    ) from None
                time.sleep(
                    retry.wait
                    if retry.wait is not None
                    else self.policy.backoff_s * 2 ** (attempt - 1)
                )
                continue
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                self._failed()
                kind = (
                    "timed out"
                    if isinstance(exc, httpx.TimeoutException)
                    else f"failed ({type(exc).__name__}: {exc})"
                )
                if shown:
                    raise ProviderError(
                        f"{self.name}: the answer stopped part way: the connection {kind}"
                    ) from None
                if attempt > self.policy.max_retries:
                    raise ProviderError(
                        f"{self.name}: the request {kind} (ai.timeout_s = {self.policy.timeout_s:g}); "
                        f"gave up after {attempt} attempts"
                    ) from None
                time.sleep(self.policy.backoff_s * 2 ** (attempt - 1))
                continue
            except ProviderError:
                self._failed()
                raise
            text = "".join(shown)
            if not text.strip():
                self._failed()
                raise ProviderError(f"{self.name}: the answer held no text")
            tokens_in = usage.get("in") or _estimate(context.text())
            tokens_out = usage.get("out") or _estimate(text)
            if self.guard is not None:
                self.guard.succeeded(tokens_in + tokens_out)
            return Answer(text, self.name, self.model, tokens_in, tokens_out, attempt)

    def _failed(self) -> None:
        if self.guard is not None:
            self.guard.failed()

    def _check_status(self, response: Any) -> None:
        status = response.status_code
        if status == 429:
            wait = _retry_after(response.headers.get("retry-after"))
            if wait is not None and wait > MAX_RETRY_AFTER_S:
                raise ProviderError(f"{self.name}: 429 Too Many Requests, Retry-After {wait:.0f} s")
            raise _Retry("429 Too Many Requests", wait)
        if status >= 500:
            raise _Retry(f"the server answered {status}")
        if status >= 400:
            response.read()
            raise ProviderError(
                f"{self.name}: the server refused the request: {status} {response.text[:300]!r}"
            )

    @staticmethod
    def _events(response: Any) -> Iterator[Any]:
        """The JSON payloads of an SSE stream (``data: ...`` lines), ``None`` for ``[DONE]``."""
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                yield None
                return
            try:
                yield json.loads(data)
            except ValueError:
                raise ProviderError(
                    f"malformed answer: an event that is not JSON: {data[:120]!r}"
                ) from None


class OpenAIProvider(_HttpProvider):
    """Any OpenAI-compatible ``/chat/completions`` (OpenAI, vLLM, llama.cpp, Ollama...)."""

    name = "openai"

    def _request(self, context: Context) -> tuple[str, dict[str, str], dict[str, Any]]:
        headers = {"content-type": "application/json"}
        key = self._key()
        if key:
            headers["authorization"] = f"Bearer {key}"
        body = {
            "model": self.model,
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": context.text()},
            ],
        }
        return f"{self.base_url}/chat/completions", headers, body

    def _pieces(self, response: Any, usage: dict[str, int]) -> Iterator[str]:
        kind = response.headers.get("content-type", "")
        if "text/event-stream" not in kind:
            response.read()
            try:
                data = response.json()
                text = data["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError):
                raise ProviderError(f"malformed answer: {response.text[:200]!r}") from None
            _openai_usage(data, usage)
            if not isinstance(text, str):
                raise ProviderError("malformed answer: its content is not text")
            yield text
            return
        for event in self._events(response):
            if event is None:
                return
            _openai_usage(event, usage)
            try:
                choices = event.get("choices") or []
                delta = choices[0].get("delta", {}) if choices else {}
                piece = delta.get("content")
            except (AttributeError, IndexError, TypeError):
                raise ProviderError(
                    f"malformed answer: an unexpected chunk {str(event)[:120]!r}"
                ) from None
            if isinstance(piece, str) and piece:
                yield piece


def _openai_usage(data: Any, usage: dict[str, int]) -> None:
    got = data.get("usage") if isinstance(data, dict) else None
    if isinstance(got, dict):
        usage["in"] = int(got.get("prompt_tokens") or 0)
        usage["out"] = int(got.get("completion_tokens") or 0)


class GeminiProvider(_HttpProvider):
    """Google's Gemini API: ``models/<model>:streamGenerateContent``."""

    name = "gemini"

    def _request(self, context: Context) -> tuple[str, dict[str, str], dict[str, Any]]:
        headers = {"content-type": "application/json"}
        key = self._key()
        if key:
            headers["x-goog-api-key"] = key
        body = {
            "systemInstruction": {"parts": [{"text": SYSTEM_PROMPT}]},
            "contents": [{"role": "user", "parts": [{"text": context.text()}]}],
        }
        return f"{self.base_url}/models/{self.model}:streamGenerateContent?alt=sse", headers, body

    def _pieces(self, response: Any, usage: dict[str, int]) -> Iterator[str]:
        kind = response.headers.get("content-type", "")
        if "text/event-stream" in kind:
            for event in self._events(response):
                if event is None:
                    return
                yield from _gemini_parts(event, usage)
            return
        response.read()
        try:
            data = response.json()
        except ValueError:
            raise ProviderError(f"malformed answer: {response.text[:200]!r}") from None
        for chunk in data if isinstance(data, list) else [data]:
            yield from _gemini_parts(chunk, usage)


def _gemini_parts(chunk: Any, usage: dict[str, int]) -> Iterator[str]:
    if not isinstance(chunk, dict):
        raise ProviderError(f"malformed answer: an unexpected chunk {str(chunk)[:120]!r}")
    meta = chunk.get("usageMetadata")
    if isinstance(meta, dict):
        usage["in"] = int(meta.get("promptTokenCount") or 0)
        usage["out"] = int(meta.get("candidatesTokenCount") or 0)
    if "error" in chunk:
        raise ProviderError(f"gemini: {str(chunk['error'])[:300]}")
    try:
        parts = chunk["candidates"][0]["content"]["parts"]
    except (KeyError, IndexError, TypeError):
        if meta is not None and "candidates" not in chunk:
            return
        raise ProviderError(
            f"malformed answer: a chunk without candidates {str(chunk)[:120]!r}"
        ) from None
    for part in parts:
        text = part.get("text") if isinstance(part, dict) else None
        if isinstance(text, str) and text:
            yield text
