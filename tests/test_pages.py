"""The web pages over HTTP (Flask's test client, CSRF on): sign-in and lock-out, the inbox,
task forms, recording a complaint, the public intake with its limits, the status page, files,
the QR sheet, and languages."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from html import unescape
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from complaintflow.app import create_app, services
from complaintflow.bootstrap import demo_password
from complaintflow.engine import queries
from complaintflow.models import Attachment, Instance

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
    b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff"
    b"\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 200

FACILITY_INTAKE = {
    "complainant_name": "陳大文",
    "complainant_phone": "91234567",
    "address": "3座12樓B室",
    "facility": "lift",
    "description": "升降機停在12樓",
    "place": "3座升降機",
}


class Page:
    """One browser's view: cookies, the CSRF token of the last page, the flashes it showed."""

    def __init__(self, app: Flask) -> None:
        self.client: FlaskClient = app.test_client()
        self.html = ""
        self.status = 0
        self.path = ""

    def get(self, path: str, **headers: str) -> Page:
        response = self.client.get(
            path, headers={"Accept": "text/html", **headers}, follow_redirects=True
        )
        self.html, self.status = response.get_data(as_text=True), response.status_code
        return self

    def post(self, path: str, data: dict[str, Any], follow: bool = True) -> Any:
        token = re.search(r'name="csrf_token" value="([^"]+)"', self.html)
        body = {"csrf_token": token[1] if token else "", **data}
        response = self.client.post(
            path,
            data=body,
            follow_redirects=follow,
            content_type="multipart/form-data",
            headers={"Accept": "text/html"},
        )
        self.html, self.status = response.get_data(as_text=True), response.status_code
        self.path = response.request.path
        return response

    def sign_in(self, user: str, password: str | None = None) -> Page:
        self.get("/signin")
        self.post("/signin", {"username": user, "password": password or demo_password(user)})
        return self

    def flashes(self) -> list[str]:
        return [unescape(m) for m in re.findall(r'<p class="flash \w+">([^<]+)</p>', self.html)]

    def errors(self) -> dict[str, str]:
        return {m[0]: unescape(m[1]) for m in re.findall(r'id="err-(\w+)">([^<]+)<', self.html)}

    def task_links(self) -> list[str]:
        return list(dict.fromkeys(re.findall(r'href="/tasks/([0-9a-f-]{36})"', self.html)))


@pytest.fixture
def site(make_app: Callable[..., Flask]) -> Flask:
    return make_app(intake_min_seconds=0)


def file_complaint(app: Flask, data: dict[str, Any] | None = None, **files: bytes) -> Page:
    page = Page(app).get("/complain/facility")
    body = {
        "issued": re.search(r'name="issued" value="([^"]+)"', page.html)[1],  # type: ignore[index]
        **(data or FACILITY_INTAKE),
    }
    if files:
        body["attachments"] = [(io.BytesIO(b), n) for n, b in files.items()]
    page.post("/complain/facility", body)
    return page


def instances(app: Flask) -> int:
    with services(app).store.read() as session:
        return int(session.scalar(select(func.count()).select_from(Instance)) or 0)


def test_forms_without_the_csrf_token_are_refused(site: Flask) -> None:
    response = site.test_client().post(
        "/signin", data={"username": "clerk", "password": "x"}, headers={"Accept": "text/html"}
    )
    assert response.status_code == 400
    assert "could not be accepted" in response.get_data(as_text=True)


def test_a_wrong_password_says_so_and_repeated_failures_lock(site: Flask) -> None:
    page = Page(site).sign_in("clerk", "wrong-password")
    assert page.status == 401 and page.flashes() == ["Wrong username or password."]
    for _ in range(4):
        page.sign_in("clerk", "wrong-password")
    page.sign_in("clerk")  # the right password, but too late
    assert "this account is locked" in page.flashes()[0]
    assert "/inbox" not in page.html


@pytest.mark.parametrize(
    ("asked", "lands"),
    [
        ("/tasks/abc?x=1", "/tasks/abc?x=1"),
        ("//evil.example", "/inbox"),
        ("https://evil.example/", "/inbox"),
        ("/\\evil.example", "/inbox"),
        ("/\t/evil.example", "/inbox"),  # a browser drops the tab: //evil.example
    ],
)
def test_signing_in_leads_on_only_to_a_page_of_this_site(
    site: Flask, asked: str, lands: str
) -> None:
    page = Page(site).get("/signin")
    answer = page.post(
        "/signin?" + urlencode({"next": asked}),
        {"username": "clerk", "password": demo_password("clerk")},
        follow=False,
    )
    assert answer.status_code == 302 and answer.headers["Location"] == lands


def test_the_inbox_shows_the_roles_tasks_with_counts_and_filters(site: Flask) -> None:
    file_complaint(site)
    technician = Page(site).sign_in("technician").get("/inbox")
    assert len(technician.task_links()) == 1 and "立即與用戶聯系並到現場確認" in technician.html
    assert re.search(r"<strong>1</strong> M&amp;E technician", technician.html)
    assert Page(site).sign_in("clerk").get("/inbox").task_links() == []
    assert technician.get("/inbox?procedure=bar").task_links() == []
    fragment = technician.get("/inbox?partial=1")
    assert fragment.html.lstrip().startswith("<table") and "<html" not in fragment.html


def test_the_inbox_counts_a_busy_role_up_to_the_cap(
    site: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "COUNT_CAP", 2)
    for _ in range(3):
        file_complaint(site)
    admin = Page(site).sign_in("admin").get("/inbox")
    assert re.search(r"<strong>2\+</strong> M&amp;E technician", admin.html)
    assert len(admin.task_links()) == 3  # the list itself is not capped
    monkeypatch.setattr(queries, "COUNT_CAP", 3)
    assert re.search(r"<strong>3</strong> M&amp;E technician", admin.get("/inbox").html)


def test_taking_and_giving_back_a_task(site: Flask) -> None:
    file_complaint(site)
    technician = Page(site).sign_in("technician").get("/inbox")
    (task_id,) = technician.task_links()
    technician.post(f"/tasks/{task_id}/claim", {"back": "/inbox"})
    assert "Give back" in technician.html
    assert technician.get("/inbox?show=mine").task_links() == [task_id]
    technician.post(f"/tasks/{task_id}/claim", {"release": "1", "back": "/inbox"})
    assert technician.get("/inbox?show=mine").task_links() == []


def test_a_task_form_keeps_entries_and_shows_errors_beside_fields(site: Flask) -> None:
    file_complaint(site)
    technician = Page(site).sign_in("technician").get("/inbox")
    (task_id,) = technician.task_links()
    technician.get(f"/tasks/{task_id}")
    assert "接到投訴後，應立即與用戶聯系" not in technician.html  # English page: English notes
    assert "confirm the problem on site" in technician.html and "A-4.3" in technician.html
    technician.post(
        f"/tasks/{task_id}",
        {"site_findings": "控制板燒了", "assessment": "", "contacted_at": "2026-11-27T10:00"},
    )
    assert technician.status == 422
    assert technician.errors() == {"assessment": "This field is required."}
    assert "控制板燒了" in technician.html
    technician.post(
        f"/tasks/{task_id}",
        {
            "site_findings": "控制板燒了",
            "assessment": "solvable",
            "contacted_at": "2026-11-27T10:00",
        },
    )
    assert technician.flashes()[0].startswith("Saved. Complaint A-")
    assert "立即采取措施處理" in technician.flashes()[0]


def test_a_task_completed_meanwhile_gives_a_clear_message(site: Flask) -> None:
    file_complaint(site)
    first = Page(site).sign_in("technician").get("/inbox")
    (task_id,) = first.task_links()
    second = Page(site).sign_in("technician").get(f"/tasks/{task_id}")
    done = {"site_findings": "x", "assessment": "solvable", "contacted_at": "2026-11-27T10:00"}
    first.get(f"/tasks/{task_id}").post(f"/tasks/{task_id}", done)
    second.post(f"/tasks/{task_id}", done)
    assert second.status == 200
    assert (
        second.flashes()[0] == "This task was completed by technician. Your entries were not saved."
    )
    assert "Timeline" in second.html


def test_only_the_tasks_role_may_open_it(site: Flask) -> None:
    file_complaint(site)
    (task_id,) = Page(site).sign_in("technician").get("/inbox").task_links()
    bar = Page(site).sign_in("bar_staff").get(f"/tasks/{task_id}")
    assert bar.status == 403 and "Not for your role" in bar.html


def test_staff_record_a_complaint_made_in_person(site: Flask) -> None:
    clerk = Page(site).sign_in("clerk").get("/start/facility")
    assert 'name="channel"' in clerk.html  # staff see the fields the public page hides
    clerk.post("/start/facility", {**FACILITY_INTAKE, "channel": "verbal"})
    assert clerk.flashes()[0].startswith("Saved. Complaint A-")
    assert "Link for the complainant" in clerk.html and "/s/" in clerk.html  # its page
    assert Page(site).sign_in("bar_staff").get("/start/facility").status == 403


def test_the_public_form_hides_staff_fields_and_fills_the_place(site: Flask) -> None:
    page = Page(site).get("/complain/facility?place=3座升降機")
    assert 'name="channel"' not in page.html
    assert 'value="3座升降機"' in page.html
    filed = file_complaint(site)
    assert "Thank you. We have received your complaint." in filed.html
    number = re.search(r'class="number">([A-Z]-\d{4}-\d{6})<', filed.html)
    assert number is not None
    with services(site).store.read() as session:
        record = session.scalars(select(Instance)).one().record
        assert record is not None and record.channel == "online"  # the hidden field's default


def test_the_status_page_shows_progress_and_nothing_internal(site: Flask) -> None:
    link = file_complaint(site).path
    technician = Page(site).sign_in("technician").get("/inbox")
    (task_id,) = technician.task_links()
    technician.get(f"/tasks/{task_id}").post(
        f"/tasks/{task_id}",
        {
            "site_findings": "INTERNAL-NOTE 控制板燒了",
            "assessment": "solvable",
            "contacted_at": "2026-11-27T10:00",
        },
    )
    status = Page(site).get(link)
    assert status.status == 200 and "A-" in status.html and "Being handled" in status.html
    for secret in ("INTERNAL-NOTE", "technician", "clerk", "控制板", "91234567"):
        assert secret not in status.html
    for wrong in ("not-the-token", "é電"):
        assert Page(site).get(link.rsplit("/", 1)[0] + "/" + wrong).status == 404


def test_the_public_form_refuses_robots_and_floods(make_app: Callable[..., Flask]) -> None:
    app = make_app(intake_min_seconds=3, intake_limit="2 per minute")
    page = Page(app).get("/complain/facility")
    issued = re.search(r'name="issued" value="([^"]+)"', page.html)[1]  # type: ignore[index]
    page.post("/complain/facility", {"issued": issued, **FACILITY_INTAKE})
    assert page.status == 400 and "very quick" in page.flashes()[0]
    page.post("/complain/facility", {"issued": issued, "website": "spam", **FACILITY_INTAKE})
    assert page.status == 400
    page.post("/complain/facility", {"issued": issued, **FACILITY_INTAKE})
    assert page.status == 429 and "Too many requests" in page.html
    assert instances(app) == 0


def test_scaled_out_the_intake_limit_is_the_deployments_not_each_process_nor_the_redis(
    make_app: Callable[..., Flask],
) -> None:
    # Scaled out, the counts are kept in Redis: a deployment's web processes count together,
    # and another deployment keeping its counts in the same Redis counts its own.
    shared = "redis://127.0.0.1:6379/12"
    redis.Redis.from_url(shared).flushdb()
    settings = {"intake_min_seconds": 0, "intake_limit": "1 per minute", "broker_url": shared}
    first, other = make_app(**settings), make_app(**settings)
    sibling = create_app(services(first).settings)  # another web process of the first
    try:
        assert file_complaint(first).status == 200 and instances(first) == 1
        assert file_complaint(other).status == 200 and instances(other) == 1
        assert file_complaint(sibling).status == 429 and instances(first) == 1
    finally:
        services(sibling).store.dispose()
        redis.Redis.from_url(shared).flushdb()


def test_a_photo_is_kept_and_shown_to_staff_and_its_sender(site: Flask) -> None:
    filed = file_complaint(site, **{"lift.png": PNG})
    with services(site).store.read() as session:
        attachment = session.scalars(select(Attachment)).one()
        instance_id = attachment.instance_id
    assert (attachment.media_type, attachment.filename, attachment.by_complainant) == (
        "image/png",
        "lift.png",
        True,
    )
    assert services(site).attachments.path(attachment.sha256).read_bytes() == PNG
    assert f"/files/{attachment.id}" in filed.html  # the complainant sees what they sent
    technician = Page(site).sign_in("technician").get("/inbox")
    (task_id,) = technician.task_links()
    technician.get(f"/tasks/{task_id}")
    assert f'<img src="/attachments/{attachment.id}"' in technician.html
    image = technician.client.get(f"/attachments/{attachment.id}")
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    assert Page(site).sign_in("bar_staff").get(f"/attachments/{attachment.id}").status == 403
    anonymous = Page(site).get(f"/attachments/{attachment.id}")
    assert "Sign in" in anonymous.html and f"/s/{instance_id}/" not in anonymous.html


def test_a_renamed_executable_is_refused_and_nothing_is_filed(site: Flask) -> None:
    page = file_complaint(site, **{"photo.jpg": ELF})
    assert page.status == 422
    assert page.errors()["attachments"] == (
        "photo.jpg: only photos (JPEG, PNG, WebP, GIF, HEIC) and PDF files are accepted."
    )
    assert 'value="升降機停在12樓"' in page.html or "升降機停在12樓" in page.html
    assert instances(site) == 0


def test_the_qr_sheet_is_for_admins_and_makes_one_code_per_place(site: Flask) -> None:
    assert Page(site).sign_in("clerk").get("/admin/qr").status == 403
    admin = Page(site).sign_in("admin").get("/admin/qr")
    admin.post("/admin/qr", {"procedure": "bar", "places": "吧枱1號\n吧枱2號\n\n"})
    assert admin.html.count("<svg") == 2
    assert "/complain/bar?place=%E5%90%A7%E6%9E%B11%E8%99%9F" in admin.html


def test_the_language_follows_the_browser_and_the_switch(site: Flask) -> None:
    assert '<html lang="zh-Hant">' in Page(site).get("/signin", **{"Accept-Language": "zh-TW"}).html
    assert (
        '<html lang="zh-Hans">' in Page(site).get("/signin", **{"Accept-Language": "zh-CN,zh"}).html
    )
    page = Page(site).get("/signin", **{"Accept-Language": "zh-TW"})
    page.get("/lang/en")
    assert '<html lang="en">' in page.get("/signin", **{"Accept-Language": "zh-TW"}).html


def test_people_get_pages_and_programs_get_json_for_errors(site: Flask) -> None:
    page = Page(site).get("/no/such/page")
    assert page.status == 404 and "Not found" in page.html
    response = site.test_client().get("/no/such/page", headers={"Accept": "application/json"})
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_alerts_tell_the_role_a_deadline_escalated_to(make_app: Callable[..., Flask]) -> None:
    app = make_app(intake_min_seconds=0, sla_overrides={"facility": {"technician_contact": "PT0S"}})
    number = re.search(r'class="number">([^<]+)<', file_complaint(app).html)[1]  # type: ignore[index]
    supervisor = Page(app).sign_in("engineering_supervisor").get("/inbox")
    assert "A deadline passed" in supervisor.html and number in supervisor.html
    assert "A deadline passed" not in Page(app).sign_in("bar_manager").get("/inbox").html


def test_a_task_taken_by_a_colleague_says_who_has_it_and_an_admin_can_free_it(
    site: Flask,
) -> None:
    file_complaint(site)
    admin = Page(site).sign_in("admin").get("/inbox")
    (task_id,) = admin.task_links()
    admin.post(f"/tasks/{task_id}/claim", {"back": "/inbox"})
    technician = Page(site).sign_in("technician").get(f"/tasks/{task_id}")
    assert technician.flashes() == ["This task is taken by admin."]
    admin.get("/inbox").post(f"/tasks/{task_id}/claim", {"release": "1", "back": "/inbox"})
    assert Page(site).sign_in("technician").get(f"/tasks/{task_id}").status == 200


def test_staff_find_complaints_of_their_procedures(site: Flask) -> None:
    file_complaint(site)
    found = Page(site).sign_in("clerk").get("/complaints?complainant=陳")
    assert "1 complaints found" in found.html
    assert "0 complaints found" in Page(site).sign_in("bar_staff").get("/complaints").html


def test_a_nul_character_or_an_impossible_number_gets_an_error_page_and_files_nothing(
    site: Flask,
) -> None:
    admin = Page(site).sign_in("admin")
    assert admin.get("/complaints/" + "9" * 20).status == 404
    assert admin.get("/audit/complaints/" + "9" * 20).status == 404
    assert admin.get("/complaints?number=%00").status == 400
    assert "Could not be accepted" in admin.html
    assert admin.get("/audit/reports?from=0001-01-01").status == 400
    for path in ("/audit/complaints?to=9999-12-31", "/complaints?to=9999-12-31"):
        refused = admin.get(path)  # the list without the term, and why
        assert refused.status == 400 and "to must be a date from 1900-01-01" in refused.html
        assert (
            "Some search terms could not be read; the list below is without them." in refused.html
        )
        said = admin.get(path, **{"Accept-Language": "zh-TW"}).html  # and in the reader's words
        assert "「to」必須是 1900-01-01 至 9998-12-31 之間的日期" in said
    filed = file_complaint(site, {**FACILITY_INTAKE, "description": "升降機\x00停在12樓"})
    assert filed.status == 400
    assert instances(site) == 0
