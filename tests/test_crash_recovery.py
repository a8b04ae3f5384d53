"""`serve` killed with SIGKILL, as a power cut would: what was committed is delivered after the
restart, once (the receiver sees one idempotency key), and a timer that fell due while the
server was down fires right after it starts again."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import datetime

from complaintflow.accounts import Contact
from complaintflow.config import REPO_ROOT, Settings
from complaintflow.services import Services

from .conftest import ServerProcess
from .factories import fill
from .receivers import Receiver
from .test_serve import Http


def _until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {seconds} s")


def _with_phone_for_supervisor(server: ServerProcess) -> Services:
    svc = Services.build(Settings.from_env(server.env))
    svc.accounts.create_user(
        "sup_phone",
        "password-1",
        ["engineering_supervisor"],
        contact=Contact(None, "+85255550101", "en"),
    )
    return svc


def _urgent_complaint(http: Http) -> int:
    """A facility complaint the technician finds urgent: the supervisor is told by SMS."""
    _, listing = http.call("GET", "/api/v1/procedures", "clerk")
    intake = next(p["intake_schema"] for p in listing["procedures"] if p["key"] == "facility")
    status, started = http.call(
        "POST", "/api/v1/procedures/facility/instances", "clerk", {"data": fill(intake)}
    )
    assert status == 201, started
    task = started["next_tasks"][0]
    _, detail = http.call("GET", f"/api/v1/tasks/{task['id']}", "technician")
    data = fill(detail["form_schema"], assessment="urgent")
    status, done = http.call(
        "POST", f"/api/v1/tasks/{task['id']}/complete", "technician", {"data": data}
    )
    assert status == 200, done
    return int(started["id"])


def test_killed_while_delivering_it_delivers_after_restart_once(
    server_process: Callable[..., ServerProcess], receiver: Callable[..., Receiver]
) -> None:
    gateway = receiver(hold=threading.Event())  # takes the call, answers only when released
    server = server_process(COMPLAINTFLOW_SMS_URL=gateway.url, COMPLAINTFLOW_LEASE_SECONDS="2")
    _with_phone_for_supervisor(server)
    _urgent_complaint(Http(server.start()))
    _until(lambda: len(gateway.calls) == 1, 10, "the SMS gateway was called")
    server.kill("web")  # mid-call: the message is taken, and its delivery never recorded
    assert gateway.hold is not None
    gateway.hold.set()
    server.start()
    _until(lambda: len(gateway.calls) == 2, 15, "the SMS went again after the restart")
    time.sleep(2)  # nothing more comes
    assert len(gateway.calls) == 2
    assert len({call.headers["Idempotency-Key"] for call in gateway.calls}) == 1
    assert len(gateway.accepted) == 1


CHILD = """
import os, signal, sys
sys.path.insert(0, {root!r})
from complaintflow.config import Settings
from complaintflow.services import Services
from tests.factories import fill

svc = Services.build(Settings.from_env())
with svc.store.read() as session:
    diagram = svc.engine.diagram(svc.engine.current_version(session, "facility"))
instance_id = svc.engine.start("facility", fill(diagram.intake_form), "clerk")
with svc.store.read() as session:
    from complaintflow.engine import queries
    (task,) = queries.ready_tasks_of(session, instance_id)
form = diagram.form_of(diagram.spec.task_specs["contact_complainant"])
svc.engine.complete(task.id, fill(form, assessment="urgent"), "technician")
print(instance_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # committed; nothing delivered yet
"""


def test_killed_right_after_the_commit_it_delivers_after_restart_once(
    server_process: Callable[..., ServerProcess], receiver: Callable[..., Receiver]
) -> None:
    gateway = receiver()
    server = server_process(COMPLAINTFLOW_SMS_URL=gateway.url)
    _with_phone_for_supervisor(server)
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD.format(root=str(REPO_ROOT)))],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -9, child.stderr
    assert gateway.calls == []
    server.start()
    _until(lambda: len(gateway.calls) == 1, 10, "the SMS went after the restart")
    time.sleep(2)
    assert len(gateway.calls) == 1 and len(gateway.accepted) == 1
    assert gateway.calls[0].json()["to"] == "+85255550101"


def test_a_timer_due_during_downtime_fires_right_after_start_up(
    server_process: Callable[..., ServerProcess],
) -> None:
    server = server_process(
        COMPLAINTFLOW_SLA_OVERRIDES=json.dumps({"facility": {"technician_contact": "PT3S"}})
    )
    http = Http(server.start())
    _, listing = http.call("GET", "/api/v1/procedures", "clerk")
    intake = next(p["intake_schema"] for p in listing["procedures"] if p["key"] == "facility")
    _, started = http.call(
        "POST", "/api/v1/procedures/facility/instances", "clerk", {"data": fill(intake)}
    )
    server.kill("web")
    due = datetime.fromisoformat(started["next_tasks"][0]["due_at"])
    time.sleep(max(0.0, due.timestamp() - time.time()) + 2)  # it falls due while down
    server.start()
    up = time.time()
    path = f"/api/v1/instances/{started['id']}/history"

    def fired() -> bool:
        return any(
            e["action"] == "timer.fired" for e in http.call("GET", path, "clerk")[1]["events"]
        )

    _until(fired, 5, "the timer fired after start-up")
    assert time.time() - up < 2.5
    events = http.call("GET", path, "clerk")[1]["events"]
    escalated = [e for e in events if e["action"] == "escalated"]
    assert escalated[0]["data"] == {"role": "engineering_supervisor", "timer": "technician_contact"}
