"""The Capture layer's actors (the ingest endpoint, the writer pool) and the correlator,
which only reads and is supervised in the Query layer.

Each is a thin shell around a worker thread from :mod:`elixirscope.ingest`:
the actor answers Requests and reports metrics on the control plane, the
thread moves recorded events on the data plane. If the thread dies, the actor
exits with that failure as its reason, so its supervisor restarts both.
"""

from __future__ import annotations

from typing import Any

from elixirscope.contracts import Request
from elixirscope.ingest import IngestLoop, WriterLoop

from .config_server import CONFIG_TOPIC
from .event_store import Retention
from .layer_service import LayerService

__all__ = ["CorrelatorService", "IngestService", "WriterService"]


class LoopFailed(RuntimeError):
    """The actor's worker thread stopped on its own: the actor exits so it is restarted."""


class _LoopService(LayerService):
    loop: Any

    def terminate(self, reason: Any, state: Any) -> None:
        self.loop.stop()

    def report(self) -> None:
        if not self.loop.alive:
            raise LoopFailed(
                f"{self.loop.name} thread stopped: {self.loop.stats.last_error or 'no error'}"
            )
        for name, value in self.loop_stats().items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.metrics.gauge(name).set(value)
        super().report()

    def loop_stats(self) -> dict[str, Any]:
        return self.loop.stats.as_dict()

    def op_stats(self, request: Request, state: Any) -> dict[str, Any]:
        return {**super().op_stats(request, state), **self.loop_stats()}


class IngestService(_LoopService):
    """args: LayerService's, plus ``ingest_endpoint``, ``forward_endpoint``, ``credit_window``
    and ``data_dir``. Operations: ``endpoint``, and ``run`` ({record}): keep a host's run
    record (``elixirscope run --daemon`` sends it at start and at end) with the events."""

    operations = ("health", "stats", "endpoint", "run")

    def init_state(self, args: dict[str, Any]) -> dict[str, Any]:
        self.data_dir = args.get("data_dir")
        self.loop = IngestLoop(
            args["ingest_endpoint"],
            args["forward_endpoint"],
            window=args.get("credit_window", 16),
            max_senders=args.get("max_senders", 1024),
            max_message_bytes=args.get("max_batch_bytes", 64 << 20),
        )
        self.loop.start()
        return {}

    def loop_stats(self) -> dict[str, Any]:
        receiver = {f"receiver_{k}": v for k, v in self.loop.receiver_stats().items()}
        handoff = {f"handoff_{k}": v for k, v in self.loop.handoff_stats().items()}
        connections = {f"connections_{k}": v for k, v in self.loop.connection_stats().items()}
        return {**self.loop.stats.as_dict(), **receiver, **handoff, **connections}

    def op_endpoint(self, request: Request, state: Any) -> dict[str, Any]:
        return {"ingest": self.loop.endpoint}

    def op_run(self, request: Request, state: Any) -> dict[str, Any]:
        from elixirscope.store import StoreError
        from elixirscope.store.runs import write_run

        record: Any = request.params.get("record")  # unchecked until write_run checks it
        if self.data_dir is None:
            raise ValueError("this ingest keeps no run records (it was started without a data_dir)")
        try:
            write_run(self.data_dir, record)  # checks the record
        except StoreError as exc:  # a bad record or an unwritable dir: an error answer
            raise ValueError(str(exc)) from None
        self.metrics.counter("run_records").inc()
        return {"run": record["id"]}


class WriterService(_LoopService):
    """args: LayerService's, plus ``forward_endpoint``, ``data_dir`` and retention.

    Its store claims a shard of its own (a restarted writer takes a free one) and
    prunes it as it writes, following runtime changes of the retention settings."""

    def init_state(self, args: dict[str, Any]) -> dict[str, Any]:
        from elixirscope.ingest.stores import open_writer_store

        data_dir = args["data_dir"]
        self.retention = Retention(args.get("max_age_hours", 0.0), args.get("max_size_mb", 0))
        self.register(CONFIG_TOPIC, unique=False)
        self.loop = WriterLoop(
            args["forward_endpoint"],
            lambda: open_writer_store(
                data_dir,
                max_age_hours=self.retention.max_age_hours,
                max_size_mb=self.retention.max_size_mb,
            ),
        )
        self.loop.start()
        return {}

    def handle_info(self, message: Any, state: Any) -> Any:
        if self.retention.follow(message):
            store = self.loop.store  # read by the writer thread when it prunes
            if store is not None:
                store.retention_max_age_s = self.retention.max_age_s
                store.retention_max_bytes = self.retention.max_bytes
            return state
        return super().handle_info(message, state)


class CorrelatorService(LayerService):
    """The EventCorrelator: answers for correlation chains across every producer.

    args: LayerService's, plus ``data_dir``. Operations: ``chain``
    ({correlation}) - every event of the chain, from every process, in HLC
    order, with its message send -> receive links and call nesting.
    """

    operations = ("health", "stats", "chain")

    def init_state(self, args: dict[str, Any]) -> dict[str, Any]:
        self.data_dir = args["data_dir"]
        return {}

    def op_chain(self, request: Request, state: Any) -> dict[str, Any]:
        from elixirscope.query.reports import chain_report

        correlation = request.params.get("correlation")
        if not isinstance(correlation, str) or not correlation:
            raise ValueError(f"chain needs params {{'correlation': ID}}; got {request.params!r}")
        self.metrics.counter("chains").inc()
        return chain_report(self.data_dir, correlation)
