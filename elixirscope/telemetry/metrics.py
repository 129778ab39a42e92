"""Counters, gauges and histograms, cheap to update and small to ship.

An actor keeps a :class:`MetricSet`, updates it inline (an attribute add),
and periodically sends ``snapshot()`` — plain dicts of numbers — to the
TelemetryService. Histograms use fixed log2 buckets, so merging and
percentiles need no samples and memory is constant.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["Counter", "Gauge", "Histogram", "MetricSet", "mailbox_rows"]

# snapshot gauge -> mailbox row column (gauges from elixirscope.runtime.mailbox)
_MAILBOX_COLUMNS = {
    "depth": "mailbox_depth",
    "max": "mailbox_depth_max",
    "outbox": "outbox_depth",
    "outbox_max": "outbox_depth_max",
}


class Counter:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, n: int = 1) -> None:
        self.value += n


class Gauge:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def set(self, value: float) -> None:
        self.value = value


class Histogram:
    """Log2 buckets from 1 up; bucket i holds values in [2**(i-1), 2**i)."""

    BUCKETS = 64
    __slots__ = ("buckets", "count", "total", "max")

    def __init__(self) -> None:
        self.buckets = [0] * self.BUCKETS
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def observe(self, value: float) -> None:
        index = 0 if value < 1 else min(self.BUCKETS - 1, int(math.log2(value)) + 1)
        self.buckets[index] += 1
        self.count += 1
        self.total += value
        if value > self.max:
            self.max = value

    def percentile(self, q: float) -> float:
        """Upper bound of the bucket holding the q-quantile (0 when empty)."""
        if not self.count:
            return 0.0
        rank = q * self.count
        seen = 0
        for index, n in enumerate(self.buckets):
            seen += n
            if seen >= rank:
                return float(min(2**index, self.max))
        return self.max

    def snapshot(self) -> dict[str, float]:
        mean = self.total / self.count if self.count else 0.0
        return {
            "count": self.count,
            "mean": round(mean, 3),
            "p50": self.percentile(0.5),
            "p99": self.percentile(0.99),
            "max": self.max,
        }


class MetricSet:
    """Named metrics of one actor, created on first use."""

    def __init__(self) -> None:
        self._metrics: dict[str, Any] = {}

    def counter(self, name: str) -> Counter:
        return self._get(name, Counter)

    def gauge(self, name: str) -> Gauge:
        return self._get(name, Gauge)

    def histogram(self, name: str) -> Histogram:
        return self._get(name, Histogram)

    def _get(self, name: str, kind: type) -> Any:
        metric = self._metrics.get(name)
        if metric is None:
            metric = self._metrics[name] = kind()
        elif not isinstance(metric, kind):
            raise TypeError(f"metric {name!r} is a {type(metric).__name__}, not a {kind.__name__}")
        return metric

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, metric in sorted(self._metrics.items()):
            out[name] = metric.snapshot() if isinstance(metric, Histogram) else metric.value
        return out


def mailbox_rows(actors: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """``{path: snapshot}`` -> ``{path: {"depth", "max", "outbox", "outbox_max"}}``, measured ones only.

    What the figures count is documented in :mod:`elixirscope.runtime.mailbox`.
    """
    rows = {}
    for path, snapshot in sorted(actors.items()):
        if "mailbox_depth" in snapshot:
            rows[path] = {
                col: snapshot[gauge] for col, gauge in _MAILBOX_COLUMNS.items() if gauge in snapshot
            }
    return rows
