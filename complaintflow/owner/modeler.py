"""The in-browser modeler: a process owner opens a version in bpmn-js, edits it (names, lanes,
forms of user tasks, handlers of service tasks and their parameters) and saves it as a new
draft, which is checked and signed off like any upload.

bpmn-js comes from npm (`package.json`, pinned; `npm ci` puts it under `node_modules/`) and is
served from there read-only; nothing of it is copied into the repository. Without it the rest of
the product works as before: the pages simply offer no Edit link, and the edit page says to
download the diagram and upload the changed file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import abort, jsonify, render_template, request, send_from_directory, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from ..app import services
from ..config import REPO_ROOT
from ..errors import ComplaintflowError, InvalidDiagram, NotFound
from ..web import i18n, person
from . import bp
from .views import MAX_UPLOAD

# Where `npm ci` installs bpmn-js's ready-built files (a module attribute, so tests can point it
# elsewhere).
ASSETS: Path = REPO_ROOT / "node_modules" / "bpmn-js" / "dist"
SCRIPT = "bpmn-modeler.production.min.js"
STYLES = ("assets/diagram-js.css", "assets/bpmn-js.css", "assets/bpmn-font/css/bpmn.css")


@bp.app_template_global()
def modeler_ready() -> bool:
    """Whether the in-browser modeler's files are installed (they come from npm)."""
    return all((ASSETS / name).is_file() for name in (SCRIPT, *STYLES))


@bp.get("/modeler-assets/<path:path>")
def modeler_asset(path: str) -> ResponseReturnValue:
    """bpmn-js's own files, read-only, from its dist folder and nowhere else."""
    # send_from_directory joins safely: "..", absolute paths and the like are a 404.
    return send_from_directory(ASSETS, path, max_age=3600)


@bp.get("/<key>/v<int:number>/edit")
def edit(key: str, number: int) -> ResponseReturnValue:
    if not person().is_process_owner:
        abort(403)  # auditors read versions; only process owners make new ones
    engine = services().engine
    with services().store.read() as session:
        try:
            found = engine.version(session, key, number)
        except NotFound:
            abort(404)
        xml, forms, status = found.bpmn_xml, sorted(found.forms), found.status
    diagram = engine.diagram(found)
    name = i18n.procedure_name(diagram)
    if not modeler_ready():
        return render_template(
            "owner/edit.html", missing=True, key=key, number=number, procedure_name=name
        ), 404
    data: dict[str, Any] = {
        "xml": xml,
        "forms": forms,
        "handlers": [
            {
                "name": h.name,
                "summary": h.summary,
                "params": [
                    {
                        "name": p.name,
                        "type": p.type,
                        "description": p.description,
                        "required": p.required,
                    }
                    for p in h.params
                ],
            }
            for h in engine.handlers.all()
        ],
        "save": url_for("owner.drafts", key=key, number=number),
    }
    return render_template(
        "owner/edit.html",
        missing=False,
        key=key,
        number=number,
        status=status,
        procedure_name=name,
        data=data,
        script=SCRIPT,
        styles=STYLES,
    )


@bp.post("/<key>/v<int:number>/drafts")
def drafts(key: str, number: int) -> ResponseReturnValue:
    """The edited diagram (form field or JSON `bpmn`), checked with the forms of the version it
    was edited from, stored as the procedure's next draft: 201 with its number and page, or 422
    with what to fix."""
    if not person().is_process_owner:
        abort(403)
    body = request.get_json(silent=True) if request.is_json else None
    xml = body.get("bpmn") if isinstance(body, dict) else request.form.get("bpmn")
    engine = services().engine
    source = f"{key} v{number} (modeler)"
    try:
        with services().store.read() as session:
            engine.version(session, key, number)
    except NotFound:
        abort(404)
    try:
        if not isinstance(xml, str) or not xml.strip():
            raise ComplaintflowError(_("Send the diagram: there is nothing to save."))
        content = xml.encode("utf-8")
        if len(content) > MAX_UPLOAD:
            raise ComplaintflowError(_("The diagram is too large."))
        checked = engine.check_upload(content, {}, source, (key, number))
        if checked.diagram.key != key:
            raise ComplaintflowError(
                _(
                    "The process id is %(found)s: keep it %(key)s, the procedure's key.",
                    found=checked.diagram.key,
                    key=key,
                )
            )
        deployed = engine.store_draft(checked, person().username, source, resubmit=True)
    except InvalidDiagram as invalid:
        return jsonify(findings=invalid.findings), 422
    except ComplaintflowError as exc:
        return jsonify(findings=[exc.message]), 422
    page = url_for("owner.version", key=deployed.key, number=deployed.version)
    return jsonify(
        version=deployed.version, url=page, created=deployed.created, status=deployed.status
    ), (201 if deployed.created else 200)
