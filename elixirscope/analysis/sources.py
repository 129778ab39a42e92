"""The source files of what is analysed, and the module each is imported as.

A target is a directory (every ``*.py`` below it, skipping hidden directories,
virtual environments, ``__pycache__``, ``node_modules``, ``build`` and
``dist``) or the name of an installed module or package (found with
``importlib.util.find_spec``, without importing it). A file's module name
comes from the nearest directory above it that is not a package (has no
``__init__.py``): ``src/shop/desk.py`` in package ``shop`` is ``shop.desk``.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AnalysisError", "SourceFile", "Target", "find_target"]

SKIPPED_DIRS = frozenset(
    ("__pycache__", "node_modules", "build", "dist", "site-packages", "venv", ".venv")
)


class AnalysisError(ValueError):
    """A target that cannot be analysed; the message names it and why."""


@dataclass(frozen=True)
class SourceFile:
    path: str  # absolute, as recorded calls name it
    module: str
    package: bool  # an ``__init__.py``: relative imports start from the module itself


@dataclass(frozen=True)
class Target:
    """What was asked for: its root (a directory or one file) and its files."""

    name: str
    root: str
    files: tuple[SourceFile, ...]


def find_target(text: str) -> Target:
    """A directory, a ``.py`` file, or an installed module's name - or AnalysisError."""
    path = Path(text).expanduser()
    if path.is_dir():
        root = str(path.resolve())
        return Target(root, root, tuple(_files_under(Path(root))))
    if path.is_file():
        if path.suffix != ".py":
            raise AnalysisError(f"{text!r} is not a Python source file (.py)")
        full = path.resolve()
        return Target(str(full), str(full), (_source(full),))
    if os.sep in text or text.endswith(".py"):
        raise AnalysisError(f"{text!r} does not exist")
    try:
        spec = importlib.util.find_spec(text)
    except (ImportError, ValueError) as exc:
        raise AnalysisError(f"cannot find module {text!r}: {exc}") from None
    if spec is None:
        raise AnalysisError(f"{text!r} is neither a directory, a file nor an installed module")
    if spec.submodule_search_locations:
        folders = [Path(p).resolve() for p in spec.submodule_search_locations]
        files = [f for folder in folders for f in _files_under(folder)]
        return Target(text, str(folders[0]), tuple(files))
    if spec.origin and spec.origin.endswith(".py"):
        full = Path(spec.origin).resolve()
        return Target(text, str(full), (_source(full),))
    raise AnalysisError(f"module {text!r} has no Python source ({spec.origin})")


def _files_under(root: Path) -> list[SourceFile]:
    out: list[SourceFile] = []
    prefixes: dict[str, str] = {}  # folder -> its dotted package name ("" outside any)
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in SKIPPED_DIRS
            and not os.path.exists(os.path.join(folder, d, "pyvenv.cfg"))
        )
        package = _package_of(folder, prefixes)
        for name in sorted(names):
            if name.endswith(".py"):
                out.append(_named(os.path.join(folder, name), name, package))
    return out


def _package_of(folder: str, known: dict[str, str]) -> str:
    """The dotted name of the package ``folder`` is ("" when it is not one)."""
    found = known.get(folder)
    if found is not None:
        return found
    if not os.path.exists(os.path.join(folder, "__init__.py")):
        known[folder] = ""
        return ""
    parent = os.path.dirname(folder)
    above = _package_of(parent, known) if parent != folder else ""
    name = os.path.basename(folder)
    package = f"{above}.{name}" if above else name
    known[folder] = package
    return package


def _named(path: str, name: str, package: str) -> SourceFile:
    if name == "__init__.py":
        module = package or os.path.basename(os.path.dirname(path))
        return SourceFile(path, module, True)
    stem = name[:-3]
    return SourceFile(path, f"{package}.{stem}" if package else stem, False)


def _source(path: Path) -> SourceFile:
    folder = str(path.parent)
    return _named(str(path), path.name, _package_of(folder, {}))
