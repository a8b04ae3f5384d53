"""Photos and files attached to complaints.

Accepted or refused on their content (magic bytes), never their name: a renamed executable is
still an executable. The bytes are stored once per content hash under
`$COMPLAINTFLOW_HOME/attachments`; links carry a random attachment id, never the hash or path.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import filetype

from .errors import N_, InvalidData, Problem

MAX_BYTES = 10 * 1024 * 1024
MAX_FILES = 5
ACCEPTED = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WebP",
    "image/gif": "GIF",
    "image/heic": "HEIC",
    "application/pdf": "PDF",
}
FIELD = "attachments"
NOT_ACCEPTED = N_(
    "%(file)s: only photos (JPEG, PNG, WebP, GIF, HEIC) and PDF files are accepted."
)  # the form key under which attachment problems are reported


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    media_type: str
    filename: str

    @property
    def is_image(self) -> bool:
        return self.media_type.startswith("image/")


def clean_filename(name: str) -> str:
    """The name as people see it: no folders, no control characters, not too long."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[-200:] or "attachment"


class AttachmentStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError("not a content hash")
        return self.root / sha256[:2] / sha256

    def check(self, files: list[tuple[str, bytes]]) -> None:
        """Refuse the whole set with one message per problem, before anything is written."""
        problems: list[Problem] = []
        if len(files) > MAX_FILES:
            problems.append((N_("At most %(limit)s files."), {"limit": MAX_FILES}))
        for name, data in files:
            file = clean_filename(name)
            if len(data) > MAX_BYTES:
                limit = MAX_BYTES // 2**20
                problems.append(
                    (N_("%(file)s: larger than %(limit)s MB."), {"file": file, "limit": limit})
                )
            elif _media_type(data) not in ACCEPTED:
                problems.append((NOT_ACCEPTED, {"file": file}))
        if problems:
            raise InvalidData({FIELD: problems})

    def save(self, files: list[tuple[str, bytes]]) -> list[StoredFile]:
        """Check, then store each file by its hash (once, however often it is attached)."""
        self.check(files)
        stored = []
        for name, data in files:
            digest = hashlib.sha256(data).hexdigest()
            target = self.path(digest)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                # Written beside, then renamed: a reader never sees half a file.
                with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
                    tmp.write(data)
                os.replace(tmp.name, target)
            stored.append(
                StoredFile(digest, len(data), _media_type(data) or "", clean_filename(name))
            )
        return stored


def _media_type(data: bytes) -> str | None:
    kind = filetype.guess(data[:8192])
    return kind.mime if kind is not None else None
