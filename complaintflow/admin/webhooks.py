"""Other systems, for admins: the sources allowed to file complaints through the intake webhook,
and the subscriptions that hear of events (each with its delivery log, in outbox.py).

A secret (a new source's, a rotated one, a new subscription's) is shown once. The action keeps
it in the signed session across its redirect, and the page that shows it takes it out: reloading
that page neither shows the secret again nor repeats the action (a second rotation would end the
previous secret, which the other system may still be using)."""

from __future__ import annotations

from typing import Any

from flask import (
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from ..app import services
from ..engine import queries
from ..errors import Conflict, InvalidData, NotFound
from ..integrations import Source
from ..models import WebhookSubscription
from ..notices import WEBHOOK_EVENT_TYPES
from ..web import i18n, person
from ..web.submit import translated_problems
from . import bp

REVEALED = "admin_revealed_secret"


def _stamp(source: Source) -> str:
    """When a source's secret was last rotated, as its rotate form carries it."""
    return source.rotated_at.isoformat() if source.rotated_at else ""


def is_deleted(row: WebhookSubscription) -> bool:
    """A deleted subscription stays, inactive, for its delivery log."""
    return row.deleted_at is not None


def _page(
    problems: dict[str, list[str]] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    integrations = services().integrations
    revealed = session.pop(REVEALED, None) if status == 200 else None
    with services().store.read() as db:
        dead = queries.dead_deliveries(db)
    response = make_response(
        render_template(
            "admin/webhooks.html",
            sources=integrations.sources(),
            subscriptions=integrations.subscriptions(),
            dead=dead,
            revealed=revealed,
            problems=problems or {},
            values=values or {},
            event_types=WEBHOOK_EVENT_TYPES,
            event_name=i18n.event_name,
            stamp=_stamp,
            is_deleted=is_deleted,
        ),
        status,
    )
    response.headers["Cache-Control"] = "no-store"  # a secret on it must not come back
    return response


def _reveal(**what: Any) -> ResponseReturnValue:
    session[REVEALED] = what
    return redirect(url_for("admin.webhooks") + "#secret")


@bp.get("/webhooks")
def webhooks() -> ResponseReturnValue:
    return _page()


# -- intake sources -----------------------------------------------------------------------


@bp.post("/webhooks/sources")
def add_source() -> ResponseReturnValue:
    name = request.form.get("name", "").strip().lower()
    try:
        secret = services().integrations.add_source(name, person().username)
    except InvalidData as invalid:
        return _page(translated_problems(invalid), {"name": name}, 422)
    except Conflict:
        problems = {
            "name": [_("There is a source called %(name)s already: rotate its secret.", name=name)]
        }
        return _page(problems, {"name": name}, 409)
    return _reveal(kind="source", name=name, secret=secret)


def _kept_source(name: str) -> Source | None:
    """The source if its secret is kept here (not only in the settings), else a flash."""
    found = next((s for s in services().integrations.sources() if s.name == name), None)
    if found is None or found.rotated_at is None:
        flash(_("There is no source called %(name)s kept here.", name=name), "error")
        return None
    return found


@bp.post("/webhooks/sources/<name>/rotate")
def rotate_source(name: str) -> ResponseReturnValue:
    source = _kept_source(name)
    if source is None:
        return redirect(url_for("admin.webhooks"))
    # The page the admin pressed Rotate on must show the secret as it is now: a second press
    # (or two admins at once) must not end the previous secret the other system still uses.
    if request.form.get("rotated_at") != _stamp(source):
        flash(
            _(
                "The secret of %(name)s was rotated meanwhile; it was not rotated again.",
                name=name,
            ),
            "warning",
        )
        return redirect(url_for("admin.webhooks"))
    try:
        secret = services().integrations.rotate_source(name, person().username)
    except NotFound:
        flash(_("There is no source called %(name)s kept here.", name=name), "error")
        return redirect(url_for("admin.webhooks"))
    return _reveal(kind="rotated", name=name, secret=secret)


@bp.route("/webhooks/sources/<name>/remove", methods=["GET", "POST"])
def remove_source(name: str) -> ResponseReturnValue:
    source = _kept_source(name)
    if source is None:
        return redirect(url_for("admin.webhooks"))
    if request.method == "GET":
        return render_template(
            "admin/confirm.html",
            title=_("Remove the source %(name)s?", name=name),
            text=_(
                "Its secrets kept here stop working; the one in the settings"
                " (COMPLAINTFLOW_WEBHOOK_SECRETS) still works."
            )
            if source.from_settings
            else _("Calls signed with its secrets will be refused from now on."),
            button=_("Remove the source"),
        )
    try:
        services().integrations.remove_source(name, person().username)
    except NotFound:
        flash(_("There is no source called %(name)s kept here.", name=name), "error")
    else:
        flash(_("The source %(name)s was removed.", name=name), "success")
    return redirect(url_for("admin.webhooks"))


# -- subscriptions ------------------------------------------------------------------------


@bp.post("/webhooks/subscriptions")
def add_subscription() -> ResponseReturnValue:
    url = request.form.get("url", "").strip()
    types = request.form.getlist("types")
    try:
        subscription_id, secret = services().integrations.subscribe(url, types, person().username)
    except InvalidData as invalid:
        return _page(translated_problems(invalid), {"url": url, "types": types}, 422)
    return _reveal(kind="subscription", id=subscription_id, url=url, secret=secret)


def subscription_or_404(subscription_id: int) -> WebhookSubscription:
    found = next(
        (s for s in services().integrations.subscriptions() if s.id == subscription_id), None
    )
    return found or abort(404)


@bp.post("/webhooks/subscriptions/<int:subscription_id>/<any(pause, resume):act>")
def pause_subscription(subscription_id: int, act: str) -> ResponseReturnValue:
    row = subscription_or_404(subscription_id)
    if is_deleted(row):
        flash(_("Subscription %(id)s was deleted; add a new one.", id=subscription_id), "error")
        return redirect(url_for("admin.webhooks"))
    active = act == "resume"
    services().integrations.change_subscription(subscription_id, person().username, active=active)
    if active:
        flash(_("Deliveries to %(url)s go on.", url=row.url), "success")
    else:
        flash(_("No new events go to %(url)s until you resume.", url=row.url), "success")
    return redirect(url_for("admin.webhooks"))


@bp.route("/webhooks/subscriptions/<int:subscription_id>/delete", methods=["GET", "POST"])
def delete_subscription(subscription_id: int) -> ResponseReturnValue:
    row = subscription_or_404(subscription_id)
    if request.method == "GET":
        return render_template(
            "admin/confirm.html",
            title=_("Delete the subscription to %(url)s?", url=row.url),
            text=_(
                "It hears of no more events, and what still waits to be sent to it is discarded."
                " Its delivery log stays."
            ),
            button=_("Delete the subscription"),
        )
    services().integrations.delete_subscription(subscription_id, person().username)
    flash(_("The subscription to %(url)s was deleted.", url=row.url), "success")
    return redirect(url_for("admin.webhooks"))
