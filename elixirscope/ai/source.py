"""The program's source at recorded lines: a function's text, the loop around a line.

Recorded events carry ``file``/``line`` (a call's ``def`` line, the line that
issued a query); this module reads those files as they are now on disk, and
says so plainly when one is gone or cannot be parsed (None, never a guess).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Sequence
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


_STATEMENT_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _span(node: ast.AST) -> tuple[int, int]:
    first = node.lineno  # type: ignore[attr-defined]
    return first, node.end_lineno or first  # type: ignore[attr-defined]


def _within(line: int, nodes: Sequence[ast.AST]) -> bool:
    return any(_span(n)[0] <= line <= _span(n)[1] for n in nodes)


def _repeated(node: ast.AST, line: int) -> str:
    """Whether ``line`` runs on each pass of the loop ``node``: "yes", "no", or "maybe" (a
    comprehension on one line with its first iterable: which part the line means is not known)."""
    if isinstance(node, (ast.For, ast.AsyncFor)):
        return "yes" if _within(line, node.body) else "no"
    if isinstance(node, ast.While):
        return "yes" if _within(line, [node.test, *node.body]) else "no"
    if isinstance(node, _COMPREHENSIONS):
        first = node.generators[0]
        parts: list[ast.AST] = [*first.ifs, *node.generators[1:]]
        if isinstance(node, ast.DictComp):
            parts += [node.key, node.value]
        else:
            parts.append(node.elt)
        if not _within(line, parts):
            return "no"
        return "maybe" if _within(line, [first.iter]) else "yes"
    return "no"


def loop_around(file: str, line: int) -> int | None:
    """The line of the innermost loop (``for``, ``while``, a comprehension) that runs
    ``line`` on each pass; None if there is none. A one-line comprehension whose first
    iterable shares the line (``sum(x.qty for x in order.lines)``: is the query in the
    iterable, run once, or in the element?) counts only when no statement loop holds it."""
    tree = _tree(file)
    if tree is None:
        return None
    sure: list[ast.AST] = []
    maybe: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, (*_STATEMENT_LOOPS, *_COMPREHENSIONS)):
            seen = _repeated(node, line)
            if seen == "yes":
                sure.append(node)
            elif seen == "maybe":
                maybe.append(node)
    if sure:
        return max(_span(n)[0] for n in sure)
    return max(_span(n)[0] for n in maybe) if maybe else None


def _loop_running(fn: ast.AST, call: ast.Call) -> int | None:
    """The innermost loop of ``fn`` whose repeated part holds the node ``call``."""
    best: tuple[int, int] | None = None
    for node in ast.walk(fn):
        parts: list[ast.AST] = []
        if isinstance(node, (ast.For, ast.AsyncFor)):
            parts = list(node.body)
        elif isinstance(node, ast.While):
            parts = [node.test, *node.body]
        elif isinstance(node, _COMPREHENSIONS):
            parts = [*node.generators[0].ifs, *node.generators[1:]]
            parts += [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        if any(call is sub for part in parts for sub in ast.walk(part)):
            depth = (_span(node)[0], node.col_offset)  # type: ignore[attr-defined]
            if best is None or depth >= best:
                best = depth
    return None if best is None else best[0]


def loop_calling(file: str, def_line: int, callee: str) -> int | None:
    """In the function defined at ``def_line`` (its ``def``'s, or its first decorator's as a
    decorated function's code says), the line of the innermost loop holding
    a call of ``callee`` (its last name: ``fetch`` matches ``self.fetch(...)``)."""
    tree = _tree(file)
    if tree is None:
        return None
    name = callee.rpartition(".")[2]
    for fn in _functions(tree):
        # a decorated function's code starts at its first decorator (a route's ``@app.get``)
        if def_line not in (fn.lineno, min([fn.lineno, *(d.lineno for d in fn.decorator_list)])):
            continue
        for call in ast.walk(fn):
            if not isinstance(call, ast.Call):
                continue
            func = call.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called == name:
                loop = _loop_running(fn, call)
                if loop is not None:
                    return loop
    return None
