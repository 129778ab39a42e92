"""The public surface of elixirscope.config, its errors as data, the packaged files."""

from __future__ import annotations

import importlib.resources
import pickle
import subprocess
import sys
import tomllib

import elixirscope.config as config
from elixirscope.config import ConfigError, ConfigErrors, ConfigStore, env_name


def test_public_surface_is_exactly_this():
    assert sorted(config.__all__) == sorted(
        [
            "ENVIRONMENTS",
            "ENV_PREFIX",
            "ENV_SELECT",
            "SCHEMA",
            "UPDATABLE_KEYS",
            "Change",
            "ConfigError",
            "ConfigErrors",
            "ConfigStore",
            "DataDirError",
            "ErrorCode",
            "FileWatcher",
            "Key",
            "Refusal",
            "ReloadResult",
            "env_name",
            "usable_data_dir",
        ]
    )
    for name in config.__all__:
        assert getattr(config, name) is not None


def test_env_name_spells_the_variable_for_a_path():
    assert env_name("capture.batch_size") == "ELIXIRSCOPE_CAPTURE__BATCH_SIZE"
    assert env_name("data_dir") == "ELIXIRSCOPE_DATA_DIR"


def test_errors_pickle_with_their_fields():
    """An actor sends these to a console across processes."""
    try:
        ConfigStore.load(env={"ELIXIRSCOPE_CAPTURE__BATCH_SIZE": "0", "ELIXIRSCOPE_X": "1"})
    except ConfigErrors as exc:
        error = exc
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ConfigErrors and str(copy) == str(error)
    assert [vars(e) for e in copy.errors] == [vars(e) for e in error.errors]
    single = pickle.loads(pickle.dumps(error.errors[0]))
    assert (single.code, single.path, single.value, single.source) == (
        "invalid_value",
        "capture.batch_size",
        0,
        "ELIXIRSCOPE_CAPTURE__BATCH_SIZE",
    )
    assert isinstance(single, ValueError) and single.errors == (single,)


def test_packaged_files_are_installed_and_parse():
    files = importlib.resources.files("elixirscope.config_files")
    for name in ("default.toml", "dev.toml", "test.toml", "prod.toml"):
        tomllib.loads((files / name).read_text())


def test_reading_config_does_not_import_zeromq_until_an_endpoint_is_checked():
    code = (
        "import sys; import elixirscope.config as c; "
        "c.ConfigStore.load(env={}); print('zmq' in sys.modules); "
        "c.ConfigStore.load(env={'ELIXIRSCOPE_API__ENDPOINT': 'tcp://:1'}); print('zmq' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_config_error_is_a_value_error_with_a_code():
    assert issubclass(ConfigError, ValueError) and issubclass(ConfigErrors, ConfigError)
