"""The runs list counts a run's errors — 5xx answers, uncaught exceptions, crashes — not
every exception raised: a 404 the framework raised and handled, a timeout a retry got
over, are no errors (the 4xx apart; the exceptions still counted, as raised)."""

from __future__ import annotations

from cinema_recordings import API_TOKEN
from starlette.testclient import TestClient
from waiting import wait_until

from elixirscope.visualization.server import create_app


def counted_runs(data) -> dict[str, dict]:
    """The runs list once every run is counted (the server counts them as it reads them)."""
    with TestClient(create_app(data, API_TOKEN), headers={"x-elixirscope-token": API_TOKEN}) as client:

        def runs():
            listed = client.get("/api/runs").json()
            return None if listed["counting"] else listed["runs"]

        return {r["id"]: r for r in wait_until(runs, timeout=120)}


def test_a_run_s_errors_are_its_5xx_not_its_handled_exceptions_nor_its_404(library_and_catalog):
    data, library, catalog = library_and_catalog
    runs = counted_runs(data)
    lib = runs[library]
    # a 504 (two timed-out attempts) and a 500 (a ValueError); the 404's HTTPException and
    # the timeouts were raised and handled: exceptions, not errors
    assert lib["outcomes"]["errors"] == lib["outcomes"]["server_errors"] == 2, lib["outcomes"]
    assert lib["outcomes"]["statuses"] == {"500": 1, "504": 1}
    assert lib["outcomes"]["client_errors"] == 1
    assert lib["outcomes"]["uncaught"] == lib["outcomes"]["crashes"] == 0
    assert lib["exceptions"] > lib["outcomes"]["errors"]
    assert lib["outcomes"]["of_events"] == lib["events"]
    # the catalog answered all it was asked (also what its caller gave up on)
    assert runs[catalog]["outcomes"]["errors"] == 0 and runs[catalog]["outcomes"]["requests"] == 4


def test_an_actor_s_crash_is_an_error(cinema_data):
    """The shop's stock keeper crashed once (its crash and its exit: one crash, as the run's
    header counts it)."""
    runs = counted_runs(cinema_data)
    (shop,) = [r for r in runs.values() if "elixirscope.examples.shop" in r["command_text"]]
    assert shop["outcomes"]["crashes"] == shop["outcomes"]["errors"] == 1, shop["outcomes"]
