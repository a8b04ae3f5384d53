"""Scaled out on this machine — two gunicorn web processes, two Celery workers and the scheduler
over PostgreSQL and Redis — 200 complaints driven at once through the API by parallel clients,
with clashing completions of the same tasks and deadlines passing during the run; then once more
while a worker, a web process and the scheduler are killed (SIGKILL) and started again, and
PostgreSQL restarts. Afterwards every complaint is closed exactly once along its diagram, every
history chain verifies, every notification was delivered exactly once (by idempotency key) and
no task was completed twice."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import func, select

from complaintflow.accounts import Contact
from complaintflow.bootstrap import demo_password
from complaintflow.config import Settings
from complaintflow.engine import queries
from complaintflow.models import Event, Instance, OutboxMessage, ProcedureVersion, Task
from complaintflow.paths import flows
from complaintflow.services import Services

from .cluster import Cluster
from .complaints import Complaint
from .conftest import PG_ADMIN_URL
from .factories import random_fill
from .receivers import Receiver, SmtpServer

COMPLAINTS = 200
CLIENTS = 8
SHORTEST = 10  # s: a deadline nearer than this is one of SHORT's below
PROCEDURES = ("facility", "bar", "hotel")
# Deadlines short enough to pass while complaints wait, so timers fire during the run.
SHORT = {
    "facility": {"technician_contact": "PT2S", "urgent_inspection": "PT3S"},
    "bar": {"act_immediately": "PT2S", "manager_response": "PT3S"},
    "hotel": {"gm_response": "PT3S", "duty_manager_response": "PT3S"},
}
RETRY = (502, 503, 504)


class Client:
    """One staff client over HTTP, retrying what a lost connection or an unavailable database
    interrupted (as a browser's user would press again)."""

    def __init__(self, base: str, tokens: dict[str, str]) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)
        self.tokens = tokens
        self.unexpected: list[str] = []

    def call(self, method: str, path: str, role: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}", **kwargs.pop("headers", {})}
        for _ in range(120):
            try:
                answer = self.http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError:
                time.sleep(0.25)
                continue
            if answer.status_code in RETRY:
                time.sleep(0.25)
                continue
            if answer.status_code >= 500:
                self.unexpected.append(f"{method} {path}: {answer.status_code} {answer.text}")
            return answer
        raise AssertionError(f"{method} {path} got no answer for 30 s")


@dataclass
class Run:
    started: dict[int, int] = field(default_factory=dict)  # complaint n -> instance id
    clashes: list[list[int]] = field(default_factory=list)  # status codes of twin completions
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def drive(client: Client, n: int, schemas: dict[str, Any], run: Run) -> None:
    key = PROCEDURES[n % len(PROCEDURES)]
    rng = random.Random(n)
    starter = schemas[key]["roles"][0]["key"]
    answer = client.call(
        "POST",
        f"/api/v1/procedures/{key}/instances",
        starter,
        json={"data": random_fill(schemas[key]["intake_schema"], rng)},
        headers={"Idempotency-Key": f"scale-{n}"},  # a retried start files nothing twice
    )
    assert answer.status_code == 201, answer.text
    instance_id = answer.json()["id"]
    with run.lock:
        run.started[n] = instance_id
    for _ in range(100):
        instance = client.call("GET", f"/api/v1/instances/{instance_id}", starter).json()
        ready = [t for t in instance["tasks"] if t["state"] == "ready"]
        if not ready:
            assert instance["status"] == "completed", instance
            return
        task = rng.choice(ready)
        detail = client.call("GET", f"/api/v1/tasks/{task['id']}", task["role"])
        if detail.status_code != 200:
            continue  # it moved on meanwhile
        data = {"data": random_fill(detail.json()["form_schema"], rng)}
        path, role = f"/api/v1/tasks/{task['id']}/complete", task["role"]
        due = datetime.fromisoformat(task["due_at"]) if task["due_at"] else None
        wait = (due - datetime.now(UTC)).total_seconds() if due else None  # API: aware UTC
        if n % 5 == 1 and wait is not None and wait < SHORTEST:
            # Someone is slow: one of the shortened deadlines passes while the step waits, and
            # its timer fires (within 2 s of falling due) before the step is sent.
            time.sleep(max(0.0, wait) + 3)
        if n % 4 == 0:  # two people press "complete" on the same task at the same moment
            with ThreadPoolExecutor(2) as pair:
                twins = [pair.submit(client.call, "POST", path, role, json=data) for _ in "ab"]
            with run.lock:
                run.clashes.append(sorted(t.result().status_code for t in twins))
        else:
            client.call("POST", path, role, json=data)
    raise AssertionError(f"complaint {instance_id} did not close in 100 steps")


def drive_all(base: str, tokens: dict[str, str], schemas: dict[str, Any], run: Run) -> None:
    clients = [Client(base, tokens) for _ in range(CLIENTS)]
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [
            pool.submit(drive, clients[n % CLIENTS], n, schemas, run) for n in range(COMPLAINTS)
        ]
        for future in futures:
            future.result(timeout=600)
    run.unexpected += [line for c in clients for line in c.unexpected]


@pytest.fixture
def scaled(
    pg_url: str, tmp_path: Path, receiver: Callable[..., Receiver], smtp: SmtpServer
) -> Iterator[tuple[Cluster, dict[str, Receiver], Services]]:
    receivers = {"sms": receiver(), "webhook": receiver()}
    cluster = Cluster(
        pg_url,
        tmp_path / "home",
        broker_db=11,
        COMPLAINTFLOW_SLA_OVERRIDES=json.dumps(SHORT),
        COMPLAINTFLOW_SMS_URL=receivers["sms"].url,
        COMPLAINTFLOW_SMTP_HOST="127.0.0.1",
        COMPLAINTFLOW_SMTP_PORT=str(smtp.port),
        COMPLAINTFLOW_SMTP_STARTTLS="no",
        COMPLAINTFLOW_LEASE_SECONDS="5",
        COMPLAINTFLOW_DEADLINE_WARNING="PT2S",
    )
    svc = Services.build(Settings.from_env(cluster.env))
    for n, role in enumerate(
        ("technician", "engineering_supervisor", "bar_manager", "general_manager")
    ):
        svc.accounts.create_user(
            f"{role}-2",
            "password-1",
            [role],
            contact=Contact(f"{role}@example.com", f"+8525555{n:04d}"),
        )
    svc.integrations.subscribe(
        receivers["webhook"].url,
        ["complaint.created", "task.ready", "deadline.missed", "complaint.closed"],
        "admin",
    )
    cluster.start_all()
    try:
        yield cluster, receivers, svc
    finally:
        cluster.stop()
        svc.store.dispose()


def _tokens(base: str) -> dict[str, str]:
    """A bearer token for the admin and for the demo user of every role."""
    with httpx.Client(base_url=base, timeout=30) as http:

        def token(username: str) -> str:
            answer = http.post(
                "/api/v1/auth/token",
                json={"username": username, "password": demo_password(username)},
            )
            return str(answer.json()["token"])

        admin = token("admin")
        listing = http.get("/api/v1/procedures", headers={"Authorization": f"Bearer {admin}"})
        roles = {r["key"] for p in listing.json()["procedures"] for r in p["roles"]}
        return {"admin": admin, **{role: token(role) for role in roles}}


def _schemas(base: str, token: str) -> dict[str, Any]:
    listing = httpx.get(
        base + "/api/v1/procedures", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    return {p["key"]: p for p in listing.json()["procedures"]}


def _until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} within {seconds} s")


def check_guarantees(
    cluster: Cluster, receivers: dict[str, Receiver], smtp: SmtpServer, svc: Services, run: Run
) -> None:
    assert run.unexpected == []
    assert sorted(run.started) == list(range(COMPLAINTS))
    store = svc.store
    with store.read() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == COMPLAINTS
        statuses = Counter(session.scalars(select(Instance.status)))
        assert statuses == {"completed": COMPLAINTS}
        fired = session.scalar(select(func.count()).where(Event.action == "timer.fired"))
        assert fired and fired > 0  # deadlines passed during the run
    for pair in run.clashes:  # two at once: one completes, the other is told it is done
        assert pair in ([200, 409], [409, 409]), pair
    _no_task_completed_twice(svc)
    _every_path_follows_its_diagram(svc)
    verified = subprocess.run(
        [sys.executable, "-m", "complaintflow", "audit", "verify"],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr

    def settled() -> bool:
        with store.read() as session:
            return not session.scalar(select(func.count()).where(OutboxMessage.status == "pending"))

    _until(settled, 90, "every notification was delivered")
    with store.read() as session:
        sent = defaultdict(set)
        for channel, key, status in session.execute(
            select(OutboxMessage.channel, OutboxMessage.key, OutboxMessage.status)
        ):
            assert status == "sent", (channel, key, status)
            sent[channel].add(key)
    assert sent["sms"] and sent["webhook"] and sent["email"]
    for channel in ("sms", "webhook"):
        received = {c.headers["Idempotency-Key"] for c in receivers[channel].calls}
        assert received == sent[channel], channel
    mailed = {mail["Message-ID"].strip("<>").split("@")[0] for _, mail in smtp.messages}
    assert mailed == sent["email"]


def _no_task_completed_twice(svc: Services) -> None:
    with svc.store.read() as session:
        rows = Counter(session.scalars(select(Task.instance_id).where(Task.state == "completed")))
        events = Counter(
            session.scalars(select(Event.instance_id).where(Event.action == "task.completed"))
        )
    assert rows == events


def _every_path_follows_its_diagram(svc: Services) -> None:
    """Each element a complaint reached was reached from one reached before it."""
    with svc.store.read() as session:
        versions = {v.id: v.bpmn_xml for v in session.scalars(select(ProcedureVersion))}
        instances = list(session.execute(select(Instance.id, Instance.version_id)))
        grouped = queries.events_of(session, [i for i, _ in instances])
    for instance_id, version_id in instances:
        before = defaultdict(set)
        for _, source, target in flows(versions[version_id]):
            before[target].add(source)
        reached: set[str] = set()
        for event in grouped[instance_id]:
            element = event["bpmn_id"]
            if not element or element in reached:
                continue
            attached = before[element] | _attached_to(versions[version_id], element)
            assert not reached.isdisjoint(attached) or not attached, (instance_id, element)
            reached.add(element)
        assert grouped[instance_id][-1]["action"] == "instance.completed"


def _attached_to(xml: str, element: str) -> set[str]:
    """A boundary event follows the activity it is attached to."""
    marker = f'id="{element}"'
    for line in xml.splitlines():
        if marker in line and "attachedToRef=" in line:
            return {line.split('attachedToRef="')[1].split('"')[0]}
    return set()


def restart_postgresql() -> None:
    version = sorted(Path("/etc/postgresql").iterdir(), key=lambda p: int(p.name))[-1].name
    done = subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"could not restart PostgreSQL (root needed): {done.stderr}"


def chaos(cluster: Cluster, stop: threading.Event, acts: list[str]) -> None:
    """Kill a worker, a web process and the scheduler at random moments during the run, start
    them again, and restart PostgreSQL once."""
    rng = random.Random(2026)
    plan: list[tuple[str, Callable[[], None]]] = [
        ("worker-1", lambda: cluster.kill("worker-1")),
        ("web process", cluster.kill_web_process),
        ("scheduler", lambda: cluster.kill("scheduler")),
        ("postgresql", restart_postgresql),
        ("worker-2", lambda: cluster.kill("worker-2")),
    ]
    rng.shuffle(plan)
    for name, act in plan:
        if stop.wait(rng.uniform(4, 12)):
            return
        act()
        acts.append(name)
        if name in cluster.processes:  # killed: start it again a moment later
            time.sleep(rng.uniform(0.5, 2))
            cluster.start(name)


def test_two_hundred_complaints_at_once_while_processes_die(
    scaled: tuple[Cluster, dict[str, Receiver], Services], smtp: SmtpServer
) -> None:
    cluster, receivers, svc = scaled
    tokens = _tokens(cluster.base)
    run, stop, acts = Run(), threading.Event(), []
    chaotic = threading.Thread(target=chaos, args=(cluster, stop, acts))
    chaotic.start()
    try:
        drive_all(cluster.base, tokens, _schemas(cluster.base, tokens["admin"]), run)
    finally:
        stop.set()
        chaotic.join()
    assert len(acts) >= 3, f"the run ended before the chaos did much: {acts}"
    check_guarantees(cluster, receivers, smtp, svc, run)


def test_two_deployments_sharing_one_redis_each_do_their_own_work_on_time(
    pg_url: str, other_pg_url: str, tmp_path: Path
) -> None:
    # Each deployment's scheduler hands its due timers to a queue named after its database:
    # a worker of the other deployment, on the same Redis, never takes them (it would look for
    # the instance in the wrong database, and the right one would wait a lease, 60 s, for it).
    deployments = []
    for n, url in enumerate((pg_url, other_pg_url)):
        cluster = Cluster(
            url,
            tmp_path / f"home-{n}",
            broker_db=12,
            COMPLAINTFLOW_SLA_OVERRIDES=json.dumps({"facility": {"technician_contact": "PT2S"}}),
        )
        deployments.append((cluster, Services.build(Settings.from_env(cluster.env))))
    try:
        for cluster, _ in deployments:
            cluster.start("worker")
            cluster.start("scheduler")
        for cluster, _ in deployments:
            cluster.wait_for_worker("worker", 60)
        started = [[Complaint(svc, "facility").id for _ in range(6)] for _, svc in deployments]
        late = [
            _contact_lateness(svc, ids) for (_, svc), ids in zip(deployments, started, strict=True)
        ]
        for cluster, _ in deployments:
            cluster.check_alive()
    finally:
        for cluster, svc in deployments:
            cluster.stop()
            svc.store.dispose()
    for each in late:
        assert all(s is not None and s < 5 for s in each), late


def test_a_second_scheduler_stands_by_and_takes_over_when_the_first_is_gone(
    pg_url: str, tmp_path: Path
) -> None:
    # Only the scheduler that leads hands work out; another started beside it waits, takes
    # over once a killed leader's lead lapses (10 rounds of 0.5 s), and at once from one that
    # stopped cleanly (SIGTERM, as in a rolling deploy).
    cluster = Cluster(
        pg_url,
        tmp_path / "home",
        broker_db=12,
        COMPLAINTFLOW_SLA_OVERRIDES=json.dumps({"facility": {"technician_contact": "PT2S"}}),
    )
    svc = Services.build(Settings.from_env(cluster.env))
    try:
        cluster.start("worker")
        cluster.start("scheduler")
        cluster.wait_for_log("scheduler", "leads: handing out", 30)
        cluster.start("scheduler-2")
        cluster.wait_for_log("scheduler-2", "stands by", 30)
        cluster.wait_for_worker("worker", 60)
        first = _contact_lateness(svc, [Complaint(svc, "facility").id for _ in range(3)])
        assert "leads: handing out" not in cluster.log("scheduler-2")

        cluster.kill("scheduler")
        killed = [Complaint(svc, "facility").id for _ in range(3)]
        took_over = cluster.wait_for_log("scheduler-2", "leads: handing out", 15)
        after_kill = _contact_lateness(svc, killed)

        restarted = len(cluster.log("scheduler"))  # its log goes on: read only what is new
        cluster.start("scheduler")  # again: now it is the one standing by
        cluster.wait_for_log("scheduler", "stands by", 30, after=restarted)
        cluster.processes["scheduler-2"].terminate()
        cluster.processes["scheduler-2"].wait(timeout=20)
        took_over_at_once = cluster.wait_for_log(
            "scheduler", "leads: handing out", 15, after=restarted
        )
        after_stop = _contact_lateness(svc, [Complaint(svc, "facility").id for _ in range(3)])
    finally:
        cluster.stop()
        svc.store.dispose()
    assert all(s is not None and s < 5 for s in first + after_stop), (first, after_stop)
    assert 2 < took_over < 8, took_over  # the killed leader's lead lapsed first
    assert all(s is not None and s < 9 for s in after_kill), after_kill
    assert took_over_at_once < 2.5, took_over_at_once


def _contact_lateness(svc: Services, ids: list[int], wait: float = 30) -> list[float | None]:
    """Seconds from each complaint's contact deadline to its timer firing, once every timer
    fired or `wait` s passed; None: not fired."""
    until = time.monotonic() + wait
    while True:
        with svc.store.read() as session:
            histories = queries.events_of(session, ids)
        late: list[float | None] = []
        for instance_id in ids:
            events = histories.get(instance_id, [])
            due = next(e["data"]["due_at"] for e in events if e["action"] == "task.ready")
            fired = next((e["at"] for e in events if e["action"] == "timer.fired"), None)
            late.append(
                None if fired is None else (fired - datetime.fromisoformat(due)).total_seconds()
            )
        if None not in late or time.monotonic() > until:
            return late
        time.sleep(0.5)


def test_a_worker_and_scheduler_started_before_their_database_answers_wait_for_it(
    pg_url: str, tmp_path: Path
) -> None:
    # Their queue is named after the database: until that answers, the worker says it waits and
    # the scheduler tries again each round; then timers fire as ever. (The database appears
    # here under the name it was given, as one starting up would.)
    awaited = pg_url + "_later"
    cluster = Cluster(
        awaited,
        tmp_path / "home",
        broker_db=12,
        COMPLAINTFLOW_SLA_OVERRIDES=json.dumps({"facility": {"technician_contact": "PT2S"}}),
    )
    cluster.start("worker")
    cluster.start("scheduler")
    svc, renamed = Services.build(Settings.from_env(cluster.env)), False
    try:
        for name, says in (("worker", "waiting for the database"), ("scheduler", "again shortly")):
            cluster.wait_for_log(name, says, 30)
        time.sleep(1.5)  # a few more of the scheduler's rounds (every 0.5 s) fail meanwhile
        _rename(pg_url, awaited)
        renamed = True
        cluster.wait_for_worker("worker", 60)
        late = _contact_lateness(svc, [Complaint(svc, "facility").id for _ in range(3)])
        cluster.check_alive()
        scheduler_log, worker_log = cluster.log("scheduler"), cluster.log("worker")
    finally:
        cluster.stop()
        svc.store.dispose()
        if renamed:
            _rename(awaited, pg_url)  # back, for the fixture to drop it
    assert all(s is not None and s < 5 for s in late), late
    # The wait is told once, with its reason, and its end once; not a traceback a round.
    assert scheduler_log.count("scheduling failed") == 1, scheduler_log
    assert "scheduling works again after" in scheduler_log, scheduler_log
    waited = [line for line in worker_log.splitlines() if "waiting for the database" in line]
    assert len(waited) == 1 and waited[0].endswith(" does not exist)"), worker_log


def _rename(url: str, to: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        old, new = url.rsplit("/", 1)[1], to.rsplit("/", 1)[1]
        admin.execute(f'ALTER DATABASE "{old}" RENAME TO "{new}"')
