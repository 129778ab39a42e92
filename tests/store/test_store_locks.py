"""A process that writes a shard and also opens the store to read keeps SQLite's locks.

Closing any descriptor of a file drops every POSIX lock the process holds on it.
A reader that opened the WAL index (``-shm``) of the shard its own process writes
used to drop the writer's "I am using this index" lock (byte 128 of ``-shm``):
the next process to open the shard then believed it was alone and truncated the
index under the writer's mapped pages - a SIGBUS in the writer's next append, or
a reader rebuilding the index while the writer appended (an acknowledged batch
missing from a read).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from recorded_batches import Recorder

from elixirscope.store import EventStore

# Exits 0 if it can take the exclusive lock SQLite's users hold shared on the
# index (nobody uses the shard), 1 if a user holds it.
_TRY_EXCLUSIVE = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)
    except OSError:
        sys.exit(1)
    sys.exit(0)
    """
)


def _index_in_use(shm: Path) -> bool:
    done = subprocess.run([sys.executable, "-c", _TRY_EXCLUSIVE, str(shm)], timeout=60)
    return done.returncode == 1


def test_reading_the_store_in_the_writers_process_keeps_the_writers_index_lock(
    tmp_path: Path,
) -> None:
    recorder = Recorder()
    with EventStore.open(tmp_path) as writer:
        recorder.call("m.f")
        writer.append(recorder.batch())
        shms = list(tmp_path.rglob("*.sqlite3-shm"))
        assert len(shms) == 1
        assert _index_in_use(shms[0])
        with EventStore.open(tmp_path, readonly=True) as reader:
            assert reader.stats()["events"] == 1
        assert _index_in_use(shms[0]), "the writer lost its lock on the shard's WAL index"
        recorder.call("m.g")
        writer.append(recorder.batch())
    with EventStore.open(tmp_path, readonly=True) as reader:
        assert reader.stats()["events"] == 2
