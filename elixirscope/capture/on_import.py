"""Run a function once a module has been imported, without importing it ourselves.

``elixirscope run`` records the runtime's GenServers only when the program uses
them; importing the runtime up front to install its tracer would cost every
recorded program the runtime's (and Thespian's) import time. Instead::

    handle = when_imported("elixirscope.runtime.observe", lambda module: ...)
    ...
    handle.cancel()

calls the function at once if the module is already loaded, else right after
the program's first import of it finishes. An error in the function is
swallowed: a host program's import never fails because of ElixirScope.
"""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Callable
from importlib._abc import Loader  # importlib.abc.Loader itself, without importlib.abc
from types import ModuleType
from typing import Any

__all__ = ["Announcing", "ImportWatch", "when_imported"]


class ImportWatch:
    """A meta path finder that wraps one module's loader to call back after it runs.

    (A finder by its ``find_spec``: subclassing ``importlib.abc.MetaPathFinder`` would
    import ``importlib.abc``, and with it ``importlib.resources`` and ``tempfile``, at
    every recorded start.)"""

    def __init__(self, name: str, callback: Callable[[ModuleType], Any]) -> None:
        self.name = name
        self.callback = callback
        self.fired = False
        self._finding = False

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name or self._finding or self.fired:
            return None
        self._finding = True  # ask the rest of sys.meta_path, not ourselves again
        try:
            from importlib.util import find_spec

            spec = find_spec(fullname)
        finally:
            self._finding = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = Announcing(spec.loader, self)
        return spec

    def fire(self, module: ModuleType) -> None:
        if self.fired:
            return
        self.fired = True
        self.cancel()
        try:
            self.callback(module)
        except Exception:  # noqa: BLE001, S110 - never fail the host's import
            pass

    def cancel(self) -> None:
        """Stop watching (the callback will not run if it has not yet)."""
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass


class Announcing(Loader):
    """A loader that runs the one it wraps, then fires its watch."""

    def __init__(self, loader: Any, watch: ImportWatch) -> None:
        self.loader = loader
        self.watch = watch

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        self.watch.fire(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_code, ... of the real loader
        return getattr(self.loader, name)


def when_imported(name: str, callback: Callable[[ModuleType], Any]) -> ImportWatch:
    """Call ``callback(module)`` once ``name`` is imported (now, if it already is)."""
    watch = ImportWatch(name, callback)
    module = sys.modules.get(name)
    if module is not None:
        watch.fire(module)
    else:
        sys.meta_path.insert(0, watch)
    return watch
