"""The staff desk: sign in, the inbox of one's roles, a task's page with its form, recording a
complaint, a complaint's page with its timeline, and one's notifications."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("staff", __name__, template_folder="templates")

from . import notifications, views  # noqa: E402,F401  (routes register on bp)
