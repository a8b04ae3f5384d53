"""Pages for complainants, without signing in: file a complaint (from a QR code at the place, if
there is one), get a receipt with the number, and follow it through a private status link."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("public", __name__, template_folder="templates")

from . import views  # noqa: E402,F401  (routes register on bp)
