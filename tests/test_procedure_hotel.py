"""Procedure C, 客人投訴處理程序, driven through the engine along every path."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from flask import Flask

from .complaints import Complaint, in_order


@pytest.fixture
def complaint(make_app: Callable[..., Flask]) -> Callable[..., Complaint]:
    return Complaint.factory(make_app, "hotel")


def close(c: Complaint) -> Complaint:
    """The common ending: tell the guest, record the result, the GM's instruction, archive."""
    c.do("tell_result", guest_satisfaction="satisfied")
    c.do("record_result", result_summary="已更換房間並致歉")
    c.do("gm_instruct", decision="archive", instruction="同意歸檔")
    return c


def test_C_2_1_the_guest_department_staff_and_matter_are_recorded(complaint) -> None:
    c = complaint(
        guest_name="李先生",
        room_number="1203",
        department="housekeeping",
        staff_named="王小姐",
        matter="房間未打掃",
        vip=False,
    )
    record = c.record
    assert record.number.startswith("C-")
    assert (record.complainant, record.category, record.place) == ("李先生", "housekeeping", "1203")
    assert "房間未打掃" in record.description and "王小姐" in record.description
    assert record.recorded_by == "lobby_manager"


def test_C_1_conduct_notes_guide_the_listening_step(complaint) -> None:
    c = complaint()
    listen = c.diagram.form_of(c.diagram.spec.task_specs["listen"])
    clauses = {note["clause"] for note in listen["x-instructions"]}
    assert {"C-1.1", "C-1.2", "C-1.3", "C-2.2"} <= clauses


def test_C_3_1_C_4_1_simple_complaint_in_own_department_goes_to_its_supervisor(complaint) -> None:
    c = complaint(vip=False)
    c.do("listen", severity="simple", own_department=True)
    resolve = c.ready()["supervisor_resolve"]
    assert resolve.role == "department_supervisor" and resolve.due_at is not None
    c.do("supervisor_resolve", resolution="即時補送毛巾", guest_view="滿意")
    close(c)
    assert c.status == "completed"
    assert in_order(
        c.path(),
        "listen",
        "gw_major",
        "gw_own_simple",
        "supervisor_resolve",
        "tell_result",
        "record_result",
        "update_record",
        "gm_instruct",
        "update_review",
        "archive_record",
        "complaint_closed",
    )


@pytest.mark.parametrize(("severity", "own_department"), [("difficult", True), ("simple", False)])
def test_C_3_4_C_4_2_hard_or_other_department_goes_to_the_department_manager(
    complaint, severity: str, own_department: bool
) -> None:
    c = complaint(vip=False)
    c.do("listen", severity=severity, own_department=own_department)
    c.do("apologise_and_record", apologised=True, handover_notes="客人要求換房")
    assert ("department_manager", "complaint.new") in c.notified_roles()
    assert c.ready()["department_handle"].role == "department_manager"
    c.do("department_handle", explanation="已由客房部主管解釋")
    close(c)
    assert c.status == "completed"


def test_C_4_3_the_guest_is_told_the_result_and_the_deadline_escalates(
    make_app: Callable[..., Flask],
) -> None:
    overrides = {"hotel": {"result_notice": "PT0S", "supervisor_response": "PT0S"}}
    c = Complaint.factory(make_app, "hotel", sla_overrides=overrides)(vip=False)
    c.do("listen", severity="simple", own_department=True)
    assert ("department_manager", "supervisor_response") in c.escalations()
    c.do("supervisor_resolve")
    assert ("department_manager", "result_notice") in c.escalations()
    assert c.ready()["tell_result"].role == "lobby_manager"


@pytest.mark.parametrize(("vip", "severity"), [(True, "simple"), (False, "major")])
def test_C_4_4_major_or_vip_complaints_go_to_the_general_manager_at_once(
    complaint, vip: bool, severity: str
) -> None:
    c = complaint(vip=vip)
    c.do("listen", severity=severity, gm_available=True)
    assert ("general_manager", "complaint.major") in c.notified_roles()
    assert c.ready()["gm_handle"].role == "general_manager"
    c.do("gm_handle", major_handling="總經理親自致電客人")
    close(c)
    assert c.status == "completed"


def test_C_4_4_when_the_gm_is_absent_the_duty_manager_handles_it(complaint) -> None:
    c = complaint(vip=True)
    c.do("listen", severity="major", gm_available=False)
    assert ("duty_manager", "complaint.major") in c.notified_roles()
    assert "gm_handle" not in c.ready()
    c.do("duty_handle", major_handling="總值班經理即時處理")
    close(c)
    assert c.status == "completed"
    assert in_order(c.path(), "gw_gm_available", "notify_duty_manager", "duty_handle")


def test_C_4_4_a_gm_who_does_not_answer_in_time_is_replaced_by_the_duty_manager(
    make_app: Callable[..., Flask],
) -> None:
    overrides = {"hotel": {"gm_response": "PT1S"}}
    c = Complaint.factory(make_app, "hotel", sla_overrides=overrides)(vip=True)
    c.do("listen", severity="major", gm_available=True)
    assert list(c.ready()) == ["gm_handle"]
    time.sleep(1.1)
    assert c.svc.engine.fire_due_timers() == 1
    assert ("duty_manager", "gm_response") in c.escalations()
    assert list(c.ready()) == ["duty_handle"]
    gm_task = next(t for t in c.tasks() if t.bpmn_id == "gm_handle")
    assert gm_task.state == "cancelled"


def test_C_4_4_the_duty_manager_who_delays_is_reported_to_the_gm(
    make_app: Callable[..., Flask],
) -> None:
    overrides = {"hotel": {"duty_manager_response": "PT0S"}}
    c = Complaint.factory(make_app, "hotel", sla_overrides=overrides)(vip=True)
    c.do("listen", severity="major", gm_available=False)
    assert ("general_manager", "duty_manager_response") in c.escalations()


def test_C_4_2_a_department_manager_who_delays_is_reported_to_the_gm(
    make_app: Callable[..., Flask],
) -> None:
    overrides = {"hotel": {"department_response": "PT0S"}}
    c = Complaint.factory(make_app, "hotel", sla_overrides=overrides)(vip=False)
    c.do("listen", severity="difficult", own_department=False).do("apologise_and_record")
    assert ("general_manager", "department_response") in c.escalations()


def test_C_5_1_C_5_2_recorded_in_detail_then_the_gms_instruction_before_archiving(
    complaint,
) -> None:
    c = complaint(vip=False)
    c.do("listen", severity="simple", own_department=True).do("supervisor_resolve")
    c.do("tell_result").do("record_result", result_summary="補送毛巾並致歉")
    assert c.record.result == "補送毛巾並致歉" and c.record.status == "resolved"
    assert c.ready()["gm_instruct"].role == "general_manager"
    c.do("gm_instruct", decision="follow_up", instruction="請再致電客人確認")
    assert list(c.ready()) == ["tell_result"]
    assert c.record.status == "resolved"  # not archived without the GM's instruction
    c.do("tell_result").do("record_result").do("gm_instruct", decision="archive")
    record = c.record
    assert record.status == "archived" and record.reviewed_by == "general_manager"
