"""Metrics every actor reports and the TelemetryService aggregates."""

from elixirscope.telemetry.metrics import Counter, Gauge, Histogram, MetricSet, mailbox_rows

__all__ = ["Counter", "Gauge", "Histogram", "MetricSet", "mailbox_rows"]
