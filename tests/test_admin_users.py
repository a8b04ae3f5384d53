"""The users page for admins over HTTP (Flask's test client, CSRF on): adding someone with
field-level refusals, changing roles, a new password, deactivating and activating again; each
in the audit log, and a lost role or a deactivation giving taken tasks back to the inbox."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from complaintflow.accounts import Person
from complaintflow.engine import queries
from complaintflow.errors import Unauthorized
from complaintflow.services import Services

from .complaints import Complaint
from .test_admin_pages import admin, audit, row
from .test_notification_pages import statements
from .test_pages import Page

GOOD = {
    "username": "chan_tai_man",
    "display_name": "陳大文",
    "password": "long-enough-1",
    "repeat_password": "long-enough-1",
    "roles": ["technician", "clerk"],
    "email": "tm.chan@example.com",
    "phone": "+852 5555 0101",
    "locale": "zh_Hant",
}


def user_id(svc: Services, username: str) -> int:
    return next(a.person.id for a in svc.accounts.listing() if a.person.username == username)


def add(app: Flask, **changes: object) -> Page:
    page = admin(app, "/admin/users")
    page.post("/admin/users", {**GOOD, **changes})
    return page


@pytest.mark.parametrize("path", ["/admin/users", "/admin/users/1"])
def test_the_users_pages_are_for_admins_only(app: Flask, path: str) -> None:
    anonymous = app.test_client().get(path, headers={"Accept": "text/html"})
    assert anonymous.status_code == 302 and "/signin" in anonymous.headers["Location"]
    for user in ("technician", "auditor"):
        assert Page(app).sign_in(user).get(path).status == 403
    clerk = Page(app).sign_in("clerk").get("/inbox")
    clerk.post("/admin/users", GOOD)
    assert clerk.status == 403


def test_admins_find_the_users_in_the_navigation_with_their_roles(
    app: Flask, svc: Services
) -> None:
    page = admin(app, "/inbox")
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', page.html, re.S)
    assert nav and 'href="/admin/users">Users<' in nav[1]
    page.get("/admin/users")
    technician = row(page, f"user-{user_id(svc, 'technician')}")
    assert "technician" in technician and "M&E technician" in technician and "Active" in technician
    assert "Administrator" in row(page, f"user-{user_id(svc, 'admin')}")


def test_the_users_list_reads_everyones_roles_in_one_statement(app: Flask, svc: Services) -> None:
    with statements(svc) as seen:
        accounts = svc.accounts.listing()
    assert len(accounts) > 5 and all(a.person.roles for a in accounts)
    assert len([s for s in seen if "FROM user_roles" in s]) == 1  # not one per user


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"username": "chan tai man"}, "username", "1 to 100 characters, without spaces."),
        ({"username": "admin"}, "username", "There is a user called admin already."),
        (
            {"password": "short", "repeat_password": "short"},
            "password",
            "At least 8 characters.",
        ),
        (
            {"repeat_password": "long-enough-2"},
            "repeat_password",
            "This is not the same as the password.",
        ),
        ({"roles": []}, "roles", "Give at least one role."),
        (
            {"roles": ["janitor"]},
            "roles",
            "There is no role janitor; `complaintflow roles` lists them.",
        ),
        ({"email": "not an address"}, "email", "Give an email address such as name@example.com."),
    ],
)
def test_a_new_user_is_refused_field_by_field_and_nothing_is_created(
    app: Flask, svc: Services, changes: dict[str, object], field: str, message: str
) -> None:
    before = (len(svc.accounts.listing()), len(audit(svc, "user.created")))
    page = add(app, **changes)
    assert page.status == 422
    assert page.errors() == {field: message}
    assert "Some fields need your attention." in page.flashes()
    assert (len(svc.accounts.listing()), len(audit(svc, "user.created"))) == before
    assert "long-enough" not in page.html  # a password typed in is not sent back


def test_every_refused_field_is_shown_at_once(app: Flask) -> None:
    page = add(
        app,
        username="chan tai man",
        password="short",
        repeat_password="short",
        roles=[],
        email="not an address",
        locale="fr",
    )
    assert page.status == 422
    assert set(page.errors()) == {"username", "password", "roles", "email", "locale"}


def test_an_admin_adds_someone_who_can_then_sign_in_in_their_roles(
    app: Flask, svc: Services
) -> None:
    page = add(app)
    assert page.status == 200 and page.flashes() == ["chan_tai_man can sign in now."]
    new_id = user_id(svc, "chan_tai_man")
    assert page.path == f"/admin/users/{new_id}"
    account = svc.accounts.account(new_id)
    assert (
        account.person.roles == {"technician", "clerk"} and account.person.display_name == "陳大文"
    )
    assert (account.contact.email, account.contact.locale) == ("tm.chan@example.com", "zh_Hant")
    [entry] = [e for e in audit(svc, "user.created") if e.subject == "chan_tai_man"]
    assert entry.actor == "admin" and entry.data == {"roles": ["clerk", "technician"]}
    assert Page(app).sign_in("chan_tai_man", "long-enough-1").get("/inbox").status == 200


def test_roles_change_and_a_lost_role_gives_its_taken_tasks_back(app: Flask, svc: Services) -> None:
    add(app, roles=["technician"])
    task = Complaint(svc, "facility").ready()["contact_complainant"]
    svc.engine.claim(task.id, "chan_tai_man")
    page = admin(app, f"/admin/users/{user_id(svc, 'chan_tai_man')}")
    page.post(f"/admin/users/{user_id(svc, 'chan_tai_man')}/roles", {"roles": ["clerk"]})
    assert page.flashes() == [
        "The roles of chan_tai_man are changed.",
        "1 task(s) chan_tai_man had taken are waiting in their roles' inboxes again.",
    ]
    assert svc.accounts.account(user_id(svc, "chan_tai_man")).person.roles == {"clerk"}
    with svc.store.read() as session:
        assert queries.get_task(session, task.id).assignee is None
    [entry] = audit(svc, "user.roles_changed")
    assert entry.actor == "admin" and entry.data == {
        "granted": ["clerk"],
        "revoked": ["technician"],
    }

    page.post(f"/admin/users/{user_id(svc, 'chan_tai_man')}/roles", {"roles": ["clerk"]})
    assert page.flashes() == ["chan_tai_man has these roles already: nothing changed."]
    assert len(audit(svc, "user.roles_changed")) == 1

    page.post(f"/admin/users/{user_id(svc, 'chan_tai_man')}/roles", {})
    assert page.status == 422
    assert page.errors() == {
        "roles": "chan_tai_man would be left with no role; deactivate someone who leaves."
    }


def test_giving_tasks_back_leaves_one_a_colleague_took_meanwhile_with_the_colleague(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tasks to give back are read first, then released one by one: in between, the person
    # may have let one go and a colleague taken it. That one stays the colleague's, and the
    # count says only what went back.
    complaint = Complaint(svc, "facility")
    task = complaint.ready()["contact_complainant"]
    svc.engine.claim(task.id, "technician")
    with svc.store.read() as session:
        read_before = queries.claimed_by(session, "technician")
    svc.engine.claim(task.id, "technician", release=True)
    svc.engine.claim(task.id, "colleague")
    monkeypatch.setattr(queries, "claimed_by", lambda *_: read_before)

    assert svc.engine.give_back("technician", lambda role: False, "admin") == 0
    with svc.store.read() as session:
        assert queries.get_task(session, task.id).assignee == "colleague"
    svc.engine.claim(task.id, "colleague", release=True)
    assert svc.engine.give_back("technician", lambda role: False, "admin") == 0  # nobody's


def test_an_admin_cannot_take_their_own_admin_role_or_deactivate_themselves(
    app: Flask, svc: Services
) -> None:
    me = user_id(svc, "admin")
    page = admin(app, f"/admin/users/{me}")
    assert "/deactivate" not in page.html  # no button to lock oneself out
    page.post(f"/admin/users/{me}/roles", {"roles": ["clerk"]})
    assert page.status == 422
    assert page.errors() == {"roles": "You cannot take your own administrator role away."}
    page.get(f"/admin/users/{me}").post(f"/admin/users/{me}/deactivate", {"reason": "oops"})
    assert page.flashes() == ["You cannot deactivate yourself: ask another administrator."]
    assert svc.accounts.account(me).active and svc.accounts.account(me).person.is_admin


def test_deactivating_needs_a_reason_ends_access_and_gives_taken_tasks_back(
    app: Flask, svc: Services
) -> None:
    add(app, roles=["technician"])
    chan = user_id(svc, "chan_tai_man")
    token = svc.accounts.issue_token(svc.accounts.authenticate("chan_tai_man", "long-enough-1"))
    task = Complaint(svc, "facility").ready()["contact_complainant"]
    svc.engine.claim(task.id, "chan_tai_man")

    page = admin(app, f"/admin/users/{chan}")
    page.post(f"/admin/users/{chan}/deactivate", {"reason": "   "})
    assert page.status == 422
    assert page.errors() == {"reason": "Give a reason: it goes into the audit log."}
    assert svc.accounts.account(chan).active

    page.post(f"/admin/users/{chan}/deactivate", {"reason": "left the company"})
    assert page.flashes() == [
        "chan_tai_man can no longer sign in or use their API tokens.",
        "1 task(s) chan_tai_man had taken are waiting in their roles' inboxes again.",
    ]
    assert "Deactivated: cannot sign in or use API tokens" in page.html
    with pytest.raises(Unauthorized):
        svc.accounts.person_for_token(token)
    assert Page(app).sign_in("chan_tai_man", "long-enough-1").path == "/signin"
    [entry] = audit(svc, "user.deactivated")
    assert entry.actor == "admin" and entry.data == {"reason": "left the company"}

    page.post(f"/admin/users/{chan}/activate", {"reason": "came back"})
    assert page.flashes() == ["chan_tai_man may sign in again."]
    page.post(f"/admin/users/{chan}/activate", {"reason": "sent twice"})
    assert page.flashes() == ["Nothing changed: chan_tai_man was so already."]
    assert len(audit(svc, "user.reactivated")) == 1
    assert Page(app).sign_in("chan_tai_man", "long-enough-1").get("/inbox").status == 200


def test_a_new_password_from_an_admin_ends_the_old_ones_sessions_and_lifts_a_lockout(
    app: Flask, svc: Services
) -> None:
    add(app)
    chan = user_id(svc, "chan_tai_man")
    old: Person = svc.accounts.authenticate("chan_tai_man", "long-enough-1")
    token = svc.accounts.issue_token(old)
    for _ in range(5):
        with pytest.raises(Unauthorized):
            svc.accounts.authenticate("chan_tai_man", "wrong guess")
    page = admin(app, f"/admin/users/{chan}")
    assert "Locked after failed sign-ins until" in page.html

    page.post(f"/admin/users/{chan}/password", {"password": "short", "repeat_password": "short"})
    assert page.status == 422 and page.errors() == {"password": "At least 8 characters."}
    page.post(
        f"/admin/users/{chan}/password",
        {"password": "brand-new-pass", "repeat_password": "brand-new-pas"},
    )
    assert page.errors() == {"repeat_password": "This is not the same as the password."}
    page.post(
        f"/admin/users/{chan}/password",
        {"password": "brand-new-pass", "repeat_password": "brand-new-pass"},
    )
    assert page.status == 200 and "chan_tai_man has a new password" in page.flashes()[0]
    assert "Locked after failed sign-ins" not in page.html
    with pytest.raises(Unauthorized):
        svc.accounts.person_for_token(token)
    assert svc.accounts.authenticate("chan_tai_man", "brand-new-pass").username == "chan_tai_man"
    [entry] = audit(svc, "user.password_set")
    assert entry.actor == "admin" and "brand-new-pass" not in str(entry.data)


@pytest.mark.parametrize("path", ["/admin/users/99999", "/admin/users/99999999999999"])
def test_a_user_that_is_not_there_is_a_404(app: Flask, path: str) -> None:
    assert admin(app, path).status == 404
