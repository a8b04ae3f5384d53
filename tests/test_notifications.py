"""Notifications reach people through real channels: email through an SMTP server (aiosmtpd),
SMS through an HTTP gateway on localhost, in each person's language, and in the app; deadline
warnings go before a step is due, to its assignee or else its role."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.header import decode_header, make_header
from email.message import Message

import pytest
from flask import Flask
from sqlalchemy import select

from complaintflow.accounts import Contact
from complaintflow.app import services
from complaintflow.dispatch import deliver_due
from complaintflow.models import Notification, OutboxMessage
from complaintflow.services import Services
from complaintflow.status_links import status_path

from .complaints import Complaint
from .factories import fill
from .receivers import Receiver, SmtpServer
from .test_notification_pages import statements

PUBLIC = "https://desk.example"


def _subject(mail: Message) -> str:
    return str(make_header(decode_header(mail["Subject"])))


def _body(mail: Message) -> str:
    return str(mail.get_payload(decode=True).decode(mail.get_content_charset() or "utf-8"))


@pytest.fixture
def mail_app(make_app: Callable[..., Flask], smtp: SmtpServer) -> Flask:
    return make_app(
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_starttls=False,
        mail_from="desk@example.com",
        public_url=PUBLIC,
    )


@pytest.fixture
def mailing(mail_app: Flask) -> Services:
    svc = services(mail_app)
    accounts = svc.accounts
    for name, locale in (("tech_en", "en"), ("tech_hans", "zh_Hans"), ("tech_hant", "zh_Hant")):
        accounts.create_user(
            name, "password-1", ["technician"], contact=Contact(f"{name}@example.com", None, locale)
        )
    accounts.create_user("tech_quiet", "password-1", ["technician"])  # no address: app only
    accounts.create_user(
        "clerk_mail", "password-1", ["clerk"], contact=Contact("clerk@example.com", None, "en")
    )
    return svc


def test_A_4_2_the_technicians_are_mailed_in_their_own_language(
    mailing: Services, smtp: SmtpServer
) -> None:
    c = Complaint(mailing, "facility")
    assert deliver_due(mailing.store) == 3
    received = {tuple(to): mail for to, mail in smtp.messages}
    assert set(received) == {
        ("tech_en@example.com",),
        ("tech_hans@example.com",),
        ("tech_hant@example.com",),
    }  # not the clerk, not the technician without an address
    number = c.record.number
    en, hans, hant = (received[(f"tech_{x}@example.com",)] for x in ("en", "hans", "hant"))
    assert _subject(en) == f"New complaint {number}"
    assert "M&E technician" in _body(en) and "M&E facility complaints" in _body(en)
    assert _subject(hant) == f"新投訴 {number}" and "機電人員" in _body(hant)
    assert _subject(hans) == f"新投诉 {number}" and "机电人员" in _body(hans)
    assert f"{PUBLIC}/complaints/{c.id}" in _body(en)
    assert en["From"] == "desk@example.com"
    assert (en["Content-Language"], hans["Content-Language"]) == ("en", "zh-Hans")
    with mailing.store.read() as session:
        keys = {m.key for m in session.scalars(select(OutboxMessage))}
        assert {mail["Message-ID"] for mail in received.values()} == {
            f"<{k}@complaintflow>" for k in keys
        }
    assert deliver_due(mailing.store) == 0  # each once


def test_a_start_reads_no_record_it_cannot_have_nor_the_roles_of_whom_it_tells(
    mailing: Services,
) -> None:
    with statements(mailing) as seen:
        Complaint(mailing, "facility")  # record.create, then the technicians are told
    reads = [s for s in seen if s.lstrip().startswith("SELECT")]
    assert [s for s in reads if "FROM users" in s], "the technicians were read"
    assert not [s for s in reads if "FROM complaint_records" in s or "FROM user_roles" in s]
    assert deliver_due(mailing.store) == 3  # and told, each by their own address


def test_the_complainant_is_mailed_in_the_language_they_used(
    mail_app: Flask, mailing: Services, smtp: SmtpServer
) -> None:
    with mailing.store.read() as session:
        diagram = mailing.engine.diagram(mailing.engine.current_version(session, "bar"))
    intake = fill(diagram.intake_form, guest_contact="guest@example.com")
    instance_id = mailing.engine.start("bar", intake, "bar_staff", language="zh_Hans")
    c = Complaint.existing(mailing, instance_id)
    c.do("listen", serious=True)  # B-3.11: the guest is told it is being handled
    deliver_due(mailing.store)
    to_guest = [mail for to, mail in smtp.messages if to == ["guest@example.com"]]
    assert len(to_guest) == 1
    assert _subject(to_guest[0]) == f"您的投诉 {c.record.number} 正在处理"
    link = PUBLIC + status_path(mailing.settings.secret_key, instance_id)
    assert link in _body(to_guest[0])
    page = mail_app.test_client().get(link.removeprefix(PUBLIC))
    assert page.status_code == 200 and c.record.number in page.get_data(as_text=True)


def test_urgent_notices_go_by_sms_as_well(
    make_app: Callable[..., Flask], receiver: Callable[..., Receiver]
) -> None:
    gateway = receiver()
    svc = services(make_app(sms_url=gateway.url, sms_token="gateway-token"))
    svc.accounts.create_user(
        "sup_phone",
        "password-1",
        ["engineering_supervisor"],
        contact=Contact(None, "+852 5555 0101", "zh_Hant"),
    )
    svc.accounts.create_user(
        "tech_phone", "password-1", ["technician"], contact=Contact(None, "+852 5555 0102", "en")
    )
    c = Complaint(svc, "facility")
    deliver_due(svc.store)
    assert gateway.calls == []  # a new complaint is not urgent: no SMS to the technician
    c.do("contact_complainant", assessment="urgent")
    deliver_due(svc.store)
    (call,) = gateway.calls
    assert call.headers["Authorization"] == "Bearer gateway-token"
    assert call.json()["to"] == "+852 5555 0101"
    assert call.json()["text"].startswith(f"緊急：投訴 {c.record.number}")
    assert call.headers["Idempotency-Key"] == call.json()["id"]


def test_without_channels_set_up_nothing_waits_to_be_sent(
    make_app: Callable[..., Flask],
) -> None:
    svc = services(make_app())
    svc.accounts.create_user(
        "tech_mail", "password-1", ["technician"], contact=Contact("t@example.com", "+85212345678")
    )
    c = Complaint(svc, "facility")
    with svc.store.read() as session:
        assert session.scalars(select(OutboxMessage)).all() == []
    assert ("technician", "complaint.new") in c.notified_roles()


def _warnings(svc: Services, instance_id: int) -> list[Notification]:
    with svc.store.read() as session:
        return list(
            session.scalars(
                select(Notification).where(
                    Notification.instance_id == instance_id,
                    Notification.event == "deadline.approaching",
                )
            )
        )


def test_a_warning_goes_to_the_role_before_the_deadline_and_only_once(
    make_app: Callable[..., Flask], smtp: SmtpServer
) -> None:
    svc = services(
        make_app(
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_starttls=False,
            sla_overrides={"facility": {"technician_contact": "PT10M"}},
        )
    )
    svc.accounts.create_user(
        "tech_mail", "password-1", ["technician"], contact=Contact("t@example.com", None, "en")
    )
    c = Complaint(svc, "facility")
    assert svc.engine.warn_deadlines(timedelta(minutes=5)) == 0  # due in 10 min: not yet
    assert svc.engine.warn_deadlines(timedelta(minutes=15)) == 1
    assert svc.engine.warn_deadlines(timedelta(minutes=15)) == 0
    (warning,) = _warnings(svc, c.id)
    assert (warning.audience, warning.role) == ("role", "technician")
    deliver_due(svc.store)
    warned = [mail for to, mail in smtp.messages if to == ["t@example.com"]]
    assert _subject(warned[-1]) == f"Due soon: complaint {c.record.number}"
    assert "立即與用戶聯系並到現場確認" in _body(warned[-1])


def test_a_claimed_task_warns_its_assignee_only(make_app: Callable[..., Flask]) -> None:
    svc = services(make_app(sla_overrides={"facility": {"technician_contact": "PT10M"}}))
    c = Complaint(svc, "facility")
    svc.engine.claim(c.ready()["contact_complainant"].id, "technician")
    with statements(svc) as seen:
        svc.engine.warn_deadlines(timedelta(minutes=15))
    (warning,) = _warnings(svc, c.id)
    assert (warning.audience, warning.username, warning.role) == ("person", "technician", None)
    reads = [s for s in seen if s.lstrip().startswith("SELECT")]
    assert [s for s in reads if "FROM users" in s], "the assignee was read, for their address"
    assert not [s for s in reads if "FROM user_roles" in s]  # and not their roles


def test_a_passed_deadline_is_escalated_not_warned(make_app: Callable[..., Flask]) -> None:
    svc = services(make_app(sla_overrides={"facility": {"technician_contact": "PT0S"}}))
    c = Complaint(svc, "facility")
    assert svc.engine.warn_deadlines(timedelta(minutes=15)) == 0
    assert ("engineering_supervisor", "technician_contact") in c.escalations()
