"""The AST rewriter: wraps selected functions in calls to the capture hooks.

The generated shapes are the contract in ``hooks_api.md``; every generated
name is an attribute of the one builtin ``__elixirscope__``, so no local or
global variable is ever introduced (``locals()`` is unchanged)::

    def f(a, b=1):
        "docstring stays first"
        with __elixirscope__.call(FID):                      # boundaries
        with __elixirscope__.call_args(FID, ('a', 'b'), (a, b)):   # args / full
            return __elixirscope__.ret(FID, <expr>)          # args / full
            __elixirscope__.attr(FID, self, 'x')             # full, after self.x = ...

Generators use ``gen_call``; every ``yield``/``yield from`` goes through
``yielding``/``resumed`` and every ``await`` in a coroutine through
``awaiting``/``resumed``. The implicit awaits of a coroutine or async
generator go through proxies that record them the same way::

    async for T in __elixirscope__.async_iter(FID, LINE, E):  # each __anext__
    [x async for x in __elixirscope__.async_iter(FID, LINE, E)]  # list/set/dict comprehensions
    async with __elixirscope__.async_with(FID, LINE, E) as x, ...:

(LINE, a constant, is the line of the ``yield``, ``await`` or statement: where the
call was suspended, recorded with no lookup.) Each ``except`` clause of a generator,
coroutine or async generator begins with ``__elixirscope__.caught(FID)``: run while its
frame is still suspended, the exception was thrown in at a ``yield`` or ``await`` (a
failed awaitable, a timeout, ``throw``), and that resume is recorded with it.

(async generator expressions are left alone: they run later, maybe elsewhere).
Nested functions, methods and classes are visited with their real
``__qualname__``; lambdas and comprehensions are not wrapped as functions.

Original nodes keep their positions, and generated nodes take the position of
the node they wrap, so tracebacks show the original lines and carets (the
``async_iter``/``async_with`` calls take the position of the statement or
comprehension, where the interpreter reports errors of ``__aiter__``).
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType
from typing import Any

from .plan import Plan

__all__ = ["Instrumented", "rewrite_module", "rewrite_source"]

HOOKS_NAME = "__elixirscope__"

# (qualname, def node) -> (registered level, sampling, shape level) or None to leave it.
Chooser = Callable[[str, "ast.FunctionDef | ast.AsyncFunctionDef"], "tuple[str, float, str] | None"]


@dataclass(frozen=True)
class Instrumented:
    """One function the rewriter wrapped: its id from ``register`` and its level."""

    module: str
    qualname: str
    fid: int
    level: str
    kind: str
    filename: str
    lineno: int


# Functions wrapped so far, by (filename, first line, qualname): lets live tracing find
# the fid of a function that the import hook instrumented.
registry: dict[tuple[str, int, str], Instrumented] = {}


def hooks() -> Any:
    """The installed hooks object (installing the capture runtime's hooks if needed)."""
    from elixirscope.capture import hooks as capture_hooks

    capture_hooks.install()
    return getattr(builtins, HOOKS_NAME)


def rewrite_source(source: str | bytes, module: str, plan: Any, filename: str) -> CodeType:
    """Parse, rewrite and compile ``source`` as ``module``; raises SyntaxError like compile."""
    tree = ast.parse(source, filename)
    tree = rewrite_module(tree, module, plan, filename)
    return compile(tree, filename, "exec", dont_inherit=True)


def rewrite_module(tree: ast.Module, module: str, plan: Any, filename: str) -> ast.Module:
    """Rewrite, in place, every function of ``tree`` that ``plan`` selects; returns ``tree``."""
    plan = Plan.load(plan)

    def choose(qualname: str, node: ast.AST) -> tuple[str, float, str] | None:
        level, sampling = plan.level_for(module, qualname)
        return None if level == "none" else (level, sampling, level)

    rewrite_tree(tree, module, filename, choose)
    return tree


def rewrite_tree(
    tree: ast.Module, module: str, filename: str, choose: Chooser
) -> list[Instrumented]:
    """Rewrite the functions ``choose`` picks; returns what was wrapped (for live tracing)."""
    rewriter = _Rewriter(module, filename, choose)
    rewriter.visit(tree)
    return rewriter.done


def def_qualnames(tree: ast.Module) -> dict[ast.FunctionDef | ast.AsyncFunctionDef, str]:
    """Every function definition of ``tree`` with the ``__qualname__`` it gets."""
    found: dict[ast.FunctionDef | ast.AsyncFunctionDef, str] = {}
    _Rewriter("", "", lambda q, n: found.__setitem__(n, q)).visit(tree)
    return found


# -- building generated nodes -----------------------------------------------------


def _hook(name: str, args: list[ast.expr], at: ast.stmt | ast.expr) -> ast.Call:
    call = ast.Call(
        func=ast.Attribute(value=ast.Name(HOOKS_NAME, ast.Load()), attr=name, ctx=ast.Load()),
        args=args,
        keywords=[],
    )
    return _located(call, at)


def _hook_spanning(name: str, args: list[ast.expr], at: ast.stmt | ast.expr) -> ast.Call:
    """A hook call whose own instruction has exactly ``at``'s position, also when ``at``
    spans lines (the compiler moves a method call's start to the end line of its
    ``obj.attr``, so the attribute is kept on the first line)."""
    call = _hook(name, args, at)
    for sub in (call.func, call.func.value):  # type: ignore[attr-defined]
        sub.end_lineno, sub.end_col_offset = sub.lineno, sub.col_offset
    return call


def _line(at: ast.stmt | ast.expr) -> ast.Constant:
    """``at``'s line as a constant argument (a suspension's, recorded with no lookup)."""
    return _located(ast.Constant(at.lineno), at)


def _located(node: Any, at: ast.stmt | ast.expr) -> Any:
    """Give ``node`` and its location-less descendants the position of ``at``."""
    sub: Any  # an AST node that has location attributes (checked by ``_attributes``)
    for sub in ast.walk(node):
        if "lineno" in sub._attributes and not hasattr(sub, "lineno"):
            sub.lineno, sub.col_offset = at.lineno, at.col_offset
            sub.end_lineno = getattr(at, "end_lineno", at.lineno)
            sub.end_col_offset = getattr(at, "end_col_offset", at.col_offset)
    return node


def _param_names(args: ast.arguments) -> list[str]:
    names = [a.arg for a in args.posonlyargs + args.args]
    if args.vararg:
        names.append(args.vararg.arg)
    names += [a.arg for a in args.kwonlyargs]
    if args.kwarg:
        names.append(args.kwarg.arg)
    return names


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _own_nodes(body: list[ast.stmt]):
    """Nodes of a function body that belong to its own scope (not nested defs/lambdas)."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, _SCOPES):
                stack.append(child)


def _kind(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    yields = any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in _own_nodes(node.body))
    if isinstance(node, ast.AsyncFunctionDef):
        return "async_generator" if yields else "coroutine"
    return "generator" if yields else "function"


def _declared_global(body: list[ast.stmt]) -> set[str]:
    return {name for n in _own_nodes(body) if isinstance(n, ast.Global) for name in n.names}


# -- the rewriter --------------------------------------------------------------------


class _Rewriter(ast.NodeTransformer):
    """Walks scopes keeping ``__qualname__`` prefixes; wraps the functions chosen."""

    def __init__(self, module: str, filename: str, choose: Chooser) -> None:
        self.module, self.filename, self.choose = module, filename, choose
        self.prefix: list[str] = []  # qualname parts of enclosing scopes
        self.globals_: list[set[str]] = []  # names declared global in each enclosing scope
        self.done: list[Instrumented] = []

    def _qualname(self, name: str) -> str:
        if not self.prefix or (self.globals_ and name in self.globals_[-1]):
            return name
        return ".".join(self.prefix + [name])

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        self._nested(node, self._qualname(node.name))
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return self._function(node)

    def _nested(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, qualname: str
    ) -> None:
        """Visit the children of a scope with its qualname as the prefix."""
        is_function = not isinstance(node, ast.ClassDef)
        saved = self.prefix
        self.prefix = [qualname + (".<locals>" if is_function else "")]
        self.globals_.append(_declared_global(node.body))
        try:
            self.generic_visit(node)
        finally:
            self.prefix = saved
            self.globals_.pop()

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        qualname = self._qualname(node.name)
        self._nested(node, qualname)  # nested functions first, with their own choices
        choice = self.choose(qualname, node)
        if not choice:
            return node
        level, sampling, shape = choice
        kind = _kind(node)
        lineno = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        fid = hooks().register(
            self.module, qualname, level, float(sampling), self.filename, lineno, kind
        )
        if not isinstance(fid, int):
            raise TypeError(f"hooks.register returned {fid!r}, expected an int function id")
        _wrap(node, fid, kind, shape)
        info = Instrumented(self.module, qualname, fid, level, kind, self.filename, lineno)
        registry[(self.filename, lineno, qualname)] = info
        self.done.append(info)
        return node


def _wrap(node: ast.FunctionDef | ast.AsyncFunctionDef, fid: int, kind: str, shape: str) -> None:
    """Rewrite ``node``'s own body (not nested scopes) into the contract's shape."""
    body = node.body
    head = [body[0]] if _is_docstring(body[0]) else []
    rest = body[len(head) :] or [_located(ast.Pass(), body[0])]
    first, last = rest[0], rest[-1]
    span = ast.Pass(
        lineno=first.lineno,
        col_offset=first.col_offset,
        end_lineno=last.end_lineno,
        end_col_offset=last.end_col_offset,
    )
    self_name = _self_param(node.args)
    _BodyRewriter(
        fid,
        kind,
        with_results=shape != "boundaries",
        self_name=self_name if shape == "full" else None,
    ).rewrite(rest)
    generator = kind in ("generator", "async_generator")
    if shape == "boundaries":
        enter = _hook("gen_call" if generator else "call", [ast.Constant(fid)], span)
    else:
        names = _param_names(node.args)
        enter = _hook(
            "gen_call_args" if generator else "call_args",
            [
                ast.Constant(fid),
                ast.Tuple([ast.Constant(n) for n in names], ast.Load()),
                ast.Tuple([ast.Name(n, ast.Load()) for n in names], ast.Load()),
            ],
            span,
        )
    with_ = _located(ast.With(items=[ast.withitem(context_expr=enter)], body=rest), span)
    node.body = head + [with_]


def _self_param(args: ast.arguments) -> str | None:
    params = args.posonlyargs + args.args
    return "self" if params and params[0].arg == "self" else None


class _BodyRewriter(ast.NodeTransformer):
    """Rewrites returns, yields, awaits and self-attribute assignments of one scope."""

    def __init__(self, fid: int, kind: str, with_results: bool, self_name: str | None) -> None:
        self.fid, self.kind = fid, kind
        self.with_results, self.self_name = with_results, self_name

    def _fid(self) -> ast.Constant:
        return ast.Constant(self.fid)

    def rewrite(self, body: list[ast.stmt]) -> None:
        body[:] = self._statements(body)

    # Nested scopes belong to their own functions, except what runs in this scope when they
    # are defined (decorators, defaults, bases). Generator expressions may run later,
    # elsewhere, so their awaits are not this coroutine's suspensions.
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        self._visit_list(node.decorator_list)
        self._visit_arguments(node.args)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self._visit_list(node.decorator_list)
        self._visit_list(node.bases)
        self._visit_list(node.keywords)
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        self._visit_arguments(node.args)
        return node

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> ast.AST:
        first = node.generators[0]
        first.iter = self.visit(first.iter)  # the outermost iterable is evaluated here
        return node

    def _visit_arguments(self, args: ast.arguments) -> None:
        self._visit_list(args.defaults)
        args.kw_defaults[:] = [d if d is None else self.visit(d) for d in args.kw_defaults]

    def _visit_list(self, nodes: list[Any]) -> None:
        nodes[:] = [self.visit(n) for n in nodes]

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for field, old in ast.iter_fields(node):
            if isinstance(old, list) and old and isinstance(old[0], ast.stmt):
                setattr(node, field, self._statements(old))
            elif isinstance(old, list):
                old[:] = [self.visit(v) if isinstance(v, ast.AST) else v for v in old]
            elif isinstance(old, ast.AST):
                setattr(node, field, self.visit(old))
        return node

    def _statements(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in stmts:
            out.append(self.visit(stmt))
            if self.self_name is None:
                continue
            for name in self._self_attrs(stmt):
                out.append(
                    _located(
                        ast.Expr(
                            _hook(
                                "attr",
                                [
                                    self._fid(),
                                    ast.Name(self.self_name, ast.Load()),
                                    ast.Constant(name),
                                ],
                                stmt,
                            )
                        ),
                        stmt,
                    )
                )
        return out

    def _self_attrs(self, stmt: ast.stmt) -> list[str]:
        if self.self_name is None:
            return []
        if isinstance(stmt, ast.Assign):
            targets = stmt.targets
        elif isinstance(stmt, ast.AugAssign) or (isinstance(stmt, ast.AnnAssign) and stmt.value):
            targets = [stmt.target]
        else:
            return []
        names: list[str] = []
        for target in targets:
            for sub in ast.walk(target):
                if (
                    isinstance(sub, ast.Attribute)
                    and isinstance(sub.ctx, ast.Store)
                    and isinstance(sub.value, ast.Name)
                    and sub.value.id == self.self_name
                    and sub.attr not in names
                ):
                    names.append(sub.attr)
        return names

    def visit_Return(self, node: ast.Return) -> ast.Return:
        self.generic_visit(node)
        if self.with_results and node.value is not None:
            node.value = _hook("ret", [self._fid(), node.value], node)
        return node

    def visit_Yield(self, node: ast.Yield) -> ast.Call:
        self.generic_visit(node)
        value = node.value if node.value is not None else _located(ast.Constant(None), node)
        node.value = _hook("yielding", [self._fid(), _line(node), value], node)
        return _hook("resumed", [self._fid(), node], node)

    def visit_YieldFrom(self, node: ast.YieldFrom) -> ast.Call:
        self.generic_visit(node)
        node.value = _hook("yielding_from", [self._fid(), _line(node), node.value], node)
        return _hook("resumed", [self._fid(), node], node)

    def visit_Await(self, node: ast.Await) -> ast.Call:
        self.generic_visit(node)
        node.value = _hook("awaiting", [self._fid(), _line(node), node.value], node)
        return _hook("resumed", [self._fid(), node], node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.ExceptHandler:
        """An exception thrown in at a suspension never reaches ``resumed``: the clause
        that caught it records that resume (``caught``)."""
        self.generic_visit(node)
        if self.kind in ("generator", "coroutine", "async_generator"):
            at = node.body[0]  # the clause's first statement: where it begins to run
            said = _located(ast.Expr(_hook("caught", [self._fid()], at)), at)
            node.body.insert(0, said)
        return node

    # The implicit awaits. __aiter__ is now called by the hook, and the interpreter gives
    # its errors the position of the whole statement or comprehension: so does the call.
    def _async_body(self) -> bool:
        return self.kind in ("coroutine", "async_generator")

    def visit_AsyncFor(self, node: ast.AsyncFor) -> ast.AsyncFor:
        self.generic_visit(node)
        if self._async_body():
            node.iter = _hook_spanning("async_iter", [self._fid(), _line(node), node.iter], node)
        return node

    def visit_AsyncWith(self, node: ast.AsyncWith) -> ast.AsyncWith:
        self.generic_visit(node)
        if self._async_body():
            for item in node.items:
                item.context_expr = _hook_spanning(
                    "async_with", [self._fid(), _line(node), item.context_expr], node
                )
        return node

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.DictComp) -> ast.AST:
        self.generic_visit(node)
        if self._async_body():
            for gen in node.generators:
                if gen.is_async:
                    gen.iter = _hook_spanning(
                        "async_iter", [self._fid(), _line(node), gen.iter], node
                    )
        return node

    visit_ListComp = visit_SetComp = visit_DictComp = _comprehension
