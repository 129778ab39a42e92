"""The rewriter's generated shapes (hooks_api.md), positions and qualnames."""

from __future__ import annotations

import ast
import re
import textwrap

import elixirscope.instrument as instrument
from elixirscope.capture import hooks
from elixirscope.instrument.rewriter import def_qualnames, rewrite_module, rewrite_source

SOURCE = textwrap.dedent('''
    """Module doc."""
    from __future__ import annotations

    def plain(a, /, b=1, *args, c, **kw):
        """Doc."""
        if a:
            return a + b
        return

    class C:
        def method(self, v):
            self.v = v
            self.n += 1

        def gen(self):
            got = yield 1
            yield from range(got)

        async def co(self):
            await self.method(1)

    def outer():
        global made
        def made():
            return 1
        def local():
            return lambda: 2
        return local
''')


def shape(level: str) -> str:
    tree = rewrite_module(ast.parse(SOURCE), "shapes", {"shapes.*": level}, "shapes.py")
    names = {info.fid: info.qualname for info in hooks.functions()}
    # fids vary between runs: show each as <qualname>
    return re.sub(r"(__elixirscope__\.\w+\()(\d+)",
                  lambda m: f"{m[1]}<{names[int(m[2])]}>", ast.unparse(tree))


def test_boundaries_shape():
    text = shape("boundaries")
    assert '"""Doc."""\n    with __elixirscope__.call(<plain>):\n        if a:' in text
    assert "return a + b" in text
    assert "with __elixirscope__.gen_call(<C.gen>):" in text
    assert "got = __elixirscope__.resumed(<C.gen>, (yield __elixirscope__.yielding(<C.gen>, 17, 1)))" \
        in text
    assert ("__elixirscope__.resumed(<C.gen>, (yield from "
            "__elixirscope__.yielding_from(<C.gen>, 18, range(got))))") in text
    assert ("__elixirscope__.resumed(<C.co>, await __elixirscope__.awaiting(<C.co>, 21, "
            "self.method(1)))")  # each suspension carries its line (17, 18, 21 above) in text
    assert "__elixirscope__.attr" not in text
    assert text.startswith('"""Module doc."""\nfrom __future__ import annotations\n')


def test_args_shape_records_arguments_and_returns():
    text = shape("args")
    assert ("with __elixirscope__.call_args(<plain>, ('a', 'b', 'args', 'c', 'kw'), "
            "(a, b, args, c, kw)):") in text
    assert "return __elixirscope__.ret(<plain>, a + b)" in text
    assert "\n        return\n" in text     # a bare return stays bare
    assert "with __elixirscope__.gen_call_args(<C.gen>, ('self',), (self,)):" in text
    assert "__elixirscope__.attr" not in text


def test_full_shape_adds_attribute_changes_after_assignments():
    text = shape("full")
    assert ("self.v = v\n            __elixirscope__.attr(<C.method>, self, 'v')\n"
            "            self.n += 1\n            __elixirscope__.attr(<C.method>, self, 'n')"
            in text)


def test_qualnames_follow_python():
    found = sorted(def_qualnames(ast.parse(SOURCE)).values())
    assert found == sorted(["plain", "C.method", "C.gen", "C.co", "outer", "made",
                            "outer.<locals>.local"])
    namespace: dict = {}
    exec(compile(SOURCE, "q.py", "exec"), namespace)
    namespace["outer"]()
    assert namespace["made"].__qualname__ == "made"


def test_generated_nodes_carry_the_positions_they_wrap():
    tree = rewrite_module(ast.parse(SOURCE), "shapes", {"shapes.*": "args"}, "shapes.py")
    plain = tree.body[2]
    with_ = plain.body[1]
    assert isinstance(with_, ast.With)
    assert (with_.lineno, with_.end_lineno) == (plain.body[1].body[0].lineno, 9)
    assert all(hasattr(node, "lineno") for node in ast.walk(tree)
               if "lineno" in node._attributes)


def test_rewrite_source_returns_runnable_code_with_no_injected_names():
    code = rewrite_source("def f(a):\n    b = a\n    return sorted(locals())\n", "m",
                          {"m.*": "full"}, "m.py")
    namespace: dict = {}
    exec(code, namespace)
    assert namespace["f"](1) == ["a", "b"]
    assert sorted(namespace) == ["__builtins__", "f"]


def test_public_api_is_what_init_exports():
    assert sorted(instrument.__all__) == sorted([
        "LEVELS", "ImportHookHandle", "Instrumented", "Plan", "PlanError", "Rule", "install",
        "installed", "rewrite_module", "rewrite_source", "run_module", "run_path", "trace",
        "traced", "uninstall", "untrace"])
