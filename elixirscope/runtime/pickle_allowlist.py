"""Unpickling with an allow-list of classes: the second wall behind the frame seal.

A pickle can call any importable callable while it is read (``os.system``,
``subprocess.Popen``, ``builtins.eval``). Messages between actors need far
less: data types, exceptions, and the message classes of Thespian,
ElixirScope and the application. :func:`loads` resolves only these:

* builtins that are data types (``int``, ``dict``, ``frozenset``, ...) and
  exception classes;
* a short list of standard-library data classes (``datetime``, ``Decimal``,
  ``UUID``, ``OrderedDict``, ``logging.LogRecord``, ...) and harmless
  rebuild helpers (``copyreg._reconstructor``, ``msgspec._utils.rebuild``,
  ``ConfigError``'s ``_restore``; a new ``__reduce__`` helper goes in ``KNOWN_SAFE``);
* *classes* (never functions) of ``thespian``, ``elixirscope``, ``actors``,
  ``supervisors``, of the packages of actor classes this process created or
  runs, and of the application's own code: modules already imported from
  outside the standard library and site-packages;
* exception classes of modules already imported (a library's error, sent
  back as the failure of a call);
* anything of a package the application trusts with :func:`trust_modules`
  (for example a third-party library whose objects it sends).

A name is checked where it leads, not only where it claims to be: a class
reached through a module attribute (``elixirscope.x.subprocess.Popen``) must
itself live in an allowed module. Nothing is imported to decide, except the
trusted packages' own modules. Refusals raise :class:`ClassRefused`.

:func:`refused_in` answers the sender's question after a receiver refused its
message: which class or function in it this process would refuse too.
"""

from __future__ import annotations

import builtins
import io
import os
import pickle
import site
import sys
import sysconfig
from types import BuiltinFunctionType, FunctionType, ModuleType
from typing import Any

__all__ = [
    "ClassRefused",
    "loads",
    "refused_in",
    "trust_actor_class",
    "trust_modules",
    "trusted_modules",
]

SAFE_BUILTINS = frozenset({
    "bool", "int", "float", "complex", "str", "bytes", "bytearray", "list", "tuple", "dict",
    "set", "frozenset", "slice", "range", "object", "NoneType", "Ellipsis", "NotImplemented",
})  # fmt: skip

KNOWN_SAFE = frozenset({
    ("datetime", "datetime"), ("datetime", "date"), ("datetime", "time"),
    ("datetime", "timedelta"), ("datetime", "timezone"),
    ("collections", "OrderedDict"), ("collections", "deque"), ("collections", "defaultdict"),
    ("collections", "Counter"), ("decimal", "Decimal"), ("fractions", "Fraction"),
    ("uuid", "UUID"), ("uuid", "SafeUUID"), ("types", "SimpleNamespace"),
    ("pathlib", "PurePosixPath"), ("pathlib", "PosixPath"), ("pathlib", "Path"),
    ("logging", "LogRecord"), ("socket", "AddressFamily"), ("socket", "SocketKind"),
    ("copyreg", "_reconstructor"), ("re", "_compile"), ("array", "_array_reconstructor"),
    ("msgspec._utils", "rebuild"),  # msgspec.Struct's reduce: cls(**fields), cls checked here
    ("elixirscope.config.errors", "_restore"),  # ConfigError's reduce: cls.__new__ + state
})  # fmt: skip

# The runtime's own packages: their classes are allowed, their functions are not.
OWN_PACKAGES = ("thespian", "elixirscope", "actors", "supervisors")

_trusted: set[str] = set()  # trust_modules(): anything in these packages
_actor_packages: set[str] = set()  # packages of actor classes: their classes
_app_modules: dict[str, bool] = {}  # module name -> is it the application's own code


class ClassRefused(pickle.UnpicklingError):
    """A pickle named something outside the allow-list."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(
            f"refused to unpickle {module}.{name}: not an allowed class. If the application "
            f"sends objects of {module.partition('.')[0]!r} between actors, trust it with "
            "elixirscope.runtime.trust_modules(...) before starting the system"
        )
        self.module = module
        self.name = name


def trust_modules(*packages: str) -> None:
    """Allow everything in these packages (and their submodules) to be unpickled.

    Call it before starting the actor system: actor processes inherit the list
    when they are forked.
    """
    for package in packages:
        if not isinstance(package, str) or not package.strip(". "):
            raise ValueError(
                f"Expected a module or package name like 'myapp.messages', got {package!r}"
            )
        _trusted.add(package.strip("."))


def trusted_modules() -> frozenset[str]:
    return frozenset(_trusted)


def trust_actor_class(actor_class: object) -> None:
    """Allow the classes of the package an actor class (or ``"pkg.mod.Class"`` name) lives in."""
    module = actor_class if isinstance(actor_class, str) else getattr(actor_class, "__module__", "")
    top = module.partition(".")[0]
    if top and top != "__main__":
        _actor_packages.add(top)


def loads(data: bytes) -> object:
    return _AllowListUnpickler(io.BytesIO(data)).load()


class _AllowListUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        return _resolve(module, name)


def refused_in(obj: object) -> ClassRefused | None:
    """The first class or function ``obj``'s pickle names that :func:`loads` would
    refuse in this process, or None. It pickles ``obj`` to find out: for explaining
    a refusal, not for every send."""
    try:
        _RefusalFinder(io.BytesIO(), protocol=pickle.DEFAULT_PROTOCOL).dump(obj)
    except _Found as found:
        return found.refusal
    except Exception:  # noqa: BLE001 - unpicklable for another reason: not ours to explain
        return None
    return None


_which_module: Any = getattr(pickle, "whichmodule")  # noqa: B009 - not in the stubs


class _Found(Exception):
    def __init__(self, refusal: ClassRefused) -> None:
        self.refusal = refusal


class _RefusalFinder(pickle.Pickler):
    """Pickles as Thespian would, checking every class and function named by reference."""

    def reducer_override(self, obj: object) -> Any:
        if isinstance(obj, (type, FunctionType, BuiltinFunctionType)):
            name = str(getattr(obj, "__qualname__", None) or getattr(obj, "__name__", ""))
            try:
                _resolve(_which_module(obj, name), name)
            except ClassRefused as exc:
                raise _Found(exc) from None
            except Exception:  # noqa: BLE001 - pickle itself will say what is wrong with it
                pass
        return NotImplemented


_allowed: dict[tuple[str, str], object] = {}


def _resolve(module: str, name: str) -> object:
    key = (module, name)
    found = _allowed.get(key)
    if found is not None:
        return found
    found = _lookup(module, name)
    _allowed[key] = found
    return found


def _lookup(module: str, name: str) -> object:
    if module == "builtins":
        obj = getattr(builtins, name, None) if "." not in name else None
        if name in SAFE_BUILTINS and obj is not None or _is_exception_class(obj):
            return obj
        raise ClassRefused(module, name)
    if (module, name) in KNOWN_SAFE:
        return _load(module, name)
    rule = _rule(module)
    if rule is None:
        loaded = sys.modules.get(module)
        error = getattr(loaded, name, None) if loaded is not None and "." not in name else None
        if _is_exception_class(error) and error.__module__ == module:
            return error  # an imported library's exception, sent back as a call's failure
        raise ClassRefused(module, name)
    obj = _load(module, name)
    # where the name leads must be allowed too (elixirscope.x.subprocess.Popen)
    home = getattr(obj, "__module__", None) or module
    home_rule = _rule(home) if home != module else rule
    if home_rule is None and home == "builtins" and _is_exception_class(obj):
        home_rule = "classes"
    if home_rule is None:
        raise ClassRefused(module, name)
    if (rule == "classes" or home_rule == "classes") and not isinstance(obj, type):
        raise ClassRefused(module, name)
    return obj


def _load(module: str, name: str) -> object:
    __import__(module)
    obj: object = sys.modules[module]
    for part in name.split("."):
        if part == "<locals>":
            raise pickle.UnpicklingError(f"cannot unpickle local object {module}.{name}")
        obj = getattr(obj, part)
    return obj


def _rule(module: str) -> str | None:
    """ "any", "classes" or None (refused) for names in ``module``."""
    if _in_packages(module, _trusted):
        return "any"
    top = module.partition(".")[0]
    if top in OWN_PACKAGES or top in _actor_packages:
        return "classes"
    loaded = sys.modules.get(module)
    if loaded is not None and _is_application_module(module, loaded):
        return "classes"
    return None


def _in_packages(module: str, packages: set[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _is_exception_class(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseException)


def _is_application_module(name: str, module: ModuleType) -> bool:
    """Imported from a file outside the standard library and site-packages."""
    known = _app_modules.get(name)
    if known is not None:
        return known
    path = getattr(module, "__file__", None)
    if not path:
        verdict = False  # built in, frozen, or a namespace package
    else:
        real = os.path.realpath(path)
        verdict = not any(real.startswith(lib + os.sep) for lib in _library_dirs())
    _app_modules[name] = verdict
    return verdict


_libs: tuple[str, ...] | None = None


def _library_dirs() -> tuple[str, ...]:
    global _libs
    if _libs is None:
        keys = ("stdlib", "platstdlib", "purelib", "platlib")
        base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}
        dirs = {sysconfig.get_paths().get(k) for k in keys}
        dirs.update(sysconfig.get_paths(vars=base).get(k) for k in keys)
        try:
            dirs.update(site.getsitepackages())
            dirs.add(site.getusersitepackages())
        except AttributeError:  # site in a virtualenv without these helpers
            pass
        _libs = tuple(sorted({os.path.realpath(d) for d in dirs if d}))
    return _libs
