"""The process owner's pages in Chromium: upload a changed diagram with a new form, leaving the
procedure key empty; try to review one's own draft and keep the comment typed; and what an
auditor is (not) offered."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import expect

from ..test_owner_pages import PHOTO_FORM, PHOTO_FORM_PATH
from ..test_versions import with_photo_step
from .pages import Site, flash, screenshot


def test_an_upload_becomes_a_draft_and_a_refused_review_keeps_the_comment(
    site: Site, tmp_path: Path
) -> None:
    diagram = with_photo_step(tmp_path / "b", form=PHOTO_FORM_PATH)
    form = tmp_path / "photo.schema.json"
    form.write_text(json.dumps(PHOTO_FORM), encoding="utf-8")

    page = site.staff("process_owner")
    page.goto("/procedures/")
    page.get_by_role("link", name="Upload a changed diagram").click()
    expect(page.locator("main")).to_contain_text(
        "Each is stored as forms/<procedure>/<file name>, the path the diagram names it by."
    )
    page.set_input_files("#bpmn", str(diagram))
    page.select_option("#base", "facility:1")
    page.set_input_files("#forms", str(form))
    page.get_by_role("button", name="Check and store as a draft").click()  # no procedure key
    expect(page).to_have_url(re.compile(r"/procedures/facility/v2$"))
    expect(page.locator("h1")).to_have_text("Version 2 · Draft")
    assert "Stored as draft version 2" in flash(page)

    comment = "The photo step reads well."
    page.fill("#comment", comment)
    page.get_by_role("button", name="Accept").click()
    expect(page.locator(".flashes")).to_contain_text(
        "the person who prepared a version may not review it"
    )
    expect(page.locator("#comment")).to_have_value(comment)
    screenshot(page, "owner-review-refused")

    auditor = site.staff("auditor")
    auditor.goto("/procedures/")
    expect(auditor.get_by_role("heading", name="Procedures")).to_be_visible()
    expect(auditor.get_by_role("link", name="Upload a changed diagram")).to_have_count(0)
    auditor.goto("/procedures/facility/v2")
    expect(auditor.locator("#comment")).to_have_count(0)
