"""The import hook: modules a plan selects are rewritten before they compile.

:func:`install` puts an :class:`InstrumentingFinder` first on ``sys.meta_path``.
For a module the plan selects, it asks the other finders for the ordinary spec
and, when that spec has a source loader, wraps the loader in an
:class:`InstrumentingLoader` that reads the source, rewrites it, compiles it
under the real filename and executes it. Everything else is the ordinary
import (packages, relative imports, ``__spec__``, ``__file__``, resources).

Guarantees:

- an import is never broken by ElixirScope: if reading, rewriting or compiling
  fails, the module is imported unmodified, and the failure is counted
  (``handle.failures``) and logged; a SyntaxError in the user's own source is
  raised by the ordinary import exactly as without ElixirScope;
- rewritten bytecode is never written to ``__pycache__``, so a plain run never
  loads instrumented code;
- modules imported before :func:`install` are not touched (use
  :mod:`elixirscope.instrument.live` for those), and modules stay as imported
  after :func:`uninstall`.

:func:`run_path` and :func:`run_module` are ``runpy``'s equivalents that also
instrument the main module (the ``elixirscope run`` command uses them).
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import os
import runpy
import sys
import threading
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib._abc import Loader  # importlib.abc.Loader itself, without importlib.abc
from types import CodeType
from typing import Any

from elixirscope.capture.on_import import Announcing

from .plan import Plan
from .rewriter import hooks as _hooks
from .rewriter import rewrite_tree

__all__ = [
    "ImportHookHandle",
    "InstrumentingFinder",
    "InstrumentingLoader",
    "install",
    "installed",
    "run_module",
    "run_path",
    "uninstall",
]


def _log() -> Any:
    import logging  # on first use: logging's import is a cost at every recorded start

    return logging.getLogger("elixirscope.instrument")


@dataclass
class ImportHookHandle:
    """An installed import hook: its plan and what it did so far."""

    plan: Plan
    finder: InstrumentingFinder
    rewritten: list[str] = field(default_factory=list)  # module names, in import order
    functions: int = 0  # functions wrapped
    failures: dict[str, str] = field(default_factory=dict)  # module -> why it ran unmodified

    def uninstall(self) -> None:
        """Stop instrumenting further imports (idempotent)."""
        with _lock:
            if self.finder in sys.meta_path:
                sys.meta_path.remove(self.finder)
            global _current
            if _current is self:
                _current = None


_lock = threading.Lock()
_current: ImportHookHandle | None = None


def install(plan: Any) -> ImportHookHandle:
    """Instrument every module imported from now on that ``plan`` selects.

    ``plan`` is a :class:`Plan` or anything :meth:`Plan.load` accepts (a bad
    one raises ``PlanError`` before anything is installed). Installing again
    replaces the previous hook.
    """
    global _current
    plan = Plan.load(plan)
    _hooks()  # the capture hooks exist before any rewritten code can run
    finder = InstrumentingFinder(plan)
    handle = ImportHookHandle(plan, finder)
    finder.handle = handle
    if _current is not None:
        _current.uninstall()
    with _lock:
        sys.meta_path.insert(0, finder)
        _current = handle
    return handle


def uninstall() -> None:
    """Remove the installed import hook, if any."""
    if _current is not None:
        _current.uninstall()


def installed() -> ImportHookHandle | None:
    """The installed hook's handle, or None."""
    return _current


# -- finder and loader ----------------------------------------------------------------


class InstrumentingFinder:
    """Finds selected modules through the other finders and wraps their source loaders.

    A meta path finder by what it does (``find_spec``, ``invalidate_caches``), not by
    subclassing ``importlib.abc.MetaPathFinder``: the import system asks no more, and
    importing ``importlib.abc`` would cost every recorded start its imports of
    ``importlib.resources`` and ``tempfile``. The loader below is an
    ``importlib.abc.Loader`` (the very class, from where that module takes it)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.handle: ImportHookHandle | None = None

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not self.plan.selects_module(fullname):
            return None
        for finder in sys.meta_path:
            if finder is self or isinstance(finder, InstrumentingFinder):
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(fullname, path, target)
            if spec is None:
                continue
            if _is_source_loader(spec.loader):
                spec.loader = InstrumentingLoader(spec.loader, self.plan, self.handle)
            return spec
        return None

    def invalidate_caches(self) -> None:
        pass


def _is_source_loader(loader: Any) -> bool:
    """Loaders of Python source (extension modules, bytecode-only files are left alone).
    Not ``on_import``'s announcing loader: it wraps one the other finders gave, this
    hook's own when the module is selected (wrapped again, it would never be called and
    its watch never fire - a web integration lost when ``run -m uvicorn`` made uvicorn
    the program)."""
    if isinstance(
        loader,
        (
            importlib.machinery.ExtensionFileLoader,
            importlib.machinery.SourcelessFileLoader,
            InstrumentingLoader,
            Announcing,
        ),
    ):
        return False
    return isinstance(loader, importlib.machinery.SourceFileLoader) or all(
        hasattr(loader, name) for name in ("get_source", "get_filename", "exec_module")
    )


class InstrumentingLoader(Loader):
    """Executes a module from its rewritten source; delegates everything else.

    It has every method of ``importlib.abc.InspectLoader`` (see the finder for why it
    does not subclass it)."""

    def __init__(self, loader: Any, plan: Plan, handle: ImportHookHandle | None) -> None:
        self.loader, self.plan, self.handle = loader, plan, handle

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)  # get_resource_reader, path, name, ...

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        code = instrumented_code(self.loader, module.__name__, self.plan, self.handle)
        if code is None:
            self.loader.exec_module(module)  # the ordinary import, exactly
        else:
            exec(code, module.__dict__)

    def is_package(self, fullname: str) -> bool:
        return self.loader.is_package(fullname)

    def get_source(self, fullname: str) -> str | None:
        return self.loader.get_source(fullname)

    def get_filename(self, fullname: str) -> str:
        return self.loader.get_filename(fullname)

    def get_code(self, fullname: str) -> CodeType | None:
        """The rewritten code, or the loader's own code if rewriting fails."""
        code = instrumented_code(self.loader, fullname, self.plan, self.handle)
        return code if code is not None else self.loader.get_code(fullname)

    @staticmethod
    def source_to_code(data: str | bytes, path: str = "<string>") -> CodeType:
        """As ``InspectLoader.source_to_code``: ``data`` compiled, not rewritten."""
        return compile(data, path, "exec", dont_inherit=True)


def instrumented_code(
    loader: Any, fullname: str, plan: Plan, handle: ImportHookHandle | None
) -> CodeType | None:
    """Rewrite and compile ``fullname``'s source; None (counted, logged) if that fails."""
    try:
        filename = loader.get_filename(fullname)
        source = loader.get_source(fullname)
        if source is None:
            raise ImportError("no source")
        tree = ast.parse(source, filename)
    except Exception as exc:  # noqa: BLE001 - the ordinary import reports real errors
        _failed(handle, fullname, exc)
        return None
    try:
        return compile_instrumented(tree, fullname, plan, filename, handle)
    except Exception as exc:  # noqa: BLE001 - never break an import
        _failed(handle, fullname, exc)
        return None


def compile_instrumented(
    tree: ast.Module, module: str, plan: Plan, filename: str, handle: ImportHookHandle | None = None
) -> CodeType:
    """Rewrite ``tree`` as ``module`` by ``plan`` and compile it under ``filename``."""

    def choose(qualname: str, node: ast.AST) -> tuple[str, float, str] | None:
        level, sampling = plan.level_for(module, qualname)
        return None if level == "none" else (level, sampling, level)

    done = rewrite_tree(tree, module, filename, choose)
    code = compile(tree, filename, "exec", dont_inherit=True)
    if handle is not None:
        handle.rewritten.append(module)
        handle.functions += len(done)
    return code


def _failed(handle: ImportHookHandle | None, fullname: str, exc: BaseException) -> None:
    reason = f"{type(exc).__name__}: {exc}"
    if handle is not None:
        handle.failures[fullname] = reason
    _log().warning("elixirscope: %s imported without instrumentation (%s)", fullname, reason)


# -- running a main module ---------------------------------------------------------------


def _plan_or_installed(plan: Any) -> Plan | None:
    if plan is not None:
        return Plan.load(plan)
    return _current.plan if _current is not None else None


def run_path(
    path: str | os.PathLike[str],
    run_name: str = "__main__",
    init_globals: dict[str, Any] | None = None,
    plan: Any = None,
    *,
    source: bytes | None = None,
    argv0: str | None = None,
    instrument_as: str | None = None,
) -> dict[str, Any]:
    """``runpy.run_path`` that instruments the script itself.

    The script's functions are matched as ``<run_name>.<qualname>`` (so
    ``__main__.*`` selects them). ``plan`` defaults to the installed hook's
    plan; with neither, the script runs plainly. A directory or zip file with a
    ``__main__.py`` goes through ``runpy`` (its ``__main__`` is imported through
    the hook). Like runpy, ``sys.argv[0]`` is the path and ``sys.modules[run_name]``
    is the running module while it runs; the module's globals are returned.
    ``source`` runs that text under the name ``path`` instead of reading the file
    (``python -`` runs stdin as ``<stdin>``); ``argv0`` is what ``sys.argv[0]`` is
    meanwhile, when it should not be the path (python keeps it as typed);
    ``instrument_as`` the module name its functions are matched and recorded
    under, when it is not ``run_name`` (``instrument.mp_main``).
    """
    path = os.fspath(path)
    if source is None and (os.path.isdir(path) or _is_zipfile(path)):
        return _with_plan(plan, runpy.run_path, path, init_globals, run_name)
    if source is None:
        with open(path, "rb") as file:
            source = file.read()
    chosen = _plan_or_installed(plan)
    module = run_name if instrument_as is None else instrument_as
    code = None
    if chosen is not None and chosen.selects_module(module):
        try:
            tree = ast.parse(source, path)
            _hooks()
            code = compile_instrumented(tree, module, chosen, path, _current)
        except SyntaxError:
            pass  # compiled plainly below, which raises it exactly as python would
        except Exception as exc:  # noqa: BLE001 - run it plainly rather than not at all
            _failed(_current, module, exc)
    if code is None:
        code = compile(source, path, "exec", dont_inherit=True)
    return _run_code(code, path, run_name, init_globals, argv0)


def _with_plan(plan: Any, run: Any, *args: Any) -> Any:
    """Call ``run(*args)`` with ``plan``'s import hook installed (if a plan is given)."""
    if plan is None:
        return run(*args)
    handle = install(plan)
    try:
        return run(*args)
    finally:
        handle.uninstall()


def _run_code(
    code: CodeType,
    path: str,
    run_name: str,
    init_globals: dict[str, Any] | None,
    argv0: str | None = None,
) -> dict[str, Any]:
    module = types.ModuleType(run_name)
    namespace = module.__dict__
    if init_globals:
        namespace.update(init_globals)
    # __loader__ as python sets it for a script (linecache and pkgutil use it); None
    # for code that is no file but stdin's, whose loader python gives as BuiltinImporter
    loader: Any = (
        importlib.machinery.BuiltinImporter
        if path in ("<stdin>", "<string>")
        else importlib.machinery.SourceFileLoader(run_name, path)
        if os.path.isfile(path)
        else None
    )
    namespace.update(
        __name__=run_name,
        __file__=path,
        __cached__=None,
        __doc__=None,
        __loader__=loader,
        __package__="",
        __spec__=None,
    )
    if path == "<string>":  # python -c: the program has no file, and no __file__
        del namespace["__file__"], namespace["__cached__"]
    saved_module = sys.modules.get(run_name, _MISSING)
    saved_argv0 = sys.argv[0] if sys.argv else _MISSING
    sys.modules[run_name] = module
    if sys.argv:
        sys.argv[0] = path if argv0 is None else argv0
    try:
        exec(code, namespace)
    finally:
        if saved_module is _MISSING:
            sys.modules.pop(run_name, None)
        else:
            sys.modules[run_name] = saved_module  # type: ignore[assignment]
        if isinstance(saved_argv0, str):  # else _MISSING
            sys.argv[0] = saved_argv0
    return namespace.copy()


_MISSING = object()


def run_module(
    name: str,
    init_globals: dict[str, Any] | None = None,
    run_name: str = "__main__",
    alter_sys: bool = True,
    plan: Any = None,
) -> dict[str, Any]:
    """``runpy.run_module`` with the module (and its imports) instrumented.

    The module's functions are matched under its real name (``myapp.cli.*``).
    ``plan`` defaults to the installed hook's plan; a ``plan`` given here is
    installed for the duration of the run and removed afterwards.
    """
    return _with_plan(plan, runpy.run_module, name, init_globals, run_name, alter_sys)


def _is_zipfile(path: str) -> bool:
    """A zip application? Not a ``.py`` file, which saves importing zipfile for scripts."""
    if path.endswith((".py", ".pyw")):
        return False
    import zipfile

    return zipfile.is_zipfile(path)
