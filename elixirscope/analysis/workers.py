"""Facts of many files at once, in worker processes.

A ``ProcessPoolExecutor`` on the ``spawn`` start method (safe from threads and
actor processes, and the same on every platform), fed batches of files so that
each round trip carries enough work. Few files are read in this process: a
worker's start costs more than they do. Workers import only
:mod:`elixirscope.analysis.facts` and the standard library.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from elixirscope.analysis.facts import file_facts
from elixirscope.analysis.sources import SourceFile

__all__ = ["IN_PROCESS_BELOW", "facts_of_files"]

IN_PROCESS_BELOW = 48
"""Fewer files than this are read in the calling process."""
BATCH = 8
log = logging.getLogger("elixirscope.analysis")


def facts_of_files(
    files: Sequence[SourceFile],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """The facts of each file, in no particular order; ``progress(n)`` after each n done."""
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count <= 1 or len(files) < IN_PROCESS_BELOW:
        for f in files:
            yield file_facts(f.path, f.module, f.package)
            if progress:
                progress(1)
        return
    batches = [
        [(f.path, f.module, f.package) for f in files[i : i + BATCH]]
        for i in range(0, len(files), BATCH)
    ]
    context = multiprocessing.get_context("spawn")
    finished = 0
    try:
        with ProcessPoolExecutor(max_workers=min(count, len(batches)), mp_context=context) as pool:
            for done in pool.map(facts_of_batch, batches):
                finished += 1
                yield from done
                if progress:
                    progress(len(done))
    except (BrokenProcessPool, OSError) as exc:
        # e.g. a ``__main__`` that starts analysis without an ``if __name__ == "__main__"``
        # guard, which spawned workers cannot import: the rest is read here instead
        log.warning("analysis workers failed (%s); reading the remaining files in-process", exc)
        for batch in batches[finished:]:
            done = facts_of_batch(batch)
            yield from done
            if progress:
                progress(len(done))


def facts_of_batch(batch: list[tuple[str, str, bool]]) -> list[dict[str, Any]]:
    return [file_facts(path, module, package) for path, module, package in batch]
