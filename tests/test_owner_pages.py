"""The process owners' pages over HTTP as a signed-in browser uses them (Flask's test client, CSRF
on): uploading, signing off, withdrawing, comparing and moving complaints, and what auditors are
shown there."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from complaintflow.app import services
from complaintflow.services import Services

from .complaints import Complaint
from .conftest import Api
from .test_modeler import Person, assets  # noqa: F401  (assets: the modeler's files, faked)
from .test_versions import with_photo_step

PHOTO_FORM = {
    "title": "拍照記錄處理後現場",
    "type": "object",
    "additionalProperties": False,
    "required": ["photographed_at"],
    "properties": {
        "photographed_at": {"type": "string", "format": "date-time", "maxLength": 64},
        "photo_notes": {"type": "string", "maxLength": 2000},
    },
}
PHOTO_FORM_PATH = "forms/facility/photo.schema.json"


def _status(app: Flask, number: int) -> str:
    with services(app).store.read() as session:
        return services(app).engine.version(session, "facility", number).status


def _draft(app: Flask, tmp_path: Path, who: str = "ann", **variant: bool) -> None:
    services(app).engine.deploy(with_photo_step(tmp_path / "b", **variant), who)


def _approved(svc: Services, number: int = 2, effective: datetime | None = None) -> None:
    svc.engine.review("facility", number, "bob", True, "ok")
    svc.engine.approve("facility", number, "carol", True, "ok", effective)


@pytest.mark.usefixtures("assets")
def test_help_texts_show_the_forms_path_with_its_angle_brackets(app: Flask) -> None:
    owner = Person(app, "process_owner")
    escaped = "forms/&lt;procedure&gt;/&lt;file name&gt;"
    upload = owner.page("/procedures/upload")[1]
    assert f"Each is stored as {escaped}, the path the diagram names it by." in upload
    edit = owner.page("/procedures/facility/v1/edit")[1]
    assert f"The JSON Schema the person doing the task fills, as {escaped}." in edit
    assert "forms//" not in upload + edit


def test_an_upload_without_a_procedure_key_stores_its_forms_under_the_diagrams_key(
    app: Flask, tmp_path: Path
) -> None:
    owner = Person(app, "process_owner")
    xml = with_photo_step(tmp_path / "b", form=PHOTO_FORM_PATH).read_bytes()
    response = owner.client.post(
        "/procedures/upload",
        data={
            "csrf_token": owner.csrf,
            "bpmn": (BytesIO(xml), "facility.bpmn"),
            "forms": [(BytesIO(json.dumps(PHOTO_FORM).encode()), "photo.schema.json")],
            "base": "facility:1",
            "procedure": "",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == "/procedures/facility/v2"
    with services(app).store.read() as session:
        forms = services(app).engine.version(session, "facility", 2).forms
    assert forms[PHOTO_FORM_PATH] == PHOTO_FORM


def test_version_statuses_are_named_and_headings_say_their_label_once(
    app: Flask, tmp_path: Path
) -> None:
    _draft(app, tmp_path)
    owner = Person(app, "process_owner")
    listing = owner.page("/procedures/")[1]
    assert ">v2 (Draft)</a>" in listing
    versions = owner.page("/procedures/facility")[1]
    assert '<th scope="col">Prepared</th>' in versions
    assert '<th scope="col">In effect from</th>' in versions
    assert '<td data-label="Status">Approved · <strong>in effect</strong></td>' in versions
    version = owner.page("/procedures/facility/v2")[1]
    assert "Version 2 · Draft</h1>" in version
    assert "<dt>Prepared</dt>" in version and "<dt>Approved</dt>" in version
    # Chinese readers read the headings from the catalog, once.
    owner.client.get("/lang/zh_Hant")
    chinese = owner.page("/procedures/facility")[1] + owner.page("/procedures/facility/v2")[1]
    for heading in ("編制", "審核", "批准", "生效日期"):
        assert f"{heading} {heading}" not in chinese and heading in chinese


def test_a_refused_sign_off_keeps_what_was_typed(app: Flask, tmp_path: Path) -> None:
    _draft(app, tmp_path, who="process_owner")
    owner = Person(app, "process_owner")
    comment = "The step reads well <and> is needed."
    refused = owner.client.post(
        "/procedures/facility/v2/review",
        data={"csrf_token": owner.csrf, "comment": comment, "decision": "accept"},
    )
    html = refused.get_data(as_text=True)
    assert refused.status_code == 403
    assert "the person who prepared a version may not review it" in html
    assert f">{comment.replace('<', '&lt;').replace('>', '&gt;')}</textarea>" in html
    assert _status(app, 2) == "draft"
    # A refused approval keeps the comment and the date.
    services(app).engine.review("facility", 2, "admin", True, "ok")
    past = owner.client.post(
        "/procedures/facility/v2/approve",
        data={
            "csrf_token": owner.csrf,
            "comment": "Photos of every repair.",
            "effective_from": "2020-01-01T08:00",
            "decision": "accept",
        },
    ).get_data(as_text=True)
    assert "the approver must be neither who prepared nor who reviewed it" in past
    assert ">Photos of every repair.</textarea>" in past and 'value="2020-01-01T08:00"' in past


@pytest.mark.usefixtures("assets")
def test_auditors_are_not_offered_what_they_may_not_do(app: Flask, tmp_path: Path) -> None:
    svc = services(app)
    Complaint(svc, "facility")
    _draft(app, tmp_path)
    _approved(svc)
    auditor = Person(app, "auditor")
    assert "/procedures/upload" not in auditor.page("/procedures/")[1]
    assert auditor.page("/procedures/upload")[0] == 403
    versions = auditor.page("/procedures/facility")[1]
    assert "/v1/edit" not in versions and "/v2/edit" not in versions
    assert "Edit into a new draft" not in auditor.page("/procedures/facility/v2")[1]
    check = auditor.page("/procedures/facility/migrate?to=2")[1]
    assert "Can move" in check and 'name="go"' not in check
    # Process owners are offered each of them.
    owner = Person(app, "process_owner")
    assert "/procedures/upload" in owner.page("/procedures/")[1]
    assert "/v2/edit" in owner.page("/procedures/facility")[1]
    assert 'name="go"' in owner.page("/procedures/facility/migrate?to=2")[1]


def test_the_migrate_page_links_each_complaint(app: Flask, tmp_path: Path) -> None:
    svc = services(app)
    complaint = Complaint(svc, "facility")
    _draft(app, tmp_path)
    _approved(svc)
    html = Person(app, "admin").page("/procedures/facility/migrate?to=2")[1]
    assert re.search(rf'<a href="/complaints/{complaint.id}">A-\d{{4}}-\d{{6}}</a>', html), html


def test_a_moved_complaint_says_so_in_its_history(app: Flask, tmp_path: Path) -> None:
    svc = services(app)
    complaint = Complaint(svc, "facility")
    _draft(app, tmp_path)
    _approved(svc)
    svc.engine.migrate("facility", 2, "process_owner", "photos of every repair", dry_run=False)
    page = Person(app, "technician").page(f"/complaints/{complaint.id}")[1]
    assert "Moved from version 1 to version 2 of the procedure: photos of every repair" in page


def test_unnamed_flows_in_the_changes_show_their_id_once(app: Flask, tmp_path: Path) -> None:
    _draft(app, tmp_path)
    html = Person(app, "process_owner").page("/procedures/facility/diff?from=1&to=2")[1]
    row = re.search(r'<th scope="row">(.*?flow_photographed.*?)</th>', html)
    assert row and row[1].count("flow_photographed") == 1, row
    named = re.search(r'<th scope="row">(拍照記錄處理後現場.*?)</th>', html)
    assert named and "photograph_site" in named[1]


def _scheduled(app: Flask, tmp_path: Path) -> Services:
    """Version 2 approved to take effect tomorrow."""
    svc = services(app)
    _draft(app, tmp_path)
    _approved(svc, effective=datetime.now(UTC) + timedelta(days=1))
    return svc


def _withdraw(owner: Person, number: int, reason: str) -> Any:
    return owner.client.post(
        f"/procedures/facility/v{number}/withdraw",
        data={"csrf_token": owner.csrf, "reason": reason},
        follow_redirects=True,
    )


def test_an_approved_version_is_withdrawn_on_its_page_until_it_takes_effect(
    app: Flask, tmp_path: Path
) -> None:
    _scheduled(app, tmp_path)
    assert "Withdraw this version" not in Person(app, "auditor").page("/procedures/facility/v2")[1]
    assert "Withdraw this version" not in Person(app, "admin").page("/procedures/facility/v1")[1]
    owner = Person(app, "process_owner")
    assert "Withdraw this version" in owner.page("/procedures/facility/v2")[1]
    assert _withdraw(owner, 2, " ").status_code == 422 and _status(app, 2) == "approved"
    html = _withdraw(owner, 2, "New cameras come in March.").get_data(as_text=True)
    assert "Version 2 is withdrawn: it will not take effect." in html
    assert "Version 2 · Withdrawn</h1>" in html and "New cameras come in March." in html
    assert _status(app, 2) == "withdrawn"
    refused = _withdraw(owner, 1, "old")
    assert refused.status_code == 409
    assert "version 1 has been in effect since" in refused.get_data(as_text=True)


def test_a_version_superseded_before_its_date_says_it_will_not_take_effect(
    app: Flask, tmp_path: Path
) -> None:
    svc = _scheduled(app, tmp_path)
    svc.engine.deploy(with_photo_step(tmp_path / "c", renamed_measures=True), "ann")
    _approved(svc, 3)
    html = Person(app, "process_owner").page("/procedures/facility")[1]
    assert "superseded by version 3: it will not take effect" in html


NEW_PROCEDURE = Path(__file__).parent / "diagrams" / "corpus" / "parallel-valid.bpmn"


@pytest.mark.usefixtures("assets")
def test_a_new_procedure_waits_for_its_sign_offs_while_the_others_go_on(
    app: Flask, api: Api
) -> None:
    """A procedure uploaded for the first time is a draft like any other: its owners see it
    waiting, and every page that lists the procedures in effect goes on without it."""
    svc = services(app)
    svc.engine.deploy(NEW_PROCEDURE, "ann")
    owner = Person(app, "process_owner")
    status, html = owner.page("/procedures/")
    assert status == 200
    row = html[html.index("corpus_parallel") :].split("</tr>")[0]
    assert "v1 (" in row and "version 1" not in row  # waiting, nothing in effect
    assert owner.page("/procedures/corpus_parallel")[0] == 200
    assert owner.page("/procedures/corpus_parallel/v1")[0] == 200
    assert 'value="corpus_parallel:1"' in owner.page("/procedures/upload")[1]  # a base to edit
    admin = Person(app, "admin")
    for page in ("/", "/complain/facility", "/inbox", "/start", "/complaints", "/admin/qr"):
        status, html = admin.page(page)
        assert (status, "corpus_parallel" in html) == (200, False), page
    listed = api.get("/procedures", "admin")
    assert [p["key"] for p in listed.get_json()["procedures"]] == ["facility", "bar", "hotel"]

    svc.engine.review("corpus_parallel", 1, "bob", True, "ok")
    svc.engine.approve("corpus_parallel", 1, "carol", True, "ok")
    listed = api.get("/procedures", "admin").get_json()["procedures"]
    assert [p["key"] for p in listed] == ["facility", "bar", "hotel", "corpus_parallel"]
    assert "/complain/corpus_parallel" in admin.page("/")[1]
