"""Keeping the 《用戶投訴記錄》 (user complaint record): create it, write the result back, archive.

The record is the complaint as people know it: a number, who complained about what, who handled
it and how it ended. It is written only here and never deleted (a database trigger refuses).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert as generic_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from complaintflow.handlers import HandlerContext, HandlerError, Param, registry
from complaintflow.models import ComplaintRecord, NumberSequence

# Fields of the record a diagram may write through record.update.
UPDATABLE_FIELDS = frozenset({"category", "handler", "result", "satisfaction", "review"})


def next_number(session: Session, prefix: str, year: int) -> str:
    """The next complaint number, e.g. A-2026-000123: one counter row per prefix and year,
    incremented in the caller's transaction (so a rolled-back complaint gives its number back)."""
    insert: Any = {"postgresql": pg_insert, "sqlite": sqlite_insert}.get(
        session.get_bind().dialect.name, generic_insert
    )
    stmt = (
        insert(NumberSequence)
        .values(prefix=prefix, year=year, last_value=1)
        .on_conflict_do_update(
            index_elements=["prefix", "year"],
            set_={"last_value": NumberSequence.last_value + 1},
        )
        .returning(NumberSequence.last_value)
    )
    value = session.execute(stmt).scalar_one()
    return f"{prefix}-{year}-{value:06d}"


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


@registry.register(
    "record.create",
    Param(
        "complainant", "str", "who complains (name, or a description such as 'guest at table 5')"
    ),
    Param("description", "str", "what the complaint is about, in the complainant's words"),
    Param("contact", "str", "how to reach the complainant", required=False),
    Param(
        "channel", "str", "how the complaint came in (verbal, written, phone, …)", required=False
    ),
    Param("category", "str", "the kind of complaint", required=False),
    Param("place", "str", "where: building, lift, table, room", required=False),
)
def create(
    ctx: HandlerContext,
    complainant: str,
    description: str,
    contact: str | None = None,
    channel: str | None = None,
    category: str | None = None,
    place: str | None = None,
) -> dict[str, Any]:
    """Create the complaint record and give it its number.

    The first step of every procedure (A-4.1, B-3.1, C-2.1). Returns `{"number", "id"}`, which
    the diagram keeps as `record`.
    """
    if ctx.instance.record is not None:
        raise HandlerError(f"complaint {ctx.instance.record.number} already has its record")
    record = ComplaintRecord(
        number=next_number(ctx.session, ctx.diagram.number_prefix, ctx.now.year),
        procedure_key=ctx.diagram.key,
        instance_id=ctx.instance.id,
        complainant=complainant,
        description=description,
        contact=_text(contact),
        channel=_text(channel),
        category=_text(category),
        place=_text(place),
        received_at=ctx.instance.started_at,
        recorded_by=ctx.actor,
        updated_at=ctx.now,
    )
    ctx.session.add(record)
    ctx.session.flush()
    ctx.instance.record = record
    return {"number": record.number, "id": record.id}


def _record_of(ctx: HandlerContext) -> ComplaintRecord:
    if ctx.instance.record is None:
        raise HandlerError("this complaint has no record yet: record.create must run first")
    return ctx.instance.record


@registry.register(
    "record.update",
    Param("fields", "dict", "the fields to write: " + ", ".join(sorted(UPDATABLE_FIELDS))),
)
def update(ctx: HandlerContext, fields: dict[str, Any]) -> dict[str, Any]:
    """Write the handling back onto the record: result, satisfaction, review (A-4.6, C-5.1).

    Writing `result` marks the complaint resolved; writing `review` notes who reviewed it. The
    person who completed the step before is the handler unless `fields` names one.
    """
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise HandlerError(f"record.update cannot write {', '.join(sorted(unknown))}")
    record = _record_of(ctx)
    for name, value in fields.items():
        setattr(record, name, _text(value))
    if "result" in fields:
        record.status = "resolved"
        record.resolved_at = ctx.now
        record.handler = record.handler if "handler" in fields else ctx.actor
    if "review" in fields:
        record.reviewed_by = ctx.actor
    record.updated_at = ctx.now
    return {"updated": sorted(fields)}


@registry.register("record.archive")
def archive(ctx: HandlerContext) -> dict[str, Any]:
    """Archive the record once handling and review are done (A-4.6 妥善保存, C-5.2 歸檔)."""
    record = _record_of(ctx)
    record.status = "archived"
    record.archived_at = ctx.now
    record.updated_at = ctx.now
    return {"archived": record.number}
