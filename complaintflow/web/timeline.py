"""A complaint's history in plain words: for staff every step with what was entered, for the
complainant only where the complaint stands (B-3.11), never notes or names of staff."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _

from ..diagrams import CompiledDiagram
from . import i18n


@dataclass
class Line:
    at: str
    actor: str
    text: str
    kind: str  # css hint: step, auto, timer, warn, done
    entries: list[tuple[str, str]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)


def _role(diagram: CompiledDiagram, key: str | None) -> str:
    lane = next((lane for lane in diagram.lanes if lane.key == key), None)
    return i18n.role_name(lane) if lane else (key or "")


def _entries(
    diagram: CompiledDiagram, bpmn_id: str | None, data: dict[str, Any]
) -> list[tuple[str, str]]:
    """Submitted fields with their labels, choices with their names."""
    spec = diagram.spec.task_specs.get(bpmn_id or "")
    form = diagram.form_of(spec) if spec is not None else {}
    properties = form.get("properties", {})
    entries = []
    for name, value in data.items():
        if name in ("attachments", "sla"):
            continue
        field_spec = properties.get(name, {})
        label = i18n.schema_text(field_spec) if field_spec else name
        if "enum" in field_spec:
            shown = i18n.choice_label(field_spec, value)
        elif isinstance(value, bool):
            shown = _("Yes") if value else _("No")
        else:
            shown = str(value)
        entries.append((label, shown))
    return entries


def _service_text(diagram: CompiledDiagram, data: dict[str, Any]) -> str | None:
    operator, params = data.get("operator"), data.get("params", {})
    result = data.get("result") or {}
    if operator == "record.create":
        return _("Recorded as %(number)s", number=result.get("number", ""))
    if operator == "notify.role":
        return _("Notified: %(role)s", role=_role(diagram, params.get("role")))
    if operator == "notify.complainant":
        return _("The complainant was told the complaint is being handled")
    if operator == "record.update":
        return _("The complaint record was updated")
    if operator == "record.archive":
        return _("The complaint record was archived")
    return None  # escalate: its own "escalated" event says it


def actor_name(actor: str) -> str:
    """Who acted, with the product's own actors named in the reader's language."""
    return {
        "complainant": _("Complainant"),
        "system": _("System (deadline)"),
        "cli": _("Administrator (command line)"),
    }.get(actor, actor)


def staff_lines(diagram: CompiledDiagram, events: list[dict[str, Any]]) -> list[Line]:
    lines = []
    for event in events:
        action, data = event["action"], event["data"] or {}
        name = i18n.chinese(event["name"] or "")
        text, kind, entries = None, "auto", []
        if action == "instance.started":
            text, kind = _("Complaint received"), "step"
            entries = _entries(diagram, event["bpmn_id"], data)
        elif action == "task.ready":
            text = _(
                "Waiting for %(role)s: %(task)s", role=_role(diagram, data.get("role")), task=name
            )
        elif action == "task.completed":
            text, kind = _("Done: %(task)s", task=name), "step"
            entries = _entries(diagram, event["bpmn_id"], data)
        elif action == "task.claimed":
            text = _("Taken: %(task)s", task=name)
        elif action == "task.released":
            text = _("Given back: %(task)s", task=name)
        elif action == "task.cancelled":
            text = _("No longer needed: %(task)s", task=name)
        elif action == "service.called":
            text = _service_text(diagram, data)
        elif action == "timer.fired":
            text, kind = _("Deadline passed: %(name)s", name=name), "timer"
        elif action == "escalated":
            text, kind = _("Escalated to %(role)s", role=_role(diagram, data.get("role"))), "warn"
        elif action == "gateway.passed":
            text = _("Decided: %(question)s", question=name) if name else None
        elif action == "instance.completed":
            text, kind = _("Complaint closed"), "done"
        elif action == "instance.cancelled":
            text, kind = _("Cancelled: %(reason)s", reason=data.get("reason", "")), "warn"
        elif action == "instance.retried":
            text = _("Tried again: %(reason)s", reason=data.get("reason", ""))
        elif action == "task.reassigned":
            text = _(
                "Handed to %(who)s: %(reason)s",
                who=data.get("to", ""),
                reason=data.get("reason", ""),
            )
        elif action == "instance.migrated":
            text, kind = (
                _(
                    "Moved from version %(old)s to version %(new)s of the procedure: %(reason)s",
                    old=data.get("from", ""),
                    new=data.get("to", ""),
                    reason=data.get("reason", ""),
                ),
                "warn",
            )
        elif action == "data.corrected":
            text, kind = _("Corrected: %(reason)s", reason=data.get("reason", "")), "warn"
            entries = [
                (k, f"{v.get('from')} → {v.get('to')}") for k, v in data.get("changes", {}).items()
            ]
        elif action in ("service.failed", "task.failed", "instance.errored"):
            text, kind = _("A step failed: %(name)s", name=name), "warn"
        if text:
            lines.append(
                Line(
                    event["at"],
                    actor_name(event["actor"]),
                    text,
                    kind,
                    entries,
                    data.get("attachments", []) if isinstance(data, dict) else [],
                )
            )
    return lines


@dataclass(frozen=True)
class Stage:
    label: str
    at: Any  # when it was reached; None while ahead
    current: bool


def public_stages(instance: Any) -> list[Stage]:
    """Received → being handled → resolved → closed, with when each was reached."""
    record = instance.record
    handled = instance.updated_at if instance.updated_at != instance.started_at else None
    if instance.status == "cancelled":
        steps = [(_("Received"), instance.started_at), (_("Withdrawn"), instance.completed_at)]
    else:
        steps = [
            (_("Received"), instance.started_at),
            (_("Being handled"), handled),
            (_("Resolved"), record.resolved_at if record else None),
            (_("Closed"), instance.completed_at),
        ]
    reached = [i for i, (_label, at) in enumerate(steps) if at is not None]
    last = reached[-1] if reached else 0
    return [Stage(label, at, i == last) for i, (label, at) in enumerate(steps)]
