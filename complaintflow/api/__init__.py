"""The JSON API under /api/v1: bearer-token authentication, errors as JSON, the routes in
`views`, and the OpenAPI document that describes them."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml
from flask import Blueprint, g, jsonify, request
from flask.typing import ResponseReturnValue

from ..accounts import Person
from ..app import services
from ..errors import (
    ComplaintflowError,
    Conflict,
    Forbidden,
    InvalidData,
    InvalidDiagram,
    NotFound,
    TooLarge,
    Unauthorized,
)
from ..web.inputs import parse_json

bp = Blueprint("api", __name__, url_prefix="/api/v1")

_STATUS = {
    NotFound: 404,
    Unauthorized: 401,
    Forbidden: 403,
    Conflict: 409,
    InvalidData: 422,
    InvalidDiagram: 422,
    TooLarge: 413,
}
_PUBLIC = {"api.token", "api.openapi"}


@cache
def openapi_document() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("openapi.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@bp.errorhandler(ComplaintflowError)
def json_error(exc: ComplaintflowError) -> ResponseReturnValue:
    """An error a caller can fix, as JSON with the HTTP status that says what kind it is."""
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if isinstance(exc, InvalidData):
        body["fields"] = exc.fields
    if isinstance(exc, InvalidDiagram):
        body["findings"] = exc.findings
    status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 400)
    response = jsonify(error=body)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="complaintflow"'
    return response, status


@bp.before_request
def _authenticate() -> None:
    if request.endpoint in _PUBLIC:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "send 'Authorization: Bearer <token>'; POST /api/v1/auth/token gives one"
        )
    g.person = services().accounts.person_for_token(token.strip())


def person() -> Person:
    return g.person


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 that says what is wrong with what came instead."""
    if not request.is_json:
        raise ComplaintflowError(
            "send a JSON object, with the header Content-Type: application/json"
        )
    try:
        body = parse_json(request.get_data())
    except ValueError as exc:  # UnicodeDecodeError among them
        raise ComplaintflowError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ComplaintflowError("the request body must be a JSON object")
    return body


from . import audit, integrations, procedures, views  # noqa: E402,F401  (routes register on bp)
