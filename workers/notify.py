"""Telling people: the next role, the complainant, and a higher role when a deadline passes.

Each call writes, in the step's transaction, the in-app notification and the outbox messages
(email; SMS too for what cannot wait) that the dispatcher delivers afterwards, so a notification
exists exactly when the step that decided on it does. See complaintflow/notices.py for how
people and their addresses are found.
"""

from __future__ import annotations

from typing import Any

from complaintflow import notices
from complaintflow.handlers import HandlerContext, Param, registry

EVENTS = "complaint.new, complaint.urgent, complaint.major, complaint.in_progress, complaint.result"


@registry.register(
    "notify.role",
    Param("role", "str", "the role key to tell, e.g. 'technician'"),
    Param("event", "str", f"what happened, one of: {EVENTS}"),
)
def notify_role(ctx: HandlerContext, role: str, event: str) -> dict[str, Any]:
    """Tell everyone holding a role that a complaint needs them (A-4.2, B-2.4, C-4.4): in the
    app, by email, and by SMS for urgent and major complaints."""
    notices.to_role(ctx.occasion, role, event, step=ctx.bpmn_id)
    return {"notified": role}


@registry.register(
    "notify.complainant",
    Param("event", "str", "what to tell, e.g. 'complaint.in_progress', 'complaint.result'"),
)
def notify_complainant(ctx: HandlerContext, event: str) -> dict[str, Any]:
    """Tell the complainant where the complaint stands (B-3.11, C-4.3), on the status page and,
    when they left an email address or a phone number, by email or SMS in their language."""
    notices.to_complainant(ctx.occasion, event, step=ctx.bpmn_id)
    return {"notified": "complainant"}


@registry.register(
    "escalate",
    Param("role", "str", "the higher role to alert, e.g. 'engineering_supervisor'"),
    Param("timer", "str", "the name of the deadline that passed, e.g. 'technician_contact'"),
)
def escalate(ctx: HandlerContext, role: str, timer: str) -> dict[str, Any]:
    """Alert a higher role that a deadline passed (in the app, by email and SMS), count it on
    the record, and add an `escalated` event to the history. Called from a timer's escalation
    path."""
    notices.to_role(ctx.occasion, role, "deadline.missed", step=ctx.bpmn_id, timer=timer)
    if ctx.instance.record is not None:
        ctx.instance.record.escalations += 1
    ctx.log("escalated", role=role, timer=timer)
    return {"escalated_to": role, "timer": timer}
