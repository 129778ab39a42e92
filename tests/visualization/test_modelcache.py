"""A finished run's model is kept beside the store and read back the same; a run that grew
since, or a damaged file, is read again from the store."""

from __future__ import annotations

import random
import shutil

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parts_recordings import RUN, batches, store_of
from reference_model import read_run
from test_runparts import assert_same, merged
from waiting import wait_until

from elixirscope.query.runs import list_runs
from elixirscope.visualization import modelcache, views
from elixirscope.visualization.windows import timeline_window


def test_a_kept_model_answers_as_the_run_read_again(cinema_data):
    [web, shop] = list_runs(cinema_data)  # newest first
    shutil.rmtree(cinema_data / modelcache.CACHE_DIR, ignore_errors=True)  # kept by other tests
    first = views.Models(cinema_data)
    fresh = first.model(shop.id)  # read from the store, and kept (once it is shown)
    wait_until(lambda: modelcache.is_kept(cinema_data, shop.id, shop.events, shop.last_ts))
    kept = modelcache.load(cinema_data, shop.id, shop.events, shop.last_ts)
    assert kept is not None
    for column in modelcache.COLUMNS:
        assert np.array_equal(getattr(kept, column), getattr(fresh, column)), column
    first.model(web.id)
    wait_until(lambda: modelcache.is_kept(cinema_data, web.id, web.events, web.last_ts))
    again = views.Models(cinema_data)  # a new server: the kept model, the same answers
    assert not again.model(shop.id).start.flags.writeable  # mapped back, read-only
    for view in (views.timeline_view, views.messages_view, views.calltree_view):
        assert view(again, shop.id, {}) == view(first, shop.id, {}), view.__name__
    assert views.overview_view(again, shop.id) == views.overview_view(first, shop.id)
    stock = {"target": "shop/stock"}
    assert views.state_view(again, shop.id, stock) == views.state_view(first, shop.id, stock)
    listed = views.requests_view(again, web.id, {})
    assert listed == views.requests_view(first, web.id, {}) and listed["requests"]
    one = {"request": listed["requests"][0]["id"]}
    assert views.requests_view(again, web.id, one) == views.requests_view(first, web.id, one)
    # kept for another count of events (the run grew): not used
    assert modelcache.load(cinema_data, shop.id, shop.events + 1, shop.last_ts) is None


def test_a_damaged_kept_model_is_read_again(cinema_data, tmp_path):
    [web, _] = list_runs(cinema_data)
    model = read_run(cinema_data, web.id)
    assert modelcache.save(tmp_path, model, web.events, web.last_ts)
    kept = tmp_path / modelcache.CACHE_DIR / web.id / modelcache.MODEL_DIR
    (kept / "start.npy").write_bytes(b"not numpy")
    assert modelcache.load(tmp_path, web.id, web.events, web.last_ts) is None


def test_readers_at_once_share_one_read(cinema_data):
    import threading

    [_, shop] = list_runs(cinema_data)
    shutil.rmtree(cinema_data / modelcache.CACHE_DIR, ignore_errors=True)
    models = views.Models(cinema_data)
    start = threading.Barrier(6)
    got: list = []

    def read() -> None:
        start.wait()
        got.append(models.model(shop.id))

    threads = [threading.Thread(target=read) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 6 and all(m is got[0] for m in got)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32), shards=st.integers(1, 3), steps=st.integers(0, 120))
def test_a_kept_model_maps_back_as_it_was_built(tmp_path_factory, seed, shards, steps):
    """Columns, groups and every window of the model mapped back are those of the merge."""
    rng = random.Random(seed)
    data = tmp_path_factory.mktemp("kept")
    store_of(data, rng, batches(rng, 2, steps), shards)
    built, _ = merged(data, save=False)
    assert modelcache.save(data, built, built.events, built.last_ts)
    assert modelcache.is_kept(data, RUN, built.events, built.last_ts)
    kept = modelcache.load(data, RUN, built.events, built.last_ts)
    assert kept is not None
    assert_same(kept, built)
    for key, group in built.groups.items():
        for name in (*modelcache.GROUP_FIELDS, "errors_before"):
            assert np.array_equal(getattr(kept.groups[key], name), getattr(group, name)), name
    assert np.array_equal(kept.mark_times, built.mark_times)
    t0, t1 = built.first_ts, max(built.last_ts, built.first_ts + 1)
    for a, b in ((t0, t1), (t0, (t0 + t1) // 2), ((t0 + t1) // 2, t1)):
        if b > a:
            assert timeline_window(kept, a, b, limit=10) == timeline_window(built, a, b, limit=10)
            assert timeline_window(kept, a, b) == timeline_window(built, a, b)
    # another count of events or last time: not this model
    assert modelcache.load(data, RUN, built.events + 1, built.last_ts) is None
    assert not modelcache.is_kept(data, RUN, built.events, (built.last_ts or 0) + 1)
