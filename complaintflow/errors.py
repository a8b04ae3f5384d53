"""Errors a user can cause, each with a message fit to show them.

They are raised where the problem is found and translated once at the edge: the API turns them
into an HTTP status and a JSON body, the CLI into one line on stderr and exit code 1.
"""

from __future__ import annotations

from typing import Any


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


class TooLarge(ComplaintflowError):
    code = "too_large"


class Conflict(ComplaintflowError):
    """The thing changed meanwhile (a task completed by someone else, a stale version)."""

    code = "conflict"


class StaleInstance(Conflict):
    """The instance was saved by someone else between our read and our write."""


class SchemaMismatch(ComplaintflowError):
    """The database's schema is not this code's: never set up, or by another version."""


# A message for people as a template and its values, so that pages can show it in their
# language: ("At most %(limit)s characters.", {"limit": 200}).
Problem = tuple[str, dict[str, Any]]


def N_(template: str) -> str:
    """Marks a message template for the translation catalogs; returns it unchanged."""
    return template


class UnreadableValue(ComplaintflowError):
    """A value sent in an address or a form that cannot be read (a date, a number, a choice):
    the message in English, and as a template with its values for a page in the reader's
    language."""

    def __init__(self, template: str, **values: Any) -> None:
        super().__init__(template % values)
        self.problem: Problem = (template, values)


class InvalidData(ComplaintflowError):
    """Submitted data fails its form: `problems` maps a field name to what is wrong with it."""

    code = "invalid_data"

    def __init__(self, problems: dict[str, list[Problem]]) -> None:
        super().__init__("some fields are not valid: " + ", ".join(sorted(problems)))
        self.problems = problems

    @property
    def fields(self) -> dict[str, list[str]]:
        """The messages in English, per field (the API's `fields`)."""
        return {
            name: [template % values for template, values in problems]
            for name, problems in self.problems.items()
        }


class InvalidDiagram(ComplaintflowError):
    """A diagram that cannot be deployed: each finding says where and how to fix it."""

    code = "invalid_diagram"

    def __init__(self, path: str, findings: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(findings))
        self.findings = findings
