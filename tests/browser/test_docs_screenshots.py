"""The screenshots of docs/staff-guide.md, taken from the real pages. Left out of normal runs;
to refresh them:

    COMPLAINTFLOW_DOCS_SCREENSHOTS=1 .venv/bin/pytest tests/browser -k docs -q

Desktop views are 1280 wide, the status page also on a phone (390 wide)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .pages import (
    PHONE,
    Site,
    do_task,
    file_complaint,
    inbox_row,
    open_task,
    png_bytes,
    press_in_row,
    record_complaint,
    screenshot,
    submit,
    wait_for_inbox,
    write_file,
)

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
DESKTOP = {"width": 1280, "height": 860}
CONTACT = "立即與用戶聯系並到現場確認"
MEASURES = "立即采取措施處理"


def resident(n: int, facility: str, description: str) -> dict[str, str | bool]:
    return {
        "complainant_name": ["Chan Tai Man", "Wong Mei Ling", "Lee Ka Ho"][n],
        "complainant_phone": f"9123 456{n}",
        "address": f"Block {n + 1}, Flat {8 - n}B",
        "facility": facility,
        "description": description,
    }


def shot(page: Page, name: str, **options: object) -> None:
    screenshot(page, name, folder=IMAGES, **options)


@pytest.mark.docs_screenshots
def test_docs_screenshots(serve: Callable[..., Site], tmp_path: Path) -> None:
    # The technician is due to contact a resident within a second, so the first is overdue.
    site = serve(
        COMPLAINTFLOW_SLA_OVERRIDES=json.dumps({"facility": {"technician_contact": "PT1S"}})
    )
    photo = write_file(tmp_path, "corridor-light.png", png_bytes(160, 120, (250, 210, 60)))
    late = file_complaint(
        site.visitor(),
        "facility",
        resident(0, "lighting", "The 8/F corridor light has been off for a week."),
        files=[photo],
    )
    others = [
        file_complaint(site.visitor(), "facility", resident(1, "water", "No hot water.")),
        file_complaint(site.visitor(), "facility", resident(2, "lift", "Lift B is noisy.")),
    ]
    tech = site.staff("technician", viewport=DESKTOP)
    wait_for_inbox(tech, "table.inbox tr.overdue", 3)
    for filed in others:
        do_task(
            tech, CONTACT, filed.number, {"site_findings": "Checked.", "assessment": "solvable"}
        )
    tech.goto("/inbox")
    press_in_row(tech, MEASURES, others[0].number, "Take")
    expect(inbox_row(tech, MEASURES, others[0].number)).to_contain_text("Give back")
    shot(tech, "inbox")

    # The task page: facts, instructions, the form, the photo.
    open_task(tech, CONTACT, late.number)
    expect(tech.locator(".facts img")).to_have_js_property("complete", True)
    shot(tech, "task")

    # Saved with a required answer missing.
    tech.fill("#in-site_findings", "The fitting is burnt out; the wiring looks old.")
    submit(tech)
    expect(tech.locator("#field-assessment .error")).to_be_visible()
    shot(
        tech,
        "task-error",
        full_page=True,
        clip=_around(tech, "#field-site_findings", "#field-assessment"),
    )

    # The clerk records a complaint made at the counter.
    clerk = site.staff("clerk", viewport=DESKTOP)
    clerk.goto("/start/facility")
    shot(clerk, "record")
    record_complaint(
        clerk,
        "facility",
        {**resident(2, "power", "Power cut in Flat 6B."), "channel": "verbal"},
    )

    # The complaint page as the technician sees it after a few steps.
    tech.goto("/inbox")
    inbox_row(tech, CONTACT, late.number).locator("td").first.get_by_role("link").click()
    expect(tech.locator(".timeline li.warn")).to_be_visible()
    shot(tech, "complaint", full_page=True)

    # What the complainant sees, on a phone.
    phone = site.visitor(viewport=PHONE)
    assert late.status_path
    phone.goto(late.status_path)
    shot(phone, "status-phone")

    for name in ("inbox", "task", "task-error", "record", "complaint", "status-phone"):
        assert (IMAGES / f"{name}.png").stat().st_size < 400_000, name


def _around(page: Page, first: str, last: str) -> dict[str, float]:
    """A clip from the top of one element to the bottom of another, with a margin, in the
    page's coordinates (as a full-page screenshot takes them)."""
    page.evaluate("window.scrollTo(0, 0)")
    top = page.locator(first).bounding_box()
    bottom = page.locator(last).bounding_box()
    assert top and bottom
    return {
        "x": max(top["x"] - 16, 0),
        "y": max(top["y"] - 16, 0),
        "width": top["width"] + 32,
        "height": bottom["y"] + bottom["height"] - top["y"] + 32,
    }


# ---------------------------------------------------------------- docs/auditor-guide.md


@pytest.mark.docs_screenshots
def test_docs_auditor_screenshots(serve: Callable[..., Site]) -> None:
    """Search, trace, report and heatmap as the auditor sees them, over a few facility
    complaints: one closed, one waiting for its measures, one whose contact deadline passed."""
    site = serve(
        COMPLAINTFLOW_SLA_OVERRIDES=json.dumps({"facility": {"technician_contact": "PT8S"}})
    )
    tech = site.staff("technician", viewport=DESKTOP)
    closed = file_complaint(site.visitor(), "facility", resident(1, "water", "No hot water."))
    waiting = file_complaint(site.visitor(), "facility", resident(2, "lift", "Lift B is noisy."))
    for filed in (closed, waiting):
        do_task(tech, CONTACT, filed.number, {"site_findings": "Seen.", "assessment": "solvable"})
    steps: list[tuple[str, dict[str, str | bool]]] = [
        (MEASURES, {"measures_taken": "Valve replaced."}),
        (
            "做好回訪工作，跟蹤驗證處理結果",
            {"complainant_feedback": "satisfied", "verification": "verified"},
        ),
        (
            "在《用戶投訴記錄》上記錄處理結果",
            {"result_summary": "Hot water back the same day.", "satisfaction": "satisfied"},
        ),
    ]
    for task, values in steps:
        do_task(tech, task, closed.number, values)
    do_task(
        site.staff("office_director", viewport=DESKTOP),
        "檢查投訴處理效果",
        closed.number,
        {"check_outcome": "effective", "check_notes": "Ran the tap for five minutes."},
    )

    # The third waits past its contact deadline, which escalates to the supervisor.
    late = file_complaint(
        site.visitor(),
        "facility",
        resident(0, "lighting", "The 8/F corridor light has been off for a week."),
    )
    wait_for_inbox(tech, "table.inbox tr.overdue", 1, seconds=30)
    do_task(
        tech,
        CONTACT,
        late.number,
        {"site_findings": "The fitting is burnt out.", "assessment": "solvable"},
    )
    do_task(tech, MEASURES, late.number, {"measures_taken": "New LED fitting installed."})

    auditor = site.staff("auditor", viewport=DESKTOP)
    auditor.goto("/audit/complaints?procedure=facility")
    expect(auditor.locator("table.inbox tbody tr")).to_have_count(3)
    shot(auditor, "auditor-search")

    auditor.get_by_role("link", name=late.number, exact=True).click()
    step = auditor.locator("ol.timeline li.step").filter(has_text=CONTACT)
    step.locator("summary").click()
    expect(step.locator("pre.data")).to_be_visible()
    auditor.set_viewport_size({"width": 1280, "height": 1150})
    auditor.evaluate("window.scrollTo(0, 0)")
    shot(auditor, "auditor-trace")

    auditor.set_viewport_size({"width": 1280, "height": 860})
    auditor.goto("/audit/reports?procedure=facility")
    expect(auditor.locator("ul.bars .bar").first).to_be_visible()
    shot(auditor, "auditor-report", full_page=True)

    auditor.goto("/audit/heatmap?procedure=facility")
    expect(auditor.locator("svg g.badge").first).to_be_visible()
    shot(auditor, "auditor-heatmap")

    for name in ("auditor-search", "auditor-trace", "auditor-report", "auditor-heatmap"):
        assert (IMAGES / f"{name}.png").stat().st_size < 400_000, name
