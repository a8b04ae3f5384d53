"""Errors a user can cause, each with a message fit to show them.

They are raised where the problem is found and translated once at the edge: the API turns them
into an HTTP status and a JSON body, the CLI into one line on stderr and exit code 1.
"""

from __future__ import annotations


class ComplaintflowError(Exception):
    """Base of every error a user can cause and fix."""

    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(ComplaintflowError):
    code = "bad_configuration"


class NotFound(ComplaintflowError):
    code = "not_found"


class Unauthorized(ComplaintflowError):
    code = "unauthorized"


class Forbidden(ComplaintflowError):
    code = "forbidden"


class Conflict(ComplaintflowError):
    """The thing changed meanwhile (a task completed by someone else, a stale version)."""

    code = "conflict"


class StaleInstance(Conflict):
    """The instance was saved by someone else between our read and our write."""


class InvalidData(ComplaintflowError):
    """Submitted data fails its form: `fields` maps a field name to its messages."""

    code = "invalid_data"

    def __init__(self, message: str, fields: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.fields = fields


class InvalidDiagram(ComplaintflowError):
    """A diagram that cannot be deployed: each finding says where and how to fix it."""

    code = "invalid_diagram"

    def __init__(self, path: str, findings: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(findings))
        self.findings = findings
