"""What ``history`` and ``diff-state`` say that a reader would otherwise miss: a field the
actor never had (named, with the fields it has, closest first), and a restart between the
two moments a diff compares; and that a read command refuses a data dir that is not one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from auction_program import elixirscope, record  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return record(tmp_path_factory.mktemp("auction"))


def test_history_of_a_field_never_there_names_the_fields(data: Path) -> None:
    done = elixirscope("history", "--data-dir", str(data), "room", "--field", "hihg")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (  # its 8th: terminate, at the runtime's shutdown
        "elixirscope history: auction/room has no hihg in any of its 8 changes;"
        " auction/room has: high, bids\n"
    )


def test_why_of_a_missing_field_names_the_fields_too(data: Path) -> None:
    """An error, as history's: exit status 1, on stderr (it said so on stdout with 0)."""
    done = elixirscope("why", "--data-dir", str(data), "room", "bidz")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        "elixirscope why: auction/room has no bidz after change 8; auction/room has: bids, high\n"
    )


def test_history_of_a_real_field_is_unchanged(data: Path) -> None:
    done = elixirscope("history", "--data-dir", str(data), "room", "--field", "high")
    assert done.returncode == 0 and done.stdout.startswith("auction/room.high: ")


def test_diff_state_across_a_restart_says_so_first(data: Path) -> None:
    done = elixirscope("diff-state", "--data-dir", str(data), "room", "before-crash", "7")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].startswith("! restarted in between: change 6 (")
    assert "is its init after it exited at" in lines[1]
    assert "(exception builtins.ValueError: invalid literal for int() with base 10: 'lots')" in (
        lines[1])
    report = json.loads(elixirscope("diff-state", "--data-dir", str(data), "room", "7", "2",
                                    "--json").stdout)
    (restart,) = report["restarts"]
    assert restart["change"] == 6 and restart["reason"].startswith("exception builtins.ValueError")
    assert restart["exit_ts"] <= restart["ts"]


def test_diff_state_within_one_life_says_nothing_more(data: Path) -> None:
    done = elixirscope("diff-state", "--data-dir", str(data), "room", "2", "3", "--json")
    assert json.loads(done.stdout)["restarts"] == []


@pytest.mark.parametrize("command", [
    ("summary",), ("runs",), ("events",), ("query", "calls"), ("state", "room"),
    ("history", "room"), ("diff-state", "room", "1", "2"), ("why", "room", "high"),
    ("calltree", "abc"),
])
def test_a_read_refuses_a_data_dir_that_is_not_there_or_a_file(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    missing = tmp_path / "nodata"
    done = elixirscope(command[0], "--data-dir", str(missing), *command[1:])
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"elixirscope {command[0]}: --data-dir {missing}: no such directory; nothing was"
        f" recorded there (record with `elixirscope run --data-dir {missing} PROGRAM`)\n"
    )
    assert not missing.exists()
    a_file = tmp_path / "app.py"
    a_file.write_text("print('hi')\n")
    done = elixirscope(command[0], "--data-dir", str(a_file), *command[1:])
    assert done.returncode == 2 and done.stderr == (
        f"elixirscope {command[0]}: --data-dir {a_file} is a file, not a data dir: give the"
        " directory `elixirscope run --data-dir DIR` recorded into\n"
    )


def test_an_empty_data_dir_still_says_nothing_is_recorded(tmp_path: Path) -> None:
    done = elixirscope("summary", "--data-dir", str(tmp_path))
    assert done.returncode == 0 and done.stdout == f"(nothing recorded under {tmp_path} yet)\n"
    done = elixirscope("runs", "--data-dir", str(tmp_path))
    assert done.returncode == 0 and "no runs recorded" in done.stdout


def test_why_follows_a_pub_sub_delivery_back_to_its_publish(data: Path) -> None:
    """A subscriber's handle_info of a publication: why goes from its change to the publish
    (the registry's delivery carries the message id), and on into the publisher's state."""
    done = elixirscope("why", "--data-dir", str(data), "watcher.1", "inbox[0]")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "set by handle_info({'bid': 100})" in lines[1], done.stdout
    assert "published by auction/room from " in lines[2] and "on room:1 (the registry delivered it)" in lines[2], done.stdout
    assert "was not recorded being sent" not in done.stdout
