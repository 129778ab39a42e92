"""A small shop to record: an order desk and a stock keeper under a supervisor.

``python -m elixirscope.examples.shop`` runs it plainly; ``elixirscope run -m
elixirscope.examples.shop`` records it, and ``elixirscope demo`` records it and
prints what happened. It has what a recording should show: nested calls
(pricing a basket calls line totals, which call the price list and the
discount rules), actors whose state changes with every message, a crash (an
order for an item the stock keeper does not know), and the supervisor's restart.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from elixirscope.capture.context import correlation
from elixirscope.examples.shopkeeping import shop_spec
from elixirscope.runtime import CallError, Runtime

__all__ = ["main", "serve", "take_order"]


def serve(rt: Runtime, sup: Any, baskets: list[dict[str, int]]) -> None:
    """Take each order in its own correlation chain, as a web app scopes one per request."""
    children = {c.id: c.address for c in rt.which_children(sup)}
    for basket in baskets:
        with correlation():
            children = take_order(rt, sup, children, basket)


def take_order(
    rt: Runtime, sup: Any, children: dict[str, Any], basket: dict[str, int]
) -> dict[str, Any]:
    try:
        taken = rt.call(children["stock"], ("take", basket))
    except CallError as exc:
        print(f"order {basket}: the stock keeper crashed ({exc.reason}); it is restarted")
        return _after_restart(rt, sup, "stock", children["stock"])
    if taken != "ok":
        print(f"order {basket}: out of {taken[1]}")
        return children
    total = rt.call(children["desk"], basket)
    print(f"order {basket}: {total:.2f}")
    return children


def _after_restart(rt: Runtime, sup: Any, child: str, old: Any) -> dict[str, Any]:
    """The children once ``child`` runs again under a new address (bounded wait)."""
    deadline = time.monotonic() + 10.0
    while True:
        children = {c.id: c.address for c in rt.which_children(sup)}
        if children[child] not in (None, old) or time.monotonic() > deadline:
            return children
        time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    base = (argv if argv is not None else sys.argv[1:]) or ["simpleSystemBase"]
    with Runtime(base[0]) as rt:
        sup = rt.start_supervisor(shop_spec(), path="shop")
        serve(
            rt,
            sup,
            [
                {"tea": 2, "cake": 1},
                {"jam": 1, "scone": 9},
                {"coffee": 1},
                {"tea": 4, "jam": 1, "cake": 2},
            ],
        )
        restarts = {c.id: c.restarts for c in rt.which_children(sup)}
        print(f"restarts: {restarts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
