"""The two walls of the actor transport, without actors: frame seals and the class allow-list."""

from __future__ import annotations

import collections
import datetime
import decimal
import os
import pickle
import subprocess
import uuid

import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st
from thespian.actors import ActorExitRequest

from elixirscope.config.errors import ConfigError
from elixirscope.contracts import Event
from elixirscope.runtime import frame_seal, pickle_allowlist
from elixirscope.runtime.pickle_allowlist import ClassRefused
from elixirscope.runtime.reasons import ExitReason


class Message:
    """A message class of "the application" (this test module is not in site-packages)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and other.n == self.n


def helper_function():
    return "a function, not a class"


class Gadget:
    def __init__(self, target, *args):
        self.target, self.args = target, args

    def __reduce__(self):
        return (self.target, self.args)


# ------------------------------------------------------------------ frame seals


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=512))
def test_a_sealed_frame_opens_to_its_payload(payload):
    assert frame_seal.open_frame(frame_seal.seal(payload)) == payload


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(min_size=1, max_size=256), data=st.data())
def test_any_altered_frame_is_rejected(payload, data):
    frame = bytearray(frame_seal.seal(payload))
    index = data.draw(st.integers(0, len(frame) - 1))
    frame[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(frame_seal.FrameRejected, match="bad seal"):
        frame_seal.open_frame(bytes(frame))


def test_a_frame_shorter_than_a_seal_or_sealed_with_another_key_is_rejected():
    with pytest.raises(frame_seal.FrameRejected, match="shorter than its 32-byte seal"):
        frame_seal.open_frame(b"\x80\x04N.")
    forged = os.urandom(frame_seal.MAC_SIZE) + pickle.dumps(1)
    with pytest.raises(frame_seal.FrameRejected, match="does not hold this system's secret"):
        frame_seal.open_frame(forged)


# ------------------------------------------------------------------- allow-list


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, 2.5, b"x", bytearray(b"y"), {1, 2}, frozenset({3}), (None, True), 3j, range(4)]},
        datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        datetime.timedelta(seconds=3),
        decimal.Decimal("1.5"),
        uuid.uuid4(),
        collections.OrderedDict(a=1),
        collections.deque([1, 2]),
        ValueError("bad"),
        KeyError("k"),
        Event(type="ping", source_layer="test"),
        ExitReason.coerce("shutdown"),
        ActorExitRequest(),
        Message(7),
        zmq.ZMQError(11, "again"),  # an imported library's exception
        ConfigError("bad", code="not_updatable", path="api.endpoint"),  # reduces with a helper
    ],
    ids=lambda value: type(value).__name__,
)
def test_data_exceptions_and_message_classes_round_trip(value):
    got = pickle_allowlist.loads(pickle.dumps(value))
    assert type(got) is type(value)
    if not isinstance(value, BaseException | ActorExitRequest):
        assert got == value


@pytest.mark.parametrize(
    "gadget",
    [
        Gadget(os.system, "true"),
        Gadget(subprocess.Popen, ["true"]),
        Gadget(eval, "1"),
        Gadget(exec, "pass"),
        Gadget(getattr, ValueError, "mro"),
        Gadget(open, "/dev/null"),
        Gadget(__import__, "os"),
        Gadget(helper_function),  # a function of the application: classes only
        Gadget(pickle_allowlist.trust_modules, "os"),  # a function of elixirscope: classes only
    ],
    ids=lambda g: getattr(g.target, "__qualname__", repr(g.target)),
)
def test_callables_that_are_not_allowed_classes_are_refused(gadget):
    with pytest.raises(ClassRefused, match="not an allowed class"):
        pickle_allowlist.loads(pickle.dumps(gadget))


@pytest.mark.parametrize(
    "module, name",
    [
        ("elixirscope.cli.demo", "subprocess.Popen"),  # a class reached through a module
        ("elixirscope.transport.endpoints", "_socket.socket"),
        ("elixirscope.runtime.pickle_allowlist", "os.system"),
        ("elixirscope.runtime.pickle_allowlist", "pickle.Unpickler"),
        ("builtins", "type"),
        ("builtins", "object.__subclasses__"),
        ("os", "_wrap_close"),
        ("subprocess", "CalledProcessError.__init__"),  # an exception's attribute is not an exception
        ("antigravity", "webbrowser"),  # never imported to decide
    ],
)
def test_a_name_is_checked_where_it_leads(module, name):
    crafted = f"c{module}\n{name}\n.".encode()
    with pytest.raises(ClassRefused):
        pickle_allowlist.loads(crafted)


def test_a_trusted_package_allows_its_functions_too():
    data = pickle.dumps(Gadget(collections.namedtuple, "P", "x"))
    with pytest.raises(ClassRefused):
        pickle_allowlist.loads(data)
    before = pickle_allowlist.trusted_modules()
    pickle_allowlist.trust_modules("collections")
    try:
        assert pickle_allowlist.loads(data)(1).x == 1
    finally:
        pickle_allowlist._trusted.difference_update(pickle_allowlist.trusted_modules() - before)
        pickle_allowlist._allowed.clear()


@pytest.mark.parametrize("bad", ["", " . ", 3, None])
def test_trust_modules_refuses_what_is_not_a_module_name(bad):
    with pytest.raises(ValueError, match="Expected a module or package name"):
        pickle_allowlist.trust_modules(bad)
