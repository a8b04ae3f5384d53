"""Diagrams written elsewhere, as process owners bring them (Camunda Modeler 7 and 8, the bpmn.io
demo, a script, an old editor, files that are not diagrams at all), fed to the real command line:
`complaintflow validate` and `complaintflow deploy --dry-run`, in their own process, on a database
nobody initialised. A valid diagram prints "valid"; any other file exits with status 1 and prints
one `error:` line per finding, each naming its element, and never a traceback.

The files are in tests/diagrams/corpus/ (forms beside them in forms/); each was written by hand
the way its tool exports it.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "diagrams" / "corpus"

VALID = "valid"

# file → VALID, or every finding expected: (the element it names, or None; a regex it matches).
# The findings must be exactly these: each pattern matches one line, and no line is left over.
EXPECTED: dict[str, str | list[tuple[str | None, str]]] = {
    "no-di.bpmn": VALID,  # no BPMNDI at all: drawing is not needed to run
    "parallel-valid.bpmn": VALID,
    "subprocess-valid.bpmn": VALID,
    "utf16.bpmn": VALID,  # UTF-16 with a byte order mark is XML like any other
    "latin1-declared.bpmn": VALID,  # encoding="ISO-8859-1", an é in a name
    "camunda7-approval.bpmn": [
        ("Process_0h3s9xm", r"the process id is the procedure key"),
        ("Process_0h3s9xm", r"add the process property numberPrefix"),
        (None, r"^the process has no lanes"),
        ("StartEvent_1", r"Camunda 7's formKey is not used here: name a JSON Schema form"),
        ("Activity_review", r"line \d+: name its form with the property formJsonSchemaFilename"),
        ("Activity_review", r"Camunda 7's formKey is not used here: name a JSON Schema form"),
        ("Activity_review", r"Camunda 7's assignee is not used here: put the task in the lane"),
        ("Activity_review", r"Camunda 7's candidateGroups is not used here: put the task in"),
        ("Activity_manager_approval", r"line \d+: name its form with the property"),
        ("Activity_manager_approval", r"Camunda 7's candidateGroups is not used here"),
        ("Activity_payout", r"line \d+: name a handler with spiffworkflow:serviceTaskOperator"),
        ("Activity_payout", r"Camunda 7's class is not used here: name a handler"),
        ("Gateway_amount", r"mark one outgoing flow as the default"),
        ("Flow_large", r"'\$\{amount > 100\}' does not compile \(a Camunda expression\?"),
        ("Flow_small", r"'\$\{amount <= 100\}' does not compile .*as Python .*: amount <= 100\)"),
        ("Event_review_overdue", r"write the timer as sla\[\"<name>\"\]"),
        # camunda:historyTimeToLive and camunda:versionTag change nothing here: no finding.
    ],
    "camunda8-zeebe.bpmn": [
        ("complaint-compensation", r"the process id is the procedure key"),
        ("complaint-compensation", r"add the process property numberPrefix"),
        (None, r"^the process has no lanes"),
        ("StartEvent_1", r"Camunda 8 \(Zeebe\)'s formDefinition is not used here"),
        ("Activity_assess", r"line \d+: name its form with the property formJsonSchemaFilename"),
        ("Activity_assess", r"Camunda 8 \(Zeebe\)'s formDefinition is not used here"),
        ("Activity_assess", r"Camunda 8 \(Zeebe\)'s assignmentDefinition is not used here"),
        ("Activity_payout", r"line \d+: name a handler with spiffworkflow:serviceTaskOperator"),
        ("Activity_payout", r"Zeebe\)'s taskDefinition is not used here: name a handler"),
        ("Activity_payout", r"Camunda 8 \(Zeebe\)'s ioMapping is not used here"),
        ("Flow_large", r"'=amount > 100' does not compile \(a Camunda expression\?"),
        # zeebe:versionTag, like Camunda 7's attribute, changes nothing here: no finding.
    ],
    "bpmnio-default.bpmn": [
        ("Process_1", r'is not marked executable: set isExecutable="true"'),
    ],
    "unsupported-elements.bpmn": [
        ("insurer_procedure", r"callActivity is not supported"),
        ("assess_compensation", r"businessRuleTask is not supported"),
        ("gw_route", r"complexGateway is not supported"),
        ("wait_insurer_reply", r"a message intermediateCatchEvent would wait forever"),
        ("complaint_withdrawn", r"a signal boundaryEvent would wait forever"),
        ("send_acknowledgement", r"sendTask is not supported"),
    ],
    "unreachable.bpmn": [
        ("call_back", r"nothing leads here from a start event"),
        ("closed_elsewhere", r"nothing leads here from a start event"),
    ],
    "two-processes.bpmn": [
        (None, r"exactly one executable process .*; found 2: front_desk, maintenance$"),
    ],
    # bpmn-js's "download as SVG" declares a DOCTYPE, refused before the root element is seen.
    "not-bpmn.xml": [(None, r"^DOCTYPE and ENTITY declarations are not allowed")],
    "empty.bpmn": [(None, r"^not well-formed XML: Document is empty")],
    "binary.bpmn": [(None, r"^not well-formed XML")],
}

COMMANDS = {"validate": ["validate"], "deploy --dry-run": ["deploy", "--dry-run"]}


def _cases() -> list:
    return [
        pytest.param(
            file,
            command,
            id=f"{file}-{command}",
        )
        for file in EXPECTED
        for command in COMMANDS
    ]


def test_the_table_covers_the_corpus() -> None:
    files = {p.name for p in CORPUS.iterdir() if p.is_file()}
    assert files == set(EXPECTED)


def _run(command: str, path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The command as an operator runs it, with settings of its own and no database set up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTFLOW_")}
    env["COMPLAINTFLOW_HOME"] = str(tmp_path / "home")
    env["COMPLAINTFLOW_DATABASE_URL"] = f"sqlite:///{tmp_path / 'x.db'}"
    return subprocess.run(
        [sys.executable, "-m", "complaintflow", *COMMANDS[command], str(path)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _names(finding: str, element: str | None) -> bool:
    """A finding starts with where it is: the element's id (`process <id>` for a process)."""
    return element is None or bool(re.match(rf"(process )?'?{re.escape(element)}\b", finding))


@pytest.mark.parametrize(("file", "command"), _cases())
def test_a_diagram_from_elsewhere_is_valid_or_gets_its_findings(
    file: str, command: str, tmp_path: Path
) -> None:
    path = CORPUS / file
    result = _run(command, path, tmp_path)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]

    # Checking needs no database: none was initialised, and none gets created.
    database = tmp_path / "x.db"
    if database.exists():
        with sqlite3.connect(database) as db:
            assert db.execute("select name from sqlite_master").fetchall() == []

    expected = EXPECTED[file]
    if expected == VALID:
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"{path}: valid ("), result.stdout
        assert "error:" not in result.stderr
        return

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    prefix = f"error: {path}: "
    assert all(line.startswith(prefix) for line in lines), result.stderr
    findings = [line.removeprefix(prefix) for line in lines]

    matched: set[int] = set()
    for element, pattern in expected:
        hits = [i for i, f in enumerate(findings) if _names(f, element) and re.search(pattern, f)]
        assert len(hits) == 1, f"{element} {pattern!r} matches {len(hits)} of:\n" + "\n".join(
            findings
        )
        matched.update(hits)
    unexpected = [f for i, f in enumerate(findings) if i not in matched]
    assert not unexpected, "findings not in the table:\n" + "\n".join(unexpected)
