"""Hybrid logical clock: strictly increasing across threads, observe merges remote time."""

from __future__ import annotations

import threading
import time

import pytest

from elixirscope.capture import _select
from elixirscope.capture.hlc import PyHLC

IMPLS = [pytest.param(PyHLC, id="python")]
if _select._module is not None:
    IMPLS.append(pytest.param(_select._module.HLC, id="c"))


@pytest.fixture(params=IMPLS)
def clock(request):
    return request.param()


def test_now_is_wall_time_and_strictly_increasing(clock):
    before = time.time_ns()
    stamps = [clock.now() for _ in range(10000)]
    assert stamps == sorted(set(stamps))  # strictly increasing, no repeats
    assert before <= stamps[0] <= time.time_ns() + 10_000
    assert clock.last == stamps[-1]


def test_unique_across_threads(clock):
    out: list[list[int]] = [[] for _ in range(4)]

    def work(i: int) -> None:
        out[i].extend(clock.now() for _ in range(5000))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    merged = [ts for stamps in out for ts in stamps]
    assert len(set(merged)) == len(merged)
    for stamps in out:
        assert stamps == sorted(stamps)


def test_observe_orders_after_a_remote_timestamp_from_the_future(clock):
    local = clock.now()
    remote = local + 10**12  # a node whose clock is 1000 s ahead
    merged = clock.observe(remote)
    assert merged > remote and merged > local
    assert clock.now() > merged  # everything after sorts after the remote event


def test_observe_of_the_past_still_advances(clock):
    a = clock.now()
    assert clock.observe(1) > a


@pytest.mark.parametrize("bad", [-1, 1.5, "1", None])
def test_observe_rejects_bad_input(clock, bad):
    with pytest.raises(ValueError, match=r"Expected `remote_ts` an int >= 0.*HLC.observe"):
        clock.observe(bad)
