"""Pages for staff. Each checks who may act, then calls the engine; the engine's refusals come
back as messages on the page, never as an error page."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_required, login_user, logout_user

from ..accounts import AccountLocked
from ..app import services
from ..engine import queries
from ..errors import Conflict, InvalidData, NotFound, Unauthorized
from ..models import Attachment
from ..web import SignedIn, i18n, person
from ..web.files import send_attachment
from ..web.formfields import fields_for, read
from ..web.links import status_url
from ..web.searching import search_of_page
from ..web.submit import translated_problems, uploaded_files
from ..web.timeline import staff_lines
from . import bp


@bp.get("/desk")
def home() -> ResponseReturnValue:
    return redirect(url_for("staff.inbox"))


# Where sign-in may lead on: a path on this site. Printable ASCII only, as browsers drop tabs and
# newlines ("/\t/evil.example" becomes "//evil.example"), and no second slash or backslash at
# the start, which would name another host.
_LOCAL_PATH = re.compile(r"/(?![/\\])[!-~]*")


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> ResponseReturnValue:
    username = request.form.get("username", "").strip()
    if request.method == "POST":
        try:
            who = services().accounts.authenticate(username, request.form.get("password", ""))
        except AccountLocked as locked:
            flash(
                _(
                    "Too many failed sign-ins: this account is locked. Try again in %(minutes)s"
                    " minutes.",
                    minutes=locked.minutes,
                ),
                "error",
            )
        except Unauthorized:
            flash(_("Wrong username or password."), "error")
        else:
            login_user(SignedIn(who))
            target = request.args.get("next", "")
            return redirect(target if _LOCAL_PATH.fullmatch(target) else url_for("staff.inbox"))
    return render_template(
        "staff/signin.html", username=username
    ), 200 if request.method == "GET" else 401


@bp.post("/signout")
@login_required
def signout() -> ResponseReturnValue:
    logout_user()
    flash(_("You are signed out."), "info")
    return redirect(url_for("staff.signin"))


def _roles() -> frozenset[str] | None:
    return None if person().is_admin else person().roles


def _diagrams_where(allowed: Callable[[frozenset[str]], bool]) -> dict[str, Any]:
    """The procedures in effect, by key, whose roles (lanes) pass `allowed`."""
    return {
        key: d
        for key, d in services().engine.current_diagrams().items()
        if allowed(frozenset(lane.key for lane in d.lanes))
    }


@bp.get("/inbox")
@login_required
def inbox() -> ResponseReturnValue:
    procedure = request.args.get("procedure") or None
    view = request.args.get("show", "all")
    if view not in queries.INBOX_VIEWS:
        view = "all"
    now = datetime.now(UTC)
    with services().store.read() as session:
        rows = queries.inbox(session, _roles(), person().username, now, procedure, view)
        counts = queries.ready_counts(session, _roles())
        alerts = queries.alerts(session, _roles(), now - timedelta(days=7))
    diagrams = _diagrams_where(person().may_use)
    lanes = {lane.key: lane for d in diagrams.values() for lane in d.lanes}
    context = dict(
        alerts=alerts,
        rows=rows,
        counts=counts,
        count_cap=queries.COUNT_CAP,
        lanes=lanes,
        diagrams=diagrams,
        now=now,
        procedure=procedure,
        view=view,
        views=queries.INBOX_VIEWS,
        role_name=i18n.role_name,
        procedure_name=i18n.procedure_name,
    )
    if request.args.get("partial"):
        return render_template("staff/_inbox_table.html", **context)
    return render_template("staff/inbox.html", **context)


def _task_or_404(task_id: str) -> Any:
    with services().store.read() as session:
        try:
            task = queries.get_task(session, task_id)
        except NotFound:
            abort(404)
        task.instance  # noqa: B018  (loaded while the session is open, its record with it)
    if not person().may_work(task.role):
        abort(403)
    return task


@bp.post("/tasks/<task_id>/claim")
@login_required
def claim(task_id: str) -> ResponseReturnValue:
    _task_or_404(task_id)
    release = request.form.get("release") == "1"
    try:
        # An admin may give back a task someone else took (who may be away).
        services().engine.claim(
            task_id, person().username, release=release, for_anyone=release and person().is_admin
        )
    except Conflict:
        flash(_("Someone else took or completed this task meanwhile."), "warning")
    return redirect(request.form.get("back") or url_for("staff.inbox"))


@bp.route("/tasks/<task_id>", methods=["GET", "POST"])
@login_required
def task(task_id: str) -> ResponseReturnValue:
    row = _task_or_404(task_id)
    engine = services().engine
    diagram = engine.diagram(row.instance.version)
    spec = diagram.spec.task_specs[row.bpmn_id]
    form = diagram.form_of(spec)
    values: dict[str, Any] = {}
    problems: dict[str, list[str]] = {}
    status = 200
    if row.state != "ready" or row.assignee not in (None, person().username):
        return _not_yours(row, submitted=request.method == "POST")
    if request.method == "POST":
        values = read(form, request.form, g.zone)
        try:
            files = (
                services().attachments.save(uploaded_files()) if form.get("x-attachments") else []
            )
            done = engine.complete(task_id, values, person().username, files)
        except InvalidData as invalid:
            problems, status = translated_problems(invalid), 422
            flash(_("Some fields need your attention."), "error")
        except Conflict:
            with services().store.read() as session:
                return _not_yours(queries.get_task(session, task_id), submitted=True)
        else:
            return _after_step(done["id"])
    return render_template(
        "staff/task.html",
        task=row,
        form=form,
        fields=fields_for(form, values, problems, g.zone),
        problems=problems,
        instructions=i18n.instructions(form),
        **_complaint_context(row.instance_id),
    ), status


def _not_yours(row: Any, submitted: bool) -> ResponseReturnValue:
    """The task is no longer this person's to do: say why, plainly, and show the complaint
    as it now stands."""
    lost = " " + _("Your entries were not saved.") if submitted else ""
    if row.state == "completed":
        message = _("This task was completed by %(who)s.", who=row.completed_by or "?")
    elif row.state == "cancelled":
        message = _(
            "This task was withdrawn: its deadline passed and the complaint moved on,"
            " or it was cancelled."
        )
    else:
        message = _("This task is taken by %(who)s.", who=row.assignee or "?")
    flash(message + lost, "warning")
    return redirect(url_for("staff.complaint", instance_id=row.instance_id))


def _after_step(instance_id: int, recorded: bool = False) -> ResponseReturnValue:
    """Say what happens next; then back to the inbox, or, for a complaint just recorded, to
    its page (with the link to give the complainant)."""
    with services().store.read() as session:
        instance = queries.get_instance(session, instance_id)
        upcoming = queries.ready_tasks_of(session, instance_id)
    number = instance.record.number if instance.record else f"#{instance_id}"
    diagram = services().engine.diagram(instance.version)
    lanes = {lane.key: lane for lane in diagram.lanes}
    if instance.status == "completed":
        flash(_("Saved. Complaint %(number)s is closed.", number=number), "success")
    elif upcoming:
        steps = "; ".join(
            f"{i18n.chinese(t.name)} ({i18n.role_name(lanes[t.role])})"
            for t in upcoming
            if t.role in lanes
        )
        flash(
            _("Saved. Complaint %(number)s goes on to: %(steps)s", number=number, steps=steps),
            "success",
        )
    else:
        flash(
            _(
                "Saved. Complaint %(number)s is waiting for a deadline or another step.",
                number=number,
            ),
            "success",
        )
    if recorded:
        return redirect(url_for("staff.complaint", instance_id=instance_id))
    return redirect(url_for("staff.inbox"))


@bp.get("/start")
@login_required
def start_choose() -> ResponseReturnValue:
    diagrams = _diagrams_where(person().may_use)
    return render_template(
        "staff/start_choose.html", diagrams=diagrams, procedure_name=i18n.procedure_name
    )


@bp.route("/start/<key>", methods=["GET", "POST"])
@login_required
def start(key: str) -> ResponseReturnValue:
    diagram = services().engine.current_diagrams().get(key) or abort(404)
    if not person().may_use(frozenset(lane.key for lane in diagram.lanes)):
        abort(403)
    form = diagram.intake_form
    values: dict[str, Any] = {}
    problems: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        values = read(form, request.form, g.zone)
        try:
            files = services().attachments.save(uploaded_files())
            instance_id = services().engine.start(key, values, person().username, files)
        except InvalidData as invalid:
            problems, status = translated_problems(invalid), 422
            flash(_("Some fields need your attention."), "error")
        else:
            return _after_step(instance_id, recorded=True)
    return render_template(
        "staff/start.html",
        diagram=diagram,
        form=form,
        key=key,
        fields=fields_for(form, values, problems, g.zone),
        problems=problems,
        instructions=i18n.instructions(form),
        procedure_name=i18n.procedure_name,
    ), status


def _complaint_context(instance_id: int) -> dict[str, Any]:
    with services().store.read() as session:
        instance = queries.get_instance(session, instance_id)
        diagram = services().engine.diagram(instance.version)
        events = queries.history(session, instance_id)
        tasks = [t for t in queries.ready_tasks_of(session, instance_id)]
        files = queries.attachments_of(session, instance_id)
    return dict(
        instance=instance,
        record=instance.record,
        timeline=staff_lines(diagram, events),
        open_tasks=tasks,
        files=files,
        status_link=status_url(instance_id),
        procedure_name=i18n.procedure_name(diagram),
        diagram=diagram,
        lanes={lane.key: lane for lane in diagram.lanes},
        role_name=i18n.role_name,
    )


@bp.get("/complaints/<int:instance_id>")
@login_required
def complaint(instance_id: int) -> ResponseReturnValue:
    with services().store.read() as session:
        try:
            instance = queries.get_instance(session, instance_id)
        except NotFound:
            abort(404)
        roles = queries.procedure_roles(session, instance.version.procedure_key)
    if not person().may_view(roles):
        abort(403)
    return render_template("staff/complaint.html", **_complaint_context(instance_id))


@bp.get("/attachments/<attachment_id>")
@login_required
def attachment(attachment_id: str) -> ResponseReturnValue:
    with services().store.read() as session:
        found = session.get(Attachment, attachment_id) or abort(404)
        instance = queries.get_instance(session, found.instance_id)
        roles = queries.procedure_roles(session, instance.version.procedure_key)
    if not person().may_view(roles):
        abort(403)
    return send_attachment(found)


@bp.get("/complaints")
@login_required
def complaints() -> ResponseReturnValue:
    """Complaints of the procedures one works in, newest first, to find one by number or name."""
    diagrams = _diagrams_where(person().may_view)
    terms, error = search_of_page(request.args, g.zone)
    terms = replace(terms, procedures=tuple(diagrams))
    with services().store.read() as session:
        found, total = queries.search(session, terms)
        rows = [(i, i.record) for i in found]
    return render_template(
        "staff/complaints.html",
        rows=rows,
        total=total,
        count_cap=queries.COUNT_CAP,
        terms=terms,
        error=error,
        diagrams=diagrams,
        procedure_name=i18n.procedure_name,
    ), (400 if error else 200)
