"""The timeline's overview strip: where the whole run was busy and where it failed, as
the overview answers it (a histogram of the run's extent, the same for every window)."""

from __future__ import annotations

from cinema_recordings import API_TOKEN
from starlette.testclient import TestClient

from elixirscope.visualization.server import create_app


def bin_of(activity: dict, ts: int) -> int:
    t0, t1, n = int(activity["first_ts"]), int(activity["last_ts"]), activity["bins"]
    return min(n - 1, int((ts - t0) / ((t1 - t0) / n)))


def test_the_overview_says_where_calls_ran_and_where_the_run_failed(library_and_catalog):
    data, library, catalog = library_and_catalog
    with TestClient(create_app(data, API_TOKEN), headers={"x-elixirscope-token": API_TOKEN}) as client:
        lib = client.get(f"/api/runs/{library}/overview").json()["activity"]
        cat = client.get(f"/api/runs/{catalog}/overview").json()["activity"]
        listed = client.get(f"/api/runs/{library}/requests").json()["requests"]
        served = client.get(f"/api/runs/{catalog}/requests").json()["requests"]
    assert len(lib["calls"]) == len(lib["errors"]) == lib["bins"]
    # the run's two failures, each in the bin of its answer: the 504 and the 500
    failed = {bin_of(lib, int(r["end"])) for r in listed if r["status"] >= 500}
    assert sum(lib["errors"]) == 2
    assert {i for i, n in enumerate(lib["errors"]) if n} == failed
    # the catalog: busy while it served (the calls of the 1.2 s requests running all along
    # them: the request's own call and info(), begun and ended within its first and last
    # bins), idle between, and it never failed
    for r in served:
        if r["path"] == "/info/5":
            inside = range(bin_of(cat, int(r["start"])) + 1, bin_of(cat, int(r["end"])))
            assert len(inside) > 100 and all(cat["calls"][i] >= 2 for i in inside), r
    assert 0 in cat["calls"] and not any(cat["errors"])
