"""Every configuration key in one declarative table, and the rules that read it.

``SCHEMA`` maps a dotted path to a :class:`Key`: its type, default, check,
whether it may change while the system runs (``updatable``) and what it is
for. Nothing else in the package knows a key by name: the loader, the store,
``config/default.toml`` and its test all follow this table. To add a key, add
a row here and its commented default to ``config/default.toml``.

Paths have at most one section (``capture.batch_size``) or none
(``data_dir``); TOML tables and ``ELIXIRSCOPE_SECTION__KEY`` map onto them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from elixirscope.contracts.levels import LEVELS
from elixirscope.runtime.spec_defaults import DEFAULTS as SUPERVISOR_DEFAULTS

from .checks import (
    Boolean,
    Check,
    EndpointText,
    FloatRange,
    IntRange,
    Invalid,
    NonEmptyStr,
    OneOf,
    PowerOfTwo,
    RedactionList,
    Text,
    UrlOrEmpty,
)
from .errors import invalid_value, unknown_key

__all__ = [
    "ENVIRONMENTS",
    "SCHEMA",
    "SECTIONS",
    "UPDATABLE_KEYS",
    "Key",
    "lookup",
    "nest",
    "parse_text",
    "suggest",
    "validate",
]

ENVIRONMENTS = ("dev", "test", "prod")
MAX_SUGGEST_CHARS = 100
"""Paths longer than this get no suggestions (difflib's cost grows with the length)."""


@dataclass(frozen=True)
class Key:
    """One configuration key: what it holds, its default, and who may change it.

    ``type`` is the Python type of the stored value (``str``, ``int``,
    ``float`` or ``list``); ``check`` returns the value to store or raises ``Invalid``;
    ``updatable`` keys may be changed by ``ConfigStore.set`` and by a reload,
    the others only by a restart.
    """

    type: type
    default: object
    check: Check
    updatable: bool = False
    doc: str = ""


def _node_name() -> str:
    # os.uname() is gethostname() on POSIX without importing socket, which every
    # command would pay for when it loads the schema
    if hasattr(os, "uname"):
        host = os.uname().nodename
    else:  # pragma: no cover - Windows
        import socket

        host = socket.gethostname()
    return f"elixirscope@{host or 'localhost'}"


# fmt: off
SCHEMA: dict[str, Key] = {
    "node.name": Key(str, _node_name(), NonEmptyStr(), doc="This node's name among connected daemons (default elixirscope@<hostname>)."),
    "node.environment": Key(str, "dev", OneOf(*ENVIRONMENTS), doc="Which overlay (dev.toml, test.toml, prod.toml) is applied over default.toml."),
    "runtime.system_base": Key(str, "multiprocTCPBase", OneOf("multiprocTCPBase", "simpleSystemBase"), doc="Thespian system base: one OS process per actor, or everything in the caller's thread."),
    "runtime.admin_port": Key(int, 0, IntRange(0, 65535), doc="Thespian admin port; 0 picks a free one."),
    "runtime.bind_address": Key(str, "127.0.0.1", NonEmptyStr(), doc="Address the Thespian admin and actor sockets bind to; anything but loopback needs network.allow_remote."),
    "network.allow_remote": Key(bool, False, Boolean(), doc="Allow sockets to bind to non-loopback addresses (other machines could connect); each such bind logs a warning."),
    "network.handshake_timeout_s": Key(float, 5.0, FloatRange(0.01, 3600), doc="Seconds a connection to any endpoint may take to complete its ZeroMQ handshake (greeting and CURVE keys); one silent longer is closed, freeing its descriptor."),
    "api.endpoint": Key(str, "tcp://127.0.0.1:5555", EndpointText(), doc="Where the daemon answers Request/Response contracts (consoles, UIs, other nodes)."),
    "api.request_timeout_s": Key(float, 5.0, FloatRange(0), doc="Seconds a client waits for a Response before giving up."),
    "api.max_request_bytes": Key(int, 1 << 20, IntRange(1024, 1 << 30), doc="Largest Request frame the API answers; a bigger one is refused with limit_exceeded."),
    "api.max_depth": Key(int, 32, IntRange(2, 1000), doc="How deeply a Request's params may nest."),
    "api.max_string_chars": Key(int, 65_536, IntRange(256, 1 << 30), doc="Longest string in a Request's params."),
    "api.max_in_flight": Key(int, 64, IntRange(1), doc="Requests the API works on at once, from all clients; beyond it, busy."),
    "api.max_in_flight_per_client": Key(int, 8, IntRange(1), doc="Requests the API works on at once for one client connection; beyond it, busy."),
    "events.endpoint": Key(str, "tcp://127.0.0.1:0", EndpointText(), doc="Where Event notifications are published; port 0 picks a free one."),
    "security.curve": Key(bool, True, Boolean(), doc="CURVE-authenticate every ZeroMQ endpoint: only clients holding the node's client key are heard. Off only where nobody else can reach the machine."),
    "security.keys_dir": Key(str, "", Text(), doc="Where the node's CURVE keys are made on first start and clients read them; empty means <data_dir>/keys."),
    "data_dir": Key(str, "~/.local/share/elixirscope", NonEmptyStr(), doc="Directory for the event store and other persistent data (~ is the user's home)."),
    "supervision.max_restarts": Key(int, SUPERVISOR_DEFAULTS["max_restarts"], IntRange(0), doc="Restart intensity: more restarts than this within max_seconds and a supervisor gives up."),
    "supervision.max_seconds": Key(float, SUPERVISOR_DEFAULTS["max_seconds"], FloatRange(0), doc="The window, in seconds, over which max_restarts is counted (OTP's MaxT)."),
    "logging.level": Key(str, "info", OneOf("debug", "info", "warning", "error"), True, "Lowest level of ElixirScope's own log records that are emitted."),
    "logging.format": Key(str, "auto", OneOf("auto", "json", "console"), doc="Log output: json lines, human console lines, or auto (console on a terminal)."),
    "capture.ring_buffer_size": Key(int, 65536, PowerOfTwo(1024, 2**24), True, "Events held per process before the overflow policy applies."),
    "capture.batch_size": Key(int, 1000, IntRange(1, 100_000), True, "Events per batch shipped to the ingest endpoint."),
    "capture.overflow_policy": Key(str, "block", OneOf("drop_oldest", "drop_newest", "block"), True, "What a full ring buffer does: block (lossless: the program waits for the shipper) or drop; drops are always counted."),
    "capture.stall_timeout_s": Key(float, 5.0, FloatRange(0.001, 3600), False, "With block: seconds without progress after which a stuck pipeline makes recording drop (counted, said on stderr) instead of waiting."),
    "capture.exit_timeout_s": Key(float, 2.0, FloatRange(0, 3600), False, "At the program's exit: seconds without a batch shipping after which the events still waiting are counted as dropped and the program exits (the wait goes on while batches ship)."),
    "capture.credit_window": Key(int, 16, IntRange(1), doc="Batches a sender may have in flight before it needs more credit."),
    "capture.ingest_endpoint": Key(str, "tcp://127.0.0.1:0", EndpointText(), doc="Where host processes ship recorded events; port 0 picks a free one at start."),
    "capture.max_senders": Key(int, 1024, IntRange(1), doc="Host connections one ingest tracks; senders silent for 30 s make room for new ones."),
    "capture.max_batch_mb": Key(int, 64, IntRange(1, 2048), doc="Largest batch frame the ingest accepts, in MiB; ZeroMQ drops a connection that sends a bigger one."),
    "capture.writers": Key(int, 2, IntRange(1, 16), doc="Writer actors in the Capture layer's pool; each writes its own store shard."),
    "redaction.processors": Key(list, ["names", "pairs", "card_numbers", "key_value", "auth_tokens", "db_details", "url_credentials"], RedactionList("processors"), doc="Redaction processors applied, in order, to every value a host records."),
    "redaction.extra_names": Key(list, [], RedactionList("extra_names"), doc="Words added to the sensitive names (case-insensitive substrings of argument, key, field names)."),
    "redaction.extra_patterns": Key(list, [], RedactionList("extra_patterns"), doc="Regular expressions whose matches (or groups) are redacted from every recorded text."),
    "state.max_depth": Key(int, 16, IntRange(1, 1000), doc="Actor state is recorded as structure this deep; deeper containers are marked cut, with their size."),
    "state.max_items": Key(int, 10_000, IntRange(1, 10_000_000), doc="Items recorded per container of an actor's state; the rest are counted."),
    "state.max_string": Key(int, 4096, IntRange(16, 1 << 24), doc="Characters recorded per string of an actor's state; a longer one keeps a preview and its length."),
    "state.max_bytes": Key(int, 8 << 20, IntRange(1024, 1 << 26), doc="Encoded bytes of one whole recorded state; a bigger state is recorded shallower."),
    "state.keyframe_every": Key(int, 64, IntRange(1, 100_000), doc="Changes between whole states recorded (keyframes): the most deltas a reader applies to rebuild any state."),
    "capture.record_own_actors": Key(bool, False, Boolean(), doc="Record ElixirScope's own actors (registry, layers) in a program's recording too."),
    "capture.record_children": Key(bool, True, Boolean(), doc="elixirscope run records the Python processes the program starts afresh (subprocess, multiprocessing spawn and forkserver, uvicorn --workers/--reload, Django's autoreloader) into the same run."),
    "instrumentation.control_endpoint": Key(str, "tcp://127.0.0.1:0", EndpointText(), doc="Where hosts follow runtime trace/untrace rules; port 0 picks a free one at start."),
    "instrumentation.default_level": Key(str, "boundaries", OneOf(*LEVELS), True, "What is recorded for code without a plan of its own."),
    "instrumentation.sampling_rate": Key(float, 1.0, FloatRange(0, 1), True, "Fraction of traced calls recorded (1 records all)."),
    "store.max_age_hours": Key(float, 168.0, FloatRange(0, 876_000), True, "Events older than this are pruned; 0 keeps them forever."),
    "store.max_size_mb": Key(int, 1024, IntRange(0), True, "The event store is pruned, oldest first, to stay under this size; 0 means no limit."),
    "store.writer_process_after_s": Key(float, 3.0, FloatRange(0, 86_400), doc="elixirscope run stores its batches in its own thread; one that comes this many seconds after the first shows a long run, and it and the rest go to a writer process of its own (off the program's GIL). 0: time never starts one."),
    "store.writer_process_after_events": Key(int, 50_000, IntRange(0), doc="elixirscope run hands its batches to a writer process of its own once it has recorded this many events, however young it is (a busy run: storing them in the program's process costs its GIL more than the writer's start). 0: the count never starts one; both 0 store every batch in the recording process."),
    "store.writer_nice": Key(int, 10, IntRange(0, 19), doc="How much lower than the recording program the store's writer process runs (its nice increment): on a busy machine the program goes first and the pipe and the ring hold what the writer has not stored yet (on an idle core it keeps up as before; a writer that falls behind slows the program through the ring's overflow policy, as any slow store does). 0: the program's priority."),
    "store.prune_interval_s": Key(float, 60.0, FloatRange(0), doc="Seconds between Foundation's retention passes over shards no writer holds."),
    "telemetry.report_interval_ms": Key(int, 1000, IntRange(100), True, "Milliseconds between telemetry reports."),
    "config.reload_interval_ms": Key(int, 1000, IntRange(100), doc="Milliseconds between checks of the config file for changes."),
    "integrations.sqlite3": Key(bool, True, Boolean(), doc="elixirscope run records sqlite3 queries and transactions once the program imports sqlite3 (integrations/sqlite.py says what is wrapped)."),
    "integrations.sqlalchemy": Key(bool, True, Boolean(), doc="elixirscope run records SQLAlchemy's queries and transactions (sync and async engines, through its event API) once the program imports sqlalchemy."),
    "integrations.psycopg": Key(bool, True, Boolean(), doc="elixirscope run records psycopg 3 queries and transactions (sync and asyncio) once the program imports psycopg."),
    "integrations.pubsub": Key(bool, True, Boolean(), doc="elixirscope run records the runtime registry's dispatches: each publish and each delivery, linked."),
    "integrations.request_sampling": Key(float, 1.0, FloatRange(0, 1), doc="Share of web requests elixirscope run records, 0 to 1 (1 records every one). Below 1 a request with a traceparent follows its caller's sampled flag, one without is decided by its trace id; a request left out records nothing under it, and the run says how many were left out."),
    "integrations.db_parameters": Key(str, "redacted", OneOf("redacted", "values", "none"), doc="SQL parameters in recorded queries: redacted (each value shown as <redacted>), values (through the redaction rules) or none (left out)."),
    "integrations.starlette": Key(bool, True, Boolean(), doc="Under elixirscope run, record each request of every Starlette/FastAPI application (Starlette.__call__ wrapped, recording as ElixirScopeMiddleware does)."),
    "integrations.flask": Key(bool, True, Boolean(), doc="Under elixirscope run, record each request of every Flask application (Flask.wsgi_app wrapped in ElixirScopeWSGIMiddleware)."),
    "integrations.django": Key(bool, True, Boolean(), doc="Under elixirscope run, record each request of every Django project (WSGIHandler and ASGIHandler wrapped as the middlewares record, with the route and handled 500s)."),
    "integrations.thespian": Key(bool, True, Boolean(), doc="elixirscope run records plain Thespian actors (not the runtime's GenServers): each send and receive, linked, and each actor's state after each message."),
    "integrations.httpx": Key(bool, True, Boolean(), doc="Under elixirscope run, record each request httpx's default transports send, with a traceparent header added."),
    "integrations.urllib3": Key(bool, True, Boolean(), doc="Under elixirscope run, record each attempt urllib3 (and requests) makes, with a traceparent header added."),
    "insights.n_plus_one_min_queries": Key(int, 5, IntRange(2, 1_000_000), doc="N+1 queries: this many similar queries (same normalized SQL, same line) under one request or chain make a finding (Sentry's rule: 5); likewise N+1 HTTP calls (same method and URL shape, from one function)."),
    "insights.n_plus_one_min_total_ms": Key(float, 50.0, FloatRange(0, 3_600_000), doc="N+1 queries and HTTP calls: ... and they took at least this many milliseconds together (Sentry's rule: 50); fewer is a low finding (the pattern, not yet the cost)."),
    "insights.row_writes_min_statements": Key(int, 10, IntRange(2, 1_000_000), doc="Row-by-row writes: this many single-row writes (the same normalized INSERT/UPDATE/DELETE, from the same line, each its own execute) under one request or chain make a finding."),
    "insights.row_writes_min_total_ms": Key(float, 50.0, FloatRange(0, 3_600_000), doc="Row-by-row writes: ... and they took at least this many milliseconds together; fewer is a low finding (the pattern, not yet the cost)."),
    "insights.latency_factor": Key(float, 3.0, FloatRange(1, 1_000_000), doc="Latency anomaly: a function's or route's median this many times its baseline p95 (earlier runs of the same data dir)."),
    "insights.latency_min_ms": Key(float, 5.0, FloatRange(0, 3_600_000), doc="Latency anomaly: ... and at least this many milliseconds slower (tiny functions are noise)."),
    "insights.latency_min_samples": Key(int, 3, IntRange(1, 1_000_000), doc="Latency anomaly: calls needed in the run and in the baseline before a function or route is compared."),
    "insights.baseline_runs": Key(int, 5, IntRange(1, 1000), doc="Latency baseline: how many earlier runs of the data dir it is built from (the newest ones)."),
    "insights.restart_storm_restarts": Key(int, 3, IntRange(2, 1_000_000), doc="Restart storm: this many restarts under one supervisor within restart_window_s."),
    "insights.restart_window_s": Key(float, 10.0, FloatRange(0.001, 86_400), doc="Restart storm: the window, in seconds, the restarts are counted over."),
    "insights.crash_loop_crashes": Key(int, 3, IntRange(2, 1_000_000), doc="Crash loop: one child exiting this many times for the same reason (fewer exits are a crash finding)."),
    "insights.mailbox_depth": Key(int, 50, IntRange(2, 1_000_000_000), doc="Mailbox growth: messages waiting for one actor (sent, not yet received) at some moment."),
    "insights.slow_http_ms": Key(float, 1000.0, FloatRange(0, 3_600_000), doc="Slow external call: an outgoing HTTP attempt taking at least this many milliseconds."),
    "insights.slow_handler_ms": Key(float, 200.0, FloatRange(0, 3_600_000), doc="Slow handler: an actor callback holding its actor at least this many milliseconds of its own (outgoing HTTP calls aside), with slow_factor."),
    "insights.slow_request_ms": Key(float, 1000.0, FloatRange(0, 3_600_000), doc="Slow request: a web request taking at least this many milliseconds of its own (its chain's actor callbacks and HTTP calls aside), with slow_factor."),
    "insights.slow_factor": Key(float, 10.0, FloatRange(1, 1_000_000), doc="Slow handler or request: ... and at least this many times the run's median callback or request (when the run has latency_min_samples of them)."),
    "insights.blocked_loop_ms": Key(float, 100.0, FloatRange(1, 3_600_000), doc="Blocked event loop: a coroutine running at least this many milliseconds without an await (asyncio's debug mode warns at 100)."),
    "insights.ui_url": Key(str, "", UrlOrEmpty(), doc="The cinema's URL (as `elixirscope ui` prints it, token included): `insights` prints each finding's link whole; empty prints the part after the URL."),
    "ai.provider": Key(str, "offline", OneOf("offline", "openai", "gemini"), doc="Who writes explanations: offline (rules, no network), an OpenAI-compatible chat-completions API, or Gemini."),
    "ai.openai_url": Key(str, "https://api.openai.com/v1", NonEmptyStr(), doc="Base URL of the OpenAI-compatible API (its /chat/completions is asked)."),
    "ai.openai_model": Key(str, "gpt-4o-mini", NonEmptyStr(), doc="The model named in chat-completions requests."),
    "ai.openai_key_var": Key(str, "OPENAI_API_KEY", Text(), doc="The environment variable holding the OpenAI-compatible API key (the key itself is never stored); empty sends none."),
    "ai.gemini_url": Key(str, "https://generativelanguage.googleapis.com/v1beta", NonEmptyStr(), doc="Base URL of the Gemini API (models/<model>:generateContent is asked)."),
    "ai.gemini_model": Key(str, "gemini-1.5-flash", NonEmptyStr(), doc="The Gemini model asked."),
    "ai.gemini_key_var": Key(str, "GEMINI_API_KEY", Text(), doc="The environment variable holding the Gemini API key (never stored)."),
    "ai.timeout_s": Key(float, 30.0, FloatRange(0.01, 3600), doc="Seconds one provider request may take (connect, each read) before it is a timeout."),
    "ai.max_retries": Key(int, 3, IntRange(0, 20), doc="Retries of a provider request after a timeout, a connection error, 429 or 5xx."),
    "ai.backoff_s": Key(float, 0.5, FloatRange(0, 600), doc="First wait before a retry, doubled each time (a 429's Retry-After is honoured instead, up to 60 s)."),
    "ai.breaker_failures": Key(int, 5, IntRange(1, 1000), doc="Failed requests in a row after which the circuit opens: no request is sent until breaker_reset_s has passed."),
    "ai.breaker_reset_s": Key(float, 60.0, FloatRange(0, 86_400), doc="Seconds the circuit stays open before one trial request is let through."),
    "ai.requests_per_minute": Key(int, 20, IntRange(1, 100_000), doc="Provider requests per minute at most (a request beyond it waits for its turn)."),
    "ai.daily_token_budget": Key(int, 200_000, IntRange(0), doc="Tokens (prompt and answer, as the provider counts them, else estimated) per UTC day; 0: no limit. Counted under <data_dir>/ai/usage.json."),
    "ai.max_context_chars": Key(int, 24_000, IntRange(1000, 1_000_000), doc="Largest context sent with one question (source, call path, state, evidence), in characters."),
}
# fmt: on

SECTIONS: frozenset[str] = frozenset(p.rpartition(".")[0] for p in SCHEMA if "." in p)
UPDATABLE_KEYS: tuple[str, ...] = tuple(p for p, k in SCHEMA.items() if k.updatable)


# ------------------------------------------------------------------ checking


def validate(path: str, value: object, source: str) -> object:
    """The value to store for ``path``, or :class:`ConfigError` in the one grammar."""
    check = SCHEMA[path].check
    try:
        return check(value)
    except Invalid as exc:
        raise invalid_value(check.expected, value, path, source, exc.detail) from None


def parse_text(path: str, text: str) -> object:
    """A value typed as text (env var, console) read as a TOML literal if it is one.

    ``"500"`` becomes ``500`` and ``"0.5"`` becomes ``0.5``; text that is not a
    TOML literal (``debug``, ``tcp://x:1``) stays a string. For a ``str`` key
    the text is kept as typed unless it is a quoted TOML string, so a node
    named ``123`` stays ``"123"``.
    """
    if "\n" in text or "\r" in text:
        return text
    try:
        parsed = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    if SCHEMA[path].type is str and not isinstance(parsed, str):
        return text
    return parsed


# ------------------------------------------------------------------ paths


def lookup(path: str, source: str) -> Key:
    """The key at ``path``, or an ``unknown_key`` error suggesting close ones."""
    try:
        return SCHEMA[path]
    except KeyError:
        raise unknown_key(path, source, suggest(path)) from None


def suggest(path: str, n: int = 3) -> tuple[str, ...]:
    """Known keys or sections a mistyped ``path`` probably meant (a section: its keys).

    A candidate scores the best of: whole path against whole path
    (``capture.batchsize``), last part against last part (``batch_size`` in the
    wrong section), and the last part found inside the candidate's
    (``node.env``). Only candidates close to the best score are offered, so a
    clear typo gets one suggestion rather than three.
    """
    if path in SECTIONS:
        return tuple(p for p in SCHEMA if p.startswith(path + "."))[:n]
    if len(path) > MAX_SUGGEST_CHARS:  # no key is this long; comparing would only cost time
        return ()
    scores = {name: _likeness(path, name) for name in (*SCHEMA, *sorted(SECTIONS))}
    best = max(scores.values())
    ranked = sorted(scores, key=lambda name: -scores[name])
    return tuple(name for name in ranked if scores[name] >= max(0.75, best - 0.1))[:n]


def _likeness(path: str, known: str) -> float:
    from difflib import SequenceMatcher  # only after a mistake: its import would cost every start

    leaf, known_leaf = path.rpartition(".")[2], known.rpartition(".")[2]
    inside = 0.8 if len(leaf) >= 3 and leaf in known_leaf else 0.0
    ratio = SequenceMatcher(None, path, known).ratio()
    return max(ratio, SequenceMatcher(None, leaf, known_leaf).ratio(), inside)


def nest(flat: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    """Dotted paths (under ``prefix``) as nested dicts, in schema order."""
    start = f"{prefix}." if prefix else ""
    out: dict[str, object] = {}
    for path in _ordered(flat):
        if not path.startswith(start):
            continue
        *sections, leaf = path[len(start) :].split(".")
        table = out
        for section in sections:
            table = table.setdefault(section, {})  # type: ignore[assignment]
        table[leaf] = flat[path]
    return out


def _ordered(paths: Iterable[str]) -> list[str]:
    order = {p: i for i, p in enumerate(SCHEMA)}
    return sorted(paths, key=lambda p: order.get(p, len(order)))
