"""`POST /webhooks/intake/<procedure>`: complaints from other systems, signed with a per-source
secret, retried safely with an Idempotency-Key, refused with the status that says why."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from complaintflow.app import services
from complaintflow.models import AuditEntry, ComplaintRecord, Instance
from webhooks import signing

from .factories import fill

SECRET = "pms-secret-1"


@pytest.fixture
def hook_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(webhook_secrets={"hotel-pms": [SECRET]}, webhook_max_bytes=4096)


@pytest.fixture
def client(hook_app: Flask) -> FlaskClient:
    return hook_app.test_client()


def _intake(app: Flask, key: str = "hotel", **fields: Any) -> dict[str, Any]:
    svc = services(app)
    with svc.store.read() as session:
        diagram = svc.engine.diagram(svc.engine.current_version(session, key))
    return fill(diagram.intake_form, **fields)


def post(
    client: FlaskClient,
    body: bytes | dict[str, Any],
    procedure: str = "hotel",
    source: str = "hotel-pms",
    secret: str = SECRET,
    key: str | None = None,
    at: float | None = None,
    **headers: str,
) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    sent = {
        "Content-Type": "application/json",
        signing.SOURCE: source,
        **signing.headers(secret, raw, at),
        **headers,
    }
    if key is not None:
        sent["Idempotency-Key"] = key
    return client.post(f"/webhooks/intake/{procedure}", data=raw, headers=sent)


def _count(app: Flask) -> int:
    with services(app).store.read() as session:
        return int(session.scalar(select(func.count()).select_from(Instance)) or 0)


def test_a_signed_complaint_is_filed_and_answered_with_its_number_and_status_link(
    hook_app: Flask, client: FlaskClient
) -> None:
    answer = post(client, _intake(hook_app, guest_name="陳先生"), key="pms-1001")
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["number"].startswith("C-") and body["status"] == "running"
    assert answer.headers["Location"] == body["status_url"]
    page = client.get(body["status_url"].removeprefix("http://localhost"))
    assert page.status_code == 200 and body["number"] in page.get_data(as_text=True)
    with services(hook_app).store.read() as session:
        instance = session.get_one(Instance, body["id"])
        assert instance.started_by == "webhook:hotel-pms"
        record = session.scalar(
            select(ComplaintRecord).where(ComplaintRecord.instance_id == body["id"])
        )
        assert record is not None and record.complainant == "陳先生"


def test_a_retried_delivery_returns_the_same_complaint(
    hook_app: Flask, client: FlaskClient
) -> None:
    intake = _intake(hook_app)
    first = post(client, intake, key="pms-1002")
    again = post(client, intake, key="pms-1002")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(hook_app) == 1
    other = post(client, {**intake, "description": "另一件事"}, key="pms-1002")
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "conflict"
    assert post(client, intake, key="pms-1003").get_json()["id"] != first.get_json()["id"]
    assert _count(hook_app) == 2


def test_keys_belong_to_their_source(make_app: Callable[..., Flask]) -> None:
    app = make_app(webhook_secrets={"pms": ["a-secret"], "kiosk": ["k-secret"]})
    client, intake = app.test_client(), _intake(app)
    one = post(client, intake, source="pms", secret="a-secret", key="k1")
    two = post(client, intake, source="kiosk", secret="k-secret", key="k1")
    assert one.get_json()["id"] != two.get_json()["id"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"secret": "wrong"}, "the signature does not match the body"),
        ({signing.SIGNATURE: "sha256=é"}, "the signature does not match the body"),
        ({"source": "stranger"}, "'stranger' is not a known source"),
        ({"at": -310}, "more than five minutes"),
        ({"at": +310}, "more than five minutes"),
    ],
)
def test_bad_signatures_unknown_sources_and_stale_timestamps_are_401(
    hook_app: Flask, client: FlaskClient, change: dict[str, Any], message: str
) -> None:
    if "at" in change:  # seconds from now, when the call is made
        change = {"at": time.time() + change["at"]}
    answer = post(client, _intake(hook_app), **change)
    assert answer.status_code == 401
    assert message in answer.get_json()["error"]["message"]
    assert _count(hook_app) == 0


def test_an_unsigned_call_is_told_what_to_send(hook_app: Flask, client: FlaskClient) -> None:
    answer = client.post("/webhooks/intake/hotel", json=_intake(hook_app))
    assert answer.status_code == 401
    assert "X-Complaintflow-Signature" in answer.get_json()["error"]["message"]


def test_a_body_changed_after_signing_is_refused(hook_app: Flask, client: FlaskClient) -> None:
    raw = json.dumps(_intake(hook_app)).encode()
    headers = {signing.SOURCE: "hotel-pms", **signing.headers(SECRET, raw)}
    tampered = raw.replace(b'"', b'"', 1) + b" "
    answer = client.post("/webhooks/intake/hotel", data=tampered, headers=headers)
    assert answer.status_code == 401


def test_an_oversized_body_is_413_before_anything_else(
    hook_app: Flask, client: FlaskClient
) -> None:
    big = {**_intake(hook_app), "description": "x" * 5000}
    answer = post(client, big, secret="not even checked")
    assert answer.status_code == 413 and answer.get_json()["error"]["code"] == "too_large"
    assert _count(hook_app) == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"[" * 2000 + b"]" * 2000, "nested too deeply"),  # within the 4096 bytes it may send
    ],
)
def test_malformed_bodies_are_400(client: FlaskClient, body: bytes, message: str) -> None:
    answer = post(client, body)
    assert answer.status_code == 400 and message in answer.get_json()["error"]["message"]


def test_an_unknown_procedure_is_404(hook_app: Flask, client: FlaskClient) -> None:
    answer = post(client, _intake(hook_app), procedure="spaceship")
    assert answer.status_code == 404


def test_invalid_fields_are_422_with_field_messages_and_nothing_half_written(
    hook_app: Flask, client: FlaskClient
) -> None:
    intake = _intake(hook_app)
    del intake["guest_name"]
    answer = post(client, {**intake, "unexpected": 1}, key="pms-bad")
    assert answer.status_code == 422
    fields = answer.get_json()["error"]["fields"]
    assert set(fields) == {"guest_name", "unexpected"}
    assert _count(hook_app) == 0
    fixed = post(client, _intake(hook_app), key="pms-bad")  # the key was not used up
    assert fixed.status_code == 201


def test_a_bad_idempotency_key_is_400(hook_app: Flask, client: FlaskClient) -> None:
    answer = post(client, _intake(hook_app), key="has space")
    assert answer.status_code == 400 and "Idempotency-Key" in answer.get_json()["error"]["message"]


def test_secrets_kept_here_rotate_with_two_valid_at_once(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    client, integrations = app.test_client(), services(app).integrations
    first = integrations.add_source("kiosk", "admin")
    assert post(client, _intake(app), source="kiosk", secret=first).status_code == 201
    assert post(client, _intake(app), source="Kiosk", secret=first).status_code == 201
    second = integrations.rotate_source("kiosk", "admin")
    assert post(client, _intake(app), source="kiosk", secret=first).status_code == 201
    assert post(client, _intake(app), source="kiosk", secret=second).status_code == 201
    third = integrations.rotate_source("kiosk", "admin")
    assert post(client, _intake(app), source="kiosk", secret=first).status_code == 401
    assert post(client, _intake(app), source="kiosk", secret=second).status_code == 201
    assert post(client, _intake(app), source="kiosk", secret=third).status_code == 201
    with services(app).store.read() as session:
        acts = session.scalars(
            select(AuditEntry.action).where(AuditEntry.subject == "source kiosk")
        )
        assert list(acts) == [
            "webhook_source.added",
            "webhook_source.rotated",
            "webhook_source.rotated",
        ]


def test_the_complainants_language_is_taken_from_content_language(
    hook_app: Flask, client: FlaskClient
) -> None:
    answer = post(client, _intake(hook_app), **{"Content-Language": "zh-Hans"})
    with services(hook_app).store.read() as session:
        assert session.get_one(Instance, answer.get_json()["id"]).language == "zh_Hans"


def test_the_procedures_list_shows_each_intake_schema(api: Any) -> None:
    procedures = api.get("/procedures", "admin").get_json()["procedures"]
    hotel = next(p for p in procedures if p["key"] == "hotel")
    assert hotel["intake_schema"]["type"] == "object"
    assert "guest_name" in hotel["intake_schema"]["properties"]
