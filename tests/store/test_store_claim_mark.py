"""A writer's claim reads an existing shard through only if it may have changed.

A writer closing cleanly marks the shard's lock file with what the file is (size,
modification time set 1 ns back, inode); the next claim clears the mark and skips
``PRAGMA quick_check`` while the file is still exactly that, with nothing in its
WAL. Any write since, by anyone and however soon, and the shard is checked through.
"""

from __future__ import annotations

import os

from elixirscope.store import EventStore
from elixirscope.store.check import check_store

PAGE = 8192


def _write(data_dir, recorder, producer: str = "p:1:1", batches: int = 40) -> str:
    """One writer appends ``batches`` batches and closes; its shard's path."""
    with EventStore.open(data_dir) as store:
        rec = recorder(producer=producer)
        for b in range(batches):
            for i in range(50):
                cid = f"c{b}-{i % 5}"
                rec.ret(rec.call("m.f", cid=cid), "m.f", cid=cid)
            store.append(rec.batch())
        path = store.shard_path
    assert path is not None
    return path


def _mark(path: str) -> bytes:
    with open(path.removesuffix(".sqlite3") + ".lock", "rb") as f:
        return f.read()


def _garbage_pages(path: str, pages: list[int]) -> None:
    with open(path, "r+b") as f:
        for page in pages:
            f.seek(page * PAGE)
            f.write(os.urandom(PAGE))


def test_a_clean_close_marks_the_lock_file_and_a_claim_clears_the_mark(tmp_path, recorder):
    path = _write(tmp_path, recorder)
    st = os.stat(path)
    assert _mark(path) == f"closed clean {st.st_size} {st.st_mtime_ns} {st.st_ino}\n".encode()
    with EventStore.open(tmp_path) as writer:
        assert writer.shard_path == path
        assert _mark(path) == b""  # held by a writer: nothing vouched for
    assert _mark(path).startswith(b"closed clean ")


def test_a_write_right_after_the_clean_close_is_still_checked_through(tmp_path, recorder):
    """Garbage written at once (within the file system's clock tick, where it is coarse)
    changes the modification time all the same: the claim finds the damage."""
    path = _write(tmp_path, recorder)
    pages = os.path.getsize(path) // PAGE
    _garbage_pages(path, [pages // 2, pages - 2])
    with EventStore.open(tmp_path) as writer:  # damaged: quarantined, a fresh shard instead
        assert writer.shard_path == path
    [moved] = (tmp_path / "quarantine").iterdir()
    assert (moved / "shard-000.sqlite3").exists()


def test_a_shard_as_its_writer_left_it_is_not_read_through(tmp_path, recorder):
    """The mark is trusted: damage that leaves size, time and inode as marked (nothing
    a write does) is not looked for by the claim; ``store check`` still reads all."""
    path = _write(tmp_path, recorder, batches=120)
    st = os.stat(path)
    pages = st.st_size // PAGE
    _garbage_pages(path, [pages // 2])
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # as marked
    with EventStore.open(tmp_path) as writer:
        assert writer.shard_path == path
    assert not (tmp_path / "quarantine").exists()
    assert not check_store(tmp_path)["ok"]


def test_a_shard_with_frames_in_its_wal_is_checked_through(tmp_path, recorder):
    """A write that has not reached the file yet (a WAL with frames) voids the mark."""
    path = _write(tmp_path, recorder)
    mark = _mark(path)
    with open(path + "-wal", "wb") as f:  # no valid WAL header: damage the cheap check names
        f.write(os.urandom(100))
    with EventStore.open(tmp_path) as writer:
        assert writer.shard_path == path
    [moved] = (tmp_path / "quarantine").iterdir()
    assert mark and "write-ahead log" in (moved / "reason.json").read_text()
