"""Checking diagrams before anything is stored: one broken diagram per rule, hostile XML, and
the bundled diagrams passing. Each finding must say where and how to fix it."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from complaintflow.errors import InvalidDiagram
from complaintflow.handlers import load_handlers
from complaintflow.sla import SlaTable
from complaintflow.validation import check_file

from .conftest import BUNDLED, MECHANICS

MECHANICS_SLA = SlaTable(MECHANICS / "sla.json", {})
registry = load_handlers()


@pytest.fixture
def broken(tmp_path: Path) -> Callable[..., list[str]]:
    """The findings for the test diagram with one text replaced (in the diagram or a form)."""

    def check(old: str, new: str, file: str = "mechanics.bpmn") -> list[str]:
        folder = tmp_path / "diagram"
        shutil.copytree(MECHANICS, folder)
        target = folder / file
        text = target.read_text(encoding="utf-8")
        assert old in text, f"{old!r} is not in {file}"
        target.write_text(text.replace(old, new, 1), encoding="utf-8")
        with pytest.raises(InvalidDiagram) as refused:
            check_file(folder / "mechanics.bpmn", registry, MECHANICS_SLA)
        return refused.value.findings

    return check


RULES = [
    (
        'id="test.flaky"',
        'id="test.nothing"',
        r"flaky \(外部系統\), line \d+: no handler is called 'test.nothing'; known: .*record.create",
    ),
    (
        '<spiffworkflow:parameter id="description" type="str" value="text" />',
        "",
        r"record \(登記\), line \d+: record.create needs the parameter 'description'",
    ),
    (
        'value="text" />',
        'value="text" /><spiffworkflow:parameter id="colour" type="str" value="1" />',
        r"record.create has no parameter 'colour' \(it takes: complainant, description",
    ),
    (
        'value="name" />',
        'value="name +" />',
        r"parameter 'complainant' = 'name \+' does not compile",
    ),
    (
        'default="f6"',
        "",
        r"gw_outcome \(解決了嗎？\), line \d+: mark one outgoing flow as the default",
    ),
    (
        "solved == False<",
        "solved ==<",
        r"f5 \(否\), line \d+: the condition 'solved ==' does not compile",
    ),
    (
        "solved == False<",
        "().__class__.__base__<",
        r"invalid attribute name because it starts with \"_\"",
    ),
    (
        'sla["handle"]',
        '"PT1H"',
        r"handle_late \(逾時\), line \d+: write the timer as sla\[\"<name>\"\]",
    ),
    (
        'sla["handle"]',
        'sla["never"]',
        r"reads sla\['never'\], but procedure 'mechanics' has no such deadline in bpmn/sla.json \(it has: handle\)",
    ),
    (
        "<bpmn:flowNodeRef>check</bpmn:flowNodeRef>",
        "",
        r"check \(主管檢查\), line \d+: put this userTask in the lane",
    ),
    ('<bpmn:lane id="boss"', '<bpmn:lane id="BossLane"', r"the lane id is its role key"),
    (
        'value="forms/check.json"',
        'value="forms/missing.json"',
        r"check \(主管檢查\), line \d+: form 'forms/missing.json' does not exist",
    ),
    (
        'value="forms/check.json"',
        'value="../../../etc/passwd"',
        r"lies outside the diagram's folder",
    ),
    (
        '<spiffworkflow:property name="numberPrefix" value="T" />',
        "",
        # The process id quoted, as in every finding about the process.
        r"^process 'mechanics': add the process property numberPrefix",
    ),
    (
        'value="forms/check.json"',
        'value=""',
        r"check \(主管檢查\), line \d+: name its form with the property formJsonSchemaFilename",
    ),
    (
        "value=\"'boss'\"",
        'value="boss"',
        r"escalate_late \(升級\), line \d+: parameter 'role' = 'boss' names no field of the"
        r" forms; to pass the text itself, quote it: value=\"'boss'\"",
    ),
    (
        'value="name" />',
        'value="name + suffix" />',
        r"parameter 'complainant' = 'name \+ suffix' reads 'suffix', which no form of this"
        r" diagram has",
    ),
    (
        "solved == False<",
        "resolved == False<",
        r"f5 \(否\), line \d+: the condition 'resolved == False' reads 'resolved', which no"
        r" form of this diagram has \(did you mean 'solved'\?\)",
    ),
    (
        '"verdict": {',
        '"solved": {"type": "string", "maxLength": 5}, "verdict": {',
        r"check \(主管檢查\), line \d+: form 'forms/check.json' has the field 'solved', which"
        r" form 'forms/handle.json' defines otherwise; the forms of a procedure share one set"
        r" of data",
        "forms/check.json",
    ),
    (
        'words = len(get("note", "").split())',
        "import os",
        r"the script does not compile: Line 1: Import statements are not allowed",
    ),
    (
        '"additionalProperties": false,',
        "",
        r"form 'forms/check.json' must have \"additionalProperties\": false",
        "forms/check.json",
    ),
    (
        '"verdict": {',
        '"sla": {"type": "string", "maxLength": 5}, "verdict": {',
        r"has the field 'sla'",
        "forms/check.json",
    ),
    ('"type": "object",', '"type": "objekt",', r"is not a valid JSON Schema", "forms/check.json"),
    (
        '"required": ["verdict"],',
        '"required": ["verdict"',
        r"form 'forms/check.json' is not valid JSON",
        "forms/check.json",
    ),
]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule[2][:40])
def test_each_rule_gives_its_finding(broken: Callable[..., list[str]], rule: tuple) -> None:
    old, new, expected, *file = rule
    findings = broken(old, new, *file)
    assert any(re.search(expected, f) for f in findings), findings


def _mechanics_with(tmp_path: Path, *changes: tuple[str, str]) -> Path:
    folder = tmp_path / "diagram"
    shutil.copytree(MECHANICS, folder)
    path = folder / "mechanics.bpmn"
    text = path.read_text(encoding="utf-8")
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_task_without_a_type_must_become_a_user_or_service_task(tmp_path: Path) -> None:
    # SpiffWorkflow would run it as a manual task: waiting for someone, with no form.
    path = _mechanics_with(
        tmp_path,
        ('<bpmn:scriptTask id="tally" name="統計">', '<bpmn:task id="tally" name="統計">'),
        ("</bpmn:scriptTask>", "</bpmn:task>"),
        ('<bpmn:script>words = len(get("note", "").split())</bpmn:script>', ""),
    )
    with pytest.raises(InvalidDiagram) as refused:
        check_file(path, registry, MECHANICS_SLA)
    (finding,) = refused.value.findings
    assert re.fullmatch(
        r"tally \(統計\), line \d+: a task without a type does nothing here: make it a user task"
        r" \(in the lane of the role that does it, with its form in the property"
        r" formJsonSchemaFilename\) or a service task \(with a handler\)",
        finding,
    )


def test_conditions_and_parameters_may_read_what_scripts_and_handlers_put_into_the_data(
    tmp_path: Path,
) -> None:
    path = _mechanics_with(
        tmp_path,
        ("solved == False<", "not solved and (words > 3 or flaky_result or len(sla) > 0)<"),
        ('value="text" />', 'value="text + str([n for n in range(3)])" />'),
    )
    assert check_file(path, registry, MECHANICS_SLA).diagram.key == "mechanics"


HOSTILE = {
    "external entity": b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&e;</bpmn:definitions>',
    "entity expansion": b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
    b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><d>&c;</d>',
    "not xml": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "not bpmn": b"<html><body>hello</body></html>",
    "huge": b"<x>" + b" " * (6 * 1024 * 1024) + b"</x>",
    "no process": b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'
    b' id="d" targetNamespace="x"/>',
}
HOSTILE["not valid bpmn"] = (
    b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d"'
    b' targetNamespace="x"><bpmn:process id="p" isExecutable="true"><bpmn:banana/>'
    b"</bpmn:process></bpmn:definitions>"
)
HOSTILE_FINDINGS = {
    "not valid bpmn": "line 1: not valid BPMN 2.0 (XML Schema)",
    "external entity": "DOCTYPE and ENTITY declarations are not allowed",
    "entity expansion": "DOCTYPE and ENTITY declarations are not allowed",
    "not xml": "not well-formed XML",
    "not bpmn": "not a BPMN 2.0 file",
    "huge": "the file is larger than 5120 KB",
    "no process": "exactly one executable process",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_or_foreign_files_get_one_clear_finding(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "upload.bpmn"
    path.write_bytes(HOSTILE[kind])
    with pytest.raises(InvalidDiagram) as refused:
        check_file(path, registry, MECHANICS_SLA)
    assert refused.value.findings == [refused.value.findings[0]]
    assert HOSTILE_FINDINGS[kind] in refused.value.findings[0]


@pytest.mark.parametrize("key", ["facility", "bar", "hotel"])
def test_the_bundled_diagrams_pass_every_rule(key: str) -> None:
    checked = check_file(BUNDLED / f"{key}.bpmn", registry, SlaTable(BUNDLED / "sla.json", {}))
    assert checked.diagram.key == key
    assert all(lane.description for lane in checked.diagram.lanes)
