"""ConfigStore: get, set, configure and reload, with sources kept straight."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elixirscope.config import (
    SCHEMA,
    UPDATABLE_KEYS,
    Change,
    ConfigError,
    ConfigErrors,
    ConfigStore,
    Refusal,
)
from elixirscope.config.checks import FloatRange, IntRange, OneOf, PowerOfTwo


def store_with(tmp_path, text="", env=None, environment=None):
    user = tmp_path / "user.toml"
    user.write_text(text)
    return ConfigStore.load(user, environment, {} if env is None else env), user


# ------------------------------------------------------------------ get


def test_get_a_key_a_section_and_everything(tmp_path):
    store, user = store_with(tmp_path, "[capture]\nbatch_size = 10\n")
    assert store.get("capture.batch_size") == 10
    assert store.get("capture") == {
        "ring_buffer_size": 65536,
        "batch_size": 10,
        "overflow_policy": "block",
        "stall_timeout_s": 5.0,
        "exit_timeout_s": 2.0,
        "credit_window": 16,
        "max_senders": 1024,
        "max_batch_mb": 64,
        "ingest_endpoint": "tcp://127.0.0.1:0",
        "writers": 2,
        "record_own_actors": False,
        "record_children": True,
    }
    assert store.get("data_dir") == "~/.local/share/elixirscope"
    everything = store.as_dict()
    assert everything["capture"]["batch_size"] == 10 and everything["data_dir"] == store.get(
        "data_dir"
    )
    assert set(store.sources()) == set(SCHEMA)
    assert store.sources()["capture.batch_size"] == str(user)
    assert store.user_file == user and store.environment == "dev"


def test_get_an_unknown_path_suggests_the_known_one():
    store = ConfigStore.load(env={})
    with pytest.raises(ConfigError) as info:
        store.get("capture.batchsize")
    assert str(info.value) == "Unknown key `capture.batchsize`; did you mean `capture.batch_size`?"
    assert info.value.code == "unknown_key"


# ------------------------------------------------------------------ set


def test_set_an_updatable_key_returns_the_change_and_records_runtime():
    store = ConfigStore.load(env={})
    change = store.set("capture.batch_size", 500)
    assert change == Change("capture.batch_size", 1000, 500, "runtime")
    assert str(change) == "`capture.batch_size` changed from 1000 to 500 (from runtime)"
    assert store.get("capture.batch_size") == 500
    assert store.sources()["capture.batch_size"] == "runtime"


@pytest.mark.parametrize(
    ("path", "text", "value"),
    [
        ("instrumentation.sampling_rate", "0.5", 0.5),
        ("instrumentation.sampling_rate", "1", 1.0),
        ("logging.level", "debug", "debug"),
        ("capture.ring_buffer_size", "1024", 1024),
        ("capture.overflow_policy", '"block"', "block"),
    ],
)
def test_set_accepts_console_strings(path, text, value):
    store = ConfigStore.load(env={})
    assert store.set(path, text).new == value
    assert store.get(path) == value and type(store.get(path)) is type(value)


def test_set_on_a_fixed_key_is_refused_listing_the_updatable_ones():
    store = ConfigStore.load(env={})
    with pytest.raises(ConfigError) as info:
        store.set("node.name", "x")
    assert str(info.value) == (
        "`node.name` cannot be changed at runtime, it needs a restart: set it in the config file "
        "or environment and restart; keys that can be set at runtime: `logging.level`, "
        "`capture.ring_buffer_size`, `capture.batch_size`, `capture.overflow_policy`, "
        "`instrumentation.default_level`, `instrumentation.sampling_rate`, `store.max_age_hours`, `store.max_size_mb`, "
        "`telemetry.report_interval_ms`"
    )
    assert (info.value.code, info.value.path, info.value.value) == (
        "not_updatable",
        "node.name",
        "x",
    )
    assert store.get("node.name") == SCHEMA["node.name"].default


def test_set_an_invalid_value_changes_nothing():
    store = ConfigStore.load(env={})
    with pytest.raises(ConfigError) as info:
        store.set("instrumentation.sampling_rate", "lots")
    assert str(info.value) == (
        "Expected `float 0..1`, got `'lots'` - at `instrumentation.sampling_rate` (from runtime)"
    )
    assert store.get("instrumentation.sampling_rate") == 1.0
    assert store.sources()["instrumentation.sampling_rate"] == "default"


def test_set_an_unknown_key_suggests():
    store = ConfigStore.load(env={})
    with pytest.raises(
        ConfigError,
        match=r"^Unknown key `loging\.level` \(from runtime\); did you mean `logging\.level`\?$",
    ):
        store.set("loging.level", "debug")


def test_configure_is_all_or_nothing_and_none_leaves_a_key_alone():
    store = ConfigStore.load(env={})
    with pytest.raises(ConfigErrors) as info:
        store.configure({"capture.batch_size": 5, "logging.level": "loud", "node.name": "n"})
    assert [e.code for e in info.value.errors] == ["invalid_value", "not_updatable"]
    assert store.get("capture.batch_size") == 1000
    changes = store.configure({"capture.batch_size": "5", "logging.level": None})
    assert changes == (Change("capture.batch_size", 1000, 5),)
    assert store.get("logging.level") == "info"


# ------------------------------------------------------------------ reload


def test_reload_applies_updatable_changes_and_refuses_the_rest(tmp_path):
    store, user = store_with(tmp_path, '[logging]\nlevel = "debug"\n[node]\nname = "a"\n')
    user.write_text(
        '[logging]\nlevel = "error"\n[node]\nname = "b"\n[runtime]\nadmin_port = 1900\n'
    )
    result = store.reload()
    assert result.changes == (Change("logging.level", "debug", "error", str(user)),)
    assert result.refused == (
        Refusal("node.name", "a", "b", str(user)),
        Refusal("runtime.admin_port", 0, 1900, str(user)),
    )
    assert result.refused[0].reason == "needs a restart"
    assert (
        str(result.refused[0]) == f"`node.name` stays 'a', not 'b' (from {user}): needs a restart"
    )
    assert (store.get("node.name"), store.get("runtime.admin_port")) == ("a", 0)
    assert store.sources()["node.name"] == str(user)
    assert store.reload().refused == result.refused, "still refused until a restart"


def test_reload_picks_up_env_changes_and_sources_that_move(tmp_path):
    env = {}
    store, user = store_with(tmp_path, "[capture]\nbatch_size = 7\n", env=env)
    env["ELIXIRSCOPE_CAPTURE__BATCH_SIZE"] = "8"
    env["ELIXIRSCOPE_LOGGING__LEVEL"] = "info"
    result = store.reload()
    assert result.changes == (
        Change("capture.batch_size", 7, 8, "ELIXIRSCOPE_CAPTURE__BATCH_SIZE"),
    )
    assert store.sources()["logging.level"] == "ELIXIRSCOPE_LOGGING__LEVEL"


def test_runtime_sets_survive_a_reload_unless_the_file_changes_that_key(tmp_path):
    store, user = store_with(tmp_path, "[capture]\nbatch_size = 7\n")
    store.set("capture.batch_size", 9)
    store.set("logging.level", "warning")
    user.write_text('[capture]\nbatch_size = 7\n[instrumentation]\ndefault_level = "full"\n')
    result = store.reload()
    assert result.changes == (
        Change("instrumentation.default_level", "boundaries", "full", str(user)),
    )
    assert (
        store.get("capture.batch_size") == 9 and store.sources()["capture.batch_size"] == "runtime"
    )
    user.write_text('[capture]\nbatch_size = 11\n[logging]\nlevel = "warning"\n')
    result = store.reload()
    assert Change("capture.batch_size", 9, 11, str(user)) in result.changes
    assert not [c for c in result.changes if c.path == "logging.level"], "same value: not a change"
    assert store.sources()["capture.batch_size"] == str(user)
    assert store.sources()["logging.level"] == str(user)


def test_an_invalid_file_on_reload_raises_and_changes_nothing(tmp_path):
    store, user = store_with(tmp_path, "[capture]\nbatch_size = 7\n")
    store.set("logging.level", "debug")
    before = (store.as_dict(), store.sources())
    user.write_text("[capture]\nbatch_size = 0\nbogus = 1\n")
    with pytest.raises(ConfigErrors) as info:
        store.reload()
    assert len(info.value.errors) == 2
    assert (store.as_dict(), store.sources()) == before
    user.unlink()
    with pytest.raises(ConfigError, match="no such file"):
        store.reload()
    assert (store.as_dict(), store.sources()) == before


def test_reload_keeps_the_running_environment_and_its_overlay(tmp_path):
    store, user = store_with(tmp_path, "", environment=None)
    assert store.get("logging.format") == "auto"  # dev.toml
    user.write_text('[node]\nenvironment = "prod"\n')
    result = store.reload()
    assert result.refused == (Refusal("node.environment", "dev", "prod", str(user)),)
    assert result.changes == ()
    assert store.environment == "dev" and store.get("logging.format") == "auto"


# ------------------------------------------------------------------ property


def _values_for(path):
    check = SCHEMA[path].check
    if isinstance(check, OneOf):
        return st.sampled_from(check.choices)
    if isinstance(check, PowerOfTwo):
        lo, hi = check.lo.bit_length() - 1, check.hi.bit_length() - 1
        return st.integers(lo, hi).map(lambda e: 2**e)
    if isinstance(check, IntRange):
        return st.integers(check.lo, check.hi if check.hi is not None else check.lo + 10**9)
    if isinstance(check, FloatRange):
        floats = st.floats(check.lo, check.hi, allow_nan=False, allow_infinity=False)
        return floats if check.hi is not None else floats.filter(lambda f: f > check.lo)
    raise AssertionError(f"no strategy for {path}'s check {check!r}: add one")


@st.composite
def updates(draw):
    path = draw(st.sampled_from(UPDATABLE_KEYS))
    value = draw(_values_for(path))
    as_text = draw(st.booleans())
    return (
        path,
        value,
        (repr(value) if isinstance(value, float) else str(value)) if as_text else value,
    )


@settings(max_examples=300, deadline=None)
@given(update=updates())
def test_any_valid_value_set_on_an_updatable_key_reads_back(update):
    path, value, given_as = update
    store = ConfigStore.load(env={})
    change = store.set(path, given_as)
    got = store.get(path)
    assert got == value and type(got) is SCHEMA[path].type
    assert not (isinstance(got, float) and math.isnan(got))
    assert change.new == got and store.sources()[path] == "runtime"
