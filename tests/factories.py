"""Form data for tests, filled from a form's JSON Schema: every field gets a plausible value,
and the test names the ones that steer the path."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any


def sample(name: str, field: dict[str, Any]) -> Any:
    if "enum" in field:
        return field["enum"][0]
    kind = field.get("type")
    if kind == "boolean":
        return True
    if kind == "integer":
        return int(field.get("minimum", 1))
    if kind == "number":
        return float(field.get("minimum", 1))
    fmt = field.get("format")
    if fmt == "date-time":
        return datetime.now(UTC).isoformat()
    if fmt == "date":
        return date.today().isoformat()
    if fmt == "email":
        return "someone@example.com"
    return f"測試 {name}"[: field.get("maxLength", 200)]


def fill(schema: dict[str, Any], **choices: Any) -> dict[str, Any]:
    """Every field of the form, with `choices` where given."""
    unknown = set(choices) - set(schema.get("properties", {}))
    assert not unknown, f"the form has no fields {unknown}"
    return {
        name: choices[name] if name in choices else sample(name, field)
        for name, field in schema.get("properties", {}).items()
    }
