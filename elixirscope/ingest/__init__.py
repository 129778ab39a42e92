"""The daemon's side of the data plane: ingest, the writer pool, correlation.

Host processes ship :class:`~elixirscope.contracts.trace.EventBatch` frames over a
credit stream to one public endpoint. :class:`IngestLoop` takes them (granting
credit as it does) and hands each raw frame to one writer of the pool, keeping
it until that writer acknowledges its commit (:mod:`.handoff`: a writer killed
mid-stream loses nothing, its batches go to the others); every
:class:`WriterLoop` decodes its share and appends it to its own shard of the
event store. Both are threads inside their actors' processes, so recorded
events never travel over Thespian.

Backpressure is end to end and bounded: writers that fall behind stop
acknowledging, batches wait at the ingest loop, which stops taking more at
``2 x window``, so it stops granting credit, and each host's own overflow
policy decides (and counts).
"""

from typing import Any

__all__ = ["IngestLoop", "IngestStats", "WriterLoop", "WriterStats"]


def __getattr__(name: str) -> Any:
    """The loops (and the runtime they use) load on first use: ``elixirscope run``
    imports ``ingest.stores`` for embedded recording and needs none of them."""
    if name in __all__:
        from . import loops

        return getattr(loops, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
