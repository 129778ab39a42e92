"""``explain``: an event or a finding, its bounded and redacted context, and a provider's answer.

The target is an event id (a whole number, as ``elixirscope events`` shows
it) or a finding id (``F`` and hex digits, as ``elixirscope insights`` shows
it; any unique prefix). The provider and its limits come from the ``ai.*``
configuration keys; ``provider`` overrides which one. Redaction uses the
``redaction.*`` keys, applied here whatever the recording already redacted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

__all__ = ["ExplainError", "explain", "make_provider"]

_FINDING = re.compile(r"^F[0-9a-fA-F]{1,9}$")


class ExplainError(ValueError):
    """What was asked cannot be explained (a bad target, a provider that failed)."""


def make_provider(name: str, get: Callable[[str], Any], data_dir: str | os.PathLike[str]) -> Any:
    """The provider ``name`` configured from ``get`` (``ConfigStore.get``), guarded by the
    limits persisted under ``data_dir``."""
    from elixirscope.ai.guard import Guard, Limits
    from elixirscope.ai.providers import GeminiProvider, HttpPolicy, OfflineProvider, OpenAIProvider

    if name == "offline":
        return OfflineProvider()
    if name not in ("openai", "gemini"):
        raise ExplainError(f"unknown provider {name!r}: offline, openai or gemini")
    policy = HttpPolicy(get("ai.timeout_s"), get("ai.max_retries"), get("ai.backoff_s"))
    limits = Limits(
        breaker_failures=get("ai.breaker_failures"),
        breaker_reset_s=get("ai.breaker_reset_s"),
        requests_per_minute=get("ai.requests_per_minute"),
        daily_token_budget=get("ai.daily_token_budget"),
        max_wait_s=get("ai.timeout_s"),
    )
    guard = Guard(data_dir, name, limits)
    cls = OpenAIProvider if name == "openai" else GeminiProvider
    return cls(
        get(f"ai.{name}_url"), get(f"ai.{name}_model"), get(f"ai.{name}_key_var"), policy, guard
    )


def explain(
    data_dir: str | os.PathLike[str],
    target: str | int,
    *,
    run: str | None = None,
    producer: str | None = None,
    provider: str | None = None,
    config_file: str | None = None,
    get: Callable[[str], Any] | None = None,
    on_context: Callable[[str], None] | None = None,
    on_text: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The explanation of ``target`` in ``run`` (default: the latest): ``answer`` (the text),
    ``provider``, ``context`` (the redacted text sent), ``target``, ``tokens``."""
    from elixirscope.ai.context import event_context, finding_context, locate_event
    from elixirscope.ai.guard import GuardError
    from elixirscope.ai.insights import find_finding
    from elixirscope.ai.providers import ProviderError
    from elixirscope.ai.recording import load_recording
    from elixirscope.ai.settings import InsightSettings
    from elixirscope.capture import redaction

    if get is None:
        from elixirscope.config import ConfigStore

        get = ConfigStore.load(user_file=config_file, env=dict(os.environ)).get
    redaction.configure_from(get)
    name = provider or get("ai.provider")
    text = str(target).strip()
    if text.startswith("#") and text[1:].isdigit():  # as `events` shows it: #105
        text = text[1:]
    if _FINDING.match(text.upper()):  # f1a2b3c4d5 as typed: the ids are hex
        text = text.upper()[0] + text[1:].lower()
    if _FINDING.match(text):
        finding, recording = find_finding(data_dir, text, run, InsightSettings.from_config(get))
        context = finding_context(recording, finding)
        about: dict[str, Any] = {"finding": finding.id, "title": finding.title}
    elif text.isdigit():
        recording = load_recording(data_dir, run)
        se = locate_event(recording, int(text), producer)
        context = event_context(recording, se)
        about = {"event": se.event.id, "producer": se.producer, "type": se.type}
    else:
        raise ExplainError(
            f"cannot explain {text!r}: give an event id (a number, #105 in `elixirscope events`) "
            "or a finding id (F and nine hex digits, F1a2b3c4d5: see `elixirscope insights`)"
        )
    context.bound(get("ai.max_context_chars"))
    sent = context.text()
    if on_context is not None:
        on_context(sent)
    chosen = make_provider(name, get, data_dir)
    try:
        answer = chosen.explain(context, on_text)
    except (ProviderError, GuardError) as exc:
        raise ExplainError(str(exc)) from None
    footer = f"({answer.provider}" + (f" {answer.model}" if answer.model else "")
    if answer.tokens:
        footer += f", {answer.tokens:,} tokens"
    footer += f", context {len(sent):,} characters{', cut to fit' if context.cut else ''})"
    return {
        "run": recording.run,
        "target": about,
        "provider": answer.provider,
        "model": answer.model,
        "answer": answer.text,
        "tokens": {"in": answer.tokens_in, "out": answer.tokens_out},
        "attempts": answer.attempts,
        "context": sent,
        "context_cut": context.cut,
        "footer": footer,
        "text": answer.text.rstrip() + "\n" + footer,
    }
