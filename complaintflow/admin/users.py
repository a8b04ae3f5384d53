"""Users, for admins: who may sign in, with which roles, and a new password for someone who
forgot theirs. Each change is in the audit log. A role taken away or an account deactivated
gives the tasks the person had taken back to their role's inbox, for colleagues to take."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from ..accounts import ADMIN_ROLE, AUDITOR_ROLE, MIN_PASSWORD, PROCESS_OWNER_ROLE, Account, Contact
from ..app import services
from ..errors import Conflict, InvalidData, NotFound
from ..models import utcnow
from ..web import i18n, person
from ..web.submit import translated_problems
from . import bp

MAX_REASON = 500


def _builtin_role_names() -> dict[str, str]:
    return {
        ADMIN_ROLE: _("Administrator"),
        PROCESS_OWNER_ROLE: _("Process owner"),
        AUDITOR_ROLE: _("Auditor"),
    }


def _role_groups() -> list[tuple[str, list[tuple[str, str]]]]:
    """The roles to choose from, (key, name) grouped under the product or their procedure."""
    builtin = _builtin_role_names()
    diagrams = services().engine.current_diagrams()
    groups: dict[str, list[tuple[str, str]]] = {}
    for role in services().accounts.roles():
        if role.procedure_key is None:
            heading, name = _("Every procedure"), builtin.get(role.key, role.key)
        else:
            diagram = diagrams.get(role.procedure_key)
            heading = i18n.procedure_name(diagram) if diagram else role.procedure_key
            name = i18n.role_name(role)
        groups.setdefault(heading, []).append((role.key, name))
    return list(groups.items())


def _page(
    template: str, problems: dict[str, list[str]], status: int, **context: Any
) -> ResponseReturnValue:
    if problems:
        flash(_("Some fields need your attention."), "error")
    groups = _role_groups()
    response = make_response(
        render_template(
            template,
            problems=problems,
            role_groups=groups,
            role_names={key: name for _heading, roles in groups for key, name in roles},
            min_password=MIN_PASSWORD,
            max_reason=MAX_REASON,
            **context,
        ),
        status,
    )
    response.headers["Cache-Control"] = "no-store"  # a password typed in must not come back
    return response


def _listing(
    problems: dict[str, list[str]] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    return _page(
        "admin/users.html",
        problems or {},
        status,
        accounts=services().accounts.listing(),
        values=values or {"locale": i18n.locale(), "roles": []},  # the admin's own, at first
    )


@bp.get("/users")
def users() -> ResponseReturnValue:
    return _listing()


@bp.post("/users")
def create_user() -> ResponseReturnValue:
    form = request.form
    text = {
        name: form.get(name, "").strip()
        for name in ("username", "display_name", "email", "phone", "locale")
    }
    roles = form.getlist("roles")
    values = {**text, "roles": roles}
    password = form.get("password", "")
    if password != form.get("repeat_password", ""):
        problems = {"repeat_password": [_("This is not the same as the password.")]}
        return _listing(problems, values, 422)
    try:
        created = services().accounts.create_user(
            text["username"],
            password,
            roles,
            text["display_name"][:200],
            person().username,
            Contact(text["email"], text["phone"], text["locale"]),
        )
    except InvalidData as invalid:
        return _listing(translated_problems(invalid), values, 422)
    flash(_("%(name)s can sign in now.", name=created.username), "success")
    return redirect(url_for("admin.user", user_id=created.id))


# -- one user -----------------------------------------------------------------------------


def _account(user_id: int) -> Account:
    try:
        return services().accounts.account(user_id)
    except NotFound:
        abort(404)


def _user_page(
    account: Account, problems: dict[str, list[str]] | None = None, status: int = 200
) -> ResponseReturnValue:
    return _page(
        "admin/user.html",
        problems or {},
        status,
        account=account,
        is_self=account.person.id == person().id,
        locked=account.locked_until is not None and account.locked_until > utcnow(),
    )


@bp.get("/users/<int:user_id>")
def user(user_id: int) -> ResponseReturnValue:
    return _user_page(_account(user_id))


def _given_back(username: str, count: int) -> None:
    if count:
        flash(
            _(
                "%(count)s task(s) %(name)s had taken are waiting in their roles' inboxes again.",
                count=count,
                name=username,
            ),
            "info",
        )


@bp.post("/users/<int:user_id>/roles")
def change_roles(user_id: int) -> ResponseReturnValue:
    account = _account(user_id)
    who, chosen = account.person, set(request.form.getlist("roles"))
    if who.id == person().id and ADMIN_ROLE in who.roles and ADMIN_ROLE not in chosen:
        problems = {"roles": [_("You cannot take your own administrator role away.")]}
        return _user_page(account, problems, 422)
    if chosen == who.roles:
        flash(_("%(name)s has these roles already: nothing changed.", name=who.username), "info")
        return redirect(url_for("admin.user", user_id=user_id))
    svc = services()
    try:
        changed = svc.accounts.change_roles(
            who.username, sorted(chosen - who.roles), sorted(who.roles - chosen), person().username
        )
    except InvalidData as invalid:
        return _user_page(account, translated_problems(invalid), 422)
    flash(_("The roles of %(name)s are changed.", name=who.username), "success")
    _given_back(
        who.username, svc.engine.give_back(who.username, changed.may_work, person().username)
    )
    return redirect(url_for("admin.user", user_id=user_id))


@bp.post("/users/<int:user_id>/password")
def set_password(user_id: int) -> ResponseReturnValue:
    account = _account(user_id)
    password = request.form.get("password", "")
    if password != request.form.get("repeat_password", ""):
        problems = {"repeat_password": [_("This is not the same as the password.")]}
        return _user_page(account, problems, 422)
    try:
        services().accounts.set_password(account.person.username, password, person().username)
    except InvalidData as invalid:
        return _user_page(account, translated_problems(invalid), 422)
    flash(
        _(
            "%(name)s has a new password; their sessions and API tokens made with the old one"
            " have ended. Tell it to them in person or by phone, not by email.",
            name=account.person.username,
        ),
        "success",
    )
    return redirect(url_for("admin.user", user_id=user_id))


@bp.post("/users/<int:user_id>/<any(deactivate, activate):act>")
def set_active(user_id: int, act: str) -> ResponseReturnValue:
    account = _account(user_id)
    name, active = account.person.username, act == "activate"
    if not active and account.person.id == person().id:
        flash(_("You cannot deactivate yourself: ask another administrator."), "error")
        return redirect(url_for("admin.user", user_id=user_id))
    reason = request.form.get("reason", "").strip()
    if len(reason) > MAX_REASON:
        problems = {"reason": [_("At most %(limit)s characters.", limit=MAX_REASON)]}
        return _user_page(account, problems, 422)
    svc = services()
    try:
        svc.accounts.set_active(name, active, person().username, reason)
    except InvalidData as invalid:
        return _user_page(account, translated_problems(invalid), 422)
    except Conflict:  # another admin was quicker, or the form was sent twice
        flash(_("Nothing changed: %(name)s was so already.", name=name), "info")
        return redirect(url_for("admin.user", user_id=user_id))
    if active:
        flash(_("%(name)s may sign in again.", name=name), "success")
    else:
        flash(_("%(name)s can no longer sign in or use their API tokens.", name=name), "success")
        _given_back(name, svc.engine.give_back(name, lambda role: False, person().username))
    return redirect(url_for("admin.user", user_id=user_id))
