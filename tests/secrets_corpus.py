"""The planted-secrets corpus: one secret of each kind a recording must never keep.

Shared by tests/capture/test_redaction_corpus.py (recorded in-process, both hook
runtimes), tests/app/test_redaction_run.py (a real ``elixirscope run`` through a
daemon) and scripts/chaos.py (its "secrets leaked" row).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

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


REDACTION_TOML = (
    '[redaction]\nextra_names = ["pin"]\nextra_patterns = ["sk_live_[0-9A-Za-z]{10,}"]\n'
    '[instrumentation]\ndefault_level = "full"\n'
)
"""The configuration a host recording the corpus runs with (what the corpus's last kinds need)."""

VAULT_MODULE = textwrap.dedent('''
    from elixirscope.runtime import GenServer, Reply


    class Vault(GenServer):
        """Holds a DSN in its state; a call adds a pair to it."""

        def init(self, args):
            return {"db": "mysql://root:StatePw1q@db/x", "count": 1}

        def handle_call(self, request, from_, state):
            state["count"] += 1
            return Reply("ok", state)
''')

HOST_SCRIPT = PROGRAM + textwrap.dedent('''

    from decimal import Decimal

    from corpus_vault import Vault

    from elixirscope.capture import session
    from elixirscope.runtime import Runtime

    assert run() == "done"
    runtime = Runtime("simpleSystemBase")
    try:
        vault = runtime.start(Vault, path="vault")
        assert runtime.call(vault, ("password", "MsgPairPw-8q")) == "ok"
    finally:
        runtime.shutdown()
    session.record("login", session_id="CustomSess42q", user="bob")
    session.record("payment", amount=Decimal("378282246310005"))
    print("planted", flush=True)
''')


def write_host(directory: Path) -> tuple[Path, Path]:
    """The corpus as a program for ``elixirscope run`` (with its actor's module beside it)
    and the configuration to run it with: (script, config)."""
    (directory / "corpus_vault.py").write_text(VAULT_MODULE)
    script = directory / "corpus.py"
    script.write_text(HOST_SCRIPT)
    config = directory / "corpus.toml"
    config.write_text(REDACTION_TOML)
    return script, config


def leaked(text: str) -> list[str]:
    """The kinds of the corpus whose secret (or a card's bare digits) appears in ``text``."""
    out = []
    for kind, _planted, hidden in SECRETS:
        digits = "".join(c for c in hidden if c.isdigit())
        card = digits == hidden.replace(" ", "").replace("-", "")
        if hidden in text or (card and digits in text):
            out.append(kind)
    return out
