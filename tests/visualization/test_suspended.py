"""The timeline's calls say their self time and their time suspended at awaits and
yields, each suspension where it was (drawn hatched) and the lines it waited at most (the
selection pane shows them), from a real recording of coroutines queuing on a lock,
through the cinema's API."""

from __future__ import annotations

import textwrap

from cinema_recordings import recorded_api

QUEUED = textwrap.dedent(
    """
    import asyncio

    LOCK = asyncio.Lock()


    async def reserve(i):
        async with LOCK:
            await asyncio.sleep(0.1)
        return i


    async def main():
        return await asyncio.gather(*(reserve(i) for i in range(3)))


    print(asyncio.run(main()))
    """
)


def test_a_call_s_slice_has_its_self_and_suspended_time(tmp_path) -> None:
    with recorded_api(tmp_path, "queued.py", **{"queued.py": QUEUED}) as (client, run):
        window = client.get(f"/api/runs/{run}/timeline").json()
        flame = client.get(f"/api/runs/{run}/calltree").json()["nodes"]
    reserves = sorted((s for s in window["slices"] if s["function"].endswith("reserve")),
                      key=lambda s: int(s["end"]) - int(s["start"]))
    assert len(reserves) == 3
    lock = QUEUED.splitlines().index("    async with LOCK:") + 1
    for n, s in enumerate(reserves):  # the n-th waited n x 0.1 s for the lock, then slept
        duration = int(s["end"]) - int(s["start"])
        assert s["suspended"] >= (n + 1) * 100_000_000 * 0.95
        assert s["self"] + s["suspended"] <= duration and s["self"] < duration / 10
        # each suspension drawn (hatched) where it was, after the call's start, in order
        gaps = s["gaps"]
        assert sum(b - a for a, b in gaps) == s["suspended"]
        assert all(0 <= a <= b <= duration for a, b in gaps) and gaps == sorted(gaps)
        # where it waited: the lock's line (its enter, and its exit), then the sleep's
        at = {line: ns for line, ns, awaited in s["waited_at"] if awaited}
        assert at.get(lock + 1, 0) >= 95_000_000 and (n == 0 or at[lock] >= n * 95_000_000)

    # the flame graph: a call's time suspended with no recorded callee under it is a
    # node of its own, so its widths add up and waiting is not taken for work
    (reserve,) = [n for n in flame if n["function"].endswith("reserve")]
    kids = [n for n in flame if n["parent"] == reserve["id"]]
    assert [k["function"] for k in kids] == ["(suspended)"] and kids[0]["suspended"]
    assert reserve["self"] + kids[0]["total"] == reserve["total"]
    assert kids[0]["total"] == sum(s["suspended"] for s in reserves)
    assert all(n["self"] == 0 and n["calls"] == 0 for n in flame if n.get("suspended"))
