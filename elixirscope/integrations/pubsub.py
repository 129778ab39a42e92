"""The runtime's pub/sub, recorded: each publish and each delivery, linked.

The registry is the runtime's Phoenix.PubSub: an actor ``dispatch``es a
message under a key (``ProcessActor.dispatch``) and the registry sends it to
every owner of that key (``Registry._dispatch``). With :func:`enable`:

- the publishing actor records a ``pub`` event (``pub_id``, the key as
  ``topic``, the publisher's path, the message's safe text) under its
  correlation id (a new one if it has none), and the dispatch request carries
  ``(pub_id, correlation_id, hlc_ts)`` to the registry;
- the registry, in its own process, records one ``deliver`` event per owner it
  sent the message to (``target``: the owner's actor path when it said it - a
  GenServer registering while this is on sends its path -, else its address;
  ``name``: the unique names it holds in the registry, so a delivery reads
  ``-> task_manager``), with the same ``pub_id`` and correlation id, after
  merging the publisher's clock (so a delivery sorts after its publish on any
  node); messages it replays to an owner restoring its key in a new registry
  are deliveries with ``replay``;
- a delivery to an owner with a path has a ``message_id`` and goes to it as a
  traced ``Info``: the subscriber records its ``receive`` with that id and runs
  ``handle_info`` in the publish's chain, so its state change names it
  (``trace from`` a publish to that change goes publish -> deliver -> receive
  -> state).

Cheap: with pub/sub recording off (or no Recorder installed) ``dispatch``
costs one test of :data:`elixirscope.runtime.observe.PUBSUB`, and the request
has the shape it always had; the registry records only dispatches that carry
a link. ElixirScope's own dispatches (those of ``internal`` actors:
configuration news, state news; and every actor's metrics reports under the
``telemetry`` key) are left out unless ``record_own``. Each step swallows
its own errors (counted in :data:`STATS`): recording never disturbs an actor,
and the message is delivered exactly as it would be.

``elixirscope run`` enables this when the program imports the runtime, unless
``integrations.pubsub = false``; in code, :func:`enable` before the actor
system starts (its actor processes are forked with it on).
"""

from __future__ import annotations

import uuid
from typing import Any

from elixirscope.capture import recorder
from elixirscope.capture.context import correlation, current_correlation_id, new_correlation_id
from elixirscope.capture.values import address_text, safe_repr

__all__ = ["PubSubRecorder", "disable", "enable", "enabled", "record_deliveries"]

STATS: dict[str, Any] = {"published": 0, "delivered": 0, "errors": 0, "last_error": ""}
OWN_TELEMETRY_KEY = "telemetry"
"""``runtime.process.TELEMETRY_KEY``: the runtime's own metrics reports, dispatched by
every actor given a report interval; ElixirScope's, not the program's pub/sub."""
MESSAGE_LIMIT = 200


def _failed(exc: BaseException) -> None:
    STATS["errors"] += 1
    STATS["last_error"] = f"{type(exc).__name__}: {exc}"


class PubSubRecorder:
    """What :data:`observe.PUBSUB` holds while pub/sub is recorded."""

    def __init__(self, record_own: bool = False) -> None:
        self.record_own = record_own

    def publishing(self, actor: Any, key: Any, payload: Any) -> tuple | None:
        """Record a publish; returns the link the registry's deliveries carry (None: none)."""
        try:
            rec = recorder.recording()
            if rec is None:
                return None
            own = getattr(type(actor), "internal", False) or key == OWN_TELEMETRY_KEY
            if own and not self.record_own:
                return None
            pub_id = uuid.uuid4().hex
            publisher = getattr(actor, "path", None) or address_text(
                getattr(actor, "myAddress", None)
            )
            cid = current_correlation_id() or new_correlation_id()
            with correlation(cid):
                rec.emit(
                    "pub", pub_id, address_text(key), publisher, safe_repr(payload, MESSAGE_LIMIT)
                )
            STATS["published"] += 1
            return (pub_id, cid, rec.clock.now())
        except Exception as exc:  # noqa: BLE001
            _failed(exc)
            return None


def record_deliveries(
    link: Any,
    key: Any,
    owners: list[Any],
    replay: bool = False,
    names: list[str | None] | None = None,
    paths: list[str | None] | None = None,
    sender: str | None = None,
) -> list[tuple | None]:
    """The registry sent publication ``link`` to ``owners`` (never raises); ``names``:
    each owner's registered name(s), or None; ``paths``: each owner's actor path when
    it said it (the delivery's ``target`` then, else its address). Returns, per owner
    with a path, the trace its traced ``Info`` carries (``(message_id, correlation_id,
    hlc_ts, sender)``, the delivery's ``message_id``), else None."""
    traces: list[tuple | None] = [None] * len(owners)
    try:
        rec = recorder.recording()
        if rec is None or not owners:
            return traces
        pub_id, cid, ts = link
        rec.clock.observe(ts)
        topic = address_text(key)
        with correlation(cid):
            for i, owner in enumerate(owners):
                name = names[i] if names is not None and i < len(names) else None
                path = paths[i] if paths is not None and i < len(paths) else None
                message_id = uuid.uuid4().hex if path else None
                target = path or address_text(owner)
                linked = () if message_id is None else (message_id,)  # the usual shape without
                rec.emit("deliver", pub_id, topic, target, replay, name, *linked)
                if message_id is not None:
                    traces[i] = (message_id, cid, rec.clock.now(), sender)
                STATS["delivered"] += 1
    except Exception as exc:  # noqa: BLE001
        _failed(exc)
    return traces


def enable(record_own: bool = False) -> bool:
    """Record publishes in this process and processes forked after; False if already on."""
    from elixirscope.runtime import observe

    if isinstance(observe.PUBSUB, PubSubRecorder):
        observe.PUBSUB.record_own = record_own
        return False
    observe.PUBSUB = PubSubRecorder(record_own)
    return True


def disable() -> bool:
    from elixirscope.runtime import observe

    if observe.PUBSUB is None:
        return False
    observe.PUBSUB = None
    return True


def enabled() -> bool:
    from elixirscope.runtime import observe

    return observe.PUBSUB is not None
