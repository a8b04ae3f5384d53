"""Reports per procedure and period: how many complaints, how fast, which deadlines were kept,
how satisfied people were, and how often each clause of the written procedure was observed.

Complaints count in the period they were received in. Times are medians and 90th percentiles
(nearest rank) over the complaints that reached the point measured.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import compliance, paths
from .engine import queries
from .models import ComplaintRecord, Instance, ProcedureVersion


@dataclass(frozen=True)
class Spread:
    count: int
    median: timedelta | None
    p90: timedelta | None

    @classmethod
    def of(cls, spans: list[timedelta]) -> Spread:
        ordered = sorted(spans)
        if not ordered:
            return cls(0, None, None)
        return cls(len(ordered), _rank(ordered, 0.5), _rank(ordered, 0.9))


def _rank(ordered: list[timedelta], q: float) -> timedelta:
    """The nearest-rank percentile: the smallest value with at least q of the values at or
    below it."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Report:
    procedure: str
    start: datetime
    end: datetime
    total: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_category: Counter[str] = field(default_factory=Counter)
    satisfaction: Counter[str] = field(default_factory=Counter)
    first_contact: Spread = Spread(0, None, None)
    closure: Spread = Spread(0, None, None)
    # timer name -> {"met": n, "missed": n}
    deadlines: dict[str, Counter[str]] = field(default_factory=dict)
    # clause -> verdict -> n
    clauses: dict[str, Counter[str]] = field(default_factory=dict)

    def share(self, clause: str) -> float | None:
        """Of the complaints the clause was decided for, the part that observed it."""
        counts = self.clauses.get(clause, Counter())
        decided = counts[compliance.OBSERVED] + counts[compliance.MISSED]
        return counts[compliance.OBSERVED] / decided if decided else None


def build(
    session: Session, bpmn_dir: Path, procedure: str, start: datetime, end: datetime, now: datetime
) -> Report:
    report = Report(procedure, start, end)
    rows = session.execute(
        select(
            Instance.id,
            Instance.status,
            Instance.started_at,
            Instance.completed_at,
            ComplaintRecord.category,
            ComplaintRecord.satisfaction,
        )
        .join(ProcedureVersion, Instance.version_id == ProcedureVersion.id)
        .outerjoin(ComplaintRecord, ComplaintRecord.instance_id == Instance.id)
        .where(
            ProcedureVersion.procedure_key == procedure,
            Instance.started_at >= start,
            Instance.started_at < end,
        )
    ).all()
    events = queries.events_of(session, [row.id for row in rows])
    clauses = compliance.clauses_for(bpmn_dir, procedure)
    first_contact, closure = [], []
    for row in rows:
        report.total += 1
        report.by_status[row.status] += 1
        report.by_category[row.category or "—"] += 1
        if row.satisfaction:
            report.satisfaction[row.satisfaction] += 1
        history = events[row.id]
        contact = next((e["at"] for e in history if e["action"] == "task.completed"), None)
        if contact is not None:
            first_contact.append(contact - row.started_at)
        if row.status == "completed" and row.completed_at is not None:
            closure.append(row.completed_at - row.started_at)
        finished = row.status in ("completed", "cancelled")
        verdicts = compliance.judge(clauses, history, queries.deadlines_of(history), finished, now)
        for verdict in verdicts:
            report.clauses.setdefault(verdict.clause, Counter())[verdict.status] += 1
            for check, status, _evidence in verdict.checks:
                if check.kind == "within" and status in (compliance.OBSERVED, compliance.MISSED):
                    met = "met" if status == compliance.OBSERVED else "missed"
                    report.deadlines.setdefault(check.timer, Counter())[met] += 1
    report.first_contact, report.closure = Spread.of(first_contact), Spread.of(closure)
    return report


def _hours(span: timedelta | None) -> str:
    return "" if span is None else f"{span.total_seconds() / 3600:.2f}"


def to_csv(report: Report) -> str:
    """The report as CSV: one row per figure (section, item, value), easy to pivot."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "item", "value"])
    writer.writerow(["period", "from", report.start.isoformat()])
    writer.writerow(["period", "to", report.end.isoformat()])
    writer.writerow(["complaints", "total", report.total])
    for section, counts in (
        ("status", report.by_status),
        ("category", report.by_category),
        ("satisfaction", report.satisfaction),
    ):
        for item, count in sorted(counts.items()):
            writer.writerow([section, item, count])
    for name, spread in (("first contact", report.first_contact), ("closure", report.closure)):
        writer.writerow([f"time to {name} (hours)", "count", spread.count])
        writer.writerow([f"time to {name} (hours)", "median", _hours(spread.median)])
        writer.writerow([f"time to {name} (hours)", "p90", _hours(spread.p90)])
    for timer, counts in sorted(report.deadlines.items()):
        writer.writerow(["deadline met", timer, counts["met"]])
        writer.writerow(["deadline missed", timer, counts["missed"]])
    for clause in report.clauses:
        share = report.share(clause)
        writer.writerow(
            ["clause observed (share)", clause, "" if share is None else f"{share:.3f}"]
        )
    return out.getvalue()


def heat(session: Session, version_id: int, start: datetime, end: datetime) -> dict[str, Any]:
    """Per element of a version: how many complaints passed it, and the median time a human
    task waited between ready and done."""
    ids = list(
        session.scalars(
            select(Instance.id).where(
                Instance.version_id == version_id,
                Instance.started_at >= start,
                Instance.started_at < end,
            )
        )
    )
    version = session.get(ProcedureVersion, version_id)
    assert version is not None
    passed: Counter[str] = Counter()
    waits: dict[str, list[timedelta]] = defaultdict(list)
    for history in queries.events_of(session, ids).values():
        passed.update(paths.path(version.bpmn_xml, history, set()).taken)  # the arrows
        seen, ready = set(), {}
        for event in history:
            element = event["bpmn_id"]
            if not element:
                continue
            if event["action"] == "task.ready":
                ready[element] = event["at"]
            elif event["action"] == "task.completed" and element in ready:
                waits[element].append(event["at"] - ready.pop(element))
            seen.add(element)
        passed.update(seen)
    return {
        "complaints": len(ids),
        "passed": dict(passed),
        "wait": {e: Spread.of(spans).median for e, spans in waits.items()},
    }


def as_json(report: Report) -> dict[str, Any]:
    """The report for the API: times in seconds."""

    def spread(s: Spread) -> dict[str, Any]:
        median = None if s.median is None else s.median.total_seconds()
        p90 = None if s.p90 is None else s.p90.total_seconds()
        return {"count": s.count, "median_seconds": median, "p90_seconds": p90}

    return {
        "procedure": report.procedure,
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "total": report.total,
        "by_status": dict(report.by_status),
        "by_category": dict(report.by_category),
        "satisfaction": dict(report.satisfaction),
        "time_to_first_contact": spread(report.first_contact),
        "time_to_closure": spread(report.closure),
        "deadlines": {
            t: {"met": c["met"], "missed": c["missed"]} for t, c in report.deadlines.items()
        },
        "clauses": {
            clause: {**dict(counts), "share_observed": report.share(clause)}
            for clause, counts in report.clauses.items()
        },
    }
