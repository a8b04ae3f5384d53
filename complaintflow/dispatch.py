"""Delivering the outbox: claim what is due, hand each message to its channel, record how it went.

Channels are reached through a registry, as handlers are: `workers/channels.py` registers email
and SMS, `webhooks/delivery.py` the webhook calls. A channel raises `DeliveryFailed` when the
other end did not take the message (`final` when it never will, e.g. a 400 answer).
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from . import outbox
from .config import Settings
from .db import Store

log = logging.getLogger(__name__)
TIMEOUT = 10.0  # seconds; a slow server fails this attempt, and the next one tries again

Sender = Callable[[Settings, outbox.Claimed], None]


class DeliveryFailed(Exception):
    def __init__(self, message: str, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


class ChannelRegistry:
    def __init__(self) -> None:
        self._senders: dict[str, Sender] = {}

    def register(self, name: str) -> Callable[[Sender], Sender]:
        def decorate(sender: Sender) -> Sender:
            self._senders[name] = sender
            return sender

        return decorate

    def get(self, name: str) -> Sender | None:
        return self._senders.get(name)


channels = ChannelRegistry()


def load_channels(modules: tuple[str, ...] = ("workers.channels", "webhooks.delivery")) -> None:
    for module in modules:
        importlib.import_module(module)


def deliver_due(
    store: Store, seconds: float = 0.0, go_on: Callable[[], bool] = lambda: True
) -> int:
    """Deliver the messages due now, once each; returns how many were tried. One batch, then
    batch after batch while more are due and `go_on()` says so, for up to `seconds`. A batch
    takes no more than its lease can cover, even when every receiver is as slow as the timeout
    allows, so that no other dispatcher takes a message while it is still being delivered; each
    is leased as it is taken."""
    until, tried = time.monotonic() + seconds, 0
    while True:
        claimed = outbox.claim(store, batch_size(store))
        for message in claimed:
            deliver(store, message)
        tried += len(claimed)
        if not claimed or time.monotonic() >= until or not go_on():
            return tried


def batch_size(store: Store) -> int:
    return max(1, int(store.settings.lease_seconds // TIMEOUT) - 1)


def deliver(store: Store, message: outbox.Claimed) -> None:
    """Hand one message to its channel and record how it went."""
    error, final = _deliver(store.settings, message)
    outbox.settle(store, message, error, store.settings.outbox_max_attempts, final)


def _deliver(settings: Settings, message: outbox.Claimed) -> tuple[str | None, bool]:
    sender = channels.get(message.channel)
    if sender is None:
        return f"no channel '{message.channel}' is registered", False
    try:
        sender(settings, message)
    except DeliveryFailed as exc:
        return str(exc), exc.final
    except Exception as exc:  # a bug in a channel must not stop the other deliveries
        log.exception("channel %s failed on outbox message %s", message.channel, message.id)
        return f"{type(exc).__name__}: {exc}", False
    return None, False


def http_post(url: str, **kwargs: Any) -> None:
    """POST, taking any 2xx as delivered; 4xx other than 408 and 429 will not get better by
    trying again, so they are final."""
    try:
        answer = httpx.post(url, timeout=TIMEOUT, **kwargs)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None
    if answer.is_success:
        return
    final = 400 <= answer.status_code < 500 and answer.status_code not in (408, 429)
    raise DeliveryFailed(f"HTTP {answer.status_code}: {answer.text[:200]}", final=final)
