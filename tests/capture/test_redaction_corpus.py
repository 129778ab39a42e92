"""Planted secrets, recorded through the real path, never reach the wire or the store.

A program instrumented by the real rewriter at level ``full`` (so arguments,
returns, yields, attribute changes and exceptions are captured), a GenServer
traced by the actor tracer (state, messages) and a custom event carry one
secret of each kind. They are recorded with the C hooks and with the
pure-Python hooks, shipped by a real capture session into the embedded store
(``RunStore``, as ``elixirscope run`` does) while every encoded frame is kept.
No secret — nor the first characters of one — may appear in the encoded
frames or in the events read back from the store; the non-secret neighbours
must still be there, readable.
"""

from __future__ import annotations

import json
import textwrap
import threading
from decimal import Decimal

import pytest
from hooks_support import RUNTIMES

from elixirscope.capture import actors, hooks, recorder, redaction, session
from elixirscope.ingest.stores import RunStore
from elixirscope.instrument.rewriter import rewrite_source
from elixirscope.runtime import GenServer, Reply, Runtime
from elixirscope.store.eventstore import EventStore

# (kind, secret text as planted, what must never be seen) — each secret is unique.
SECRETS = [
    ("dsn as an argument", "postgresql://app:S3cretDsnArg@db.internal/shop", "S3cretDsnArg"),
    ("dsn as an attribute", "postgresql://app:S3cretDsnAttr@db.internal/shop", "S3cretDsnAttr"),
    ("password in a list of pairs", "PairPw-777q", "PairPw-777q"),
    ("bearer token returned", "eyJhbGciOiJIUzI1NiJ9.QmVhcmVyUmV0.c2ln", "QmVhcmVyUmV0"),
    ("secret in an exception message", "ExcMsgPw-123q", "ExcMsgPw-123q"),
    ("credit_card key", "4111 1111 1111 1111", "4111 1111 1111 1111"),
    ("password= in free text", "FreeTextPw9q", "FreeTextPw9q"),
    ("sensitive argument name", "NamedArgPw-5q", "NamedArgPw-5q"),
    ("authorization header in a dict", "HeaderTok123abcq", "HeaderTok123abcq"),
    ("basic credentials in free text", "dXNlcjpCYXNpY1B3ZA==", "dXNlcjpCYXNpY1B3ZA"),
    ("card number with dashes in text", "5500-0000-0000-0004", "5500-0000-0000-0004"),
    ("card number as an int", "4012888888881881", "4012888888881881"),
    ("api_key in a JSON string", "ak_live_JsonKey42q", "ak_live_JsonKey42q"),
    ("url credentials yielded", "amqp://guest:YieldPw55q@mq/vhost", "YieldPw55q"),
    ("sensitive attribute name", "AttrNamedSecretq", "AttrNamedSecretq"),
    ("token field of an object", "FieldTok99q", "FieldTok99q"),
    ("password key in an exception's dict", "ExcDictPw-4q", "ExcDictPw-4q"),
    ("dsn in actor state", "mysql://root:StatePw1q@db/x", "StatePw1q"),
    ("password pair as an actor message", "MsgPairPw-8q", "MsgPairPw-8q"),
    ("session id in a custom event", "CustomSess42q", "CustomSess42q"),
    ("configured extra pattern", "sk_live_ExtraPat0123456789", "ExtraPat0123456789"),
    ("configured extra name", "PinSecret77q", "PinSecret77q"),
    ("secret crossing the length cut", "QzXcrossPw1q", "QzX"),
    ("token= in bytes", "BytesTok55q", "BytesTok55q"),
    ("card number in a Decimal", "378282246310005", "378282246310005"),
]

# Readable neighbours: each must still appear.
NEIGHBOURS = [
    "db.internal/shop", "'user', 'bob'", "user=bob", "'Accept': 'json'", "region", "paid with",
    "mq/vhost", "host='api'", "'count': 1", "Bearer <redacted>", "amount", "login failed",
    "'user': 'bob'",
]

PROGRAM = textwrap.dedent('''
    def connect(dsn, timeout=5):
        return "connected"

    class Repo:
        def __init__(self, url):
            self.url = url
            self.secret_key = "AttrNamedSecretq"

    def login(fields, password=None):
        return "Bearer eyJhbGciOiJIUzI1NiJ9.QmVhcmVyUmV0.c2ln"

    def fail_login(user):
        raise ValueError(f"login failed for {user} with password=ExcMsgPw-123q")

    def fail_lookup():
        raise KeyError({"password": "ExcDictPw-4q", "user": "bob"})

    def charge(order, card, amount_text):
        return amount_text

    def log_line(text, raw):
        return len(text)

    def call_api(headers, body, client):
        return body

    def stream():
        yield "amqp://guest:YieldPw55q@mq/vhost"

    def keys(note, user_pin):
        return note

    def long_text(text):
        return text

    class Client:
        def __init__(self, token, host):
            self.token = token
            self.host = host

    def run():
        connect("postgresql://app:S3cretDsnArg@db.internal/shop")
        Repo("postgresql://app:S3cretDsnAttr@db.internal/shop")
        login([("user", "bob"), ("password", "PairPw-777q")], password="NamedArgPw-5q")
        for fail in (lambda: fail_login("bob"), fail_lookup):
            try:
                fail()
            except (ValueError, KeyError):
                pass
        charge({"credit_card": "4111 1111 1111 1111", "amount": 30}, 4012888888881881,
               "paid with 5500-0000-0000-0004 today")
        log_line("user=bob password=FreeTextPw9q ok", b"token=BytesTok55q")
        call_api({"Authorization": "Bearer HeaderTok123abcq", "Accept": "json"},
                 '{"api_key": "ak_live_JsonKey42q", "region": "eu"}'
                 ' Authorization: Basic dXNlcjpCYXNpY1B3ZA==',
                 Client("FieldTok99q", "api"))
        list(stream())
        keys("key sk_live_ExtraPat0123456789 used", "PinSecret77q")
        long_text("x" * 183 + " password=QzXcrossPw1q")
        return "done"
''')


class Vault(GenServer):
    """Holds a DSN in its state; a call adds a pair to it."""

    def init(self, args):  # noqa: ANN001, ANN201
        return {"db": "mysql://root:StatePw1q@db/x", "count": 1}

    def handle_call(self, request, from_, state):  # noqa: ANN001, ANN201
        state["count"] += 1
        return Reply("ok", state)


class Tee:
    """A capture sink keeping every encoded frame and writing it to the embedded store."""

    def __init__(self, data_dir) -> None:  # noqa: ANN001
        self.frames: list[bytes] = []
        self.lock = threading.Lock()
        self.store = RunStore(data_dir)

    def __call__(self, frame: bytes, count: int) -> None:
        with self.lock:
            self.frames.append(frame)
        self.store.append_frame(frame, count)


@pytest.fixture(scope="module", params=RUNTIMES)
def recorded(request, tmp_path_factory):
    """Record the corpus once per hooks runtime: the encoded frames and the stored events."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ELIXIRSCOPE_NO_SPEEDUPS", raising=False)
        return _record(request.param, tmp_path_factory.mktemp("store"))


def _record(accelerated: bool, data_dir) -> tuple[bytes, str]:  # noqa: ANN001
    hooks.uninstall()
    recorder.uninstall()
    redaction.configure(extra_names=["pin"], extra_patterns=[r"sk_live_[0-9A-Za-z]{10,}"])
    recorder.install(ring_size=1 << 14, accelerated=accelerated)
    assert hooks.install().accelerated is accelerated
    tee = Tee(data_dir)
    sess = session.start_capture(sink=tee)
    actors.enable_actor_capture()
    runtime = Runtime("simpleSystemBase")
    try:
        module = f"corpus_{'c' if accelerated else 'py'}"
        code = rewrite_source(PROGRAM, module, {module: "full", f"{module}.*": "full"},
                              f"{module}.py")
        ns: dict = {"__name__": module}
        exec(code, ns)
        assert ns["run"]() == "done"
        vault = runtime.start(Vault, path="vault")
        assert runtime.call(vault, ("password", "MsgPairPw-8q")) == "ok"
        session.record("login", session_id="CustomSess42q", user="bob")
        session.record("payment", amount=Decimal("378282246310005"))
    finally:
        runtime.shutdown()
        actors.disable_actor_capture()
        sess.stop()
        tee.store.close()
        hooks.uninstall()
        recorder.uninstall()
        redaction.reset_defaults()
    with EventStore.open(data_dir, readonly=True) as store:
        stored = [json.dumps(e.to_dict(), default=repr) for e in store.query()]  # keys: bytes
    return b"".join(tee.frames), "\n".join(stored)


def test_the_corpus_names_at_least_the_21_kinds_of_the_issue():
    assert len(SECRETS) >= 21
    assert len({kind for kind, _, _ in SECRETS}) == len(SECRETS)


@pytest.mark.parametrize(("kind", "planted", "hidden"), SECRETS, ids=[s[0] for s in SECRETS])
def test_no_planted_secret_is_encoded_or_stored(recorded, kind, planted, hidden):
    frames, stored = recorded
    assert hidden.encode() not in frames, f"{kind}: {hidden!r} in an encoded frame"
    assert hidden not in stored, f"{kind}: {hidden!r} in a stored event"
    digits = "".join(c for c in hidden if c.isdigit())
    if digits == hidden.replace(" ", "").replace("-", ""):  # a card number: no grouping either
        assert digits.encode() not in frames and digits not in stored


@pytest.mark.parametrize("neighbour", NEIGHBOURS)
def test_non_secret_neighbours_stay_readable(recorded, neighbour):
    frames, stored = recorded
    assert neighbour in stored, f"{neighbour!r} missing from the stored events"


def test_every_kind_of_event_was_recorded(recorded):
    """The corpus really went through arguments, returns, yields, attributes,
    exceptions, actor state and messages, and custom events."""
    _, stored = recorded
    for tag in ('"type": "call"', '"type": "return"', '"type": "exception"', '"type": "yield"',
                '"type": "attr"', '"type": "state"', '"type": "receive"', '"type": "custom"'):
        assert tag in stored, tag
