"""Complexity against values worked out by hand (and, for cyclomatic, radon's rules)."""

from __future__ import annotations

import ast
import textwrap

import pytest

from elixirscope.analysis.complexity import complexity_of


def measure(source: str):
    fn = ast.parse(textwrap.dedent(source)).body[0]
    first = fn.decorator_list[0].lineno if fn.decorator_list else fn.lineno
    return complexity_of(fn, first)


CASES = [
    ("def f():\n    return 1\n", (1, 0, 0, 2)),
    # if/elif/else: cyclomatic +2; cognitive if +1, elif +1, else +1
    ("def f(x):\n    if x > 0:\n        return 1\n    elif x < 0:\n        return -1\n    else:\n        return 0\n",
     (3, 3, 1, 7)),
    # Campbell's sumOfPrimes: for (+1), nested for (+2), nested if (+3), continue (0) = 6... plus
    # the label-free continue of Python: 6 here (Java's labelled continue adds 1 there)
    ("""
     def sum_of_primes(maximum):
         total = 0
         for i in range(1, maximum + 1):
             for j in range(2, i):
                 if i % j == 0:
                     continue
             total += i
         return total
     """, (4, 6, 3, 8)),
    # boolean sequences: a and b and c (+1), then or (+1); cyclomatic +3 operands
    ("def f(a, b, c, d):\n    return a and b and c or d\n", (4, 2, 0, 2)),
    # try/except/else: cyclomatic +2 handlers +1 else; cognitive: excepts +1 each (nesting 0), else +1
    ("""
     def f():
         try:
             go()
         except ValueError:
             pass
         except KeyError:
             pass
         else:
             done()
     """, (4, 3, 1, 9)),
    # while with else; conditional expression nested in it (+1 + nesting 1)
    ("""
     def f(n):
         while n:
             n = n - 1 if n > 1 else 0
         else:
             return n
     """, (4, 4, 1, 5)),
    # comprehension: for +1, if +1 each, in both measures
    ("def f(xs):\n    return [x for x in xs if x if x > 2]\n", (4, 3, 0, 2)),
    # match: two cases and a wildcard; nested function is not counted here
    ("""
     def f(cmd):
         def helper():
             if cmd:
                 return 1
         match cmd:
             case "a":
                 return 1
             case "b":
                 return 2
             case _:
                 return 0
     """, (3, 1, 1, 11)),
    # with/with/if: nesting depth 3; cognitive counts only the if (+1 + nesting 0)
    ("""
     @decorated
     def f(a, b):
         with a:
             with b:
                 if a:
                     pass
     """, (2, 1, 3, 6)),
]


@pytest.mark.parametrize(("source", "expected"), CASES)
def test_known_values(source, expected):
    assert tuple(measure(source)) == expected
