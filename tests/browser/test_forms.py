"""Forms as people meet them: a missing or wrong value is shown at its field with the rest kept;
two windows on one task get one success and one clear message; photos travel from the
complainant to the technician, and a renamed program is refused."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import expect

from .pages import (
    Site,
    attach,
    field,
    field_error,
    file_complaint,
    fill_form,
    flash,
    inbox_row,
    open_task,
    png_bytes,
    press_in_row,
    submit,
    write_file,
)

CONTACT = "立即與用戶聯系並到現場確認"  # the technician's first step

LIFT: dict[str, str | bool] = {
    "complainant_name": "Chan Tai Man",
    "complainant_phone": "9123 4567",
    "address": "Block 3, Flat 8B",
    "facility": "lift",
    "description": "Lift B makes a grinding noise.",
}


def test_missing_values_are_shown_at_their_fields_and_the_rest_is_kept(site: Site) -> None:
    filed = file_complaint(site.visitor(), "facility", LIFT)
    page = site.staff("technician")
    open_task(page, CONTACT, filed.number)
    fill_form(page, {"site_findings": "Guide rail dry, needs grease.", "contacted_at": ""})
    # No answer to "Can the technician solve the problem?", and the time cleared.
    submit(page)

    expect(page.locator(".flash.error")).to_have_text("Some fields need your attention.")
    for name in ("assessment", "contacted_at"):
        expect(field(page, name)).to_have_class(re.compile(r"\bhas-error\b"))
        expect(field_error(page, name)).to_be_visible()
        expect(field_error(page, name)).not_to_be_empty()
    expect(page.locator("#in-contacted_at")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#in-site_findings")).to_have_value("Guide rail dry, needs grease.")
    expect(field_error(page, "site_findings")).to_have_count(0)
    # The error sits under its own field, not somewhere else on the page.
    box = field(page, "assessment").bounding_box()
    error = field_error(page, "assessment").bounding_box()
    assert box and error and box["y"] <= error["y"] <= box["y"] + box["height"]

    # Corrected, the same page saves.
    fill_form(page, {"assessment": "solvable", "contacted_at": "2026-11-27T09:30"})
    submit(page)
    expect(page.locator(".flash.success")).to_contain_text(filed.number)


def test_public_form_keeps_what_was_typed_when_a_field_is_missing(site: Site) -> None:
    page = site.visitor()
    page.goto("/complain/facility")
    fill_form(page, {k: v for k, v in LIFT.items() if k != "facility"})
    submit(page)
    expect(page.locator(".flash.error")).to_have_text("Some fields need your attention.")
    expect(field_error(page, "facility")).to_be_visible()
    expect(page.locator("#in-complainant_name")).to_have_value("Chan Tai Man")
    expect(page.locator("#in-description")).to_have_value("Lift B makes a grinding noise.")
    expect(page.locator(".receipt")).to_have_count(0)


def test_two_windows_on_one_task_one_saves_the_other_is_told(site: Site) -> None:
    filed = file_complaint(site.visitor(), "facility", LIFT)
    first = site.staff("technician", window="first")
    second = site.staff("technician", window="second")
    instance_id = open_task(first, CONTACT, filed.number)
    open_task(second, CONTACT, filed.number)

    fill_form(first, {"site_findings": "Entered in the first window.", "assessment": "solvable"})
    submit(first)
    expect(first.locator(".flash.success")).to_contain_text(filed.number)

    fill_form(second, {"site_findings": "Entered in the second window.", "assessment": "urgent"})
    submit(second)
    # Not an error page: the complaint, with a message that the step is already done.
    expect(second).to_have_url(re.compile(rf"/complaints/{instance_id}$"))
    expect(second.locator(".flash.warning")).to_contain_text("completed")
    expect(second.locator(".flash.warning")).to_contain_text("technician")
    expect(second.locator("#facts-title")).to_contain_text(filed.number)
    timeline = second.locator(".timeline")
    expect(timeline).to_contain_text("Entered in the first window.")
    expect(timeline).not_to_contain_text("Entered in the second window.")


def test_a_photo_reaches_the_technician_and_a_renamed_program_is_refused(
    site: Site, tmp_path: Path
) -> None:
    photo = write_file(tmp_path, "lift-panel.png", png_bytes(40, 30))
    complainant = site.visitor()
    filed = file_complaint(complainant, "facility", LIFT, files=[photo])
    expect(complainant.locator("ul.files")).to_contain_text("lift-panel.png")

    technician = site.staff("technician")
    open_task(technician, CONTACT, filed.number)
    image = technician.locator(".facts ul.files img")
    expect(image).to_have_count(1)
    src = image.get_attribute("src") or ""
    assert re.fullmatch(r"/attachments/[^/]+", src), src
    expect(image).to_have_js_property("naturalWidth", 40)  # it really shows
    answer = technician.context.request.get(src)
    assert answer.status == 200
    assert answer.headers["content-type"] == "image/png"
    assert answer.body() == photo.read_bytes()
    # Not for people who are not signed in.
    assert complainant.context.request.get(src, max_redirects=0).status in (302, 401, 403)

    # A program renamed to look like a photo: refused at the file field, nothing filed.
    program = write_file(tmp_path, "photo.jpg", b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 256)
    page = site.visitor()
    page.goto("/complain/facility")
    fill_form(page, {**LIFT, "description": "Second complaint, with a fake photo."})
    attach(page, program)
    submit(page)
    expect(field_error(page, "attachments")).to_contain_text("photo.jpg")
    expect(field_error(page, "attachments")).to_contain_text("only photos")
    expect(page.locator(".receipt")).to_have_count(0)
    expect(page.locator("#in-description")).to_have_value("Second complaint, with a fake photo.")
    technician.goto("/inbox")
    expect(technician.locator("table.inbox tbody tr")).to_have_count(1)
    expect(technician.locator(".counts")).to_contain_text("1")

    # The same on a task that takes photos: a Windows program named like a PDF.
    program = write_file(tmp_path, "report.pdf", b"MZ\x90\x00" + b"\x00" * 256)
    open_task(technician, CONTACT, filed.number)
    fill_form(technician, {"site_findings": "Panel scorched.", "assessment": "solvable"})
    attach(technician, program)
    submit(technician)
    expect(field_error(technician, "attachments")).to_contain_text("report.pdf")
    expect(technician.locator("#in-site_findings")).to_have_value("Panel scorched.")
    assert "Saved" not in flash(technician)


def test_a_task_taken_by_a_colleague_says_who_has_it(site: Site) -> None:
    """The administrator has taken the technician's step; the technician, opening it anyway,
    must learn who has it, not that "someone completed" a step that is still waiting."""
    filed = file_complaint(site.visitor(), "facility", LIFT)
    admin = site.staff("admin")
    admin.goto("/inbox")
    press_in_row(admin, CONTACT, filed.number, "Take")
    expect(inbox_row(admin, CONTACT, filed.number)).to_contain_text("Give back")

    technician = site.staff("technician")
    technician.goto("/inbox")
    inbox_row(technician, CONTACT, filed.number).get_by_role("link", name="Open").click()
    message = flash(technician)
    assert "admin" in message, message
    assert "completed" not in message, message
    technician.goto("/inbox")
    expect(inbox_row(technician, CONTACT, filed.number)).to_contain_text("admin")
