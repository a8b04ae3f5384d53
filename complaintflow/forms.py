"""Checking submitted data against a task's form (JSON Schema), with messages per field.

Only the fields a form declares reach the workflow data: the schemas say
`additionalProperties: false`, and anything else is refused here with a message, never merged.
"""

from __future__ import annotations

import math
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from .errors import N_, InvalidData, Problem

FORM_ERROR = "_form"  # the key of messages that belong to the whole form, not one field


_TYPES = {
    "string": N_("Must be text."),
    "integer": N_("Must be a whole number."),
    "number": N_("Must be a number."),
    "boolean": N_("Must be true or false."),
    "object": N_("Must be an object."),
    "array": N_("Must be a list."),
}
_FORMATS = {
    "date-time": N_("Must be a date and time such as 2026-11-27T14:30:00+08:00."),
    "date": N_("Must be a date such as 2026-11-27."),
    "email": N_("Must be an email address."),
}
REQUIRED = N_("This field is required.")


def _problem(error: ValidationError) -> Problem:
    kind = error.validator
    expected: Any = error.validator_value
    if kind == "enum":
        return N_("Choose one of: %(choices)s"), {"choices": ", ".join(str(v) for v in expected)}
    if kind == "maxLength":
        return N_("At most %(limit)s characters."), {"limit": expected}
    if kind == "minLength":
        if expected == 1:
            return REQUIRED, {}
        return N_("At least %(limit)s characters."), {"limit": expected}
    if kind == "type" and isinstance(expected, str) and expected in _TYPES:
        return _TYPES[expected], {}
    if kind == "format" and expected in _FORMATS:
        return _FORMATS[expected], {}
    if kind in ("minimum", "maximum"):
        template = N_("At least %(limit)s.") if kind == "minimum" else N_("At most %(limit)s.")
        return template, {"limit": expected}
    return "%(detail)s", {"detail": error.message}


def _finite(value: Any) -> bool:
    """No infinity or NaN anywhere in it: JSON has neither (PostgreSQL refuses them, and
    SQLite would keep a history no JSON reader can read), yet Python's JSON and float() read
    them, and JSON Schema takes them for numbers."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(map(_finite, value.values()))
    if isinstance(value, list):
        return all(map(_finite, value))
    return True


def storable(value: Any) -> Any:
    """NUL characters cannot be stored in PostgreSQL text or JSON: they become U+FFFD, which
    keeps lengths (and so the form's limits) as they were."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


class FormValidator:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._validator = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        )

    def clean(self, data: Any) -> dict[str, Any]:
        """The data if it fits the form; otherwise InvalidData with problems per field."""
        if not isinstance(data, dict):
            raise InvalidData({FORM_ERROR: [(N_("Send the form's fields as a JSON object."), {})]})
        data = storable(data)
        problems: dict[str, list[Problem]] = {}
        for name, value in data.items():
            if not _finite(value):
                problems[name] = [(_TYPES["number"], {})]
        for error in self._validator.iter_errors(data):
            for name, problem in self._locate(error, data):
                found = problems.setdefault(name, [])
                if problem not in found:  # each missing field is reported by every "required" error
                    found.append(problem)
        if problems:
            raise InvalidData(problems)
        return data

    @staticmethod
    def _locate(error: ValidationError, data: dict[str, Any]) -> list[tuple[str, Problem]]:
        expected: Any = error.validator_value
        schema: Any = error.schema
        if error.validator == "required" and not error.absolute_path:
            return [(name, (REQUIRED, {})) for name in expected if name not in data]
        if error.validator == "additionalProperties" and not error.absolute_path:
            known = schema.get("properties", {})
            unknown = N_("This form has no such field.")
            return [(name, (unknown, {})) for name in data if name not in known]
        name = str(error.absolute_path[0]) if error.absolute_path else FORM_ERROR
        return [(name, _problem(error))]
