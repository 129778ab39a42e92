"""What a recorded value must never reveal: a configurable pipeline of small processors.

Every captured value's text is made in ``values.py`` (arguments, return values,
yields, attribute changes, actor state and messages, exception messages,
custom events), and every piece of text it makes passes through here first.
Other recorders (SQL parameters, HTTP headers) call :func:`redact_text`,
:func:`redact_value` or :func:`redact_mapping`.

Contract:

- A processor has a ``name`` and is one of two kinds.
  *Structural* (``names``, ``pairs``): a rule the renderer applies while it
  walks a value, by the name a value goes by. *Text*: ``__call__(text) ->
  text`` replaces what it recognises with ``<redacted>`` and leaves the rest
  as it was; its ``trigger`` is a regex fragment that matches wherever it could
  find something (a cheap pre-check: text no trigger matches is returned
  untouched), or None for "always run" (configured patterns).
- Built-in processors are idempotent: running them on their own output
  changes nothing. They run in the configured order.
- ``configure(processors=, extra_names=, extra_patterns=)`` replaces the
  pipeline (``None`` leaves a part unchanged); ``get_config()`` says what is
  in force; ``reset_defaults()`` goes back to :data:`DEFAULT_PROCESSORS`.
  A bad processor name, name or pattern raises :class:`RedactionError` and
  leaves the pipeline as it was.
- The C accelerator renders common values itself; :func:`c_flags` tells it
  which values it must leave to Python so that no value bypasses this module
  (``_speedups.set_redaction``).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from elixirscope.capture import _select

__all__ = [
    "DEFAULT_PROCESSORS",
    "DEFAULT_SENSITIVE_NAMES",
    "LOOKAHEAD",
    "NOT_SECRET_WORDS",
    "PROCESSORS",
    "REDACTED",
    "AuthTokens",
    "CardNumbers",
    "DatabaseDetails",
    "KeyValues",
    "Pattern",
    "RedactionConfig",
    "RedactionError",
    "SensitiveNames",
    "SensitivePairs",
    "TextProcessor",
    "UrlCredentials",
    "c_flags",
    "check_names",
    "check_patterns",
    "check_processors",
    "configure",
    "configure_from",
    "get_config",
    "holds_sensitive_word",
    "is_sensitive_name",
    "luhn_valid",
    "redact_mapping",
    "redact_text",
    "redact_value",
    "reset_defaults",
    "scrub",
]

REDACTED = "<redacted>"

DEFAULT_SENSITIVE_NAMES: tuple[str, ...] = (
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "token",
    "secret",
    "authorization",
    "auth",
    "cookie",
    # a session id or key, not any `session` (an ORM's or a web framework's session
    # object is no secret; `session_token`, `session_secret`, `session_cookie` are
    # caught by their other word)
    "sessionid",
    "session_id",
    "session-id",
    "sessid",
    "session_key",
    "sessionkey",
    "session-key",
    "api_key",
    "apikey",
    "api-key",
    "private_key",
    "privatekey",
    "credential",
    "signature",
    "csrf",
    "ssn",
    "credit_card",
    "creditcard",
    "card_number",
    "cardnumber",
    "cvv",
    "cvc",
)

NOT_SECRET_WORDS: tuple[str, ...] = ("author",)
"""Words that hold a sensitive word and name no secret: ``author_id``, ``authored``,
``authority``, ``is_authorized`` are not ``auth`` (``authorization`` still is: the
sensitive word is longer than the part of it inside ``author``)."""


def holds_sensitive_word(lowered: str, words: Iterable[str]) -> bool:
    """Whether the lower-cased name ``lowered`` holds one of ``words`` other than inside a
    :data:`NOT_SECRET_WORDS` word (see there)."""
    benign = [
        (at, at + len(word)) for word in NOT_SECRET_WORDS for at in _occurrences(lowered, word)
    ]
    if not benign:  # nearly every name
        return any(word in lowered for word in words)
    for word in words:
        for at in _occurrences(lowered, word):
            end = at + len(word)
            if not any(b0 <= at and end <= b1 and b1 - b0 > len(word) for b0, b1 in benign):
                return True
    return False


def _occurrences(text: str, word: str) -> list[int]:
    found, at = [], text.find(word)
    while at >= 0:
        found.append(at)
        at = text.find(word, at + 1)
    return found


LOOKAHEAD = 256
"""Characters past a cut that are still scanned, so a secret crossing the cut
is recognised whole and no prefix of it is shown."""


class RedactionError(ValueError):
    """A redaction setting that cannot be used; ``field``/``index`` say which, ``reason`` why.

    Raised by :func:`configure` (and by the configuration checks of the
    ``redaction.*`` keys); the pipeline in force is unchanged.
    """

    def __init__(self, field: str, index: int | None, value: object, reason: str) -> None:
        self.field, self.index, self.value, self.reason = field, index, value, reason
        where = field if index is None else f"{field}[{index}]"
        super().__init__(f"{reason} - at `{where}`")


class TextProcessor(Protocol):
    """A text processor: its name, its pre-check, and text in, text out."""

    name: str
    trigger: str | None

    def __call__(self, text: str) -> str: ...


class _Compiled:
    """A processor's regular expression, compiled when first used: most recordings
    never scrub a string, and compiling them all costs every start a millisecond or two.
    The compiled pattern then replaces this on the class."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, owner: type) -> re.Pattern[str]:
        pattern = re.compile(self.source)
        setattr(owner, self.name, pattern)
        return pattern


# --------------------------------------------------------------------------- structural


class SensitiveNames:
    """A value named by a sensitive word is redacted whole: arguments, dict keys,
    object fields, attribute changes, custom event fields (applied by values.py)."""

    name = "names"


class SensitivePairs:
    """A 2-item list or tuple whose first item is a sensitive word, as in a list of
    pairs ``[("user", "bob"), ("password", "x")]``: the second item is redacted."""

    name = "pairs"


# --------------------------------------------------------------------------- text


class UrlCredentials:
    """``scheme://user:secret@host`` -> ``scheme://user:<redacted>@host`` (DSNs, URLs)."""

    name = "url_credentials"
    trigger = "@"
    _pattern = _Compiled(r"(?<![A-Za-z0-9+.\-])([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*):([^\s/]+)@")

    def __call__(self, text: str) -> str:
        if "@" not in text:
            return text
        return self._pattern.sub(r"\1:" + REDACTED + "@", text)


class AuthTokens:
    """``Bearer <token>`` and ``Basic <credentials>`` (HTTP Authorization schemes).

    Any token after ``Bearer``; after ``Basic`` only a word that is not all
    lower-case letters, so that "basic usage" in prose stays readable.
    """

    name = "auth_tokens"
    trigger = "[Bb][Ee][Aa][Rr][Ee][Rr]|[Bb][Aa][Ss][Ii][Cc]"
    _token = r"[A-Za-z0-9\-._~+/]+=*"
    _pattern = _Compiled(
        r"\b([Bb][Ee][Aa][Rr][Ee][Rr]\s+)(?!"
        + re.escape(REDACTED)
        + ")"
        + _token
        + r"|\b([Bb][Aa][Ss][Ii][Cc]\s+)(?![a-z]+(?![A-Za-z0-9\-._~+/=]))"
        + _token
    )

    _quick = _Compiled(trigger)

    def __call__(self, text: str) -> str:
        if self._quick.search(text) is None:
            return text
        return self._pattern.sub(self._replace, text)

    @staticmethod
    def _replace(m: re.Match) -> str:
        return (m[1] or m[2]) + REDACTED


class KeyValues:
    """``password=hunter2``, ``"token": "abc"``, ``Authorization: Basic xyz`` in free
    text: the value after a key holding a sensitive word is redacted (a quoted
    value up to its closing quote, else up to a space, quote, ``&``, ``;`` or ``,``).

    Keys are found by their separator and then looked up (a cached substring
    check), so the cost stays linear in the text whatever the number of words.
    """

    name = "key_value"
    trigger = "[:=]"
    _key = _Compiled(r"(?<![\w.\-])([\w.\-]+)[\"']?\s*[:=]\s*")
    _scheme = r"(?:bearer|basic|digest|token)\s+"
    _value = _Compiled(
        r"(?i)\"[^\"]*\"|'[^']*'|(?!(?:" + _scheme + ")?" + re.escape(REDACTED) + ")"
        r"(?:" + _scheme + r")?[^\s\"'&;,]+"
    )

    def __init__(self, words: Iterable[str]) -> None:
        self._words = tuple(w.lower() for w in words)
        self._seen: dict[str, bool] = {}

    def _sensitive(self, key: str) -> bool:
        hit = self._seen.get(key)
        if hit is None:
            hit = holds_sensitive_word(key.lower(), self._words)
            if len(self._seen) < 4096:
                self._seen[key] = hit
        return hit

    def __call__(self, text: str) -> str:
        out: list[str] = []
        at = pos = 0
        while (key := self._key.search(text, pos)) is not None:
            pos = key.end()
            if not self._sensitive(key[1]):
                continue
            value = self._value.match(text, pos)
            if value is None:
                continue
            quote = value[0][0] if value[0][0] in "\"'" else ""
            out += (text[at:pos], quote, REDACTED, quote)
            at = pos = value.end()
        if not out:
            return text
        out.append(text[at:])
        return "".join(out)


class DatabaseDetails:
    """The values a database's error quotes from the row: PostgreSQL's ``Key
    (email)=(bob@example.com) already exists`` (unique, foreign key, exclusion
    constraints) and ``DETAIL:  Failing row contains (7, hunter2)`` (not-null and check
    constraints) keep the columns and lose the values, as a statement's parameters do.

    Both forms hold ``=`` or ``:``, which the C pre-check flags."""

    name = "db_details"
    trigger = r"\)=\(|DETAIL:\s+Failing row contains \("
    _ends = r"(?= already exists| is not present in table| is still referenced from table"
    _ends += r"| is duplicated| conflicts with existing key|\.?[ \t]*$)"
    _key = _Compiled(r"(?m)\)=\((?!" + re.escape(REDACTED) + r"\))(.*?)\)" + _ends)
    _row = _Compiled(
        r"(?m)(DETAIL:\s+Failing row contains \()(?!" + re.escape(REDACTED) + r"\))(.*)\)"
    )
    _quick = _Compiled(trigger)

    def __call__(self, text: str) -> str:
        if self._quick.search(text) is None:
            return text
        text = self._key.sub(")=(" + REDACTED + ")", text)
        return self._row.sub(r"\1" + REDACTED + ")", text)


class CardNumbers:
    """Payment card numbers: 13 to 19 digits, not starting with 0, passing the Luhn
    check, written plain or in groups separated by spaces or dashes
    (``4111 1111 1111 1111``)."""

    name = "card_numbers"
    trigger = r"[0-9](?:[ -]*[0-9]){12}"
    _long = _Compiled(trigger)
    _run = _Compiled(r"[0-9]+(?:[ -]+[0-9]+)*")
    _groups = _Compiled(r"[0-9]+")

    def __call__(self, text: str) -> str:
        if self._long.search(text) is None:
            return text
        return self._run.sub(self._replace, text)

    def _replace(self, m: re.Match) -> str:
        run = m[0]
        groups = [(g.start(), g.end()) for g in self._groups.finditer(run)]
        spans = _card_spans(run, groups)
        if not spans:
            return run
        out, at = [], 0
        for start, end in spans:
            out.append(run[at:start])
            out.append(REDACTED)
            at = end
        out.append(run[at:])
        return "".join(out)


def _card_spans(run: str, groups: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans of consecutive digit groups that form a card number, longest first from
    the left (a card followed by a year, ``4111 1111 1111 1111 2024``, is still found)."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(groups):
        found = None
        for j in range(len(groups) - 1, i - 1, -1):
            digits = "".join(run[s:e] for s, e in groups[i : j + 1])
            if 13 <= len(digits) <= 19 and digits[0] != "0" and luhn_valid(digits):
                found = j
                break
        if found is None:
            i += 1
        else:
            spans.append((groups[i][0], groups[found][1]))
            i = found + 1
    return spans


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of ASCII digits is right."""
    total = 0
    for k, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if k & 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


class Pattern:
    """A configured regular expression. A pattern without groups has each whole
    match redacted; with groups, only what the groups matched (``secret_key=(\\S+)``)."""

    trigger = None

    def __init__(self, pattern: re.Pattern, index: int) -> None:
        self.pattern = pattern
        self.name = f"extra_patterns[{index}]"

    def __call__(self, text: str) -> str:
        return self.pattern.sub(self._replace, text)

    @staticmethod
    def _replace(m: re.Match) -> str:
        if not m.re.groups:
            return REDACTED
        base, out, at = m.start(), [], 0
        for g in range(1, m.re.groups + 1):
            start, end = m.span(g)
            if start < 0 or start - base < at:
                continue  # group did not take part, or lies inside one already redacted
            out.append(m[0][at : start - base])
            out.append(REDACTED)
            at = end - base
        out.append(m[0][at:])
        return "".join(out)


PROCESSORS: dict[str, Callable[..., Any]] = {
    "names": SensitiveNames,
    "pairs": SensitivePairs,
    "card_numbers": CardNumbers,
    "key_value": KeyValues,
    "auth_tokens": AuthTokens,
    "db_details": DatabaseDetails,
    # last: the others may take spaces out of a would-be password (a grouped card number)
    "url_credentials": UrlCredentials,
}
DEFAULT_PROCESSORS: tuple[str, ...] = tuple(PROCESSORS)
_STRUCTURAL = ("names", "pairs")


# --------------------------------------------------------------------------- checks


def check_processors(processors: object) -> tuple[str, ...]:
    """Known processor names, each once, in order; else :class:`RedactionError`."""
    items = _sequence(processors, "processors", "a list of processor names")
    known = ", ".join(PROCESSORS)
    for i, name in enumerate(items):
        if type(name) is not str:
            raise RedactionError(
                "processors", i, name, f"Expected a processor name (`str`), got `{name!r}`"
            )
        if name not in PROCESSORS:
            import difflib

            near = difflib.get_close_matches(name, PROCESSORS, n=1)
            hint = f"; did you mean `{near[0]}`?" if near else ""
            raise RedactionError(
                "processors",
                i,
                name,
                f"Unknown redaction processor `{name}` (known: {known}){hint}",
            )
        if name in items[:i]:
            raise RedactionError("processors", i, name, f"Processor `{name}` is listed twice")
    return items


def check_names(names: object, field: str = "extra_names") -> tuple[str, ...]:
    """Non-empty strings, lower-cased (matched as case-insensitive substrings)."""
    items = _sequence(names, field, "a list of names")
    for i, name in enumerate(items):
        if type(name) is not str or not name.strip():
            raise RedactionError(field, i, name, f"Expected a non-empty `str`, got `{name!r}`")
    return tuple(n.lower() for n in items)


def check_patterns(patterns: object) -> tuple[re.Pattern, ...]:
    """Compiled regular expressions, or :class:`RedactionError` naming the bad one."""
    items = _sequence(patterns, "extra_patterns", "a list of regular expressions")
    compiled = []
    for i, text in enumerate(items):
        if type(text) is not str or not text:
            raise RedactionError(
                "extra_patterns",
                i,
                text,
                f"Expected a regular expression (non-empty `str`), got `{text!r}`",
            )
        try:
            pattern = re.compile(text)
        except re.error as exc:
            raise RedactionError(
                "extra_patterns", i, text, f"Invalid regular expression `{text}`: {exc}"
            ) from None
        if pattern.match(""):
            raise RedactionError(
                "extra_patterns", i, text, f"Pattern `{text}` matches the empty string"
            )
        compiled.append(pattern)
    return tuple(compiled)


def _sequence(value: object, field: str, expected: str) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise RedactionError(field, None, value, f"Expected {expected}, got `{value!r}`")
    return tuple(value)


# --------------------------------------------------------------------------- the pipeline


@dataclass(frozen=True)
class RedactionConfig:
    """What is in force: processor names in order, the sensitive words (defaults
    plus ``extra_names``, or as set by ``values.set_sensitive_names``), patterns."""

    processors: tuple[str, ...]
    extra_names: tuple[str, ...]
    extra_patterns: tuple[str, ...]
    names: tuple[str, ...]


class _Pipeline:
    """One built configuration: the text processors and the structural switches."""

    def __init__(self, config: RedactionConfig, patterns: tuple[re.Pattern, ...]) -> None:
        self.config = config
        text: list[Any] = []
        for name in config.processors:
            if name == "key_value":
                text.append(KeyValues(config.names))
            elif name not in _STRUCTURAL:
                text.append(PROCESSORS[name]())
        text.extend(Pattern(p, i) for i, p in enumerate(patterns))
        self.text = tuple(text)
        self.by_name = "names" in config.processors
        self.pairs = "pairs" in config.processors
        self.cards = "card_numbers" in config.processors
        triggers = [p.trigger for p in self.text]
        if not triggers:
            self.search: Callable[[str], Any] = _never
        elif None in triggers:
            self.search = _always
        elif _c_trigger is not None and all(type(p) in _C_KNOWN for p in self.text):
            self.search = _c_trigger  # the same pre-check in C: one pass, no regex
        else:
            self.search = re.compile("|".join(f"(?:{t})" for t in triggers)).search

    def c_flags(self) -> int:
        flags = 0
        if self.text:
            builtin = all(type(p) in _C_KNOWN for p in self.text)
            flags |= C_SCAN_STR if builtin else C_ALL_STR
        if self.pairs:
            flags |= C_PAIRS
        if self.cards:
            flags |= C_LONG_INT
        return flags


def _never(text: str) -> None:
    return None


def _always(text: str) -> bool:
    return True


# What the C accelerator must leave to Python (see _speedups.c, "redaction").
C_SCAN_STR = 1  # strings its pre-check flags (':' '=' '@', bearer/basic, 13+ digits)
C_ALL_STR = 2  # every string (a processor its pre-check does not know)
C_PAIRS = 4  # 2-item lists/tuples whose first item is a str
C_LONG_INT = 8  # ints of 13 digits or more
_C_KNOWN = (UrlCredentials, CardNumbers, KeyValues, AuthTokens, DatabaseDetails)
# The C pre-check flags a superset of the built-in processors' triggers, and a
# processor changes only text its trigger matches: same results, less work.
_c_trigger: Callable[[str], Any] | None = getattr(_select._module, "secret_trigger", None)

_DEFAULT = RedactionConfig(DEFAULT_PROCESSORS, (), (), DEFAULT_SENSITIVE_NAMES)
_pipeline = _Pipeline(_DEFAULT, ())
_search: Callable[[str], Any] = _pipeline.search
_text: tuple = _pipeline.text


def configure(
    processors: Iterable[str] | None = None,
    extra_names: Iterable[str] | None = None,
    extra_patterns: Iterable[str] | None = None,
) -> RedactionConfig:
    """Replace the pipeline; ``None`` leaves that part as it is. Returns what is in force.

    ``extra_names`` are added to :data:`DEFAULT_SENSITIVE_NAMES`. Raises
    :class:`RedactionError` (nothing changed) for an unknown processor, a bad
    name or a pattern that does not compile.
    """
    old = _pipeline.config
    procs = old.processors if processors is None else check_processors(processors)
    extra = old.extra_names if extra_names is None else check_names(extra_names)
    if extra_patterns is None:
        texts, patterns = old.extra_patterns, _current_patterns()
    else:
        texts = tuple(extra_patterns)
        patterns = check_patterns(texts)
    names = old.names if extra_names is None else _merge(DEFAULT_SENSITIVE_NAMES, extra)
    _install(RedactionConfig(procs, extra, texts, names), patterns)
    return _pipeline.config


def configure_from(get: Callable[[str], Any]) -> RedactionConfig:
    """Configure from the ``redaction.*`` configuration keys (``ConfigStore.get``)."""
    return configure(
        get("redaction.processors"), get("redaction.extra_names"), get("redaction.extra_patterns")
    )


def get_config() -> RedactionConfig:
    return _pipeline.config


def reset_defaults() -> None:
    """Every processor, the default sensitive words, no extra patterns."""
    _install(_DEFAULT, ())


def set_names(names: tuple[str, ...]) -> None:
    """The sensitive words, exactly (``values.set_sensitive_names``); checked by the caller."""
    c = _pipeline.config
    _install(
        RedactionConfig(c.processors, c.extra_names, c.extra_patterns, names), _current_patterns()
    )


def default_names() -> tuple[str, ...]:
    """The defaults plus the configured ``extra_names`` (``values.reset_sensitive_names``)."""
    return _merge(DEFAULT_SENSITIVE_NAMES, _pipeline.config.extra_names)


def _merge(first: tuple[str, ...], more: tuple[str, ...]) -> tuple[str, ...]:
    return first + tuple(dict.fromkeys(n for n in more if n not in first))


def _current_patterns() -> tuple[re.Pattern, ...]:
    return tuple(p.pattern for p in _pipeline.text if type(p) is Pattern)


def _install(config: RedactionConfig, patterns: tuple[re.Pattern, ...]) -> None:
    global _pipeline, _search, _text
    pipeline = _Pipeline(config, patterns)
    _pipeline, _search, _text = pipeline, pipeline.search, pipeline.text
    from elixirscope.capture import values

    values._use_rules(config.names, pipeline.by_name, pipeline.pairs, pipeline.cards)
    speedups = sys.modules.get("elixirscope.capture._speedups")
    if speedups is not None:
        speedups.set_redaction(pipeline.c_flags())


def c_flags() -> int:
    """What the C accelerator must leave to Python now (read when its hooks start)."""
    return _pipeline.c_flags()


# --------------------------------------------------------------------------- applying


def scrub(text: str) -> str:
    """:func:`redact_text` without the type check (values.py's hot path)."""
    if _search(text) is None:
        return text
    for processor in _text:
        text = processor(text)
    return text


def redact_text(text: str) -> str:
    """``text`` with every secret the text processors recognise replaced by ``<redacted>``."""
    if type(text) is not str:
        raise TypeError(f"Expected `str`, got `{type(text).__name__}` - at `redact_text(text)`")
    return scrub(text)


def is_sensitive_name(name: object) -> bool:
    """A value called ``name`` is redacted whole (the ``names`` processor)."""
    from elixirscope.capture import values

    return values.redact(name)


def redact_value(value: object) -> object:
    """A parameter as it may be recorded: ``str`` redacted as text, a card-number
    ``int`` as ``<redacted>``, other numbers, bools and None as they are, anything
    else as its safe, redacted text (``values.safe_repr``)."""
    from elixirscope.capture import values

    if type(value) is str:
        return scrub(value)
    if type(value) is int:
        return REDACTED if _pipeline.cards and _is_card_int(value) else value
    if value is None or type(value) in (bool, float):
        return value
    return values.safe_repr(value)


def redact_mapping(mapping: Mapping[Any, Any]) -> dict[Any, Any]:
    """A new dict: values under a sensitive key become ``<redacted>``, the others
    go through :func:`redact_value` (HTTP headers, named SQL parameters)."""
    if not isinstance(mapping, Mapping):
        raise TypeError(
            f"Expected a mapping, got `{type(mapping).__name__}` - at `redact_mapping(mapping)`"
        )
    return {
        key: REDACTED if is_sensitive_name(key) else redact_value(value)
        for key, value in mapping.items()
    }


def _is_card_int(n: int) -> bool:
    digits = str(abs(n)) if -(10**20) < n < 10**20 else ""
    return 13 <= len(digits) <= 19 and luhn_valid(digits)
