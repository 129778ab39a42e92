"""Batches built as the ingest path builds them (``recorded_batches``)."""

from recorded_batches import T0, Recorder, recorder  # noqa: F401 - fixtures and helpers for the tests here
