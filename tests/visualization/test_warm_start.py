"""A server started over what an earlier one kept beside the store answers its first
window from it: the run's kept model (mapped back whole at once), or, without it, the
shards' kept parts (the run shown as they load), never a run not read yet."""

from __future__ import annotations

import json
import random
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cinema_recordings import UiServer
from parts_recordings import RUN, batches, store_of
from waiting import wait_until

from elixirscope.query.runs import select_run
from elixirscope.visualization import modelcache


def window(server: UiServer) -> dict[str, Any]:
    """The page's first question: the run's whole extent, what is read so far."""
    url = f"{server.base}/api/runs/{RUN}/timeline?token={server.token}&partial=1&px=800"
    with urllib.request.urlopen(url, timeout=120) as answer:
        return json.loads(answer.read())


def whole_window(server: UiServer) -> dict[str, Any]:
    deadline = time.monotonic() + 300  # a bound on a hung server, not a measure
    while True:
        got = window(server)
        if got["reading"] is None or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A run over three shards shown once by a server, which kept its model and parts;
    the data dir and the run's whole window."""
    data = tmp_path_factory.mktemp("warm")
    rng = random.Random(11)
    store_of(data, rng, batches(rng, 3, 500), 3)
    info = select_run(data, RUN).run
    first = UiServer(data)
    try:
        whole = whole_window(first)
        wait_until(lambda: modelcache.is_kept(data, RUN, info.events, info.last_ts), timeout=120)
    finally:
        first.close()
    assert whole["reading"] is None and whole["slices"]
    return data, whole


def test_a_new_server_answers_its_first_window_with_the_kept_model(kept):
    data, whole = kept
    again = UiServer(data)
    try:
        first = window(again)
    finally:
        again.close()
    assert first["reading"] is None  # the whole run, not "reading N %"
    assert first == whole


def test_without_the_kept_model_the_first_window_is_of_the_kept_parts(kept, tmp_path):
    data, whole = kept
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    shutil.rmtree(copy / modelcache.CACHE_DIR / RUN / modelcache.MODEL_DIR)
    parts = sorted((copy / modelcache.CACHE_DIR / RUN / "parts").iterdir())
    assert len(parts) == 3
    again = UiServer(copy)
    try:
        first = window(again)
        # the whole run, or what the parts loaded so far hold: never nothing read yet
        assert first["reading"] is None or first["reading"]["events_read"] > 0
        assert whole_window(again) == whole
    finally:
        again.close()
    assert sorted((copy / modelcache.CACHE_DIR / RUN / "parts").iterdir()) == parts
