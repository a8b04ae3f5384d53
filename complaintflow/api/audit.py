"""The API for auditors: search, exports, reports."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Response, jsonify, request
from flask.typing import ResponseReturnValue

from .. import reports
from ..app import services
from ..auditor.trail import export, trail_of
from ..engine import queries
from ..errors import Forbidden
from ..web.inputs import day
from ..web.searching import parse_search
from . import bp, person


@bp.get("/instances")
def search_instances() -> ResponseReturnValue:
    """Search for auditors (all procedures) and staff (their procedures)."""
    terms = parse_search(request.args, ZoneInfo(services().settings.timezone))
    who = person()
    with services().store.read() as session:
        if not who.is_auditor:
            allowed = [
                p["key"]
                for p in queries.procedures(services().engine, session)
                if who.may_use(queries.procedure_roles(session, p["key"]))
            ]
            if terms.procedure and terms.procedure not in allowed:
                raise Forbidden(f"none of your roles works in procedure '{terms.procedure}'")
            terms = replace(terms, procedures=tuple(allowed))
        found, total = queries.search(session, terms)
        return jsonify(
            total=min(total, queries.COUNT_CAP),
            total_exact=total <= queries.COUNT_CAP,
            page=terms.page,
            per_page=terms.per_page,
            instances=[
                {
                    **queries.instance_summary(i),
                    "complainant": i.record.complainant if i.record else None,
                    "missed_deadlines": i.missed_deadlines,
                }
                for i in found
            ],
        )


def _auditor() -> None:
    if not person().is_auditor:
        raise Forbidden("only auditors and admins may read exports and reports")


@bp.get("/instances/<int:instance_id>/export")
def export_instance(instance_id: int) -> ResponseReturnValue:
    _auditor()
    return jsonify(export(trail_of(instance_id)))


@bp.get("/reports/<key>")
def report(key: str) -> ResponseReturnValue:
    """A procedure's report for ?from=&to= (dates, inclusive; default the last 30 days);
    ?format=csv for CSV."""
    _auditor()
    zone = ZoneInfo(services().settings.timezone)
    today = datetime.now(zone).date()
    first = day(request.args.get("from") or str(today - timedelta(days=29)), "from")
    last = day(request.args.get("to") or str(today), "to")
    with services().store.read() as session:
        services().engine.current_version(session, key)  # 404 for an unknown procedure
        built = reports.build(
            session,
            services().settings.bpmn_dir,
            key,
            datetime.combine(first, time(), zone).astimezone(UTC),
            datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC),
            datetime.now(UTC),
        )
    if request.args.get("format") == "csv":
        return Response(reports.to_csv(built), mimetype="text/csv")
    return jsonify(reports.as_json(built))
