"""Reading what a page submits besides its fields: uploaded files, and the engine's refusals in
the reader's language."""

from __future__ import annotations

from flask import request
from flask_babel import gettext

from ..errors import InvalidData


def uploaded_files() -> list[tuple[str, bytes]]:
    """The files of the form's file input, skipping an empty input."""
    return [
        (upload.filename or "", upload.read())
        for upload in request.files.getlist("attachments")
        if upload.filename
    ]


def translated_problems(invalid: InvalidData) -> dict[str, list[str]]:
    return {
        name: [gettext(template) % values for template, values in problems]
        for name, problems in invalid.problems.items()
    }
