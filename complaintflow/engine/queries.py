"""The read side: procedures, instances, tasks and history as plain data for the API and pages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import BindParameter, Row, and_, bindparam, func, literal, or_, select, union_all
from sqlalchemy.orm import Session, defer

from ..errors import NotFound
from ..models import (
    SCHEDULER_JOB,
    Attachment,
    ComplaintRecord,
    Event,
    Instance,
    Leader,
    Notification,
    OutboxMessage,
    ProcedureVersion,
    Role,
    Task,
    User,
)

# A lead lapsed this long ago: no scheduler runs (a restarted one leads again well within it).
SCHEDULER_SILENT_AFTER = timedelta(seconds=30)

if TYPE_CHECKING:  # the engine steps use these queries: no import cycle at run time
    from .core import Engine


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def procedure_roles(session: Session, key: str) -> frozenset[str]:
    return frozenset(session.scalars(select(Role.key).where(Role.procedure_key == key)))


def procedures(engine: Engine, session: Session) -> list[dict[str, Any]]:
    """The procedures complaints may be filed under now, as the API lists them."""
    result = []
    for version in engine.current_versions(session).values():
        procedure, diagram = version.procedure, engine.diagram(version)
        result.append(
            {
                "key": procedure.key,
                "name": procedure.name,
                "number_prefix": procedure.number_prefix,
                "version": version.version,
                "roles": [{"key": lane.key, "name": lane.name} for lane in diagram.lanes],
                "intake_schema": diagram.intake_form,
                "timers": engine.sla.durations(procedure.key),
            }
        )
    return result


def get_instance(session: Session, instance_id: int) -> Instance:
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise NotFound(f"there is no complaint instance {instance_id}")
    return instance


def task_summary(task: Task | Row[Any]) -> dict[str, Any]:
    return {
        "id": task.id,
        "instance_id": task.instance_id,
        "name": task.name,
        "bpmn_id": task.bpmn_id,
        "role": task.role,
        "state": task.state,
        "assignee": task.assignee,
        "due_at": _iso(task.due_at),
        "created_at": _iso(task.created_at),
        "completed_at": _iso(task.completed_at),
        "completed_by": task.completed_by,
    }


def instance_summary(instance: Instance) -> dict[str, Any]:
    record = instance.record
    return {
        "id": instance.id,
        "number": record.number if record else None,
        "procedure": instance.version.procedure_key,
        "version": instance.version.version,
        "status": instance.status,
        "error": instance.error,
        "started_at": _iso(instance.started_at),
        "started_by": instance.started_by,
        "updated_at": _iso(instance.updated_at),
        "completed_at": _iso(instance.completed_at),
    }


def instance_detail(engine: Engine, session: Session, instance: Instance) -> dict[str, Any]:
    tasks = session.scalars(
        select(Task).where(Task.instance_id == instance.id).order_by(Task.created_at, Task.id)
    ).all()
    record = instance.record
    return {
        **instance_summary(instance),
        "data": engine.instance_data(instance),
        "record": None
        if record is None
        else {
            "number": record.number,
            "status": record.status,
            "complainant": record.complainant,
            "contact": record.contact,
            "channel": record.channel,
            "category": record.category,
            "place": record.place,
            "description": record.description,
            "received_at": _iso(record.received_at),
            "recorded_by": record.recorded_by,
            "handler": record.handler,
            "result": record.result,
            "satisfaction": record.satisfaction,
            "review": record.review,
            "reviewed_by": record.reviewed_by,
            "escalations": record.escalations,
            "resolved_at": _iso(record.resolved_at),
            "archived_at": _iso(record.archived_at),
        },
        "tasks": [task_summary(t) for t in tasks],
    }


# Most urgent first: by deadline, so the overdue come first and those without one last; then the
# newest. The partial index ix_tasks_ready_due is in this order (but for the newest-first
# among equal deadlines, a small sort), so a page is read off it, not sorted from all.
INBOX_ORDER = (Task.due_at.asc().nulls_last(), Task.created_at.desc())


def ready_tasks(session: Session, roles: frozenset[str] | None, limit: int = 200) -> list[Task]:
    """Ready tasks of the given roles (all roles when None), the most urgent first."""
    query = select(Task).where(Task.state == "ready")
    if roles is not None:
        query = query.where(Task.role.in_(roles))
    return list(session.scalars(query.order_by(*INBOX_ORDER).limit(limit)))


# Built once: every completion answers with the tasks it left waiting.
_READY_OF = (
    select(*Task.__table__.c)
    .where(Task.instance_id == bindparam("instance_id"), Task.state == "ready")
    .order_by(Task.created_at)
)
_READY_TASKS_OF = select(Task).from_statement(_READY_OF)


def ready_tasks_of(session: Session, instance_id: int) -> list[Task]:
    return list(session.scalars(_READY_TASKS_OF, {"instance_id": instance_id}))


def claimed_by(session: Session, username: str) -> list[tuple[str, str]]:
    """(id, role) of each waiting task someone has taken."""
    rows = session.execute(
        select(Task.id, Task.role).where(Task.assignee == username, Task.state == "ready")
    )
    return [(task_id, role) for task_id, role in rows]


def outcome(
    session: Session, instance: Instance, waiting: Sequence[Task] | None = None
) -> dict[str, Any]:
    """A complaint as a step left it: its summary and the tasks now waiting for someone, as the
    step knew them (`Step.waiting`) or else read (as plain rows: the hot path of every
    completion has no use for ORM objects)."""
    ready = (
        waiting
        if waiting is not None
        else session.connection().execute(_READY_OF, {"instance_id": instance.id})
    )
    return {**instance_summary(instance), "next_tasks": [task_summary(t) for t in ready]}


def get_task(session: Session, task_id: str) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound(f"there is no task '{task_id}'")
    return task


def task_detail(engine: Engine, session: Session, task: Task) -> dict[str, Any]:
    instance = task.instance
    diagram = engine.diagram(instance.version)
    spec = diagram.spec.task_specs.get(task.bpmn_id)
    return {
        **task_summary(task),
        "instance": instance_summary(instance),
        "form_schema": diagram.form_of(spec),
        "data": engine.task_data(instance, task.id) if task.state == "ready" else {},
    }


def history(session: Session, instance_id: int) -> list[dict[str, Any]]:
    events = session.scalars(
        select(Event).where(Event.instance_id == instance_id).order_by(Event.seq)
    )
    return [
        {
            "seq": e.seq,
            "at": _iso(e.at),
            "actor": e.actor,
            "action": e.action,
            "bpmn_id": e.bpmn_id,
            "name": e.name,
            "data": e.data,
            "hash": e.hash,
        }
        for e in events
    ]


@dataclass(frozen=True)
class InboxRow:
    task: Task
    number: str | None
    procedure: str

    def overdue(self, now: datetime) -> bool:
        return self.task.due_at is not None and self.task.due_at < now


INBOX_VIEWS = ("all", "unclaimed", "mine", "overdue")


def inbox(
    session: Session,
    roles: frozenset[str] | None,
    username: str,
    now: datetime,
    procedure: str | None = None,
    view: str = "all",
    limit: int = 200,
) -> list[InboxRow]:
    """Ready tasks of the roles (all when None): overdue first, then by deadline, then newest."""
    query = (
        select(Task, ComplaintRecord.number, ProcedureVersion.procedure_key)
        .join(Instance, Task.instance_id == Instance.id)
        .join(ProcedureVersion, Instance.version_id == ProcedureVersion.id)
        .outerjoin(ComplaintRecord, ComplaintRecord.instance_id == Instance.id)
        .where(Task.state == "ready")
    )
    if roles is not None:
        query = query.where(Task.role.in_(roles))
    if procedure:
        query = query.where(ProcedureVersion.procedure_key == procedure)
    if view == "unclaimed":
        query = query.where(Task.assignee.is_(None))
    elif view == "mine":
        query = query.where(Task.assignee == username)
    elif view == "overdue":
        query = query.where(Task.due_at < now)
    query = query.order_by(*INBOX_ORDER).limit(limit)
    return [InboxRow(t, n, p) for t, n, p in session.execute(query)]


def ready_counts(session: Session, roles: frozenset[str] | None) -> dict[str, int]:
    """Ready tasks per role (every role when None), each counted up to COUNT_CAP + 1: a count
    stops where it says "more than" instead of reading every waiting task of a busy role."""
    keys = sorted(roles if roles is not None else session.scalars(select(Role.key)))
    if not keys:
        return {}
    counted = [
        select(literal(key).label("role"), func.count().label("n")).select_from(
            select(Task.role)  # in ix_tasks_inbox: counted off the index alone
            .where(Task.state == "ready", Task.role == key)
            .limit(COUNT_CAP + 1)
            .subquery()
        )
        for key in keys
    ]
    return {role: n for role, n in session.execute(union_all(*counted)) if n}


def attachments_of(
    session: Session, instance_id: int, complainant_only: bool = False
) -> list[Attachment]:
    query = select(Attachment).where(Attachment.instance_id == instance_id)
    if complainant_only:
        query = query.where(Attachment.by_complainant.is_(True))
    return list(session.scalars(query.order_by(Attachment.uploaded_at)))


@dataclass(frozen=True)
class Search:
    """What an auditor searches complaints by; every part optional."""

    procedure: str | None = None
    procedures: tuple[str, ...] | None = None  # limits the search to these (a staff member's)
    version: int | None = None
    status: str | None = None
    started_from: datetime | None = None
    started_before: datetime | None = None
    number: str | None = None
    complainant: str | None = None
    role: str | None = None
    missed_deadline: bool | None = None
    page: int = 1
    per_page: int = 50


# Matches are counted up to this many and then shown as "more than" (as GitHub's search does):
# counting every match of a broad search over a million complaints takes far longer than
# finding the page itself. Exact counts per period are what the reports are for.
COUNT_CAP = 1_000


def _name_contains(part: str, dialect: str) -> Any:
    """Complainants whose name contains `part`, whatever the case; `%` and `_` are themselves.
    The pattern goes into the statement as a literal (quoted by SQLAlchemy): a bound parameter
    would let PostgreSQL plan once for any pattern and scan instead of using the trigram index."""
    escaped = part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern: BindParameter[str] = bindparam("name_part", f"%{escaped}%", literal_execute=True)
    if dialect == "sqlite":  # its LIKE ignores case as its lower() does (ASCII), at half the cost
        return ComplaintRecord.complainant.like(pattern, escape="\\")
    # The expression of PostgreSQL's trigram index (migration 0008).
    return func.lower(ComplaintRecord.complainant).like(func.lower(pattern), escape="\\")


def search(session: Session, terms: Search) -> tuple[list[Instance], int]:
    """One page of matching instances, newest first, and how many match: exactly up to
    COUNT_CAP, and COUNT_CAP + 1 when there are more."""
    # Record and task terms pick instance ids from their own (indexed) tables first: scanning
    # 100,000 names is fast, looking one up per instance is not.
    conditions: list[Any] = []
    if terms.procedure:
        conditions.append(ProcedureVersion.procedure_key == terms.procedure)
    if terms.procedures is not None:
        conditions.append(ProcedureVersion.procedure_key.in_(terms.procedures))
    if terms.version is not None:
        conditions.append(ProcedureVersion.version == terms.version)
    if terms.status:
        conditions.append(Instance.status == terms.status)
    if terms.started_from:
        conditions.append(Instance.started_at >= terms.started_from)
    if terms.started_before:
        conditions.append(Instance.started_at < terms.started_before)
    records = select(ComplaintRecord.instance_id)
    if terms.number:
        records = records.where(ComplaintRecord.number == terms.number.strip().upper())
    if terms.complainant:
        dialect = session.get_bind().dialect.name
        records = records.where(_name_contains(terms.complainant.strip(), dialect))
    if terms.number or terms.complainant:
        conditions.append(Instance.id.in_(records))
    if terms.role:
        conditions.append(Instance.id.in_(select(Task.instance_id).where(Task.role == terms.role)))
    if terms.missed_deadline is not None:
        # 0 written into the statement: the partial index's predicate (models.Instance) must
        # be seen to hold, which a bound parameter hides from a prepared statement's plan.
        missed = Instance.missed_deadlines > literal(0, literal_execute=True)
        conditions.append(missed if terms.missed_deadline else ~missed)

    def matching(query: Any) -> Any:
        query = query.join(ProcedureVersion, Instance.version_id == ProcedureVersion.id)
        return query.where(*conditions)

    capped = matching(select(Instance.id)).limit(COUNT_CAP + 1).subquery()
    total = session.scalar(select(func.count()).select_from(capped)) or 0
    page = (
        matching(select(Instance).options(defer(Instance.state)))  # the state is not shown
        .order_by(Instance.started_at.desc(), Instance.id.desc())
        .offset((terms.page - 1) * terms.per_page)
        .limit(terms.per_page)
    )
    return list(session.scalars(page)), total


def events_of(session: Session, instance_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The events of several instances, in order, with `at` as datetimes (for judging)."""
    grouped: dict[int, list[dict[str, Any]]] = {i: [] for i in instance_ids}
    columns = (
        Event.instance_id,
        Event.seq,
        Event.at,
        Event.actor,
        Event.action,
        Event.bpmn_id,
        Event.name,
        Event.data,
    )
    for chunk in range(0, len(instance_ids), 500):
        ids = instance_ids[chunk : chunk + 500]
        query = select(*columns).where(Event.instance_id.in_(ids))
        for row in session.execute(query.order_by(Event.instance_id, Event.seq)):
            grouped[row.instance_id].append(row._asdict())
    return grouped


def deadlines_of(events: list[dict[str, Any]]) -> dict[str, str]:
    """The deadlines a complaint was received under, as its first event recorded them."""
    return dict(events[0]["data"].get("sla", {})) if events else {}


ALERTS = ("deadline.missed", "complaint.urgent", "complaint.major")


def alerts(
    session: Session, roles: frozenset[str] | None, since: datetime, limit: int = 20
) -> list[tuple[Notification, str | None]]:
    """Urgent notices to the roles (all when None), newest first, with the complaint number."""
    query = (
        select(Notification, ComplaintRecord.number)
        .outerjoin(ComplaintRecord, ComplaintRecord.instance_id == Notification.instance_id)
        .where(
            Notification.audience == "role",
            Notification.event.in_(ALERTS),
            Notification.created_at >= since,
        )
    )
    if roles is not None:
        query = query.where(Notification.role.in_(roles))
    query = query.order_by(Notification.created_at.desc()).limit(limit)
    return [(note, number) for note, number in session.execute(query)]


def _addressed_to(username: str, roles: frozenset[str] | None) -> Any:
    """Notifications for a member of staff: to their roles (every role when None), and to them."""
    to_roles = Notification.audience == "role"
    if roles is not None:
        to_roles = and_(to_roles, Notification.role.in_(roles))
    to_them = and_(Notification.audience == "person", Notification.username == username)
    return or_(to_roles, to_them)


@dataclass(frozen=True)
class NotificationRow:
    note: Notification
    number: str | None
    version: ProcedureVersion  # of the complaint, to name the step as its diagram does


def notifications_for(
    session: Session, username: str, roles: frozenset[str] | None, limit: int = 100
) -> list[NotificationRow]:
    """The newest notifications for a member of staff (see `_addressed_to`), newest first."""
    query = (
        select(Notification, ComplaintRecord.number, ProcedureVersion)
        .join(Instance, Instance.id == Notification.instance_id)
        .join(ProcedureVersion, ProcedureVersion.id == Instance.version_id)
        .outerjoin(ComplaintRecord, ComplaintRecord.instance_id == Notification.instance_id)
        .where(_addressed_to(username, roles))
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
    )
    return [NotificationRow(n, number, v) for n, number, v in session.execute(query)]


def unseen_notifications(session: Session, username: str, roles: frozenset[str] | None) -> int:
    """How many notifications came for a member of staff since they last opened the page (since
    their account was made, if never): one statement, for the badge on every page. The two
    counts are apart so that each reads its own index (role or username, then created_at)."""
    seen = (
        select(func.coalesce(User.notifications_seen_at, User.created_at))
        .where(User.username == username)
        .scalar_subquery()
    )

    def count(*conditions: Any) -> Any:
        return (
            select(func.count())
            .select_from(Notification)
            .where(*conditions, Notification.created_at > seen)
            .scalar_subquery()
        )

    to_roles = [Notification.audience == "role"]
    if roles is not None:
        to_roles.append(Notification.role.in_(roles))
    to_them = (Notification.audience == "person", Notification.username == username)
    return int(session.scalar(select(count(*to_roles) + count(*to_them))) or 0)


def mark_notifications_seen(session: Session, username: str, now: datetime) -> datetime:
    """Move the reader's bookmark to `now` (in the caller's write transaction); returns where it
    was, so that the page can mark what is new to them. The one write here: a bookmark, not
    the state of anything."""
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"there is no user called {username}")
    before = user.notifications_seen_at or user.created_at
    user.notifications_seen_at = now
    return before


def outbox_counts(session: Session, subscription_id: int | None = None) -> dict[str, int]:
    """Outbox messages per status (pending, sent, dead, discarded), of one subscription or all."""
    query = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    if subscription_id is not None:
        query = query.where(OutboxMessage.subscription_id == subscription_id)
    return {status: count for status, count in session.execute(query)}


def scheduler_silence(session: Session, now: datetime) -> tuple[bool, datetime | None]:
    """Whether no scheduler runs in the scaled mode — none ever ran, or the last one's lead
    lapsed `SCHEDULER_SILENT_AFTER` ago — and until when the last lead held (None: never)."""
    lead = session.get(Leader, SCHEDULER_JOB)
    until = lead.until if lead is not None else None
    return until is None or until <= now - SCHEDULER_SILENT_AFTER, until


def dead_deliveries(session: Session) -> dict[int, int]:
    """Dead webhook deliveries per subscription: what an admin should look at."""
    query = (
        select(OutboxMessage.subscription_id, func.count())
        .where(OutboxMessage.status == "dead", OutboxMessage.subscription_id.is_not(None))
        .group_by(OutboxMessage.subscription_id)
    )
    return {
        subscription: count
        for subscription, count in session.execute(query)
        if subscription is not None
    }


def complaint_numbers(session: Session, instance_ids: set[int]) -> dict[int, str]:
    """The record numbers of these complaints (those that have one)."""
    if not instance_ids:
        return {}
    query = select(ComplaintRecord.instance_id, ComplaintRecord.number).where(
        ComplaintRecord.instance_id.in_(instance_ids)
    )
    return {instance_id: number for instance_id, number in session.execute(query)}
