"""``elixirscope.state``'s API functions are never shadowed by its submodules."""

from __future__ import annotations

import importlib
import pkgutil

import elixirscope.state as state


def test_every_api_name_is_a_function_after_every_submodule_is_imported() -> None:
    for info in pkgutil.iter_modules(state.__path__):
        importlib.import_module(f"elixirscope.state.{info.name}")
    for name in state.__all__:
        assert callable(getattr(state, name)), name
        assert getattr(state, name).__module__ == "elixirscope.state.api", name
