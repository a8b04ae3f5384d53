"""The staff desk: sign in, the inbox of one's roles, a task's page with its form, recording a
complaint, and a complaint's page with its timeline."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("staff", __name__, template_folder="templates")

from . import views  # noqa: E402,F401  (routes register on bp)
