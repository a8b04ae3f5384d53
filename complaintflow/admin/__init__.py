"""Pages for administrators: the sheet of QR codes that opens the intake form at a place."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")

from . import views  # noqa: E402,F401  (routes register on bp)
