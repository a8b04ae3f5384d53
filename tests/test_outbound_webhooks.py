"""Other systems hear of events through their subscriptions, managed over the API by admins:
each call signed as the intake webhook is, carrying its delivery key, logged per subscription."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from complaintflow import outbox
from complaintflow.app import services
from complaintflow.dispatch import deliver_due
from complaintflow.models import AuditEntry
from webhooks import signing

from .complaints import Complaint
from .conftest import Api
from .receivers import Call, Receiver


def _subscribe(api: Api, url: str, types: list[str]) -> dict[str, Any]:
    answer = api.post("/webhooks/subscriptions", "admin", {"url": url, "types": types})
    assert answer.status_code == 201, answer.get_json()
    return dict(answer.get_json())


def _signed(call: Call, secret: str) -> bool:
    return signing.fresh(call.headers[signing.TIMESTAMP]) and signing.valid(
        [secret], call.headers[signing.TIMESTAMP], call.body, call.headers[signing.SIGNATURE]
    )


def test_subscribers_get_signed_calls_for_the_events_they_chose(
    app: Flask, api: Api, receiver: Callable[..., Receiver]
) -> None:
    system = receiver()
    made = _subscribe(api, system.url, ["complaint.created", "complaint.closed"])
    assert made["secret"] and made["types"] == ["complaint.created", "complaint.closed"]
    listed = api.get("/webhooks/subscriptions", "admin").get_json()
    assert "secret" not in listed["subscriptions"][0]  # shown once, when made
    assert "task.ready" in listed["event_types"]
    svc = services(app)
    c = Complaint(svc, "bar")
    c.do("listen", serious=False, within_authority=True).do("staff_resolve")
    c.do("staff_ask_satisfaction", guest_satisfied=True)
    assert c.status == "completed"
    deliver_due(svc.store)
    assert [call.headers["X-Complaintflow-Event"] for call in system.calls] == [
        "complaint.created",
        "complaint.closed",
    ]
    for call in system.calls:
        assert _signed(call, made["secret"])
        assert call.headers["Idempotency-Key"] == call.json()["id"]
        assert call.headers["X-Complaintflow-Delivery"] == call.json()["id"]
    created, closed = (call.json() for call in system.calls)
    assert created["type"] == "complaint.created"
    assert created["complaint"]["number"] == c.record.number
    assert closed["complaint"]["status"] == "completed"
    log = api.get(f"/webhooks/subscriptions/{made['id']}/deliveries", "admin").get_json()
    assert [(d["event"], d["status"], d["attempts"]) for d in log["deliveries"]] == [
        ("complaint.closed", "sent", 1),
        ("complaint.created", "sent", 1),
    ]


def test_task_ready_deadline_events_and_pausing(
    make_app: Callable[..., Flask], receiver: Callable[..., Receiver]
) -> None:
    app = make_app(sla_overrides={"facility": {"technician_contact": "PT10M"}})
    api, svc, system = Api(app.test_client()), services(app), receiver()
    made = _subscribe(api, system.url, ["task.ready", "deadline.approaching"])
    c = Complaint(svc, "facility")
    svc.engine.warn_deadlines(timedelta(minutes=15))
    deliver_due(svc.store)
    ready, approaching = (call.json() for call in system.calls)
    assert (ready["type"], ready["data"]["step"]) == ("task.ready", "contact_complainant")
    assert ready["data"]["role"] == "technician" and ready["data"]["due_at"]
    assert approaching["type"] == "deadline.approaching"
    assert approaching["complaint"]["id"] == c.id
    paused = api.call("PATCH", f"/webhooks/subscriptions/{made['id']}", "admin", {"active": False})
    assert paused.status_code == 200 and paused.get_json()["active"] is False
    c.do("contact_complainant", assessment="solvable")
    deliver_due(svc.store)
    assert len(system.calls) == 2  # paused: nothing new


def test_a_paused_subscription_holds_what_is_waiting_until_resumed(
    app: Flask, api: Api, receiver: Callable[..., Receiver]
) -> None:
    """The receiver is down for maintenance: the admin pauses its subscription. What was
    already queued for it neither goes out nor is given up; it goes once resumed."""
    system, svc = receiver(), services(app)
    made = _subscribe(api, system.url, ["complaint.created"])
    c = Complaint(svc, "hotel")  # queued for the subscription
    path = f"/webhooks/subscriptions/{made['id']}"
    assert api.call("PATCH", path, "admin", {"active": False}).status_code == 200
    assert outbox.due_count(svc.store) == 0  # the scheduler sees no work for it
    assert deliver_due(svc.store) == 0 and system.calls == []
    log = api.get(f"{path}/deliveries", "admin").get_json()
    assert [(d["status"], d["attempts"]) for d in log["deliveries"]] == [("pending", 0)]
    assert api.call("PATCH", path, "admin", {"active": True}).status_code == 200
    assert deliver_due(svc.store) == 1
    assert [call.json()["complaint"]["id"] for call in system.calls] == [c.id]


def test_a_deleted_subscription_drops_what_is_still_waiting(
    app: Flask, api: Api, receiver: Callable[..., Receiver]
) -> None:
    system = receiver()
    made = _subscribe(api, system.url, ["complaint.created"])
    Complaint(services(app), "hotel")
    assert api.call("DELETE", f"/webhooks/subscriptions/{made['id']}", "admin").status_code == 204
    assert deliver_due(services(app).store) == 0
    assert system.calls == []
    log = api.get(f"/webhooks/subscriptions/{made['id']}/deliveries", "admin").get_json()
    assert [d["status"] for d in log["deliveries"]] == ["discarded"]
    again = api.call("PATCH", f"/webhooks/subscriptions/{made['id']}", "admin", {"active": True})
    assert again.status_code == 409  # deleted is for good
    retried = api.post(f"/outbox/{log['deliveries'][0]['id']}/retry", "admin", {"reason": "x"})
    assert retried.status_code == 409
    with services(app).store.read() as session:
        acts = session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("webhook_%")))
        assert list(acts) == ["webhook_subscription.created", "webhook_subscription.deleted"]


def test_only_admins_manage_subscriptions_and_bad_input_is_422(api: Api) -> None:
    assert api.get("/webhooks/subscriptions", "clerk").status_code == 403
    body = {"url": "http://x.example/h", "types": ["complaint.created"]}
    assert api.post("/webhooks/subscriptions", "auditor", body).status_code == 403
    bad = api.post("/webhooks/subscriptions", "admin", {"url": "ftp://x", "types": ["nope"]})
    assert bad.status_code == 422
    assert set(bad.get_json()["error"]["fields"]) == {"url", "types"}
    assert api.post("/webhooks/subscriptions", "admin", {"types": []}).status_code == 400
    assert api.call("DELETE", "/webhooks/subscriptions/999", "admin").status_code == 404
