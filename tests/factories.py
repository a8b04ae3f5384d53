"""Form data for tests, filled from a form's JSON Schema: every field gets a plausible value,
and the test names the ones that steer the path."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

# Text a careless or hostile client might send: scripts, control characters, other scripts.
_NOISE = [
    "<script>alert(1)</script>",
    "\x00",
    "\t",
    "'; DROP TABLE events; --",
    "😀",
    "電梯",
    "é",
    " ",
    "\n",
]


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


def random_value(field: dict[str, Any], rng: random.Random) -> Any:
    if "enum" in field:
        return rng.choice(field["enum"])
    kind = field.get("type")
    if kind == "boolean":
        return rng.random() < 0.5
    if kind in ("integer", "number"):
        return rng.randint(int(field.get("minimum", 0)), int(field.get("maximum", 1000)))
    fmt = field.get("format")
    if fmt == "date-time":
        return (datetime.now(UTC) - timedelta(minutes=rng.randint(0, 10_000))).isoformat()
    if fmt == "date":
        return (date.today() - timedelta(days=rng.randint(0, 400))).isoformat()
    if fmt == "email":
        return f"user{rng.randint(1, 999)}@example.com"
    low, high = field.get("minLength", 0), min(field.get("maxLength", 200), 300)
    text = "".join(rng.choice(_NOISE) for _ in range(rng.randint(low, max(low, high // 10))))
    return text[:high].ljust(low, "x")


def random_fill(schema: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Every required field and some optional ones, with random values the schema allows."""
    required = set(schema.get("required", []))
    return {
        name: random_value(field, rng)
        for name, field in schema.get("properties", {}).items()
        if name in required or rng.random() < 0.5
    }
