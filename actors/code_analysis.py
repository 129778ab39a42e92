"""The CodeAnalysis layer's actor: the AST repository answering Requests.

``code_analysis/ast_repository`` (the layer's front) keeps the repository
under the daemon's data dir (``elixirscope.analysis.repository``) and answers:

- ``analyze`` ({path, workers?}): analyses a directory, file or installed
  module incrementally, on a thread of its own (the actor keeps answering
  meanwhile; an ``analyze`` of a target already being analysed waits for that
  one), and answers its counts, patterns found and the files it could not read;
- ``node`` ({id}): a node with its span, complexity, patterns, calls and callers;
- ``node_for`` ({file, line} or {module, qualname}): the node id(s) there;
- ``calls`` ({id, limit?}): the node's recorded calls from the event store;
- ``stats``: the layer's metrics and the repository's counts.
"""

from __future__ import annotations

import threading
from typing import Any

from elixirscope.contracts import Request, error_response, ok_response
from elixirscope.runtime import NoReply, Reply

from .layer_service import LayerService

__all__ = ["AstRepositoryService"]

POLL_S = 0.05


class AstRepositoryService(LayerService):
    """args: LayerService's, plus ``data_dir``."""

    operations = ("health", "stats", "analyze", "node", "node_for", "calls")

    def init_state(self, args: dict[str, Any]) -> dict[str, Any]:
        self.data_dir = args["data_dir"]
        self._repo: Any = None
        self.running: dict[str, tuple[threading.Thread, dict[str, Any]]] = {}
        self.waiting: list[tuple[Any, Request, str]] = []
        self.polling = False
        return {}

    @property
    def repo(self) -> Any:
        """The repository, opened on the first Request that needs it (a daemon that never
        analyses leaves no file behind)."""
        if self._repo is None:
            from elixirscope.analysis import open_repository

            self._repo = open_repository(self.data_dir)
        return self._repo

    def terminate(self, reason: Any, state: Any) -> None:
        if self._repo is not None:
            self._repo.close()

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if not (isinstance(request, Request) and request.operation == "analyze"):
            return super().handle_call(request, from_, state)
        self.metrics.counter("requests").inc()
        params = dict(request.params or {})
        path = params.pop("path", None)
        workers = params.pop("workers", None)
        if not isinstance(path, str) or params or not (workers is None or isinstance(workers, int)):
            self.metrics.counter("request_errors").inc()
            return Reply(
                error_response(
                    request.id,
                    "invalid_params",
                    f"analyze takes params path (str) and workers (int); got {request.params!r}",
                    from_layer=self.layer,
                ),
                state,
            )
        if path not in self.running:
            box: dict[str, Any] = {}

            def work() -> None:
                try:
                    summary = self.repo.analyze(path, workers=workers)
                    box["value"] = {
                        **summary,
                        "patterns": self.repo.project(summary["target"]).pattern_counts(),
                    }
                except Exception as exc:  # noqa: BLE001 - answered as an error, never raised here
                    box["error"] = exc

            thread = threading.Thread(target=work, name=f"analyze {path}", daemon=True)
            self.running[path] = (thread, box)
            thread.start()
        self.waiting.append((from_, request, path))
        if not self.polling:
            self.polling = True
            self.send_after(POLL_S, "analyze_poll")
        return NoReply(state)

    def handle_info(self, message: Any, state: Any) -> Any:
        if message != "analyze_poll":
            return super().handle_info(message, state)
        for path, (thread, box) in list(self.running.items()):
            if thread.is_alive():
                continue
            del self.running[path]
            for from_, request, _ in [w for w in self.waiting if w[2] == path]:
                self.reply(from_, self._answer(request, box))
            self.waiting = [w for w in self.waiting if w[2] != path]
        if self.running:
            self.send_after(POLL_S, "analyze_poll")
        else:
            self.polling = False
        return state

    def _answer(self, request: Request, box: dict[str, Any]) -> Any:
        from elixirscope.analysis import AnalysisError

        exc = box.get("error")
        if exc is None:
            self.metrics.counter("analyses").inc()
            return ok_response(request, box["value"], from_layer=self.layer)
        self.metrics.counter("request_errors").inc()
        if isinstance(exc, (AnalysisError, ValueError)):
            return error_response(request.id, "invalid_params", str(exc), from_layer=self.layer)
        return error_response(
            request.id,
            "handler_failed",
            f"'analyze' failed: {type(exc).__name__}: {exc}"[:2000],
            from_layer=self.layer,
            operation="analyze",
            exception_type=type(exc).__name__,
        )

    def op_node(self, request: Request, state: Any) -> dict[str, Any]:
        node_id = (request.params or {}).get("id")
        if not isinstance(node_id, str):
            raise ValueError(f"node needs params {{'id': NODE_ID}}; got {request.params!r}")
        node = self.repo.node(node_id)
        if node is None:
            raise KeyError(f"no node {node_id!r} in the repository")
        return node

    def op_node_for(self, request: Request, state: Any) -> dict[str, Any]:
        params = dict(request.params or {})
        if set(params) == {"file", "line"} and isinstance(params["line"], int):
            return {
                "ids": [i for i in [self.repo.node_for(str(params["file"]), params["line"])] if i]
            }
        if set(params) == {"module", "qualname"}:
            return {"ids": self.repo.node_for_name(str(params["module"]), str(params["qualname"]))}
        raise ValueError(
            f"node_for takes params {{file, line}} or {{module, qualname}}; got {request.params!r}"
        )

    def op_calls(self, request: Request, state: Any) -> dict[str, Any]:
        params = dict(request.params or {})
        node_id = params.get("id")
        if not isinstance(node_id, str) or set(params) - {"id", "limit"}:
            raise ValueError(f"calls takes params id and limit; got {request.params!r}")
        return self.repo.recorded_calls(node_id, limit=int(params.get("limit", 1000)))

    def op_stats(self, request: Request, state: Any) -> dict[str, Any]:
        return {
            **super().op_stats(request, state),
            "repository": None if self._repo is None else self._repo.stats(),
            "running": sorted(self.running),
        }
