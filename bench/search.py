"""Benchmark: auditor search over 100,000 complaints, on SQLite and PostgreSQL.

Fills a fresh database with synthetic complaints (instances, their records and tasks, spread
over a year, of every status, some with missed deadlines) by bulk insert, then times the
searches an auditor makes, each repeated, and prints the median and the worst.

    .venv/bin/python bench/search.py --complaints 100000
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.run import postgres_services, sqlite_services  # noqa: E402
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


def fill(svc: Services, count: int, rng: random.Random) -> list[str]:
    """Insert `count` complaints; returns some of their numbers to look up."""
    now = datetime.now(UTC)
    with svc.store.read() as session:
        versions = {v.procedure_key: v.id for v in session.scalars(select(ProcedureVersion))}
    numbers = []
    stride = max(1, count // 100)  # about a hundred numbers to look up, whatever the count
    batch = 5000
    for start in range(0, count, batch):
        instances, records, tasks = [], [], []
        for i in range(start + 1, min(count, start + batch) + 1):
            key = ("facility", "bar", "hotel")[i % 3]
            started = now - timedelta(minutes=rng.randint(0, 365 * 24 * 60))
            status = rng.choices(["completed", "running", "cancelled", "error"], [80, 15, 4, 1])[0]
            instances.append(
                {
                    "id": i,
                    "version_id": versions[key],
                    "status": status,
                    "state": "{}",
                    "serializer_version": "1.5",
                    "lock_version": 1,
                    "started_at": started,
                    "started_by": "bench",
                    "updated_at": started,
                    "head_seq": 0,
                    "head_hash": "",
                    "missed_deadlines": 1 if rng.random() < 0.1 else 0,
                    "completed_at": started + timedelta(hours=rng.randint(1, 96))
                    if status == "completed"
                    else None,
                }
            )
            number = f"{PREFIX[key]}-{started.year}-{i:06d}"
            records.append(
                {
                    "number": number,
                    "procedure_key": key,
                    "instance_id": i,
                    "complainant": f"顧客{rng.randint(1, 50000)}",
                    "description": "bench",
                    "received_at": started,
                    "recorded_by": "bench",
                    "status": "open",
                    "escalations": 0,
                    "updated_at": started,
                }
            )
            for role in rng.sample(ROLES[key], k=2):
                tasks.append(
                    {
                        "id": f"{i:08d}-{role[:20]}",
                        "instance_id": i,
                        "bpmn_id": "t",
                        "name": "t",
                        "role": role,
                        "state": "completed",
                        "created_at": started,
                    }
                )
            if i % stride == 0:
                numbers.append(number)
        with svc.store.write() as session:
            session.execute(insert(Instance.__table__), instances)
            session.execute(insert(ComplaintRecord.__table__), records)
            session.execute(insert(Task.__table__), tasks)
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


def timed(svc: Services, args: dict[str, str], repeat: int) -> list[float]:
    terms = parse_search(args, ZONE)
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        with svc.store.read() as session:
            rows, _total = queries.search(session, terms)
            [queries.instance_summary(r) for r in rows]
        samples.append(time.perf_counter() - began)
    return samples


@contextmanager
def analysed(svc: Services) -> Any:
    """Fresh statistics for the planner, as a database in use would have."""
    with svc.store.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    yield svc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--complaints", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    print(f"\nsearch over {args.complaints:,} complaints; ms per search (page of 50 + total)")
    with tempfile.TemporaryDirectory() as tmp:
        for backend, make in (("sqlite", sqlite_services), ("postgresql", postgres_services)):
            with make(Path(tmp) / backend) as svc:
                began = time.perf_counter()
                numbers = fill(svc, args.complaints, random.Random(7))
                print(f"{backend}: filled in {time.perf_counter() - began:.0f} s")
                with analysed(svc):
                    for name, terms in searches(numbers).items():
                        samples = timed(svc, terms, args.repeat)
                        print(
                            f"  {name:<34} median {statistics.median(samples) * 1000:6.1f}"
                            f"   max {max(samples) * 1000:6.1f}"
                        )


if __name__ == "__main__":
    main()
