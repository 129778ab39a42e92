"""Where a run was busy, for the timeline's overview strip: a coarse histogram of its extent.

The strip above the time axis shows the whole run whatever the window, as Perfetto's and
Chrome's overview do: how many calls ran in each stretch of it and where it failed, so a
burst, a stall or an error is seen before it is zoomed to. The run's extent is cut into
``BINS`` equal bins (the strip draws them to its width); each bin counts the calls that
ran in it (begun before its end, ended after its start: a long call counts in every bin
it spans, nested ones each) and the run's errors in it (``outcomes.failures``: 5xx
answers, uncaught exceptions, crashes). Two bincounts over the calls' columns: a
ten-million-call run's in well under a second, computed once per model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from elixirscope.visualization.outcomes import failures
from elixirscope.visualization.runmodel import RunModel

__all__ = ["BINS", "activity"]

BINS = 1000
"""Bins of a run's extent: about a strip's width in pixels."""


def activity(model: RunModel, bins: int = BINS) -> dict[str, Any]:
    """The run's calls running and errors per bin of ``[first_ts, last_ts]`` (see the
    module's docstring); kept on the model (a model does not change once built)."""
    kept = model._activity
    if kept is not None and kept["bins"] == bins:
        return kept
    t0, t1 = model.first_ts, max(model.last_ts, model.first_ts + 1)
    width = (t1 - t0) / bins

    def bin_of(ts: np.ndarray) -> np.ndarray:
        return np.clip(((ts - t0) / width).astype(np.int64), 0, bins - 1)

    running = np.zeros(bins, np.int64)
    if model.calls:
        # +1 in the bin each call begins in, -1 after the one it ends in: summed, the calls
        # running in each bin
        steps = np.bincount(bin_of(model.start), minlength=bins + 1)
        steps[1:] -= np.bincount(bin_of(model.end), minlength=bins)[:bins]
        running = np.cumsum(steps[:bins])
    failed = np.asarray(failures(model), dtype=np.int64)
    errors = np.bincount(bin_of(failed), minlength=bins) if len(failed) else np.zeros(bins, int)
    out = {
        "bins": bins,
        "first_ts": model.first_ts,
        "last_ts": t1,
        "calls": running.tolist(),
        "errors": errors.tolist(),
    }
    model._activity = out
    return out
