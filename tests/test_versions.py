"""Changing a procedure: drafts, review and approval by other people, effective dates, complaints
keeping their versions, and moving running complaints to a newer one."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from complaintflow.app import services
from complaintflow.engine import queries
from complaintflow.errors import ComplaintflowError, Conflict, Forbidden, InvalidDiagram
from complaintflow.models import AuditEntry
from complaintflow.services import Services
from complaintflow.sla import SlaTable

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


CONTACT_FORM = "forms/facility/contact.schema.json"


def _signed(svc: Services, number: int, effective: datetime | None = None) -> None:
    svc.engine.review("facility", number, "bob", True, "ok")
    svc.engine.approve("facility", number, "carol", True, "ok", effective)


def test_the_highest_approved_version_whose_date_has_come_is_in_effect(
    svc: Services, tmp_path: Path
) -> None:
    svc.engine.deploy(with_photo_step(tmp_path / "b"), "ann")
    svc.engine.deploy(with_photo_step(tmp_path / "c", renamed_measures=True), "ann")
    svc.engine.deploy(with_photo_step(tmp_path / "d", form=CONTACT_FORM), "ann")
    svc.engine.review("facility", 3, "bob", True, "ok")
    _signed(svc, 2, datetime.now(UTC) + timedelta(seconds=1.5))  # scheduled
    _signed(svc, 4)  # approved later, in effect at once
    assert in_effect(svc) == 4
    with pytest.raises(Conflict, match="version 4 is newer and in effect by then, so version 3"):
        svc.engine.approve("facility", 3, "carol", True, "would never take effect")
    time.sleep(1.7)  # version 2's date has come: version 4 supersedes it all the same
    assert in_effect(svc) == 4
    started = Complaint(svc, "facility")
    with svc.store.read() as session:
        assert queries.get_instance(session, started.id).version.version == 4


def test_an_approved_version_can_be_withdrawn_until_it_takes_effect(
    svc: Services, tmp_path: Path
) -> None:
    svc.engine.deploy(with_photo_step(tmp_path / "b"), "ann")
    _signed(svc, 2, datetime.now(UTC) + timedelta(days=1))
    with pytest.raises(ComplaintflowError, match="give a reason"):
        svc.engine.withdraw("facility", 2, "dave", " ")
    with pytest.raises(Conflict, match=r"version 1 has been in effect since .*: approve a newer"):
        svc.engine.withdraw("facility", 1, "dave", "replace it")
    svc.engine.withdraw("facility", 2, "dave", "the photo rule waits for new cameras")
    with svc.store.read() as session:
        assert svc.engine.version(session, "facility", 2).status == "withdrawn"
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert entry is not None
        assert (entry.action, entry.actor, entry.subject, entry.data["reason"]) == (
            "procedure.withdrawn",
            "dave",
            "facility v2",
            "the photo rule waits for new cameras",
        )
    with pytest.raises(Conflict, match="version 2 is withdrawn; only an approved version"):
        svc.engine.withdraw("facility", 2, "dave", "again")
    with pytest.raises(Conflict, match="complaints move only to an approved version"):
        svc.engine.migrate("facility", 2, "ann", "to a withdrawn version")
    time.sleep(0.1)
    assert in_effect(svc) == 1
    # Complaints moved onto a version waiting for its date keep it from being withdrawn.
    svc.engine.deploy(with_photo_step(tmp_path / "c", renamed_measures=True), "ann")
    _signed(svc, 3, datetime.now(UTC) + timedelta(days=1))
    moved = Complaint(svc, "facility")
    svc.engine.migrate("facility", 3, "ann", "early", dry_run=False)
    assert moved.ready()  # still waiting at its first step, now on version 3
    with pytest.raises(Conflict, match=r"1 complaint\(s\) were moved onto version 3"):
        svc.engine.withdraw("facility", 3, "dave", "postponed")


def test_the_same_file_as_a_rejected_version_is_submitted_again_as_a_new_draft(
    svc: Services, tmp_path: Path
) -> None:
    path = with_photo_step(tmp_path / "b")
    svc.engine.deploy(path, "ann", resubmit=True)
    svc.engine.review("facility", 2, "bob", False, "not now")
    again = svc.engine.deploy(path, "ann", resubmit=True)
    assert (again.version, again.created, again.status, again.resubmits) == (3, True, "draft", 2)
    assert not svc.engine.deploy(path, "ann", resubmit=True).created  # a draft waits already
    with svc.store.read() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert entry is not None and entry.data["resubmits"] == 2
    # Setting up again (`complaintflow init`) does not submit a refused bundle again.
    svc.engine.review("facility", 3, "bob", False, "still not")
    unchanged = svc.engine.deploy(path, "cli")
    assert (unchanged.version, unchanged.created, unchanged.status) == (3, False, "rejected")


PHOTO_TIMER = """
    <bpmn:boundaryEvent id="timer_photo_record" name="逾時未拍照" attachedToRef="photograph_site"
                        cancelActivity="false">
      <bpmn:outgoing>flow_photo_late</bpmn:outgoing>
      <bpmn:timerEventDefinition id="timer_photo_record_definition">
        <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">sla["photo_record"]</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:endEvent id="photo_late" name="逾時">
      <bpmn:incoming>flow_photo_late</bpmn:incoming>
    </bpmn:endEvent>
    <bpmn:sequenceFlow id="flow_photo_late" sourceRef="timer_photo_record" targetRef="photo_late" />
"""


def test_a_complaint_does_not_move_to_a_version_with_a_deadline_it_did_not_start_with(
    svc: Services, tmp_path: Path
) -> None:
    before = Complaint(svc, "facility")
    before.do("contact_complainant", assessment="solvable")
    # The administrator adds the new deadline to sla.json and restarts the service.
    table = json.loads((BUNDLED / "sla.json").read_text(encoding="utf-8"))
    table["facility"]["photo_record"] = {"duration": "PT2H", "clause": "A-4.6"}
    (tmp_path / "sla.json").write_text(json.dumps(table), encoding="utf-8")
    svc.engine.sla = SlaTable(tmp_path / "sla.json", {})
    after = Complaint(svc, "facility")  # carries photo_record from its start
    after.do("contact_complainant", assessment="solvable")
    path = with_photo_step(tmp_path / "b")
    path.write_text(
        path.read_text(encoding="utf-8").replace(PHOTO_STEP_END, PHOTO_STEP_END + PHOTO_TIMER),
        encoding="utf-8",
    )
    svc.engine.deploy(path, "ann")
    _signed(svc, 2)
    dry = {m.instance_id: m for m in svc.engine.migrate("facility", 2, "ann", "photos")}
    assert dry[after.id].movable
    assert not dry[before.id].movable
    assert dry[before.id].reasons == [
        "version 2 has the deadline 'photo_record', which this complaint did not start with (it"
        " carries: other_party_contact, technician_contact, urgent_inspection); its timer would"
        " stop the complaint with an error"
    ]
    moved = svc.engine.migrate("facility", 2, "ann", "photos", dry_run=False)
    assert [m.instance_id for m in moved if m.movable] == [after.id]
    finish(before, photo=False)  # on version 1 to the end
    finish(after, photo=True)


PHOTO_STEP_END = (
    '<bpmn:sequenceFlow id="flow_photographed" sourceRef="photograph_site"\n'
    '                       targetRef="merge_followup" />'
)


def test_the_api_withdraws_an_approved_version_before_it_takes_effect(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    app = make_app()
    svc = services(app)
    svc.engine.deploy(with_photo_step(tmp_path / "b"), "ann")
    _signed(svc, 2, datetime.now(UTC) + timedelta(days=1))
    api = Api(app.test_client())
    path = "/procedures/facility/versions"
    assert api.post(f"{path}/2/withdraw", "auditor", {"reason": "x"}).status_code == 403
    assert api.post(f"{path}/2/withdraw", "process_owner", {}).status_code == 400
    in_force = api.post(f"{path}/1/withdraw", "process_owner", {"reason": "x"})
    assert in_force.status_code == 409
    assert "has been in effect since" in in_force.get_json()["error"]["message"]
    withdrawn = api.post(f"{path}/2/withdraw", "process_owner", {"reason": "postponed"})
    assert withdrawn.status_code == 200 and withdrawn.get_json()["status"] == "withdrawn"
    # The same file again is a new submission, saying which version it repeats.
    xml = with_photo_step(tmp_path / "c").read_text(encoding="utf-8")
    again = api.post(path, "process_owner", {"bpmn": xml, "base_version": 1})
    assert again.status_code == 201
    assert (again.get_json()["version"], again.get_json()["resubmits"]) == (3, 2)
