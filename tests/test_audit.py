"""What auditors rely on: a complete history in order, hash chains that reveal tampering,
administrative acts on the record, and deploys and users in the audit log."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text

from complaintflow.app import services
from complaintflow.audit import verify
from complaintflow.errors import ComplaintflowError
from complaintflow.models import AuditEntry, Event, Task
from complaintflow.services import Services

from .complaints import Complaint
from .conftest import FLAKY_FOR, MECHANICS


@pytest.fixture
def svc(make_app: Callable[..., Flask]) -> Services:
    return services(make_app())


def facility_path(c: Complaint) -> list[tuple[str, dict[str, Any]]]:
    """Drive the facility happy path; returns (step, submitted data) in order."""
    steps = [
        ("contact_complainant", {"assessment": "solvable", "site_findings": "控制板燒了"}),
        ("take_measures", {"measures_taken": "更換控制板"}),
        ("follow_up_visit", {"verification": "verified"}),
        ("record_result", {"result_summary": "已修復"}),
        ("check_effect", {"check_outcome": "effective"}),
    ]
    submitted = []
    for step, choices in steps:
        before = len(c.history())
        c.do(step, **choices)
        completed = [e for e in c.history()[before:] if e["action"] == "task.completed"]
        submitted.append((step, completed[0]["data"]))
    return submitted


def test_the_history_holds_every_step_in_order_with_actor_and_data(svc: Services) -> None:
    c = Complaint(svc, "facility", complainant_name="李四")
    submitted = facility_path(c)
    history = c.history()
    assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
    assert history[0]["action"] == "instance.started" and history[0]["actor"] == "clerk"
    assert history[0]["data"]["complainant_name"] == "李四"
    assert history[0]["data"]["sla"]["technician_contact"] == "PT30M"
    completions = [
        (e["bpmn_id"], e["actor"], e["data"]) for e in history if e["action"] == "task.completed"
    ]
    assert [(step, data) for step, _, data in completions] == submitted
    assert {actor for step, actor, _ in completions if step != "check_effect"} == {"technician"}
    assert history[-1]["action"] == "instance.completed"
    services_called = [e["data"]["operator"] for e in history if e["action"] == "service.called"]
    assert services_called == [
        "record.create",
        "notify.role",
        "record.update",
        "record.update",
        "record.archive",
    ]
    assert verify(svc.store).intact


def _without_guards(svc: Services, statement: str) -> None:
    """Run what the append-only triggers forbid, as someone with the database password could."""
    with svc.store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            triggers = conn.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            ).all()
            for name, _ in triggers:
                conn.execute(text(f"DROP TRIGGER {name}"))
            conn.execute(text(statement))
            for _, sql in triggers:
                conn.execute(text(sql))
        else:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text(statement))


@pytest.fixture
def chained(svc: Services) -> tuple[Services, Complaint]:
    c = Complaint(svc, "facility")
    c.do("contact_complainant", assessment="solvable")
    Complaint(svc, "bar")
    assert verify(svc.store).intact
    return svc, c


def _event_id(svc: Services, instance_id: int, seq: int) -> int:
    with svc.store.read() as session:
        return session.scalars(
            select(Event.id).where(Event.instance_id == instance_id, Event.seq == seq)
        ).one()


def test_verify_finds_an_altered_event(chained: tuple[Services, Complaint]) -> None:
    svc, c = chained
    event = _event_id(svc, c.id, 3)
    _without_guards(svc, f"UPDATE events SET actor = 'someone else' WHERE id = {event}")
    verdict = verify(svc.store)
    assert not verdict.intact
    assert verdict.problem is not None and verdict.problem.startswith(f"instance {c.id}, event 3")
    assert "was altered" in verdict.problem


def test_verify_finds_a_deleted_event(chained: tuple[Services, Complaint]) -> None:
    svc, c = chained
    _without_guards(svc, f"DELETE FROM events WHERE id = {_event_id(svc, c.id, 2)}")
    problem = verify(svc.store).problem or ""
    assert problem.startswith(f"instance {c.id}, event 3") and "removed or reordered" in problem


def test_verify_finds_swapped_events(chained: tuple[Services, Complaint]) -> None:
    svc, c = chained
    a, b = _event_id(svc, c.id, 2), _event_id(svc, c.id, 3)
    _without_guards(svc, f"UPDATE events SET seq = -1 WHERE id = {a}")
    _without_guards(svc, f"UPDATE events SET seq = 2 WHERE id = {b}")
    _without_guards(svc, f"UPDATE events SET seq = 3 WHERE id = {a}")
    problem = verify(svc.store).problem or ""
    assert problem.startswith(f"instance {c.id}, event 2")


def test_verify_finds_the_newest_events_removed(chained: tuple[Services, Complaint]) -> None:
    svc, c = chained
    _without_guards(svc, f"DELETE FROM events WHERE instance_id = {c.id} AND seq > 5")
    problem = verify(svc.store).problem or ""
    assert problem.startswith(f"instance {c.id}: the history ends at event 5")


def test_verify_finds_an_altered_audit_log_entry(chained: tuple[Services, Complaint]) -> None:
    svc, _ = chained
    _without_guards(svc, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
    assert "audit log entry 1" in (verify(svc.store).problem or "")


def test_verify_finds_the_newest_audit_log_entries_removed(
    chained: tuple[Services, Complaint],
) -> None:
    svc, _ = chained
    _without_guards(svc, "DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)")
    assert "its newest entries were removed" in (verify(svc.store).problem or "")


def test_audit_verify_exits_0_when_intact_and_1_naming_the_break(
    chained: tuple[Services, Complaint],
) -> None:
    svc, c = chained
    env = {
        **os.environ,
        "COMPLAINTFLOW_HOME": str(svc.settings.home),
        "COMPLAINTFLOW_DATABASE_URL": svc.settings.database_url,
    }
    command = [sys.executable, "-m", "complaintflow", "audit", "verify"]
    intact = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert intact.returncode == 0 and intact.stdout.startswith("intact: ")
    _without_guards(svc, f"UPDATE events SET data = '{{}}' WHERE id = {_event_id(svc, c.id, 1)}")
    broken = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1
    assert broken.stderr.strip() == (
        f"error: history broken: instance {c.id}, event 1 (instance.started, id"
        f" {_event_id(svc, c.id, 1)}): its content does not match its hash; the row was altered"
    )


def test_deploys_and_users_are_in_the_audit_log(svc: Services) -> None:
    svc.accounts.create_user("ah_ming", "long-password", ["technician"], actor="admin")
    with svc.store.read() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    actions = [(e.action, e.subject) for e in entries]
    assert ("procedure.deployed", "facility v1") in actions
    assert actions[-1] == ("user.created", "ah_ming")
    assert entries[-1].actor == "admin" and entries[-1].data == {"roles": ["technician"]}


def test_a_task_is_handed_to_someone_with_its_role(svc: Services) -> None:
    c = Complaint(svc, "facility")
    task = c.ready()["contact_complainant"]
    svc.accounts.create_user("ah_wing", "long-password", ["technician"])
    with pytest.raises(ComplaintflowError, match="not an active user holding the role"):
        svc.engine.reassign(task.id, "bar_staff", "admin", "cover")
    svc.engine.reassign(task.id, "ah_wing", "admin", "technician on leave")
    with svc.store.read() as session:
        assert session.get(Task, task.id).assignee == "ah_wing"  # type: ignore[union-attr]
    event = c.history()[-1]
    assert (event["action"], event["actor"], event["data"]) == (
        "task.reassigned",
        "admin",
        {"from": None, "to": "ah_wing", "reason": "technician on leave"},
    )


def test_a_correction_keeps_what_was_there_before(svc: Services) -> None:
    c = Complaint(svc, "facility", complainant_phone="9999")
    svc.engine.correct(c.id, {"complainant_phone": "91234567"}, "admin", "typo at intake")
    event = (
        c.history()[-1]
        if c.history()[-1]["action"] == "data.corrected"
        else next(e for e in c.history() if e["action"] == "data.corrected")
    )
    assert event["data"] == {
        "reason": "typo at intake",
        "changes": {"complainant_phone": {"from": "9999", "to": "91234567"}},
    }
    assert c.data_for("contact_complainant")["complainant_phone"] == "91234567"
    with pytest.raises(ComplaintflowError, match="no field"):
        svc.engine.correct(c.id, {"sla": "P1D"}, "admin", "try")


def test_a_failing_step_is_recorded_as_an_error(make_app: Callable[..., Flask]) -> None:
    svc = services(make_app(MECHANICS))
    FLAKY_FOR.add("斷線")
    try:
        instance_id = svc.engine.start("mechanics", {"name": "斷線", "text": "x"}, "desk")
    finally:
        FLAKY_FOR.discard("斷線")
    with svc.store.read() as session:
        actions = [
            e.action
            for e in session.scalars(
                select(Event).where(Event.instance_id == instance_id).order_by(Event.seq)
            )
        ]
    assert actions[-2:] == ["service.failed", "instance.errored"]
