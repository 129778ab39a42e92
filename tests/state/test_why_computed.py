"""``why`` of a number a callback computed from the field's previous value: a balance less
an amount the message carried is said as that sum, and the amount is followed on back to
where it was made; a count moved on by one says so and stops there."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared programs

from auction_program import elixirscope  # noqa: E402

ACTORS = textwrap.dedent(
    """
    from elixirscope.runtime import GenServer, NoReply, Reply


    class Account(GenServer):
        def init(self, opening):
            return {"balance": opening, "moves": 0}

        def handle_call(self, request, from_, state):
            op, amount = request
            state["balance"] += amount if op == "deposit" else -amount
            return Reply(state["balance"], state)

        def handle_cast(self, message, state):
            state["moves"] += 1
            return state


    class Teller(GenServer):
        def init(self, account):
            return {"account": account, "asked": {}}

        def handle_call(self, request, from_, state):
            ref = self.call_async(state["account"], ("withdraw", request["amount"]))
            state["asked"][ref] = (request["amount"], from_)
            return NoReply(state)

        def handle_info(self, result, state):
            _, from_ = state["asked"].pop(result.ref)
            self.reply(from_, result.value)
            return state
    """
)

MAIN = textwrap.dedent(
    """
    from actors import Account, Teller
    from elixirscope.runtime import Runtime

    with Runtime("simpleSystemBase") as rt:
        account = rt.start(Account, 100, path="account")
        teller = rt.start(Teller, account, path="teller")
        rt.call(account, ("deposit", 25))
        print("left", rt.call(teller, {"amount": 45}))
        rt.cast(account, "moved")
        rt.cast(account, "moved")
        rt.call(account, ("deposit", 0))
    """
)


def _steps(done) -> list[str]:
    assert done.returncode == 0, done.stderr
    return [line.strip().removeprefix("<- ").split("  ", 1)[1]
            for line in done.stdout.splitlines()[1:]]


def test_why_says_a_sum_of_the_previous_value_and_follows_the_amount(tmp_path: Path) -> None:
    (tmp_path / "actors.py").write_text(ACTORS)
    (tmp_path / "main.py").write_text(MAIN)
    done = elixirscope("run", "--data-dir", "data", "main.py", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == "left 80\n", done.stderr
    steps = _steps(elixirscope("why", "--data-dir", "data", "account", "balance",
                               cwd=tmp_path))
    assert steps[0].startswith("account.balance = 80: set by handle_call(('withdraw', 45))")
    assert steps[1] == (
        "computed by account.handle_call from its previous value: 125 (change 2) - 45, "
        "a number the message it handled carries")
    assert steps[2].startswith("sent by teller from actors.Teller.handle_call")
    assert steps[2].endswith(": ('withdraw', 45)")
    # the call's ref is a uuid: `asked.<ref>[0]`, or `asked['<ref>'][0]` when it begins with a digit
    assert steps[3].startswith("teller.asked"), steps
    assert "[0] = 45: set by handle_call({'amount': 45})" in steps[3], steps
    assert steps[4:] == ["sent by a program outside any actor: {'amount': 45}",
                         "made in the sending code (not an actor's state)"]

    moves = _steps(elixirscope("why", "--data-dir", "data", "account", "moves", cwd=tmp_path))
    assert moves[0].startswith("account.moves = 2: set by handle_cast('moved')")
    assert moves[1:] == [
        "computed by account.handle_cast from its previous value: 1 (change 4) + 1"]
