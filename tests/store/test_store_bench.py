"""scripts/bench_store.py runs end to end on a tiny input (figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_store.py"


def test_bench_store_prints_every_figure_per_engine():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--events", "6000", "--lookups", "5",
         "--engines", "rows,chunks-zstd,chunks-zstd-commit8,batchblob-zstd", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    results = json.loads(out.stdout)
    assert [r["engine"] for r in results] == [
        "rows",
        "chunks-zstd",
        "chunks-zstd-commit8",
        "batchblob-zstd",
    ]
    for r in results:
        assert r["events"] == 6000
        assert r["events_per_lookup"] > 0, "every lookup finds its chain"
        for key in ("write_events_per_s", "lookup_p50_ms", "lookup_p95_ms", "bytes_per_event"):
            assert r[key] > 0


def test_bench_store_rejects_an_unknown_engine():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--events", "10", "--engines", "nope"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 2 and "unknown or unavailable engine 'nope'" in out.stderr
