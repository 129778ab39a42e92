"""What one source file says, read from its syntax tree alone: the facts of a file.

:func:`file_facts` parses one file and returns plain data (dicts, lists,
strings: it crosses process boundaries and is stored as it is): its nodes
(module, classes, functions with ids, spans and complexity), its imports, its
classes' bases, its call sites, and the sites that the patterns are made of —
message sends and the handler clauses that match on a message's tag, child
specs, routes, tasks, queries, jobs, pub/sub. Names are resolved through the
file's own imports and definitions; what needs other files (is this class a
GenServer? which handler gets this cast?) is :mod:`elixirscope.analysis.project`'s.

A file that cannot be read or parsed gives facts with ``error`` set and no
nodes but its module's; analysis goes on with the others.
"""

from __future__ import annotations

import ast
import hashlib
import os
from collections.abc import Iterator
from typing import Any

from elixirscope.analysis.complexity import complexity_of
from elixirscope.analysis.node_ids import node_id, shape_of

__all__ = ["FACTS_VERSION", "file_facts", "facts_of_source"]

FACTS_VERSION = 4
"""Bumped when the facts' layout or rules change: stored facts of another version are redone."""

RUNTIME = "elixirscope.runtime"
RUNTIME_NAMES = {
    f"{RUNTIME}.{name}": name
    for name in ("Runtime", "GenServer", "Supervisor", "SupervisorSpec", "ChildSpec", "Registry")
}
RUNTIME_NAMES.update(
    {
        f"{RUNTIME}.system.Runtime": "Runtime",
        f"{RUNTIME}.genserver.GenServer": "GenServer",
        f"{RUNTIME}.supervisor.Supervisor": "Supervisor",
        f"{RUNTIME}.specs.SupervisorSpec": "SupervisorSpec",
        f"{RUNTIME}.specs.ChildSpec": "ChildSpec",
        f"{RUNTIME}.registry.Registry": "Registry",
    }
)
CALLBACK_ARG = {"handle_call": 1, "handle_cast": 1, "handle_info": 1, "receiveMessage": 1}
HTTP_VERBS = ("get", "post", "put", "delete", "patch", "options", "head")
WEB_APPS = {
    "flask.Flask": "flask",
    "flask.Blueprint": "flask",
    "fastapi.FastAPI": "fastapi",
    "fastapi.APIRouter": "fastapi",
    "fastapi.routing.APIRouter": "fastapi",
    "starlette.applications.Starlette": "starlette",
    "starlette.routing.Router": "starlette",
    "flask_sock.Sock": "flask_sock",
}
ROUTE_CALLS = {
    "starlette.routing.Route": "http",
    "starlette.routing.WebSocketRoute": "websocket",
    "django.urls.path": "http",
    "django.urls.re_path": "http",
    "django.conf.urls.url": "http",
}
TASK_CALLS = ("asyncio.create_task", "asyncio.ensure_future")
LOOP_MAKERS = (
    "asyncio.get_event_loop",
    "asyncio.get_running_loop",
    "asyncio.new_event_loop",
    "asyncio.TaskGroup",
)
SQL_BUILDERS = {
    f"sqlalchemy.{name}"
    for name in ("select", "insert", "update", "delete", "text", "union", "union_all")
} | {f"sqlalchemy.sql.{name}" for name in ("select", "insert", "update", "delete", "text")}
SQL_SESSIONS = (
    "sqlalchemy.orm.Session",
    "sqlalchemy.orm.sessionmaker",
    "sqlalchemy.orm.scoped_session",
    "sqlalchemy.ext.asyncio.AsyncSession",
    "sqlalchemy.ext.asyncio.async_sessionmaker",
    "sqlalchemy.create_engine",
    "sqlalchemy.ext.asyncio.create_async_engine",
    "sqlalchemy.engine.Connection",
    "sqlalchemy.engine.Engine",
)
SQL_SESSION_METHODS = ("execute", "scalars", "scalar", "query", "get")
JOB_DECORATORS = {
    "celery.shared_task": "celery",
    "dramatiq.actor": "dramatiq",
    "huey.api.Huey.task": "huey",
}
JOB_APPS = {"celery.Celery": "celery", "rq.Queue": "rq", "huey.RedisHuey": "huey"}
BACKGROUND_TASKS = ("fastapi.BackgroundTasks", "starlette.background.BackgroundTasks")
REDIS = ("redis.Redis", "redis.from_url", "redis.StrictRedis", "redis.asyncio.Redis")

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def file_facts(path: str, module: str, package: bool = False) -> dict[str, Any]:
    """The facts of the file at ``path`` (absolute), importable as ``module``."""
    try:
        with open(path, "rb") as f:
            source = f.read()
        st = os.stat(path)
    except OSError as exc:
        return _failed(path, module, package, f"unreadable: {exc.strerror or exc}", b"")
    facts = facts_of_source(source, path, module, package)
    facts["size"], facts["mtime_ns"] = st.st_size, st.st_mtime_ns
    return facts


def facts_of_source(source: bytes, path: str, module: str, package: bool = False) -> dict[str, Any]:
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        where = f" (line {exc.lineno})" if exc.lineno else ""
        return _failed(path, module, package, f"SyntaxError: {exc.msg}{where}", source)
    except (ValueError, UnicodeError, RecursionError, MemoryError) as exc:
        return _failed(path, module, package, f"{type(exc).__name__}: {exc}", source)
    facts = _empty(path, module, package, source)
    try:
        _Scanner(facts, module, package).scan(tree)
    except RecursionError:  # a tree deeper than the interpreter's stack: reported, skipped
        return _failed(path, module, package, "RecursionError: nested too deeply", source)
    return facts


def _empty(path: str, module: str, package: bool, source: bytes) -> dict[str, Any]:
    return {
        "version": FACTS_VERSION,
        "path": path,
        "module": module,
        "package": package,
        "hash": hashlib.sha256(source).hexdigest(),
        "size": len(source),
        "mtime_ns": 0,
        "lines": source.count(b"\n") + (0 if source.endswith(b"\n") or not source else 1),
        "error": None,
        "nodes": [],
        "imports": [],
        "classes": {},
        "calls": [],
        "sites": [],
        "sends": [],
        "handlers": [],
        "specs": [],
        "bindings": {},
        "factories": {},
    }


def _failed(path: str, module: str, package: bool, error: str, source: bytes) -> dict[str, Any]:
    facts = _empty(path, module, package, source)
    facts["error"] = error
    facts["nodes"].append(
        {
            "id": module,
            "kind": "module",
            "qualname": "",
            "parent": None,
            "line": 1,
            "end_line": max(1, facts["lines"]),
            "def_line": 1,
            "cyclomatic": 0,
            "cognitive": 0,
            "nesting": 0,
            "lines": facts["lines"],
            "name": module.rpartition(".")[2],
        }
    )
    return facts


def dotted(expr: ast.AST) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return None
    parts.append(expr.id)
    return ".".join(reversed(parts))


def literal_tag(expr: ast.AST | None) -> str | None:
    """A message's tag when the source says it: ``"get"``, ``("take", x)``, ``Down(...)``."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    if isinstance(expr, (ast.Tuple, ast.List)) and expr.elts:
        first = expr.elts[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    if isinstance(expr, ast.Call):
        name = dotted(expr.func)
        if name and name.rpartition(".")[2][:1].isupper():
            return name.rpartition(".")[2]
    return None


def _const_str(expr: ast.AST | None) -> str | None:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    return None


def _kwarg(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _arg(call: ast.Call, index: int, name: str) -> ast.AST | None:
    if len(call.args) > index and not any(
        isinstance(a, ast.Starred) for a in call.args[: index + 1]
    ):
        return call.args[index]
    return _kwarg(call, name)


class _Scope:
    """One module, class or function being scanned."""

    def __init__(
        self, node_id: str, qualname: str, kind: str, cls: str | None, parent: _Scope | None
    ) -> None:
        self.id = node_id
        self.qualname = qualname
        self.kind = kind
        self.cls = cls  # the qualname of the class whose method this is (for ``self``)
        self.parent = parent
        self.bound: dict[str, str] = {}  # local name -> what made it (a resolved dotted name)
        self.assigned: dict[str, ast.AST] = {}  # local name -> the expression last assigned


class _Scanner:
    def __init__(self, facts: dict[str, Any], module: str, package: bool) -> None:
        self.facts = facts
        self.module = module
        self.package = package
        self.imports: dict[str, str] = {}
        self.defined: set[str] = set()  # module-level classes and functions
        self.seen_ids: dict[str, int] = {}

    # -------------------------------------------------------------- resolving
    def resolve(self, name: str | None) -> str | None:
        """A dotted name as the module sees it, made absolute through its imports."""
        if not name:
            return None
        head, _, rest = name.partition(".")
        if head in self.imports:
            base = self.imports[head]
        elif head in self.defined:
            base = f"{self.module}.{head}"
        else:
            return name
        return f"{base}.{rest}" if rest else base

    def kind_of(self, scope: _Scope, name: str | None) -> str | None:
        """What made the object a name holds (``flask.Flask`` for ``app``), if the source says."""
        if not name or "." in name:
            return None
        at: _Scope | None = scope
        while at is not None:
            if name in at.bound:
                return at.bound[name]
            at = at.parent
        return None

    def _absolute(self, module: str | None, level: int) -> str:
        if level == 0:
            return module or ""
        parts = self.module.split(".")
        keep = len(parts) - level + (1 if self.package else 0)
        base = ".".join(parts[: max(keep, 0)])
        return f"{base}.{module}" if module and base else (module or base)

    # --------------------------------------------------------------- the walk
    def scan(self, tree: ast.Module) -> None:
        for stmt in tree.body:
            if isinstance(stmt, _SCOPES):
                self.defined.add(stmt.name)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        self.defined.add(target.id)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.imports[alias.asname] = alias.name
                    else:
                        head = alias.name.partition(".")[0]
                        self.imports.setdefault(head, head)
                    self.facts["imports"].append([alias.name, node.lineno])
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(node.module, node.level)
                for alias in node.names:
                    if alias.name == "*":
                        self.facts["imports"].append([base, node.lineno])
                        continue
                    self.imports[alias.asname or alias.name] = f"{base}.{alias.name}"
                    self.facts["imports"].append([f"{base}.{alias.name}", node.lineno])
        for name in self.imports:
            self.defined.discard(name)
        lines = self.facts["lines"]
        scope = _Scope(self.module, "", "module", None, None)
        cx = complexity_of(tree, 1)
        self._add_node(scope, None, tree, 1, max(lines, 1), 1, cx._replace(lines=lines))
        self._scan_body(tree.body, scope)
        self._drop_nested_specs()
        self.facts["bindings"] = scope.bound

    def _drop_nested_specs(self) -> None:
        """A spec written inside another's child list is that child's, not a tree of its own."""
        inner: set[tuple[str, int]] = set()

        def collect(spec: dict[str, Any], node: str) -> None:
            for child in spec["children"]:
                if "spec" in child:
                    inner.add((node, child["spec"]["line"]))
                    collect(child["spec"], node)

        for spec in self.facts["specs"]:
            collect(spec, spec["node"])
        self.facts["specs"] = [
            s for s in self.facts["specs"] if (s["node"], s["line"]) not in inner
        ]

    def _add_node(
        self,
        scope: _Scope,
        parent: str | None,
        node: ast.AST,
        line: int,
        end: int,
        def_line: int,
        cx: Any,
    ) -> None:
        record = {
            "id": scope.id,
            "kind": scope.kind,
            "qualname": scope.qualname,
            "parent": parent,
            "line": line,
            "end_line": end,
            "def_line": def_line,
            "cyclomatic": cx.cyclomatic,
            "cognitive": cx.cognitive,
            "nesting": cx.nesting,
            "lines": cx.lines,
            "name": getattr(node, "name", self.module.rpartition(".")[2]),
        }
        if isinstance(node, ast.AsyncFunctionDef):
            record["async"] = True
        self.facts["nodes"].append(record)

    def _define(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, outer: _Scope
    ) -> None:
        if outer.kind in ("function", "method"):
            qualname = f"{outer.qualname}.<locals>.{node.name}"
        else:
            qualname = f"{outer.qualname}.{node.name}" if outer.qualname else node.name
        is_class = isinstance(node, ast.ClassDef)
        kind = "class" if is_class else ("method" if outer.kind == "class" else "function")
        ident = node_id(self.module, qualname, shape_of(node))
        if ident in self.seen_ids:
            self.seen_ids[ident] += 1
            ident = f"{ident}~{self.seen_ids[ident]}"
        else:
            self.seen_ids[ident] = 1
        first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        scope = _Scope(
            ident,
            qualname,
            kind,
            # ``self`` is the class's inside its methods and the closures they hold
            qualname if is_class else (outer.cls if outer.kind != "module" else None),
            outer,
        )
        self._add_node(
            scope,
            outer.id,
            node,
            first,
            node.end_lineno or first,
            node.lineno,
            complexity_of(node, first),
        )
        self._decorators(node, outer, scope)
        if isinstance(node, ast.ClassDef):
            self._class(node, scope)
        else:
            self._function(node, scope)
        self._scan_body(node.body, scope)

    def _scan_body(self, body: list[ast.stmt], scope: _Scope) -> None:
        """Bindings first (so a use above its ``with`` still resolves), then every site."""
        own: list[ast.AST] = []
        nested: list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef] = []
        stack: list[ast.AST] = list(reversed(body))
        while stack:
            node = stack.pop()
            if isinstance(node, _SCOPES):
                nested.append(node)
                continue
            own.append(node)
            stack.extend(reversed(list(ast.iter_child_nodes(node))))
        for node in own:
            self._bind(node, scope)
        for node in own:
            if isinstance(node, ast.Call):
                self._call(node, scope)
        for node in nested:
            self._define(node, scope)

    # ------------------------------------------------------------- bindings
    def _bind(self, node: ast.AST, scope: _Scope) -> None:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    scope.assigned[target.id] = node.value
                    made = self._made_by(node.value)
                    if made:
                        scope.bound[target.id] = made
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            made = self.resolve(dotted(node.annotation)) or (
                self._made_by(node.value) if node.value else None
            )
            if made:
                scope.bound[node.target.id] = made
            if node.value is not None:
                scope.assigned[node.target.id] = node.value
        elif isinstance(node, ast.withitem) and isinstance(node.optional_vars, ast.Name):
            made = self._made_by(node.context_expr)
            if made:
                scope.bound[node.optional_vars.id] = made

    def _started_class(self, target: ast.AST, scope: _Scope) -> str | None:
        """The class of the actor a name holds, when the source started it there:
        ``counter = rt.start(Counter, ...)`` or ``self.spawn(Counter, ...)``."""
        if not isinstance(target, ast.Name):
            return None
        at: _Scope | None = scope
        while at is not None and target.id not in at.assigned:
            at = at.parent
        value = at.assigned[target.id] if at is not None else None
        if not (
            isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.args
        ):
            return None
        receiver = dotted(value.func.value)
        runtime = RUNTIME_NAMES.get(self.kind_of(scope, receiver) or "") == "Runtime"
        if (value.func.attr == "start" and runtime) or (
            value.func.attr == "spawn" and receiver == "self"
        ):
            return self.resolve(dotted(value.args[0]))
        return None

    def _made_by(self, value: ast.AST) -> str | None:
        if isinstance(value, ast.Await):
            value = value.value
        if isinstance(value, ast.Call):
            return self.resolve(dotted(value.func))
        return None

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, scope: _Scope) -> None:
        args = node.args
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
            if arg.annotation is not None:
                made = self.resolve(dotted(arg.annotation))
                if made:
                    scope.bound[arg.arg] = made
        if scope.kind == "method" and node.name in CALLBACK_ARG:
            self._handler(node, scope)
        self._child_factory(node, scope)

    def _child_factory(self, node: ast.FunctionDef | ast.AsyncFunctionDef, scope: _Scope) -> None:
        """A helper that returns ``ChildSpec(id, (Class, args))`` built from its parameters
        (``_service(layer, role, ..., actor=LayerService)``): which parameter gives the
        child's id and which its class, so its callers' children can be drawn."""
        made = next(
            (
                n.value
                for n in (x for stmt in node.body for x in _own_walk(stmt))
                if isinstance(n, ast.Return)
                and isinstance(n.value, ast.Call)
                and RUNTIME_NAMES.get(self.resolve(dotted(n.value.func)) or "") == "ChildSpec"
            ),
            None,
        )
        if made is None:
            return
        args = node.args
        positional = [a.arg for a in [*args.posonlyargs, *args.args]]
        named = positional + [a.arg for a in args.kwonlyargs]
        defaults = dict(
            zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)
        )
        defaults.update(
            {a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d}
        )
        start = _arg(made, 1, "start")
        cls = start.elts[0] if isinstance(start, ast.Tuple) and len(start.elts) == 2 else None

        def source(expr: ast.AST | None) -> dict[str, Any] | None:
            if isinstance(expr, ast.Name) and expr.id in named:
                return {"param": expr.id}
            value = self._value(expr)
            return None if value is None else {"value": value}

        self.facts["factories"][scope.qualname] = {
            "params": [p for p in positional if p not in ("self", "cls")]
            if scope.kind == "method"
            else positional,
            "defaults": {k: self._value(v) for k, v in defaults.items()},
            "id": source(_arg(made, 0, "id")),
            "start": source(cls),
            "type": _const_str(_kwarg(made, "type")) or "worker",
        }

    def _value(self, expr: ast.AST | None) -> str | None:
        """A literal string, or the resolved name of a class or function."""
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return expr.value
        name = dotted(expr) if expr is not None else None
        if name is None or name.partition(".")[0] not in (*self.imports, *self.defined):
            return None  # a local value: known at run time only
        return self.resolve(name)

    def _class(self, node: ast.ClassDef, scope: _Scope) -> None:
        bases = [self.resolve(dotted(b)) or "?" for b in node.bases]
        attrs: dict[str, Any] = {}
        methods: list[str] = []
        for stmt in node.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                methods.append(stmt.name)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        value = stmt.value
                        attrs[target.id] = (
                            value.value
                            if isinstance(value, ast.Constant)
                            and isinstance(value.value, (str, int, bool))
                            else "<expr>"
                        )
        self.facts["classes"][scope.qualname] = {
            "id": scope.id,
            "line": node.lineno,
            "bases": bases,
            "methods": methods,
            "attrs": attrs,
        }

    # ----------------------------------------------------------- decorators
    def _decorators(self, node: ast.AST, outer: _Scope, scope: _Scope) -> None:
        for deco in getattr(node, "decorator_list", []):
            call = deco if isinstance(deco, ast.Call) else None
            func = call.func if call else deco
            name = dotted(func)
            if not name:
                continue
            resolved = self.resolve(name)
            if resolved in JOB_DECORATORS:
                self._site("job", scope.id, deco.lineno, framework=JOB_DECORATORS[resolved])
                continue
            receiver, _, method = name.rpartition(".")
            app = self.kind_of(outer, receiver) if receiver else None
            if app in JOB_APPS and method == "task":
                self._site("job", scope.id, deco.lineno, framework=JOB_APPS[app])
                continue
            framework = WEB_APPS.get(app or "")
            if framework is None:
                continue
            path = _const_str(call.args[0]) if call and call.args else None
            if path is None and call is not None:
                path = _const_str(_kwarg(call, "path") or _kwarg(call, "rule"))
            if method in ("websocket", "websocket_route") or framework == "flask_sock":
                self._site(
                    "websocket",
                    scope.id,
                    deco.lineno,
                    framework=framework,
                    route=path,
                    app=receiver,
                )
            elif method in HTTP_VERBS or method in ("route", "api_route"):
                methods = [method.upper()] if method in HTTP_VERBS else _methods(call)
                self._site(
                    "route",
                    scope.id,
                    deco.lineno,
                    framework=framework,
                    route=path,
                    methods=methods,
                    app=receiver,
                    handler=scope.qualname,
                )

    # ----------------------------------------------------------------- calls
    def _site(self, kind: str, node: str, line: int, **detail: Any) -> None:
        self.facts["sites"].append({"kind": kind, "node": node, "line": line, **detail})

    def _call(self, call: ast.Call, scope: _Scope) -> None:
        name = dotted(call.func)
        line = call.lineno
        receiver, _, method = (name or "").rpartition(".")
        if name is None:
            if isinstance(call.func, ast.Attribute):
                method = call.func.attr
            self._method_sites(call, scope, None, method, line)
            return
        if receiver == "self" and scope.cls:  # a method of the class, found with its bases later
            self.facts["calls"].append([scope.id, f"self:{self.module}.{scope.cls}|{method}", line])
        elif not (receiver == "self" or receiver.startswith("self.")):  # self.x.m(): unknown type
            self.facts["calls"].append([scope.id, self.resolve(name) or name, line])
        resolved = self.resolve(name) or name
        what = RUNTIME_NAMES.get(resolved)
        if what == "SupervisorSpec":
            self._spec(call, scope)
            return
        if resolved in TASK_CALLS:
            self._site("asyncio_task", scope.id, line, call=resolved, coroutine=_called(call))
            return
        if resolved in ROUTE_CALLS:
            kind = ROUTE_CALLS[resolved]
            endpoint = _arg(call, 1, "endpoint") or _arg(call, 1, "view")
            self._site(
                "websocket" if kind == "websocket" else "route",
                scope.id,
                line,
                framework=resolved.split(".")[0],
                route=_const_str(_arg(call, 0, "path") or _arg(call, 0, "route")),
                methods=_methods(call),
                handler=self._endpoint(endpoint),
            )
            return
        if resolved in SQL_BUILDERS:
            self._site("sqlalchemy_query", scope.id, line, statement=resolved.rpartition(".")[2])
            return
        target = _kwarg(call, "target")
        if resolved == "threading.Thread" and target is not None:
            self._site("job", scope.id, line, framework="thread", target=dotted(target))
            return
        if resolved in (
            "websockets.serve",
            "websockets.server.serve",
            "websockets.asyncio.server.serve",
        ):
            handler = self.resolve(dotted(call.args[0])) if call.args else None
            self._site("websocket", scope.id, line, framework="websockets", handler=handler)
            return
        if receiver:
            self._method_sites(call, scope, receiver, method, line)

    def _endpoint(self, endpoint: ast.AST | None) -> str | None:
        """The handler a route names: a function, a class, or ``View.as_view()``'s class."""
        if isinstance(endpoint, ast.Call) and isinstance(endpoint.func, ast.Attribute):
            if endpoint.func.attr == "as_view":
                endpoint = endpoint.func.value
        return self.resolve(dotted(endpoint)) if endpoint is not None else None

    def _method_sites(
        self, call: ast.Call, scope: _Scope, receiver: str | None, method: str, line: int
    ) -> None:
        made = self.kind_of(scope, receiver) if receiver else None
        runtime = RUNTIME_NAMES.get(made or "") == "Runtime"
        actor_self = receiver == "self" and scope.cls is not None
        if actor_self or runtime:
            self._runtime_site(call, scope, method, line, to_self=actor_self)
            return
        if made in LOOP_MAKERS and method == "create_task":
            self._site(
                "asyncio_task",
                scope.id,
                line,
                call=f"{made}().create_task",
                coroutine=_called(call),
            )
        elif made in BACKGROUND_TASKS and method == "add_task":
            self._site(
                "job",
                scope.id,
                line,
                framework="background_tasks",
                target=dotted(call.args[0]) if call.args else None,
            )
        elif made in JOB_APPS and method in ("enqueue", "enqueue_call", "send_task"):
            self._site(
                "job",
                scope.id,
                line,
                framework=JOB_APPS[made],
                target=dotted(call.args[0]) if call.args else None,
            )
        elif made in WEB_APPS and method in (
            "add_route",
            "add_url_rule",
            "add_api_route",
            "add_websocket_route",
            "add_api_websocket_route",
        ):
            ws = "websocket" in method
            endpoint = (
                _arg(call, 1, "endpoint")
                if method != "add_url_rule"
                else (_arg(call, 2, "view_func"))
            )
            self._site(
                "websocket" if ws else "route",
                scope.id,
                line,
                framework=WEB_APPS[made],
                route=_const_str(_arg(call, 0, "path") or _arg(call, 0, "rule")),
                methods=_methods(call),
                handler=self._endpoint(endpoint),
                app=receiver,
            )
        elif made in REDIS and method == "publish":
            self._site(
                "pubsub",
                scope.id,
                line,
                role="publish",
                framework="redis",
                topic=_const_str(call.args[0]) if call.args else None,
            )
        elif made in REDIS and method == "pubsub":
            self._site("pubsub", scope.id, line, role="subscribe", framework="redis", topic=None)
        elif made in SQL_SESSIONS and method in SQL_SESSION_METHODS:
            first = call.args[0] if call.args else None
            built = isinstance(first, ast.Call) and (
                self.resolve(dotted(first.func)) in SQL_BUILDERS
            )
            if not built:
                self._site("sqlalchemy_query", scope.id, line, statement=method)

    def _runtime_site(
        self, call: ast.Call, scope: _Scope, method: str, line: int, *, to_self: bool
    ) -> None:
        """A send, a registry use or a pub/sub step through an actor's ``self`` or a Runtime."""
        where = {"node": scope.id, "line": line, "cls": scope.cls if to_self else None}
        if method in ("call", "cast", "send", "call_async"):
            if len(call.args) < 2:
                return
            op = "call" if method in ("call", "call_async") else method
            target = call.args[0]
            self.facts["sends"].append(
                {
                    **where,
                    "op": op,
                    "tag": literal_tag(call.args[1]),
                    "to_self": to_self and isinstance(target, ast.Name) and target.id == "self",
                    "target": ast.unparse(target)[:80],
                    "via": "self" if to_self else "runtime",
                    "target_class": self._started_class(target, scope),
                }
            )
        elif method == "send_after" and to_self and len(call.args) >= 2:
            self.facts["sends"].append(
                {
                    **where,
                    "op": "send",
                    "tag": literal_tag(call.args[1]),
                    "to_self": True,
                    "target": "self",
                    "via": "self",
                }
            )
        elif method == "dispatch" and to_self and call.args:
            key = _const_str(call.args[0])
            payload = call.args[1] if len(call.args) > 1 else None
            self._site(
                "pubsub",
                scope.id,
                line,
                role="publish",
                framework="runtime",
                topic=key,
                cls=scope.cls,
            )
            self.facts["sends"].append(
                {
                    **where,
                    "op": "dispatch",
                    "tag": literal_tag(payload),
                    "to_self": False,
                    "target": key or "?",
                    "via": "self",
                    "topic": key,
                }
            )
        elif method in ("register", "unregister", "whereis") and call.args:
            key = _const_str(call.args[0])
            unique = _kwarg(call, "unique")
            shared = isinstance(unique, ast.Constant) and unique.value is False
            if method == "register" and shared:
                self._site(
                    "pubsub",
                    scope.id,
                    line,
                    role="subscribe",
                    framework="runtime",
                    topic=key,
                    cls=scope.cls,
                )
            self._site(
                "registry", scope.id, line, op=method, key=key, unique=not shared, cls=scope.cls
            )
        elif method == "start_supervisor" and not to_self and call.args:
            spec = call.args[0]
            started = self.resolve(dotted(spec.func)) if isinstance(spec, ast.Call) else None
            self._site(
                "supervisor_start",
                scope.id,
                line,
                spec=started,
                path=_const_str(_kwarg(call, "path")),
            )

    # ----------------------------------------------------------- handlers
    def _handler(self, node: ast.FunctionDef | ast.AsyncFunctionDef, scope: _Scope) -> None:
        """The tags a callback matches on: ``op == "get"``, ``message[0] == "tick"``,
        ``isinstance(message, Down)``, ``match request: case ("take", _)``."""
        params = [a.arg for a in [*node.args.posonlyargs, *node.args.args]]
        index = CALLBACK_ARG[node.name]
        if len(params) <= index:
            return
        message = params[index]
        heads = {message}  # names that hold the message or its first element

        def is_head(expr: ast.AST) -> bool:
            if isinstance(expr, ast.Name):
                return expr.id in heads
            if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Name):
                return expr.value.id == message and _is_zero(expr.slice)
            return False

        body_nodes = [n for stmt in node.body for n in _own_walk(stmt)]
        for n in (
            body_nodes
        ):  # aliases: op = request[0]; op, x = request; op = request[0] if .. else request
            if isinstance(n, ast.Assign) and len(n.targets) == 1:
                target, value = n.targets[0], n.value
                sources = [value.body, value.orelse] if isinstance(value, ast.IfExp) else [value]
                if isinstance(target, ast.Name) and any(is_head(s) for s in sources):
                    heads.add(target.id)
                elif (
                    isinstance(target, ast.Tuple)
                    and target.elts
                    and isinstance(target.elts[0], ast.Name)
                    and isinstance(value, ast.Name)
                    and value.id == message
                ):
                    heads.add(target.elts[0].id)
        tags: list[list[Any]] = []
        for n in body_nodes:
            if isinstance(n, ast.Compare) and len(n.ops) == 1:
                left, right = n.left, n.comparators[0]
                if not is_head(left) and is_head(right):
                    left, right = right, left
                if not is_head(left):
                    continue
                if isinstance(n.ops[0], ast.Eq):
                    tag = _const_str(right)
                    if tag is not None:
                        tags.append([tag, n.lineno])
                elif isinstance(n.ops[0], ast.In) and isinstance(
                    right, (ast.Tuple, ast.List, ast.Set)
                ):
                    tags.extend([v, n.lineno] for v in map(_const_str, right.elts) if v is not None)
            elif isinstance(n, ast.Call) and dotted(n.func) == "isinstance" and len(n.args) == 2:
                if isinstance(n.args[0], ast.Name) and n.args[0].id == message:
                    kinds = n.args[1].elts if isinstance(n.args[1], ast.Tuple) else [n.args[1]]
                    for kind in kinds:
                        kname = dotted(kind)
                        if kname and kname not in ("tuple", "list", "dict", "str", "int"):
                            tags.append([kname.rpartition(".")[2], n.lineno])
            elif isinstance(n, ast.Match) and is_head(n.subject):
                for case in n.cases:
                    tag = _case_tag(case.pattern)
                    if tag is not None:
                        tags.append([tag, case.pattern.lineno])
        self.facts["handlers"].append(
            {
                "node": scope.id,
                "cls": scope.cls,
                "callback": node.name,
                "line": node.lineno,
                "tags": tags,
            }
        )

    # -------------------------------------------------------- child specs
    def _spec(self, call: ast.Call, scope: _Scope) -> None:
        self.facts["specs"].append(
            self._spec_tree(call, scope, depth=0)
            | {"node": scope.id, "cls": scope.cls, "function": scope.qualname}
        )

    def _spec_tree(self, call: ast.Call, scope: _Scope, depth: int) -> dict[str, Any]:
        strategy = _const_str(_arg(call, 0, "strategy")) or (
            "one_for_one" if _arg(call, 0, "strategy") is None else "?"
        )
        children_expr = _arg(call, 1, "children")
        if isinstance(children_expr, ast.Name):
            children_expr = scope.assigned.get(children_expr.id, children_expr)
        children: list[dict[str, Any]] = []
        dynamic = False
        if isinstance(children_expr, (ast.List, ast.Tuple)):
            for element in children_expr.elts:
                child = self._child(element, scope, depth)
                if child is None:
                    dynamic = True
                else:
                    children.append(child)
        elif children_expr is not None:
            dynamic = True
        return {"line": call.lineno, "strategy": strategy, "children": children, "dynamic": dynamic}

    def _child(self, expr: ast.AST, scope: _Scope, depth: int) -> dict[str, Any] | None:
        if not (
            isinstance(expr, ast.Call)
            and RUNTIME_NAMES.get(self.resolve(dotted(expr.func)) or "") == "ChildSpec"
        ):
            if isinstance(expr, ast.Call):
                return {
                    "id": None,
                    "line": expr.lineno,
                    "start": None,
                    "made_by": self.resolve(dotted(expr.func)),
                    "call_args": [self._value(a) for a in expr.args],
                    "call_kwargs": {k.arg: self._value(k.value) for k in expr.keywords if k.arg},
                }
            return None
        child_id = _const_str(_arg(expr, 0, "id"))
        start = _arg(expr, 1, "start")
        cls: ast.AST | None = None
        args: ast.AST | None = None
        if isinstance(start, ast.Tuple) and len(start.elts) == 2:
            cls, args = start.elts
        child: dict[str, Any] = {
            "id": child_id,
            "line": expr.lineno,
            "start": self.resolve(dotted(cls)) if cls is not None else None,
            "restart": _const_str(_kwarg(expr, "restart")) or "permanent",
            "type": _const_str(_kwarg(expr, "type")) or "worker",
        }
        if isinstance(cls, ast.Constant) and isinstance(cls.value, str):
            child["start"] = cls.value.replace(":", ".")
        if isinstance(args, ast.Name):
            args = scope.assigned.get(args.id, args)
        if isinstance(args, ast.Call):
            made = self.resolve(dotted(args.func))
            if RUNTIME_NAMES.get(made or "") == "SupervisorSpec" and depth < 8:
                child["spec"] = self._spec_tree(args, scope, depth + 1)
            else:
                child["spec_call"] = made
        return child


def _methods(call: ast.Call | None) -> list[str]:
    if call is None:
        return []
    value = _kwarg(call, "methods")
    if isinstance(value, (ast.List, ast.Tuple, ast.Set)):
        return [v for v in map(_const_str, value.elts) if v]
    return []


def _called(call: ast.Call) -> str | None:
    first = call.args[0] if call.args else None
    if isinstance(first, ast.Call):
        return dotted(first.func)
    return None


def _is_zero(expr: ast.AST) -> bool:
    return isinstance(expr, ast.Constant) and expr.value == 0


def _case_tag(pattern: ast.AST) -> str | None:
    if isinstance(pattern, ast.MatchValue):
        return _const_str(pattern.value)
    if isinstance(pattern, ast.MatchSequence) and pattern.patterns:
        return (
            _case_tag(pattern.patterns[0])
            if isinstance(pattern.patterns[0], ast.MatchValue)
            else None
        )
    if isinstance(pattern, ast.MatchClass):
        name = dotted(pattern.cls)
        return name.rpartition(".")[2] if name else None
    if isinstance(pattern, ast.MatchOr):
        return next((t for t in map(_case_tag, pattern.patterns) if t), None)
    return None


def _own_walk(node: ast.AST) -> Iterator[ast.AST]:
    """``ast.walk`` that does not enter nested functions or classes."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, _SCOPES):
            continue
        yield item
        stack.extend(ast.iter_child_nodes(item))
