"""A task's form on a web page: fields drawn from its JSON Schema, and the submitted HTML form
read back into typed data for the engine to validate.

Only what a browser cannot say is converted here (a checkbox, "yes"/"no", a local date and time
without a zone); whether the data is right is the engine's job, so the API and the pages refuse
the same things with the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from werkzeug.datastructures import MultiDict

from .i18n import choice_label, schema_text

RADIO_LIMIT = 4  # choices shown as radio buttons; more become a list


@dataclass
class Field:
    name: str
    kind: str  # text, textarea, radio, select, boolean, date, datetime, number
    label: str
    help: str
    required: bool
    value: Any = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    max_length: int | None = None
    errors: list[str] = field(default_factory=list)


def _kind(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return "radio" if len(spec["enum"]) <= RADIO_LIMIT else "select"
    if spec.get("type") == "boolean":
        return "boolean"
    if spec.get("type") in ("integer", "number"):
        return "number"
    if spec.get("format") == "date":
        return "date"
    if spec.get("format") == "date-time":
        return "datetime"
    return "textarea" if spec.get("x-widget") == "textarea" else "text"


def visible(schema: dict[str, Any], public: bool) -> dict[str, dict[str, Any]]:
    """The fields a page shows: all for staff, those not marked `x-public: false` for the
    public intake page."""
    properties: dict[str, dict[str, Any]] = schema.get("properties", {})
    return {n: s for n, s in properties.items() if not public or s.get("x-public", True)}


def fields_for(
    schema: dict[str, Any],
    values: dict[str, Any],
    errors: dict[str, list[str]],
    tz: ZoneInfo,
    public: bool = False,
) -> list[Field]:
    required = set(schema.get("required", []))
    result = []
    for name, spec in visible(schema, public).items():
        kind = _kind(spec)
        value = values.get(name, "")
        if kind == "datetime":
            value = (
                _local_input(value, tz) if value else datetime.now(tz).strftime("%Y-%m-%dT%H:%M")
            )
        result.append(
            Field(
                name=name,
                kind=kind,
                label=schema_text(spec),
                help=schema_text(spec, "description"),
                required=name in required,
                value=value,
                errors=errors.get(name, []),
                options=[(str(v), choice_label(spec, v)) for v in spec.get("enum", [])],
                max_length=spec.get("maxLength"),
            )
        )
    return result


def _local_input(value: Any, tz: ZoneInfo) -> str:
    """An ISO date-time as a datetime-local input shows it, in the site's zone."""
    try:
        return datetime.fromisoformat(str(value)).astimezone(tz).strftime("%Y-%m-%dT%H:%M")
    except ValueError:
        return str(value)


def read(
    schema: dict[str, Any], form: MultiDict[str, str], tz: ZoneInfo, public: bool = False
) -> dict[str, Any]:
    """The submitted fields as JSON values; fields left empty are left out. On the public page,
    required fields the complainant does not see take their `default`."""
    data: dict[str, Any] = {}
    for name, spec in schema.get("properties", {}).items():
        if public and not spec.get("x-public", True):
            if "default" in spec:
                data[name] = spec["default"]
            continue
        raw = form.get(name, "").strip()
        if raw == "":
            continue
        data[name] = _convert(spec, raw, tz)
    return data


def _convert(spec: dict[str, Any], raw: str, tz: ZoneInfo) -> Any:
    kind = spec.get("type")
    if kind == "boolean":
        return {"yes": True, "no": False}.get(raw, raw)
    if kind in ("integer", "number"):
        try:
            number = float(raw)
        except ValueError:
            return raw  # the engine says "must be a number"
        return int(number) if kind == "integer" and number.is_integer() else number
    if spec.get("format") == "date-time":
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            return raw
        return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).isoformat()
    return raw
