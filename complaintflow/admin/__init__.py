"""Pages for administrators: the sheet of QR codes that opens the intake form at a place, the
integrations with other systems (intake sources, webhook subscriptions and their delivery logs),
the outbox of messages going out, and the users with their roles."""

from __future__ import annotations

from flask import Blueprint, abort
from flask_login import login_required

from ..web import person

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")


@bp.before_request
@login_required
def _admins_only() -> None:
    if not person().is_admin:
        abort(403)


from . import outbox, users, views, webhooks  # noqa: E402,F401  (routes register on bp)
