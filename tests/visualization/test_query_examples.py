"""The examples the cinema's Query view offers are queries ESQL answers (they were not:
``state of '*'`` does not parse, ``outcome = 'raised'`` matched nothing)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from elixirscope.query import esql

QUERY_JS = Path(__file__).resolve().parents[2] / "elixirscope/visualization/static/query.js"


def examples() -> list[str]:
    listed = re.search(r"const EXAMPLES = (\[.*?\]);", QUERY_JS.read_text(), re.S)
    assert listed is not None
    return json.loads(listed.group(1))


def test_each_example_is_answered_and_most_find_rows(cinema_data):
    found = {}
    for query in examples():
        found[query] = len(list(esql.run(query, cinema_data, all_runs=True)))
    assert len(found) >= 5
    # the shop's run has a crash: its exceptions, failed calls and failed state change show
    assert all(found[q] > 0 for q in found if q != "calls where duration > 1ms"), found
