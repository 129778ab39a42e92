"""The implicit awaits of ``async for`` / ``async with``: the rewritten shapes, their
positions, and the events an instrumented module records (equivalence with the plain
module is checked by the corpus, ``instrcorpus_generators``)."""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import textwrap

import pytest
from instr_support import CORPUS, drain, load

from elixirscope.capture import hooks
from elixirscope.instrument.rewriter import rewrite_module

SOURCE = textwrap.dedent('''
    async def co(src, cm):
        async for x in src:
            pass
        else:
            pass
        async with cm as a, cm:
            pass
        got = [y async for y in src if y async for z in y]
        sets = {y async for y in src}
        table = {y: y async for y in src}
        sync = [y for y in src]
        later = (y async for y in src)
        async def inner():
            async for w in src:
                pass
        return got, sets, table, sync, later, inner

    async def agen(src):
        async for x in src:
            yield x

    def plain(src):
        return (y async for y in src)
''')


def rewritten() -> tuple[ast.Module, str]:
    tree = rewrite_module(ast.parse(SOURCE), "shapes", {"shapes.co": "args", "shapes.agen": "args",
                                                         "shapes.plain": "args"}, "shapes.py")
    names = {info.fid: info.qualname for info in hooks.functions()}
    text = re.sub(r"(__elixirscope__\.\w+\()(\d+)",
                  lambda m: f"{m[1]}<{names[int(m[2])]}>", ast.unparse(tree))
    return tree, text


def test_async_for_with_and_comprehensions_go_through_the_proxies():
    _, text = rewritten()
    assert "async for x in __elixirscope__.async_iter(<co>, 3, src):" in text
    assert ("async with __elixirscope__.async_with(<co>, 7, cm) as a, "
            "__elixirscope__.async_with(<co>, 7, cm):") in text
    assert ("[y async for y in __elixirscope__.async_iter(<co>, 9, src) if y "
            "async for z in __elixirscope__.async_iter(<co>, 9, y)]") in text
    assert "{y async for y in __elixirscope__.async_iter(<co>, 10, src)}" in text
    assert "{y: y async for y in __elixirscope__.async_iter(<co>, 11, src)}" in text
    assert "sync = [y for y in src]" in text
    # an async generator expression runs later, maybe elsewhere: left alone
    assert "later = (y async for y in src)" in text
    assert "return __elixirscope__.ret(<plain>, (y async for y in src))" in text
    # a nested (not instrumented) coroutine is its own scope
    assert "async for w in src:" in text
    assert "async for x in __elixirscope__.async_iter(<agen>, 20, src):" in text


def test_the_proxy_calls_have_the_statement_and_comprehension_positions():
    tree, _ = rewritten()
    co = tree.body[0]
    statements = co.body[0].body    # inside the generated `with`
    for stmt, call in ((statements[0], statements[0].iter),
                       (statements[1], statements[1].items[1].context_expr),
                       (statements[2].value, statements[2].value.generators[1].iter)):
        assert isinstance(call, ast.Call) and call.func.attr in ("async_iter", "async_with")
        assert (call.lineno, call.col_offset, call.end_lineno, call.end_col_offset) == (
            stmt.lineno, stmt.col_offset, stmt.end_lineno, stmt.end_col_offset)
        # kept on one line, so the compiler does not move the call's start to its end line
        assert call.func.lineno == call.func.end_lineno == stmt.lineno


@pytest.fixture()
def corpus(monkeypatch):
    monkeypatch.syspath_prepend(str(CORPUS))
    module, handle = load("instrcorpus_generators",
                          {"rules": [{"pattern": "instrcorpus_generators.*", "level": "args"}]})
    assert handle.failures == {}
    drain()
    return module


def _steps(events: list, function: str, tag: str) -> list:
    return [e[8] for e in events if e[0] == tag and e[7] == function]


def test_each_implicit_await_of_a_loop_is_recorded(corpus):
    before = hooks.stats()["stack_mismatches"]
    assert asyncio.run(corpus.loops()) == [0, 2, 3, 0, 10, "else ran", -4, -2,
                                           "countdown else", 5, 4]
    events = drain()
    name = "instrcorpus_generators.loops"
    # __anext__ calls: 5 (break at 4) + 3 (2 items and the end) + 6 + 3 (break at 3)
    assert len(_steps(events, name, "yield")) == 17
    resumes = _steps(events, name, "resume")
    assert resumes.count("StopAsyncIteration()") == 2 and len(resumes) == 17
    assert hooks.stats()["stack_mismatches"] == before


def test_async_with_and_comprehensions_are_recorded(corpus):
    before = hooks.stats()["stack_mismatches"]
    assert asyncio.run(corpus.with_two_items()) == ("F", "G")
    assert asyncio.run(corpus.comprehensions())[0] == [0, 1, 9]
    events = drain()
    # two managers: __aenter__ and __aexit__ each
    assert _steps(events, "instrcorpus_generators.with_two_items", "resume") == [
        "'F'", "'G'", "True", "False"]
    # __anext__ calls in the coroutine and its comprehensions: 5 + 6 + (4 + 4 + 3 + 2) + 4,
    # and 3 on the async generator expression `later` (whose own ones are not recorded)
    resumes = _steps(events, "instrcorpus_generators.comprehensions", "resume")
    assert len(resumes) == 31 and resumes.count("StopAsyncIteration()") == 8
    assert hooks.stats()["stack_mismatches"] == before


def _lines_of(events: list, function: str) -> list:
    return [e[9] for e in events if e[0] == "yield" and e[7] == function]


def _source_line(module, text: str) -> int:
    """The line of ``module``'s source that holds ``text`` (once)."""
    lines = [n for n, line in enumerate(inspect.getsource(module).splitlines(), 1)
             if text in line]
    assert len(lines) == 1, (text, lines)
    return lines[0]


def test_each_suspension_records_its_own_line(corpus):
    """A yield names the line that suspended its call: the ``await``, ``async with``,
    ``async for``, ``yield`` or ``yield from`` — where a call waited, with no lookup."""
    asyncio.run(corpus.with_two_items())
    asyncio.run(corpus.loops())
    assert corpus.case_generator()
    asyncio.run(corpus.fetch(1))
    events = drain()
    name = "instrcorpus_generators."
    with_line = _source_line(corpus, 'async with Resource("f") as first')
    assert _lines_of(events, name + "with_two_items") == [with_line] * 4
    loops = set(_lines_of(events, name + "loops"))
    assert loops == {_source_line(corpus, "async for i in numbers(6):"),
                     _source_line(corpus, "async for i in numbers(2):")} | {
        n for n, line in enumerate(inspect.getsource(corpus).splitlines(), 1)
        if "async for n in Countdown(5):" in line}
    assert set(_lines_of(events, name + "countdown")) == {_source_line(corpus, "received = yield n")}
    assert set(_lines_of(events, name + "delegate")) == {
        _source_line(corpus, "result = yield from countdown(n)"),
        _source_line(corpus, "    yield result")}
    assert _lines_of(events, name + "fetch") == [_source_line(corpus, "await asyncio.sleep(delay)")]
    awaiting = {e[7].rpartition(".")[2]: e[10] for e in events if e[0] == "yield"}
    assert {k: awaiting[k] for k in ("with_two_items", "loops", "fetch")} == dict.fromkeys(
        ("with_two_items", "loops", "fetch"), True)
    # a generator's and an async generator's yields hand values on
    assert awaiting["countdown"] is awaiting["delegate"] is awaiting["numbers"] is False


def test_an_except_clause_of_a_coroutine_or_generator_says_it_caught():
    """Each ``except`` clause of a coroutine, async generator or generator begins with
    ``caught``; a plain function's, and a nested function's (its own scope), do not."""
    source = textwrap.dedent('''
        async def co(x):
            try:
                await x
            except (KeyError, ValueError) as e:
                print(e)
            try:
                await x
            except* OSError:
                pass
            def inner():
                try:
                    pass
                except KeyError:
                    pass
            return inner

        def gen():
            try:
                yield 1
            except ValueError:
                yield 2

        def plain():
            try:
                pass
            except KeyError:
                pass
    ''')
    plan = {f"caught.{name}": "args" for name in ("co", "gen", "plain", "co.<locals>.inner")}
    tree = rewrite_module(ast.parse(source), "caught", plan, "caught.py")
    names = {info.fid: info.qualname for info in hooks.functions()}
    text = re.sub(r"(__elixirscope__\.\w+\()(\d+)",
                  lambda m: f"{m[1]}<{names[int(m[2])]}>", ast.unparse(tree))
    assert text.count("__elixirscope__.caught(") == 3
    assert ("except (KeyError, ValueError) as e:\n"
            "            __elixirscope__.caught(<co>)\n"
            "            print(e)") in text
    assert "except* OSError:\n            __elixirscope__.caught(<co>)\n" in text
    assert "except ValueError:\n            __elixirscope__.caught(<gen>)\n" in text
    compile(tree, "caught.py", "exec")  # a valid module
