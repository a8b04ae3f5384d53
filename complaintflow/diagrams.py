"""Reading diagrams: safe XML parsing, the forms a diagram names, and the runnable spec.

A diagram is read from files when it is deployed and from the database when a stored version is
first needed by a process; both go through `compile_diagram`, and only deploys are checked
against the project's rules (see `validation`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser import SpiffBpmnParser

from .errors import InvalidDiagram
from .forms import FormValidator

MAX_DIAGRAM_BYTES = 5 * 1024 * 1024
MAX_FORM_BYTES = 256 * 1024

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}
FORM_PROPERTY = "formJsonSchemaFilename"
EMPTY_FORM: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}

# No DTDs, no entities, no network: a diagram is data from people we only partly trust.
_XML_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True
)


@dataclass(frozen=True)
class Lane:
    key: str
    name: str
    description: str


@dataclass
class CompiledDiagram:
    """A diagram ready to run: its spec, lanes (roles) and forms."""

    key: str
    name: str
    xml: str  # the diagram as deployed, for drawing it
    number_prefix: str
    lanes: tuple[Lane, ...]
    # The name in other languages, from process properties `name.<locale>` (e.g. name.en).
    names: dict[str, str]
    forms: dict[str, dict[str, Any]]
    spec: BpmnProcessSpec
    subprocess_specs: dict[str, BpmnProcessSpec] = field(default_factory=dict)
    _validators: dict[str, FormValidator] = field(default_factory=dict, repr=False)

    @cached_property
    def _role_by_lane_name(self) -> dict[str, str]:
        return {lane.name: lane.key for lane in self.lanes}

    def role_of(self, task_spec: Any) -> str | None:
        return self._role_by_lane_name.get(getattr(task_spec, "lane", None) or "")

    @staticmethod
    def form_path_of(task_spec: Any) -> str | None:
        extensions = getattr(task_spec, "extensions", None) or {}
        path: str | None = extensions.get("properties", {}).get(FORM_PROPERTY)
        return path

    def form_of(self, task_spec: Any) -> dict[str, Any]:
        """The task's JSON Schema; a task without a form takes no data."""
        return self.forms.get(self.form_path_of(task_spec) or "", EMPTY_FORM)

    def validator_for(self, task_spec: Any) -> FormValidator:
        path = self.form_path_of(task_spec) or ""
        if path not in self._validators:
            self._validators[path] = FormValidator(self.form_of(task_spec))
        return self._validators[path]

    @cached_property
    def start_spec(self) -> Any:
        return self.spec.start.outputs[0]

    @property
    def intake_form(self) -> dict[str, Any]:
        """The JSON Schema of the data an instance may start with."""
        return self.form_of(self.start_spec)


def parse_xml(content: bytes, source: str) -> etree._ElementTree:
    """Parse diagram XML, refusing what is not plain BPMN with one clear message."""
    if len(content) > MAX_DIAGRAM_BYTES:
        raise InvalidDiagram(source, [f"the file is larger than {MAX_DIAGRAM_BYTES // 1024} KB"])
    if b"<!DOCTYPE" in content[:4096].upper() or b"<!ENTITY" in content.upper():
        raise InvalidDiagram(
            source, ["DOCTYPE and ENTITY declarations are not allowed in a diagram"]
        )
    try:
        tree = etree.ElementTree(etree.fromstring(content, _XML_PARSER))
    except etree.XMLSyntaxError as exc:
        raise InvalidDiagram(source, [f"not well-formed XML: {exc.msg}"]) from None
    if tree.docinfo.doctype:  # a UTF-16 file slips past the byte check above
        raise InvalidDiagram(
            source, ["DOCTYPE and ENTITY declarations are not allowed in a diagram"]
        )
    if tree.getroot().tag != f"{{{NS['bpmn']}}}definitions":
        raise InvalidDiagram(
            source, ["not a BPMN 2.0 file: the root element must be bpmn:definitions"]
        )
    return tree


def as_utf8(content: bytes, tree: etree._ElementTree) -> bytes:
    """The diagram as UTF-8 bytes: stored XML is decoded and parsed again as UTF-8, so a
    UTF-16 or Latin-1 upload is written out again, declaration included."""
    if (tree.docinfo.encoding or "UTF-8").upper() == "UTF-8" and not content.startswith(
        b"\xef\xbb\xbf"
    ):
        return content
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def executable_process(tree: etree._ElementTree, source: str) -> etree._Element:
    every = list(tree.getroot().iterfind("bpmn:process", NS))
    processes = [p for p in every if p.get("isExecutable") == "true"]
    if not processes and len(every) == 1:
        raise InvalidDiagram(
            source,
            [
                f'process {every[0].get("id")} is not marked executable: set isExecutable="true"'
                " (in bpmn.io and Camunda Modeler, tick Executable on the process or pool)"
            ],
        )
    if len(processes) != 1:
        raise InvalidDiagram(
            source,
            [
                'a diagram holds exactly one executable process (isExecutable="true");'
                f" found {len(processes)}: {', '.join(str(p.get('id')) for p in processes)}"
            ],
        )
    return processes[0]


_PROCESS_PROPERTIES = "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property"


def process_property(process: etree._Element, name: str) -> str | None:
    for prop in process.iterfind(_PROCESS_PROPERTIES, NS):
        if prop.get("name") == name:
            return prop.get("value")
    return None


# The first line of an element's documentation may list the clauses it carries (bpmn/README.md).
_CLAUSE_LINE = re.compile(r"^[A-Z]+-[\w.]+(\s*,\s*[A-Z]+-[\w.]+)*$")


def _description(element: etree._Element) -> str:
    lines = [
        line.strip() for line in (element.findtext("bpmn:documentation", "", NS) or "").splitlines()
    ]
    lines = [line for line in lines if line]
    if lines and _CLAUSE_LINE.match(lines[0]):
        lines = lines[1:]
    return " ".join(lines)


def lanes_of(process: etree._Element) -> tuple[Lane, ...]:
    return tuple(
        Lane(key=lane.get("id", ""), name=lane.get("name", ""), description=_description(lane))
        for lane in process.iterfind(".//bpmn:lane", NS)
    )


def form_paths(process: etree._Element) -> dict[str, etree._Element]:
    """Each form path the process names, with the first element naming it."""
    paths: dict[str, etree._Element] = {}
    for prop in process.iterfind(".//spiffworkflow:property", NS):
        if prop.get("name") == FORM_PROPERTY and prop.get("value"):
            paths.setdefault(prop.get("value", ""), prop.getparent().getparent().getparent())
    return paths


def forms_from(
    available: dict[str, Any], process: etree._Element
) -> tuple[dict[str, Any], list[str]]:
    """The forms a diagram names, taken from those given (uploaded with it, or kept from the
    version it was edited from); a form not there is a finding."""
    forms: dict[str, Any] = {}
    findings = []
    for rel, element in form_paths(process).items():
        if rel in available:
            forms[rel] = available[rel]
        else:
            where = f"{element.get('id')} ({element.get('name', '')}), line {element.sourceline}"
            findings.append(f"{where}: form '{rel}' was not uploaded with the diagram; add it")
    return forms, findings


def read_forms(diagram_path: Path, process: etree._Element) -> tuple[dict[str, Any], list[str]]:
    """Load the forms a diagram names from beside it; problems come back as findings."""
    forms: dict[str, Any] = {}
    findings = []
    base = diagram_path.parent.resolve()
    for rel, element in form_paths(process).items():
        where = f"{element.get('id')} ({element.get('name', '')}), line {element.sourceline}"
        path = (base / rel).resolve()
        if not path.is_relative_to(base):
            findings.append(f"{where}: form '{rel}' lies outside the diagram's folder")
            continue
        try:
            if path.stat().st_size > MAX_FORM_BYTES:
                findings.append(f"{where}: form '{rel}' is larger than {MAX_FORM_BYTES // 1024} KB")
                continue
            forms[rel] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            findings.append(f"{where}: form '{rel}' does not exist; create it beside the diagram")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            findings.append(f"{where}: form '{rel}' is not valid JSON ({exc})")
    return forms, findings


def compile_diagram(
    xml: str, tree: etree._ElementTree, source: str, forms: dict[str, dict[str, Any]]
) -> CompiledDiagram:
    """Build the runnable spec with SpiffWorkflow; its refusals become findings."""
    process = executable_process(tree, source)
    key = process.get("id", "")
    parser = SpiffBpmnParser()
    try:
        parser.add_bpmn_xml(tree, filename=source)
        spec = parser.get_spec(key)
        subprocess_specs = parser.get_subprocess_specs(key)
    except ValidationException as exc:
        where = f"{exc.id} ({exc.name})" if getattr(exc, "id", "") else exc.tag or "diagram"
        line = f", line {exc.line_number}" if getattr(exc, "line_number", "") else ""
        raise InvalidDiagram(source, [f"{where}{line}: {exc}"]) from None
    except SpiffWorkflowException as exc:
        raise InvalidDiagram(source, [f"the engine cannot run this diagram: {exc}"]) from None
    return CompiledDiagram(
        key=key,
        xml=xml,
        name=process.get("name") or key,
        number_prefix=process_property(process, "numberPrefix") or "",
        lanes=lanes_of(process),
        names={
            prop.get("name", "")[5:]: prop.get("value", "")
            for prop in process.iterfind(_PROCESS_PROPERTIES, NS)
            if prop.get("name", "").startswith("name.")
        },
        forms=forms,
        spec=spec,
        subprocess_specs=subprocess_specs,
    )


def content_hash(xml: bytes, forms: dict[str, Any]) -> str:
    digest = hashlib.sha256(xml)
    digest.update(json.dumps(forms, sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()
