"""Chain ids in the key index: a bijection, one process's chains in order, found whole
and shortened, in shards written before as well."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from recorded_batches import Recorder

from elixirscope.capture._pyhooks import chain_ids
from elixirscope.store import EventStore
from elixirscope.store.chain_keys import (
    KIND_CHAIN,
    _numbers_py,
    chain_numbers,
    correlation_keys,
    index_key,
    shown,
)

HEX32 = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)


@given(st.one_of(HEX32, st.text(max_size=40)))
def test_a_key_is_shown_as_the_id_it_was(cid: str) -> None:
    kind, value = index_key(cid)
    assert shown(kind, value) == cid
    assert (kind, value) in correlation_keys(cid)


@given(HEX32, HEX32)
def test_two_ids_never_share_a_key(a: str, b: str) -> None:
    assert (index_key(a) == index_key(b)) == (a == b)


def test_only_chain_ids_are_chain_keys() -> None:
    made = chain_ids()
    assert index_key(made())[0] == KIND_CHAIN
    for cid in ("req-42", "", "A" * 32, "0" * 31, "g" * 32, "0" * 33, uuid.uuid4().hex):
        assert index_key(cid) == ("c", cid)  # a random 32-hex id: not a small chain number
        assert correlation_keys(cid) == [("c", cid)]


def test_one_process_s_chains_are_keyed_in_the_order_made() -> None:
    made = chain_ids()
    ids = [made() for _ in range(2000)]
    assert len({i[:6] for i in ids}) > 1900  # shown: they differ in their first characters
    keys = [index_key(i) for i in ids]
    assert keys == sorted(keys) and {k for k, _ in keys} == {KIND_CHAIN}
    assert len({v[:16] for _, v in keys}) == 1  # one process, one place
    assert int(keys[0][1][16:], 16) == 1 and int(keys[-1][1][16:], 16) == 2000


@given(st.integers(0, 2**64 - 1), st.integers(1, 3000), st.text(alphabet="0123456789abcdef", max_size=3))
def test_chain_numbers_are_those_whose_id_starts_so(process: int, hi: int, prefix: str) -> None:
    want = [n for n in range(1, hi + 1) if shown(KIND_CHAIN, f"{process:016x}{n:016x}").startswith(prefix)]
    assert chain_numbers(process, 1, hi, prefix) == want
    assert _numbers_py(process, 1, hi, int(prefix, 16) if prefix else 0, len(prefix)) == want


def test_a_recorded_run_s_chain_ids_are_keyed_in_the_order_made(tmp_path: Path) -> None:
    """The ids the capture makes (C when built), read back from a real recording."""
    (tmp_path / "prog.py").write_text("def leaf(i):\n    return i\n\n\nfor i in range(300):\n    leaf(i)\n")
    done = subprocess.run(
        [sys.executable, "-m", "elixirscope", "run", "--data-dir", "data", "--trace", "__main__.leaf", "prog.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    with EventStore.open(tmp_path / "data", readonly=True) as store:
        ids = [stored.event.correlation_id for stored in store.query(type="call", limit=None)]
        assert len(ids) == 300 and len(set(ids)) == 300
        keys = [index_key(i) for i in ids]
        assert keys == sorted(keys) and {k for k, _ in keys} == {KIND_CHAIN}
        assert store.correlation_ids(ids[7][:5], limit=300) == sorted(i for i in ids if i.startswith(ids[7][:5]))


def _record(store: EventStore, rec: Recorder, cids: list[str]) -> None:
    for cid in cids:
        call = rec.call("m.f", cid=cid)
        rec.ret(call, "m.f", cid=cid)
    store.append(rec.batch())


def _expected(ids: list[str], prefix: str, limit: int = 50) -> list[str]:
    return sorted(i for i in ids if i.startswith(prefix))[:limit]


def test_a_store_finds_its_correlation_ids_whole_and_shortened(tmp_path: Path) -> None:
    one, other = chain_ids(), chain_ids()  # two processes
    ids = [one() for _ in range(40)] + [other() for _ in range(40)]
    ids += ["req-7", "req-77", uuid.uuid4().hex, "0" * 32]
    rec = Recorder()
    with EventStore.open(tmp_path) as store:
        _record(store, rec, ids)
        for cid in ids:
            assert {se.event.correlation_id for se in store.query(correlation_id=cid)} == {cid}
            assert store.correlation_ids(cid) == _expected(ids, cid, 10)
            for short in (cid[:1], cid[:3], cid[:8], cid[:20]):
                assert store.correlation_ids(short, limit=50) == _expected(ids, short), short
        assert store.correlation_ids("req-7") == ["req-7", "req-77"]
        assert store.correlation_ids("", limit=5) == sorted(ids)[:5]
        assert store.correlation_ids("zz") == [] and store.correlation_ids("0" * 33) == []
        assert store.indexed_values("correlation", ids[0][:2]) == _expected(ids, ids[0][:2], 1000)


def test_a_shard_written_before_finds_its_ids_and_takes_new_ones(tmp_path: Path) -> None:
    """A data dir from an earlier version: every correlation id a ``c`` key as shown. Its
    ids are found, whole and shortened, and those recorded since as chain keys too."""
    made = chain_ids()
    first, later = [made() for _ in range(10)], [made() for _ in range(10)]
    rec = Recorder()
    with EventStore.open(tmp_path) as store:
        _record(store, rec, first)
        path = store.shard_path
    assert path is not None
    old = sqlite3.connect(path)  # as an earlier version wrote it
    old.create_function("shown", 1, lambda v: shown(KIND_CHAIN, v), deterministic=True)
    old.execute("UPDATE key SET kind = 'c', value = shown(value) WHERE kind = ?", (KIND_CHAIN,))
    old.commit()
    old.close()
    with EventStore.open(tmp_path) as store:
        _record(store, rec, later + first[:2])  # new ids, and two it holds already
        for cid in first + later:
            assert {se.event.correlation_id for se in store.query(correlation_id=cid)} == {cid}
            assert store.correlation_ids(cid[:12]) == _expected(first + later, cid[:12], 10)
        assert len(store.query(correlation_id=first[0], limit=None)) == 4  # before and since
    from elixirscope.store.check import check_store

    assert check_store(tmp_path)["ok"]  # either kind of key is its events' index entry
