"""The offline explainer on a web request's events: what it answered, where the unhandled
exception was raised, the chain to look at (it said "A reqend event")."""

from __future__ import annotations

from elixirscope.ai.providers import _event_text

TRACEBACK = """Traceback (most recent call last):
  File "/app/views.py", line 40, in checkout
    return discount_for(tier)
  File "/app/views.py", line 12, in discount_for
    return rates[tier]
           ~~~~~^^^^^^
KeyError: 'platinum'
"""


def test_a_500s_end_says_what_was_raised_where_and_which_chain_to_look_at():
    reqend = {"method": "GET", "path": "/checkout/platinum", "route": "/checkout/<tier>",
              "status": 500, "duration_ns": 23_500_000, "exc_type": "KeyError",
              "message": "platinum", "traceback_text": TRACEBACK, "correlation_id": "cf3b" * 8}
    parts = _event_text({"type": "reqend", "event": reqend})
    assert parts[0] == ("GET /checkout/platinum (route /checkout/<tier>) was answered 500 after "
                        "23.5 ms: KeyError: platinum reached the server unhandled.")
    assert parts[1] == "It was raised in discount_for at /app/views.py:12: `return rates[tier]`."
    assert parts[2].startswith("`elixirscope calltree cf3bcf3bcf3b` shows the handler's calls")


def test_a_request_whose_traceparent_was_ignored_says_why():
    req = {"method": "GET", "path": "/authors", "client": "127.0.0.1:5",
           "traceparent_error": "traceparent 'x' is not version-traceid-spanid-flags"}
    assert _event_text({"type": "req", "event": req}) == [
        "GET /authors arrived from 127.0.0.1:5.",
        "Its traceparent was ignored: traceparent 'x' is not version-traceid-spanid-flags.",
    ]
