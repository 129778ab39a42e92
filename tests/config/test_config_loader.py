"""Layered loading: order, sources, environment variables, and every error reported."""

from __future__ import annotations

import pytest

from elixirscope.config import ConfigError, ConfigErrors, ConfigStore
from elixirscope.config.loader import load


@pytest.fixture
def shipped(tmp_path):
    """A config directory of our own instead of the packaged one."""
    d = tmp_path / "shipped"
    d.mkdir()
    return d


def write(path, text):
    path.write_text(text)
    return path


# ------------------------------------------------------------------ layer order


def test_each_layer_overrides_the_one_before_and_names_itself(shipped, tmp_path):
    write(shipped / "default.toml", "[capture]\nbatch_size = 2\ncredit_window = 2\n")
    write(shipped / "dev.toml", "[capture]\nbatch_size = 3\n")
    user = write(tmp_path / "user.toml", "[capture]\nbatch_size = 4\n")
    env = {"ELIXIRSCOPE_CAPTURE__BATCH_SIZE": "5"}
    cases = [
        ({}, None, 3, str(shipped / "dev.toml")),
        ({}, user, 4, str(user)),
        (env, user, 5, "ELIXIRSCOPE_CAPTURE__BATCH_SIZE"),
    ]
    for env_, user_, value, source in cases:
        got = load(user_, env=env_, config_dir=shipped)
        assert (got.values["capture.batch_size"], got.sources["capture.batch_size"]) == (
            value,
            source,
        )
    got = load(env={}, config_dir=shipped)
    assert (got.values["capture.credit_window"], got.sources["capture.credit_window"]) == (
        2,
        str(shipped / "default.toml"),
    )
    assert (got.values["capture.ring_buffer_size"], got.sources["capture.ring_buffer_size"]) == (
        65536,
        "default",
    )


def test_packaged_files_are_named_by_file_name():
    store = ConfigStore.load(env={})
    assert store.environment == "dev"
    assert store.sources()["logging.format"] == "dev.toml"
    assert ConfigStore.load(environment="prod", env={}).sources()["logging.format"] == "prod.toml"
    assert ConfigStore.load(environment="test", env={}).get("api.endpoint") == "tcp://127.0.0.1:0"


def test_missing_shipped_files_contribute_nothing(shipped):
    got = load(env={}, config_dir=shipped)
    assert set(got.sources.values()) == {"default"}


def test_environment_is_chosen_by_argument_then_env_then_files(shipped, tmp_path):
    for name in ("dev", "test", "prod"):
        write(shipped / f"{name}.toml", f'[node]\nname = "{name}-node"\n')
    user = write(tmp_path / "user.toml", '[node]\nenvironment = "test"\n')
    cases = [
        (None, {}, None, "dev", "default"),
        (None, {}, user, "test", str(user)),
        (
            None,
            {"ELIXIRSCOPE_NODE__ENVIRONMENT": "prod"},
            user,
            "prod",
            "ELIXIRSCOPE_NODE__ENVIRONMENT",
        ),
        (
            None,
            {"ELIXIRSCOPE_ENV": "dev", "ELIXIRSCOPE_NODE__ENVIRONMENT": "prod"},
            user,
            "dev",
            "ELIXIRSCOPE_ENV",
        ),
        ("prod", {"ELIXIRSCOPE_ENV": "dev"}, user, "prod", "argument"),
    ]
    for argument, env, user_file, chosen, source in cases:
        got = load(user_file, argument, env, config_dir=shipped)
        assert (got.environment, got.sources["node.environment"]) == (chosen, source)
        assert got.values["node.name"] == f"{chosen}-node"


def test_an_overlay_cannot_choose_another_environment(shipped):
    write(shipped / "prod.toml", '[node]\nenvironment = "dev"\n')
    with pytest.raises(ConfigError) as info:
        load(environment="prod", env={}, config_dir=shipped)
    assert str(info.value) == (
        f"Expected `'prod'`, got `'dev'` - at `node.environment` (from {shipped / 'prod.toml'}): "
        "an overlay cannot choose another environment"
    )


def test_a_bad_environment_name_is_an_error_naming_its_source():
    with pytest.raises(ConfigError) as info:
        load(env={"ELIXIRSCOPE_ENV": "staging"})
    assert str(info.value) == (
        "Expected `'dev' | 'test' | 'prod'`, got `'staging'` - at `node.environment` (from ELIXIRSCOPE_ENV)"
    )
    with pytest.raises(ConfigError, match=r"got `'qa'` - at `node.environment` \(from argument\)"):
        load(environment="qa", env={})


# ------------------------------------------------------------------ environment variables


@pytest.mark.parametrize(
    ("name", "text", "path", "value"),
    [
        ("ELIXIRSCOPE_CAPTURE__BATCH_SIZE", "500", "capture.batch_size", 500),
        ("ELIXIRSCOPE_API__REQUEST_TIMEOUT_S", "2.5", "api.request_timeout_s", 2.5),
        ("ELIXIRSCOPE_API__REQUEST_TIMEOUT_S", "2", "api.request_timeout_s", 2.0),
        ("ELIXIRSCOPE_INSTRUMENTATION__SAMPLING_RATE", "1", "instrumentation.sampling_rate", 1.0),
        ("ELIXIRSCOPE_LOGGING__LEVEL", "debug", "logging.level", "debug"),
        ("ELIXIRSCOPE_LOGGING__LEVEL", "'warning'", "logging.level", "warning"),
        ("ELIXIRSCOPE_NODE__NAME", "42", "node.name", "42"),
        ("ELIXIRSCOPE_DATA_DIR", "/x", "data_dir", "/x"),
        ("ELIXIRSCOPE_API__ENDPOINT", "ipc:///tmp/es.sock", "api.endpoint", "ipc:///tmp/es.sock"),
    ],
)
def test_env_vars_set_keys_parsed_as_toml_literals(name, text, path, value):
    got = load(env={name: text})
    assert got.values[path] == value and type(got.values[path]) is type(value)
    assert got.sources[path] == name


def test_the_grammar_example_from_an_env_var():
    with pytest.raises(ConfigError) as info:
        load(env={"ELIXIRSCOPE_SUPERVISION__MAX_RESTARTS": "x"})
    assert str(info.value) == (
        "Expected `int >= 0`, got `'x'` - at `supervision.max_restarts` "
        "(from ELIXIRSCOPE_SUPERVISION__MAX_RESTARTS)"
    )
    assert (info.value.path, info.value.value, info.value.source, info.value.code) == (
        "supervision.max_restarts",
        "x",
        "ELIXIRSCOPE_SUPERVISION__MAX_RESTARTS",
        "invalid_value",
    )


def test_a_bool_env_var_is_not_a_number():
    with pytest.raises(
        ConfigError, match=r"^Expected `int 1\.\.100000`, got `True` - at `capture\.batch_size`"
    ):
        load(env={"ELIXIRSCOPE_CAPTURE__BATCH_SIZE": "true"})


def test_other_variables_are_ignored():
    got = load(env={"PATH": "/bin", "elixirscope_capture__batch_size": "x", "ELIXIRSCOPEX": "1"})
    assert got.values["capture.batch_size"] == 1000


def test_the_test_suites_own_variables_are_not_settings():
    """A daemon a heavy or chaos run starts inherits them: they must not stop it."""
    got = load(env={"ELIXIRSCOPE_HEAVY": "1", "ELIXIRSCOPE_CHAOS_FIGURES": "/tmp/f.jsonl"})
    assert got.values["capture.batch_size"] == 1000


def test_an_unknown_env_var_suggests_the_variable_meant():
    with pytest.raises(ConfigError) as info:
        load(env={"ELIXIRSCOPE_CAPTURE_BATCH_SIZE": "5"})
    assert str(info.value) == (
        "Unknown key `capture_batch_size` (from ELIXIRSCOPE_CAPTURE_BATCH_SIZE); "
        "did you mean `ELIXIRSCOPE_CAPTURE__BATCH_SIZE`?"
    )
    assert info.value.code == "unknown_key"
    assert info.value.suggestions == ("capture.batch_size",)


def test_an_env_var_naming_a_section_suggests_its_variables():
    with pytest.raises(ConfigError) as info:
        load(env={"ELIXIRSCOPE_LOGING": "debug"})
    assert str(info.value).endswith(
        "did you mean `ELIXIRSCOPE_LOGGING__LEVEL`, `ELIXIRSCOPE_LOGGING__FORMAT`?"
    )


# ------------------------------------------------------------------ file errors


def test_an_unknown_key_in_a_file_names_the_file_and_the_closest_keys(tmp_path):
    user = write(tmp_path / "u.toml", "[capture]\nbatchsize = 5\n")
    with pytest.raises(ConfigError) as info:
        load(user, env={})
    assert (
        str(info.value)
        == f"Unknown key `capture.batchsize` (from {user}); did you mean `capture.batch_size`?"
    )
    assert (info.value.path, info.value.source) == ("capture.batchsize", str(user))


def test_an_unknown_section_and_a_section_given_a_value(tmp_path):
    user = write(tmp_path / "u.toml", 'capture = 5\n[loging]\nlevel = "debug"\n')
    with pytest.raises(ConfigErrors) as info:
        load(user, env={})
    assert [str(e) for e in info.value.errors] == [
        f"Expected `table`, got `5` - at `capture` (from {user})",
        f"Unknown key `loging` (from {user}); did you mean `logging`?",
    ]


def test_every_problem_is_reported_at_once(tmp_path):
    user = write(
        tmp_path / "u.toml",
        '[capture]\nbatch_size = 0\noverflow_policy = "lose"\n[supervision]\nmax_restart = 3\n',
    )
    env = {"ELIXIRSCOPE_LOGGING__LEVEL": "loud"}
    with pytest.raises(ConfigErrors) as info:
        load(user, env=env)
    err = info.value
    assert err.code == "multiple"
    assert [e.code for e in err.errors] == [
        "invalid_value",
        "invalid_value",
        "unknown_key",
        "invalid_value",
    ]
    assert str(err) == (
        "4 configuration errors:\n"
        f"  1. Expected `int 1..100000`, got `0` - at `capture.batch_size` (from {user})\n"
        f"  2. Expected `'drop_oldest' | 'drop_newest' | 'block'`, got `'lose'` - at `capture.overflow_policy` (from {user})\n"
        f"  3. Unknown key `supervision.max_restart` (from {user}); did you mean `supervision.max_restarts`?\n"
        "  4. Expected `'debug' | 'info' | 'warning' | 'error'`, got `'loud'` - at `logging.level` (from ELIXIRSCOPE_LOGGING__LEVEL)"
    )


def test_a_toml_syntax_error_names_the_file_line_and_column(tmp_path):
    user = write(tmp_path / "u.toml", "[capture]\nbatch_size = @\n")
    with pytest.raises(ConfigError) as info:
        load(user, env={})
    err = info.value
    assert str(err) == f"Invalid TOML in `{user}` at line 2, column 14: Invalid value"
    assert (err.code, err.source, err.line, err.column) == ("toml_syntax", str(user), 2, 14)


def test_a_syntax_error_at_the_end_of_the_document_points_there(tmp_path):
    user = write(tmp_path / "u.toml", "[capture]\nbatch_size = [1,\n")
    with pytest.raises(ConfigError) as info:
        load(user, env={})
    assert (info.value.line, info.value.column) == (3, 1)
    assert "at line 3, column 1: " in str(info.value)


def test_a_syntax_error_and_an_env_error_are_reported_together(tmp_path):
    user = write(tmp_path / "u.toml", "x = = 1\n")
    with pytest.raises(ConfigErrors) as info:
        load(user, env={"ELIXIRSCOPE_DATA_DIR": ""})
    assert [e.code for e in info.value.errors] == ["toml_syntax", "invalid_value"]


def test_a_missing_user_file_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load(missing, env={})
    assert str(info.value) == f"Cannot read config file `{missing}`: no such file"
    assert (info.value.code, info.value.source) == ("file_missing", str(missing))


def test_an_unreadable_user_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, env={})
    assert str(info.value) == f"Cannot read config file `{tmp_path}`: Is a directory"
    assert info.value.code == "file_unreadable"
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"a = 1\n\xff\xfe")
    with pytest.raises(
        ConfigError, match=r"Cannot read config file `.*b\.toml`: not UTF-8 text \(byte 6\)"
    ):
        load(binary, env={})


def test_a_broken_shipped_file_is_reported_too(shipped):
    write(shipped / "default.toml", "[capture\n")
    with pytest.raises(ConfigError) as info:
        load(env={}, config_dir=shipped)
    assert info.value.code == "toml_syntax"
    assert info.value.source == str(shipped / "default.toml")
