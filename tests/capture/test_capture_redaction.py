"""The redaction pipeline: each processor, configuration and its errors, the functions
other recorders call, and the invariants (card numbers always hidden, idempotence,
the C fast path giving exactly Python's redacted text)."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elixirscope.capture import _fallback_values, _select, hooks, recorder, redaction, values
from elixirscope.capture.redaction import (
    REDACTED,
    AuthTokens,
    CardNumbers,
    DatabaseDetails,
    KeyValues,
    RedactionError,
    UrlCredentials,
    configure,
    get_config,
    luhn_valid,
    redact_mapping,
    redact_text,
    redact_value,
    reset_defaults,
)
from elixirscope.config import ConfigError, ConfigStore

needs_c = pytest.mark.skipif(_select._module is None, reason="C accelerator not built")


@pytest.fixture(autouse=True)
def _defaults():
    reset_defaults()
    yield
    reset_defaults()


@pytest.fixture
def c_hooks(monkeypatch):
    monkeypatch.delenv("ELIXIRSCOPE_NO_SPEEDUPS", raising=False)
    hooks.uninstall()
    recorder.uninstall()
    recorder.install(ring_size=1 << 12, accelerated=True)
    yield hooks.install()
    hooks.uninstall()
    recorder.uninstall()


# --------------------------------------------------------------------------- processors


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://user:pass@host/db", f"postgresql://user:{REDACTED}@host/db"),
        ("DSN=mysql+pymysql://root:s3@db:3306/x", f"DSN=mysql+pymysql://root:{REDACTED}@db:3306/x"),
        ("redis://:p@ss@cache/0", f"redis://:{REDACTED}@cache/0"),
        ("see https://example.com/a@b", "see https://example.com/a@b"),
        ("mail bob@example.com", "mail bob@example.com"),
        ("http://host:8080/path", "http://host:8080/path"),
    ],
)
def test_url_credentials_hide_the_password_and_keep_user_and_host(text, expected):
    assert UrlCredentials()(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", f"Bearer {REDACTED}"),
        ("bearer abc", f"bearer {REDACTED}"),
        ("Authorization: Basic dXNlcjpwYXNz", f"Authorization: Basic {REDACTED}"),
        ("basic usage of the api", "basic usage of the api"),
        ("Basic Usage2", f"Basic {REDACTED}"),
        ("a bearer", "a bearer"),
    ],
)
def test_auth_tokens_hide_bearer_and_basic_credentials(text, expected):
    assert AuthTokens()(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("user=bob password=hunter2 ok", f"user=bob password={REDACTED} ok"),
        ("db_password: 'two words' next", f"db_password: '{REDACTED}' next"),
        ('{"api_key": "k1", "region": "eu"}', f'{{"api_key": "{REDACTED}", "region": "eu"}}'),
        ("?session_id=abc&page=2", f"?session_id={REDACTED}&page=2"),
        ("Authorization: Digest abc def", f"Authorization: {REDACTED} def"),
        ("PASSWORD = x;y", f"PASSWORD = {REDACTED};y"),
        ("count=3 name: bob", "count=3 name: bob"),
        ("password=", "password="),
    ],
)
def test_key_values_hide_values_of_sensitive_keys_in_free_text(text, expected):
    assert KeyValues(redaction.DEFAULT_SENSITIVE_NAMES)(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('DETAIL:  Key (api_key)=(sk_live_S3CRET) already exists.',
         f'DETAIL:  Key (api_key)=({REDACTED}) already exists.'),
        ('Key (author_id)=(99) is not present in table "authors".',
         f'Key (author_id)=({REDACTED}) is not present in table "authors".'),
        ("Key (lower(email::text))=(a@b.io) already exists.",
         f"Key (lower(email::text))=({REDACTED}) already exists."),
        ("Key (r)=([1,5)) conflicts with existing key (r)=([2,3)).",
         f"Key (r)=({REDACTED}) conflicts with existing key (r)=({REDACTED})."),
        ("Key (a, b)=(1, x)\nnext", f"Key (a, b)=({REDACTED})\nnext"),
        ('violates check constraint "c"\nDETAIL:  Failing row contains (7, hunter2, (x)).\nHINT',
         f'violates check constraint "c"\nDETAIL:  Failing row contains ({REDACTED}).\nHINT'),
        ("f(x)=(y) + 2 is math", "f(x)=(y) + 2 is math"),
        ("Failing row contains (7)", "Failing row contains (7)"),  # not a DETAIL line
    ],
)
def test_a_databases_error_keeps_its_columns_and_loses_the_rows_values(text, expected):
    """PostgreSQL's DETAIL quotes the row (a duplicate api_key, an email): not kept."""
    assert DatabaseDetails()(text) == expected
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [("author", False), ("author_id", False), ("authority_level", False),
     ("is_authorized", False), ("authored_by", False), ("authorization", True), ("auth", True),
     ("oauth_token", True), ("auth_author", True), ("x_author_auth", True)],
)
def test_an_author_is_no_secret_and_auth_still_is(name, sensitive):
    """``auth`` is a sensitive word; ``author`` holds it and names none (a SQL statement's
    ``author_id = %s`` was shown as ``author_id = <redacted>``)."""
    assert values.redact(name) is sensitive
    assert (redact_text(f"{name}=7") == f"{name}=7") is not sensitive
    assert redact_text("SELECT * FROM books WHERE author_id = %s") == (
        "SELECT * FROM books WHERE author_id = %s")
    configure(extra_names=["author"])  # a word of the user's own is sensitive whole
    try:
        assert values.redact("author_id") and redact_text("author=x") == f"author={REDACTED}"
    finally:
        reset_defaults()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4111111111111111", REDACTED),
        ("card 4111 1111 1111 1111 exp 12/30", f"card {REDACTED} exp 12/30"),
        ("5500-0000-0000-0004", REDACTED),
        ("amex 3782 822463 10005.", f"amex {REDACTED}."),
        ("4111 1111 1111 1111 2024", f"{REDACTED} 2024"),
        ("4111111111111112", "4111111111111112"),  # Luhn fails
        ("order 1234567890", "order 1234567890"),  # too short
        ("0000000000000000", "0000000000000000"),  # no card starts with 0
        ("41111111111111111111111", "41111111111111111111111"),  # too long for a card
    ],
)
def test_card_numbers_are_found_by_the_luhn_check(text, expected):
    assert CardNumbers()(text) == expected


def test_luhn():
    assert luhn_valid("4111111111111111") and luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111121")


def test_names_and_pairs_are_applied_while_rendering():
    assert values.safe_repr([("user", "bob"), ("password", "x")]) == (
        f"[('user', 'bob'), ('password', {REDACTED})]"
    )
    assert values.safe_repr(["api_key", 7]) == f"['api_key', {REDACTED}]"
    assert values.safe_repr(("a", "b")) == "('a', 'b')"
    assert values.capture_args(("credit_card",), ("x",)) == {"credit_card": REDACTED}
    assert values.safe_repr(4111111111111111) == REDACTED
    assert values.safe_repr(-4111111111111111) == REDACTED
    assert values.safe_repr(4111111111111112) == "4111111111111112"


class Session:
    """An ORM's or a web framework's session: an object, no secret."""

    def __init__(self) -> None:
        self.bind = "sqlite://"


SESSION_NAMES = ("session", "db_session", "Session", "session_token", "sessionid", "session_id",
                 "PHPSESSID", "session_key", "session_secret", "session_cookie")


def test_a_session_object_is_shown_and_session_secrets_are_not():
    args = [Session(), Session(), Session(), "t0k3n", "abc123", "abc124", "abc125", "k3y",
            "s3cr3t", "c00k1e"]
    shown = values.capture_args(SESSION_NAMES, tuple(args))
    assert shown["session"] == "Session(bind='sqlite://')"
    assert shown["db_session"] == shown["Session"] == shown["session"]
    assert [shown[n] for n in SESSION_NAMES[3:]] == [REDACTED] * 7
    assert values.safe_repr({"session": 1, "sessionid": 2}) == f"{{'session': 1, 'sessionid': {REDACTED}}}"
    assert values.safe_repr(("sessionid", "abc")) == f"('sessionid', {REDACTED})"
    assert redact_text("sessionid=abc&session=home") == f"sessionid={REDACTED}&session=home"
    assert redact_mapping({"X-Session-Id": "abc", "Session": "db"}) == {
        "X-Session-Id": REDACTED, "Session": "db"}


@needs_c
def test_the_c_fast_path_shows_a_session_object_too(c_hooks):
    args = (Session(), "t0k3n", "abc123")
    assert c_hooks.args_text(SESSION_NAMES[:1] + ("session_token", "sessionid"), args) == (
        values.capture_args(("session", "session_token", "sessionid"), args))
    assert REDACTED not in c_hooks.args_text(("session",), (Session(),))["session"]


def test_a_secret_crossing_the_cut_is_not_shown_in_part():
    text = values.safe_repr("x" * 185 + " password=hunter2secret")
    assert "hun" not in text and text.endswith("...")
    message = values.safe_repr(ValueError("y" * 190 + " Bearer abcdefghijkl"))
    assert "abc" not in message


def test_exception_messages_are_redacted():
    from elixirscope.capture._pyhooks import exc_message

    assert exc_message(ValueError("bad postgresql://u:pw@h/db"), values) == (
        f"bad postgresql://u:{REDACTED}@h/db"
    )
    long = exc_message(ValueError("z" * 995 + " token=abcdef"), values)
    assert "abc" not in long and long.endswith("...")


def test_the_fallback_values_redact_too():
    assert _fallback_values.capture_args(("password", "dsn"), ("x", "pg://u:pw@h/d")) == {
        "password": REDACTED,
        "dsn": f"'pg://u:{REDACTED}@h/d'",
    }


# --------------------------------------------------------------------------- configuration


def test_the_default_pipeline():
    config = get_config()
    assert config.processors == (
        "names", "pairs", "card_numbers", "key_value", "auth_tokens", "db_details",
        "url_credentials",
    )
    assert config.extra_names == () and config.extra_patterns == ()
    assert ConfigStore.load(env={}).get("redaction.processors") == list(config.processors)


def test_extra_names_reach_names_pairs_and_key_value():
    configure(extra_names=["PIN"])
    assert get_config().extra_names == ("pin",)
    assert values.capture_args(("user_pin",), (1234,)) == {"user_pin": REDACTED}
    assert values.safe_repr([("pin", 1)]) == f"[('pin', {REDACTED})]"
    assert redact_text("pin=1234 ok") == f"pin={REDACTED} ok"
    assert redact_text("password=x") == f"password={REDACTED}"  # defaults kept


def test_extra_patterns_redact_matches_or_their_groups():
    configure(extra_patterns=[r"sk_live_[0-9a-zA-Z]{8,}", r"ref (\d+)-(\d+)"])
    assert redact_text("key sk_live_abcdef123 x") == f"key {REDACTED} x"
    assert redact_text("ref 12-34 done") == f"ref {REDACTED}-{REDACTED} done"
    assert values.safe_repr(["sk_live_abcdef123"]) == f"['{REDACTED}']"


def test_processors_can_be_chosen_and_ordered():
    configure(processors=["url_credentials"])
    assert values.capture_args(("password",), ("x",)) == {"password": "'x'"}
    assert values.safe_repr([("password", "x")]) == "[('password', 'x')]"
    assert values.safe_repr(4111111111111111) == "4111111111111111"
    assert redact_text("password=x pg://u:p@h") == f"password=x pg://u:{REDACTED}@h"
    configure(processors=[])
    assert redact_text("pg://u:p@h") == "pg://u:p@h"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"processors": ["names", "url_creds"]},
         "Unknown redaction processor `url_creds` (known: names, pairs, card_numbers, "
         "key_value, auth_tokens, db_details, url_credentials); did you mean `url_credentials`? - at "
         "`processors[1]`"),
        ({"processors": ["names", "names"]}, "Processor `names` is listed twice - at `processors[1]`"),
        ({"processors": "names"}, "Expected a list of processor names, got `'names'` - at `processors`"),
        ({"processors": [3]}, "Expected a processor name (`str`), got `3` - at `processors[0]`"),
        ({"extra_names": ["ok", " "]}, "Expected a non-empty `str`, got `' '` - at `extra_names[1]`"),
        ({"extra_patterns": ["a("]},
         "Invalid regular expression `a(`: missing ), unterminated subpattern at position 1"
         " - at `extra_patterns[0]`"),
        ({"extra_patterns": ["x*"]}, "Pattern `x*` matches the empty string - at `extra_patterns[0]`"),
    ],
)
def test_bad_configuration_is_refused_by_name_and_nothing_changes(kwargs, message):
    before = get_config()
    with pytest.raises(RedactionError) as info:
        configure(**kwargs)
    assert str(info.value) == message
    assert get_config() == before


def test_configure_from_the_configuration_file(tmp_path):
    conf = tmp_path / "es.toml"
    conf.write_text(
        '[redaction]\nprocessors = ["names", "key_value"]\nextra_names = ["iban"]\n'
        'extra_patterns = ["sk_[a-z]+"]\n'
    )
    store = ConfigStore.load(user_file=conf, env={})
    config = redaction.configure_from(store.get)
    assert config.processors == ("names", "key_value")
    assert config.extra_names == ("iban",) and config.extra_patterns == ("sk_[a-z]+",)
    assert redact_text("iban=DE89 sk_abc pg://u:p@h") == f"iban={REDACTED} {REDACTED} pg://u:p@h"


def test_a_bad_pattern_in_the_configuration_file_is_a_config_error(tmp_path):
    conf = tmp_path / "es.toml"
    conf.write_text('[redaction]\nextra_patterns = ["ok", "[unclosed"]\n')
    with pytest.raises(ConfigError) as info:
        ConfigStore.load(user_file=conf, env={})
    assert str(info.value) == (
        "Expected `list of regular expressions`, got `['ok', '[unclosed']` - at "
        f"`redaction.extra_patterns` (from {conf}): item [1]: Invalid regular expression "
        "`[unclosed`: unterminated character set at position 0"
    )


def test_environment_variables_set_lists():
    store = ConfigStore.load(env={"ELIXIRSCOPE_REDACTION__EXTRA_NAMES": '["pin", "iban"]'})
    assert store.get("redaction.extra_names") == ["pin", "iban"]


# --------------------------------------------------------------------------- for other recorders


def test_redact_mapping_and_value_for_headers_and_sql_parameters():
    headers = {"Authorization": "Bearer abc", "Accept": "json", "X-Trace": "pg://u:p@h"}
    assert redact_mapping(headers) == {
        "Authorization": REDACTED, "Accept": "json", "X-Trace": f"pg://u:{REDACTED}@h",
    }
    params = ["bob", 4111111111111111, 3, None, ("password", "x")]
    assert [redact_value(p) for p in params] == [
        "bob", REDACTED, 3, None, f"('password', {REDACTED})",
    ]
    with pytest.raises(TypeError, match=r"Expected `str`, got `bytes` - at `redact_text\(text\)`"):
        redact_text(b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Expected a mapping, got `list`"):
        redact_mapping([])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- invariants


@st.composite
def luhn_numbers(draw) -> str:  # noqa: ANN001
    length = draw(st.integers(13, 19))
    body = [draw(st.integers(1, 9))] + draw(
        st.lists(st.integers(0, 9), min_size=length - 2, max_size=length - 2)
    )
    for check in range(10):
        digits = "".join(map(str, body + [check]))
        if luhn_valid(digits):
            return digits
    raise AssertionError("no check digit")  # pragma: no cover


def _grouped(digits: str, sep: str) -> str:
    return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))


no_digits = st.text(st.characters(blacklist_categories=("Nd", "Cs")), max_size=30)


@settings(max_examples=200, deadline=None)
@given(luhn_numbers(), st.sampled_from(["", " ", "-"]), no_digits, no_digits)
def test_luhn_valid_card_numbers_are_always_redacted(digits, sep, before, after):
    text = redact_text(before + _grouped(digits, sep) + after)
    assert re.search("[0-9]", text) is None, text
    assert values.safe_repr(int(digits)) == REDACTED


fragments = st.sampled_from([
    "password=", "Password: ", "token", "=", ":", "@", "://", "pg://u:", "pw@h/db", "Bearer ",
    "basic ", "Basic ", "dXNl", '"', "'", " ", "-", "&", ",", "x", "bob", "4111 1111 1111 1111",
    "5500-0000-0000-0004", "4012888888881881", "1", "12", REDACTED, "<", "\n", "é", "\u017f",
    "Key (", ")=(", ") already exists", "DETAIL:  Failing row contains (", ")", "(",
])
secretish = st.lists(fragments | st.text(max_size=4), max_size=14).map("".join)


@settings(max_examples=300, deadline=None)
@given(secretish)
def test_redaction_is_idempotent(text):
    once = redact_text(text)
    assert redact_text(once) == once


@needs_c
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    secretish,
    secretish.map(lambda s: "x" * 180 + s),
    st.lists(secretish, max_size=3),
    st.tuples(st.sampled_from(["password", "user", "my_token"]), secretish),
    st.integers(-(10**20), 10**20),
    st.binary(max_size=30).map(lambda b: b + b"token=abc"),
))
def test_the_c_fast_path_gives_exactly_the_redacted_text(c_hooks, value):
    assert c_hooks.value_text(value) == values.safe_repr(value)
    assert c_hooks.args_text(("a", "b"), (value, value)) == values.capture_args(
        ("a", "b"), (value, value)
    )


@needs_c
@pytest.mark.parametrize("processors", [[], ["names"], ["card_numbers"], ["pairs", "key_value"]])
def test_the_c_fast_path_follows_the_configured_pipeline(c_hooks, processors):
    from elixirscope.capture import _speedups

    configure(processors=processors)
    assert _speedups.redaction_flags() == redaction.c_flags()
    for value in ("pw=x", ("password", "x"), 4111111111111111, "a@b", ["token: t"]):
        assert c_hooks.value_text(value) == values.safe_repr(value)
    configure(extra_patterns=["ab+c"])
    assert _speedups.redaction_flags() & redaction.C_ALL_STR
    assert c_hooks.value_text("xabbbc") == values.safe_repr("xabbbc") == f"'x{REDACTED}'"


@needs_c
@settings(max_examples=300, deadline=None)
@given(st.one_of(secretish, st.text(max_size=40)))
def test_the_c_pre_check_flags_every_text_the_python_triggers_match(text):
    """Python uses the C pre-check when it is built: it must flag at least as much."""
    triggers = [p.trigger for p in redaction._pipeline.text]
    python = re.compile("|".join(f"(?:{t})" for t in triggers)).search(text)
    flagged = redaction._c_trigger(text)
    assert flagged in (True, None)
    if python is not None:
        assert flagged is True
    with pytest.raises(TypeError, match=r"Expected `str`, got `bytes` - at `secret_trigger"):
        redaction._c_trigger(b"x")
