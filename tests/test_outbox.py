"""The outbox delivers at least once and, with the idempotency key, effectively once: failures
wait longer each time, then the message is dead for an admin to retry or discard (API and CLI),
and each such act is in the audit log."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from sqlalchemy import select, update

from complaintflow import dispatch, outbox
from complaintflow.accounts import Contact
from complaintflow.app import services
from complaintflow.dispatch import deliver_due
from complaintflow.models import AuditEntry, OutboxMessage, utcnow
from complaintflow.outbox import FIRST_WAIT, LONGEST_WAIT, backoff
from complaintflow.services import Services

from .complaints import Complaint
from .conftest import Api
from .receivers import Receiver


def test_each_wait_doubles_up_to_an_hour_with_jitter() -> None:
    rng = random.Random(7)
    for attempts in range(1, 30):
        ceiling = min(LONGEST_WAIT, FIRST_WAIT * 2 ** (attempts - 1))
        waits = [backoff(attempts, rng) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1  # spread, so failed messages do not retry in step
    assert backoff(40, rng) <= LONGEST_WAIT


def _sms_app(make_app: Callable[..., Flask], url: str, **settings: object) -> Flask:
    app = make_app(sms_url=url, **settings)
    services(app).accounts.create_user(
        "sup_phone",
        "password-1",
        ["engineering_supervisor"],
        contact=Contact(None, "+85255550101", "en"),
    )
    return app


def _urgent(svc: Services) -> Complaint:
    return Complaint(svc, "facility").do("contact_complainant", assessment="urgent")


def _messages(svc: Services) -> list[OutboxMessage]:
    with svc.store.read() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def _time_passes(svc: Services) -> None:
    """Bring every waiting retry forward to now, as if its wait were over."""
    with svc.store.write() as session:
        session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))


def test_a_receiver_failing_three_times_then_succeeding_gets_one_delivery(
    make_app: Callable[..., Flask], receiver: Callable[..., Receiver]
) -> None:
    gateway = receiver(failures=3)
    svc = services(_sms_app(make_app, gateway.url))
    _urgent(svc)
    for attempt in range(1, 4):
        assert deliver_due(svc.store) == 1
        (message,) = _messages(svc)
        assert (message.status, message.attempts) == ("pending", attempt)
        assert message.last_error and message.last_error.startswith("HTTP 500")
        assert message.next_attempt_at > utcnow()  # waiting, not hammering
        assert deliver_due(svc.store) == 0
        _time_passes(svc)
    assert deliver_due(svc.store) == 1
    (message,) = _messages(svc)
    assert (message.status, message.attempts, message.last_error) == ("sent", 4, None)
    assert len(gateway.calls) == 4 and len(gateway.accepted) == 1
    assert {c.headers["Idempotency-Key"] for c in gateway.calls} == {message.key}
    _time_passes(svc)
    assert deliver_due(svc.store) == 0


def test_a_refusal_that_will_not_change_is_dead_at_once(
    make_app: Callable[..., Flask], receiver: Callable[..., Receiver]
) -> None:
    gateway = receiver(failures=99, failing_status=400)
    svc = services(_sms_app(make_app, gateway.url))
    _urgent(svc)
    deliver_due(svc.store)
    (message,) = _messages(svc)
    assert (message.status, message.attempts) == ("dead", 1)
    assert message.last_error and message.last_error.startswith("HTTP 400")


def test_dead_messages_are_listed_retried_and_discarded_with_reasons(
    make_app: Callable[..., Flask], receiver: Callable[..., Receiver]
) -> None:
    gateway = receiver(failures=2)
    app = _sms_app(make_app, gateway.url, outbox_max_attempts=2)
    svc = services(app)
    _urgent(svc)
    deliver_due(svc.store)
    _time_passes(svc)
    deliver_due(svc.store)
    (message,) = _messages(svc)
    assert (message.status, message.attempts) == ("dead", 2)
    api = Api(app.test_client())
    dead = api.get("/outbox?status=dead", "admin").get_json()["messages"]
    assert [(m["id"], m["channel"], m["attempts"]) for m in dead] == [(message.id, "sms", 2)]
    assert api.post(f"/outbox/{message.id}/retry", "technician", {"reason": "x"}).status_code == 403
    assert api.post(f"/outbox/{message.id}/retry", "admin", {}).status_code == 400
    answer = api.post(f"/outbox/{message.id}/retry", "admin", {"reason": "gateway fixed"})
    assert answer.status_code == 200
    deliver_due(svc.store)
    assert _messages(svc)[0].status == "sent" and len(gateway.accepted) == 1
    again = api.post(f"/outbox/{message.id}/discard", "admin", {"reason": "late"})
    assert again.status_code == 409  # sent is sent
    with svc.store.read() as session:
        acts = session.scalars(select(AuditEntry).where(AuditEntry.action.like("outbox.%"))).all()
        assert [(a.action, a.actor, a.data["reason"]) for a in acts] == [
            ("outbox.retried", "admin", "gateway fixed")
        ]


def test_the_cli_lists_retries_and_discards(
    make_app: Callable[..., Flask], receiver: Callable[..., Receiver], tmp_path: object
) -> None:
    gateway = receiver(failures=99)
    svc = services(_sms_app(make_app, gateway.url, outbox_max_attempts=1))
    _urgent(svc)
    deliver_due(svc.store)
    (message,) = _messages(svc)
    env = {
        "COMPLAINTFLOW_HOME": str(svc.settings.home),
        "COMPLAINTFLOW_DATABASE_URL": svc.settings.database_url,
        "COMPLAINTFLOW_SECRET_KEY": svc.settings.secret_key,
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "complaintflow", *args],
            env={**_clean_env(), **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    listed = cli("outbox", "list", "--status", "dead")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith(f"{message.id}\tdead\t1\tsms\tcomplaint.urgent\t+85255550101")
    unexplained = cli("outbox", "retry", str(message.id))  # --reason is required
    assert (unexplained.returncode, unexplained.stderr) == (
        1,
        "error: Missing option '--reason'.\n",
    )
    retried = cli("outbox", "retry", str(message.id), "--reason", "number fixed")
    assert retried.returncode == 0 and "pending" in retried.stdout
    discarded = cli("outbox", "discard", str(message.id), "--reason", "guest left")
    assert discarded.returncode == 0
    missing = cli("outbox", "discard", "999999", "--reason", "x")
    assert (missing.returncode, missing.stderr) == (1, "error: there is no outbox message 999999\n")
    assert _messages(svc)[0].status == "discarded"
    _time_passes(svc)
    assert deliver_due(svc.store) == 0
    with svc.store.read() as session:
        acts = session.scalars(select(AuditEntry).where(AuditEntry.action.like("outbox.%"))).all()
        assert [(a.action, a.actor) for a in acts] == [
            ("outbox.retried", "cli"),
            ("outbox.discarded", "cli"),
        ]


def test_a_dispatcher_goes_on_from_batch_to_batch_for_its_time_while_nothing_else_waits(
    make_app: Callable[..., Flask], receiver: Callable[..., Receiver]
) -> None:
    # A 5-second lease covers no 10-second delivery timeout: batches of one message.
    gateway = receiver()
    svc = services(_sms_app(make_app, gateway.url, lease_seconds=5))
    for _ in range(4):
        _urgent(svc)
    assert dispatch.batch_size(svc.store) == 1
    assert deliver_due(svc.store) == 1  # no time given: one batch
    assert deliver_due(svc.store, seconds=60, go_on=lambda: False) == 1  # other work waits
    assert deliver_due(svc.store, seconds=60) == 2  # the rest, and back as nothing is left
    assert {m.status for m in _messages(svc)} == {"sent"}
    assert len(gateway.accepted) == 4


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTFLOW_")}


def test_a_message_left_by_a_dead_dispatcher_goes_again_after_its_lease(
    make_app: Callable[..., Flask], receiver: Callable[..., Receiver]
) -> None:
    gateway = receiver()
    svc = services(_sms_app(make_app, gateway.url))
    _urgent(svc)
    (taken,) = outbox.claim(svc.store, 10)  # a dispatcher takes it, then dies
    assert deliver_due(svc.store) == 0  # leased: nobody else takes it meanwhile
    with svc.store.write() as session:
        session.execute(
            update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
    assert deliver_due(svc.store) == 1
    assert [c.headers["Idempotency-Key"] for c in gateway.calls] == [taken.key]
