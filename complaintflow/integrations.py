"""Other systems: the sources allowed to file complaints through the intake webhook, and the
subscriptions that hear of events. Each change is an act in the audit log (secrets never are).

A source's secret comes from the admin pages (kept here, rotatable: after a rotation the previous
secret stays valid until the next, so the other system can switch over) or from
COMPLAINTFLOW_WEBHOOK_SECRETS; both are accepted.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update

from . import audit
from .db import Store
from .errors import N_, Conflict, InvalidData, NotFound
from .models import OutboxMessage, WebhookSource, WebhookSubscription, utcnow
from .notices import WEBHOOK_EVENT_TYPES, Subscribers

_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Source:
    name: str
    rotated_at: Any
    rotating: bool  # a previous secret is still accepted
    from_settings: bool


class Integrations:
    def __init__(self, store: Store, subscribers: Subscribers) -> None:
        self.store = store
        self._subscribers = subscribers  # told of each change, so this process sees it at once

    # -- intake sources ------------------------------------------------------------------

    def secrets_of(self, source: str) -> list[str]:
        """Every secret a call from `source` may be signed with (none: an unknown source)."""
        source = source.lower()  # names are kept lower-case
        configured = self.store.settings.webhook_secrets
        found = [s for name, listed in configured.items() if name.lower() == source for s in listed]
        with self.store.read() as session:
            row = session.get(WebhookSource, source)
            if row is not None:
                found += [row.secret, *([row.previous_secret] if row.previous_secret else [])]
        return found

    def sources(self) -> list[Source]:
        configured = self.store.settings.webhook_secrets
        with self.store.read() as session:
            rows = {r.name: r for r in session.scalars(select(WebhookSource))}
        names = sorted(set(rows) | set(configured))
        return [
            Source(
                name,
                rows[name].rotated_at if name in rows else None,
                bool(rows[name].previous_secret) if name in rows else False,
                name in configured,
            )
            for name in names
        ]

    def add_source(self, name: str, actor: str) -> str:
        """A new source; returns its secret, shown once."""
        name = name.strip().lower()
        if not _SOURCE_NAME.match(name):
            raise InvalidData(
                {"name": [(N_("Use lower-case letters, digits, '.', '_' or '-'."), {})]}
            )
        secret = new_secret()
        with self.store.write() as session:
            if session.get(WebhookSource, name) is not None:
                raise Conflict(f"there is a source '{name}' already; rotate its secret instead")
            session.add(WebhookSource(name=name, secret=secret, rotated_at=utcnow()))
            audit.record(session, actor, "webhook_source.added", f"source {name}", {}, utcnow())
        return secret

    def rotate_source(self, name: str, actor: str) -> str:
        """A new secret for a source; the one it replaces stays valid until the next rotation."""
        secret = new_secret()
        with self.store.write() as session:
            row = session.get(WebhookSource, name)
            if row is None:
                raise NotFound(f"there is no source '{name}' kept here")
            row.previous_secret, row.secret, row.rotated_at = row.secret, secret, utcnow()
            audit.record(session, actor, "webhook_source.rotated", f"source {name}", {}, utcnow())
        return secret

    def remove_source(self, name: str, actor: str) -> None:
        with self.store.write() as session:
            row = session.get(WebhookSource, name)
            if row is None:
                raise NotFound(f"there is no source '{name}' kept here")
            session.delete(row)
            audit.record(session, actor, "webhook_source.removed", f"source {name}", {}, utcnow())

    # -- outbound subscriptions -------------------------------------------------------------

    def subscriptions(self) -> list[WebhookSubscription]:
        with self.store.read() as session:
            return list(
                session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id))
            )

    def subscribe(self, url: str, types: list[str], actor: str) -> tuple[int, str]:
        """A new subscription; returns its id and its signing secret, shown once."""
        url, types = _checked(url, types)
        secret = new_secret()
        with self.store.write() as session:
            row = WebhookSubscription(
                url=url,
                secret=secret,
                events={"types": types},
                active=True,
                created_by=actor,
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            audit.record(
                session,
                actor,
                "webhook_subscription.created",
                f"subscription {row.id}",
                {"url": url, "types": types},
                utcnow(),
            )
        self._subscribers.changed()
        return row.id, secret

    def change_subscription(
        self,
        subscription_id: int,
        actor: str,
        types: list[str] | None = None,
        active: bool | None = None,
    ) -> None:
        with self.store.write() as session:
            row = _subscription(session, subscription_id)
            if row.deleted_at is not None:
                raise Conflict(f"webhook subscription {subscription_id} was deleted")
            changed: dict[str, Any] = {}
            if types is not None:
                row.events = {"types": _checked(row.url, types)[1]}
                changed["types"] = row.events["types"]
            if active is not None:
                row.active = changed["active"] = active
            audit.record(
                session,
                actor,
                "webhook_subscription.changed",
                f"subscription {subscription_id}",
                changed,
                utcnow(),
            )
        self._subscribers.changed()

    def delete_subscription(self, subscription_id: int, actor: str) -> None:
        """Stop for good: pending deliveries are discarded, the delivery log stays."""
        with self.store.write() as session:
            row = _subscription(session, subscription_id)
            if row.deleted_at is not None:
                raise Conflict(f"webhook subscription {subscription_id} was deleted already")
            row.active, row.deleted_at = False, utcnow()
            session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.subscription_id == subscription_id,
                    OutboxMessage.status == "pending",
                )
                .values(status="discarded", last_error="the subscription was deleted")
            )
            audit.record(
                session,
                actor,
                "webhook_subscription.deleted",
                f"subscription {subscription_id}",
                {"url": row.url},
                utcnow(),
            )
        self._subscribers.changed()


def _subscription(session: Any, subscription_id: int) -> WebhookSubscription:
    row = session.get(WebhookSubscription, subscription_id)
    if row is None:
        raise NotFound(f"there is no webhook subscription {subscription_id}")
    return row


def _checked(url: str, types: list[str]) -> tuple[str, list[str]]:
    problems: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    url = url.strip()
    parts = urlsplit(url)
    if len(url) > 500:
        problems["url"] = [(N_("At most %(limit)s characters."), {"limit": 500})]
    elif parts.scheme not in ("http", "https") or not parts.netloc:
        problems["url"] = [(N_("Give an http:// or https:// address."), {})]
    unknown = sorted(set(types) - set(WEBHOOK_EVENT_TYPES))
    if unknown or not types:
        problems["types"] = [
            (N_("Choose among: %(types)s."), {"types": ", ".join(WEBHOOK_EVENT_TYPES)})
        ]
    if problems:
        raise InvalidData(problems)
    return url, [t for t in WEBHOOK_EVENT_TYPES if t in types]
