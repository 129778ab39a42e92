"""A request's waterfall says which attempt each outgoing HTTP call is and, when the
service it called was recorded too (another run of the data dir), the request it began
there — route, status, time, and calltree's note when that went on after the attempt
gave up — with the id its own run's waterfall knows it by; the callee's waterfall names
its caller."""

from __future__ import annotations

from cinema_recordings import API_TOKEN, elixirscope
from starlette.testclient import TestClient

from elixirscope.visualization.server import create_app


def test_each_attempt_is_numbered_and_shows_the_callee_s_side(library_and_catalog):
    data, library, catalog = library_and_catalog
    with TestClient(create_app(data, API_TOKEN), headers={"x-elixirscope-token": API_TOKEN}) as client:
        listed = client.get(f"/api/runs/{library}/requests").json()["requests"]
        (late,) = [r for r in listed if r["status"] == 504]
        got = client.get(f"/api/runs/{library}/requests", params={"request": late["id"]}).json()
        served = {r["id"]: r for r in client.get(f"/api/runs/{catalog}/requests").json()["requests"]}
        attempts = [q for q in got["queries"] if q["kind"] == "http"]
        assert [(q["attempt"], q["timeout"]) for q in attempts] == [(1, True), (2, True)]
        tree = elixirscope("calltree", "--data-dir", str(data), "--all-runs", got["request"]["chain"][:12])
        assert tree.returncode == 0, tree.stderr
        for q in attempts:
            callee = q["callee"]
            assert callee["run"] == catalog and callee["program"] == "catalog.py"
            assert (callee["method"], callee["path"], callee["route"], callee["status"]) == (
                "GET", "/info/5", "/info/{book:int}", 200
            )
            assert callee["duration"] > int(q["end"]) - int(q["start"])  # longer than the attempt waited
            assert served[callee["request"]]["path"] == "/info/5"  # its run's waterfall's id
            # what calltree --all-runs says of it, word for word
            assert callee["note"].startswith("[its caller's attempt timed out after ")
            assert callee["note"] in tree.stdout, (callee["note"], tree.stdout)
        # the callee's side: its caller, the attempt that gave up on it
        second = attempts[1]["callee"]["request"]
        mine = client.get(f"/api/runs/{catalog}/requests", params={"request": second}).json()
        caller = mine["request"]["caller"]
        assert (caller["run"], caller["attempt"], caller["timeout"]) == (library, 2, True)
        assert caller["note"] == attempts[1]["callee"]["note"]
        # a quick answer: its callee answered in time, no note
        (quick,) = [r for r in listed if r["path"] == "/books/1/catalog"]
        got = client.get(f"/api/runs/{library}/requests", params={"request": quick["id"]}).json()
        (attempt,) = [q for q in got["queries"] if q["kind"] == "http"]
        assert attempt["attempt"] == 1 and attempt["callee"]["status"] == 200
        assert attempt["callee"]["note"] is None
