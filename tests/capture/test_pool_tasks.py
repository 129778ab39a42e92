"""Work handed to a process pool: the ChainedTask a pool carries, and what is wrapped.

The linking itself, through real pools under ``elixirscope run``, is in
``tests/cli/test_run_children.py``; here the parts that need no recording.
"""

import multiprocessing.pool
import pickle
from concurrent.futures import ProcessPoolExecutor

from elixirscope.capture import pool_tasks
from elixirscope.capture.context import current_correlation_id


def chain_seen(x):
    return x, current_correlation_id()


def test_a_chained_task_runs_its_function_under_its_chain_and_puts_the_old_one_back():
    before = current_correlation_id()
    task = pickle.loads(pickle.dumps(pool_tasks.ChainedTask(chain_seen, "c" * 32)))
    assert task(7) == (7, "c" * 32)
    assert current_correlation_id() == before


def test_outside_a_recorded_call_the_function_is_handed_over_as_it_was():
    assert pool_tasks.chained(chain_seen) is chain_seen


def test_install_wraps_the_pools_and_uninstall_puts_them_back():
    methods = [
        (multiprocessing.pool.Pool, name)
        for name in ("apply_async", "_map_async", "imap", "imap_unordered")
    ]
    methods.append((ProcessPoolExecutor, "submit"))
    before = {m: cls.__dict__[m] for cls, m in methods}
    pool_tasks.install()
    try:
        assert pool_tasks.installed()
        assert all(cls.__dict__[m] is not before[m] for cls, m in methods)
        assert all(cls.__dict__[m].__wrapped__ is before[m] for cls, m in methods)
        with multiprocessing.pool.ThreadPool(1) as pool:  # outside recorded calls: as it was
            assert pool.apply(chain_seen, (3,)) == (3, None)
    finally:
        pool_tasks.uninstall()
    assert not pool_tasks.installed()
    assert {m: cls.__dict__[m] for cls, m in methods} == before
