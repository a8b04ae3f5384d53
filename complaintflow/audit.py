"""The audit log (acts outside any one complaint) and the check of every hash chain.

`verify` reads each instance's events in order and the audit log, recomputes each hash, and
names the first row that was altered, removed or moved. An instance's row keeps the head of its
chain, so removing the newest events is found too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from .chain import entry_hash, event_hash
from .db import Store
from .models import AuditEntry, AuditHead, Event, Instance

_LOCK = 0x636F6D706C  # PostgreSQL advisory lock key: one audit-log writer at a time


def record(
    session: Session, actor: str, action: str, subject: str, data: dict[str, Any], now: datetime
) -> None:
    """Append to the audit log in the caller's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
    head = session.get(AuditHead, 1)
    seq, prev = (head.seq + 1, head.hash) if head else (1, "")
    digest = entry_hash(prev, seq, now, actor, action, subject, data)
    session.add(
        AuditEntry(
            seq=seq,
            at=now,
            actor=actor,
            action=action,
            subject=subject,
            data=data,
            prev_hash=prev,
            hash=digest,
        )
    )
    if head is None:
        session.add(AuditHead(id=1, seq=seq, hash=digest))
    else:
        head.seq, head.hash = seq, digest


@dataclass
class Verdict:
    instances: int = 0
    events: int = 0
    entries: int = 0
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify(store: Store, batch: int = 5000) -> Verdict:
    verdict = Verdict()
    with store.read() as session:
        heads = {
            i: (seq, head)
            for i, seq, head in session.execute(
                select(Instance.id, Instance.head_seq, Instance.head_hash)
            )
        }
        verdict.instances = len(heads)
        verdict.problem = _verify_events(session, heads, verdict, batch) or _verify_log(
            session, verdict, batch
        )
    return verdict


def _verify_events(
    session: Session, heads: dict[int, tuple[int, str]], verdict: Verdict, batch: int
) -> str | None:
    current, expected, prev = None, 1, ""
    seen: set[int] = set()
    rows = session.scalars(select(Event).order_by(Event.instance_id, Event.seq)).yield_per(batch)
    for event in rows:
        if event.instance_id != current:
            if current is not None and (
                problem := _head_problem(current, expected - 1, prev, heads)
            ):
                return problem
            current, expected, prev = event.instance_id, 1, ""
            seen.add(current)
        where = f"instance {event.instance_id}, event {event.seq} ({event.action}, id {event.id})"
        if event.seq != expected:
            return f"{where}: expected event {expected} here; events were removed or reordered"
        if event.prev_hash != prev:
            return f"{where}: does not follow the event before it; rows were removed or reordered"
        digest = event_hash(
            prev,
            event.instance_id,
            event.seq,
            event.at,
            event.actor,
            event.action,
            event.bpmn_id,
            event.name,
            event.data,
        )
        if digest != event.hash:
            return f"{where}: its content does not match its hash; the row was altered"
        verdict.events += 1
        expected, prev = expected + 1, event.hash
    if current is not None and (problem := _head_problem(current, expected - 1, prev, heads)):
        return problem
    emptied = sorted(i for i, (seq, _) in heads.items() if seq and i not in seen)
    return f"instance {emptied[0]}: its whole history was removed" if emptied else None


def _head_problem(
    instance_id: int, last_seq: int, last_hash: str, heads: dict[int, tuple[int, str]]
) -> str | None:
    head_seq, head_hash = heads.get(instance_id, (0, ""))
    if (last_seq, last_hash) != (head_seq, head_hash):
        return (
            f"instance {instance_id}: the history ends at event {last_seq} but the instance"
            f" recorded {head_seq}; its newest events were removed or altered"
        )
    return None


def _verify_log(session: Session, verdict: Verdict, batch: int) -> str | None:
    expected, prev = 1, ""
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).yield_per(batch):
        where = f"audit log entry {entry.seq} ({entry.action} {entry.subject})"
        if entry.seq != expected or entry.prev_hash != prev:
            return f"{where}: entries were removed or reordered before it"
        digest = entry_hash(
            prev, entry.seq, entry.at, entry.actor, entry.action, entry.subject, entry.data
        )
        if digest != entry.hash:
            return f"{where}: its content does not match its hash; the row was altered"
        verdict.entries += 1
        expected, prev = expected + 1, entry.hash
    head = session.get(AuditHead, 1)
    recorded = (head.seq, head.hash) if head else (0, "")
    if recorded != (expected - 1, prev):
        return (
            f"audit log: it ends at entry {expected - 1} but recorded {recorded[0]};"
            " its newest entries were removed or altered"
        )
    return None
