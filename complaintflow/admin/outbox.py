"""The outbox for admins: the messages going out (email, SMS, webhook calls) by status, a
subscription's delivery log, and retrying or discarding a message, each with a reason that goes
into the audit log (complaintflow/outbox.py records it)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from ..app import services
from ..engine import queries
from ..errors import ComplaintflowError, Conflict, NotFound
from ..outbox import discard, listing, retry
from ..web import i18n, person
from ..web.inputs import whole_number
from . import bp
from .webhooks import is_deleted, subscription_or_404

# Dead first: they are what waits for an admin. "all" shows every status.
STATUSES = ("dead", "pending", "sent", "discarded")
LIMIT = 200  # the newest this many are listed
MAX_REASON = 500


def status_names() -> dict[str, str]:
    return {
        "dead": _("Dead"),
        "pending": _("Pending"),
        "sent": _("Sent"),
        "discarded": _("Discarded"),
        "all": _("All"),
    }


def channel_name(channel: str) -> str:
    return {"email": _("Email"), "sms": _("SMS"), "webhook": _("Webhook")}.get(channel, channel)


def _status(default: str) -> str:
    chosen = request.values.get("status", default)
    return chosen if chosen in (*STATUSES, "all") else default


def _listing(
    status: str, subscription_id: int | None, problems: dict[str, list[str]], code: int
) -> ResponseReturnValue:
    """The outbox page, or the delivery log of one subscription."""
    subscription = subscription_or_404(subscription_id) if subscription_id is not None else None
    with services().store.read() as session:
        rows = listing(session, None if status == "all" else status, subscription_id, LIMIT)
        counts = queries.outbox_counts(session, subscription_id)
        numbers = queries.complaint_numbers(session, {r.instance_id for r in rows if r.instance_id})
    # Retrying would call a deleted subscription's address again: not offered.
    gone = {s.id for s in services().integrations.subscriptions() if is_deleted(s)}
    context: dict[str, Any] = dict(
        rows=rows,
        counts=counts,
        numbers=numbers,
        gone=gone,
        status=status,
        statuses=(*STATUSES, "all"),
        status_names=status_names(),
        channel_name=channel_name,
        event_name=i18n.event_name,
        problems=problems,
        limit=LIMIT,
        max_reason=MAX_REASON,
    )
    if subscription is None:
        return render_template("admin/outbox.html", **context), code
    return render_template(
        "admin/deliveries.html",
        subscription=subscription,
        deleted=is_deleted(subscription),
        **context,
    ), code


@bp.get("/outbox")
def outbox() -> ResponseReturnValue:
    return _listing(_status("dead"), None, {}, 200)


@bp.get("/webhooks/subscriptions/<int:subscription_id>")
def deliveries(subscription_id: int) -> ResponseReturnValue:
    return _listing(_status("all"), subscription_id, {}, 200)


@bp.post("/outbox/<int:message_id>/retry")
def retry_message(message_id: int) -> ResponseReturnValue:
    return _act(
        message_id,
        retry,
        _("Message %(id)s goes out again.", id=message_id),
        _("Message %(id)s was not retried: only dead or discarded messages can be.", id=message_id),
    )


@bp.post("/outbox/<int:message_id>/discard")
def discard_message(message_id: int) -> ResponseReturnValue:
    return _act(
        message_id,
        discard,
        _("Message %(id)s was discarded: it will not be sent.", id=message_id),
        _("Message %(id)s was not discarded: only pending or dead messages can be.", id=message_id),
    )


def _act(message_id: int, act: Any, done: str, refused: str) -> ResponseReturnValue:
    """Retry or discard with the reason given; back to the page the button was on."""
    status = _status("dead")
    try:  # the page's hidden field: anything else goes back to the whole outbox
        subscription_id: int | None = whole_number(request.form["subscription"], "subscription")
    except (KeyError, ComplaintflowError):
        subscription_id = None
    reason = request.form.get("reason", "").strip()
    field = f"reason_{message_id}"
    if not reason or len(reason) > MAX_REASON:
        flash(_("Some fields need your attention."), "error")
        problem = (
            _("Give a reason: it goes into the audit log.")
            if not reason
            else _("At most %(limit)s characters.", limit=MAX_REASON)
        )
        return _listing(status, subscription_id, {field: [problem]}, 422)
    try:
        act(services().store, message_id, person().username, reason)
    except NotFound:
        flash(_("There is no message %(id)s.", id=message_id), "error")
    except Conflict:
        flash(refused, "warning")
    else:
        flash(done, "success")
    if subscription_id is not None:
        return redirect(url_for("admin.deliveries", subscription_id=subscription_id, status=status))
    return redirect(url_for("admin.outbox", status=status))
