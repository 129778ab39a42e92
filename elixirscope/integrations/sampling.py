"""Which web requests are recorded: a head sampler, as W3C Trace Context has it.

``integrations.request_sampling`` (1.0 by default: every request) is the share of
requests recorded. Below 1, a request that arrives with a ``traceparent`` follows
its caller's decision (the header's *sampled* flag), so a trace is recorded
whole or not at all across services that sample; one without is decided at
random. At 1.0 every request is recorded whatever its caller decided: a
debugger's default is to miss nothing.

A request left out records nothing, and nothing under it does: not its calls,
queries, HTTP calls, messages to actors, nor what the actors do with them
(``capture.sampled``). It costs the least it can: no ids are made, no header is
read but ``traceparent``, and its response gets no trace headers (they would
name a trace nobody recorded); an HTTP call it makes carries no
``traceparent``, so the callee decides for itself. Requests left out are
counted (``recording.stats()["requests_sampled_out"]``) and ``elixirscope run``
says how many at exit.
"""

from __future__ import annotations

__all__ = ["request_sampled", "request_sampling", "set_request_sampling"]

_rate = [1.0]
_draws: list = []  # the draw, made on first use (``elixirscope run`` imports no ``random``)


def set_request_sampling(rate: float) -> None:
    """The share of requests recorded, 0 to 1 (``integrations.request_sampling``)."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
        raise ValueError(
            f"Expected a share of requests from 0 to 1, got {rate!r} - at "
            "integrations.request_sampling"
        )
    _rate[0] = float(rate)


def request_sampling() -> float:
    return _rate[0]


def request_sampled(parent_flags: str | None) -> bool:
    """Whether a request is recorded; ``parent_flags`` the caller's ``traceparent``
    flags (two hex characters), if it sent one."""
    rate = _rate[0]
    if rate >= 1.0:
        return True
    if parent_flags is not None:
        return bool(int(parent_flags, 16) & 1)
    return rate > 0.0 and _draw() < rate


def _draw() -> float:
    if not _draws:
        import os
        import random

        generator = random.Random()
        os.register_at_fork(after_in_child=generator.seed)  # a child draws its own
        _draws.append(generator.random)
    return _draws[0]()
