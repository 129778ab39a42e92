"""The shop's business logic and actors (importable: actor processes import them by name).

See :mod:`elixirscope.examples.shop` for the program that runs them.
"""

from __future__ import annotations

from typing import Any

from elixirscope.runtime import ChildSpec, GenServer, Reply, SupervisorSpec

__all__ = ["OrderDesk", "StockKeeper", "price_basket", "shop_spec"]

PRICES = {"tea": 4.5, "cake": 3.0, "scone": 2.25, "jam": 6.0}
BULK_THRESHOLD = 20.0


def price_of(item: str) -> float:
    return PRICES[item]


def line_total(item: str, quantity: int) -> float:
    return round(price_of(item) * quantity, 2)


def discount(subtotal: float) -> float:
    """Ten percent off a basket over the bulk threshold."""
    return round(subtotal * 0.1, 2) if subtotal > BULK_THRESHOLD else 0.0


def price_basket(basket: dict[str, int]) -> float:
    subtotal = sum(line_total(item, quantity) for item, quantity in basket.items())
    return round(subtotal - discount(subtotal), 2)


class StockKeeper(GenServer):
    """Holds the stock; taking an unknown item crashes it (KeyError)."""

    def init(self, args: Any) -> dict[str, int]:
        return dict(args or {"tea": 10, "cake": 5, "scone": 8, "jam": 2})

    def handle_call(self, request: Any, from_: Any, state: dict[str, int]) -> Reply:
        op, basket = request
        if op == "take":
            for item, quantity in basket.items():
                if state[item] < quantity:
                    return Reply(("short", item), state)
            for item, quantity in basket.items():
                state[item] -= quantity
            return Reply("ok", state)
        return Reply(dict(state), state)


class OrderDesk(GenServer):
    """Prices baskets and keeps the day's takings."""

    def init(self, args: Any) -> dict[str, Any]:
        return {"orders": 0, "takings": 0.0}

    def handle_call(self, request: Any, from_: Any, state: dict[str, Any]) -> Reply:
        total = price_basket(request)
        state = {"orders": state["orders"] + 1, "takings": round(state["takings"] + total, 2)}
        return Reply(total, state)


def shop_spec() -> SupervisorSpec:
    return SupervisorSpec(
        "one_for_one",
        [
            ChildSpec("stock", (StockKeeper, None)),
            ChildSpec("desk", (OrderDesk, None)),
        ],
    )
