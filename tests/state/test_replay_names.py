"""``replay`` says the actor addresses its steps show as ``state`` does: named by the actors
they reached (``<actor Clerk@ActorAddr-/A~a~b>``), over a data dir and over the daemon's
reads alike. A real Thespian program (``address_shop``) recorded by ``elixirscope run``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from address_shop import record_shop  # noqa: E402

from elixirscope.state.recorded import StateRecording  # noqa: E402
from elixirscope.state.service import StateReads  # noqa: E402
from elixirscope.state.stepping import Replay, Source, local_reader  # noqa: E402

TELLER = "<actor Teller@ActorAddr-/A~a>"
CLERK = "<actor Clerk@ActorAddr-/A~a~b>"
STEPS = ["next", "show clerk", "prev", "show tellers", "goto 4", "show", "diff"]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_shop(tmp_path_factory.mktemp("shop"))


def stepped(source: Source, start: int, lines: list[str]) -> list[str]:
    said: list[str] = []
    replay = Replay(source, start, say=said.append)
    replay.where()
    for line in lines:
        replay.command(line)
    return said


def test_replay_over_a_data_dir_names_the_addresses_in_its_steps(shop: Path) -> None:
    said = stepped(Source(local_reader(StateRecording(shop)), "Ledger"), 2, STEPS)
    assert said[0] == (
        f"change 3/4  receiveMessage ('post', 25, {TELLER})\n"
        f"Ledger(total=35, tellers=[{TELLER}], clerk=None)"
    )
    # a message longer than the report's first line shows: what it shows named, the rest as is
    assert said[1] == (
        f"change 4/4  receiveMessage ('meet', {CLERK}, 'the clerk who keeps the books from now"
        f" on, hired by the teller')\nLedger(total=35, tellers=[{TELLER}], clerk={CLERK})"
    )
    assert said[2] == CLERK
    assert said[4] == f"[{TELLER}]"
    assert said[6] == f"Ledger(total=35, tellers=[{TELLER}], clerk={CLERK})"
    assert said[7] == f"~ clerk: None -> {CLERK}"
    assert not [line for line in said if "<ActorAddr-" in line]


def test_back_is_prev_and_an_empty_line_repeats_the_last_step(shop: Path) -> None:
    """As in gdb and pdb: Enter repeats the last step (n or p, with its count); ``b`` and
    ``back`` go back as ``p`` does; a count that is no number is said, not a traceback."""
    source = Source(local_reader(StateRecording(shop)), "Ledger")
    said = stepped(source, 0, ["", "next", "", "back", "", "b 1", "next x", "show"])
    heads = [line.split("\n")[0] for line in said]
    assert [h.split()[1] for h in heads[:5]] == ["1/4", "2/4", "3/4", "2/4", "1/4"], heads
    assert heads[5].endswith(": changes 1 to 4, not 0")  # back past the first change: said
    assert heads[6] == "next takes a number of changes, e.g. next 3; got 'x'"
    assert said[7] == said[0].split("\n")[1]  # still at change 1: nothing moved


def test_an_address_no_message_reached_stays_as_recorded(shop: Path) -> None:
    (said,) = stepped(Source(local_reader(StateRecording(shop)), "Teller"), 1, [])
    assert said == (
        "change 2/6  receiveMessage ('deposit', 10)\n"
        "Teller(ledger=<actor Ledger@ActorAddr-/A~a~a>, asker=<ActorAddr-System:ExternalRequester>)"
    )


def test_replay_over_the_daemons_reads_says_what_it_says_over_the_data_dir(shop: Path) -> None:
    daemon = stepped(Source(StateReads(shop).answer, "Ledger"), 2, STEPS)
    assert daemon == stepped(Source(local_reader(StateRecording(shop)), "Ledger"), 2, STEPS)
    assert CLERK in daemon[1]


def test_the_replay_command_prints_the_names(shop: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "elixirscope",
            "replay",
            "--data-dir",
            str(shop),
            "Ledger",
            "--change",
            "4",
        ],
        input="show clerk\nquit\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [
        f"Ledger(total=35, tellers=[{TELLER}], clerk={CLERK})",
        CLERK,
    ]
