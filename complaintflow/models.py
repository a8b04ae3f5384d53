"""The tables, typed. Invariants live in the database: unique numbers, one record per instance,
history that is only ever appended to (triggers in the migrations), records never deleted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


JSONData = JSON().with_variant(JSONB(), "postgresql")

# The largest id or version number a row can have: they are 32-bit integer columns. A larger
# number from outside names no row, and the database would refuse it as a parameter.
MAX_INTEGER = 2**31 - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSONData,
    }


class Procedure(Base):
    __tablename__ = "procedures"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    number_prefix: Mapped[str] = mapped_column(String(8), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[ProcedureVersion]] = relationship(
        back_populates="procedure", order_by="ProcedureVersion.version"
    )


class ProcedureVersion(Base):
    """One deployed diagram, immutable: its BPMN and the forms it names, stored once, with its
    document control (A-doc): prepared (編制) by whoever deployed it, reviewed (審核) and
    approved (批准) by two other people, in effect from its effective date (生效日期)."""

    __tablename__ = "procedure_versions"
    __table_args__ = (UniqueConstraint("procedure_key", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    procedure_key: Mapped[str] = mapped_column(ForeignKey("procedures.key"))
    version: Mapped[int] = mapped_column(Integer)
    # Large, and needed once per process (the engine keeps the compiled diagram): not loaded
    # with every instance that refers to the version.
    bpmn_xml: Mapped[str] = mapped_column(Text, deferred=True)
    forms: Mapped[dict[str, Any]] = mapped_column(deferred=True)  # form path -> JSON Schema
    sha256: Mapped[str] = mapped_column(String(64))
    deployed_at: Mapped[datetime] = mapped_column(default=utcnow)  # prepared at
    deployed_by: Mapped[str] = mapped_column(String(100))  # prepared by (編制)
    # draft → reviewed → approved; or rejected at either sign-off.
    status: Mapped[str] = mapped_column(String(16), default="draft", server_default="draft")
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None] = mapped_column()
    review_comment: Mapped[str | None] = mapped_column(Text)
    approved_by: Mapped[str | None] = mapped_column(String(100))
    approved_at: Mapped[datetime | None] = mapped_column()
    approval_comment: Mapped[str | None] = mapped_column(Text)
    effective_from: Mapped[datetime | None] = mapped_column()

    procedure: Mapped[Procedure] = relationship(back_populates="versions")


class Role(Base):
    __tablename__ = "roles"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(500), default="")
    # NULL for roles of the product itself (admin); otherwise the lane's procedure.
    procedure_key: Mapped[str | None] = mapped_column(ForeignKey("procedures.key"))


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    # How notifications reach the person, and in which language (en, zh_Hans, zh_Hant).
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50))
    locale: Mapped[str] = mapped_column(String(10), default="en", server_default="en")
    # Notifications newer than this are shown as new.
    notifications_seen_at: Mapped[datetime | None] = mapped_column()
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Sign-in failures since the last success; past a limit the account waits until locked_until.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column()

    # Read when first used, in the session: a notice or a bookmark needs none of them; what
    # reads many users' roles, or uses them after the session, asks for them (selectinload).
    roles: Mapped[list[UserRole]] = relationship(cascade="all, delete-orphan")

    @property
    def role_keys(self) -> frozenset[str]:
        return frozenset(r.role_key for r in self.roles)


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role_key: Mapped[str] = mapped_column(ForeignKey("roles.key"), primary_key=True)


class Instance(Base):
    """A running or finished complaint: its workflow state as one JSON document, without the
    spec (that is stored once per version). `lock_version` serialises writers; `head_*` is the
    end of its history chain."""

    __tablename__ = "instances"
    __table_args__ = (
        Index("ix_instances_due_timer", "next_timer_at"),
        Index("ix_instances_started", "started_at"),
        # "Missed a deadline" (a tenth of complaints), newest first: a page and its count read
        # these entries instead of fetching every newer complaint to test the column.
        Index(
            "ix_instances_missed_started",
            "started_at",
            "id",
            postgresql_where=text("missed_deadlines > 0"),
            sqlite_where=text("missed_deadlines > 0"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("procedure_versions.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)
    state: Mapped[str] = mapped_column(Text)
    serializer_version: Mapped[str] = mapped_column(String(16))
    lock_version: Mapped[int] = mapped_column(Integer, default=1)
    next_timer_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column()
    head_seq: Mapped[int] = mapped_column(Integer, default=0)
    head_hash: Mapped[str] = mapped_column(String(64), default="")
    # Timers that fired (deadlines passed), kept for searching "missed a deadline".
    missed_deadlines: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The language the complainant used (messages to them are written in it).
    language: Mapped[str] = mapped_column(String(10), default="zh_Hant", server_default="zh_Hant")

    version: Mapped[ProcedureVersion] = relationship(lazy="joined")
    record: Mapped[ComplaintRecord | None] = relationship(
        back_populates="instance", uselist=False, lazy="joined"
    )


class Task(Base):
    """A human task as the inbox sees it, kept in step with the workflow state on every save."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_inbox", "state", "role", "due_at"),
        Index("ix_tasks_role_instance", "role", "instance_id"),
        # The inbox's order, over ready tasks only: the first page of any set of roles is read
        # off the index instead of sorting every ready task (a million complaints hold 200,000).
        Index(
            "ix_tasks_ready_due",
            "due_at",
            "created_at",
            postgresql_where=text("state = 'ready'"),
            sqlite_where=text("state = 'ready'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # SpiffWorkflow task id
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), index=True)
    bpmn_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="ready")
    assignee: Mapped[str | None] = mapped_column(String(100))
    due_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column()
    completed_by: Mapped[str | None] = mapped_column(String(100))
    warned_at: Mapped[datetime | None] = mapped_column()  # told its deadline is near

    instance: Mapped[Instance] = relationship()


class Event(Base):
    """One line of an instance's history, chained to the one before it by hash."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("instance_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    bpmn_id: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ComplaintRecord(Base):
    """The 《用戶投訴記錄》: written by the record-keeping handlers, never deleted."""

    __tablename__ = "complaint_records"
    __table_args__ = (Index("ix_complaint_records_complainant", "complainant"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    procedure_key: Mapped[str] = mapped_column(ForeignKey("procedures.key"))
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), unique=True)
    complainant: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(50))
    category: Mapped[str | None] = mapped_column(String(100))
    place: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column()
    recorded_by: Mapped[str] = mapped_column(String(100))
    handler: Mapped[str | None] = mapped_column(String(100))
    result: Mapped[str | None] = mapped_column(Text)
    satisfaction: Mapped[str | None] = mapped_column(String(50))
    review: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="open")
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column()
    archived_at: Mapped[datetime | None] = mapped_column()

    instance: Mapped[Instance] = relationship(back_populates="record")


class NumberSequence(Base):
    """The last complaint number given out per prefix and year."""

    __tablename__ = "number_sequences"

    prefix: Mapped[str] = mapped_column(String(8), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer)


class Notification(Base):
    """A message for the people of a role or for the complainant, shown in the app."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_role", "role", "created_at"),
        Index("ix_notifications_username", "username", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), index=True)
    audience: Mapped[str] = mapped_column(String(16))  # "role", "person" or "complainant"
    role: Mapped[str | None] = mapped_column(String(64))
    username: Mapped[str | None] = mapped_column(String(100))  # the person, for "person"
    event: Mapped[str] = mapped_column(String(64))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attachment(Base):
    """A photo or file attached to a complaint. The bytes live under $COMPLAINTFLOW_HOME by
    content hash; the random id is what links carry, so no path can be guessed."""

    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), index=True)
    task_id: Mapped[str | None] = mapped_column(String(36))
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str] = mapped_column(String(100))
    # Complainants see only what they uploaded themselves.
    by_complainant: Mapped[bool] = mapped_column(Boolean, default=False)
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """An act outside any one complaint (a deploy, a user created), in one hash chain."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """Where the audit log's chain ends (one row), so removing its newest entries shows."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class OutboxMessage(Base):
    """A side effect a step decided on (an email, an SMS, a webhook call), written in the step's
    transaction and delivered afterwards by the dispatcher, at least once, carrying its key so
    that the receiving end can drop a repeat."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # the idempotency key
    channel: Mapped[str] = mapped_column(String(16))  # email, sms, webhook
    event: Mapped[str] = mapped_column(String(64))
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_subscriptions.id"), index=True
    )
    recipient: Mapped[str] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # sent, dead, discarded
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()


class WebhookSubscription(Base):
    """Another system that wants to hear of events (complaint.created, task.ready, …)."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(200))
    events: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"types": [...]}
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Deleted for good (kept for its delivery log): never active again, nothing retried.
    deleted_at: Mapped[datetime | None] = mapped_column()


class WebhookSource(Base):
    """A system allowed to file complaints through the intake webhook, with its secret; after a
    rotation the previous secret stays valid too, until the next rotation."""

    __tablename__ = "webhook_sources"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    secret: Mapped[str] = mapped_column(String(200))
    previous_secret: Mapped[str | None] = mapped_column(String(200))
    rotated_at: Mapped[datetime] = mapped_column(default=utcnow)


class IntakeRequest(Base):
    """An intake webhook call by its Idempotency-Key: a retry gets the same complaint back."""

    __tablename__ = "intake_requests"
    __table_args__ = (UniqueConstraint("source", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(200))
    body_sha256: Mapped[str] = mapped_column(String(64))
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


SCHEDULER_JOB = "scheduler"  # the `Leader` row of the scaled mode's scheduler


class Leader(Base):
    """Who does a job only one process should do at a time (the scaled mode's scheduler), and
    until when: its holder renews it every round; once it lapses (the holder killed, its host
    gone) another process takes it over."""

    __tablename__ = "leaders"

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    until: Mapped[datetime] = mapped_column()
