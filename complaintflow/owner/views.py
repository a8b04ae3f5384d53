"""Process owners' pages: the procedures and their versions, uploading a changed diagram as a
draft, signing it off (review, approval, effective date), comparing versions, and moving running
complaints to a newer version."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_required

from ..app import services
from ..diagram_diff import compare
from ..engine import queries
from ..engine.versions import SYSTEM
from ..errors import ComplaintflowError, Conflict, Forbidden, InvalidDiagram, NotFound
from ..validation import procedure_key_of
from ..web import i18n, person
from ..web.diagram_svg import Mark, legend, render
from ..web.inputs import parse_json, whole_number
from . import bp

MAX_UPLOAD = 5 * 1024 * 1024


@bp.before_request
@login_required
def _owners_only() -> None:
    # Auditors read the versions; only process owners (and admins) change them.
    if not (person().is_process_owner or (person().is_auditor and request.method == "GET")):
        abort(403)


@bp.app_template_global()
def form_path_pattern() -> str:
    """Where an uploaded form is stored, as help texts show it. Passed into their message as a
    value, so that the page escapes its angle brackets (a translated message is taken as
    HTML and would swallow them)."""
    return _("forms/<procedure>/<file name>")


@bp.get("/")
def procedures() -> ResponseReturnValue:
    engine = services().engine
    with services().store.read() as session:
        rows = [
            (row, engine.diagram(row.current or row.versions[0]))
            for row in engine.procedure_rows(session)
        ]
    return render_template(
        "owner/procedures.html",
        rows=rows,
        procedure_name=i18n.procedure_name,
        may_change=person().is_process_owner,
    )


def _versions_of(key: str) -> tuple[Any, list[tuple[Any, int, int]], Any]:
    engine = services().engine
    with services().store.read() as session:
        rows = engine.versions(session, key)
        if not rows:
            abort(404)
        try:
            current = engine.current_version(session, key)
        except NotFound:
            current = None
    return engine.diagram(rows[0][0]), rows, current


@bp.get("/<key>")
def versions(key: str) -> ResponseReturnValue:
    diagram, rows, current = _versions_of(key)
    return render_template(
        "owner/versions.html",
        key=key,
        diagram=diagram,
        rows=rows,
        current=current,
        superseded={v.version for v, _, _ in rows if _superseded(v, current)},
        procedure_name=i18n.procedure_name(diagram),
        may_change=person().is_process_owner,
    )


def _superseded(version: Any, current: Any) -> bool:
    """Approved for a date still to come, but a higher version is already in effect: it will
    never take effect."""
    return bool(
        current is not None
        and version.status == "approved"
        and version.version < current.version
        and version.effective_from > datetime.now(UTC)
    )


@bp.get("/<key>/v<int:number>")
def version(key: str, number: int) -> ResponseReturnValue:
    return _version_page(key, number, {})


def _version_page(
    key: str, number: int, typed: dict[str, str], status: int = 200
) -> ResponseReturnValue:
    """A version's page; after a refused sign-off or withdrawal, with what was typed kept."""
    engine = services().engine
    with services().store.read() as session:
        try:
            found = engine.version(session, key, number)
        except NotFound:
            abort(404)
        withdrawal = (
            engine.withdrawal(session, key, number) if found.status == "withdrawn" else None
        )
    diagram = engine.diagram(found)
    return render_template(
        "owner/version.html",
        key=key,
        v=found,
        review_comment=_comment(found.reviewed_by, found.review_comment),
        approval_comment=_comment(found.approved_by, found.approval_comment),
        diagram=diagram,
        svg=render(diagram.xml, label=i18n.procedure_name(diagram)),
        procedure_name=i18n.procedure_name(diagram),
        may_sign=person().is_process_owner,
        may_withdraw=found.status == "approved"
        and found.effective_from is not None
        and found.effective_from > datetime.now(UTC),
        withdrawal=withdrawal,
        typed=typed,
    ), status


def _comment(by: str | None, comment: str | None) -> str | None:
    """A sign-off's comment as written; the system's own (`bootstrap.BUNDLED`) in the reader's
    language."""
    return _(comment) if by == SYSTEM and comment else comment


def _refusal_status(exc: ComplaintflowError) -> int:
    return 403 if isinstance(exc, Forbidden) else 409 if isinstance(exc, Conflict) else 422


@bp.get("/<key>/v<int:number>.bpmn")
def download(key: str, number: int) -> ResponseReturnValue:
    with services().store.read() as session:
        try:
            xml = services().engine.version(session, key, number).bpmn_xml
        except NotFound:
            abort(404)
    return Response(
        xml,
        mimetype="application/xml",
        headers={"Content-Disposition": f'attachment; filename="{key}-v{number}.bpmn"'},
    )


@bp.post("/<key>/v<int:number>/<stage>")
def sign(key: str, number: int, stage: str) -> ResponseReturnValue:
    """審核 (review) or 批准 (approve), accepting or rejecting, with a comment."""
    if stage not in ("review", "approve"):
        abort(404)
    comment = request.form.get("comment", "").strip()
    accept = request.form.get("decision") != "reject"
    try:
        if not comment:
            raise ComplaintflowError(_("Write a comment: it is part of the document control."))
        if stage == "review":
            services().engine.review(key, number, person().username, accept, comment)
        else:
            services().engine.approve(
                key,
                number,
                person().username,
                accept,
                comment,
                _effective(request.form.get("effective_from", "")),
            )
    except ComplaintflowError as exc:  # not allowed for this person, or not in this state
        flash(exc.message, "error")
        typed = {k: request.form.get(k, "") for k in ("comment", "effective_from")}
        return _version_page(key, number, typed, _refusal_status(exc))
    flash(_("Signed off."), "success")
    return redirect(url_for("owner.version", key=key, number=number))


@bp.post("/<key>/v<int:number>/withdraw")
def withdraw(key: str, number: int) -> ResponseReturnValue:
    """Take back an approved version before its effective date."""
    reason = request.form.get("reason", "").strip()
    try:
        if not reason:
            raise ComplaintflowError(_("Give a reason: it goes into the audit log."))
        services().engine.withdraw(key, number, person().username, reason)
    except ComplaintflowError as exc:
        flash(exc.message, "error")
        return _version_page(key, number, {"reason": reason}, _refusal_status(exc))
    flash(_("Version %(n)s is withdrawn: it will not take effect.", n=number), "success")
    return redirect(url_for("owner.version", key=key, number=number))


def _effective(raw: str) -> datetime | None:
    """A datetime-local value in the site's zone; empty means now."""
    if not raw.strip():
        return None
    try:
        return datetime.fromisoformat(raw).replace(tzinfo=g.zone)
    except ValueError:
        raise ComplaintflowError(_("The effective date is not a date and time.")) from None


@bp.route("/upload", methods=["GET", "POST"])
def upload() -> ResponseReturnValue:
    """A changed diagram (and any new or changed forms) becomes a draft after every check."""
    if not person().is_process_owner:
        abort(403)  # auditors read versions; only process owners make new ones
    findings: list[str] = []
    engine = services().engine
    if request.method == "POST":
        diagram_file = request.files.get("bpmn")
        content = diagram_file.read(MAX_UPLOAD + 1) if diagram_file else b""
        source = (diagram_file.filename if diagram_file else None) or "upload"
        base = request.form.get("base", "")
        try:
            if not content:
                raise ComplaintflowError(_("Choose the diagram file (.bpmn) to upload."))
            uploads = [f for f in request.files.getlist("forms") if f.filename]
            # The forms' folder is the procedure key, which is the diagram's process id.
            folder = request.form.get("procedure", "").strip() or (
                procedure_key_of(content, source) if uploads else ""
            )
            forms = {
                _form_path(f.filename or "", folder): parse_json(f.read(256 * 1024))
                for f in uploads
            }
            base_key, _colon, number = base.partition(":")
            checked = engine.check_upload(
                content, forms, source, (base_key, whole_number(number, "base")) if number else None
            )
            deployed = engine.store_draft(checked, person().username, source, resubmit=True)
        except InvalidDiagram as invalid:
            findings = invalid.findings
        except (ValueError, UnicodeDecodeError):
            findings = [_("A form file is not valid JSON.")]
        except ComplaintflowError as exc:
            findings = [exc.message]
        else:
            flash(
                _(
                    "Stored as draft version %(n)s: it needs a review and an approval.",
                    n=deployed.version,
                )
                if deployed.created
                else _(
                    "Nothing changed: version %(n)s is already exactly this.", n=deployed.version
                ),
                "success",
            )
            if deployed.resubmits:
                flash(
                    _(
                        "It is the same as version %(n)s, which was rejected or withdrawn:"
                        " it is submitted again for review.",
                        n=deployed.resubmits,
                    ),
                    "info",
                )
            return redirect(url_for("owner.version", key=deployed.key, number=deployed.version))
    with services().store.read() as session:
        bases = engine.procedure_rows(session)
    return render_template("owner/upload.html", findings=findings, bases=bases), (
        422 if findings else 200
    )


def _form_path(filename: str, folder: str) -> str:
    """Uploaded forms keep the path the diagram names them by: forms/<procedure>/<file>."""
    name = filename.replace("\\", "/").split("/")[-1]
    return request.form.get(f"path:{name}") or f"forms/{folder}/{name}"


@bp.get("/<key>/diff")
def diff(key: str) -> ResponseReturnValue:
    engine = services().engine
    try:
        first, second = int(request.args["from"]), int(request.args["to"])
    except (KeyError, ValueError):
        abort(400)
    with services().store.read() as session:
        try:
            a, b = engine.version(session, key, first), engine.version(session, key, second)
        except NotFound:
            abort(404)
        changes = compare(a.bpmn_xml, a.forms, b.bpmn_xml, b.forms)
    css = {"added": "added", "removed": "removed", "changed": "changed"}
    new_marks = {
        c.element: Mark(css[c.kind], title="; ".join(c.details))
        for c in changes
        if c.kind != "removed"
    }
    old_marks = {c.element: Mark(css[c.kind]) for c in changes if c.kind != "added"}
    names = {"added": _("Added"), "removed": _("Removed"), "changed": _("Changed")}
    return render_template(
        "owner/diff.html",
        key=key,
        a=a,
        b=b,
        changes=changes,
        kinds=names,
        old_svg=render(engine.diagram(a).xml, old_marks),
        new_svg=render(engine.diagram(b).xml, new_marks),
        legend=legend(("added", "changed", "removed"), names),
        procedure_name=i18n.procedure_name(engine.diagram(b)),
    )


@bp.route("/<key>/migrate", methods=["GET", "POST"])
def migrate(key: str) -> ResponseReturnValue:
    diagram, rows, current = _versions_of(key)
    target = int(request.values.get("to") or (current.version if current else 0))
    reason = request.form.get("reason", "").strip()
    moves = []
    real = request.method == "POST" and request.form.get("go") == "1"
    if target:
        try:
            if real and not reason:
                raise ComplaintflowError(_("Give a reason: it goes into each complaint's history."))
            moves = services().engine.migrate(
                key, target, person().username, reason or "dry run", dry_run=not real
            )
        except ComplaintflowError as exc:
            flash(exc.message, "error")
            real = False
        else:
            if real:
                moved = sum(m.movable for m in moves)
                flash(_("%(n)s complaints moved to version %(v)s.", n=moved, v=target), "success")
    with services().store.read() as session:
        roles = queries.procedure_roles(session, key)
    return render_template(
        "owner/migrate.html",
        key=key,
        rows=rows,
        target=target,
        moves=moves,
        done=real,
        reason=reason,
        procedure_name=i18n.procedure_name(diagram),
        may_change=person().is_process_owner,
        # A complaint's page is for those who may see it: its staff, auditors, admins.
        may_open=person().may_view(roles),
    )
