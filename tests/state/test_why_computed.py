"""``why`` of a number a callback computed from the field's previous value: a balance less
an amount the message carried is said as that sum, and the amount is followed on back to
where it was made; a count moved on by one says so and stops there."""

from __future__ import annotations

import math
import sys
import textwrap
from pathlib import Path

from hypothesis import assume, given
from hypothesis import strategies as st

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


TILL = textwrap.dedent(
    """
    from elixirscope.runtime import GenServer, Reply

    PRICES = {"tea": 4.5, "jam": 6.0}


    def price(basket):
        return sum(PRICES[item] * n for item, n in basket.items())


    def receipt(basket):
        return "R-" + "-".join(sorted(basket))


    class Till(GenServer):
        def init(self, args):
            return {"takings": 0.0, "last": None}

        def handle_call(self, basket, from_, state):
            state["takings"] += price(basket)
            state["last"] = receipt(basket)
            return Reply(state["takings"], state)
    """
)

TILL_MAIN = textwrap.dedent(
    """
    from till import Till
    from elixirscope.runtime import Runtime

    with Runtime("simpleSystemBase") as rt:
        till = rt.start(Till, None, path="till")
        rt.call(till, {"tea": 2})
        print("takings", rt.call(till, {"tea": 1, "jam": 2}))
    """
)


def test_why_names_the_call_whose_value_the_callback_stored_or_added(tmp_path: Path) -> None:
    """A value a helper returned inside the callback: stored as it is, or added to the
    field's previous value — the helper's call is named, with its event id for calltree."""
    (tmp_path / "till.py").write_text(TILL)
    (tmp_path / "main.py").write_text(TILL_MAIN)
    done = elixirscope("run", "--data-dir", "data", "--level", "args", "main.py", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == "takings 25.5\n", done.stderr
    takings = _steps(elixirscope("why", "--data-dir", "data", "till", "takings", cwd=tmp_path))
    assert takings[0].startswith("till.takings = 25.5: set by handle_call(")
    assert takings[1].startswith(
        "computed by till.handle_call from its previous value: 9.0 (change 2) + 16.5, "
        "which till.price returned (call #"), takings
    last = _steps(elixirscope("why", "--data-dir", "data", "till", "last", cwd=tmp_path))
    assert last[1].startswith("made by till.handle_call: the value till.receipt returned (call #")
    call = last[1].rsplit("#", 1)[1].rstrip(")")
    tree = elixirscope("calltree", "--data-dir", "data", f"#{call}", cwd=tmp_path).stdout
    assert "receipt(basket={'tea': 1, 'jam': 2}) -> 'R-jam-tea'" in tree, tree


CART = textwrap.dedent(
    """
    from elixirscope.runtime import GenServer, Reply


    class Cart(GenServer):
        def init(self, args):
            return {"total": 0.0, "line": 0.0}

        def handle_call(self, request, from_, state):
            _, qty, price = request
            state["line"] = qty * price
            state["total"] += qty * price
            return Reply(state["total"], state)
    """
)

CART_MAIN = textwrap.dedent(
    """
    from cart import Cart
    from elixirscope.runtime import Runtime

    with Runtime("simpleSystemBase") as rt:
        cart = rt.start(Cart, None, path="cart")
        rt.call(cart, ("add", 2, 4.5))
        print("total", rt.call(cart, ("add", 3, 2.5)))
    """
)


def test_why_says_a_quantity_times_a_price_the_message_carried(tmp_path: Path) -> None:
    (tmp_path / "cart.py").write_text(CART)
    (tmp_path / "main.py").write_text(CART_MAIN)
    done = elixirscope("run", "--data-dir", "data", "main.py", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == "total 16.5\n", done.stderr
    total = _steps(elixirscope("why", "--data-dir", "data", "cart", "total", cwd=tmp_path))
    assert total[1] == (
        "computed by cart.handle_call from its previous value: 9.0 (change 2) + 7.5 "
        "(3 × 2.5, numbers the message it handled carries)"), total
    line = _steps(elixirscope("why", "--data-dir", "data", "cart", "line", cwd=tmp_path))
    assert line[1] == (
        "computed by cart.handle_call: 3 × 2.5, numbers the message it handled carries"), line


BASKET = textwrap.dedent(
    """
    from elixirscope.runtime import GenServer, Reply


    class Basket(GenServer):
        def init(self, args):
            return {"subtotal": 0.0, "tax_rate": 0.2, "tax": 0.0, "total": 0.0, "items": 0,
                    "mean": 0.0, "points": 0, "bonus": 15, "visits": 7, "savings": 10.0,
                    "growth": 1.5}

        def handle_call(self, item, from_, state):
            name, price = item
            state["subtotal"] += price
            state["items"] += 1
            state["mean"] = state["subtotal"] / state["items"]
            state["tax"] = round(state["subtotal"] * state["tax_rate"], 2)
            state["total"] = state["subtotal"] + state["tax"]
            return Reply(state["total"], state)

        def handle_cast(self, message, state):
            state["points"] += state["bonus"]
            state["visits"] = state["visits"] * 2 + 3
            state["savings"] *= state["growth"]
            return state
    """
)

BASKET_MAIN = textwrap.dedent(
    """
    from basket import Basket
    from elixirscope.runtime import Runtime

    with Runtime("simpleSystemBase") as rt:
        basket = rt.start(Basket, None, path="basket")
        rt.call(basket, ("tea", 4.5))
        print("total", rt.call(basket, ("jam", 8.0)))
        rt.cast(basket, "reward")
        rt.cast(basket, "reward")
    """
)


def test_why_names_the_fields_of_its_state_a_number_was_computed_from(tmp_path: Path) -> None:
    """A sum or product of the previous value and another field follows that field; a sum,
    product or quotient of two fields names both; an operand of another type (the total, 15.0, beside the
    bonus, 15) is no candidate for an int; other arithmetic still says it is not known."""
    (tmp_path / "basket.py").write_text(BASKET)
    (tmp_path / "main.py").write_text(BASKET_MAIN)
    done = elixirscope("run", "--data-dir", "data", "main.py", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == "total 15.0\n", done.stderr

    def why(field: str) -> list[str]:
        return _steps(elixirscope("why", "--data-dir", "data", "basket", field, cwd=tmp_path))

    points = why("points")
    assert points[0].startswith("basket.points = 30: set by handle_cast('reward'), change 5")
    assert points[1:] == [
        "computed by basket.handle_cast from its previous value: 15 (change 4) + "
        "basket.bonus (15), which it holds",
        "basket.bonus = 15: set by init(None), change 1",
        "made by basket.init (its first recorded state)",
    ], points
    assert why("total")[1:] == [
        "computed by basket.handle_call from basket.subtotal (12.5) + basket.tax (2.5), "
        "which it holds"]
    assert why("tax")[1:] == [
        "computed by basket.handle_call from basket.subtotal (12.5) × basket.tax_rate (0.2), "
        "which it holds"]
    assert why("mean")[1:] == [
        "computed by basket.handle_call from basket.subtotal (12.5) / basket.items (2), "
        "which it holds"]
    savings = why("savings")
    assert savings[1:] == [
        "computed by basket.handle_cast from its previous value: 15.0 (change 4) × "
        "basket.growth (1.5), which it holds",
        "basket.growth = 1.5: set by init(None), change 1",
        "made by basket.init (its first recorded state)",
    ], savings
    visits = why("visits")
    assert visits[1:] == [
        "made by basket.handle_cast (the message it handled does not carry it)"], visits


numbers = st.integers(-10**6, 10**6) | st.floats(-1e6, 1e6, allow_nan=False, width=32)


@given(before=numbers, n=numbers, op=st.sampled_from(["+", "-", "×", "/"]))
def test_the_operation_why_names_makes_the_value_and_one_is_always_named(before, n, op):
    """What `why` says a number was computed by (``before op n``) gives that number; and a
    sum, or a product that could be told from a copy (not by 0, 1 or -1, nor of 0), is
    always recognised."""
    from elixirscope.state.origin import _PRODUCTS, _SUMS, _apply, _operation, _same

    after = _apply(op, before, n)
    assume(after is not None and math.isfinite(after))
    said = _operation(before, after, n, _SUMS + _PRODUCTS)
    if said is not None:
        assert _same(_apply(said, before, n), after)
    if n and op in _SUMS:
        assert _operation(before, after, n, _SUMS) is not None
    if op in _PRODUCTS and n not in (0, 1, -1) and before:
        assert _operation(before, after, n, _PRODUCTS) is not None
