"""The API for process owners: versions, their document control, diffs and migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response, jsonify, request
from flask.typing import ResponseReturnValue

from ..app import services
from ..diagram_diff import compare
from ..errors import ComplaintflowError, Forbidden, NotFound
from ..web.inputs import is_row_number, whole_number
from . import bp, json_body, person


def _owner() -> None:
    if not person().is_process_owner:
        raise Forbidden("only process owners and admins change procedures")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def _version_json(version: Any, running: int | None = None, total: int | None = None) -> dict:
    body = {
        "version": version.version,
        "status": version.status,
        "sha256": version.sha256,
        "prepared_by": version.deployed_by,
        "prepared_at": _iso(version.deployed_at),
        "reviewed_by": version.reviewed_by,
        "reviewed_at": _iso(version.reviewed_at),
        "review_comment": version.review_comment,
        "approved_by": version.approved_by,
        "approved_at": _iso(version.approved_at),
        "approval_comment": version.approval_comment,
        "effective_from": _iso(version.effective_from),
    }
    if running is not None:
        body.update(running_instances=running, instances=total)
    return body


@bp.get("/procedures/<key>/versions")
def list_versions(key: str) -> ResponseReturnValue:
    if not (person().is_process_owner or person().is_auditor):
        raise Forbidden("only process owners, auditors and admins read the versions")
    with services().store.read() as session:
        rows = services().engine.versions(session, key)
        if not rows:
            raise NotFound(f"there is no procedure '{key}'")
        return jsonify(versions=[_version_json(v, r, t) for v, r, t in rows])


@bp.post("/procedures/<key>/versions")
def upload_version(key: str) -> ResponseReturnValue:
    """A new draft from diagram XML and the forms it names (those not sent are kept from
    `base_version`); with dry_run, only checked."""
    _owner()
    body = json_body()
    xml, forms, base = body.get("bpmn"), body.get("forms", {}), body.get("base_version")
    if not isinstance(xml, str) or not isinstance(forms, dict):
        raise ComplaintflowError('send {"bpmn": "<xml>", "forms": {"<path>": <schema>}}')
    if base is not None and not is_row_number(base):
        raise ComplaintflowError("base_version is a version number")
    engine = services().engine
    checked = engine.check_upload(
        xml.encode(), forms, f"upload to {key}", (key, base) if base else None
    )
    if checked.diagram.key != key:
        raise ComplaintflowError(f"the diagram is procedure '{checked.diagram.key}', not '{key}'")
    if body.get("dry_run"):
        return jsonify(valid=True, key=key)
    deployed = engine.store_draft(checked, person().username, f"upload to {key}", resubmit=True)
    return jsonify(
        key=key,
        version=deployed.version,
        status=deployed.status,
        created=deployed.created,
        resubmits=deployed.resubmits,
    ), 201 if deployed.created else 200


def _sign_off(key: str, number: int, stage: str) -> ResponseReturnValue:
    _owner()
    body = json_body()
    accept, comment = body.get("accept", True), body.get("comment")
    if not isinstance(accept, bool) or not isinstance(comment, str) or not comment.strip():
        raise ComplaintflowError('send {"accept": true|false, "comment": "…"}')
    engine = services().engine
    if stage == "review":
        engine.review(key, number, person().username, accept, comment.strip())
    else:
        raw = body.get("effective_from")
        try:
            when = datetime.fromisoformat(raw) if raw else None
        except (TypeError, ValueError):
            raise ComplaintflowError("effective_from is a date and time with its zone") from None
        if when is not None and when.tzinfo is None:
            raise ComplaintflowError("effective_from needs its time zone, e.g. +08:00")
        engine.approve(key, number, person().username, accept, comment.strip(), when)
    with services().store.read() as session:
        return jsonify(_version_json(engine.version(session, key, number)))


@bp.post("/procedures/<key>/versions/<int:number>/review")
def review_version(key: str, number: int) -> ResponseReturnValue:
    return _sign_off(key, number, "review")


@bp.post("/procedures/<key>/versions/<int:number>/approve")
def approve_version(key: str, number: int) -> ResponseReturnValue:
    return _sign_off(key, number, "approve")


@bp.post("/procedures/<key>/versions/<int:number>/withdraw")
def withdraw_version(key: str, number: int) -> ResponseReturnValue:
    """Withdraw an approved version before its effective date, with a reason."""
    _owner()
    reason = json_body().get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ComplaintflowError('send {"reason": "…"}; it goes into the audit log')
    engine = services().engine
    engine.withdraw(key, number, person().username, reason.strip())
    with services().store.read() as session:
        return jsonify(_version_json(engine.version(session, key, number)))


@bp.get("/procedures/<key>/diff")
def diff_versions(key: str) -> ResponseReturnValue:
    """?from=<n>&to=<m>: the elements added, removed and changed."""
    if not (person().is_process_owner or person().is_auditor):
        raise Forbidden("only process owners, auditors and admins compare versions")
    if "from" not in request.args or "to" not in request.args:
        raise ComplaintflowError("give ?from=<version>&to=<version>")
    first = whole_number(request.args["from"], "from")
    second = whole_number(request.args["to"], "to")
    with services().store.read() as session:
        a = services().engine.version(session, key, first)
        b = services().engine.version(session, key, second)
        changes = compare(a.bpmn_xml, a.forms, b.bpmn_xml, b.forms)
    return jsonify(changes=[vars(c) for c in changes])


@bp.post("/procedures/<key>/migrations")
def migrate_instances(key: str) -> ResponseReturnValue:
    """Move running complaints to version `to` (all on older versions, or `instances`);
    `dry_run` (the default) only says which can move and why others cannot."""
    _owner()
    body = json_body()
    to, ids, reason = body.get("to"), body.get("instances"), body.get("reason")
    dry_run = body.get("dry_run", True)
    if not is_row_number(to) or not isinstance(dry_run, bool):
        raise ComplaintflowError('send {"to": <version>, "reason": "…", "dry_run": true}')
    if ids is not None and not (isinstance(ids, list) and all(map(is_row_number, ids))):
        raise ComplaintflowError("instances is a list of instance ids")
    if not isinstance(reason, str) or not reason.strip():
        raise ComplaintflowError("give a reason; it goes into each complaint's history")
    moves = services().engine.migrate(key, to, person().username, reason.strip(), ids, dry_run)
    return jsonify(dry_run=dry_run, moves=[vars(m) for m in moves])


@bp.get("/procedures/<key>/versions/<int:number>/bpmn")
def version_bpmn(key: str, number: int) -> ResponseReturnValue:
    if not (person().is_process_owner or person().is_auditor):
        raise Forbidden("only process owners, auditors and admins read the versions")
    with services().store.read() as session:
        xml = services().engine.version(session, key, number).bpmn_xml
    return Response(
        xml,
        mimetype="application/xml",
        headers={"Content-Disposition": f'attachment; filename="{key}-v{number}.bpmn"'},
    )
