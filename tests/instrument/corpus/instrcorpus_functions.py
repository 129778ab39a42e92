"""Corpus: plain functions and the statements inside them (module docstring stays __doc__)."""

from __future__ import annotations

import functools
import inspect

COUNTER = 0


def defaults(a, b=[], *, c={}):  # noqa: B006 - mutable defaults are the point
    """Mutable defaults keep their identity across calls."""
    b.append(a)
    c[a] = len(b)
    return list(b), dict(c)


def case_defaults():
    defaults(1)
    return defaults(2)


def signature_zoo(a, /, b, c=3, *args, d, e=5, **kwargs) -> tuple:
    return a, b, c, args, d, e, sorted(kwargs.items())


def case_signature_zoo():
    return signature_zoo(1, 2, 9, 8, 7, d=4, z=0), str(inspect.signature(signature_zoo))


def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)


def case_recursion():
    return [fact(n) for n in range(8)]


def finally_return(x):
    log = []
    try:
        log.append("try")
        return x, log
    finally:
        log.append("finally")


def finally_overrides():
    try:
        return "try"
    finally:
        return "finally"  # noqa: B012 - the override is what is tested


def case_try_finally():
    return finally_return(3), finally_overrides()


def shapes(value):
    match value:
        case {"kind": "point", "x": x, "y": y}:
            return ("point", x, y)
        case [first, *rest]:
            return ("list", first, rest)
        case int(n) if n > 10:
            return ("big", n)
        case _:
            return ("other", value)


def case_match():
    return [shapes(v) for v in ({"kind": "point", "x": 1, "y": 2}, [1, 2, 3], 42, "s")]


def walrus(data):
    if (n := len(data)) > 2:
        total = [y for x in data if (y := x * 2) > 2]
        return n, total, y
    return n


def case_walrus():
    return walrus([1, 2, 3]), walrus([1])


def comprehensions(n):
    square = lambda v: v * v  # noqa: E731 - lambdas are part of the corpus
    return ([square(i) for i in range(n)], {i: i % 2 for i in range(n)},
            {i % 3 for i in range(n)}, sum(i for i in range(n)),
            sorted(range(n), key=lambda v: -v))


def case_comprehensions():
    return comprehensions(5)


def with_locals(a, b=2):
    c = a + b
    return sorted(locals())


def case_locals():
    return with_locals(1)


def bump():
    global COUNTER
    COUNTER += 1
    return COUNTER


def case_global():
    start = COUNTER
    bump()
    bump()
    return COUNTER - start


def make_counter():
    count = 0

    def increment(step=1):
        nonlocal count
        count += step
        return count

    return increment


def case_closure():
    counter = make_counter()
    counter()
    return counter(5), counter.__qualname__, counter.__closure__[0].cell_contents


def logged(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        print("calling", func.__name__)
        return func(*args, **kwargs)

    return wrapper


@logged
def decorated(x: int) -> int:
    """A decorated function keeps its name, doc and signature."""
    return x + 1


def case_decorator():
    return (decorated(1), decorated.__wrapped__(2), decorated.__qualname__, decorated.__doc__,
            str(inspect.signature(decorated)))


def only_docstring():
    """Nothing but a docstring."""


def case_only_docstring():
    return only_docstring(), only_docstring.__doc__


def fails(x):
    value = {"a": 1}
    return value[x]


def calls_failing(x):
    try:
        return fails(x)
    except KeyError as exc:
        raise ValueError(f"bad key {x!r}") from exc


def case_exception_chain():
    return calls_failing("zz")


def case_exception_plain():
    return fact("x")


def prints(n):
    for i in range(n):
        print("line", i)
    print("done", end="")


def case_stdout():
    prints(3)
