"""The bundled forms: bilingual, bounded, carrying the seed's conduct notes, and in agreement with
the server's validation for any data their schema allows — including a client that fills every
form at random and drives complaints to the end."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator

from complaintflow.app import services
from complaintflow.engine import queries
from complaintflow.errors import InvalidData
from complaintflow.forms import FormValidator

from .conftest import BUNDLED
from .factories import random_fill

FORMS = sorted(BUNDLED.glob("forms/*/*.json"))

# Conduct notes (PROCEDURES.md) and the forms whose instructions must show them.
CONDUCT_NOTES = {
    "A-4.3": ["facility/contact"],
    "B-2.1": ["bar/listen"],
    "B-2.2": ["bar/listen"],
    "B-3.6": ["bar/recontact"],
    "B-3.7": ["bar/listen", "bar/resolve", "bar/recontact"],
    "B-3.9": ["bar/listen", "bar/resolve", "bar/recontact"],
    "B-3.10": ["bar/resolve", "bar/recontact"],
    "C-1.1": ["hotel/listen"],
    "C-1.2": ["hotel/listen"],
    "C-1.3": ["hotel/listen"],
    "C-2.2": ["hotel/listen"],
    "C-3.2": ["hotel/resolve"],
    "C-3.3": ["hotel/resolve"],
}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def form_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name.removesuffix('.schema.json')}"


@pytest.mark.parametrize("path", FORMS, ids=form_id)
def test_form_is_a_closed_bilingual_bounded_schema(path: Path) -> None:
    form = load(path)
    Draft202012Validator.check_schema(form)
    assert form["type"] == "object" and form["additionalProperties"] is False
    assert form["title"] and form["x-i18n"]["en"]["title"]
    for name, field in form["properties"].items():
        assert field["title"] and field["x-i18n"]["en"]["title"], name
        if field.get("type") == "string":
            assert 0 < field["maxLength"] <= 4000, name
        if "enum" in field:
            assert set(field["x-enum-titles"]) == set(field["enum"]), name
            assert set(field["x-i18n"]["en"]["enum-titles"]) == set(field["enum"]), name
    for note in form.get("x-instructions", []):
        assert note["clause"] and note["zh-Hant"] and note["en"]


@pytest.mark.parametrize(
    ("clause", "form"),
    [(clause, form) for clause, forms in CONDUCT_NOTES.items() for form in forms],
)
def test_conduct_note_is_an_instruction_of_its_form(clause: str, form: str) -> None:
    notes = load(BUNDLED / "forms" / f"{form}.schema.json")["x-instructions"]
    assert clause in {note["clause"] for note in notes}


@pytest.mark.parametrize("path", FORMS, ids=form_id)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_whatever_the_schema_allows_the_server_accepts(path: Path, data: st.DataObject) -> None:
    form = load(path)
    sample = data.draw(from_schema(form))
    cleaned = FormValidator(form).clean(sample)
    assert json.loads(json.dumps(cleaned).replace("\\ufffd", "\\u0000")) == sample


def test_infinity_and_nan_are_not_numbers_a_form_takes() -> None:
    form = {
        "type": "object",
        "properties": {"cost": {"type": "number"}, "parts": {"type": "array"}},
    }
    validator = FormValidator(form)
    for value in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(InvalidData) as refused:
            validator.clean({"cost": value, "parts": [{"cost": value}]})
        assert refused.value.fields == {
            "cost": ["Must be a number."],
            "parts": ["Must be a number."],
        }
    assert validator.clean({"cost": 1e308, "parts": []}) == {"cost": 1e308, "parts": []}


@pytest.mark.parametrize("key", ["facility", "bar", "hotel"])
def test_random_form_data_drives_every_complaint_to_its_end(
    make_app: Callable[..., Flask], key: str
) -> None:
    """A client that fills every form at random, as a load test or a careless user would:
    every complaint reaches its end (loops such as a rework are taken at random, so they end)."""
    svc = services(make_app())
    rng = random.Random(f"complaintflow-{key}")
    with svc.store.read() as session:
        diagram = svc.engine.diagram(svc.engine.current_version(session, key))
    start_role = diagram.role_of(diagram.start_spec) or "admin"
    for _ in range(8):
        intake = random_fill(diagram.intake_form, rng)
        instance_id = svc.engine.start(key, intake, start_role)
        for _ in range(80):
            with svc.store.read() as session:
                ready = queries.ready_tasks_of(session, instance_id)
                status = queries.get_instance(session, instance_id).status
            if not ready:
                break
            task = rng.choice(ready)
            form = diagram.form_of(diagram.spec.task_specs[task.bpmn_id])
            svc.engine.complete(task.id, random_fill(form, rng), task.role)
        assert status == "completed", (intake, status)
