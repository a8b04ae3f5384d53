"""The routes of the JSON API. Each checks who may act, then calls the engine."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from ..app import services
from ..engine import Delivery, queries
from ..errors import ComplaintflowError, Forbidden
from . import bp, json_body, openapi_document, person


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(openapi_document())


@bp.post("/auth/token")
def token() -> ResponseReturnValue:
    body = json_body()
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ComplaintflowError('send {"username": "…", "password": "…"}')
    accounts = services().accounts
    who = accounts.authenticate(username, password)
    return jsonify(token=accounts.issue_token(who), username=who.username, roles=sorted(who.roles))


@bp.get("/procedures")
def list_procedures() -> ResponseReturnValue:
    with services().store.read() as session:
        return jsonify(procedures=queries.procedures(services().engine, session))


def _data(body: dict[str, Any]) -> Any:
    return body.get("data", {})


@bp.post("/procedures/<key>/instances")
def start_instance(key: str) -> ResponseReturnValue:
    body = json_body()
    engine = services().engine
    with engine.store.read() as session:
        engine.current_version(session, key)  # 404 before 403 for a procedure that is not there
        if not person().may_use(queries.procedure_roles(session, key)):
            raise Forbidden(f"none of your roles works in procedure '{key}'")
    idempotency_key = request.headers.get("Idempotency-Key", "").strip()
    if not idempotency_key:
        return _instance_response(engine.start(key, _data(body), person().username)), 201
    # A client that lost the answer (a dropped connection) sends again and gets the same complaint.
    delivery = Delivery.of(f"api:{person().username}", idempotency_key, request.get_data())
    instance_id, new = engine.start_once(key, _data(body), person().username, delivery)
    return _instance_response(instance_id), 201, ({} if new else {"Idempotent-Replayed": "true"})


def _instance_response(instance_id: int) -> dict[str, Any]:
    with services().store.read() as session:
        return queries.outcome(session, queries.get_instance(session, instance_id))


def _visible_instance(session: Any, instance_id: int) -> Any:
    instance = queries.get_instance(session, instance_id)
    key = instance.version.procedure_key
    if not person().may_view(queries.procedure_roles(session, key)):
        raise Forbidden("none of your roles works in this complaint's procedure")
    return instance


@bp.get("/instances/<int:instance_id>")
def get_instance(instance_id: int) -> ResponseReturnValue:
    with services().store.read() as session:
        instance = _visible_instance(session, instance_id)
        return jsonify(queries.instance_detail(services().engine, session, instance))


@bp.get("/instances/<int:instance_id>/history")
def get_history(instance_id: int) -> ResponseReturnValue:
    with services().store.read() as session:
        _visible_instance(session, instance_id)
        return jsonify(events=queries.history(session, instance_id))


def _admin_reason() -> str:
    if not person().is_admin:
        raise Forbidden("only an admin may do this to a complaint")
    reason = json_body().get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ComplaintflowError('give a reason: {"reason": "…"}; it goes into the history')
    return reason.strip()


@bp.post("/instances/<int:instance_id>/cancel")
def cancel_instance(instance_id: int) -> ResponseReturnValue:
    services().engine.cancel(instance_id, person().username, _admin_reason())
    return jsonify(_instance_response(instance_id))


@bp.post("/instances/<int:instance_id>/retry")
def retry_instance(instance_id: int) -> ResponseReturnValue:
    services().engine.retry(instance_id, person().username, _admin_reason())
    return jsonify(_instance_response(instance_id))


@bp.get("/tasks")
def list_tasks() -> ResponseReturnValue:
    who = person()
    with services().store.read() as session:
        tasks = queries.ready_tasks(session, None if who.is_admin else who.roles)
        return jsonify(tasks=[queries.task_summary(t) for t in tasks])


@bp.get("/tasks/<task_id>")
def get_task(task_id: str) -> ResponseReturnValue:
    with services().store.read() as session:
        task = queries.get_task(session, task_id)
        _visible_instance(session, task.instance_id)
        return jsonify(queries.task_detail(services().engine, session, task))


@bp.post("/tasks/<task_id>/claim")
def claim_task(task_id: str) -> ResponseReturnValue:
    who = person()
    services().engine.claim(task_id, who.username, may_work=who.may_work)
    return _task_response(task_id)


@bp.post("/tasks/<task_id>/release")
def release_task(task_id: str) -> ResponseReturnValue:
    who = person()
    services().engine.claim(
        task_id, who.username, release=True, for_anyone=who.is_admin, may_work=who.may_work
    )
    return _task_response(task_id)


def _task_response(task_id: str) -> Any:
    with services().store.read() as session:
        return jsonify(queries.task_summary(queries.get_task(session, task_id)))


@bp.post("/tasks/<task_id>/complete")
def complete_task(task_id: str) -> ResponseReturnValue:
    body, who = json_body(), person()
    return jsonify(
        services().engine.complete(task_id, _data(body), who.username, may_work=who.may_work)
    )


@bp.post("/tasks/<task_id>/reassign")
def reassign_task(task_id: str) -> ResponseReturnValue:
    reason = _admin_reason()
    to = json_body().get("to")
    if not isinstance(to, str) or not to.strip():
        raise ComplaintflowError('name the person: {"to": "<username>", "reason": "…"}')
    services().engine.reassign(task_id, to.strip(), person().username, reason)
    return _task_response(task_id)


@bp.post("/instances/<int:instance_id>/correct")
def correct_instance(instance_id: int) -> ResponseReturnValue:
    reason = _admin_reason()
    changes = json_body().get("changes")
    if not isinstance(changes, dict):
        raise ComplaintflowError(
            'give the corrections: {"changes": {"field": value}, "reason": "…"}'
        )
    services().engine.correct(instance_id, changes, person().username, reason)
    return jsonify(_instance_response(instance_id))
