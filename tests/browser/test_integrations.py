"""Integrations and notifications as people use them in Chromium: an admin adds an intake source
and a webhook subscription, copies each secret the one time it is shown, and retries a call the
receiver refused; a technician sees the badge of a new notification, opens the list (the badge
clears) and has later notifications mailed in Chinese."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from email.header import decode_header, make_header

from playwright.sync_api import Page, expect

from ..receivers import Receiver, SmtpServer
from .pages import PHONE, Site, file_complaint, flash, screenshot

LIGHT: dict[str, str | bool] = {
    "complainant_name": "Chan Tai Man",
    "complainant_phone": "9123 4567",
    "address": "Block 3, Flat 8B",
    "facility": "lighting",
    "description": "The corridor light on 8/F has been off for a week.",
}


def secret_box(page: Page) -> str:
    """The secret shown after the action: its box is there, with a value to copy."""
    expect(page.get_by_role("heading", level=2).filter(has_text="secret")).to_be_visible()
    expect(page.get_by_text("Copy it now: it is shown only this once.")).to_be_visible()
    value = page.get_by_label("Secret", exact=True).input_value()
    assert len(value) >= 40, value
    return value


def reload_until(page: Page, path: str, selector: str, seconds: float = 15) -> None:
    """Open `path` again until `selector` shows (the dispatcher works in the background)."""
    deadline = time.monotonic() + seconds
    while True:
        page.goto(path)
        if page.locator(selector).count():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{selector} did not show on {path} within {seconds} s")
        time.sleep(0.3)


def test_an_admin_adds_a_source_and_a_subscription_and_retries_a_refused_call(
    site: Site, receiver: Callable[..., Receiver]
) -> None:
    crm = receiver(failures=1, failing_status=400)  # refuses the first call for good
    admin = site.staff("admin")
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Integrations").click()
    expect(admin.get_by_role("heading", name="Integrations", level=1)).to_be_visible()

    # An intake source: a wrong name is refused beside the field, then the secret shows once.
    admin.get_by_label("Name").fill("Hotel PMS")
    admin.get_by_role("button", name="Add the source").click()
    expect(admin.locator("#err-name")).to_have_text(
        "Use lower-case letters, digits, '.', '_' or '-'."
    )
    admin.get_by_label("Name").fill("hotel-pms")
    admin.get_by_role("button", name="Add the source").click()
    first = secret_box(admin)
    source = admin.locator("#source-hotel-pms")
    expect(source).to_contain_text("hotel-pms")
    admin.reload()
    expect(admin.get_by_label("Secret", exact=True)).to_have_count(0)
    assert first not in admin.content()

    # Rotating shows the new secret once; the previous one stays valid until the next.
    source.get_by_role("button", name="Rotate the secret of hotel-pms").click()
    assert secret_box(admin) != first
    expect(source).to_contain_text("Yes, until the next rotation")

    # A subscription to the receiver, for new complaints.
    admin.get_by_label("Address").fill(crm.url)
    admin.get_by_role("checkbox", name=re.compile("Complaint received")).check()
    admin.get_by_role("button", name="Add the subscription").click()
    secret_box(admin)
    subscription = admin.locator("tr[id^=subscription-]")
    expect(subscription).to_contain_text(crm.url)
    expect(subscription).to_contain_text("Active")
    screenshot(admin, "integrations-secret-once", full_page=True)

    # A complaint comes in; the receiver refuses its call: the message is dead.
    filed = file_complaint(site.visitor(), "facility", LIGHT)
    reload_until(admin, "/admin/outbox", "tr.status-dead")
    dead = admin.locator("tr.status-dead")
    expect(dead).to_contain_text("Complaint received")
    expect(dead).to_contain_text(filed.number)
    expect(dead).to_contain_text("HTTP 400")
    screenshot(admin, "outbox-dead", full_page=True)

    # Retry asks for a reason (the browser will not send it empty), then sends it again.
    reason = dead.get_by_label("Reason")
    dead.get_by_role("button", name=re.compile("^Retry message")).click()
    assert reason.evaluate("e => !e.validity.valid")  # the browser asks for it first
    expect(admin.locator(".flash")).to_have_count(0)
    reason.fill("The CRM accepts our calls again")
    dead.get_by_role("button", name=re.compile("^Retry message")).click()
    expect(admin.locator(".flash.success")).to_contain_text("goes out again")
    admin.get_by_role("link", name="Integrations").first.click()
    admin.locator("tr[id^=subscription-]").get_by_role("link", name="Delivery log").click()
    log = admin.url
    reload_until(admin, log + "?status=sent", "tr.status-sent")
    expect(admin.locator("tr.status-sent")).to_contain_text(filed.number)
    assert len(crm.accepted) == 1
    assert crm.accepted[0].json()["complaint"]["number"] == filed.number


def test_a_technician_sees_the_badge_opens_notifications_and_chooses_chinese(
    serve: Callable[..., Site], smtp: SmtpServer
) -> None:
    site = serve(
        COMPLAINTFLOW_SMTP_HOST="127.0.0.1",
        COMPLAINTFLOW_SMTP_PORT=str(smtp.port),
        COMPLAINTFLOW_SMTP_STARTTLS="no",
    )
    technician = site.staff("technician", viewport=PHONE)
    nav_badge = technician.get_by_role("navigation", name="Main").locator(
        "a.notifications-link .badge"
    )
    expect(nav_badge).to_have_count(0)

    first = file_complaint(site.visitor(), "facility", LIGHT)
    technician.goto("/inbox")
    expect(nav_badge).to_have_text("1")
    screenshot(technician, "notifications-badge-phone")

    technician.get_by_role("link", name=re.compile(r"^Notifications")).click()
    expect(technician.get_by_role("heading", name="Notifications", level=1)).to_be_visible()
    row = technician.locator("table.notifications tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(first.number)
    expect(row).to_contain_text("New complaint")
    expect(nav_badge).to_have_count(0)
    screenshot(technician, "notifications-phone", full_page=True)
    technician.goto("/inbox")
    expect(nav_badge).to_have_count(0)

    # How to reach them: an email address, and notifications in Traditional Chinese.
    technician.goto("/notifications")
    technician.get_by_role("link", name="Change how to reach you").click()
    technician.get_by_label("Email").fill("not an address")
    technician.get_by_role("button", name="Save").click()
    expect(technician.locator("#err-email")).to_have_text(
        "Give an email address such as name@example.com."
    )
    technician.get_by_label("Email").fill("tech@example.com")
    technician.get_by_label("繁體中文").check()
    technician.get_by_role("button", name="Save").click()
    expect(technician.locator(".flash.success")).to_have_text(
        "Saved: notifications reach you as shown."
    )
    expect(technician.get_by_label("繁體中文")).to_be_checked()
    screenshot(technician, "account-phone", full_page=True)
    assert "Saved" in flash(technician)

    second = file_complaint(site.visitor(), "facility", LIGHT)
    deadline = time.monotonic() + 15
    while not smtp.messages and time.monotonic() < deadline:
        time.sleep(0.2)
    [(to, mail)] = smtp.messages
    assert to == ["tech@example.com"]
    assert str(make_header(decode_header(mail["Subject"]))) == f"新投訴 {second.number}"
    technician.goto("/inbox")
    expect(nav_badge).to_have_text("1")


def test_scaled_out_an_admin_is_told_when_no_scheduler_runs(serve: Callable[..., Site]) -> None:
    # `serve` with a broker leaves timers and messages to a scheduler, and none runs here.
    site = serve(COMPLAINTFLOW_BROKER_URL="redis://127.0.0.1:6379/12")
    admin = site.staff("admin", locale="zh-HK")
    admin.goto("/admin/outbox")
    alert = admin.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("尚未有排程程序運行過")
    screenshot(admin, "admin-no-scheduler")
