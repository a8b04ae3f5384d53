"""Procedure B, X酒吧處理客人投訴處理流程, driven through the engine along every path."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from complaintflow.models import Notification

from .complaints import Complaint, in_order

CATEGORIES = {
    "B-1.1": "greeting",
    "B-1.2": "service",
    "B-1.3": "product",
    "B-1.4": "inattention",
    "B-1.5": "price",
    "B-1.6": "billing",
}


@pytest.fixture
def complaint(make_app: Callable[..., Flask]) -> Callable[..., Complaint]:
    return Complaint.factory(make_app, "bar")


@pytest.mark.parametrize("clause", sorted(CATEGORIES))
def test_B_1_each_complaint_source_is_a_category(complaint, clause: str) -> None:
    c = complaint(category=CATEGORIES[clause])
    assert c.record.category == CATEGORIES[clause]


def test_B_1_the_intake_offers_exactly_the_six_sources(complaint) -> None:
    c = complaint()
    category = c.diagram.intake_form["properties"]["category"]
    assert sorted(category["enum"]) == sorted(CATEGORIES.values())
    assert set(category["x-enum-titles"]) == set(CATEGORIES.values())


def test_B_3_1_the_complaint_is_written_down_and_the_guest_named_by_table(complaint) -> None:
    c = complaint(guest_name="", table_or_place="吧枱5號", description="酒裡有雜質")
    record = c.record
    assert record.number.startswith("B-") and record.place == "吧枱5號"
    assert record.complainant == "客人（吧枱5號）"
    assert record.recorded_by == "bar_staff"


def test_B_2_2_B_2_3_staff_listen_and_act_at_once_on_a_minor_complaint(complaint) -> None:
    c = complaint()
    assert list(c.ready()) == ["listen"]
    c.do("listen", serious=False, within_authority=True)
    c.do("staff_resolve", solution="即時更換飲品並致歉")
    c.do("staff_ask_satisfaction", guest_satisfied=True, thanked=True)
    assert c.status == "completed"
    assert c.record.result == "即時更換飲品並致歉" and c.record.status == "archived"
    assert "notify_manager" not in c.path()


def test_B_2_1_conduct_notes_are_the_instructions_of_the_listening_step(complaint) -> None:
    c = complaint()
    listen = c.diagram.form_of(c.diagram.spec.task_specs["listen"])
    clauses = {note["clause"] for note in listen["x-instructions"]}
    assert {"B-2.1", "B-2.2", "B-3.7", "B-3.9"} <= clauses
    assert all(note["zh-Hant"] and note["en"] for note in listen["x-instructions"])


def test_B_2_3_not_acting_immediately_alerts_the_manager(make_app: Callable[..., Flask]) -> None:
    overrides = {"bar": {"act_immediately": "PT0S", "manager_response": "PT0S"}}
    c = Complaint.factory(make_app, "bar", sla_overrides=overrides)()
    assert c.escalations() == [("bar_manager", "act_immediately")]
    assert "listen" in c.ready()


@pytest.mark.parametrize(("serious", "within_authority"), [(True, True), (False, False)])
def test_B_2_4_B_3_1_serious_or_beyond_authority_goes_to_the_manager_at_once(
    complaint, serious: bool, within_authority: bool
) -> None:
    c = complaint()
    c.do("listen", serious=serious, within_authority=within_authority)
    assert ("bar_manager", "complaint.urgent") in c.notified_roles()
    prepare = c.ready()["manager_prepare"]
    assert prepare.role == "bar_manager"
    assert in_order(c.path(), "listen", "gw_serious", "notify_manager", "notify_guest")


def test_B_3_2_to_B_3_5_the_manager_prepares_then_contacts_the_guest_again(complaint) -> None:
    c = complaint(guest_request="要求退款")
    c.do("listen", serious=True, cause="食物變質")
    prepare = c.data_for("manager_prepare")
    assert prepare["guest_request"] == "要求退款" and prepare["cause"] == "食物變質"
    c.do("manager_prepare", planned_solution="全單免費並送甜品")
    c.do("manager_recontact", problem_confirmed=True, manager_solution="全單免費並送甜品")
    c.do("manager_ask_satisfaction", guest_satisfied=True, thanked=True)
    assert c.status == "completed"
    assert c.record.result == "全單免費並送甜品"
    assert in_order(
        c.path(),
        "manager_prepare",
        "manager_recontact",
        "manager_ask_satisfaction",
        "update_record",
        "archive_record",
        "complaint_closed",
    )


def test_B_3_6_an_upset_guest_gets_another_contact(complaint) -> None:
    c = complaint()
    c.do("listen", serious=True).do("manager_prepare").do("manager_recontact")
    c.do("manager_ask_satisfaction", guest_satisfied=False, next_step="recontact")
    assert list(c.ready()) == ["manager_recontact"]


def test_B_3_10_the_manager_may_close_when_the_demand_is_excessive(complaint) -> None:
    c = complaint()
    c.do("listen", serious=True).do("manager_prepare").do("manager_recontact")
    c.do(
        "manager_ask_satisfaction",
        guest_satisfied=False,
        next_step="close",
        guest_comment="要求全年免費",
    )
    assert c.status == "completed"
    assert c.record.satisfaction is not None


def test_B_3_8_an_unsatisfied_guest_of_the_staff_goes_to_the_manager(complaint) -> None:
    c = complaint()
    c.do("listen", serious=False, within_authority=True).do("staff_resolve")
    c.do("staff_ask_satisfaction", guest_satisfied=False)
    assert list(c.ready()) == ["manager_prepare"]
    assert ("bar_manager", "complaint.urgent") in c.notified_roles()


def test_B_3_11_the_guest_knows_the_complaint_is_being_handled(
    make_app: Callable[..., Flask],
) -> None:
    overrides = {"bar": {"manager_response": "PT0S"}}
    c = Complaint.factory(make_app, "bar", sla_overrides=overrides)()
    c.do("listen", serious=True)
    with c.svc.store.read() as session:
        told = session.query(Notification).filter_by(instance_id=c.id, audience="complainant")
        assert [n.event for n in told] == ["complaint.in_progress", "complaint.in_progress"]
    assert ("bar_manager", "manager_response") in c.escalations()


def test_B_3_12_the_handler_asks_about_satisfaction_and_it_is_recorded(complaint) -> None:
    c = complaint()
    c.do("listen", serious=False, within_authority=True).do("staff_resolve")
    c.do("staff_ask_satisfaction", guest_satisfied=True, thanked=True, guest_comment="多謝")
    record = c.record
    assert record.satisfaction is not None and record.status == "archived"
    completed = [
        e
        for e in c.history()
        if e["bpmn_id"] == "staff_ask_satisfaction" and e["action"] == "task.completed"
    ]
    assert completed[0]["actor"] == "bar_staff"
    assert completed[0]["data"]["thanked"] is True
