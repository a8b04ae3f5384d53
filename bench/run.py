"""Benchmark: what complaintflow costs on top of bare SpiffWorkflow, measured in one run.

For each workload (the standard shape start → task → task → gateway → task → end, and the happy
path of each bundled procedure) it measures:

- the floor: bare SpiffWorkflow, the spec parsed once, the instance run in memory (no
  serialization, no database), per task completion;
- the engine layer on SQLite and on PostgreSQL: `Engine.complete` (load the state, complete,
  run on, save state, inbox rows and history in one transaction), per task completion: in the
  process that made the complaint's last step (its workflow and row kept there), and again with
  the completions alternating between two processes' services (every one reads the row and
  restores the state, as a completion hours later or on another web process does);
- the database floor: what the database alone takes of a completion — the very statements a
  second pass of the engine layer sent, with their parameters, replayed through the bare driver
  (psycopg, sqlite3) in the same transactions and batches, with the same durable commits, on a
  copy of the database as it was before that pass;

and prints medians and 90th percentiles with the ratio to the floor, and what Python's garbage
collection took during the engine layer's passes (the longest pause holds every thread of a
web process). Run with `make bench`
(PostgreSQL must be running) or `.venv/bin/python bench/run.py --instances 200`.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Engine, event

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from complaintflow.bootstrap import initialise  # noqa: E402
from complaintflow.config import Settings  # noqa: E402
from complaintflow.diagrams import FORM_PROPERTY  # noqa: E402
from complaintflow.engine import queries  # noqa: E402
from complaintflow.heap import set_start_up_aside  # noqa: E402
from complaintflow.models import Base  # noqa: E402
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


@dataclass
class Transaction:
    """One transaction as the driver got it: statements (text, parameters, executemany, sent in
    a pipelined batch), how it ended, and the workload whose timed completion it was, if any."""

    label: str | None
    statements: list[tuple[str, Any, bool, bool]] = field(default_factory=list)
    end: str = "commit"


class Statements:
    """Records what the engine layer sends the database, transaction by transaction, in the
    order they end (so that replaying them one after another gives the same database)."""

    def __init__(self, engine: Engine) -> None:
        self.done: list[Transaction] = []
        self.label: str | None = None
        self._open: dict[int, Transaction] = {}

        def key(conn: Any) -> int:
            return id(conn.connection.dbapi_connection)

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            self._open[key(conn)] = Transaction(self.label)

        @event.listens_for(engine, "before_cursor_execute")
        def _statement(conn: Any, _cur: Any, text: str, params: Any, _ctx: Any, many: bool) -> None:
            driver = conn.connection.driver_connection
            batched = isinstance(driver, psycopg.Connection) and bool(driver.pgconn.pipeline_status)
            self._open[key(conn)].statements.append((text, params, many, batched))

        def ending(how: str) -> Callable[[Any], None]:
            def _end(conn: Any) -> None:
                transaction = self._open.pop(key(conn), None)
                if transaction is not None:
                    transaction.end = how
                    self.done.append(transaction)

            return _end

        event.listen(engine, "commit", ending("commit"))
        event.listen(engine, "rollback", ending("rollback"))

    @contextmanager
    def timing(self, label: str) -> Iterator[None]:
        self.label = label
        try:
            yield
        finally:
            self.label = None


def replay(connection: Any, transactions: list[Transaction]) -> dict[str, list[float]]:
    """Run the recorded transactions on `connection` (psycopg, or sqlite3 in autocommit mode,
    as the engine layer uses them); seconds per labelled transaction, by label."""
    is_sqlite = isinstance(connection, sqlite3.Connection)
    seconds: dict[str, list[float]] = {}
    cursor = connection.cursor()
    for transaction in transactions:
        began = time.perf_counter()
        if is_sqlite:
            cursor.execute("BEGIN IMMEDIATE")
        statements = iter(transaction.statements)
        pending = next(statements, None)
        while pending is not None:
            if pending[3]:  # a pipelined batch: sent together, as the engine layer sends it
                with connection.pipeline():
                    while pending is not None and pending[3]:
                        _execute(cursor, *pending[:3])
                        pending = next(statements, None)
            else:
                _execute(cursor, *pending[:3])
                if cursor.description is not None:
                    cursor.fetchall()
                pending = next(statements, None)
        if is_sqlite:
            cursor.execute("COMMIT" if transaction.end == "commit" else "ROLLBACK")
        elif transaction.end == "commit":
            connection.commit()
        else:
            connection.rollback()
        if transaction.label is not None:
            seconds.setdefault(transaction.label, []).append(time.perf_counter() - began)
    return seconds


def database_floor(svc: Services, instances: int) -> dict[str, list[float]]:
    """Seconds per task completion that the database alone takes, by workload: another pass
    of every workload, recorded (recording slows the engine layer: its timings are not kept),
    replayed on a copy of the database taken before it, warm-up included."""
    with copy_of(svc) as before:
        statements = Statements(svc.store.engine)
        for workload in WORKLOADS:
            layered(svc, workload, max(10, instances // 10))  # recorded, replayed untimed
            layered(svc, workload, instances, statements)
        seconds = replay(before, statements.done)
        with svc.store.engine.connect() as conn:
            expected = [[tuple(row) for row in conn.exec_driver_sql(q)] for q in _FINGERPRINT]
        if [before.execute(q).fetchall() for q in _FINGERPRINT] != expected:
            raise AssertionError("the replay did not leave the database as the run left it")
        return seconds


# What a replay that went astray would change: every table's rows, each instance's version
# and history head, each task's state.
_FINGERPRINT = [
    *(f"SELECT count(*) FROM {table.name}" for table in Base.metadata.sorted_tables),
    "SELECT id, lock_version, head_hash, status FROM instances ORDER BY id",
    "SELECT id, state FROM tasks ORDER BY id",
]


def _execute(cursor: Any, text: str, params: Any, many: bool) -> None:
    if many:
        cursor.executemany(text, params)
    else:
        cursor.execute(text, params)


class Collections:
    """Python's garbage collections while `counting`: each one's generation and the CPU time it
    held the process for."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._began = 0.0

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.thread_time()
        else:
            self.pauses.append((info["generation"], time.thread_time() - self._began))

    @contextmanager
    def counting(self) -> Iterator[None]:
        gc.callbacks.append(self._note)
        try:
            yield
        finally:
            gc.callbacks.remove(self._note)

    def cell(self, completions: int) -> str:
        """Full collections, the longest pause of any (ms), all of them per completion (µs)."""
        full = sum(generation == 2 for generation, _ in self.pauses)
        longest = max((pause for _, pause in self.pauses), default=0.0) * 1000
        each = sum(pause for _, pause in self.pauses) / completions * 1e6
        return f"{full:4d} {longest:6.1f} {each:5.0f}"


def layered(
    svc: Services,
    workload: Workload,
    instances: int,
    statements: Statements | None = None,
    elsewhere: Services | None = None,
) -> list[float]:
    """Seconds per task completion through the engine layer and the database; with
    `statements`, what each completion sent is recorded under the workload's name. With
    `elsewhere` (another process's services on the same database, as a second web process
    is), the completions alternate between the two, so that none finds the complaint's last
    step kept where it runs: each reads the row and restores the state."""
    forms = _forms(workload.path)
    samples = []
    completers = [elsewhere, svc] if elsewhere is not None else [svc]
    for n in range(instances):
        instance_id = svc.engine.start(workload.key, workload.intake, "bench")
        for completer in itertools.cycle(completers):
            with svc.store.read() as session:
                ready = queries.ready_tasks_of(session, instance_id)
                if not ready:
                    status = queries.get_instance(session, instance_id).status
                    break
                task = ready[0]
                diagram = svc.engine.diagram(task.instance.version)
                spec = diagram.spec.task_specs[task.bpmn_id]
            data = _form_data(spec, forms, n, workload)
            with statements.timing(workload.name) if statements else nullcontext():
                began = time.perf_counter()
                completer.engine.complete(task.id, data, "bench")
                samples.append(time.perf_counter() - began)
        assert status == "completed", f"{workload.name}: instance ended {status}"
    return samples


@contextmanager
def sqlite_services(home: Path) -> Iterator[Services]:
    url = f"sqlite:///{home / 'bench.db'}"
    yield from _services(home, url)


@contextmanager
def postgres_services(home: Path) -> Iterator[Services]:
    with _scratch_database(f"cf_bench_{uuid.uuid4().hex[:10]}") as url:
        yield from _services(home, url)


@contextmanager
def _scratch_database(name: str, template: str = "template1") -> Iterator[str]:
    """A PostgreSQL database made for the block (a copy of `template`), dropped after it."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def copy_of(svc: Services) -> Iterator[Any]:
    """A bare driver connection to a copy of the service's database as it is now, set up as the
    engine layer's connections are (for SQLite: WAL, synchronous=FULL, foreign keys)."""
    url = svc.settings.database_url
    if svc.settings.is_sqlite:
        path = url.removeprefix("sqlite:///")
        copy = sqlite3.connect(path + ".floor", isolation_level=None)
        with sqlite3.connect(path) as source:
            source.backup(copy)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
            copy.execute(f"PRAGMA {pragma}")
        try:
            yield copy
        finally:
            copy.close()
        return
    name = url.rsplit("/", 1)[1]
    svc.store.dispose()  # a template database must have no one connected
    with (
        _scratch_database(f"{name}_floor", template=name) as copy_url,
        psycopg.connect(copy_url) as copy,
    ):
        yield copy


@contextmanager
def another_process(svc: Services) -> Iterator[Services]:
    """Services on the same database with caches of their own, as another process has."""
    other = Services.build(svc.settings)
    try:
        yield other
    finally:
        other.store.dispose()


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


def _against(by: dict[str, list[float]], runs: tuple[str, ...], floor: float) -> str:
    """Each run's median (p90) in ms and its ratio to the floor, as table cells."""
    cells = []
    for run in runs:
        median = statistics.median(by[run]) * 1000
        cells.append(f"{median:7.3f} ({_ms(by[run], 0.9):6.2f}) {median / floor:6.1f}x")
    return " ".join(f"{cell:>24}" for cell in cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=200, help="instances per workload")
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {w.name: {} for w in WORKLOADS}
    collections: dict[str, dict[str, Collections]] = {w.name: {} for w in WORKLOADS}
    sizes: dict[str, tuple[float, ...]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend, make in (("sqlite", sqlite_services), ("postgresql", postgres_services)):
            with make(Path(tmp) / backend) as svc:
                set_start_up_aside()  # as the product's processes do, once started

                def measure(workload: Workload, run: str, elsewhere: Services | None) -> None:
                    layered(svc, workload, max(10, args.instances // 10), elsewhere=elsewhere)
                    counted = collections[workload.name][run] = Collections()
                    with counted.counting():
                        results[workload.name][run] = layered(
                            svc, workload, args.instances, elsewhere=elsewhere
                        )

                for workload in WORKLOADS:
                    measure(workload, backend, None)
                    if backend == "postgresql":
                        sizes[workload.name] = stored_bytes(svc, workload.key)
                with another_process(svc) as other:  # closed before the floor copies the database
                    for workload in WORKLOADS:
                        measure(workload, f"{backend} restored", other)
                for name, seconds in database_floor(svc, args.instances).items():
                    results[name][f"{backend} database"] = seconds
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
        bare_cell = f"{floor:7.3f} ({_ms(by['bare'], 0.9):5.2f})"
        print(f"{name:<10} {bare_cell:>14} {_against(by, ('sqlite', 'postgresql'), floor)}")
    print(
        "\neach completion in another process than the complaint's last step (the state read and"
        " restored,\nas a completion hours later or on another web process is); medians (p90) in ms"
    )
    print(f"{'workload':<10} {'SQLite':>16} {'ratio':>7} {'PostgreSQL':>16} {'ratio':>7}")
    for name, by in results.items():
        floor = statistics.median(by["bare"]) * 1000
        print(f"{name:<10} {_against(by, ('sqlite restored', 'postgresql restored'), floor)}")
    print(
        "\nthe database floor: the same statements through the bare driver, in the same"
        " transactions,\nbatches and durable commits; medians in ms, and multiples of the bare"
        " SpiffWorkflow floor for\nthe database floor and for the rest of a completion"
        " (engine layer less database floor)"
    )
    header = f"{'x':>6} {'rest x':>7}"
    print(f"{'workload':<10} {'SQLite':>8} {header} {'PostgreSQL':>11} {header}")
    for name, by in results.items():
        floor = statistics.median(by["bare"]) * 1000
        cells = []
        for backend in ("sqlite", "postgresql"):
            database = statistics.median(by[f"{backend} database"]) * 1000
            rest = statistics.median(by[backend]) * 1000 - database
            cells.append(f"{database:8.3f} {database / floor:5.1f}x {rest / floor:6.1f}x")
        print(f"{name:<10} {cells[0]}    {cells[1]}")
    print(
        "\nPython's garbage collection in those passes: full collections, the longest pause of"
        " any (ms),\nand all of them per completion (µs), in CPU time"
    )
    runs = ("sqlite", "postgresql", "sqlite restored", "postgresql restored")
    print(f"{'workload':<10} " + " ".join(f"{run:>17}" for run in runs))
    print(f"{'':<10} " + " ".join(f"{'full':>4} {'ms':>6} {'µs':>5}" for _ in runs))
    for name, by in results.items():
        cells = [collections[name][run].cell(len(by[run])) for run in runs]
        print(f"{name:<10} " + " ".join(f"{cell:>17}" for cell in cells))
    print("\nbytes per closed complaint in PostgreSQL (happy path; row sizes as stored)")
    columns = ("instance", "history", "record", "inbox", "total")
    print(f"{'workload':<10} " + " ".join(f"{c:>9}" for c in columns) + "  events")
    for name, (instance, history, record, inbox, events) in sizes.items():
        total = instance + history + record + inbox
        cells = (instance, history, record, inbox, total)
        print(f"{name:<10} " + " ".join(f"{c:9.0f}" for c in cells) + f"  {events:6.1f}")


if __name__ == "__main__":
    main()
