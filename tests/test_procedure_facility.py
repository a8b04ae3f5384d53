"""Procedure A, 小區機電設施投訴處理程序, driven through the engine along every path.

Each test names the clauses of PROCEDURES.md it exercises; bpmn/README.md points here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask

from .complaints import Complaint, in_order

ALL_TIMERS_DUE = {
    "facility": {
        "technician_contact": "PT0S",
        "urgent_inspection": "PT0S",
        "other_party_contact": "PT0S",
    }
}


@pytest.fixture
def complaint(make_app: Callable[..., Flask]) -> Callable[..., Complaint]:
    return Complaint.factory(make_app, "facility")


def test_A_4_1_clerk_records_a_verbal_or_written_complaint_in_detail(complaint) -> None:
    c = complaint(
        complainant_name="陳大文",
        complainant_phone="91234567",
        address="3座12樓B室",
        channel="written",
        facility="lift",
        description="3座升降機停在12樓",
        place="3座升降機",
    )
    record = c.record
    assert re.fullmatch(r"A-\d{4}-\d{6}", record.number)
    assert (record.complainant, record.contact, record.channel, record.category) == (
        "陳大文",
        "91234567",
        "written",
        "lift",
    )
    assert (record.description, record.place) == ("3座升降機停在12樓", "3座升降機")
    assert record.recorded_by == "clerk" and record.status == "open"
    assert c.history()[0]["actor"] == "clerk"


def test_A_4_1_the_place_falls_back_to_the_address(complaint) -> None:
    c = complaint(address="5座地下大堂", place="")
    assert c.record.place == "5座地下大堂"


def test_A_4_2_the_technician_is_notified_immediately_after_registering(complaint) -> None:
    c = complaint()
    assert in_order(c.path(), "complaint_received", "create_record", "notify_technician")
    assert ("technician", "complaint.new") in c.notified_roles()
    (contact,) = c.ready().values()
    assert (contact.bpmn_id, contact.role) == ("contact_complainant", "technician")


def test_A_4_3_solvable_problem_is_fixed_followed_up_and_verified(complaint) -> None:
    c = complaint()
    c.do("contact_complainant", assessment="solvable")
    c.do("take_measures").do("follow_up_visit", verification="verified")
    c.do("record_result", result_summary="更換了控制板，升降機恢復正常", satisfaction="satisfied")
    c.do("check_effect", check_outcome="effective")
    assert c.status == "completed"
    assert in_order(
        c.path(),
        "contact_complainant",
        "gw_assessment",
        "take_measures",
        "follow_up_visit",
        "gw_verified",
        "record_result",
        "update_record",
        "check_effect",
        "update_review",
        "gw_check",
        "archive_record",
        "complaint_closed",
    )
    actors = {e["bpmn_id"]: e["actor"] for e in c.history() if e["action"] == "task.completed"}
    assert actors == {
        "contact_complainant": "technician",
        "take_measures": "technician",
        "follow_up_visit": "technician",
        "record_result": "technician",
        "check_effect": "office_director",
    }


def test_A_4_3_an_unverified_result_goes_back_to_the_measures(complaint) -> None:
    c = complaint()
    c.do("contact_complainant", assessment="solvable").do("take_measures")
    c.do("follow_up_visit", verification="not_resolved")
    assert list(c.ready()) == ["take_measures"]
    c.do("take_measures").do("follow_up_visit", verification="verified")
    assert list(c.ready()) == ["record_result"]


def test_A_4_3_what_cannot_be_solved_gets_an_answer(complaint) -> None:
    c = complaint()
    c.do("contact_complainant", assessment="unsolvable")
    c.do("give_answer", answer="屬政府供電問題，已向用戶解釋")
    assert list(c.ready()) == ["record_result"]
    assert "take_measures" not in c.path()


def test_A_4_3_technician_contact_overdue_escalates_to_the_supervisor(
    make_app: Callable[..., Flask],
) -> None:
    c = Complaint.factory(make_app, "facility", sla_overrides=ALL_TIMERS_DUE)()
    assert c.escalations() == [("engineering_supervisor", "technician_contact")]
    assert ("engineering_supervisor", "deadline.missed") in c.notified_roles()
    assert c.record.escalations == 1
    assert "contact_complainant" in c.ready()  # the technician still has to act


def test_A_4_3_the_contact_deadline_follows_the_seed_by_default(complaint) -> None:
    c = complaint()
    task = c.ready()["contact_complainant"]
    assert task.due_at is not None
    assert task.due_at - task.created_at <= timedelta(minutes=30, seconds=5)


def test_A_4_4_urgent_problem_goes_to_the_supervisor_for_inspection_and_plan(complaint) -> None:
    c = complaint()
    c.do("contact_complainant", assessment="urgent")
    assert ("engineering_supervisor", "complaint.urgent") in c.notified_roles()
    inspect = c.ready()["inspect_site"]
    assert inspect.role == "engineering_supervisor"
    c.do("inspect_site", plan="emergency_repair", plan_details="停用升降機，通知保養公司搶修")
    assert list(c.ready()) == ["take_measures"]
    assert in_order(c.path(), "gw_assessment", "notify_supervisor", "inspect_site")


def test_A_4_4_overdue_inspection_escalates_to_the_director(
    make_app: Callable[..., Flask],
) -> None:
    c = Complaint.factory(make_app, "facility", sla_overrides=ALL_TIMERS_DUE)()
    c.do("contact_complainant", assessment="urgent")
    assert ("office_director", "urgent_inspection") in c.escalations()


def test_A_4_5_other_organisation_contact_within_three_days_then_feedback(complaint) -> None:
    c = complaint()
    c.do("contact_complainant", assessment="other_party")
    explain = c.ready()["explain_to_complainant"]
    assert explain.due_at is not None
    assert timedelta(days=3) - timedelta(seconds=5) <= explain.due_at - explain.created_at
    assert explain.due_at - explain.created_at <= timedelta(days=3, seconds=5)
    c.do("explain_to_complainant")
    c.do("contact_other_party", organisation="中華電力", fed_back=True)
    assert list(c.ready()) == ["follow_up_visit"]


def test_A_4_5_no_contact_within_three_days_escalates(make_app: Callable[..., Flask]) -> None:
    c = Complaint.factory(make_app, "facility", sla_overrides=ALL_TIMERS_DUE)()
    c.do("contact_complainant", assessment="other_party")
    assert ("engineering_supervisor", "other_party_contact") in c.escalations()


def test_A_4_6_the_result_is_written_on_the_record_and_kept(complaint) -> None:
    c = complaint()
    c.do("contact_complainant", assessment="unsolvable").do("give_answer")
    c.do("record_result", result_summary="已答復用戶", satisfaction="neutral")
    resolved = c.record
    assert (resolved.status, resolved.result, resolved.satisfaction) == (
        "resolved",
        "已答復用戶",
        "neutral",
    )
    assert resolved.handler == "technician" and resolved.resolved_at is not None
    c.do("check_effect", check_outcome="effective", check_notes="處理得當")
    archived = c.record
    assert archived.status == "archived" and archived.archived_at is not None
    assert archived.reviewed_by == "office_director"
    assert "處理得當" in (archived.review or "")


def test_A_3_4_the_director_can_send_the_handling_back(complaint) -> None:
    c = complaint()
    c.do("contact_complainant", assessment="solvable").do("take_measures")
    c.do("follow_up_visit", verification="verified").do("record_result")
    c.do("check_effect", check_outcome="rework", check_notes="仍有異響")
    assert list(c.ready()) == ["take_measures"]
    assert c.record.status == "resolved"  # not archived until the check passes
    c.do("take_measures").do("follow_up_visit", verification="verified").do("record_result")
    c.do("check_effect", check_outcome="effective")
    assert c.status == "completed"


def test_A_3_every_step_belongs_to_its_role(complaint) -> None:
    c = complaint()
    c.do("contact_complainant", assessment="urgent").do("inspect_site").do("take_measures")
    c.do("follow_up_visit", verification="verified").do("record_result").do("check_effect")
    roles = {t.bpmn_id: t.role for t in c.tasks()}
    assert roles == {
        "contact_complainant": "technician",
        "inspect_site": "engineering_supervisor",
        "take_measures": "technician",
        "follow_up_visit": "technician",
        "record_result": "technician",
        "check_effect": "office_director",
    }
