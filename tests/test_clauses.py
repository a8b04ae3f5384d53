"""The clause table of bpmn/README.md against the diagrams, the forms and the tests: every
element it names carries the clause, every element carrying a clause is named, every test it
names exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from lxml import etree

from complaintflow.diagrams import NS

from .conftest import BUNDLED

DIAGRAM_OF = {"A": "facility", "B": "bar", "C": "hotel"}
TESTS = Path(__file__).parent


def clause_table() -> dict[str, tuple[str, str]]:
    """clause -> (carried by, tests), from the README's table."""
    rows = {}
    for line in (BUNDLED / "README.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| ([ABC]-[\w.]+) \| (.+) \| (.+) \|$", line)
        if match:
            rows[match[1]] = (match[2], match[3])
    return rows


def carried_clauses(key: str) -> dict[str, set[str]]:
    """element id -> the clauses the first line of its documentation lists."""
    tree = etree.parse(str(BUNDLED / f"{key}.bpmn"))
    carried = {}
    for element in tree.iter():
        doc = element.find("bpmn:documentation", NS)
        if doc is not None and element.get("id") and doc.text:
            first = doc.text.strip().splitlines()[0]
            carried[element.get("id")] = {c.strip() for c in first.split(",")}
    return carried


def instructed_clauses(form: str) -> set[str]:
    schema = json.loads((BUNDLED / form).read_text(encoding="utf-8"))
    return {note["clause"] for note in schema.get("x-instructions", [])}


def test_every_clause_of_the_procedures_has_a_row() -> None:
    expected = (
        ["A-1", "A-2", "A-3.1", "A-3.2", "A-3.3", "A-3.4"]
        + [f"A-4.{i}" for i in range(1, 7)]
        + ["A-5", "A-doc"]
        + [f"B-1.{i}" for i in range(1, 7)]
        + [f"B-2.{i}" for i in range(1, 5)]
        + [f"B-3.{i}" for i in range(1, 13)]
        + ["C-1.1", "C-1.2", "C-1.3", "C-2.1", "C-2.2"]
        + [f"C-3.{i}" for i in range(1, 5)]
        + [f"C-4.{i}" for i in range(1, 5)]
        + ["C-5.1", "C-5.2"]
    )
    assert sorted(clause_table()) == sorted(expected)


@pytest.mark.parametrize("clause", sorted(clause_table()))
def test_every_clause_is_carried_by_the_diagrams(clause: str) -> None:
    carried_by, _ = clause_table()[clause]
    if clause == "A-doc":
        return  # carried by the versions table, not by a diagram element
    carried = carried_clauses(DIAGRAM_OF[clause[0]])
    elements, _, instructions = carried_by.partition("x-instructions of")
    named = re.findall(r"`([^`]+)`", elements)
    assert named, f"{clause}: the row names nothing"
    for token in named:
        if token.startswith("forms/"):
            assert (BUNDLED / token).is_file(), f"{clause}: no form {token}"
        elif token in carried:
            assert clause in carried[token], f"{token} does not list {clause} in its documentation"
    for form in re.findall(r"`([^`]+)`", instructions):
        assert clause in instructed_clauses(form), f"{clause} is not an instruction of {form}"
    listed_here = {element for element, clauses in carried.items() if clause in clauses}
    assert listed_here <= set(named), f"{clause}: elements carry it but the row omits them"


@pytest.mark.parametrize("clause", sorted(clause_table()))
def test_every_clause_names_tests_that_exist(clause: str) -> None:
    _, tests = clause_table()[clause]
    names = re.findall(r"`?(test_\w+)`?", tests)
    assert names, f"{clause}: no test named"
    source = "\n".join(p.read_text(encoding="utf-8") for p in TESTS.glob("test_*.py"))
    for name in names:
        assert re.search(rf"^def {name}\(", source, re.MULTILINE), f"{clause}: no test {name}"
