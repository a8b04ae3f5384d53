"""Checking submitted data against a task's form (JSON Schema), with messages per field.

Only the fields a form declares reach the workflow data: the schemas say
`additionalProperties: false`, and anything else is refused here with a message, never merged.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from .errors import InvalidData

FORM_ERROR = "_form"  # the key of messages that belong to the whole form, not one field


def _message(error: ValidationError) -> str:
    kind = error.validator
    expected: Any = error.validator_value
    if kind == "enum":
        return "Choose one of: " + ", ".join(str(v) for v in expected)
    if kind == "maxLength":
        return f"At most {expected} characters."
    if kind == "minLength":
        return "This field is required." if expected == 1 else f"At least {expected} characters."
    if kind == "type":
        names: dict[str, str] = {
            "string": "text",
            "integer": "a whole number",
            "number": "a number",
            "boolean": "true or false",
            "object": "an object",
            "array": "a list",
        }
        wanted: list[str] = expected if isinstance(expected, list) else [expected]
        return "Must be " + " or ".join(names.get(w, w) for w in wanted) + "."
    if kind == "format":
        return {
            "date-time": "Must be a date and time such as 2026-11-27T14:30:00+08:00.",
            "date": "Must be a date such as 2026-11-27.",
            "email": "Must be an email address.",
        }.get(expected, f"Must be a valid {expected}.")
    return error.message


def _storable(value: Any) -> Any:
    """NUL characters cannot be stored in PostgreSQL text or JSON: they become U+FFFD, which
    keeps lengths (and so the form's limits) as they were."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {key: _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


class FormValidator:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._validator = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        )

    def clean(self, data: Any) -> dict[str, Any]:
        """The data if it fits the form; otherwise InvalidData with messages per field."""
        if not isinstance(data, dict):
            raise InvalidData(
                "data must be a JSON object of form fields",
                {FORM_ERROR: ["Send the form's fields as a JSON object."]},
            )
        data = _storable(data)
        fields: dict[str, list[str]] = {}
        for error in self._validator.iter_errors(data):
            for name, message in self._locate(error, data):
                fields.setdefault(name, []).append(message)
        if fields:
            raise InvalidData("some fields are not valid: " + ", ".join(sorted(fields)), fields)
        return data

    @staticmethod
    def _locate(error: ValidationError, data: dict[str, Any]) -> list[tuple[str, str]]:
        expected: Any = error.validator_value
        schema: Any = error.schema
        if error.validator == "required" and not error.absolute_path:
            return [(name, "This field is required.") for name in expected if name not in data]
        if error.validator == "additionalProperties" and not error.absolute_path:
            known = schema.get("properties", {})
            return [(name, "This form has no such field.") for name in data if name not in known]
        name = str(error.absolute_path[0]) if error.absolute_path else FORM_ERROR
        return [(name, _message(error))]
