"""Credit streams: bounded batch streams with credit-based flow control.

zguide chapter 7 ("fileio3"): the receiver grants credit, the sender spends it.
Here, per sender:

1. the sender connects a DEALER and sends ``HELLO(next_seq, stream)``;
2. the receiver (a ROUTER, any number of senders up to ``max_senders``) answers
   ``CREDIT(limit = next_seq + window)``;
3. the sender transmits ``BATCH(seq, event_count, payload)`` only for
   ``seq < limit``; anything else waits in its bounded queue, and when that is
   full its overflow policy applies (``block``, ``drop_newest``, ``drop_oldest``,
   ``sample``), every outcome counted;
4. each time the consumer *takes* a batch (``CreditReceiver.recv`` returns it) the
   receiver re-announces ``CREDIT(seq + 1 + window)``: one credit back;
5. the sender says ``BYE`` when it closes.

So no sender ever has more than ``window`` batches the consumer has not taken,
and ZeroMQ's high-water marks (``window + HWM_MARGIN``) are a safety net that is
never reached. The byte layouts are in :mod:`.credit_wire`; the ends are in
:mod:`.credit_sender` and :mod:`.credit_receiver`. This module is the one to
import from.

Typical use::

    with CreditReceiver("tcp://127.0.0.1:0", window=8) as receiver, \\
         CreditSender(receiver.endpoint, policy="drop_oldest") as sender:
        sender.send(payload, event_count=1000)
        batch = receiver.recv(timeout=1.0)   # Batch(sender, stream, seq, event_count, payload)
"""

from __future__ import annotations

from .credit_receiver import HWM_MARGIN, Batch, CreditReceiver, ReceiverStats
from .credit_sender import POLICIES, CreditSender, Policy, SenderStats
from .credit_wire import VERSION as PROTOCOL_VERSION
from .credit_wire import WireError

__all__ = [
    "HWM_MARGIN",
    "POLICIES",
    "PROTOCOL_VERSION",
    "Batch",
    "CreditReceiver",
    "CreditSender",
    "Policy",
    "ReceiverStats",
    "SenderStats",
    "WireError",
]
