"""Notifications in the app over HTTP: the badge of unseen ones in the navigation, the page that
lists them (to one's roles and to oneself) and clears the badge, and "How to reach you"."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from complaintflow.accounts import Contact
from complaintflow.bootstrap import demo_password
from complaintflow.errors import Unauthorized
from complaintflow.models import AuditEntry, Notification, User, utcnow
from complaintflow.services import Services

from .complaints import Complaint
from .conftest import statements
from .test_pages import Page

NOTIFY_TECHNICIAN = "立即通知機電人員"  # the facility step that tells the technicians
NEW = '<span class="tag">New</span>'  # the mark of a notification not seen before


def badge(page: Page) -> str | None:
    """The count on the Notifications link of the navigation, as shown."""
    link = re.search(r'<a href="/notifications"[^>]*>(.*?)</a>', page.html, re.S)
    assert link, "no Notifications link in the navigation"
    count = re.search(r'<span class="badge"[^>]*>([^<]+)</span>', link[1])
    return count[1] if count else None


def rows(page: Page) -> list[str]:
    """The notifications listed, each row's text with tags removed."""
    table = re.search(
        r'<table class="inbox notifications">.*?<tbody>(.*?)</tbody>', page.html, re.S
    )
    if not table:
        return []
    return [
        " ".join(unescape(re.sub(r"<[^>]+>", " ", r)).split())
        for r in re.findall(r"<tr[^>]*>(.*?)</tr>", table[1], re.S)
    ]


def seen_at(svc: Services, username: str) -> Any:
    with svc.store.read() as session:
        return session.scalars(
            select(User.notifications_seen_at).where(User.username == username)
        ).one()


def note(svc: Services, instance_id: int, **values: Any) -> None:
    """A notification written straight into the table, as a step would write it."""
    with svc.store.write() as session:
        session.add(Notification(instance_id=instance_id, created_at=utcnow(), data={}, **values))


def test_the_badge_counts_what_is_new_and_opening_the_page_clears_it(
    app: Flask, svc: Services
) -> None:
    technician = Page(app).sign_in("technician").get("/inbox")
    assert badge(technician) is None
    first = Complaint(svc, "facility")  # the technicians are told of it
    Complaint(svc, "facility")
    assert badge(technician.get("/inbox")) == "2"
    assert "(2 new)" in technician.html  # said in words to screen readers
    assert badge(Page(app).sign_in("bar_staff").get("/inbox")) is None  # not their role

    technician.get("/notifications")
    assert badge(technician) is None  # cleared on the page itself
    assert seen_at(svc, "technician") is not None
    listed = rows(technician)
    assert len(listed) == 2
    assert listed[1].startswith(first.record.number)
    assert "New complaint" in listed[1] and NOTIFY_TECHNICIAN in listed[1]
    assert technician.html.count(NEW) == 2  # both were new to them
    assert f'href="/complaints/{first.id}">{first.record.number}</a>' in technician.html

    assert badge(technician.get("/complaints")) is None
    technician.get("/notifications")
    assert len(rows(technician)) == 2 and NEW not in technician.html  # seen before
    Complaint(svc, "facility")
    assert badge(technician.get("/inbox")) == "1"


def test_urgent_notices_are_marked_and_admins_see_every_role(app: Flask, svc: Services) -> None:
    complaint = Complaint(svc, "facility").do("contact_complainant", assessment="urgent")
    supervisor = Page(app).sign_in("engineering_supervisor").get("/notifications")
    [urgent] = rows(supervisor)
    assert urgent.startswith(complaint.record.number)
    assert "Urgent Urgent complaint" in urgent
    assert '<tr class="urgent new">' in supervisor.html
    assert len(rows(Page(app).sign_in("technician").get("/notifications"))) == 1
    everything = rows(Page(app).sign_in("admin").get("/notifications"))
    assert len(everything) == 2
    assert any("New complaint" in r for r in everything)
    assert any("Urgent complaint" in r for r in everything)


def test_notices_to_a_person_reach_only_them(app: Flask, svc: Services) -> None:
    complaint = Complaint(svc, "facility")
    note(
        svc,
        complaint.id,
        audience="person",
        username="technician",
        event="deadline.approaching",
        urgent=False,
    )
    note(svc, complaint.id, audience="person", username="clerk", event="deadline.approaching")
    note(svc, complaint.id, audience="complainant", event="complaint.in_progress")
    technician = Page(app).sign_in("technician").get("/inbox")
    assert badge(technician) == "2"  # their role's new complaint, and the one to them
    listed = rows(technician.get("/notifications"))
    assert len(listed) == 2 and "A deadline is near" in listed[0]
    admin = rows(Page(app).sign_in("admin").get("/notifications"))
    assert not any("A deadline is near" in r for r in admin)  # another person's
    assert not any("being handled" in r for r in admin)  # the complainant's


def test_the_page_shows_the_newest_hundred(app: Flask, svc: Services) -> None:
    complaint = Complaint(svc, "facility")
    with svc.store.write() as session:
        start = utcnow()
        for n in range(105):
            session.add(
                Notification(
                    instance_id=complaint.id,
                    audience="role",
                    role="technician",
                    event="deadline.missed" if n == 104 else "complaint.new",
                    urgent=n == 104,
                    data={},
                    created_at=start + timedelta(seconds=n),
                )
            )
    page = Page(app).sign_in("technician").get("/inbox")
    assert badge(page) == "99+"
    listed = rows(page.get("/notifications"))
    assert len(listed) == 100
    assert "A deadline passed" in listed[0] and "New complaint" in listed[1]
    assert "the newest 100 are shown" in page.html


def test_the_badge_costs_one_query_per_page(app: Flask, svc: Services) -> None:
    Complaint(svc, "facility")
    page = Page(app).sign_in("technician")
    with statements(svc) as seen:
        page.get("/complaints")
    assert badge(page) == "1"
    assert len([s for s in seen if "FROM notifications" in s]) == 1  # the count, nothing else
    with statements(svc) as seen:  # the inbox table refreshed by script has no navigation
        page.client.get("/inbox?partial=1")
    assert not [s for s in seen if "count(*)" in s and "FROM notifications" in s]


def test_reading_the_notifications_moves_the_bookmark_without_reading_roles(
    app: Flask, svc: Services
) -> None:
    Complaint(svc, "facility")
    page = Page(app).sign_in("technician")
    page.get("/complaints")  # who is calling: read once, then kept by the process
    with statements(svc) as seen:
        page.get("/notifications")
    assert len([s for s in seen if s.startswith("UPDATE users")]) == 1  # the bookmark moved
    assert not [s for s in seen if "FROM user_roles" in s]  # (who is calling is another read)


def test_how_to_reach_you_is_saved_and_wrong_entries_are_shown_beside_their_fields(
    app: Flask, svc: Services
) -> None:
    page = Page(app).sign_in("technician").get("/notifications")
    assert 'href="/account"' in page.html
    page.get("/account")
    assert page.status == 200 and 'name="locale" value="en" checked' in page.html
    page.post("/account", {"email": "not-an-address", "phone": "call me", "locale": "fr"})
    assert page.status == 422
    assert page.errors() == {
        "email": "Give an email address such as name@example.com.",
        "phone": "Give a phone number: digits, spaces, + ( ) -.",
        "locale": "Choose among: en, zh_Hans, zh_Hant.",
    }
    assert 'value="not-an-address"' in page.html  # kept, to correct
    assert svc.accounts.contact_of("technician") == Contact(None, None, "en")
    page.post("/account", {"email": "a" * 195 + "@x.com", "phone": "", "locale": "en"})
    assert page.status == 422 and page.errors() == {"email": "At most 200 characters."}

    page.post(
        "/account", {"email": " tech@example.com ", "phone": "+852 5555 0101", "locale": "zh_Hant"}
    )
    assert page.path == "/account" and page.flashes() == [
        "Saved: notifications reach you as shown."
    ]
    assert svc.accounts.contact_of("technician") == Contact(
        "tech@example.com", "+852 5555 0101", "zh_Hant"
    )
    assert 'name="locale" value="zh_Hant" checked' in page.html
    page.get("/notifications")
    assert "tech@example.com" in page.html and "繁體中文" in page.html
    with svc.store.read() as session:
        [entry] = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "user.contact_changed")
        )
    assert (entry.actor, entry.subject) == ("technician", "technician")
    assert entry.data == {"email": True, "phone": True, "locale": "zh_Hant"}


def test_staff_change_their_own_password_on_the_account_page(app: Flask, svc: Services) -> None:
    old = demo_password("technician")
    elsewhere = Page(app).sign_in("technician")  # another browser, signed in before the change
    token = svc.accounts.issue_token(svc.accounts.authenticate("technician", old))
    page = Page(app).sign_in("technician").get("/account")
    assert 'autocomplete="current-password"' in page.html
    attempts = {
        "new_password": ({"current_password": old, "new_password": "short"}, "At least 8"),
        "repeat_password": (
            {"current_password": old, "new_password": "a-new-pass", "repeat_password": "other"},
            "This is not the same as the new password.",
        ),
        "current_password": (
            {"current_password": "wrong!", "new_password": "a-new-pass"},
            "This is not your current password.",
        ),
    }
    for field, (form, message) in attempts.items():
        page.get("/account").post("/account/password", {"repeat_password": "a-new-pass", **form})
        assert page.status == 422 and page.errors()[field].startswith(message), field
        assert "a-new-pass" not in page.html  # a password is never shown back
    page.get("/account").post(
        "/account/password",
        {"current_password": old, "new_password": "a-new-pass", "repeat_password": "a-new-pass"},
    )
    assert page.path == "/account" and page.flashes() == ["Your password is changed."]
    assert page.client.get("/inbox").status_code == 200  # this browser goes on
    # Every other session and token made with the old password has ended.
    assert elsewhere.client.get("/inbox").headers["Location"].startswith("/signin")
    with pytest.raises(Unauthorized, match="the password changed since this token was made"):
        svc.accounts.person_for_token(token)
    assert svc.accounts.authenticate("technician", "a-new-pass").username == "technician"
    with pytest.raises(Unauthorized):
        svc.accounts.authenticate("technician", old)
    zh = (
        Page(app)
        .sign_in("technician", "a-new-pass")
        .get("/account", **{"Accept-Language": "zh-TW"})
    )
    assert "更改密碼" in zh.html
