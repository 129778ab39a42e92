"""The program's source at recorded lines: a function's text, the loop around a line.

Recorded events carry ``file``/``line`` (a call's ``def`` line, the line that
issued a query); this module reads those files as they are now on disk, and
says so plainly when one is gone or cannot be parsed (None, never a guess).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

__all__ = ["function_source", "loop_around", "loop_calling", "read_lines"]

MAX_FILE_BYTES = 4 << 20
"""Files larger than this are not read (generated code, data)."""


@functools.lru_cache(maxsize=64)
def _text(file: str) -> str | None:
    path = Path(file)
    try:
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


@functools.lru_cache(maxsize=64)
def _tree(file: str) -> ast.Module | None:
    text = _text(file)
    if text is None:
        return None
    try:
        return ast.parse(text, filename=file)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def read_lines(file: str, first: int, last: int) -> list[tuple[int, str]]:
    """Lines ``first``..``last`` (1-based, inclusive) of ``file``, numbered; [] if unreadable."""
    text = _text(file)
    if text is None or first < 1:
        return []
    lines = text.splitlines()
    return [(n, lines[n - 1]) for n in range(first, min(last, len(lines)) + 1)]


def _functions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def function_source(file: str, def_line: int, max_lines: int = 60) -> list[tuple[int, str]]:
    """The function whose ``def`` is at ``def_line`` (decorators included), at most
    ``max_lines`` lines of it; [] if the file or the function cannot be found."""
    tree = _tree(file)
    if tree is None:
        return []
    for node in _functions(tree):
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        if node.lineno == def_line or first == def_line:
            last = min(node.end_lineno or node.lineno, first + max_lines - 1)
            return read_lines(file, first, last)
    return []


_LOOPS = (
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)


def loop_around(file: str, line: int) -> int | None:
    """The line of the innermost loop (``for``, ``while``, a comprehension) whose body
    holds ``line``, within the function holding it; None if there is none."""
    tree = _tree(file)
    if tree is None:
        return None
    best: ast.AST | None = None
    for node in ast.walk(tree):
        if isinstance(node, _LOOPS) and node.lineno <= line <= (node.end_lineno or node.lineno):
            if isinstance(node, (ast.For, ast.AsyncFor, ast.While)) and line == node.lineno:
                continue  # the loop's own header, not its body
            if best is None or node.lineno >= best.lineno:  # type: ignore[attr-defined]
                best = node
    return None if best is None else best.lineno  # type: ignore[attr-defined]


def loop_calling(file: str, def_line: int, callee: str) -> int | None:
    """In the function defined at ``def_line``, the line of the innermost loop holding
    a call of ``callee`` (its last name: ``fetch`` matches ``self.fetch(...)``)."""
    tree = _tree(file)
    if tree is None:
        return None
    name = callee.rpartition(".")[2]
    for fn in _functions(tree):
        if fn.lineno != def_line:
            continue
        for call in ast.walk(fn):
            if not isinstance(call, ast.Call):
                continue
            func = call.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called == name:
                loop = loop_around(file, call.lineno)
                if loop is not None and loop >= fn.lineno:
                    return loop
    return None
