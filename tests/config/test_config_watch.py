"""FileWatcher: in-place writes, atomic replaces, a file briefly or really gone."""

from __future__ import annotations

import os

import pytest

from elixirscope.config import FileWatcher


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_nothing_changed_is_false_every_time(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("a = 1\n")
    watcher = FileWatcher(f, 0.5)
    assert (watcher.changed(), watcher.changed()) == (False, False)
    assert repr(watcher) == f"FileWatcher({str(f)!r}, interval=0.5)"


def test_an_in_place_write_is_seen_once(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("a = 1\n")
    watcher = FileWatcher(f)
    inode = os.stat(f).st_ino
    with open(f, "w") as out:
        out.write("a = 22\n")
    assert os.stat(f).st_ino == inode
    assert watcher.changed() is True
    assert watcher.changed() is False


def test_a_same_size_write_is_seen_by_its_mtime(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("a = 1\n")
    watcher = FileWatcher(f)
    st = os.stat(f)
    f.write_text("a = 2\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert watcher.changed() is True


def test_an_atomic_replace_is_seen_by_its_inode_even_with_same_size_and_mtime(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("a = 1\n")
    watcher = FileWatcher(f)
    st = os.stat(f)
    tmp = tmp_path / "c.toml.tmp"
    tmp.write_text("a = 2\n")
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, f)
    assert (os.stat(f).st_mtime_ns, os.stat(f).st_size) == (st.st_mtime_ns, st.st_size)
    assert watcher.changed() is True
    assert watcher.changed() is False


def test_a_file_briefly_missing_is_waited_for(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("a = 1\n")
    clock = Clock()
    watcher = FileWatcher(f, 1.0, clock=clock)
    f.unlink()
    assert watcher.changed() is False
    clock.now += 0.5
    assert watcher.changed() is False
    f.write_text("a = 333\n")
    assert watcher.changed() is True
    assert watcher.changed() is False


def test_a_file_gone_longer_than_the_grace_is_reported_once_then_its_return(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("a = 1\n")
    clock = Clock()
    watcher = FileWatcher(f, 1.0, grace=2.0, clock=clock)
    f.unlink()
    assert watcher.changed() is False
    clock.now += 1.0
    assert watcher.changed() is False
    clock.now += 1.0
    assert watcher.changed() is True
    clock.now += 5.0
    assert watcher.changed() is False
    f.write_text("a = 1\n")
    assert watcher.changed() is True


def test_a_file_missing_from_the_start_is_reported_when_it_appears(tmp_path):
    f = tmp_path / "later.toml"
    watcher = FileWatcher(f, grace=0)
    assert watcher.changed() is False
    f.write_text("a = 1\n")
    assert watcher.changed() is True


def test_a_bad_interval_says_what_to_pass():
    with pytest.raises(
        ValueError, match=r"^Expected `interval > 0` \(seconds between polls\), got `0`"
    ):
        FileWatcher("x.toml", 0)
