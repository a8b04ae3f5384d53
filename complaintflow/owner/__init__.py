"""Pages for process owners: procedures, versions, document control, diffs, migrations, and the
modeler that edits a version into a new draft."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("owner", __name__, url_prefix="/procedures", template_folder="templates")

from . import modeler, views  # noqa: E402,F401  (routes register on bp)
