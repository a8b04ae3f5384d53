"""One complaint as an auditor sees it: facts, history, path on the diagram, verdicts against
the written procedure; and the same as an export that can be handed on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import abort

from .. import compliance
from ..app import services
from ..engine import queries
from ..errors import NotFound
from ..paths import changes, path


def _instance(instance_id: int) -> Any:
    with services().store.read() as session:
        try:
            instance = queries.get_instance(session, instance_id)
        except NotFound:
            abort(404)
        return instance


def trail_of(instance_id: int) -> dict[str, Any]:
    """Everything an auditor sees of one complaint, computed once for page and export."""
    instance = _instance(instance_id)
    engine = services().engine
    diagram = engine.diagram(instance.version)
    with services().store.read() as session:
        events = queries.events_of(session, [instance_id])[instance_id]
        history = queries.history(session, instance_id)
        ready = {t.bpmn_id for t in queries.ready_tasks_of(session, instance_id)}
        files = queries.attachments_of(session, instance_id)
    clauses = compliance.clauses_for(services().settings.bpmn_dir, diagram.key)
    verdicts = compliance.judge(
        clauses,
        events,
        queries.deadlines_of(events),
        instance.status in ("completed", "cancelled"),
        datetime.now(UTC),
    )
    return dict(
        instance=instance,
        record=instance.record,
        diagram=diagram,
        events=events,
        history=history,
        files=files,
        verdicts=verdicts,
        path=path(diagram.xml, events, ready),
        changes=changes(events),
        data=engine.instance_data(instance),
    )


def export(trail: dict[str, Any]) -> dict[str, Any]:
    """One complaint as JSON: history, data, record, verdicts, and the diagram with its path."""
    instance = trail["instance"]
    return {
        "instance": queries.instance_summary(instance),
        "record": _record(trail["record"]),
        "data": trail["data"],
        "history": trail["history"],
        "compliance": [
            {
                "clause": v.clause,
                "status": v.status,
                "checks": [
                    {"check": c.en, "status": s, "evidence": _plain(e)} for c, s, e in v.checks
                ],
            }
            for v in trail["verdicts"]
        ],
        "path": trail["path"].as_dict(),
        "diagram": {
            "procedure": instance.version.procedure_key,
            "version": instance.version.version,
            "sha256": instance.version.sha256,
            "bpmn": trail["diagram"].xml,
        },
        "attachments": [
            {
                "id": f.id,
                "filename": f.filename,
                "media_type": f.media_type,
                "size": f.size,
                "sha256": f.sha256,
                "uploaded_by": f.uploaded_by,
                "uploaded_at": f.uploaded_at.isoformat(),
            }
            for f in trail["files"]
        ],
    }


def _record(record: Any) -> dict[str, Any] | None:
    if record is None:
        return None
    names = (
        "number",
        "complainant",
        "contact",
        "channel",
        "category",
        "place",
        "description",
        "received_at",
        "recorded_by",
        "handler",
        "result",
        "satisfaction",
        "review",
        "reviewed_by",
        "status",
        "escalations",
        "resolved_at",
        "archived_at",
    )
    return {name: _plain(getattr(record, name)) for name in names}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
