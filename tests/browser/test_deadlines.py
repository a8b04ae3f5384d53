"""Deadlines that pass while people work: the role a missed deadline escalates to learns of it,
and a general manager who answers too late is told the duty manager has taken over (C-4.4)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from playwright.sync_api import expect

from .pages import (
    Site,
    do_task,
    file_complaint,
    fill_form,
    flash,
    open_task,
    submit,
    wait_for_inbox,
)


def test_the_role_a_missed_deadline_escalates_to_is_told_on_its_pages(
    serve: Callable[..., Site],
) -> None:
    """A-4.3: the technician did not contact the user in time, so the M&E supervisor "is
    alerted". The supervisor holds no step of the complaint; signed in, the supervisor must
    still see which complaint is late (the product stores a notification for the role, and no
    page shows it)."""
    site = serve(
        COMPLAINTFLOW_SLA_OVERRIDES=json.dumps({"facility": {"technician_contact": "PT1S"}})
    )
    filed = file_complaint(
        site.visitor(),
        "facility",
        {
            "complainant_name": "Resident",
            "complainant_phone": "9000 0001",
            "address": "Block 1",
            "facility": "lighting",
            "description": "Corridor light is off.",
        },
    )
    wait_for_inbox(site.staff("technician"), "table.inbox tr.overdue")
    supervisor = site.staff("engineering_supervisor")
    supervisor.goto("/inbox")
    expect(supervisor.locator("main")).to_contain_text(filed.number)


def test_a_general_manager_who_answers_too_late_is_told_the_duty_manager_took_over(
    serve: Callable[..., Site],
) -> None:
    site = serve(COMPLAINTFLOW_SLA_OVERRIDES=json.dumps({"hotel": {"gm_response": "PT4S"}}))
    filed = file_complaint(
        site.visitor(),
        "hotel",
        {"guest_name": "Mr Chan", "department": "food_beverage", "matter": "Food poisoning."},
    )
    gm = site.staff("general_manager")
    duty = site.staff("duty_manager")
    do_task(
        site.staff("lobby_manager"),
        "聆聽投訴，表示理解並致歉",
        filed.number,
        {"severity": "major", "own_department": False, "gm_available": True},
    )
    instance_id = open_task(gm, "總經理處理重大投訴", filed.number)
    fill_form(gm, {"major_handling": "Written by the GM too late."})

    # Fifteen minutes (here four seconds) without an answer: the duty manager has it now.
    wait_for_inbox(duty, "table.inbox tbody tr", 1)
    expect(duty.locator("table.inbox")).to_contain_text("總值班經理及時處理，不得延誤")

    submit(gm)
    expect(gm).to_have_url(re.compile(rf"/complaints/{instance_id}$"))
    message = flash(gm)
    assert message, "the general manager is told nothing"
    # Nobody completed the step: it was withdrawn when the deadline passed.
    assert "completed" not in message and "unknown" not in message, message
    expect(gm.locator(".timeline")).not_to_contain_text("Written by the GM too late.")
    expect(gm.locator(".timeline")).to_contain_text("No longer needed: 總經理處理重大投訴")
