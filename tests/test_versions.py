"""Changing a procedure: drafts, review and approval by other people, effective dates, complaints
keeping their versions, and moving running complaints to a newer one."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from complaintflow.app import services
from complaintflow.errors import ComplaintflowError, Conflict, Forbidden, InvalidDiagram
from complaintflow.models import AuditEntry
from complaintflow.services import Services

from .complaints import Complaint
from .conftest import BUNDLED, Api

PHOTO_STEP = """
    <bpmn:userTask id="photograph_site" name="拍照記錄處理後現場">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="formJsonSchemaFilename"
                                  value="forms/facility/measures.schema.json" />
        </spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>flow_measures_taken</bpmn:incoming>
      <bpmn:outgoing>flow_photographed</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="flow_photographed" sourceRef="photograph_site"
                       targetRef="merge_followup" />
"""


def with_photo_step(
    folder: Path, renamed_measures: bool = False, form: str = "forms/facility/measures.schema.json"
) -> Path:
    """Procedure A with one step added after the measures: the technician photographs the
    site (the worked example of the process owner's guide); and perhaps the measures renamed."""
    shutil.copytree(BUNDLED, folder)
    path = folder / "facility.bpmn"
    xml = path.read_text(encoding="utf-8")
    xml = xml.replace(
        '<bpmn:sequenceFlow id="flow_measures_taken" sourceRef="take_measures"'
        ' targetRef="merge_followup" />',
        '<bpmn:sequenceFlow id="flow_measures_taken" sourceRef="take_measures"'
        ' targetRef="photograph_site" />'
        + PHOTO_STEP.replace("forms/facility/measures.schema.json", form),
    )
    xml = xml.replace(
        "<bpmn:flowNodeRef>contact_complainant</bpmn:flowNodeRef>",
        "<bpmn:flowNodeRef>contact_complainant</bpmn:flowNodeRef>"
        "<bpmn:flowNodeRef>photograph_site</bpmn:flowNodeRef>",
        1,
    )
    xml = xml.replace(
        "<bpmn:incoming>flow_measures_taken</bpmn:incoming>\n      <bpmn:outgoing>",
        "<bpmn:incoming>flow_photographed</bpmn:incoming>\n      <bpmn:outgoing>",
        1,
    )
    if renamed_measures:
        xml = xml.replace('name="立即采取措施處理"', 'name="立即采取措施處理，完成後拍照"')
    path.write_text(xml, encoding="utf-8")
    return path


@pytest.fixture
def svc(make_app: Callable[..., Flask]) -> Services:
    return services(make_app())


def in_effect(svc: Services) -> int:
    with svc.store.read() as session:
        return svc.engine.current_version(session, "facility").version


def test_a_draft_needs_a_review_and_an_approval_by_two_other_people(
    svc: Services, tmp_path: Path
) -> None:
    deployed = svc.engine.deploy(with_photo_step(tmp_path / "b"), "ann")
    assert (deployed.version, deployed.status) == (2, "draft")
    assert in_effect(svc) == 1
    with pytest.raises(Conflict, match="approval needs a review"):
        svc.engine.approve("facility", 2, "carol", True, "no review yet")
    with pytest.raises(Forbidden, match="prepared a version may not review it"):
        svc.engine.review("facility", 2, "ann", True, "looks good to me")
    svc.engine.review("facility", 2, "bob", True, "step reads well")
    for who in ("ann", "bob"):
        with pytest.raises(Forbidden, match="neither who prepared nor who reviewed"):
            svc.engine.approve("facility", 2, who, True, "approve")
    assert in_effect(svc) == 1
    svc.engine.approve("facility", 2, "carol", True, "in effect now")
    assert in_effect(svc) == 2
    with svc.store.read() as session:
        log = [
            (e.action, e.actor, e.subject)
            for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
        ][-3:]
    assert log == [
        ("procedure.deployed", "ann", "facility v2"),
        ("procedure.reviewed", "bob", "facility v2"),
        ("procedure.approved", "carol", "facility v2"),
    ]


def test_a_rejected_draft_never_takes_effect(svc: Services, tmp_path: Path) -> None:
    svc.engine.deploy(with_photo_step(tmp_path / "b"), "ann")
    svc.engine.review("facility", 2, "bob", False, "the step needs a deadline")
    with pytest.raises(Conflict):
        svc.engine.approve("facility", 2, "carol", True, "approve anyway")
    assert in_effect(svc) == 1


def test_a_future_effective_date_is_honoured(svc: Services, tmp_path: Path) -> None:
    svc.engine.deploy(with_photo_step(tmp_path / "b"), "ann")
    svc.engine.review("facility", 2, "bob", True, "ok")
    with pytest.raises(ComplaintflowError, match="in the past"):
        svc.engine.approve("facility", 2, "carol", True, "ok", datetime.now(UTC) - timedelta(1))
    svc.engine.approve(
        "facility", 2, "carol", True, "from next second", datetime.now(UTC) + timedelta(seconds=1)
    )
    before = Complaint(svc, "facility")
    time.sleep(1.2)
    after = Complaint(svc, "facility")
    assert (before.diagram.key, in_effect(svc)) == ("facility", 2)
    with svc.store.read() as session:
        from complaintflow.engine import queries

        assert queries.get_instance(session, before.id).version.version == 1
        assert queries.get_instance(session, after.id).version.version == 2


def _approved(svc: Services, folder: Path) -> None:
    svc.engine.deploy(with_photo_step(folder), "ann")
    svc.engine.review("facility", 2, "bob", True, "ok")
    svc.engine.approve("facility", 2, "carol", True, "ok")


def finish(c: Complaint, photo: bool, measured: bool = False) -> None:
    if not measured:
        c.do("take_measures")
    if photo:
        c.do("photograph_site")
    c.do("follow_up_visit", verification="verified").do("record_result").do("check_effect")
    assert c.status == "completed"


def test_complaints_before_and_after_run_on_their_own_versions_to_the_end(
    svc: Services, tmp_path: Path
) -> None:
    old = Complaint(svc, "facility")
    old.do("contact_complainant", assessment="solvable")
    _approved(svc, tmp_path / "b")
    new = Complaint(svc, "facility")
    new.do("contact_complainant", assessment="solvable")
    finish(old, photo=False)
    finish(new, photo=True)
    assert "photograph_site" not in old.path() and "photograph_site" in new.path()


def test_a_dry_run_then_a_batch_migration(svc: Services, tmp_path: Path) -> None:
    waiting = Complaint(svc, "facility")  # still at the first step
    measuring = Complaint(svc, "facility")
    measuring.do("contact_complainant", assessment="solvable")  # at the measures
    past = Complaint(svc, "facility")
    past.do("contact_complainant", assessment="solvable").do("take_measures")
    svc.engine.deploy(with_photo_step(tmp_path / "b", renamed_measures=True), "ann")
    with pytest.raises(Conflict, match="only to an approved version"):
        svc.engine.migrate("facility", 2, "ann", "not yet approved")
    svc.engine.review("facility", 2, "bob", True, "ok")
    svc.engine.approve("facility", 2, "carol", True, "ok")
    dry = {m.instance_id: m for m in svc.engine.migrate("facility", 2, "ann", "photos")}
    assert dry[waiting.id].movable and dry[measuring.id].movable
    assert not dry[past.id].movable
    assert dry[past.id].reasons == [
        "take_measures (立即采取措施處理) was already completed and is changed in the new version"
    ]
    assert all(c.history()[-1]["action"] != "instance.migrated" for c in (waiting, past))
    moved = svc.engine.migrate("facility", 2, "ann", "photos of every repair", dry_run=False)
    assert sorted(m.instance_id for m in moved if m.movable) == sorted([waiting.id, measuring.id])
    event = next(e for e in measuring.history() if e["action"] == "instance.migrated")
    assert (event["actor"], event["data"]) == (
        "ann",
        {"from": 1, "to": 2, "reason": "photos of every repair"},
    )
    assert measuring.ready()["take_measures"].name == "立即采取措施處理，完成後拍照"
    finish(measuring, photo=True)
    finish(past, photo=False, measured=True)  # stayed on version 1
    waiting.do("contact_complainant", assessment="solvable")
    finish(waiting, photo=True)


def test_the_api_uploads_signs_off_compares_and_migrates(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    app = make_app()
    svc = services(app)
    for user in ("owner_b", "owner_c"):
        svc.accounts.create_user(user, f"{user}-demo", ["process_owner"])
    api = Api(app.test_client())
    xml = with_photo_step(tmp_path / "b").read_text(encoding="utf-8")
    body = {"bpmn": xml, "base_version": 1}
    assert api.post("/procedures/facility/versions", "technician", body).status_code == 403
    broken = api.post(
        "/procedures/facility/versions",
        "process_owner",
        {**body, "bpmn": xml.replace('merge_followup" />', 'nowhere" />', 1)},
    )
    assert broken.status_code == 422 and broken.get_json()["error"]["findings"]
    dry = api.post("/procedures/facility/versions", "process_owner", {**body, "dry_run": True})
    assert dry.status_code == 200 and dry.get_json() == {"valid": True, "key": "facility"}
    stored = api.post("/procedures/facility/versions", "process_owner", body)
    assert stored.status_code == 201 and stored.get_json()["version"] == 2
    path = "/procedures/facility/versions/2"
    sign = {"accept": True, "comment": "ok"}
    assert api.post(f"{path}/review", "process_owner", sign).status_code == 403
    assert api.post(f"{path}/review", "owner_b", sign).get_json()["status"] == "reviewed"
    approved = api.post(f"{path}/approve", "owner_c", sign).get_json()
    assert approved["status"] == "approved" and approved["effective_from"]
    listed = api.get("/procedures/facility/versions", "auditor").get_json()["versions"]
    assert [(v["version"], v["status"]) for v in listed] == [(2, "approved"), (1, "approved")]
    changes = api.get("/procedures/facility/diff?from=1&to=2", "auditor").get_json()["changes"]
    assert {(c["element"], c["kind"]) for c in changes} >= {
        ("photograph_site", "added"),
        ("flow_photographed", "added"),
        ("flow_measures_taken", "changed"),
    }
    assert api.get(f"{path}/bpmn", "auditor").get_data(as_text=True) == xml
    migration = api.post(
        "/procedures/facility/migrations", "process_owner", {"to": 2, "reason": "photos"}
    )
    assert migration.get_json() == {"dry_run": True, "moves": []}


def test_an_upload_with_problems_lists_them_and_stores_nothing(
    svc: Services, tmp_path: Path
) -> None:
    path = with_photo_step(tmp_path / "b", form="forms/facility/photo.schema.json")
    xml = path.read_text(encoding="utf-8")
    with pytest.raises(InvalidDiagram) as refused:
        svc.engine.check_upload(xml.encode(), {}, "edited", ("facility", 1))
    (finding,) = refused.value.findings
    assert finding.startswith("photograph_site (拍照記錄處理後現場), line ")
    assert finding.endswith(
        "form 'forms/facility/photo.schema.json' was not uploaded with the diagram; add it"
    )
    with svc.store.read() as session:
        assert [v.version for v, _, _ in svc.engine.versions(session, "facility")] == [1]
