"""Calling other systems when something happens to a complaint (their webhook subscriptions).

The body is the event as JSON, signed as the intake webhook expects to be signed (see
`signing`), with the outbox message's key as Idempotency-Key and X-Complaintflow-Delivery: a
receiver that gets the same call twice can tell.
"""

from __future__ import annotations

import json

from complaintflow.config import Settings
from complaintflow.dispatch import DeliveryFailed, channels, http_post
from complaintflow.outbox import Claimed

from . import signing

EVENT = "X-Complaintflow-Event"
DELIVERY = "X-Complaintflow-Delivery"


@channels.register("webhook")
def call_webhook(settings: Settings, message: Claimed) -> None:
    if message.secret is None:
        raise DeliveryFailed("the subscription is gone", final=True)
    body = json.dumps({"id": message.key, **message.payload}, ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Idempotency-Key": message.key,
        EVENT: message.event,
        DELIVERY: message.key,
        **signing.headers(message.secret, body),
    }
    http_post(message.recipient, content=body, headers=headers)
