"""A message whose class the receiver does not allow is refused - and the sender hears of
it at once, naming the class, instead of waiting out a timeout. Real actor processes
(multiprocTCPBase); ``email.message.Message`` stands for any class nobody trusted.
"""

from __future__ import annotations

import email.message
from typing import Any

import pytest

from elixirscope.runtime import (
    CallResult,
    GenServer,
    MessageRefused,
    NoReply,
    Reply,
    _thespian_security,
)
from elixirscope.runtime.pickle_allowlist import refused_in

LONG = 60.0  # the timeout these calls would have waited out before; never reached


class Mailer(GenServer):
    """``("make",)`` replies with an object nobody allowed; ``("relay", server, request)``
    calls ``server`` without blocking (``"mail"``: with such an object in the request)
    and replies with what came of it."""

    def init(self, args: Any) -> Any:
        return {"waiting": {}}

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == ("make",):
            return Reply(email.message.Message(), state)
        if request[0] == "relay":
            _, server, inner = request
            inner = ("echo", email.message.Message()) if inner == "mail" else inner
            state["waiting"][self.call_async(server, inner, LONG)] = from_
            return NoReply(state)
        if request == ("refusals",):
            return Reply(_thespian_security.refusals(), state)
        return Reply(request, state)

    def handle_info(self, message: Any, state: Any) -> Any:
        if isinstance(message, CallResult) and message.ref in state["waiting"]:
            outcome = message.value if message.ok else message.reason
            self.reply(state["waiting"].pop(message.ref), (message.ok, repr(outcome)))
        return state


def test_a_call_from_outside_with_a_refused_class_fails_at_once_naming_it(module_runtime):
    mailer = module_runtime.start(Mailer)
    with pytest.raises(MessageRefused, match=r"refused to unpickle email\.message\.Message") as err:
        module_runtime.call(mailer, ("echo", email.message.Message()), timeout=LONG)
    assert "trust_modules" in str(err.value)
    assert module_runtime.call(mailer, ("echo", 1)) == ("echo", 1)  # nothing else changed


def test_a_call_between_actors_with_a_refused_class_fails_at_once_naming_it(module_runtime):
    mailer = module_runtime.start(Mailer)
    other = module_runtime.start(Mailer)
    ok, reason = module_runtime.call(
        mailer, ("relay", other, "mail"), timeout=LONG)
    assert not ok and "refused to unpickle email.message.Message" in reason
    assert module_runtime.call(mailer, ("refusals",))["sends_refused"] == 1  # counted
    assert module_runtime.call(mailer, ("relay", other, ("echo", 2)), timeout=LONG) == (True, "('echo', 2)")


def test_a_reply_with_a_refused_class_fails_the_call_at_once(module_runtime):
    mailer = module_runtime.start(Mailer)
    other = module_runtime.start(Mailer)
    with pytest.raises(MessageRefused, match="the reply to this call could not be delivered"):
        module_runtime.call(mailer, ("make",), timeout=LONG)  # refused by this process
    ok, value = module_runtime.call(mailer, ("relay", other, ("make",)), timeout=LONG)
    assert ok and value.startswith('MessageRefused("the reply to this call could not be delivered')
    assert "email.message.Message" in value


def test_the_refused_class_is_found_where_it_hides():
    assert refused_in({"a": [1, ("x", email.message.Message())]}).name == "Message"
    assert refused_in(("plain", 1, [2.0], {"k": b"v"})) is None
