"""`POST /webhooks/intake/<procedure>`: complaints from other systems (a property app, a hotel
PMS, a kiosk).

The caller names itself in X-Complaintflow-Source and signs "<timestamp>.<body>" with its secret
(see `signing`); the body is the procedure's intake form as JSON. An Idempotency-Key makes a
retried call return the complaint the first one filed instead of filing a second. Every refusal
is a JSON error with the status that says why: 413 too large, 401 not signed right, 404 no such
procedure, 400 not a JSON object, 409 key reused with another body, 422 fields not valid.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from complaintflow.api import json_error
from complaintflow.app import services
from complaintflow.engine import Delivery
from complaintflow.errors import ComplaintflowError, TooLarge, Unauthorized
from complaintflow.models import Instance
from complaintflow.web.inputs import parse_json
from complaintflow.web.links import status_url

from . import signing

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
bp.register_error_handler(ComplaintflowError, json_error)

_LANGUAGES = {"en": "en", "zh-hans": "zh_Hans", "zh-cn": "zh_Hans", "zh-hant": "zh_Hant"}


def _body(limit: int) -> bytes:
    """The body, refused past the limit without reading more than the limit."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"the body is larger than {limit} bytes")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise TooLarge(f"the body is larger than {limit} bytes")
    return body


def _authenticated(body: bytes) -> str:
    source = request.headers.get(signing.SOURCE, "").strip()
    timestamp = request.headers.get(signing.TIMESTAMP, "").strip()
    given = request.headers.get(signing.SIGNATURE, "").strip()
    if not source or not timestamp or not given:
        raise Unauthorized(
            f"send {signing.SOURCE}, {signing.TIMESTAMP} and {signing.SIGNATURE}"
            ' ("sha256=" and the hex HMAC-SHA256 of "<timestamp>.<body>")'
        )
    known = services().integrations.secrets_of(source)
    if not known:
        raise Unauthorized(f"'{source}' is not a known source")
    if not signing.fresh(timestamp):
        raise Unauthorized("the timestamp is more than five minutes from now; sign the call again")
    if not signing.valid(known, timestamp, body, given):
        raise Unauthorized("the signature does not match the body")
    return source


def _language() -> str:
    tag = request.headers.get("Content-Language", "").split(",")[0].strip().lower()
    return _LANGUAGES.get(tag, _LANGUAGES.get(tag.split("-")[0], "zh_Hant"))


@bp.post("/intake/<procedure>")
def intake(procedure: str) -> ResponseReturnValue:
    body = _body(services().settings.webhook_max_bytes)
    source = _authenticated(body)
    engine = services().engine
    with engine.store.read() as session:
        engine.current_version(session, procedure)  # 404 for a procedure that is not there
    try:
        data: Any = parse_json(body)
    except ValueError as exc:  # UnicodeDecodeError among them
        raise ComplaintflowError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ComplaintflowError("the body must be a JSON object of the intake form's fields")
    actor = f"webhook:{source}"
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        instance_id, new = engine.start(procedure, data, actor, language=_language()), True
    else:
        delivery = Delivery.of(source, key, body)
        instance_id, new = engine.start_once(procedure, data, actor, delivery, _language())
    with engine.store.read() as session:
        instance = session.get_one(Instance, instance_id)
        answer = {
            "id": instance_id,
            "number": instance.record.number if instance.record else None,
            "status": instance.status,
            "status_url": status_url(instance_id),
        }
    response = jsonify(answer)
    response.status_code = 201
    response.headers["Location"] = answer["status_url"]
    if not new:
        response.headers["Idempotent-Replayed"] = "true"
    return response
