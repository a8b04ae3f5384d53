"""The JSON API over HTTP (Flask's test client): authentication, roles, status codes and bodies."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from complaintflow.app import create_app, services

from .conftest import BUNDLED, MECHANICS, PG_ADMIN_URL, Api, _settings

INTAKE = {"data": {"name": "陳太太", "text": "大堂燈不亮"}}


@pytest.fixture
def mech_api(make_app: Callable[..., Flask]) -> Api:
    return Api(make_app(MECHANICS).test_client())


def start(api: Api, user: str = "desk") -> dict:
    response = api.post("/procedures/mechanics/instances", user, INTAKE)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_token_needs_the_right_password(mech_api: Api) -> None:
    client = mech_api.client
    wrong = client.post("/api/v1/auth/token", json={"username": "desk", "password": "nope"})
    assert wrong.status_code == 401
    assert wrong.get_json()["error"]["message"] == "wrong username or password"
    unknown = client.post("/api/v1/auth/token", json={"username": "nobody", "password": "x" * 9})
    assert unknown.status_code == 401
    garbled = client.post("/api/v1/auth/token", data="{not json", content_type="application/json")
    assert garbled.status_code == 400
    assert client.post("/api/v1/auth/token", json={"username": 3}).status_code == 400


def test_requests_without_a_valid_token_are_refused(mech_api: Api) -> None:
    client = mech_api.client
    missing = client.get("/api/v1/tasks")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    forged = client.get("/api/v1/tasks", headers={"Authorization": "Bearer abc.def"})
    assert forged.status_code == 401
    assert forged.get_json()["error"]["code"] == "unauthorized"


def test_procedures_show_intake_schema_and_timers(mech_api: Api) -> None:
    body = mech_api.get("/procedures", "desk").get_json()
    (procedure,) = body["procedures"]
    assert procedure["key"] == "mechanics" and procedure["version"] == 1
    assert procedure["intake_schema"]["required"] == ["name", "text"]
    assert procedure["timers"] == {"handle": "PT1H"}
    assert {r["key"] for r in procedure["roles"]} == {"desk", "boss"}


def test_start_gives_a_number_and_the_next_task(mech_api: Api) -> None:
    body = start(mech_api)
    assert re.fullmatch(r"T-\d{4}-000001", body["number"])
    assert body["status"] == "running"
    (task,) = body["next_tasks"]
    assert (task["name"], task["role"], task["state"]) == ("處理", "desk", "ready")
    assert task["due_at"] is not None


def test_a_start_sent_again_with_its_idempotency_key_returns_the_same_complaint(
    mech_api: Api,
) -> None:
    def send(key: str, body: dict, user: str = "desk") -> Any:
        return mech_api.client.post(
            "/api/v1/procedures/mechanics/instances",
            json=body,
            headers={"Authorization": f"Bearer {mech_api.token(user)}", "Idempotency-Key": key},
        )

    first, again = send("client-7", INTAKE), send("client-7", INTAKE)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    other = send("client-7", {"data": {**INTAKE["data"], "text": "別的事"}})
    assert other.status_code == 409
    assert send("client-7", INTAKE, "admin").get_json()["id"] != first.get_json()["id"]
    assert send("bad key", INTAKE).status_code == 400


def test_start_is_checked(mech_api: Api) -> None:
    missing = mech_api.post("/procedures/nothing/instances", "desk", INTAKE)
    assert missing.status_code == 404
    invalid = mech_api.post("/procedures/mechanics/instances", "desk", {"data": {"name": "x"}})
    assert invalid.status_code == 422
    assert invalid.get_json()["error"]["fields"] == {"text": ["This field is required."]}
    not_object = mech_api.post("/procedures/mechanics/instances", "desk", {"data": [1]})
    assert not_object.status_code == 422


def test_a_user_without_the_procedures_roles_cannot_start_it(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(MECHANICS)
    from complaintflow.app import services

    services(app).accounts.create_user("outsider", "outsider-demo", ["admin"])
    api = Api(app.test_client())
    assert api.post("/procedures/mechanics/instances", "outsider", INTAKE).status_code == 201
    services(app).accounts.ensure_builtin_roles()
    with services(app).store.write() as session:
        from complaintflow.models import Role

        session.add(Role(key="stranger", name="stranger", procedure_key=None))
    services(app).accounts.create_user("stranger", "stranger-demo", ["stranger"])
    refused = api.post("/procedures/mechanics/instances", "stranger", INTAKE)
    assert refused.status_code == 403


def test_tasks_are_listed_by_role(mech_api: Api) -> None:
    start(mech_api)
    assert [t["name"] for t in mech_api.get("/tasks", "desk").get_json()["tasks"]] == ["處理"]
    assert mech_api.get("/tasks", "boss").get_json()["tasks"] == []
    assert len(mech_api.get("/tasks", "admin").get_json()["tasks"]) == 1


def test_task_detail_has_its_form_and_data(mech_api: Api) -> None:
    task_id = start(mech_api)["next_tasks"][0]["id"]
    detail = mech_api.get(f"/tasks/{task_id}", "desk").get_json()
    assert detail["form_schema"]["required"] == ["solved"]
    assert detail["data"]["name"] == "陳太太"
    assert detail["instance"]["number"].startswith("T-")
    assert mech_api.get("/tasks/no-such-task", "desk").status_code == 404


def test_complete_moves_the_work_on(mech_api: Api) -> None:
    task_id = start(mech_api)["next_tasks"][0]["id"]
    done = mech_api.post(f"/tasks/{task_id}/complete", "desk", {"data": {"solved": False}})
    assert done.status_code == 200
    body = done.get_json()
    assert body["status"] == "running"
    assert [(t["name"], t["role"]) for t in body["next_tasks"]] == [("主管檢查", "boss")]


def test_forbidden_stale_and_invalid_completions(mech_api: Api) -> None:
    task_id = start(mech_api)["next_tasks"][0]["id"]
    forbidden = mech_api.post(f"/tasks/{task_id}/complete", "boss", {"data": {"solved": True}})
    assert forbidden.status_code == 403
    assert forbidden.get_json()["error"]["code"] == "forbidden"
    invalid = mech_api.post(f"/tasks/{task_id}/complete", "desk", {"data": {"solved": "maybe"}})
    assert invalid.status_code == 422
    assert invalid.get_json()["error"]["fields"] == {"solved": ["Must be true or false."]}
    ok = mech_api.post(f"/tasks/{task_id}/complete", "desk", {"data": {"solved": True}})
    assert ok.status_code == 200 and ok.get_json()["status"] == "completed"
    stale = mech_api.post(f"/tasks/{task_id}/complete", "desk", {"data": {"solved": True}})
    assert stale.status_code == 409
    assert "already completed by desk" in stale.get_json()["error"]["message"]


def test_a_claimed_task_is_for_its_claimant(make_app: Callable[..., Flask]) -> None:
    app = make_app(MECHANICS)
    from complaintflow.app import services

    services(app).accounts.create_user("desk2", "desk2-demo", ["desk"])
    api = Api(app.test_client())
    task_id = start(api)["next_tasks"][0]["id"]
    claimed = api.post(f"/tasks/{task_id}/claim", "desk")
    assert claimed.status_code == 200 and claimed.get_json()["assignee"] == "desk"
    taken = api.post(f"/tasks/{task_id}/complete", "desk2", {"data": {"solved": True}})
    assert taken.status_code == 409
    assert "claimed by desk" in taken.get_json()["error"]["message"]
    assert api.post(f"/tasks/{task_id}/release", "desk").get_json()["assignee"] is None
    ok = api.post(f"/tasks/{task_id}/complete", "desk2", {"data": {"solved": True}})
    assert ok.status_code == 200


def test_instance_and_history(mech_api: Api) -> None:
    started = start(mech_api)
    task_id = started["next_tasks"][0]["id"]
    mech_api.post(f"/tasks/{task_id}/complete", "desk", {"data": {"solved": True}})
    instance = mech_api.get(f"/instances/{started['id']}", "boss").get_json()
    assert instance["status"] == "completed"
    assert instance["record"]["complainant"] == "陳太太"
    assert [(t["name"], t["state"], t["completed_by"]) for t in instance["tasks"]] == [
        ("處理", "completed", "desk")
    ]
    events = mech_api.get(f"/instances/{started['id']}/history", "boss").get_json()["events"]
    assert [e["action"] for e in events] == [
        "instance.started",
        "service.called",
        "service.called",
        "task.ready",
        "task.completed",
        "gateway.passed",
        "element.completed",
        "end.reached",
        "instance.completed",
    ]
    completed = events[4]
    assert (completed["actor"], completed["name"], completed["data"]) == (
        "desk",
        "處理",
        {"solved": True},
    )
    assert events[0]["data"] == {**INTAKE["data"], "sla": {"handle": "PT1H"}}
    assert mech_api.get("/instances/999", "boss").status_code == 404


def test_only_admins_cancel_and_retry(mech_api: Api) -> None:
    instance_id = start(mech_api)["id"]
    assert (
        mech_api.post(f"/instances/{instance_id}/cancel", "desk", {"reason": "x"}).status_code
        == 403
    )
    no_reason = mech_api.post(f"/instances/{instance_id}/cancel", "admin", {})
    assert no_reason.status_code == 400
    cancelled = mech_api.post(f"/instances/{instance_id}/cancel", "admin", {"reason": "duplicate"})
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    again = mech_api.post(f"/instances/{instance_id}/retry", "admin", {"reason": "why not"})
    assert again.status_code == 409


def test_healthz_answers(mech_api: Api) -> None:
    response = mech_api.client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


@pytest.mark.parametrize(
    "broker_url", [None, "redis://127.0.0.1:6379/12"], ids=["embedded", "scaled"]
)
def test_healthz_is_503_when_the_database_does_not_answer(
    broker_url: str | None, tmp_path: Path
) -> None:
    # Scaled out, the scheduler's lead read stands in for the ping: a failing read is a 503 too.
    missing = PG_ADMIN_URL.rsplit("/", 1)[0] + "/complaintflow_no_such_database"
    app = create_app(_settings(tmp_path, missing, BUNDLED, broker_url=broker_url))
    try:
        response = app.test_client().get("/healthz")
    finally:
        services(app).store.dispose()
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "error": "OperationalError"}


def test_unknown_api_paths_answer_json(mech_api: Api) -> None:
    response = mech_api.get("/no/such/thing", "desk")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_openapi_documents_every_route(mech_api: Api) -> None:
    app = mech_api.client.application
    document = mech_api.client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    documented = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"  # shared by the operations of the path
    }
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
            path = path.replace("{instance_id}", "{id}").replace("{task_id}", "{id}")
            served |= {(path, m) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    assert documented == served


TOO_BIG = "9" * 20  # past any integer column
NUL = "%00"


def test_values_no_database_column_holds_are_refused_with_a_readable_line(
    mech_api: Api,
) -> None:
    """A number past the database's integers, a digit that is not 0-9, a NUL character in the
    path or the query: a 4xx that says what is wrong, never a 500 from the database."""
    start(mech_api)
    not_found = [f"/instances/{TOO_BIG}", f"/instances/{TOO_BIG}/history", f"/tasks/a{NUL}b"]
    for path in not_found:
        answer = mech_api.get(path, "admin")
        assert answer.status_code in (400, 404), path
        assert answer.get_json()["error"]["message"], path
    refused = [
        f"/instances?number={NUL}",
        f"/instances?complainant=a{NUL}",
        f"/instances?page={TOO_BIG}",
        "/instances?version=%C2%B2",  # ², which str.isdigit() takes for a digit
        f"/instances?per_page={'1' * 5000}",  # longer than int() reads
        f"/procedures/mechanics/diff?from=1&to={TOO_BIG}",
        f"/procedures/me{NUL}/versions",
        "/instances?to=9999-12-31",  # the day after it is past datetime's range
        "/reports/mechanics?from=0001-01-01",  # its midnight in Hong Kong is before year 1 in UTC
    ]
    for path in refused:
        answer = mech_api.get(path, "admin")
        assert answer.status_code == 400, path
        assert answer.get_json()["error"]["code"] == "bad_request", path
    for path, body in [
        ("/procedures/mechanics/versions", {"bpmn": "<x/>", "base_version": int(TOO_BIG)}),
        ("/procedures/mechanics/migrations", {"to": int(TOO_BIG), "reason": "x"}),
        ("/procedures/mechanics/migrations", {"to": 1, "instances": [True], "reason": "x"}),
    ]:
        assert mech_api.post(path, "admin", body).status_code == 400, body
    nul = mech_api.get(f"/instances?number={NUL}", "admin").get_json()["error"]["message"]
    assert nul == "the request carries a NUL character (in number); send text without it"
    page = mech_api.get(f"/instances?page={TOO_BIG}", "admin").get_json()["error"]["message"]
    assert page == "page must be a whole number from 1 to 2147483647"
    for body, content_type, message in [
        ("[" * 100_000, "application/json", "not valid JSON: the JSON is nested too deeply"),
        ('{"username": ', "application/json", "not valid JSON: Expecting value"),
        ('{"username": "desk"}', "application/x-www-form-urlencoded", "Content-Type"),
        ("[]", "application/json", "must be a JSON object"),
    ]:
        answer = mech_api.client.post("/api/v1/auth/token", data=body, content_type=content_type)
        assert answer.status_code == 400 and message in answer.get_json()["error"]["message"]
    # In a JSON body, what other systems send, a NUL is kept as U+FFFD and the call goes on.
    client = mech_api.client
    token = client.post("/api/v1/auth/token", json={"username": "de\u0000sk", "password": "x"})
    assert token.status_code == 401
    reason = mech_api.post("/instances/1/cancel", "admin", {"reason": "dup\u0000licate"})
    assert reason.status_code == 200
    (cancelled,) = [
        e
        for e in mech_api.get("/instances/1/history", "admin").get_json()["events"]
        if e["action"] == "instance.cancelled"
    ]
    assert cancelled["data"]["reason"] == "dup\ufffdlicate"
