"""The inbox: counts per role, filters, overdue marks, taking a task and giving it back."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .pages import Site, file_complaint, inbox_row, press_in_row, wait_for_inbox

CONTACT = "立即與用戶聯系並到現場確認"
# The technician must contact the user within a second, so both complaints are soon overdue.
ONE_SECOND = json.dumps({"facility": {"technician_contact": "PT1S"}})


def complaint(n: int) -> dict[str, str | bool]:
    return {
        "complainant_name": f"Resident {n}",
        "complainant_phone": f"9000 000{n}",
        "address": f"Block {n}",
        "facility": "lighting",
        "description": f"Corridor light {n} is off.",
    }


@pytest.fixture
def late_site(serve: Callable[..., Site]) -> Site:
    return serve(COMPLAINTFLOW_SLA_OVERRIDES=ONE_SECOND)


def wait_until_overdue(page: Page, rows: int) -> None:
    wait_for_inbox(page, "table.inbox tr.overdue", rows)


def show(page: Page, view: str = "all", procedure: str = "") -> None:
    """Use the filter form as a person would."""
    page.goto("/inbox")
    page.get_by_label("Procedure").select_option(procedure)
    page.get_by_label("Show").select_option(view)
    with page.expect_navigation():
        page.get_by_role("button", name="Filter").click()


def test_counts_filters_overdue_marks_and_taking_a_task(late_site: Site) -> None:
    first, second = (file_complaint(late_site.visitor(), "facility", complaint(n)) for n in (1, 2))
    page = late_site.staff("technician")
    page.goto("/inbox")
    expect(page.locator(".counts .count")).to_have_text(["2 M&E technician"])
    expect(page.locator("table.inbox tbody tr")).to_have_count(2)

    wait_until_overdue(page, rows=2)
    expect(page.locator("tr.overdue .late").first).to_have_text("Overdue")

    show(page, "overdue")
    expect(page.locator("table.inbox tbody tr")).to_have_count(2)
    page.goto("/inbox?procedure=bar")  # not the technician's: not offered in the list either
    expect(page.locator(".empty")).to_have_text("Nothing is waiting for you.")
    expect(page.get_by_label("Procedure").locator("option")).to_have_count(2)
    show(page, "mine")
    expect(page.locator(".empty")).to_be_visible()

    # Take the first complaint's task: it is mine, the other stays free.
    show(page, "all", procedure="facility")
    press_in_row(page, CONTACT, first.number, "Take")
    row = inbox_row(page, CONTACT, first.number)
    expect(row.locator("td[data-label='Taken by']")).to_have_text("technician")
    expect(row.get_by_role("button", name="Give back")).to_be_visible()
    show(page, "mine")
    expect(page.locator("table.inbox tbody tr")).to_have_count(1)
    expect(inbox_row(page, CONTACT, first.number)).to_have_count(1)
    show(page, "unclaimed")
    expect(inbox_row(page, CONTACT, second.number)).to_have_count(1)
    expect(page.locator("table.inbox tbody tr")).to_have_count(1)

    # Give it back from the "mine" view: free again.
    show(page, "mine")
    press_in_row(page, CONTACT, first.number, "Give back")
    expect(page.locator(".empty")).to_be_visible()
    show(page, "unclaimed")
    expect(page.locator("table.inbox tbody tr")).to_have_count(2)

    # The complaint page tells the story of the missed deadline.
    page.goto("/inbox")
    inbox_row(page, CONTACT, first.number).locator("td").first.get_by_role("link").click()
    timeline = page.locator(".timeline")
    expect(timeline.locator("li.timer")).to_contain_text("Deadline passed")
    expect(timeline.locator("li.warn")).to_contain_text(
        "Escalated to M&E or engineering department supervisor"
    )
    expect(timeline).to_contain_text(f"Taken: {CONTACT}")
    expect(timeline).to_contain_text(f"Given back: {CONTACT}")
