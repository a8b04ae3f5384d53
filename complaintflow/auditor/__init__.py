"""Pages for auditors (read-only): search complaints, trace one on the diagram of the version it
ran on, judge it against the written procedure, export it, and report per procedure."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("auditor", __name__, url_prefix="/audit", template_folder="templates")

from . import views  # noqa: E402,F401  (routes register on bp)
