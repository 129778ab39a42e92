"""What the files say together: patterns, message flows, supervision trees, graphs.

:class:`Project` joins the facts of every file of a target
(:mod:`elixirscope.analysis.facts`): a class is a GenServer when one of its
bases is, here or in another file; a cast reaches the ``handle_cast`` clauses
that match its tag; a child spec's class is found where it is defined. It is
computed from stored facts when read, so re-analysing one file re-reads that
file alone.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import cached_property
from typing import Any

__all__ = ["PATTERN_KINDS", "Project"]

GENSERVER_ROOTS = frozenset(
    ("elixirscope.runtime.GenServer", "elixirscope.runtime.genserver.GenServer")
)
SUPERVISOR_ROOTS = frozenset(
    ("elixirscope.runtime.Supervisor", "elixirscope.runtime.supervisor.Supervisor")
)
PROCESS_ROOTS = GENSERVER_ROOTS | SUPERVISOR_ROOTS | {"elixirscope.runtime.process.ProcessActor"}
THESPIAN_ROOTS = frozenset(("thespian.actors.Actor", "thespian.actors.ActorTypeDispatcher"))
DECLARATIVE_ROOTS = frozenset(
    (
        "sqlalchemy.orm.DeclarativeBase",
        "sqlalchemy.orm.DeclarativeBaseNoMeta",
        "sqlalchemy.orm.decl_api.DeclarativeBase",
    )
)
DECLARATIVE_FACTORIES = frozenset(
    (
        "sqlalchemy.orm.declarative_base",
        "sqlalchemy.ext.declarative.declarative_base",
        "sqlalchemy.orm.decl_api.declarative_base",
    )
)
ENDPOINT_ROOTS = {
    "starlette.endpoints.HTTPEndpoint": "route",
    "starlette.endpoints.WebSocketEndpoint": "websocket",
    "django.views.View": "route",
    "django.views.generic.View": "route",
    "django.views.generic.base.View": "route",
}
PATTERN_KINDS = (
    "genserver",
    "supervisor",
    "registry",
    "thespian_actor",
    "asyncio_task",
    "route",
    "websocket",
    "sqlalchemy_model",
    "sqlalchemy_query",
    "pubsub",
    "job",
)
RECEIVERS = {
    "call": ("handle_call",),
    "cast": ("handle_cast",),
    "send": ("handle_info", "receiveMessage"),
    "dispatch": ("handle_info",),
}
GENSERVER_CALLBACKS = ("init", "handle_call", "handle_cast", "handle_info", "terminate")


def _from_factory(factory: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """A child made by a helper that returns a ChildSpec: its id and class, from the
    helper's parameters as this call gives them (its defaults for the others)."""
    given = dict(factory["defaults"])
    given.update(zip(factory["params"], child.get("call_args", []), strict=False))
    given.update(child.get("call_kwargs", {}))

    def read(source: dict[str, Any] | None) -> str | None:
        if source is None:
            return None
        return source["value"] if "value" in source else given.get(source["param"])

    return {"id": read(factory["id"]), "start": read(factory["start"]), "type": factory["type"]}


class Project:
    """The joined view of many files' facts."""

    def __init__(self, facts: Iterable[dict[str, Any]]) -> None:
        self.files = sorted(facts, key=lambda f: f["path"])
        self.modules = {f["module"]: f for f in self.files}
        self.classes: dict[str, dict[str, Any]] = {}
        self.defs: dict[str, str] = {}  # module.qualname -> node id
        self.nodes: dict[str, dict[str, Any]] = {}
        for f in self.files:
            for node in f["nodes"]:
                self.nodes[node["id"]] = {**node, "path": f["path"], "module": f["module"]}
                if node["kind"] != "module":
                    self.defs.setdefault(f"{f['module']}.{node['qualname']}", node["id"])
            for qualname, info in f["classes"].items():
                self.classes[f"{f['module']}.{qualname}"] = {
                    **info,
                    "module": f["module"],
                    "qualname": qualname,
                    "path": f["path"],
                }
        self._is_a: dict[tuple[str, frozenset[str]], bool] = {}

    # ------------------------------------------------------------ classes
    def is_a(self, name: str, roots: frozenset[str], seen: frozenset[str] = frozenset()) -> bool:
        """Whether class ``name`` derives from one of ``roots`` (through this project's classes)."""
        key = (name, roots)
        if key in self._is_a:
            return self._is_a[key]
        info = self.classes.get(self._alias(name))
        answer = False
        if info is not None and name not in seen:
            for base in info["bases"]:
                if base in roots or self.is_a(base, roots, seen | {name}):
                    answer = True
                    break
        self._is_a[key] = answer
        return answer

    def _alias(self, name: str) -> str:
        """``pkg.Thing`` re-exported by ``pkg/__init__`` from ``pkg.mod``: its home."""
        if name in self.classes:
            return name
        module, _, attr = name.rpartition(".")
        f = self.modules.get(module)
        if f is not None:
            for imported, _line in f["imports"]:
                if imported.rpartition(".")[2] == attr and imported != name:
                    return imported
        return name

    def class_kind(self, fq: str) -> str | None:
        if fq in PROCESS_ROOTS or fq in THESPIAN_ROOTS:
            return None
        if self.is_a(fq, GENSERVER_ROOTS):
            return "genserver"
        if self.is_a(fq, SUPERVISOR_ROOTS):
            return "supervisor"
        if self.is_a(fq, THESPIAN_ROOTS | PROCESS_ROOTS):
            return "thespian_actor"
        return None

    @cached_property
    def actor_classes(self) -> dict[str, str]:
        """``module.qualname`` of each actor class of the project -> its kind."""
        return {fq: kind for fq in self.classes if (kind := self.class_kind(fq))}

    def _actor_cls(self, module: str, cls: str | None) -> bool:
        return cls is not None and f"{module}.{cls}" in self.actor_classes

    # ----------------------------------------------------------- patterns
    @cached_property
    def patterns(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        declarative = self._declarative_roots()
        routed = {
            site.get("handler")
            for f in self.files
            for site in f["sites"]
            if site["kind"] in ("route", "websocket")
        }
        for fq, info in sorted(self.classes.items()):
            kind = self.actor_classes.get(fq)
            place = {"node": info["id"], "path": info["path"], "line": info["line"], "name": fq}
            if kind == "genserver":
                callbacks = [m for m in GENSERVER_CALLBACKS if m in info["methods"]]
                out.append({"kind": kind, **place, "callbacks": callbacks})
            elif kind == "supervisor":
                out.append({"kind": kind, **place, "spec": "init"})
            elif kind == "thespian_actor":
                handlers = [
                    m
                    for m in info["methods"]
                    if m == "receiveMessage" or m.startswith("receiveMsg_")
                ]
                out.append({"kind": kind, **place, "handlers": handlers})
            if self._is_model(fq, info, declarative):
                table = info["attrs"].get("__tablename__")
                out.append(
                    {
                        "kind": "sqlalchemy_model",
                        **place,
                        "table": table if isinstance(table, str) else None,
                    }
                )
            for root, endpoint in ENDPOINT_ROOTS.items():
                if fq not in routed and self.is_a(fq, frozenset((root,))):
                    out.append(
                        {
                            "kind": endpoint,
                            **place,
                            "framework": root.split(".")[0],
                            "route": None,
                            "handler": fq,
                        }
                    )
                    break
        for f in self.files:
            for site in f["sites"]:
                kind = site["kind"]
                if kind == "supervisor_start":
                    continue
                if (
                    kind in ("registry", "pubsub")
                    and site.get("cls") is not None
                    and not self._actor_cls(f["module"], site["cls"])
                ):
                    continue
                detail = {k: v for k, v in site.items() if k not in ("kind", "node", "line", "cls")}
                out.append(
                    {
                        "kind": kind,
                        "node": site["node"],
                        "path": f["path"],
                        "line": site["line"],
                        "name": self._name(site["node"]),
                        **detail,
                    }
                )
            for spec in f["specs"]:
                if spec["cls"] is None:
                    out.append(
                        {
                            "kind": "supervisor",
                            "node": spec["node"],
                            "path": f["path"],
                            "line": spec["line"],
                            "name": self._name(spec["node"]),
                            "spec": spec["function"],
                            "strategy": spec["strategy"],
                        }
                    )
        out.sort(key=lambda p: (PATTERN_KINDS.index(p["kind"]), p["path"], p["line"]))
        return out

    def _name(self, node_id: str) -> str:
        node = self.nodes.get(node_id)
        if node is None:
            return node_id
        return f"{node['module']}.{node['qualname']}" if node["qualname"] else node["module"]

    def _declarative_roots(self) -> frozenset[str]:
        made = {
            f"{f['module']}.{name}"
            for f in self.files
            for name, maker in f.get("bindings", {}).items()
            if maker in DECLARATIVE_FACTORIES
        }
        return DECLARATIVE_ROOTS | made

    def _is_model(self, fq: str, info: dict[str, Any], roots: frozenset[str]) -> bool:
        if not self.is_a(fq, roots):
            return False
        attrs = info["attrs"]
        if attrs.get("__abstract__") is True:
            return False
        if "__tablename__" in attrs or "__table__" in attrs:
            return True
        return not any(base in DECLARATIVE_ROOTS for base in info["bases"])

    def pattern_counts(self) -> dict[str, int]:
        counts = Counter(p["kind"] for p in self.patterns)
        return {kind: counts[kind] for kind in PATTERN_KINDS if counts[kind]}

    def patterns_of(self, node_id: str) -> list[dict[str, Any]]:
        return [p for p in self.patterns if p["node"] == node_id]

    # -------------------------------------------------------------- flows
    @cached_property
    def handlers(self) -> list[dict[str, Any]]:
        out = []
        for f in self.files:
            for h in f["handlers"]:
                if self._actor_cls(f["module"], h["cls"]):
                    out.append({**h, "fq": f"{f['module']}.{h['cls']}", "path": f["path"]})
        return out

    @cached_property
    def flows(self) -> list[dict[str, Any]]:
        """Each send site and the handler clauses that receive it (matched on its tag)."""
        subscribers: dict[str | None, set[str]] = defaultdict(set)
        for p in self.patterns:
            if (
                p["kind"] == "pubsub"
                and p.get("role") == "subscribe"
                and p.get("framework") == "runtime"
            ):
                node = self.nodes.get(p["node"])
                if node is not None:
                    subscribers[p.get("topic")].add(self._owner_class(node))
        out = []
        for f in self.files:
            for send in f["sends"]:
                if send["via"] == "self" and not self._actor_cls(f["module"], send["cls"]):
                    continue
                own = f"{f['module']}.{send['cls']}" if send["cls"] else None
                candidates = [h for h in self.handlers if h["callback"] in RECEIVERS[send["op"]]]
                if send["to_self"] and own:
                    candidates = [h for h in candidates if self._inherits(own, h["fq"])]
                started = send.get("target_class")
                if started and self._alias(started) in self.classes:
                    home = self._alias(started)
                    candidates = [h for h in candidates if self._inherits(home, h["fq"])]
                if send["op"] == "dispatch" and send.get("topic") in subscribers:
                    candidates = [h for h in candidates if h["fq"] in subscribers[send["topic"]]]
                receivers = []
                if send["tag"] is not None:
                    for h in candidates:
                        lines = [line for tag, line in h["tags"] if tag == send["tag"]]
                        if lines:
                            receivers.append(
                                {
                                    "node": h["node"],
                                    "handler": f"{h['fq']}.{h['callback']}",
                                    "path": h["path"],
                                    "line": lines[0],
                                }
                            )
                out.append(
                    {
                        "node": send["node"],
                        "from": self._name(send["node"]),
                        "path": f["path"],
                        "line": send["line"],
                        "op": send["op"],
                        "tag": send["tag"],
                        "target": send["target"],
                        "receivers": receivers,
                    }
                )
        return out

    def _inherits(self, cls: str, home: str) -> bool:
        """Whether ``cls`` is ``home`` or derives from it (so has its handlers)."""
        return cls == home or self.is_a(cls, frozenset((home,)))

    def _owner_class(self, node: dict[str, Any]) -> str:
        qualname = node["qualname"]
        cls = qualname.rsplit(".", 1)[0] if node["kind"] == "method" else qualname
        return f"{node['module']}.{cls}"

    # --------------------------------------------------- supervision trees
    @cached_property
    def supervision_trees(self) -> list[dict[str, Any]]:
        """Each spec written in source, its children resolved; a spec another one uses is
        drawn inside it, not again as a root."""
        by_function: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for f in self.files:
            for spec in f["specs"]:
                owner = spec["cls"] if spec["cls"] else spec["function"]
                by_function.setdefault(f"{f['module']}.{owner}", (spec, f))
        used: set[str] = set()
        started = {
            site["spec"]: site.get("path")
            for f in self.files
            for site in f["sites"]
            if site["kind"] == "supervisor_start" and site.get("spec")
        }

        factories = {
            f"{f['module']}.{name}": factory
            for f in self.files
            for name, factory in f.get("factories", {}).items()
        }

        def child_tree(child: dict[str, Any], depth: int) -> dict[str, Any]:
            made_by = child.get("made_by")
            if made_by in factories:
                child = {**child, **_from_factory(factories[made_by], child)}
            start = child.get("start")
            kind = self.class_kind(start) if start else None
            home = self._alias(start) if start else None
            node = {
                "id": child.get("id") or "?",
                "start": start or child.get("made_by"),
                "kind": kind
                or (
                    "supervisor"
                    if start in SUPERVISOR_ROOTS
                    else ("registry" if start and start.endswith(".Registry") else None)
                ),
                "node": self.classes[home]["id"] if home in self.classes else None,
                "line": child["line"],
                "restart": child.get("restart"),
                "dynamic": child.get("id") is None,
            }
            sub = child.get("spec")
            call = child.get("spec_call")
            if sub is None and call in by_function and depth < 8:
                used.add(call)
                sub = by_function[call][0]
            if sub is None and home in by_function and depth < 8:
                used.add(home)
                sub = by_function[home][0]
            if sub is not None:
                node["kind"] = "supervisor"
                node.update(spec_tree(sub, depth + 1))
            return node

        def spec_tree(spec: dict[str, Any], depth: int) -> dict[str, Any]:
            return {
                "strategy": spec["strategy"],
                "children": [child_tree(c, depth) for c in spec["children"]],
                "more": spec["dynamic"],
            }

        trees = {
            name: {
                "name": name,
                "node": spec["node"],
                "path": f["path"],
                "line": spec["line"],
                **spec_tree(spec, 0),
            }
            for name, (spec, f) in by_function.items()
        }
        roots = []
        for name, tree in sorted(trees.items()):
            if name in used:
                continue
            if name in started:
                tree["started_at"] = started[name]
            roots.append(tree)
        return roots

    # ------------------------------------------------------------- graphs
    @cached_property
    def call_graph(self) -> dict[str, list[list[Any]]]:
        """caller node id -> [[callee node id, line], ...] for calls resolved in the project."""
        graph: dict[str, list[list[Any]]] = defaultdict(list)
        for f in self.files:
            for caller, target, line in f["calls"]:
                callee = self._callee(target)
                if callee is not None:
                    graph[caller].append([callee, line])
        return dict(graph)

    def _callee(self, target: str) -> str | None:
        if target.startswith("self:"):
            fq, _, method = target[5:].partition("|")
            return self._method(fq, method, 0)
        found = self.defs.get(target)
        if found is None:
            alias = self._alias(target)
            found = self.defs.get(alias)
        if found is None and target in self.classes:
            found = self.classes[target]["id"]
        return found

    def _method(self, fq: str, method: str, depth: int) -> str | None:
        info = self.classes.get(fq)
        if info is None or depth > 16:
            return None
        if method in info["methods"]:
            return self.defs.get(f"{fq}.{method}")
        for base in info["bases"]:
            found = self._method(self._alias(base), method, depth + 1)
            if found:
                return found
        return None

    def callers_of(self, node_id: str) -> list[list[Any]]:
        return [
            [caller, line]
            for caller, calls in self.call_graph.items()
            for callee, line in calls
            if callee == node_id
        ]

    @cached_property
    def module_graph(self) -> dict[str, Any]:
        """Module -> the project's modules it imports; and the outside packages used."""
        internal: dict[str, list[str]] = {}
        external: Counter[str] = Counter()
        for f in self.files:
            deps: set[str] = set()
            for imported, _line in f["imports"]:
                home = self._module_of(imported)
                if home is None:
                    external[imported.partition(".")[0]] += 1
                elif home != f["module"]:
                    deps.add(home)
            internal[f["module"]] = sorted(deps)
        return {"internal": internal, "external": dict(external.most_common())}

    def _module_of(self, dotted_name: str) -> str | None:
        name = dotted_name
        while name:
            if name in self.modules:
                return name
            name = name.rpartition(".")[0]
        return None

    # ---------------------------------------------------------- hot spots
    def hot_spots(self, top: int = 10) -> list[dict[str, Any]]:
        functions = [n for n in self.nodes.values() if n["kind"] in ("function", "method")]
        functions.sort(key=lambda n: (-n["cognitive"], -n["cyclomatic"], -n["lines"], n["id"]))
        return functions[:top]

    def errors(self) -> list[dict[str, str]]:
        return [{"path": f["path"], "error": f["error"]} for f in self.files if f["error"]]
