"""The recordings every test of tests/ai reads: each program recorded once per session,
several at a time (each is a real ``elixirscope run`` subprocess)."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from daemons import make_daemon  # noqa: E402, F401 - the fixture, for explain --daemon
from programs import (  # noqa: E402
    ACCOUNTS,
    CALLER,
    COUNTER,
    COUNTER_ACTORS,
    CRASHER,
    LEDGER_DB,
    ORM,
    PARSER_ACTORS,
    PRICER,
    REPORTER_ACTORS,
    SERVICE,
    SHOP_DB,
    THREADED_CALLS,
    WORKER,
    elixirscope,
    external_service,
    record,
)
from servers import serving  # noqa: E402

VALUES = {"ELIXIRSCOPE_INTEGRATIONS__DB_PARAMETERS": "values"}
ACTORS = {"counter_actors": COUNTER_ACTORS, "parser_actors": PARSER_ACTORS}


def shop(data: Path) -> Path:
    """The bundled shop: one crash of its stock keeper, one restart; only its main module
    traced (its actors' module, ``shopkeeping``, is not: the crash's site comes from the
    actor capture)."""
    done = elixirscope("run", "--data-dir", str(data), "--trace", "elixirscope.examples.shop",
                       "-m", "elixirscope.examples.shop", cwd=data.parent)
    assert done.returncode == 0, done.stderr
    return data


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Scenario name -> its data dir. ``*_clean`` ones hold no defect."""
    where = tmp_path_factory.mktemp("ai-recordings")
    (where / "reporter_actors.py").write_text(REPORTER_ACTORS)  # the service's, written once
    jobs = {
        "n_plus_one": lambda: record(where, "shop_db", SHOP_DB, "n+1", data="n_plus_one", env=VALUES),
        "n_plus_one_clean": lambda: record(where, "shop_db", SHOP_DB, "clean",
                                           data="n_plus_one_clean", env=VALUES),
        "row_writes": lambda: record(where, "ledger_db", LEDGER_DB, "rows", data="row_writes",
                                     env=VALUES),
        "row_writes_clean": lambda: record(where, "ledger_db_ok", LEDGER_DB, "bulk",
                                           data="row_writes_clean", env=VALUES),
        "orm": lambda: record(where, "orm", ORM, "lazy", data="orm", env=VALUES),
        "orm_clean": lambda: record(where, "orm", ORM, "eager", data="orm_clean", env=VALUES),
        "orm_helper": lambda: record(where, "orm_helper", ORM, "helper", data="orm_helper"),
        "row_race": lambda: record(where, "accounts", ACCOUNTS, "race", data="row_race", env=VALUES),
        "row_race_redacted": lambda: record(where, "accounts", ACCOUNTS, "race",
                                            data="row_race_redacted"),
        "row_race_clean": lambda: record(where, "accounts", ACCOUNTS, "clean",
                                         data="row_race_clean", env=VALUES),
        "actor_race": lambda: record(where, "counter", COUNTER, "race", data="actor_race",
                                     modules=ACTORS),
        "actor_race_clean": lambda: record(where, "counter", COUNTER, "atomic",
                                           data="actor_race_clean", modules=ACTORS),
        "mailbox": lambda: record(where, "counter", COUNTER, "flood", data="mailbox",
                                  modules=ACTORS),
        "mailbox_clean": lambda: record(where, "counter", COUNTER, "calls", data="mailbox_clean",
                                        modules=ACTORS),
        "crash_loop": lambda: record(where, "crasher", CRASHER, data="crash_loop", modules=ACTORS),
        "crash_loop_processes": lambda: record(where, "crasher_mp", CRASHER, "multiprocTCPBase",
                                               data="crash_loop_processes", modules=ACTORS),
        "crash_loop_clean": lambda: shop(where / "crash_loop_clean"),
        # each its own script: two jobs at once must not rewrite one file
        # the service's actors' module (reporter_actors, beside it) left out: a callback
        # whose module is not traced
        "service": lambda: record(where, "service", SERVICE, "bad", trace="__main__"),
        "service_clean": lambda: record(where, "service_ok", SERVICE, "clean",
                                        data="service_clean", trace="__main__"),
    }
    with serving(external_service()) as (base, _app), ThreadPoolExecutor(3) as pool:
        jobs["http"] = lambda: record(where, "caller", CALLER, base, "bad", data="http")
        jobs["http_clean"] = lambda: record(where, "caller", CALLER, base, "good", data="http_clean")
        jobs["http_threaded"] = lambda: record(where, "threaded_calls", THREADED_CALLS, base,
                                               data="http_threaded")
        for mode in ("loop", "at_once", "batch", "posts"):  # each its own script (see above)
            jobs[f"http_{mode}"] = lambda mode=mode: record(
                where, f"pricer_{mode}", PRICER, base, mode, data=f"http_{mode}")
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        # the latency runs one after another: each is the next one's baseline
        latency = where / "latency"
        for step in ("0", "0", "0.3"):
            record(where, "worker", WORKER, data="latency", env={"STEP_S": step})
        out = {name: f.result() for name, f in futures.items()}
    out["latency"] = latency
    return out
