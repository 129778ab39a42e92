"""The parent's script in a ``multiprocessing`` child, instrumented as the parent's is.

A ``spawn`` or ``forkserver`` child runs its parent's script again, as the module
``__mp_main__``, so that the functions it defines (a Pool's task, most often)
exist there: ``multiprocessing.spawn._fixup_main_from_path`` runs it through
``runpy.run_path``, and then makes it ``sys.modules['__main__']``. Python runs
it, not the import system, so the import hook never sees it.

In a process recorded into its parent's run (``cli.children``), :func:`install`
gives ``multiprocessing.spawn`` a ``runpy`` whose ``run_path`` runs that script
through ``hook.run_path`` instead, instrumented as the module ``__main__`` —
its name in the parent, the one the plan's ``__main__`` rules (and the
script's own name, ``known_as``) select, and the one its functions are
recorded under in every process. A script the plan does not select, a path
that is not a ``.py`` file, and any other ``run_path`` go to ``runpy`` as before.
"""

from __future__ import annotations

import os
import runpy
import sys
from types import ModuleType
from typing import Any

from elixirscope.capture.on_import import ImportWatch, when_imported
from elixirscope.instrument import hook

__all__ = ["MP_MAIN", "install", "uninstall"]

MP_MAIN = "__mp_main__"


class _Runpy:
    """``runpy`` as ``multiprocessing.spawn`` sees it (see the module docstring)."""

    def __init__(self, original: Any) -> None:
        self.original = original

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)

    def run_path(
        self, path_name: Any, init_globals: dict[str, Any] | None = None, run_name: Any = None
    ) -> dict[str, Any]:
        if run_name == MP_MAIN and _selected(path_name):
            return hook.run_path(path_name, run_name, init_globals, instrument_as="__main__")
        return self.original.run_path(path_name, init_globals, run_name)


def _selected(path: Any) -> bool:
    installed = hook.installed()
    return (
        installed is not None
        and isinstance(path, str)
        and path.endswith(".py")
        and os.path.isfile(path)
        and installed.plan.selects_module("__main__")
    )


def _divert(spawn: ModuleType) -> None:
    if not isinstance(getattr(spawn, "runpy", None), _Runpy):
        spawn.runpy = _Runpy(getattr(spawn, "runpy", runpy))  # type: ignore[attr-defined]


def install() -> ImportWatch:
    """Instrument the parent's script once ``multiprocessing.spawn`` is imported (now,
    if it is); :func:`uninstall` with the watch returned undoes it."""
    return when_imported("multiprocessing.spawn", _divert)


def uninstall(watch: ImportWatch) -> None:
    watch.cancel()
    spawn = sys.modules.get("multiprocessing.spawn")
    diverted = getattr(spawn, "runpy", None)
    if isinstance(diverted, _Runpy):
        spawn.runpy = diverted.original  # type: ignore[union-attr]
