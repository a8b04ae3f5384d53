"""Telling people: the next role, the complainant, and a higher role when a deadline passes.

Each call writes a notification row in the step's transaction, so a notification exists exactly
when the step that decided on it does.
"""

from __future__ import annotations

from typing import Any

from complaintflow.handlers import HandlerContext, Param, registry
from complaintflow.models import Notification


def _notify(
    ctx: HandlerContext,
    audience: str,
    event: str,
    role: str | None = None,
    urgent: bool = False,
    **data: Any,
) -> Notification:
    record = ctx.instance.record
    note = Notification(
        instance_id=ctx.instance.id,
        audience=audience,
        role=role,
        event=event,
        urgent=urgent,
        data={"number": record.number if record else None, "step": ctx.bpmn_id, **data},
        created_at=ctx.now,
    )
    ctx.session.add(note)
    return note


@registry.register(
    "notify.role",
    Param("role", "str", "the role key to tell, e.g. 'technician'"),
    Param("event", "str", "what happened, e.g. 'complaint.new', 'complaint.urgent'"),
)
def notify_role(ctx: HandlerContext, role: str, event: str) -> dict[str, Any]:
    """Tell everyone holding a role that a complaint needs them (A-4.2, B-2.4, C-4.4)."""
    _notify(ctx, "role", event, role=role, urgent=event in {"complaint.urgent", "complaint.major"})
    return {"notified": role}


@registry.register(
    "notify.complainant",
    Param("event", "str", "what to tell, e.g. 'complaint.in_progress', 'complaint.result'"),
)
def notify_complainant(ctx: HandlerContext, event: str) -> dict[str, Any]:
    """Tell the complainant where the complaint stands (B-3.11): it is being handled."""
    _notify(ctx, "complainant", event)
    return {"notified": "complainant"}


@registry.register(
    "escalate",
    Param("role", "str", "the higher role to alert, e.g. 'engineering_supervisor'"),
    Param("timer", "str", "the name of the deadline that passed, e.g. 'technician_contact'"),
)
def escalate(ctx: HandlerContext, role: str, timer: str) -> dict[str, Any]:
    """Alert a higher role that a deadline passed, and count it on the record.

    Called from a timer's escalation path; the history gets an `escalated` event.
    """
    _notify(ctx, "role", "deadline.missed", role=role, urgent=True, timer=timer)
    if ctx.instance.record is not None:
        ctx.instance.record.escalations += 1
    ctx.log("escalated", role=role, timer=timer)
    return {"escalated_to": role, "timer": timer}
