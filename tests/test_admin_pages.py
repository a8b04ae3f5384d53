"""The admin pages over HTTP (Flask's test client, CSRF on): intake sources and their secrets,
webhook subscriptions with their delivery logs, and the outbox with Retry and Discard, each with
a reason that lands in the audit log."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from complaintflow.app import create_app, services
from complaintflow.dispatch import deliver_due
from complaintflow.models import AuditEntry, Leader, OutboxMessage, utcnow
from complaintflow.scheduler import Scheduler
from complaintflow.services import Services

from .complaints import Complaint
from .conftest import BUNDLED, _settings
from .receivers import Receiver
from .test_pages import Page

URL = "https://crm.example/hooks/complaints"


def admin(app: Flask, path: str = "/admin/webhooks") -> Page:
    return Page(app).sign_in("admin").get(path)


def revealed(page: Page) -> str | None:
    """The secret shown in the copy box, if the page shows one."""
    found = re.search(r'id="revealed-secret" readonly value="([^"]+)"', page.html)
    return unescape(found[1]) if found else None


def audit(svc: Services, action: str) -> list[AuditEntry]:
    with svc.store.read() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def message(svc: Services, message_id: int) -> OutboxMessage:
    with svc.store.read() as session:
        found = session.get(OutboxMessage, message_id)
        assert found is not None
        return found


def row(page: Page, row_id: str) -> str:
    """The text of one table row of the page, tags removed."""
    found = re.search(rf'<tr id="{row_id}"[^>]*>(.*?)</tr>', page.html, re.S)
    assert found, f"no row {row_id} on the page"
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", found[1])).split())


# ---------------------------------------------------------------- who may


@pytest.mark.parametrize(
    "path",
    ["/admin/webhooks", "/admin/outbox", "/admin/webhooks/subscriptions/1"],
)
def test_the_pages_are_for_admins_only(app: Flask, path: str) -> None:
    anonymous = app.test_client().get(path, headers={"Accept": "text/html"})
    assert anonymous.status_code == 302 and "/signin" in anonymous.headers["Location"]
    for user in ("technician", "auditor"):
        assert Page(app).sign_in(user).get(path).status == 403


def test_staff_cannot_act_even_with_a_valid_form(app: Flask) -> None:
    clerk = Page(app).sign_in("clerk").get("/inbox")  # a page with a CSRF token
    clerk.post("/admin/webhooks/sources", {"name": "sneaky"})
    assert clerk.status == 403
    clerk.get("/inbox").post("/admin/outbox/1/retry", {"reason": "x"})
    assert clerk.status == 403
    assert services(app).integrations.sources() == []


def test_admins_find_integrations_and_outbox_in_the_navigation(app: Flask) -> None:
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', admin(app, "/inbox").html, re.S)
    assert nav and 'href="/admin/webhooks">Integrations<' in nav[1]
    assert 'href="/admin/outbox">Outbox<' in nav[1]
    technician = Page(app).sign_in("technician").get("/inbox")
    assert "Integrations" not in technician.html and "/admin/outbox" not in technician.html


# ---------------------------------------------------------------- intake sources


def test_a_new_sources_secret_is_shown_once_and_is_the_one_accepted(
    app: Flask, svc: Services
) -> None:
    page = admin(app)
    page.post("/admin/webhooks/sources", {"name": " Hotel-PMS "})
    assert page.status == 200 and page.path == "/admin/webhooks"
    secret = revealed(page)
    assert secret and len(secret) >= 40
    assert "Copy it now: it is shown only this once." in page.html
    assert svc.integrations.secrets_of("hotel-pms") == [secret]
    assert "hotel-pms" in row(page, "source-hotel-pms")
    [entry] = audit(svc, "webhook_source.added")
    assert entry.actor == "admin" and secret not in str(entry.data)
    page.get("/admin/webhooks")  # the same page again: the secret is gone from it
    assert revealed(page) is None and secret not in page.html


def test_rotating_keeps_the_previous_secret_until_the_next_and_never_twice_by_accident(
    app: Flask,
    svc: Services,
) -> None:
    page = admin(app)
    page.post("/admin/webhooks/sources", {"name": "kiosk"})
    first = revealed(page)
    assert "No" in row(page, "source-kiosk")  # no previous secret yet
    stale = page.html
    page.post("/admin/webhooks/sources/kiosk/rotate", {"rotated_at": _stamp(page, "kiosk")})
    second = revealed(page)
    assert second and second != first
    assert "The previous secret stays valid until the next rotation" in page.html
    assert svc.integrations.secrets_of("kiosk") == [second, first]
    assert "Yes, until the next rotation" in row(page, "source-kiosk")
    # The same press again (a double click, a resubmitted page) does not rotate once more,
    # which would end the first secret that the kiosk may still be using.
    page.html = stale
    page.post("/admin/webhooks/sources/kiosk/rotate", {"rotated_at": _stamp(page, "kiosk")})
    assert page.flashes() == [
        "The secret of kiosk was rotated meanwhile; it was not rotated again."
    ]
    assert revealed(page) is None
    assert svc.integrations.secrets_of("kiosk") == [second, first]
    assert len(audit(svc, "webhook_source.rotated")) == 1


def _stamp(page: Page, name: str) -> str:
    found = re.search(
        rf'action="/admin/webhooks/sources/{name}/rotate".*?name="rotated_at" value="([^"]*)"',
        page.html,
        re.S,
    )
    assert found
    return found[1]


def test_removing_a_source_asks_first(app: Flask, svc: Services) -> None:
    page = admin(app)
    page.post("/admin/webhooks/sources", {"name": "old-app"})
    assert 'href="/admin/webhooks/sources/old-app/remove"' in page.html
    page.get("/admin/webhooks/sources/old-app/remove")
    assert "Remove the source old-app?" in page.html
    assert svc.integrations.secrets_of("old-app")  # asking removed nothing
    page.post("/admin/webhooks/sources/old-app/remove", {})
    assert page.flashes() == ["The source old-app was removed."]
    assert svc.integrations.secrets_of("old-app") == []
    assert 'id="source-old-app"' not in page.html
    assert len(audit(svc, "webhook_source.removed")) == 1


def test_a_source_from_the_settings_is_listed_but_changed_there(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(webhook_secrets={"kiosk": ["from-env"]})
    page = admin(app)
    assert "Only in the settings" in row(page, "source-kiosk")
    assert "/admin/webhooks/sources/kiosk/rotate" not in page.html
    page.post("/admin/webhooks/sources", {"name": "kiosk"})  # kept here too, now
    assert "Yes" in row(page, "source-kiosk").split("Yes, until")[0]
    assert services(app).integrations.secrets_of("kiosk") == ["from-env", revealed(page)]


def test_bad_names_and_addresses_are_422_with_the_message_beside_the_field(
    app: Flask,
    svc: Services,
) -> None:
    page = admin(app)
    page.post("/admin/webhooks/sources", {"name": "Hotel PMS!"})
    assert page.status == 422
    assert page.errors() == {"name": "Use lower-case letters, digits, '.', '_' or '-'."}
    assert 'value="hotel pms!"' in page.html  # kept, to correct
    page.post("/admin/webhooks/sources", {"name": "pms"})
    page.post("/admin/webhooks/sources", {"name": "pms"})
    assert page.status == 409
    assert page.errors() == {"name": "There is a source called pms already: rotate its secret."}
    page.post("/admin/webhooks/subscriptions", {"url": "ftp://crm.example/x"})
    assert page.status == 422
    errors = page.errors()
    assert errors["url"] == "Give an http:// or https:// address."
    assert errors["types"].startswith("Choose among: complaint.created, ")
    assert 'value="ftp://crm.example/x"' in page.html
    long = "https://crm.example/" + "a" * 490
    page.post("/admin/webhooks/subscriptions", {"url": long, "types": ["complaint.created"]})
    assert page.status == 422 and page.errors() == {"url": "At most 500 characters."}
    assert "Traceback" not in page.html
    assert svc.integrations.subscriptions() == []


# ---------------------------------------------------------------- subscriptions


def test_a_subscription_shows_its_secret_once_and_can_be_paused_resumed_and_deleted(
    app: Flask,
    svc: Services,
) -> None:
    page = admin(app)
    page.post(
        "/admin/webhooks/subscriptions",
        {"url": URL, "types": ["complaint.closed", "complaint.created"]},
    )
    [sub] = svc.integrations.subscriptions()
    assert revealed(page) == sub.secret
    assert f"The signing secret of the subscription to {URL}" in page.html
    assert sub.events == {"types": ["complaint.created", "complaint.closed"]}
    shown = row(page, f"subscription-{sub.id}")
    assert "Complaint received" in shown and "Complaint closed" in shown
    assert "Active" in shown and "admin" in shown
    assert f'href="/admin/webhooks/subscriptions/{sub.id}"' in page.html
    assert revealed(page.get("/admin/webhooks")) is None

    page.post(f"/admin/webhooks/subscriptions/{sub.id}/pause", {})
    assert "Paused" in row(page, f"subscription-{sub.id}")
    assert not svc.integrations.subscriptions()[0].active
    page.post(f"/admin/webhooks/subscriptions/{sub.id}/resume", {})
    assert "Active" in row(page, f"subscription-{sub.id}")

    page.get(f"/admin/webhooks/subscriptions/{sub.id}/delete")
    assert f"Delete the subscription to {URL}?" in page.html
    assert svc.integrations.subscriptions()[0].active
    page.post(f"/admin/webhooks/subscriptions/{sub.id}/delete", {})
    assert page.flashes() == [f"The subscription to {URL} was deleted."]
    assert "Deleted" in row(page, f"subscription-{sub.id}")
    page.post(f"/admin/webhooks/subscriptions/{sub.id}/resume", {})  # not back from deletion
    assert page.flashes() == [f"Subscription {sub.id} was deleted; add a new one."]
    assert not svc.integrations.subscriptions()[0].active
    actions = [e.action for e in audit(svc, "webhook_subscription.changed")]
    assert len(actions) == 2 and len(audit(svc, "webhook_subscription.deleted")) == 1
    assert page.get("/admin/webhooks/subscriptions/999").status == 404


def test_the_delivery_log_lists_a_subscriptions_calls_by_status(app: Flask, svc: Services) -> None:
    subscription_id, _secret = svc.integrations.subscribe(URL, ["complaint.created"], "admin")
    other_id, _ = svc.integrations.subscribe(URL + "/other", ["task.ready"], "admin")
    complaint = Complaint(svc, "facility")
    number = complaint.record.number
    page = admin(app, f"/admin/webhooks/subscriptions/{subscription_id}")
    assert page.status == 200 and URL in page.html
    [message_row] = re.findall(r'<tr id="(message-\d+)"', page.html)
    shown = row(page, message_row)
    assert "Complaint received" in shown and "Pending" in shown and number in shown
    assert f'href="/complaints/{complaint.id}">{number}</a>' in page.html
    assert "task.ready" not in page.html  # the other subscription's calls are not here
    page.get(f"/admin/webhooks/subscriptions/{subscription_id}?status=sent")
    assert "No messages here." in page.html
    page.get(f"/admin/webhooks/subscriptions/{other_id}")
    assert "Pending" in row(page, re.findall(r'<tr id="(message-\d+)"', page.html)[0])


def test_a_deleted_subscriptions_calls_are_not_offered_for_retry(app: Flask, svc: Services) -> None:
    subscription_id, _secret = svc.integrations.subscribe(URL, ["complaint.created"], "admin")
    Complaint(svc, "facility")
    svc.integrations.delete_subscription(subscription_id, "admin")
    page = admin(app, "/admin/outbox?status=discarded")
    [message_row] = re.findall(r'<tr id="message-(\d+)"', page.html)
    assert "the subscription was deleted" in row(page, f"message-{message_row}")
    assert f"/admin/outbox/{message_row}/retry" not in page.html


# ---------------------------------------------------------------- the outbox


@pytest.fixture
def dead(svc: Services, receiver: Callable[..., Receiver]) -> OutboxMessage:
    """A webhook call the receiver refused for good (400): dead at its first attempt."""
    gateway = receiver(failures=1, failing_status=400)
    svc.integrations.subscribe(gateway.url, ["complaint.created"], "admin")
    Complaint(svc, "facility")
    assert deliver_due(svc.store) == 1
    with svc.store.read() as session:
        [found] = session.scalars(select(OutboxMessage))
    assert found.status == "dead"
    return found


def test_the_outbox_shows_dead_messages_first_with_what_went_wrong(
    app: Flask, svc: Services, dead: OutboxMessage
) -> None:
    page = admin(app, "/admin/outbox")
    shown = row(page, f"message-{dead.id}")
    assert "Webhook" in shown and "Complaint received" in shown and "Dead" in shown
    assert "HTTP 400" in shown and dead.recipient in shown
    assert re.search(r'aria-current="page">Dead\s*<span class="muted">\(1\)', page.html)
    page.get("/admin/outbox?status=sent")
    assert f'id="message-{dead.id}"' not in page.html
    page.get("/admin/outbox?status=all")
    assert f'id="message-{dead.id}"' in page.html


def test_retry_and_discard_need_a_reason_and_are_in_the_audit_log(
    app: Flask, svc: Services, dead: OutboxMessage
) -> None:
    page = admin(app, "/admin/outbox")
    page.post(f"/admin/outbox/{dead.id}/retry", {"reason": "  ", "status": "dead"})
    assert page.status == 422
    assert page.errors() == {f"reason_{dead.id}": "Give a reason: it goes into the audit log."}
    assert message(svc, dead.id).status == "dead" and not audit(svc, "outbox.retried")

    page.post(f"/admin/outbox/{dead.id}/retry", {"reason": "CRM fixed", "status": "dead"})
    assert page.flashes() == [f"Message {dead.id} goes out again."]
    assert (message(svc, dead.id).status, message(svc, dead.id).attempts) == ("pending", 0)
    [entry] = audit(svc, "outbox.retried")
    assert entry.actor == "admin" and entry.subject == f"outbox {dead.id}"
    assert entry.data["reason"] == "CRM fixed"

    page.get("/admin/outbox?status=pending")
    page.post(f"/admin/outbox/{dead.id}/retry", {"reason": "again", "status": "pending"})
    assert page.flashes() == [
        f"Message {dead.id} was not retried: only dead or discarded messages can be."
    ]
    page.post(f"/admin/outbox/{dead.id}/discard", {"reason": "not needed", "status": "pending"})
    assert page.flashes() == [f"Message {dead.id} was discarded: it will not be sent."]
    assert message(svc, dead.id).status == "discarded"
    assert audit(svc, "outbox.discarded")[0].data["reason"] == "not needed"
    page.post("/admin/outbox/99999/discard", {"reason": "gone"})
    assert page.flashes() == ["There is no message 99999."]


def test_retrying_from_a_delivery_log_comes_back_to_it(
    app: Flask, svc: Services, dead: OutboxMessage
) -> None:
    assert dead.subscription_id is not None
    log = f"/admin/webhooks/subscriptions/{dead.subscription_id}"
    page = admin(app, log + "?status=dead")
    page.post(
        f"/admin/outbox/{dead.id}/retry",
        {"reason": "receiver back", "status": "dead", "subscription": str(dead.subscription_id)},
    )
    assert page.path == log and page.flashes() == [f"Message {dead.id} goes out again."]
    assert deliver_due(svc.store) == 1
    assert message(svc, dead.id).status == "sent"


# ---------------------------------------------------------------- background work


def test_scaled_out_every_admin_page_and_healthz_say_when_no_scheduler_runs(
    pg_url: str, tmp_path: Path
) -> None:
    # Without a scheduler no timer fires and no message goes out, and nothing else shows it.
    def health(app: Flask) -> tuple[int, dict[str, Any]]:
        answer = app.test_client().get("/healthz")
        return answer.status_code, answer.get_json()

    scaled = create_app(
        _settings(tmp_path, pg_url, BUNDLED, broker_url="redis://127.0.0.1:6379/12")
    )
    embedded = create_app(_settings(tmp_path, pg_url, BUNDLED))
    svc = services(scaled)
    try:
        silent = admin(scaled, "/admin/outbox")
        assert "No scheduler has run yet" in silent.html
        assert "No scheduler" not in admin(embedded, "/admin/outbox").html  # `serve` does it all
        never = {"status": "ok", "scheduler": {"running": False, "lead_until": None}}
        assert health(scaled) == (200, never)  # told; this process is fine all the same
        assert health(embedded) == (200, {"status": "ok"})

        assert Scheduler(svc).lead() is None  # a scheduler leads now
        for path in ("/admin/outbox", "/admin/webhooks", "/admin/users"):
            assert 'id="scheduler-silent"' not in admin(scaled, path).html
        code, body = health(scaled)
        assert code == 200 and body["scheduler"]["running"] is True
        assert datetime.fromisoformat(body["scheduler"]["lead_until"]) > utcnow()

        with svc.store.write() as session:  # it was killed a while ago: its lead lapsed
            session.execute(update(Leader).values(until=utcnow() - timedelta(minutes=10)))
        for path in ("/admin/outbox", "/admin/users"):
            assert "No scheduler is running: the last one stopped at" in admin(scaled, path).html
        assert 'id="scheduler-silent"' not in Page(scaled).sign_in("technician").get("/inbox").html
        code, body = health(scaled)
        assert code == 200 and body["scheduler"]["running"] is False
    finally:
        svc.store.dispose()
        services(embedded).store.dispose()
