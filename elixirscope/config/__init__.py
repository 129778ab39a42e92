"""Configuration: one schema, layered sources, runtime changes, hot reload.

The pure logic the Foundation layer's ConfigServer actor wraps::

    store = ConfigStore.load(user_file="elixirscope.toml")   # raises ConfigError
    store.get("capture.batch_size")          # 1000
    store.get("capture")                     # {"ring_buffer_size": 65536, ...}
    store.sources()["capture.batch_size"]    # "ELIXIRSCOPE_CAPTURE__BATCH_SIZE"
    store.set("logging.level", "debug")      # Change(path, old, new, "runtime")
    watcher = FileWatcher(store.user_file, interval=1.0)
    if watcher.changed():
        result = store.reload()              # ReloadResult(changes, refused)

Layers, lowest first: the schema's defaults, ``default.toml``, the overlay for
``node.environment`` (``dev``/``test``/``prod``), the user's file, then
``ELIXIRSCOPE_<SECTION>__<KEY>`` variables. Every key, its check and whether it
may change at runtime is in :data:`SCHEMA`. Every problem is a
:class:`ConfigError` whose message reads "Expected `X`, got `Y` - at `path`
(from source)".
"""

from .data_dir import DataDirError, usable_data_dir
from .errors import ConfigError, ConfigErrors, ErrorCode
from .loader import ENV_PREFIX, ENV_SELECT, env_name
from .schema import ENVIRONMENTS, SCHEMA, UPDATABLE_KEYS, Key
from .store import Change, ConfigStore, Refusal, ReloadResult
from .watch import FileWatcher

__all__ = [
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
