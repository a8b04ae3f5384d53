"""The public pages. They show a complainant their own complaint's progress and files, and
nothing staff wrote or who they are."""

from __future__ import annotations

import time
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..app import services
from ..engine import queries
from ..errors import InvalidData, NotFound
from ..models import Attachment
from ..web import i18n, limiter
from ..web.files import send_attachment
from ..web.formfields import fields_for, read
from ..web.links import status_token, token_matches
from ..web.submit import translated_problems, uploaded_files
from ..web.timeline import public_stages
from . import bp

COMPLAINANT = "complainant"  # the actor of what complainants do, in the history


def _diagram(key: str) -> Any:
    engine = services().engine
    with services().store.read() as session:
        try:
            return engine.diagram(engine.current_version(session, key))
        except NotFound:
            abort(404)


@bp.get("/")
def landing() -> ResponseReturnValue:
    return render_template(
        "public/landing.html",
        diagrams=services().engine.current_diagrams(),
        procedure_name=i18n.procedure_name,
    )


def _stamp() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(services().settings.secret_key, salt="intake-form")


def _place_field(form: dict[str, Any]) -> str | None:
    """The intake field a QR code's place fills in (marked `x-place`)."""
    return next((n for n, s in form.get("properties", {}).items() if s.get("x-place")), None)


def _too_fast_or_robot() -> str | None:
    """Why a submission looks automated, if it does: the hidden field people leave empty is
    filled, or the form came back sooner than a person can fill it."""
    if request.form.get("website"):
        return _("This form could not be accepted.")
    try:
        issued = float(_stamp().loads(request.form.get("issued", ""), max_age=24 * 3600))
    except (BadSignature, ValueError):
        return _("The form has expired; please fill it in again.")
    if time.time() - issued < services().settings.intake_min_seconds:
        return _("That was very quick; please check your entries and send again.")
    return None


def _sender() -> str:
    """Whom the intake limit counts: the sender's address, in this deployment (scaled out,
    the counts are kept in Redis, which other deployments may share)."""
    svc = services()
    address = get_remote_address()
    return f"{svc.store.identity()}/{address}" if svc.settings.scaled else address


@bp.route("/complain/<key>", methods=["GET", "POST"])
@limiter.limit(lambda: services().settings.intake_limit, methods=["POST"], key_func=_sender)
def intake(key: str) -> ResponseReturnValue:
    diagram = _diagram(key)
    form = diagram.intake_form
    place_field = _place_field(form)
    values: dict[str, Any] = {}
    if place_field and request.args.get("place"):
        values[place_field] = request.args["place"][:200]
    problems: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        values = read(form, request.form, g.zone, public=True)
        refusal = _too_fast_or_robot()
        if refusal:
            flash(refusal, "error")
            status = 400
        else:
            try:
                files = services().attachments.save(uploaded_files())
                instance_id = services().engine.start(
                    key, values, COMPLAINANT, files, by_complainant=True
                )
            except InvalidData as invalid:
                problems, status = translated_problems(invalid), 422
                flash(_("Some fields need your attention."), "error")
            else:
                return redirect(
                    url_for(
                        "public.status",
                        instance_id=instance_id,
                        token=status_token(instance_id),
                        new=1,
                    )
                )
    return render_template(
        "public/intake.html",
        diagram=diagram,
        key=key,
        issued=_stamp().dumps(time.time()),
        fields=fields_for(form, values, problems, g.zone, public=True),
        problems=problems,
        procedure_name=i18n.procedure_name(diagram),
    ), status


def _own_instance(instance_id: int, token: str) -> Any:
    if not token_matches(instance_id, token):
        abort(404)  # the same answer as for a complaint that does not exist
    with services().store.read() as session:
        try:
            instance = queries.get_instance(session, instance_id)
        except NotFound:
            abort(404)
        files = queries.attachments_of(session, instance_id, complainant_only=True)
    return instance, files


@bp.get("/s/<int:instance_id>/<token>")
def status(instance_id: int, token: str) -> ResponseReturnValue:
    instance, files = _own_instance(instance_id, token)
    diagram = services().engine.diagram(instance.version)
    response = render_template(
        "public/status.html",
        instance=instance,
        record=instance.record,
        files=files,
        stages=public_stages(instance),
        new=bool(request.args.get("new")),
        token=token,
        procedure_name=i18n.procedure_name(diagram),
    )
    return response, 200, {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


@bp.get("/s/<int:instance_id>/<token>/files/<attachment_id>")
def own_file(instance_id: int, token: str, attachment_id: str) -> ResponseReturnValue:
    _instance, files = _own_instance(instance_id, token)
    found: Attachment | None = next((f for f in files if f.id == attachment_id), None)
    if found is None:
        abort(404)
    return send_attachment(found)
