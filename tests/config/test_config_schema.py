"""The key table: defaults pass their checks, each check's exact message, text parsing."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from elixirscope.config import SCHEMA, UPDATABLE_KEYS, ConfigError
from elixirscope.config.schema import parse_text, suggest, validate

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def test_every_default_passes_its_own_check():
    for path, key in SCHEMA.items():
        assert validate(path, key.default, "default") == key.default, path
        assert isinstance(key.default, key.type), path
        assert key.doc, f"{path} has no doc"


def test_updatable_keys_are_exactly_the_ones_marked_at_runtime():
    assert UPDATABLE_KEYS == (
        "logging.level",
        "capture.ring_buffer_size",
        "capture.batch_size",
        "capture.overflow_policy",
        "instrumentation.default_level",
        "instrumentation.sampling_rate",
        "store.max_age_hours",
        "store.max_size_mb",
        "telemetry.report_interval_ms",
    )


def test_node_name_defaults_to_elixirscope_at_hostname():
    assert re.fullmatch(r"elixirscope@.+", SCHEMA["node.name"].default)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("node.name", "", "Expected `non-empty str`, got `''` - at `node.name` (from f.toml)"),
        ("node.name", 7, "Expected `non-empty str`, got `7` - at `node.name` (from f.toml)"),
        (
            "node.environment",
            "staging",
            "Expected `'dev' | 'test' | 'prod'`, got `'staging'` - at `node.environment` (from f.toml)",
        ),
        (
            "runtime.system_base",
            "multiprocQueueBase",
            "Expected `'multiprocTCPBase' | 'simpleSystemBase'`, got `'multiprocQueueBase'` - at `runtime.system_base` (from f.toml)",
        ),
        (
            "runtime.admin_port",
            65536,
            "Expected `int 0..65535`, got `65536` - at `runtime.admin_port` (from f.toml)",
        ),
        (
            "runtime.admin_port",
            -1,
            "Expected `int 0..65535`, got `-1` - at `runtime.admin_port` (from f.toml)",
        ),
        (
            "runtime.bind_address",
            "",
            "Expected `non-empty str`, got `''` - at `runtime.bind_address` (from f.toml)",
        ),
        (
            "network.allow_remote",
            1,
            "Expected `true or false`, got `1` - at `network.allow_remote` (from f.toml)",
        ),
        (
            "network.handshake_timeout_s",
            0,
            "Expected `float 0.01..3600`, got `0` - at `network.handshake_timeout_s` (from f.toml)",
        ),
        (
            "api.endpoint",
            "tcp://127.0.0.1",
            "Expected `tcp://HOST:PORT or ipc://PATH`, got `'tcp://127.0.0.1'` - at `api.endpoint` (from f.toml): missing :PORT",
        ),
        (
            "api.endpoint",
            "http://x:80",
            "Expected `tcp://HOST:PORT or ipc://PATH`, got `'http://x:80'` - at `api.endpoint` (from f.toml): unsupported transport 'http'",
        ),
        (
            "api.request_timeout_s",
            0,
            "Expected `float > 0`, got `0` - at `api.request_timeout_s` (from f.toml)",
        ),
        (
            "api.request_timeout_s",
            float("inf"),
            "Expected `float > 0`, got `inf` - at `api.request_timeout_s` (from f.toml)",
        ),
        (
            "events.endpoint",
            "tcp://h:99999",
            "Expected `tcp://HOST:PORT or ipc://PATH`, got `'tcp://h:99999'` - at `events.endpoint` (from f.toml): port must be 1-65535, 0 or *, got '99999'",
        ),
        ("data_dir", "  ", "Expected `non-empty str`, got `'  '` - at `data_dir` (from f.toml)"),
        (
            "supervision.max_restarts",
            "x",
            "Expected `int >= 0`, got `'x'` - at `supervision.max_restarts` (from f.toml)",
        ),
        (
            "supervision.max_restarts",
            True,
            "Expected `int >= 0`, got `True` - at `supervision.max_restarts` (from f.toml)",
        ),
        (
            "supervision.max_seconds",
            -1.5,
            "Expected `float > 0`, got `-1.5` - at `supervision.max_seconds` (from f.toml)",
        ),
        (
            "logging.level",
            "DEBUG",
            "Expected `'debug' | 'info' | 'warning' | 'error'`, got `'DEBUG'` - at `logging.level` (from f.toml)",
        ),
        (
            "logging.format",
            "xml",
            "Expected `'auto' | 'json' | 'console'`, got `'xml'` - at `logging.format` (from f.toml)",
        ),
        (
            "capture.ring_buffer_size",
            1000,
            "Expected `int power of two 1024..16777216`, got `1000` - at `capture.ring_buffer_size` (from f.toml)",
        ),
        (
            "capture.ring_buffer_size",
            2**25,
            "Expected `int power of two 1024..16777216`, got `33554432` - at `capture.ring_buffer_size` (from f.toml)",
        ),
        (
            "capture.batch_size",
            0,
            "Expected `int 1..100000`, got `0` - at `capture.batch_size` (from f.toml)",
        ),
        (
            "capture.batch_size",
            1.0,
            "Expected `int 1..100000`, got `1.0` - at `capture.batch_size` (from f.toml)",
        ),
        (
            "capture.overflow_policy",
            "sample",
            "Expected `'drop_oldest' | 'drop_newest' | 'block'`, got `'sample'` - at `capture.overflow_policy` (from f.toml)",
        ),
        (
            "capture.stall_timeout_s",
            0,
            "Expected `float 0.001..3600`, got `0` - at `capture.stall_timeout_s` (from f.toml)",
        ),
        (
            "capture.exit_timeout_s",
            -1,
            "Expected `float 0..3600`, got `-1` - at `capture.exit_timeout_s` (from f.toml)",
        ),
        (
            "capture.credit_window",
            0,
            "Expected `int >= 1`, got `0` - at `capture.credit_window` (from f.toml)",
        ),
        (
            "capture.ingest_endpoint",
            "udp://h:1",
            "Expected `tcp://HOST:PORT or ipc://PATH`, got `'udp://h:1'` - at `capture.ingest_endpoint` (from f.toml): unsupported transport 'udp'",
        ),
        ("capture.writers", 17, "Expected `int 1..16`, got `17` - at `capture.writers` (from f.toml)"),
        ("capture.max_senders", 0, "Expected `int >= 1`, got `0` - at `capture.max_senders` (from f.toml)"),
        ("capture.max_batch_mb", 4096, "Expected `int 1..2048`, got `4096` - at `capture.max_batch_mb` (from f.toml)"),
        ("api.max_request_bytes", 10, "Expected `int 1024..1073741824`, got `10` - at `api.max_request_bytes` (from f.toml)"),
        ("api.max_depth", 1, "Expected `int 2..1000`, got `1` - at `api.max_depth` (from f.toml)"),
        ("api.max_string_chars", 0, "Expected `int 256..1073741824`, got `0` - at `api.max_string_chars` (from f.toml)"),
        ("api.max_in_flight", 0, "Expected `int >= 1`, got `0` - at `api.max_in_flight` (from f.toml)"),
        ("api.max_in_flight_per_client", 0, "Expected `int >= 1`, got `0` - at `api.max_in_flight_per_client` (from f.toml)"),
        (
            "redaction.processors",
            ["names", "url_creds"],
            "Expected `list of processor names`, got `['names', 'url_creds']` - at `redaction.processors` (from f.toml): item [1]: Unknown redaction processor `url_creds` (known: names, pairs, card_numbers, key_value, auth_tokens, db_details, url_credentials); did you mean `url_credentials`?",
        ),
        (
            "redaction.processors",
            "names",
            "Expected `list of processor names`, got `'names'` - at `redaction.processors` (from f.toml)",
        ),
        (
            "redaction.extra_names",
            ["pin", ""],
            "Expected `list of non-empty str`, got `['pin', '']` - at `redaction.extra_names` (from f.toml): item [1]: Expected a non-empty `str`, got `''`",
        ),
        (
            "redaction.extra_patterns",
            ["sk_[0-9]+", "a("],
            "Expected `list of regular expressions`, got `['sk_[0-9]+', 'a(']` - at `redaction.extra_patterns` (from f.toml): item [1]: Invalid regular expression `a(`: missing ), unterminated subpattern at position 1",
        ),
        ("state.max_depth", 0, "Expected `int 1..1000`, got `0` - at `state.max_depth` (from f.toml)"),
        ("state.max_items", 0, "Expected `int 1..10000000`, got `0` - at `state.max_items` (from f.toml)"),
        ("state.max_string", 8, "Expected `int 16..16777216`, got `8` - at `state.max_string` (from f.toml)"),
        ("state.max_bytes", 10, "Expected `int 1024..67108864`, got `10` - at `state.max_bytes` (from f.toml)"),
        ("state.keyframe_every", 0, "Expected `int 1..100000`, got `0` - at `state.keyframe_every` (from f.toml)"),
        ("capture.record_own_actors", "yes",
         "Expected `true or false`, got `'yes'` - at `capture.record_own_actors` (from f.toml)"),
        ("capture.record_children", 1,
         "Expected `true or false`, got `1` - at `capture.record_children` (from f.toml)"),
        ("integrations.starlette", "off",
         "Expected `true or false`, got `'off'` - at `integrations.starlette` (from f.toml)"),
        ("integrations.flask", "off",
         "Expected `true or false`, got `'off'` - at `integrations.flask` (from f.toml)"),
        ("integrations.django", "off",
         "Expected `true or false`, got `'off'` - at `integrations.django` (from f.toml)"),
        ("integrations.httpx", "off",
         "Expected `true or false`, got `'off'` - at `integrations.httpx` (from f.toml)"),
        ("integrations.urllib3", "off",
         "Expected `true or false`, got `'off'` - at `integrations.urllib3` (from f.toml)"),
        (
            "instrumentation.control_endpoint",
            "tcp://h",
            "Expected `tcp://HOST:PORT or ipc://PATH`, got `'tcp://h'` - at `instrumentation.control_endpoint` (from f.toml): missing :PORT",
        ),
        ("store.max_age_hours", -1, "Expected `float 0..876000`, got `-1` - at `store.max_age_hours` (from f.toml)"),
        ("security.curve", "yes", "Expected `true or false`, got `'yes'` - at `security.curve` (from f.toml)"),
        ("integrations.sqlite3", "yes", "Expected `true or false`, got `'yes'` - at `integrations.sqlite3` (from f.toml)"),
        ("integrations.sqlalchemy", "yes", "Expected `true or false`, got `'yes'` - at `integrations.sqlalchemy` (from f.toml)"),
        ("integrations.psycopg", "yes", "Expected `true or false`, got `'yes'` - at `integrations.psycopg` (from f.toml)"),
        ("integrations.pubsub", "yes", "Expected `true or false`, got `'yes'` - at `integrations.pubsub` (from f.toml)"),
        ("integrations.thespian", 0.5, "Expected `true or false`, got `0.5` - at `integrations.thespian` (from f.toml)"),
        ("integrations.request_sampling", 1.5,
         "Expected `float 0..1`, got `1.5` - at `integrations.request_sampling` (from f.toml)"),
        ("integrations.db_parameters", "all",
         "Expected `'redacted' | 'values' | 'none'`, got `'all'` - at `integrations.db_parameters` (from f.toml)"),
        ("security.keys_dir", 7, "Expected `str`, got `7` - at `security.keys_dir` (from f.toml)"),
        ("store.max_size_mb", 1.5, "Expected `int >= 0`, got `1.5` - at `store.max_size_mb` (from f.toml)"),
        ("store.writer_process_after_s", -1,
         "Expected `float 0..86400`, got `-1` - at `store.writer_process_after_s` (from f.toml)"),
        ("store.writer_process_after_events", -1,
         "Expected `int >= 0`, got `-1` - at `store.writer_process_after_events` (from f.toml)"),
        ("store.writer_nice", 20,
         "Expected `int 0..19`, got `20` - at `store.writer_nice` (from f.toml)"),
        ("store.prune_interval_s", 0,
         "Expected `float > 0`, got `0` - at `store.prune_interval_s` (from f.toml)"),
        (
            "instrumentation.default_level",
            "all",
            "Expected `'none' | 'boundaries' | 'args' | 'full'`, got `'all'` - at `instrumentation.default_level` (from f.toml)",
        ),
        (
            "instrumentation.sampling_rate",
            1.5,
            "Expected `float 0..1`, got `1.5` - at `instrumentation.sampling_rate` (from f.toml)",
        ),
        (
            "instrumentation.sampling_rate",
            float("nan"),
            "Expected `float 0..1`, got `nan` - at `instrumentation.sampling_rate` (from f.toml)",
        ),
        (
            "telemetry.report_interval_ms",
            99,
            "Expected `int >= 100`, got `99` - at `telemetry.report_interval_ms` (from f.toml)",
        ),
        ("insights.n_plus_one_min_queries", -1, 'Expected `int 2..1000000`, got `-1` - at `insights.n_plus_one_min_queries` (from f.toml)'),
        ("insights.n_plus_one_min_total_ms", -1, 'Expected `float 0..3.6e+06`, got `-1` - at `insights.n_plus_one_min_total_ms` (from f.toml)'),
        ("insights.row_writes_min_statements", 1, 'Expected `int 2..1000000`, got `1` - at `insights.row_writes_min_statements` (from f.toml)'),
        ("insights.row_writes_min_total_ms", -1, 'Expected `float 0..3.6e+06`, got `-1` - at `insights.row_writes_min_total_ms` (from f.toml)'),
        ("insights.latency_factor", -1, 'Expected `float 1..1e+06`, got `-1` - at `insights.latency_factor` (from f.toml)'),
        ("insights.latency_min_ms", -1, 'Expected `float 0..3.6e+06`, got `-1` - at `insights.latency_min_ms` (from f.toml)'),
        ("insights.latency_min_samples", -1, 'Expected `int 1..1000000`, got `-1` - at `insights.latency_min_samples` (from f.toml)'),
        ("insights.baseline_runs", -1, 'Expected `int 1..1000`, got `-1` - at `insights.baseline_runs` (from f.toml)'),
        ("insights.restart_storm_restarts", -1, 'Expected `int 2..1000000`, got `-1` - at `insights.restart_storm_restarts` (from f.toml)'),
        ("insights.restart_window_s", -1, 'Expected `float 0.001..86400`, got `-1` - at `insights.restart_window_s` (from f.toml)'),
        ("insights.crash_loop_crashes", -1, 'Expected `int 2..1000000`, got `-1` - at `insights.crash_loop_crashes` (from f.toml)'),
        ("insights.mailbox_depth", -1, 'Expected `int 2..1000000000`, got `-1` - at `insights.mailbox_depth` (from f.toml)'),
        ("insights.slow_http_ms", -1, 'Expected `float 0..3.6e+06`, got `-1` - at `insights.slow_http_ms` (from f.toml)'),
        ("insights.slow_handler_ms", -1, 'Expected `float 0..3.6e+06`, got `-1` - at `insights.slow_handler_ms` (from f.toml)'),
        ("insights.slow_request_ms", -1, 'Expected `float 0..3.6e+06`, got `-1` - at `insights.slow_request_ms` (from f.toml)'),
        ("insights.slow_factor", 0.5, 'Expected `float 1..1e+06`, got `0.5` - at `insights.slow_factor` (from f.toml)'),
        ("insights.blocked_loop_ms", 0, 'Expected `float 1..3.6e+06`, got `0` - at `insights.blocked_loop_ms` (from f.toml)'),
        ("insights.ui_url", 7, 'Expected `empty or an http(s):// URL`, got `7` - at `insights.ui_url` (from f.toml)'),
        ("ai.provider", 'claude', "Expected `'offline' | 'openai' | 'gemini'`, got `'claude'` - at `ai.provider` (from f.toml)"),
        ("ai.openai_url", 7, 'Expected `non-empty str`, got `7` - at `ai.openai_url` (from f.toml)'),
        ("ai.openai_model", 7, 'Expected `non-empty str`, got `7` - at `ai.openai_model` (from f.toml)'),
        ("ai.openai_key_var", 7, 'Expected `str`, got `7` - at `ai.openai_key_var` (from f.toml)'),
        ("ai.gemini_url", 7, 'Expected `non-empty str`, got `7` - at `ai.gemini_url` (from f.toml)'),
        ("ai.gemini_model", 7, 'Expected `non-empty str`, got `7` - at `ai.gemini_model` (from f.toml)'),
        ("ai.gemini_key_var", 7, 'Expected `str`, got `7` - at `ai.gemini_key_var` (from f.toml)'),
        ("ai.timeout_s", -1, 'Expected `float 0.01..3600`, got `-1` - at `ai.timeout_s` (from f.toml)'),
        ("ai.max_retries", -1, 'Expected `int 0..20`, got `-1` - at `ai.max_retries` (from f.toml)'),
        ("ai.backoff_s", -1, 'Expected `float 0..600`, got `-1` - at `ai.backoff_s` (from f.toml)'),
        ("ai.breaker_failures", -1, 'Expected `int 1..1000`, got `-1` - at `ai.breaker_failures` (from f.toml)'),
        ("ai.breaker_reset_s", -1, 'Expected `float 0..86400`, got `-1` - at `ai.breaker_reset_s` (from f.toml)'),
        ("ai.requests_per_minute", -1, 'Expected `int 1..100000`, got `-1` - at `ai.requests_per_minute` (from f.toml)'),
        ("ai.daily_token_budget", -1, 'Expected `int >= 0`, got `-1` - at `ai.daily_token_budget` (from f.toml)'),
        ("ai.max_context_chars", -1, 'Expected `int 1000..1000000`, got `-1` - at `ai.max_context_chars` (from f.toml)'),
        (
            "config.reload_interval_ms",
            [1000],
            "Expected `int >= 100`, got `[1000]` - at `config.reload_interval_ms` (from f.toml)",
        ),
    ],
)
def test_each_check_refuses_with_the_exact_message(path, value, message):
    with pytest.raises(ConfigError) as info:
        validate(path, value, "f.toml")
    err = info.value
    assert str(err) == message
    assert (err.code, err.path, err.source) == ("invalid_value", path, "f.toml")
    assert err.value is value or err.value == value


def test_every_key_has_a_refusal_case_above():
    """A new key must come with its own message test."""
    params = test_each_check_refuses_with_the_exact_message.pytestmark[0].args[1]
    assert {p[0] for p in params} == set(SCHEMA)


def test_float_keys_store_ints_as_floats_and_keep_edge_values():
    assert validate("api.request_timeout_s", 5, "x") == 5.0
    assert type(validate("api.request_timeout_s", 5, "x")) is float
    assert validate("instrumentation.sampling_rate", 0, "x") == 0.0
    assert validate("capture.ring_buffer_size", 2**24, "x") == 2**24
    assert validate("api.endpoint", "ipc:///tmp/es.sock", "x") == "ipc:///tmp/es.sock"


@pytest.mark.parametrize(
    ("path", "text", "value"),
    [
        ("capture.batch_size", "500", 500),
        ("instrumentation.sampling_rate", "0.5", 0.5),
        ("logging.level", "debug", "debug"),
        ("logging.level", '"debug"', "debug"),
        ("node.name", "123", "123"),
        ("node.name", "2024-01-01", "2024-01-01"),
        ("capture.batch_size", "true", True),
        ("capture.batch_size", "1_000", 1000),
        ("api.endpoint", "tcp://127.0.0.1:1", "tcp://127.0.0.1:1"),
        ("capture.batch_size", "1\nx = 2", "1\nx = 2"),
        ("capture.batch_size", "", ""),
    ],
)
def test_text_is_read_as_a_toml_literal_when_it_is_one(path, text, value):
    parsed = parse_text(path, text)
    assert parsed == value and type(parsed) is type(value)


def test_suggestions_cover_typos_misplaced_keys_and_sections():
    assert suggest("capture.batchsize")[0] == "capture.batch_size"
    assert "capture.batch_size" in suggest("batch_size")
    assert suggest("loging.level")[0] == "logging.level"
    assert suggest("capture") == (
        "capture.ring_buffer_size",
        "capture.batch_size",
        "capture.overflow_policy",
    )
    assert suggest("loging") == ("logging",)
    assert suggest("node.env") == ("node.environment",)
    assert suggest("zzz.qqq") == ()


def _uncommented_defaults() -> dict:
    """default.toml with every `# key = value` line uncommented, flattened."""
    text = (CONFIG_DIR / "default.toml").read_text()
    text = re.sub(r"(?m)^# ([a-z_][a-z_0-9]* = .*)$", r"\1", text)
    flat = {}
    for name, value in tomllib.loads(text).items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for leaf, v in items:
            flat[name if leaf is None else f"{name}.{leaf}"] = v
    return flat


def test_default_toml_documents_every_key_with_its_built_in_default():
    documented = _uncommented_defaults()
    assert set(documented) == set(SCHEMA)
    for path, key in SCHEMA.items():
        expected = "elixirscope@<hostname>" if path == "node.name" else key.default
        assert documented[path] == expected, path
        assert type(documented[path]) is key.type, path


def test_default_toml_marks_exactly_the_updatable_keys_runtime():
    text = (CONFIG_DIR / "default.toml").read_text()
    marked, section, pending = set(), "", False
    for line in text.splitlines():
        if not line.strip():
            pending = False
        elif line.startswith("["):
            section = line.strip("[]") + "."
        elif "(runtime)" in line:
            pending = True
        elif m := re.match(r"^# ([a-z_]+) = ", line):
            if pending:
                marked.add(section + m[1] if section else m[1])
            pending = False
    assert marked == set(UPDATABLE_KEYS)
