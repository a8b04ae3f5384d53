"""The transactional outbox: messages a step decided to send, stored with the step, delivered
after it by the dispatcher.

A message is claimed for a short lease before delivery, so a dispatcher that dies mid-way leaves
it to be claimed again; it carries its key (the idempotency key) so that a receiver can drop the
repeat. Failures wait longer each time (exponential backoff with jitter) up to a maximum number of
attempts; then the message is dead, for an admin to retry or discard, each act in the audit log.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from . import audit
from .db import Store
from .errors import Conflict, NotFound
from .models import OutboxMessage, WebhookSubscription, utcnow

FIRST_WAIT = timedelta(seconds=2)
LONGEST_WAIT = timedelta(hours=1)


_RANDOM = random.SystemRandom()


def backoff(attempts: int, rng: random.Random = _RANDOM) -> timedelta:
    """The wait before attempt `attempts + 1`: doubling from 2 s up to an hour, each wait taken
    at random from its upper half so that many failed messages do not retry in step."""
    ceiling = min(LONGEST_WAIT, FIRST_WAIT * 2 ** max(0, attempts - 1))
    return ceiling * rng.uniform(0.5, 1.0)


def enqueue(
    session: Session,
    channel: str,
    event: str,
    recipient: str,
    payload: dict[str, Any],
    now: datetime,
    instance_id: int | None = None,
    subscription_id: int | None = None,
) -> OutboxMessage:
    message = OutboxMessage(
        key=uuid.uuid4().hex,
        channel=channel,
        event=event,
        recipient=recipient,
        payload=payload,
        instance_id=instance_id,
        subscription_id=subscription_id,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(message)
    return message


@dataclass(frozen=True)
class Claimed:
    id: int
    key: str
    channel: str
    event: str
    recipient: str
    payload: dict[str, Any]
    attempts: int
    secret: str | None  # a webhook's signing secret, read at delivery: rotations apply


def _due(now: datetime) -> ColumnElement[bool]:
    """Pending and due, unless meant for a paused subscription: those wait until it is resumed
    (a deleted one's are due, to be given up as undeliverable)."""
    paused = select(WebhookSubscription.id).where(
        WebhookSubscription.active.is_(False), WebhookSubscription.deleted_at.is_(None)
    )
    return and_(
        OutboxMessage.status == "pending",
        OutboxMessage.next_attempt_at <= now,
        or_(OutboxMessage.subscription_id.is_(None), OutboxMessage.subscription_id.not_in(paused)),
    )


def claim(store: Store, limit: int = 50) -> list[Claimed]:
    """Due messages, leased to the caller (skipping those another dispatcher holds)."""
    now = utcnow()
    until = now + timedelta(seconds=store.settings.lease_seconds)
    with store.write() as session:
        query = (
            select(OutboxMessage)
            .where(_due(now))
            .order_by(OutboxMessage.next_attempt_at)
            .limit(limit)
        )
        if not store.settings.is_sqlite:  # SQLite serialises writers already
            query = query.with_for_update(skip_locked=True)
        rows = list(session.scalars(query))
        for row in rows:
            row.next_attempt_at = until
        return _claimed(session, rows)


def due_count(store: Store, limit: int = 1000) -> int:
    """How many messages are due now (counted up to `limit`)."""
    with store.read() as session:
        due = select(OutboxMessage.id).where(_due(utcnow())).limit(limit).subquery()
        return int(session.scalar(select(func.count()).select_from(due)) or 0)


def _claimed(session: Session, rows: list[OutboxMessage]) -> list[Claimed]:
    wanted = {r.subscription_id for r in rows if r.subscription_id is not None}
    secrets = (
        {
            subscription_id: secret
            for subscription_id, secret in session.execute(
                select(WebhookSubscription.id, WebhookSubscription.secret).where(
                    WebhookSubscription.id.in_(wanted)
                )
            )
        }
        if wanted
        else {}
    )
    return [
        Claimed(
            r.id,
            r.key,
            r.channel,
            r.event,
            r.recipient,
            dict(r.payload),
            r.attempts,
            secrets.get(r.subscription_id) if r.subscription_id else None,
        )
        for r in rows
    ]


def settle(
    store: Store, claimed: Claimed, error: str | None, max_attempts: int, final: bool = False
) -> None:
    """Record how a delivery went: sent, or failed (and when to try again, or dead — at once
    when the failure is `final`: the receiver refused what it will always refuse)."""
    now = utcnow()
    attempts = claimed.attempts + 1
    if error is None:
        values: dict[str, Any] = {
            "status": "sent",
            "sent_at": now,
            "attempts": attempts,
            "last_error": None,
        }
    elif final or attempts >= max_attempts:
        values = {"status": "dead", "attempts": attempts, "last_error": error[:2000]}
    else:
        values = {
            "attempts": attempts,
            "last_error": error[:2000],
            "next_attempt_at": now + backoff(attempts),
        }
    with store.write() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == claimed.id, OutboxMessage.status == "pending")
            .values(**values)
        )


def _admin_act(
    store: Store,
    message_id: int,
    actor: str,
    reason: str,
    action: str,
    allowed: tuple[str, ...],
    values: dict[str, Any],
) -> None:
    with store.write() as session:
        message = session.get(OutboxMessage, message_id)
        if message is None:
            raise NotFound(f"there is no outbox message {message_id}")
        if message.status not in allowed:
            raise Conflict(
                f"message {message_id} is {message.status}; {action} needs {' or '.join(allowed)}"
            )
        subscription = (
            session.get(WebhookSubscription, message.subscription_id)
            if message.subscription_id
            else None
        )
        if action == "outbox.retried" and subscription and subscription.deleted_at:
            raise Conflict(f"message {message_id} is for a deleted webhook subscription")
        for name, value in values.items():
            setattr(message, name, value)
        audit.record(
            session,
            actor,
            action,
            f"outbox {message_id}",
            {
                "reason": reason,
                "channel": message.channel,
                "event": message.event,
                "recipient": message.recipient,
            },
            utcnow(),
        )


def retry(store: Store, message_id: int, actor: str, reason: str) -> None:
    """Give a dead (or discarded) message another round of attempts, now."""
    _admin_act(
        store,
        message_id,
        actor,
        reason,
        "outbox.retried",
        ("dead", "discarded"),
        {"status": "pending", "attempts": 0, "next_attempt_at": utcnow()},
    )


def discard(store: Store, message_id: int, actor: str, reason: str) -> None:
    """Give up on a message that cannot or should not be delivered."""
    _admin_act(
        store,
        message_id,
        actor,
        reason,
        "outbox.discarded",
        ("dead", "pending"),
        {"status": "discarded"},
    )


def listing(
    session: Session,
    status: str | None = None,
    subscription_id: int | None = None,
    limit: int = 200,
) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if status:
        query = query.where(OutboxMessage.status == status)
    if subscription_id is not None:
        query = query.where(OutboxMessage.subscription_id == subscription_id)
    return list(session.scalars(query))
