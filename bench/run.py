"""Benchmark: what complaintflow costs on top of bare SpiffWorkflow, measured in one run.

For each workload (the standard shape start → task → task → gateway → task → end, and the happy
path of each bundled procedure) it measures:

- the floor: bare SpiffWorkflow, the spec parsed once, the instance run in memory (no
  serialization, no database), per task completion;
- the engine layer on SQLite and on PostgreSQL: `Engine.complete` (load the state, complete,
  run on, save state, inbox rows and history in one transaction), per task completion;

and prints medians and 90th percentiles with the ratio to the floor. Run with `make bench`
(PostgreSQL must be running) or `.venv/bin/python bench/run.py --instances 200`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from complaintflow.bootstrap import initialise  # noqa: E402
from complaintflow.config import Settings  # noqa: E402
from complaintflow.diagrams import FORM_PROPERTY  # noqa: E402
from complaintflow.engine import queries  # noqa: E402
from complaintflow.services import Services  # noqa: E402
from tests.factories import fill  # noqa: E402

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Workload:
    name: str
    path: Path
    key: str
    intake: dict[str, Any]
    # bpmn id of a user task -> the choices its form gets; `{n}` alternates per instance
    choices: Callable[[int, str], dict[str, Any]] = lambda n, bpmn_id: {}
    sla: dict[str, str] = field(default_factory=dict)


def _standard_choices(n: int, bpmn_id: str) -> dict[str, Any]:
    return {"branch": "left" if n % 2 else "right"}


# The happy path of each bundled procedure: the decisions that move straight to the end.
_HAPPY = {
    "contact_complainant": {"assessment": "solvable"},
    "follow_up_visit": {"verification": "verified"},
    "check_effect": {"check_outcome": "effective"},
    "listen": {
        "serious": False,
        "within_authority": True,
        "severity": "simple",
        "own_department": True,
    },
    "staff_ask_satisfaction": {"guest_satisfied": True},
    "gm_instruct": {"decision": "archive"},
}


def _happy(n: int, bpmn_id: str) -> dict[str, Any]:
    return _HAPPY.get(bpmn_id, {})


def _intake(key: str, **choices: Any) -> dict[str, Any]:
    form = json.loads((BUNDLED / "forms" / key / "intake.schema.json").read_text(encoding="utf-8"))
    return fill(form, **choices)


BUNDLED = REPO / "bpmn"
WORKLOADS = [
    Workload("standard", REPO / "bench/standard/standard.bpmn", "standard", {}, _standard_choices),
    Workload("facility", BUNDLED / "facility.bpmn", "facility", _intake("facility"), _happy),
    Workload("bar", BUNDLED / "bar.bpmn", "bar", _intake("bar"), _happy),
    Workload("hotel", BUNDLED / "hotel.bpmn", "hotel", _intake("hotel", vip=False), _happy),
]


class _CannedServices(TaskDataEnvironment):
    """SpiffWorkflow's own evaluation, with the `get` helper the diagrams use; service tasks
    answer at once, as if every handler did nothing."""

    def evaluate(self, expression: str, context: dict[str, Any], external: Any = None) -> Any:
        return super().evaluate(expression, context, {"get": context.get, **(external or {})})

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> str:
        return json.dumps({"number": "X-0000-000000", "id": 0})


def _forms(path: Path) -> dict[str, dict[str, Any]]:
    forms = {}
    for form in path.parent.glob("forms/**/*.json"):
        forms[str(form.relative_to(path.parent))] = json.loads(form.read_text(encoding="utf-8"))
    return forms


def _form_data(spec: Any, forms: dict[str, Any], n: int, workload: Workload) -> dict[str, Any]:
    form = forms[spec.extensions["properties"][FORM_PROPERTY]]
    choices = workload.choices(n, spec.bpmn_id)
    return fill(form, **{k: v for k, v in choices.items() if k in form["properties"]})


def bare(workload: Workload, instances: int) -> list[float]:
    """Seconds per task completion, SpiffWorkflow alone, in memory."""
    parser = SpiffBpmnParser()
    parser.add_bpmn_file(str(workload.path))
    spec = parser.get_spec(workload.key)
    subprocess_specs = parser.get_subprocess_specs(workload.key)
    forms = _forms(workload.path)
    engine = PythonScriptEngine(environment=_CannedServices())
    samples = []
    for n in range(instances):
        workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=engine)
        workflow.task_tree.data.update(workload.intake, sla=workload.sla)
        workflow.do_engine_steps()
        while ready := workflow.get_tasks(state=TaskState.READY, manual=True):
            task = ready[0]
            data = _form_data(task.task_spec, forms, n, workload)
            began = time.perf_counter()
            task.data.update(data)
            task.run()
            workflow.do_engine_steps()
            samples.append(time.perf_counter() - began)
        assert workflow.is_completed(), f"{workload.name}: the path did not reach the end"
    return samples


def layered(svc: Services, workload: Workload, instances: int) -> list[float]:
    """Seconds per task completion through the engine layer and the database."""
    forms = _forms(workload.path)
    samples = []
    for n in range(instances):
        instance_id = svc.engine.start(workload.key, workload.intake, "bench")
        while True:
            with svc.store.read() as session:
                ready = queries.ready_tasks_of(session, instance_id)
                if not ready:
                    status = queries.get_instance(session, instance_id).status
                    break
                task = ready[0]
                diagram = svc.engine.diagram(task.instance.version)
                spec = diagram.spec.task_specs[task.bpmn_id]
            data = _form_data(spec, forms, n, workload)
            began = time.perf_counter()
            svc.engine.complete(task.id, data, "bench")
            samples.append(time.perf_counter() - began)
        assert status == "completed", f"{workload.name}: instance ended {status}"
    return samples


@contextmanager
def sqlite_services(home: Path) -> Iterator[Services]:
    url = f"sqlite:///{home / 'bench.db'}"
    yield from _services(home, url)


@contextmanager
def postgres_services(home: Path) -> Iterator[Services]:
    name = f"cf_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield from _services(home, PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _services(home: Path, url: str) -> Iterator[Services]:
    svc = Services.build(Settings(home=home, database_url=url, secret_key="bench"))
    for _ in initialise(svc):
        pass
    for workload in WORKLOADS:
        deployed = svc.engine.deploy(workload.path, "bench")
        svc.engine.put_in_effect(deployed.key, deployed.version, "the benchmark's workload")
        workload.sla = svc.engine.sla.durations(workload.key)
    try:
        yield svc
    finally:
        svc.store.dispose()


# What a closed complaint keeps in PostgreSQL, row sizes as stored (pg_column_size of the whole
# row: TOAST-compressed where PostgreSQL compresses): the instance with its state, its history,
# its record and its inbox rows.
_BYTES = """
SELECT avg(pg_column_size(i.*)), avg(coalesce(e.bytes, 0)), avg(coalesce(pg_column_size(r.*), 0)),
       avg(coalesce(t.bytes, 0)), avg(coalesce(e.n, 0))
FROM instances i
JOIN procedure_versions v ON v.id = i.version_id
LEFT JOIN (SELECT instance_id, sum(pg_column_size(events.*)) AS bytes, count(*) AS n
           FROM events GROUP BY instance_id) e ON e.instance_id = i.id
LEFT JOIN complaint_records r ON r.instance_id = i.id
LEFT JOIN (SELECT instance_id, sum(pg_column_size(tasks.*)) AS bytes FROM tasks
           GROUP BY instance_id) t ON t.instance_id = i.id
WHERE i.status = 'completed' AND v.procedure_key = %s
"""


def stored_bytes(svc: Services, key: str) -> tuple[float, ...]:
    """Mean bytes per closed complaint: instance row, history, record, inbox rows; events."""
    with svc.store.engine.connect() as conn:
        row = conn.exec_driver_sql(_BYTES, (key,)).one()
    return tuple(float(x or 0) for x in row)


def _ms(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=200, help="instances per workload")
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {w.name: {} for w in WORKLOADS}
    sizes: dict[str, tuple[float, ...]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend, make in (("sqlite", sqlite_services), ("postgresql", postgres_services)):
            with make(Path(tmp) / backend) as svc:
                for workload in WORKLOADS:
                    layered(svc, workload, max(10, args.instances // 10))  # warm up
                    results[workload.name][backend] = layered(svc, workload, args.instances)
                    if backend == "postgresql":
                        sizes[workload.name] = stored_bytes(svc, workload.key)
    for workload in WORKLOADS:
        bare(workload, max(10, args.instances // 10))  # warm up
        results[workload.name]["bare"] = bare(workload, args.instances)

    print(f"\nper task completion, {args.instances} instances per workload; medians (p90) in ms")
    print(
        f"{'workload':<10} {'bare Spiff':>14} {'SQLite':>16} {'ratio':>7} "
        f"{'PostgreSQL':>16} {'ratio':>7}"
    )
    for name, by in results.items():
        floor = statistics.median(by["bare"]) * 1000
        cells = [f"{floor:7.3f} ({_ms(by['bare'], 0.9):5.2f})"]
        for backend in ("sqlite", "postgresql"):
            median = statistics.median(by[backend]) * 1000
            cells += [f"{median:7.3f} ({_ms(by[backend], 0.9):6.2f})", f"{median / floor:6.1f}x"]
        print(
            f"{name:<10} {cells[0]:>14} {cells[1]:>16} {cells[2]:>7} {cells[3]:>16} {cells[4]:>7}"
        )
    print("\nbytes per closed complaint in PostgreSQL (happy path; row sizes as stored)")
    columns = ("instance", "history", "record", "inbox", "total")
    print(f"{'workload':<10} " + " ".join(f"{c:>9}" for c in columns) + "  events")
    for name, (instance, history, record, inbox, events) in sizes.items():
        total = instance + history + record + inbox
        cells = (instance, history, record, inbox, total)
        print(f"{name:<10} " + " ".join(f"{c:9.0f}" for c in cells) + f"  {events:6.1f}")


if __name__ == "__main__":
    main()
