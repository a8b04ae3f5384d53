"""Who hears of what, and through which channel.

A notice is written in the transaction of the step that decided on it: the in-app notification
row, and one outbox message per email, SMS and webhook call, which the dispatcher delivers after
the commit. A step that rolls back leaves no notice; one that commits loses none.

People are found from a role (everyone active holding it), a task's assignee, or the
complainant's contact on the record (an email address or a phone number); each is written to in
their language. Other systems hear of events through their webhook subscriptions.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import outbox, status_links
from .config import Settings
from .diagrams import CompiledDiagram
from .models import Instance, Notification, User, UserRole, WebhookSubscription
from .naming import chinese, procedure_title, role_title
from .notice_texts import compose

# Events that cannot wait for someone to open their inbox: these go by SMS too.
URGENT = frozenset({"complaint.urgent", "complaint.major", "deadline.missed"})
_PHONE = re.compile(r"^\+?[\d\s()-]{6,}$")


@dataclass(frozen=True)
class Occasion:
    """The step a notice comes from: its transaction, the instance and its diagram, when."""

    session: Session
    settings: Settings
    diagram: CompiledDiagram
    instance: Instance
    now: datetime


def _in_app(
    occasion: Occasion,
    audience: str,
    event: str,
    step: str | None,
    role: str | None = None,
    username: str | None = None,
    **data: Any,
) -> None:
    occasion.session.add(
        Notification(
            instance_id=occasion.instance.id,
            audience=audience,
            role=role,
            username=username,
            event=event,
            urgent=event in URGENT,
            created_at=occasion.now,
            data={"number": _number(occasion), "step": step, **data},
        )
    )


def _number(occasion: Occasion) -> str | None:
    record = occasion.instance.record
    return record.number if record else None


def _send(occasion: Occasion, person: User, event: str, **values: Any) -> None:
    """Email (and, when urgent, SMS) to a member of staff, in their language."""
    _message(occasion, "email", person.email, event, person.locale, **values)
    if event in URGENT:
        _message(occasion, "sms", person.phone, event, person.locale, **values)


def _message(
    occasion: Occasion, channel: str, to: str | None, event: str, language: str, **values: Any
) -> None:
    """One email or SMS into the outbox, if there is an address and the channel is set up."""
    settings = occasion.settings
    configured = settings.smtp_host if channel == "email" else settings.sms_url
    if not to or not configured:
        return
    lane = next((lane for lane in occasion.diagram.lanes if lane.key == values.get("role")), None)
    text = compose(
        event,
        language,
        **{
            "number": _number(occasion) or f"#{occasion.instance.id}",
            "procedure": procedure_title(occasion.diagram, language),
            **values,
            "role": role_title(lane, language) if lane else values.get("role", ""),
            "task": chinese(values.get("task") or "", language),
            "due": _local_time(values.get("due"), settings.timezone),
        },
    )
    payload = {"subject": text.subject, "body": text.body, "language": language}
    outbox.enqueue(
        occasion.session,
        channel,
        event,
        to,
        payload,
        occasion.now,
        instance_id=occasion.instance.id,
    )


def _local_time(iso: str | None, zone: str) -> str:
    """A deadline as the people at the desk read clocks."""
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def _staff_link(occasion: Occasion) -> str:
    base = occasion.settings.public_url
    return f"{base}/complaints/{occasion.instance.id}" if base else ""


def to_role(
    occasion: Occasion, role: str, event: str, step: str | None = None, **extra: Any
) -> None:
    """Everyone active holding the role: in the app, by email, and by SMS when urgent."""
    _in_app(occasion, "role", event, step, role=role, **extra)
    people = occasion.session.scalars(
        select(User).join(UserRole).where(UserRole.role_key == role, User.active.is_(True))
    )
    for person in people:
        _send(occasion, person, event, role=role, link=_staff_link(occasion), **extra)


def to_person(
    occasion: Occasion, username: str, event: str, step: str | None = None, **extra: Any
) -> None:
    """One member of staff (a task's assignee): in the app and by email."""
    _in_app(occasion, "person", event, step, username=username, **extra)
    person = occasion.session.scalar(select(User).where(User.username == username))
    if person is not None and person.active:
        _send(occasion, person, event, link=_staff_link(occasion), **extra)


def to_complainant(occasion: Occasion, event: str, step: str | None = None) -> None:
    """The complainant: on their status page, and by email or SMS to the contact they left."""
    _in_app(occasion, "complainant", event, step)
    record = occasion.instance.record
    contact = (record.contact or "").strip() if record else ""
    settings = occasion.settings
    link = (
        settings.public_url + status_links.status_path(settings.secret_key, occasion.instance.id)
        if settings.public_url
        else ""
    )
    channel = "email" if "@" in contact else "sms" if _PHONE.match(contact) else None
    if channel:
        _message(occasion, channel, contact, event, occasion.instance.language, link=link)


# What other systems can subscribe to, from the history events that carry them.
WEBHOOK_EVENTS = {
    "instance.started": "complaint.created",
    "task.ready": "task.ready",
    "escalated": "complaint.escalated",
    "timer.fired": "deadline.missed",
    "instance.completed": "complaint.closed",
    "instance.cancelled": "complaint.cancelled",
    "instance.errored": "complaint.stopped",
}
WEBHOOK_EVENT_TYPES = (*dict.fromkeys(WEBHOOK_EVENTS.values()), "deadline.approaching")


@dataclass(frozen=True)
class Subscriber:
    id: int
    url: str
    types: frozenset[str]


class Subscribers:
    """The active subscriptions as this process last read them: every step looks, so they are
    read at most every TTL seconds rather than once per step. A change made in this process is
    seen at once; one made in another process within TTL seconds."""

    TTL = 2.0

    def __init__(self) -> None:
        self._read: tuple[float, tuple[Subscriber, ...]] | None = None

    def active(self, session: Session) -> tuple[Subscriber, ...]:
        read = self._read
        if read is None or time.monotonic() - read[0] > self.TTL:
            rows = session.execute(
                select(
                    WebhookSubscription.id, WebhookSubscription.url, WebhookSubscription.events
                ).where(WebhookSubscription.active.is_(True))
            )
            found = tuple(Subscriber(i, u, frozenset(e.get("types", []))) for i, u, e in rows)
            read = self._read = (time.monotonic(), found)
        return read[1]

    def changed(self) -> None:
        self._read = None


def publish(
    occasion: Occasion,
    subscribers: tuple[Subscriber, ...],
    events: list[tuple[str, dict[str, Any]]],
) -> None:
    """One outbox message per event and active subscription to it."""
    if not subscribers:
        return
    instance, settings = occasion.instance, occasion.settings
    complaint = {
        "id": instance.id,
        "number": _number(occasion),
        "procedure": occasion.diagram.key,
        "status": instance.status,
    }
    if settings.public_url:
        complaint["status_url"] = settings.public_url + status_links.status_path(
            settings.secret_key, instance.id
        )
    for event, data in events:
        for subscriber in subscribers:
            if event not in subscriber.types:
                continue
            outbox.enqueue(
                occasion.session,
                "webhook",
                event,
                subscriber.url,
                {
                    "type": event,
                    "occurred_at": occasion.now.isoformat(),
                    "complaint": complaint,
                    "data": data,
                },
                occasion.now,
                instance_id=instance.id,
                subscription_id=subscriber.id,
            )
