"""A plain Thespian program whose values hold actor addresses, recorded by ``elixirscope run``:
a teller's state holds its ledger's address, the ledger's the tellers' and then a clerk's,
messages carry them (one longer than a state report's first line shows), and a traced
function takes one and returns it. On ``simpleSystemBase`` (no admin port), shut down at
the end. ``live``: it waits for a line before hiring the clerk and for another before it
ends, so a run still recording meets a new address."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SHOP = """
import sys

from thespian.actors import Actor, ActorSystem


def hand_over(ledger, amount):
    return ledger


class Clerk(Actor):
    def receiveMessage(self, msg, sender):
        pass


class Ledger(Actor):
    def __init__(self):
        super().__init__()
        self.total = 0
        self.tellers = []
        self.clerk = None

    def receiveMessage(self, msg, sender):
        if isinstance(msg, tuple) and msg[0] == "post":
            _, amount, teller = msg
            self.total += amount
            if teller not in self.tellers:
                self.tellers.append(teller)
            self.send(teller, ("posted", self.total))
        elif isinstance(msg, tuple) and msg[0] == "meet":
            self.clerk = msg[1]


class Teller(Actor):
    def __init__(self):
        super().__init__()
        self.ledger = None
        self.asker = None

    def receiveMessage(self, msg, sender):
        if isinstance(msg, tuple) and msg[0] == "deposit":
            if self.ledger is None:
                self.ledger = self.createActor(Ledger)
            self.asker = sender
            self.send(hand_over(self.ledger, msg[1]), ("post", msg[1], self.myAddress))
        elif isinstance(msg, tuple) and msg[0] == "posted":
            self.send(self.asker, msg[1])
        elif msg == "hire":
            clerk = self.createActor(Clerk)
            self.send(clerk, "start")
            note = "the clerk who keeps the books from now on, hired by the teller"
            self.send(self.ledger, ("meet", clerk, note))
            self.send(sender, "hired")


live = sys.argv[1:] == ["live"]
system = ActorSystem("simpleSystemBase")
try:
    teller = system.createActor(Teller)
    print([system.ask(teller, ("deposit", n), 10) for n in (10, 25)], flush=True)
    if live:
        sys.stdin.readline()
    print(system.ask(teller, "hire", 10), flush=True)
    if live:
        sys.stdin.readline()
finally:
    system.shutdown()
"""


def command(data: Path, script: Path, *args: str) -> list[str]:
    """``elixirscope run`` recording its functions and callbacks with their arguments."""
    return [
        sys.executable,
        "-m",
        "elixirscope",
        "run",
        "--data-dir",
        str(data),
        "--trace",
        "__main__.*",
        "--level",
        "args",
        str(script),
        *args,
    ]


def record_shop(where: Path) -> Path:
    """SHOP recorded into ``where/data`` (returned), run to its end."""
    script = where / "shop.py"
    script.write_text(SHOP)
    data = where / "data"
    done = subprocess.run(
        command(data, script),
        capture_output=True,
        text=True,
        cwd=where,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[10, 35]\nhired\n", done.stdout
    return data


def start_shop(where: Path) -> tuple[Path, subprocess.Popen]:
    """SHOP started live, recording into ``where/data``: it waits to hire the clerk."""
    script = where / "shop.py"
    script.write_text(SHOP)
    data = where / "data"
    shop = subprocess.Popen(
        command(data, script, "live"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=where,
    )
    return data, shop
