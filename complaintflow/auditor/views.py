"""Auditor pages. Everything here reads; nothing changes a complaint."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, abort, g, jsonify, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_required

from .. import compliance, reports
from ..app import services
from ..engine import queries
from ..errors import ComplaintflowError
from ..models import ProcedureVersion
from ..web import i18n, person
from ..web.diagram_svg import Mark, legend, render
from ..web.inputs import day
from ..web.searching import search_of_page
from ..web.timeline import staff_lines
from . import bp
from .trail import export, trail_of

MARKS = ("done", "taken", "current", "escalated")


@bp.before_request
@login_required
def _auditors_only() -> None:
    if not person().is_auditor:
        abort(403)


@bp.get("/complaints")
def search() -> ResponseReturnValue:
    terms, error = search_of_page(request.args, g.zone)
    with services().store.read() as session:
        found, total = queries.search(session, terms)
        rows = [
            queries.instance_summary(i)
            | {
                "complainant": i.record.complainant if i.record else "",
                "missed": i.missed_deadlines,
            }
            for i in found
        ]
    pages = max(1, -(-total // terms.per_page))

    def page_url(page: int) -> str:
        params: dict[str, Any] = {**request.args.to_dict(), "page": page}
        return url_for("auditor.search", **params)

    return render_template(
        "auditor/search.html",
        page_url=page_url,
        rows=rows,
        total=total,
        count_cap=queries.COUNT_CAP,
        terms=terms,
        pages=pages,
        error=error,
        diagrams=services().engine.current_diagrams(),
        procedure_name=i18n.procedure_name,
        args=request.args,
    ), (400 if error else 200)


@bp.get("/complaints/<int:instance_id>")
def trace(instance_id: int) -> ResponseReturnValue:
    trail = trail_of(instance_id)
    marks = {}
    for kind in MARKS:  # later kinds win: current over done, escalated over all
        for element in getattr(trail["path"], kind):
            marks[element] = Mark(kind)
    svg = render(trail["diagram"].xml, marks, label=i18n.procedure_name(trail["diagram"]))
    return render_template(
        "auditor/trace.html",
        **trail,
        svg=svg,
        legend=legend(MARKS, _mark_names()),
        timeline=staff_lines(trail["diagram"], trail["history"]),
        procedure_name=i18n.procedure_name(trail["diagram"]),
    )


def _mark_names() -> dict[str, str]:
    return {
        "done": _("Done"),
        "taken": _("Path taken"),
        "current": _("Waiting now"),
        "escalated": _("Deadline passed / escalated"),
        "heat": _("Complaints passing"),
    }


@bp.get("/complaints/<int:instance_id>/export.json")
def export_json(instance_id: int) -> ResponseReturnValue:
    trail = trail_of(instance_id)
    response = jsonify(export(trail))
    number = trail["record"].number if trail["record"] else str(instance_id)
    response.headers["Content-Disposition"] = f'attachment; filename="{number}.json"'
    return response


@bp.get("/complaints/<int:instance_id>/print")
def printable(instance_id: int) -> ResponseReturnValue:
    trail = trail_of(instance_id)
    marks = {
        e: Mark("taken" if e in trail["path"].taken else "done")
        for e in trail["path"].done | trail["path"].taken
    }
    return render_template(
        "auditor/print.html",
        **trail,
        svg=render(trail["diagram"].xml, marks),
        timeline=staff_lines(trail["diagram"], trail["history"]),
        procedure_name=i18n.procedure_name(trail["diagram"]),
    )


def _period(zone: ZoneInfo) -> tuple[datetime, datetime, str, str]:
    """The report's period from ?from=YYYY-MM-DD&to=YYYY-MM-DD (inclusive), default the last
    30 days, as UTC bounds in the site's zone."""
    today = datetime.now(zone).date()
    try:
        first = day(request.args.get("from") or str(today - timedelta(days=29)), "from")
        last = day(request.args.get("to") or str(today), "to")
    except ComplaintflowError:
        abort(400)
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end, first.isoformat(), last.isoformat()


def _chosen_procedure() -> tuple[dict[str, Any], str]:
    """The procedures in effect, and the key of the one asked for (the first by default)."""
    diagrams = services().engine.current_diagrams()
    key = request.args.get("procedure") or next(iter(diagrams), "")
    if key not in diagrams:
        abort(404)
    return diagrams, key


@bp.get("/reports")
def report_page() -> ResponseReturnValue:
    diagrams, key = _chosen_procedure()
    start, end, first, last = _period(g.zone)
    with services().store.read() as session:
        report = reports.build(
            session, services().settings.bpmn_dir, key, start, end, datetime.now(UTC)
        )
    if request.args.get("format") == "csv":
        return Response(
            reports.to_csv(report),
            mimetype="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="report-{key}-{first}-{last}.csv"'
            },
        )
    clauses = compliance.clauses_for(services().settings.bpmn_dir, key)
    return render_template(
        "auditor/report.html",
        category_name=lambda code: i18n.code_name(diagrams[key], code),
        report=report,
        key=key,
        first=first,
        last=last,
        diagrams=diagrams,
        clauses=clauses,
        procedure_name=i18n.procedure_name,
    )


@bp.get("/heatmap")
def heatmap() -> ResponseReturnValue:
    diagrams, key = _chosen_procedure()
    start, end, first, last = _period(g.zone)
    with services().store.read() as session:
        versions = (
            session.query(ProcedureVersion)
            .filter_by(procedure_key=key)
            .order_by(ProcedureVersion.version.desc())
            .all()
        )
        chosen = next(
            (v for v in versions if str(v.version) == request.args.get("version")), versions[0]
        )
        heat = reports.heat(session, chosen.id, start, end)
    most = max(heat["passed"].values(), default=0)
    marks = {}
    for element, count in heat["passed"].items():
        wait = heat["wait"].get(element)
        badge = f"{count}" + (f" · {_short(wait)}" if wait is not None else "")
        marks[element] = Mark(
            f"heat-{min(5, round(5 * count / most))}" if most else "heat-0", badge=badge
        )
    return render_template(
        "auditor/heatmap.html",
        svg=render(services().engine.diagram(chosen).xml, marks),
        heat=heat,
        key=key,
        versions=versions,
        chosen=chosen,
        first=first,
        last=last,
        diagrams=diagrams,
        procedure_name=i18n.procedure_name,
    )


def _short(span: timedelta) -> str:
    minutes = span.total_seconds() / 60
    if minutes < 90:
        return f"{minutes:.0f}m"
    return f"{minutes / 60:.1f}h" if minutes < 48 * 60 else f"{minutes / 1440:.1f}d"
