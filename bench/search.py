"""Benchmark: the staff inbox and auditor search over 100,000 complaints (or a million), on
SQLite and PostgreSQL.

Fills a fresh database with synthetic complaints — instances, their records and tasks, spread
over a year, of every status, some with missed deadlines; 15% still running, each with one or
two ready tasks across its procedure's roles (some overdue, some claimed) — in bulk (COPY on
PostgreSQL), then times, each repeated, the queries of the staff inbox (the page and
GET /api/v1/tasks) for a role with many ready tasks and for an admin, and the searches an
auditor makes; prints the median and the 95th percentile of each.

    .venv/bin/python bench/search.py --complaints 100000
    .venv/bin/python bench/search.py --complaints 1000000 --backends postgresql
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.run import _ms, postgres_services, sqlite_services  # noqa: E402
from complaintflow.engine import queries  # noqa: E402
from complaintflow.models import ComplaintRecord, Instance, ProcedureVersion, Task  # noqa: E402
from complaintflow.services import Services  # noqa: E402
from complaintflow.web.searching import parse_search  # noqa: E402

ZONE = ZoneInfo("Asia/Hong_Kong")
ROLES = {
    "facility": ["technician", "engineering_supervisor", "office_director"],
    "bar": ["bar_staff", "bar_manager"],
    "hotel": ["lobby_manager", "department_supervisor", "general_manager"],
}
PREFIX = {"facility": "A", "bar": "B", "hotel": "C"}
BUSY_ROLE = "technician"  # about 1 in 20 complaints has a ready task of this role
BATCH = 10_000

INSTANCE = (
    "id",
    "version_id",
    "status",
    "state",
    "serializer_version",
    "lock_version",
    "started_at",
    "started_by",
    "updated_at",
    "head_seq",
    "head_hash",
    "missed_deadlines",
    "completed_at",
)
RECORD = (
    "number",
    "procedure_key",
    "instance_id",
    "complainant",
    "description",
    "received_at",
    "recorded_by",
    "status",
    "escalations",
    "updated_at",
)
TASK = (
    "id",
    "instance_id",
    "bpmn_id",
    "name",
    "role",
    "state",
    "assignee",
    "due_at",
    "created_at",
    "completed_at",
    "completed_by",
)
Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def _due(now: datetime, rng: Any) -> datetime | None:
    kind = rng.random()
    if kind < 0.2:
        return None
    days = 3 * 24 * 60  # in minutes
    return now + timedelta(minutes=rng.randint(-days, -1) if kind < 0.45 else rng.randint(1, days))


def _tasks(i: int, key: str, status: str, started: datetime, now: datetime, rng: Any) -> list:
    """The task rows of complaint i: what was done, and for a running one what waits (one or
    two ready tasks across its roles, a fifth without deadline, a quarter overdue, some
    claimed). Ids look like SpiffWorkflow's uuids, in order, as they would be inserted."""
    roles = ROLES[key]
    done = rng.sample(roles, k=rng.randint(0, 2) if status == "running" else 2)
    rows = []
    for k, role in enumerate(done):
        at = started + timedelta(minutes=10 * k)
        rows.append((role, "completed", None, None, at, at + timedelta(minutes=5), role))
    if status == "running":
        for role in rng.sample(roles, k=rng.choice((1, 1, 2))):
            assignee = role if rng.random() < 0.3 else None
            due = _due(now, rng)
            rows.append((role, "ready", assignee, due, started + timedelta(minutes=30), None, None))
    return [
        (f"{i:08x}-0000-4000-8000-{k:012x}", i, role, role, role, *rest)
        for k, (role, *rest) in enumerate(rows)
    ]


def complaints(first: int, last: int, versions: dict[str, int], now: datetime, rng: Any) -> Rows:
    """Rows for complaints first..last (instance ids), in the columns above."""
    instances, records, tasks = [], [], []
    for i in range(first, last + 1):
        key = ("facility", "bar", "hotel")[i % 3]
        status = rng.choices(["completed", "running", "cancelled", "error"], [80, 15, 4, 1])[0]
        ago = rng.randint(0, (30 if status == "running" else 365) * 24 * 60)  # in minutes
        started = now - timedelta(minutes=ago)
        completed = started + timedelta(hours=rng.randint(1, 96))
        instances.append(
            (
                i,
                versions[key],
                status,
                "{}",
                "1.5",
                1,
                started,
                "bench",
                started,
                0,
                "",
                1 if rng.random() < 0.1 else 0,
                completed if status == "completed" else None,
            )
        )
        number = f"{PREFIX[key]}-{started.year}-{i:06d}"
        complainant = f"顧客{rng.randint(1, 50000)}"
        records.append((number, key, i, complainant, "bench", started, "bench", "open", 0, started))
        tasks += _tasks(i, key, status, started, now, rng)
    return instances, records, tasks


def _insert(svc: Services, rows: Rows) -> None:
    with svc.store.write() as session:
        for table, columns, values in zip(
            (Instance.__table__, ComplaintRecord.__table__, Task.__table__),
            (INSTANCE, RECORD, TASK),
            rows,
            strict=True,
        ):
            session.execute(insert(table), [dict(zip(columns, v, strict=True)) for v in values])


def _copy(svc: Services, rows: Rows) -> None:
    """COPY: a tenth of the time inserts take on PostgreSQL. The columns are UTC without a
    zone, so the rows carry naive UTC datetimes (see models.UTCDateTime)."""
    raw = svc.store.engine.raw_connection()
    try:
        connection = raw.driver_connection
        with connection.cursor() as cursor:
            for table, columns, values in zip(
                ("instances", "complaint_records", "tasks"),
                (INSTANCE, RECORD, TASK),
                rows,
                strict=True,
            ):
                statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                with cursor.copy(statement) as copy:
                    for row in values:
                        copy.write_row(row)
        connection.commit()
    finally:
        raw.close()


def fill(svc: Services, count: int, rng: random.Random) -> list[str]:
    """Insert `count` complaints; returns some of their numbers to look up."""
    postgres = not svc.settings.is_sqlite
    now = datetime.now(UTC)
    if postgres:
        now = now.replace(tzinfo=None)
    with svc.store.read() as session:
        versions = {v.procedure_key: v.id for v in session.scalars(select(ProcedureVersion))}
    numbers = []
    stride = max(1, count // 100)  # about a hundred numbers to look up, whatever the count
    for start in range(1, count + 1, BATCH):
        rows = complaints(start, min(count, start + BATCH - 1), versions, now, rng)
        (_copy if postgres else _insert)(svc, rows)
        numbers += [r[0] for r in rows[1] if r[2] % stride == 0]
    return numbers


def searches(numbers: list[str]) -> dict[str, dict[str, str]]:
    month_ago = (datetime.now(ZONE) - timedelta(days=30)).date().isoformat()
    return {
        "all, newest page": {},
        "procedure + status + last month": {
            "procedure": "facility",
            "status": "completed",
            "from": month_ago,
        },
        "complaint number": {"number": numbers[len(numbers) // 2]},
        "complainant (part of name)": {"complainant": "顧客1234"},
        "role": {"role": "engineering_supervisor"},
        "missed a deadline, page 20": {"missed": "yes", "page": "20"},
    }


def _search(terms: dict[str, str]) -> Callable[[Session], Any]:
    parsed = parse_search(terms, ZONE)

    def run(session: Session) -> Any:
        rows, _total = queries.search(session, parsed)
        return [queries.instance_summary(r) for r in rows]

    return run


def _inbox(roles: frozenset[str] | None, username: str, view: str = "all") -> Callable:
    """What the staff inbox page reads (staff/views.py `inbox`): its rows, the counts per role
    and the alerts, with each row's fields as the page shows them."""

    def run(session: Session) -> Any:
        now = datetime.now(UTC)
        rows = queries.inbox(session, roles, username, now, None, view)
        counts = queries.ready_counts(session, roles)
        alerts = queries.alerts(session, roles, now - timedelta(days=7))
        shown = [(r.task.name, r.task.due_at, r.number, r.procedure, r.overdue(now)) for r in rows]
        return shown, counts, alerts

    return run


def _api_tasks(roles: frozenset[str] | None) -> Callable[[Session], Any]:
    """GET /api/v1/tasks: the ready tasks of the roles, most urgent first."""
    return lambda session: [queries.task_summary(t) for t in queries.ready_tasks(session, roles)]


def inbox_queries() -> dict[str, Callable[[Session], Any]]:
    busy = frozenset({BUSY_ROLE})
    return {
        f"inbox page, {BUSY_ROLE}": _inbox(busy, BUSY_ROLE),
        f"inbox page, {BUSY_ROLE}, overdue": _inbox(busy, BUSY_ROLE, "overdue"),
        "inbox page, admin (every role)": _inbox(None, "admin"),
        f"GET /api/v1/tasks, {BUSY_ROLE}": _api_tasks(busy),
        "GET /api/v1/tasks, admin": _api_tasks(None),
    }


def timed(svc: Services, work: Callable[[Session], Any], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        with svc.store.read() as session:
            work(session)
        samples.append(time.perf_counter() - began)
    return samples


def analyse(svc: Services) -> None:
    """Fresh statistics for the planner, and on PostgreSQL the visibility map a vacuumed table
    has (index-only scans), as a database in use would have after autovacuum."""
    with svc.store.engine.connect() as conn:
        if svc.settings.is_sqlite:
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        conn.commit()


def _ready_of(svc: Services, role: str) -> int:
    with svc.store.read() as session:
        query = select(func.count()).where(Task.state == "ready", Task.role == role)
        return int(session.scalar(query) or 0)


def measure(svc: Services, backend: str, count: int, repeat: int) -> Iterator[str]:
    began = time.perf_counter()
    numbers = fill(svc, count, random.Random(7))
    filled = time.perf_counter() - began
    analyse(svc)
    analysed = time.perf_counter() - began - filled
    yield (
        f"{backend}: filled in {filled:.0f} s, analysed in {analysed:.0f} s;"
        f" {_ready_of(svc, BUSY_ROLE):,} ready tasks of {BUSY_ROLE}"
    )
    work = {**inbox_queries(), **{k: _search(v) for k, v in searches(numbers).items()}}
    for name, run in work.items():
        timed(svc, run, 1)  # the first, with cold caches, is not counted
        samples = timed(svc, run, repeat)
        yield (
            f"  {name:<36} median {statistics.median(samples) * 1000:7.1f}"
            f"   p95 {_ms(samples, 0.95):7.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--complaints", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    args = parser.parse_args()
    makers = {"sqlite": sqlite_services, "postgresql": postgres_services}
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if unknown := set(backends) - set(makers):
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    print(
        f"\ninbox and search over {args.complaints:,} complaints ({' '.join(sys.argv[1:])});"
        f" ms per query, {args.repeat} runs each"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            with makers[backend](Path(tmp) / backend) as svc:
                for line in measure(svc, backend, args.complaints, args.repeat):
                    print(line, flush=True)


if __name__ == "__main__":
    main()
