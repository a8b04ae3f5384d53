"""Serving attachments: the stored bytes under the type they were checked as."""

from __future__ import annotations

from flask import send_file
from flask.typing import ResponseReturnValue

from ..app import services
from ..models import Attachment


def send_attachment(found: Attachment) -> ResponseReturnValue:
    """The file, as its checked type, never run or sniffed as anything else."""
    response = send_file(
        services().attachments.path(found.sha256),
        mimetype=found.media_type,
        download_name=found.filename,
        as_attachment=not found.media_type.startswith("image/"),
        max_age=3600,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self'"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
