"""The API for administrators: webhook subscriptions with their delivery logs, and the outbox."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from .. import outbox
from ..app import services
from ..errors import ComplaintflowError, Forbidden
from ..models import OutboxMessage, WebhookSubscription
from ..notices import WEBHOOK_EVENT_TYPES
from . import bp, json_body, person


def _admin() -> str:
    if not person().is_admin:
        raise Forbidden("only admins manage webhooks and the outbox")
    return person().username


def subscription_summary(row: WebhookSubscription) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "types": row.events.get("types", []),
        "active": row.active,
        "deleted_at": row.deleted_at.isoformat() if row.deleted_at else None,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
    }


def message_summary(row: OutboxMessage) -> dict[str, Any]:
    return {
        "id": row.id,
        "key": row.key,
        "channel": row.channel,
        "event": row.event,
        "recipient": row.recipient,
        "instance_id": row.instance_id,
        "subscription_id": row.subscription_id,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at.isoformat() if row.status == "pending" else None,
        "last_error": row.last_error,
        "created_at": row.created_at.isoformat(),
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
    }


@bp.get("/webhooks/subscriptions")
def list_subscriptions() -> ResponseReturnValue:
    _admin()
    rows = services().integrations.subscriptions()
    return jsonify(
        event_types=list(WEBHOOK_EVENT_TYPES),
        subscriptions=[subscription_summary(r) for r in rows],
    )


def _types(body: dict[str, Any]) -> list[str] | None:
    types = body.get("types")
    if types is not None and not (
        isinstance(types, list) and all(isinstance(t, str) for t in types)
    ):
        raise ComplaintflowError('"types" must be a list of event types')
    return types


@bp.post("/webhooks/subscriptions")
def create_subscription() -> ResponseReturnValue:
    actor = _admin()
    body = json_body()
    url = body.get("url")
    if not isinstance(url, str):
        raise ComplaintflowError('send {"url": "https://…", "types": ["complaint.created", …]}')
    subscription_id, secret = services().integrations.subscribe(url, _types(body) or [], actor)
    row = next(r for r in services().integrations.subscriptions() if r.id == subscription_id)
    # The secret is shown this once: the receiver keeps it to check the signatures.
    return jsonify({**subscription_summary(row), "secret": secret}), 201


@bp.patch("/webhooks/subscriptions/<int:subscription_id>")
def change_subscription(subscription_id: int) -> ResponseReturnValue:
    actor = _admin()
    body = json_body()
    active = body.get("active")
    if active is not None and not isinstance(active, bool):
        raise ComplaintflowError('"active" must be true or false')
    services().integrations.change_subscription(subscription_id, actor, _types(body), active)
    row = next(r for r in services().integrations.subscriptions() if r.id == subscription_id)
    return jsonify(subscription_summary(row))


@bp.delete("/webhooks/subscriptions/<int:subscription_id>")
def delete_subscription(subscription_id: int) -> ResponseReturnValue:
    services().integrations.delete_subscription(subscription_id, _admin())
    return "", 204


@bp.get("/webhooks/subscriptions/<int:subscription_id>/deliveries")
def subscription_deliveries(subscription_id: int) -> ResponseReturnValue:
    _admin()
    with services().store.read() as session:
        rows = outbox.listing(session, request.args.get("status"), subscription_id)
        return jsonify(deliveries=[message_summary(r) for r in rows])


@bp.get("/outbox")
def list_outbox() -> ResponseReturnValue:
    _admin()
    with services().store.read() as session:
        rows = outbox.listing(session, request.args.get("status"))
        return jsonify(messages=[message_summary(r) for r in rows])


def _reason() -> str:
    reason = json_body().get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ComplaintflowError('send {"reason": "…"}: why, for the audit log')
    return reason.strip()


@bp.post("/outbox/<int:message_id>/retry")
def retry_message(message_id: int) -> ResponseReturnValue:
    outbox.retry(services().store, message_id, _admin(), _reason())
    return jsonify(status="pending")


@bp.post("/outbox/<int:message_id>/discard")
def discard_message(message_id: int) -> ResponseReturnValue:
    outbox.discard(services().store, message_id, _admin(), _reason())
    return jsonify(status="discarded")
