"""A member of staff's notifications in the app (those to their roles and to them), the badge of
unseen ones in the navigation, and how notifications reach them outside it ("How to reach you")."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user
from sqlalchemy.exc import SQLAlchemyError

from ..accounts import MIN_PASSWORD, AccountLocked, Contact
from ..app import services
from ..engine import queries
from ..errors import N_, InvalidData, Unauthorized
from ..web import SignedIn, i18n, person
from ..web.submit import translated_problems
from . import bp

log = logging.getLogger(__name__)
LIMIT = 100  # the page shows the newest this many
MAX_EMAIL = 200  # User.email; Contact.checked does not limit it


def _roles() -> frozenset[str] | None:
    return None if person().is_admin else person().roles


def unseen_count() -> int:
    """The badge: notifications since the person last opened the page. One COUNT per page,
    asked for by the navigation only (partial pages refreshed by script do not pay for it)."""
    if "unseen_notifications" not in g:
        g.unseen_notifications = 0
        if current_user.is_authenticated:
            try:
                with services().store.read() as session:
                    g.unseen_notifications = queries.unseen_notifications(
                        session, person().username, _roles()
                    )
            except SQLAlchemyError:  # a badge is not worth an error page (nor a second one)
                log.exception("could not count unseen notifications")
    return int(g.unseen_notifications)


@bp.app_context_processor
def _badge() -> dict[str, Any]:
    return {"unseen_notifications": unseen_count}


@dataclass(frozen=True)
class Shown:
    """One notification as the page lists it."""

    instance_id: int
    number: str
    event: str
    urgent: bool
    step: str
    at: datetime
    new: bool


def _step_name(row: queries.NotificationRow) -> str:
    """The step the notice came from, named as its diagram names it."""
    data = row.note.data
    step = data.get("step") or ""
    spec = services().engine.diagram(row.version).spec.task_specs.get(step) if step else None
    name = (spec.bpmn_name if spec is not None else None) or data.get("task") or step
    return i18n.chinese(str(name))


@bp.get("/notifications")
@login_required
def notifications() -> ResponseReturnValue:
    now = datetime.now(UTC)
    with services().store.write() as session:
        seen_before = queries.mark_notifications_seen(session, person().username, now)
    with services().store.read() as session:
        rows = queries.notifications_for(session, person().username, _roles(), LIMIT)
    g.unseen_notifications = 0  # just seen: the badge clears on this very page
    shown = [
        Shown(
            instance_id=row.note.instance_id,
            number=row.number or f"#{row.note.instance_id}",
            event=i18n.event_name(row.note.event),
            urgent=row.note.urgent,
            step=_step_name(row),
            at=row.note.created_at,
            new=row.note.created_at > seen_before,
        )
        for row in rows
    ]
    return render_template(
        "staff/notifications.html",
        rows=shown,
        limit=LIMIT,
        contact=services().accounts.contact_of(person().username),
    )


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> ResponseReturnValue:
    """How to reach you: email, phone (for urgent messages by SMS) and the language of the
    notifications, saved through the accounts service (which audits the change)."""
    accounts = services().accounts
    contact = accounts.contact_of(person().username)
    problems: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        contact = Contact(
            request.form.get("email", "").strip() or None,
            request.form.get("phone", "").strip() or None,
            request.form.get("locale", ""),
        )
        try:
            if contact.email and len(contact.email) > MAX_EMAIL:  # the column's size
                raise InvalidData(
                    {"email": [(N_("At most %(limit)s characters."), {"limit": MAX_EMAIL})]}
                )
            accounts.set_contact(person().username, contact, person().username)
        except InvalidData as invalid:
            problems, status = translated_problems(invalid), 422
            flash(_("Some fields need your attention."), "error")
        else:
            flash(_("Saved: notifications reach you as shown."), "success")
            return redirect(url_for("staff.account"))
    return _account_page(contact, problems, status)


def _account_page(contact: Contact, problems: dict[str, list[str]], status: int) -> Any:
    page = render_template(
        "staff/account.html", contact=contact, problems=problems, min_password=MIN_PASSWORD
    )
    return page, status


@bp.post("/account/password")
@login_required
def change_password() -> ResponseReturnValue:
    """Your own password: the current one, and the new one twice."""
    accounts = services().accounts
    new = request.form.get("new_password", "")
    problems: dict[str, list[str]] = {}
    if len(new) < MIN_PASSWORD:
        problems["new_password"] = [_("At least %(limit)s characters.", limit=MIN_PASSWORD)]
    elif new != request.form.get("repeat_password", ""):
        problems["repeat_password"] = [_("This is not the same as the new password.")]
    else:
        try:
            changed = accounts.change_password(
                person().username, request.form.get("current_password", ""), new
            )
        except AccountLocked as locked:
            problems["current_password"] = [
                _(
                    "Too many failed sign-ins: this account is locked. Try again in"
                    " %(minutes)s minutes.",
                    minutes=locked.minutes,
                )
            ]
        except Unauthorized:
            problems["current_password"] = [_("This is not your current password.")]
        else:
            login_user(SignedIn(changed))  # this session goes on; those of the old one end
            flash(_("Your password is changed."), "success")
            return redirect(url_for("staff.account"))
    flash(_("Some fields need your attention."), "error")
    return _account_page(accounts.contact_of(person().username), problems, 422)
