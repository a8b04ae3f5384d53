"""The modeler's server side over HTTP (Flask's test client, CSRF on): the edit page, the drafts
it saves (checked like an upload, with the forms of the version edited), who may save them, and
bpmn-js's files served from node_modules and nothing beside them.

The modeler's files are faked in a temporary folder, so these tests do not need npm."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html import unescape
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer

from complaintflow.app import services
from complaintflow.bootstrap import demo_password
from complaintflow.owner import modeler

RENAMED = "立即與用戶聯系並到現場確認（修訂）"
CONTACT = 'name="立即與用戶聯系並到現場確認"'
CONTACT_FORM = 'value="forms/facility/contact.schema.json"'
SCRIPT_BODY = b"/* fake bpmn-js */ window.BpmnJS = function () {};"
SECRET = b"not for the browser"


@pytest.fixture
def assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for node_modules/bpmn-js/dist, with a file beside it that must not be served."""
    dist = tmp_path / "node_modules" / "bpmn-js" / "dist"
    for name in (modeler.SCRIPT, *modeler.STYLES):
        (dist / name).parent.mkdir(parents=True, exist_ok=True)
        (dist / name).write_bytes(SCRIPT_BODY if name == modeler.SCRIPT else b"svg {}")
    (tmp_path / "node_modules" / "bpmn-js" / "package.json").write_bytes(SECRET)
    (tmp_path / "secret.txt").write_bytes(SECRET)
    monkeypatch.setattr(modeler, "ASSETS", dist)
    return dist


class Person:
    """A signed-in browser: its cookies and the CSRF token its pages carry."""

    def __init__(self, app: Flask, user: str) -> None:
        self.client: FlaskClient = app.test_client()
        self.client.get("/signin")
        signed = self.client.post(
            "/signin",
            data={
                "csrf_token": self._token(self.client.get("/signin").get_data(as_text=True)),
                "username": user,
                "password": demo_password(user),
            },
        )
        assert signed.status_code == 302, signed.get_data(as_text=True)
        self.csrf = self._token(self.client.get("/inbox").get_data(as_text=True))

    @staticmethod
    def _token(html: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert found, "no CSRF token on the page"
        return found[1]

    def page(self, path: str) -> tuple[int, str]:
        response = self.client.get(path, headers={"Accept": "text/html"})
        return response.status_code, response.get_data(as_text=True)

    def save(
        self, xml: str, number: int = 1, token: str | None = None, as_form: bool = False
    ) -> tuple[int, dict]:
        """POST the diagram as the page does; `token` None sends the page's CSRF token, ""
        none at all, anything else that."""
        headers = {"Accept": "application/json"}
        if token != "":
            headers["X-CSRFToken"] = self.csrf if token is None else token
        path = f"/procedures/facility/v{number}/drafts"
        if as_form:
            response = self.client.post(path, data={"bpmn": xml}, headers=headers)
        else:
            response = self.client.post(path, json={"bpmn": xml}, headers=headers)
        body = response.get_json(silent=True) or {}
        return response.status_code, body


def bpmn(app: Flask, number: int = 1) -> str:
    with services(app).store.read() as session:
        return services(app).engine.version(session, "facility", number).bpmn_xml


def versions(app: Flask) -> list[tuple[int, str, str]]:
    with services(app).store.read() as session:
        return [
            (v.version, v.status, v.deployed_by)
            for v, _running, _total in services(app).engine.versions(session, "facility")
        ]


def test_an_edited_diagram_becomes_the_next_draft_with_the_forms_kept(app: Flask) -> None:
    owner = Person(app, "process_owner")
    original = bpmn(app)
    assert CONTACT in original

    status, body = owner.save(original.replace(CONTACT, f'name="{RENAMED}"'))

    assert status == 201, body
    assert body == {
        "version": 2,
        "url": "/procedures/facility/v2",
        "created": True,
        "status": "draft",
    }
    assert versions(app)[0] == (2, "draft", "process_owner")
    with services(app).store.read() as session:
        engine = services(app).engine
        v1, v2 = engine.version(session, "facility", 1), engine.version(session, "facility", 2)
        assert RENAMED in v2.bpmn_xml
        assert v2.forms == v1.forms  # the forms of the version edited are kept
        assert v1.bpmn_xml == original  # the version edited stays as it was
    # The draft's page is where review and approval happen.
    status_code, html = owner.page(body["url"])
    assert status_code == 200 and "Review (審核)" in html

    # A form field works as well as JSON; the base is any version, here the new draft.
    status, body = owner.save(original, number=2, as_form=True)
    assert (status, body["version"], body["created"]) == (201, 3, True)


def test_saving_what_the_newest_version_already_is_stores_nothing(app: Flask) -> None:
    status, body = Person(app, "process_owner").save(bpmn(app))
    assert (status, body["version"], body["created"]) == (200, 1, False)
    assert [v for v, _s, _d in versions(app)] == [1]


@pytest.mark.parametrize(
    ("change", "finding"),
    [
        (
            lambda xml: xml.replace(CONTACT_FORM, 'value="forms/facility/missing.schema.json"'),
            "form 'forms/facility/missing.schema.json' was not uploaded",
        ),
        (
            lambda xml: xml.replace("value=\"'complaint.new'\"", 'value="\'complaint.new"'),
            "notify_technician",
        ),
        (lambda xml: xml[: len(xml) // 2], "XML"),
        (lambda xml: "", "nothing to save"),
        (lambda xml: xml.replace('id="facility"', 'id="facility_copy"'), "facility_copy"),
    ],
    ids=["missing-form", "broken-expression", "cut-short", "empty", "other-process"],
)
def test_a_broken_diagram_gets_its_findings_and_stores_nothing(
    app: Flask, change: Callable[[str], str], finding: str
) -> None:
    status, body = Person(app, "process_owner").save(change(bpmn(app)))
    assert status == 422, body
    assert body["findings"] and all(isinstance(f, str) for f in body["findings"])
    assert finding in " ".join(body["findings"]), body["findings"]
    assert [v for v, _s, _d in versions(app)] == [1]


def test_a_draft_stays_in_its_procedure(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Renaming the process would make the edit another procedure: refused, even when the rest
    of the diagram would pass (here the deadlines are given for the other key too)."""
    deadlines = services(app).engine.sla._table
    monkeypatch.setitem(deadlines, "facility_copy", deadlines["facility"])
    copy = bpmn(app).replace('id="facility"', 'id="facility_copy"')
    copy = copy.replace('processRef="facility"', 'processRef="facility_copy"')
    status, body = Person(app, "process_owner").save(copy)
    assert status == 422, body
    assert body["findings"] == [
        "The process id is facility_copy: keep it facility, the procedure's key."
    ]
    assert [v for v, _s, _d in versions(app)] == [1]
    with services(app).store.read() as session:
        assert services(app).engine.versions(session, "facility_copy") == []


@pytest.mark.parametrize("user", ["clerk", "auditor"])
def test_only_process_owners_save_drafts(app: Flask, user: str) -> None:
    status, _body = Person(app, user).save(bpmn(app).replace(CONTACT, f'name="{RENAMED}"'))
    assert status == 403
    anonymous = app.test_client().post(
        "/procedures/facility/v1/drafts", json={"bpmn": bpmn(app)}, headers={"Accept": "text/html"}
    )
    assert anonymous.status_code in (302, 400, 401)
    assert [v for v, _s, _d in versions(app)] == [1]


def test_a_draft_needs_the_csrf_token(app: Flask) -> None:
    owner = Person(app, "process_owner")
    edited = bpmn(app).replace(CONTACT, f'name="{RENAMED}"')
    assert owner.save(edited, token="")[0] == 400
    assert owner.save(edited, token="forged")[0] == 400
    assert owner.save(edited, as_form=True, token="")[0] == 400
    assert [v for v, _s, _d in versions(app)] == [1]
    assert owner.save(edited)[0] == 201  # the page's own token


def test_a_draft_of_a_version_that_is_not_there_is_404(app: Flask) -> None:
    assert Person(app, "process_owner").save(bpmn(app), number=9)[0] == 404


def test_the_edit_page_gives_the_modeler_the_version_forms_and_handlers(
    app: Flask, assets: Path
) -> None:
    owner = Person(app, "process_owner")
    status, html = owner.page("/procedures/facility/v1/edit")
    assert status == 200
    found = re.search(r'<script type="application/json" id="modeler-data">(.*?)</script>', html)
    assert found
    data = json.loads(found[1])
    assert data["xml"] == bpmn(app)
    assert "forms/facility/contact.schema.json" in data["forms"]
    notify = next(h for h in data["handlers"] if h["name"] == "notify.role")
    assert [(p["name"], p["required"]) for p in notify["params"]] == [
        ("role", True),
        ("event", True),
    ]
    assert data["save"] == "/procedures/facility/v1/drafts"
    # The session's CSRF token, signed anew with each second's timestamp: compare what is signed.
    carried = re.search(r'data-csrf="([^"]+)"', html)
    assert carried
    signed = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token")
    assert signed.loads(carried[1]) == signed.loads(owner.csrf)
    assert "/procedures/modeler-assets/bpmn-modeler.production.min.js" in html
    attribute = re.search(r"data-strings='([^']*)'", html)
    assert attribute
    strings = json.loads(unescape(attribute[1]))
    assert strings["types"]["bpmn:UserTask"] == "User task"
    # The versions page offers it now that it is installed.
    assert "/procedures/facility/v1/edit" in owner.page("/procedures/facility")[1]


def test_the_edit_page_is_for_process_owners(app: Flask, assets: Path) -> None:
    assert Person(app, "auditor").page("/procedures/facility/v1/edit")[0] == 403
    assert Person(app, "clerk").page("/procedures/facility/v1/edit")[0] == 403
    assert Person(app, "process_owner").page("/procedures/facility/v9/edit")[0] == 404


def test_without_the_modeler_the_page_points_to_the_upload(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(modeler, "ASSETS", tmp_path / "not-installed")
    owner = Person(app, "process_owner")
    status, html = owner.page("/procedures/facility/v1/edit")
    assert status == 404
    assert "The modeler is not installed" in html and 'href="/procedures/upload"' in html
    versions_page = owner.page("/procedures/facility")[1]
    assert "/v1/edit" not in versions_page and "/procedures/facility/v1.bpmn" in versions_page
    assert owner.page("/procedures/modeler-assets/" + modeler.SCRIPT)[0] == 404


def test_the_assets_are_bpmn_js_files_and_nothing_beside_them(app: Flask, assets: Path) -> None:
    owner = Person(app, "process_owner")
    served = owner.client.get("/procedures/modeler-assets/" + modeler.SCRIPT)
    assert served.status_code == 200 and served.data == SCRIPT_BODY
    assert "javascript" in served.content_type
    css = owner.client.get("/procedures/modeler-assets/assets/bpmn-font/css/bpmn.css")
    assert css.status_code == 200 and css.content_type.startswith("text/css")
    for path in [
        "../package.json",
        "..%2fpackage.json",
        "%2e%2e/package.json",
        "assets/../../package.json",
        "assets/../../../../secret.txt",
        "..%5c..%5csecret.txt",
        "/etc/passwd",
        "%2fetc%2fpasswd",
        str(assets.parent.parent.parent / "secret.txt"),
        "assets",
        "missing.js",
    ]:
        # (A doubled slash is first redirected to the single-slash address, which is a 404.)
        response = owner.client.get("/procedures/modeler-assets/" + path, follow_redirects=True)
        assert response.status_code == 404, path
        assert SECRET not in response.data
    # Signed-out visitors get nothing either.
    assert app.test_client().get("/procedures/modeler-assets/" + modeler.SCRIPT).status_code == 302
