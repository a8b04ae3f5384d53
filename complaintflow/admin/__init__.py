"""Pages for administrators: the sheet of QR codes that opens the intake form at a place, the
integrations with other systems (intake sources, webhook subscriptions and their delivery logs),
the outbox of messages going out, and the users with their roles."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort
from flask_login import login_required

from ..app import services
from ..engine import queries
from ..models import utcnow
from ..web import person

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")


@bp.before_request
@login_required
def _admins_only() -> None:
    if not person().is_admin:
        abort(403)


@bp.context_processor
def _scheduler_silence() -> dict[str, Any]:
    """Every admin page says so when, in the scaled mode, no scheduler runs: until one does, no
    timer fires, no deadline is warned of and no message goes out, and nothing else shows it."""
    if not services().settings.scaled:
        return {}
    with services().store.read() as session:
        silent, until = queries.scheduler_silence(session, utcnow())
    return {"scheduler_silent": True, "scheduler_lapsed_at": until} if silent else {}


from . import outbox, users, views, webhooks  # noqa: E402,F401  (routes register on bp)
