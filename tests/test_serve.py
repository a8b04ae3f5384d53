"""The product as a user runs it: `complaintflow serve` in its own process, driven over real
HTTP by a client that signs in as each role and fills every form from its schema; a deadline
shortened through COMPLAINTFLOW_SLA_OVERRIDES fires within two seconds and escalates."""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from complaintflow.bootstrap import demo_password

from .factories import random_fill


class Http:
    def __init__(self, base: str) -> None:
        self.base = base
        self.tokens: dict[str, str] = {}

    def call(self, method: str, path: str, user: str | None = None, body: Any = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if user is not None:
            headers["Authorization"] = f"Bearer {self.token(user)}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def token(self, user: str) -> str:
        if user not in self.tokens:
            status, body = self.call(
                "POST",
                "/api/v1/auth/token",
                None,
                {"username": user, "password": demo_password(user)},
            )
            assert status == 200, body
            self.tokens[user] = body["token"]
        return self.tokens[user]


@pytest.fixture
def served(start_server: Callable[..., str]) -> Http:
    return Http(
        start_server(
            COMPLAINTFLOW_SLA_OVERRIDES=json.dumps({"facility": {"technician_contact": "PT1S"}})
        )
    )


def drive(http: Http, key: str, rng: random.Random) -> dict[str, Any]:
    """Start a complaint of `key` and complete its tasks, each as a holder of its role."""
    _, listing = http.call("GET", "/api/v1/procedures", "admin")
    procedure = next(p for p in listing["procedures"] if p["key"] == key)
    starter = procedure["roles"][0]["key"]
    status, started = http.call(
        "POST",
        f"/api/v1/procedures/{key}/instances",
        starter,
        {"data": random_fill(procedure["intake_schema"], rng)},
    )
    assert status == 201, started
    for _ in range(80):
        _, instance = http.call("GET", f"/api/v1/instances/{started['id']}", starter)
        ready = [t for t in instance["tasks"] if t["state"] == "ready"]
        if not ready:
            return instance  # type: ignore[no-any-return]
        task = rng.choice(ready)
        status, detail = http.call("GET", f"/api/v1/tasks/{task['id']}", task["role"])
        assert status == 200, detail
        status, done = http.call(
            "POST",
            f"/api/v1/tasks/{task['id']}/complete",
            task["role"],
            {"data": random_fill(detail["form_schema"], rng)},
        )
        assert status == 200, done
    pytest.fail(f"{key} did not finish in 80 steps")


@pytest.mark.parametrize("key", ["facility", "bar", "hotel"])
def test_every_procedure_completes_over_http(served: Http, key: str) -> None:
    instance = drive(served, key, random.Random(key))
    assert instance["status"] == "completed"
    assert instance["record"]["status"] == "archived"
    _, history = served.call("GET", f"/api/v1/instances/{instance['id']}/history", "admin")
    assert history["events"][-1]["action"] == "instance.completed"


def test_forbidden_stale_and_invalid_completions_over_http(served: Http) -> None:
    status, started = served.call(
        "POST",
        "/api/v1/procedures/facility/instances",
        "clerk",
        {"data": random_fill(_intake(served, "facility"), random.Random(1))},
    )
    assert status == 201
    task = started["next_tasks"][0]
    path = f"/api/v1/tasks/{task['id']}/complete"
    assert served.call("POST", path, "bar_staff", {"data": {}})[0] == 403
    status, invalid = served.call("POST", path, "technician", {"data": {"assessment": "maybe"}})
    assert status == 422 and "assessment" in invalid["error"]["fields"]
    _, detail = served.call("GET", f"/api/v1/tasks/{task['id']}", "technician")
    data = random_fill(detail["form_schema"], random.Random(2))
    assert served.call("POST", path, "technician", {"data": data})[0] == 200
    assert served.call("POST", path, "technician", {"data": data})[0] == 409


def _intake(http: Http, key: str) -> dict[str, Any]:
    _, listing = http.call("GET", "/api/v1/procedures", "admin")
    return next(p["intake_schema"] for p in listing["procedures"] if p["key"] == key)


def test_a_shortened_deadline_fires_within_two_seconds_and_escalates(served: Http) -> None:
    _, listing = served.call("GET", "/api/v1/procedures", "clerk")
    facility = next(p for p in listing["procedures"] if p["key"] == "facility")
    assert facility["timers"]["technician_contact"] == "PT1S"
    _, started = served.call(
        "POST",
        "/api/v1/procedures/facility/instances",
        "clerk",
        {"data": random_fill(facility["intake_schema"], random.Random(3))},
    )
    due = datetime.fromisoformat(started["next_tasks"][0]["due_at"])
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        _, history = served.call("GET", f"/api/v1/instances/{started['id']}/history", "clerk")
        fired = [e for e in history["events"] if e["action"] == "timer.fired"]
        if fired:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the timer did not fire")
    lateness = datetime.fromisoformat(fired[0]["at"]) - due
    assert lateness.total_seconds() < 2
    escalated = [e for e in history["events"] if e["action"] == "escalated"]
    assert escalated[0]["data"] == {"role": "engineering_supervisor", "timer": "technician_contact"}
