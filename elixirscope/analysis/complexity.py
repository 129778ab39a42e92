"""Complexity of one function or class body: cyclomatic, cognitive, nesting, lines.

Computed here, on the tree the analysis already holds (radon and mccabe would
parse each file again; neither gives cognitive complexity). The rules, each
counted over the scope's own code — nested functions and classes are nodes of
their own and count for themselves:

- **cyclomatic** (McCabe, as radon counts it): 1, +1 per ``if``/``elif``,
  conditional expression, ``for``/``while`` (+1 more for its ``else``),
  ``except`` clause, ``try``'s ``else``, comprehension ``for`` and each of its
  ``if``\\ s, ``match`` case (a bare ``case _`` excepted), and per extra operand
  of a boolean operator (``a and b or c``: +2).
- **cognitive** (G. Ann Campbell's, SonarSource 2017, for Python): +1 plus the
  current nesting for each ``if``, conditional expression, loop, ``except``
  and ``match``; +1 flat for each ``elif``, ``else`` (of ``if``), loop and
  ``try`` ``else``; +1 per boolean operator sequence (``a and b and c``: +1,
  ``a and b or c``: +2); +1 per comprehension ``for`` and per comprehension
  ``if``. Nesting grows inside those and inside lambdas.
- **nesting**: the deepest block (``if``, loop, ``with``, ``try``, ``match``)
  below the body, which is depth 0.
- **lines**: the span, first decorator to last line.
"""

from __future__ import annotations

import ast
from typing import NamedTuple

__all__ = ["Complexity", "complexity_of"]

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_BLOCKS = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try, ast.Match)
_TRY_STAR = getattr(ast, "TryStar", ast.Try)


class Complexity(NamedTuple):
    cyclomatic: int
    cognitive: int
    nesting: int
    lines: int


def complexity_of(scope: ast.AST, first_line: int) -> Complexity:
    """The four measures of ``scope``'s own code (``first_line``: its first decorator's)."""
    body = getattr(scope, "body", [])
    counter = _Counter()
    for stmt in body:
        counter.visit_in(stmt, 0)
    lines = getattr(scope, "end_lineno", first_line) - first_line + 1
    return Complexity(counter.cyclomatic, counter.cognitive, counter.deepest, lines)


class _Counter:
    def __init__(self) -> None:
        self.cyclomatic = 1
        self.cognitive = 0
        self.deepest = 0

    def visit_in(self, node: ast.AST, nesting: int, depth: int = 0) -> None:
        """Count ``node`` at cognitive ``nesting`` and block ``depth``."""
        if isinstance(node, _SCOPES):
            return
        if isinstance(node, _BLOCKS):
            depth += 1
            self.deepest = max(self.deepest, depth)
        if isinstance(node, ast.If):
            self._if(node, nesting, depth, elif_=False)
            return
        if isinstance(node, _LOOPS):
            self.cyclomatic += 1 + bool(node.orelse)
            self.cognitive += 1 + nesting + bool(node.orelse)
            self._each([node.target] if not isinstance(node, ast.While) else [], nesting, depth)
            self._each(
                [node.iter] if not isinstance(node, ast.While) else [node.test], nesting, depth
            )
            self._each(node.body, nesting + 1, depth)
            self._each(node.orelse, nesting + 1, depth)
            return
        if isinstance(node, (ast.Try, _TRY_STAR)):
            self.cyclomatic += len(node.handlers) + bool(node.orelse)
            self.cognitive += bool(node.orelse)
            self._each(node.body, nesting, depth)
            for handler in node.handlers:
                self.cognitive += 1 + nesting
                if handler.type is not None:
                    self.visit_in(handler.type, nesting, depth)
                self._each(handler.body, nesting + 1, depth)
            self._each(node.orelse, nesting, depth)
            self._each(node.finalbody, nesting, depth)
            return
        if isinstance(node, ast.Match):
            cases = [c for c in node.cases if not _is_wildcard(c)]
            self.cyclomatic += len(cases)
            self.cognitive += 1 + nesting
            self.visit_in(node.subject, nesting, depth)
            for case in node.cases:
                if case.guard is not None:
                    self.visit_in(case.guard, nesting + 1, depth)
                self._each(case.body, nesting + 1, depth)
            return
        if isinstance(node, ast.IfExp):
            self.cyclomatic += 1
            self.cognitive += 1 + nesting
            self._each([node.test, node.body, node.orelse], nesting + 1, depth)
            return
        if isinstance(node, ast.BoolOp):
            self.cyclomatic += len(node.values) - 1
            self.cognitive += 1
        elif isinstance(node, ast.comprehension):
            self.cyclomatic += 1 + len(node.ifs)
            self.cognitive += 1 + len(node.ifs)
        elif isinstance(node, ast.Lambda):
            self.visit_in(node.body, nesting + 1, depth)
            return
        for child in ast.iter_child_nodes(node):
            self.visit_in(child, nesting, depth)

    def _if(self, node: ast.If, nesting: int, depth: int, *, elif_: bool) -> None:
        self.cyclomatic += 1
        self.cognitive += 1 if elif_ else 1 + nesting
        self.visit_in(node.test, nesting, depth)
        self._each(node.body, nesting + 1, depth)
        orelse = node.orelse
        if len(orelse) == 1 and isinstance(orelse[0], ast.If) and _is_elif(node, orelse[0]):
            self._if(orelse[0], nesting, depth, elif_=True)
        elif orelse:
            self.cognitive += 1
            self._each(orelse, nesting + 1, depth)

    def _each(self, nodes: list, nesting: int, depth: int) -> None:
        for child in nodes:
            self.visit_in(child, nesting, depth)


def _is_elif(parent: ast.If, child: ast.If) -> bool:
    """``elif`` and ``else: if`` parse alike; an ``elif`` starts on a line of its own
    column, left of where the body's ``if`` would be indented."""
    body_col = parent.body[0].col_offset if parent.body else parent.col_offset + 4
    return child.col_offset < body_col


def _is_wildcard(case: ast.match_case) -> bool:
    pattern = case.pattern
    return isinstance(pattern, ast.MatchAs) and pattern.pattern is None and case.guard is None
