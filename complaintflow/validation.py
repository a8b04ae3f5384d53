"""The project's rules for a diagram, checked before anything is stored.

SpiffWorkflow's parser accepts much that cannot run here: expressions with syntax errors, lanes
no role maps to, service tasks naming handlers that do not exist. Each rule below returns
findings that say where (element id, name, line) and how to fix it.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.spiff.parser import VALIDATOR

from .diagrams import (
    NS,
    CompiledDiagram,
    as_utf8,
    compile_diagram,
    executable_process,
    form_paths,
    parse_xml,
    process_property,
    read_forms,
)
from .errors import InvalidDiagram
from .handlers import HandlerRegistry
from .sandbox import _BUILTINS as SANDBOX_BUILTINS  # what expressions may call, nothing else
from .sandbox import RESERVED_NAMES, SandboxError, compile_expression, compile_script
from .sla import SlaTable
from .support import check_reachable, check_support

_KEY = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
_FIELD = re.compile(r"^[a-z][a-z0-9_]*$")
_HUMAN_TAGS = ("userTask", "manualTask")


@dataclass(frozen=True)
class Checked:
    """A diagram that passed every check, with what deploying it stores."""

    content: bytes
    forms: dict[str, Any]
    diagram: CompiledDiagram


FormsFor = Callable[[etree._Element], tuple[dict[str, Any], list[str]]]


def check_file(path: Path, handlers: HandlerRegistry, sla: SlaTable) -> Checked:
    """Read a diagram and the forms beside it and check them all; InvalidDiagram lists every
    finding."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise InvalidDiagram(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    return check_bundle(content, str(path), handlers, sla, lambda p: read_forms(path, p))


def procedure_key_of(content: bytes, source: str) -> str:
    """The procedure a diagram is for (its executable process's id); InvalidDiagram when the
    file is no diagram."""
    return executable_process(parse_xml(content, source), source).get("id", "")


def check_bundle(
    content: bytes, source: str, handlers: HandlerRegistry, sla: SlaTable, forms_for: FormsFor
) -> Checked:
    """Check diagram XML with the forms `forms_for` finds for it (beside a file, uploaded with
    it, or kept from the version it was edited from)."""
    tree = parse_xml(content, source)
    content = as_utf8(content, tree)
    try:
        VALIDATOR.validate(tree, source)
    except ValidationException as exc:
        line = f"line {exc.line_number}: " if getattr(exc, "line_number", None) else ""
        detail = str(exc).strip().rstrip(". ")
        raise InvalidDiagram(source, [f"{line}not valid BPMN 2.0 (XML Schema): {detail}"]) from None
    process = executable_process(tree, source)
    forms, findings = forms_for(process)
    findings += check_process(process, forms, handlers, sla)
    if findings:
        raise InvalidDiagram(source, findings)
    # The project's rules first: their findings say how to fix; SpiffWorkflow's parser last.
    return Checked(content, forms, compile_diagram(content.decode("utf-8"), tree, source, forms))


def _where(element: etree._Element) -> str:
    name = element.get("name")
    label = f"{element.get('id')} ({name})" if name else str(element.get("id"))
    return f"{label}, line {element.sourceline}"


def _foreign_expression_hint(text: str) -> str:
    """Camunda 7 writes ${...} (JUEL), Camunda 8 =... (FEEL); often the inside is Python too."""
    text = text.strip()
    if text.startswith(("${", "#{")) and text.endswith("}"):
        inner = text[2:-1].strip()
    elif text.startswith("="):
        inner = text[1:].strip()
    else:
        return ""
    try:
        compile_expression(inner)
    except SandboxError:
        return " (a Camunda expression? write Python over the form fields)"
    return f" (a Camunda expression? write it as Python over the form fields: {inner})"


def check_process(
    process: etree._Element,
    forms: dict[str, Any],
    handlers: HandlerRegistry,
    sla: SlaTable,
) -> list[str]:
    key = process.get("id", "")
    findings: list[str] = []
    findings += _check_identity(process, key)
    findings += _check_lanes(process)
    findings += _check_forms(process, forms)
    findings += _check_field_names(process, forms)
    known = _known_names(process, forms)
    findings += _check_service_tasks(process, handlers, known)
    findings += _check_gateways(process)
    findings += _check_expressions(process, known)
    findings += _check_timers(process, key, sla)
    findings += check_support(process)
    findings += check_reachable(process)
    return findings


def _check_identity(process: etree._Element, key: str) -> Iterator[str]:
    if not _KEY.match(key):
        yield (
            f"process {key!r}: the process id is the procedure key; use lower-case"
            " letters, digits and underscores, starting with a letter"
        )
    if not re.match(r"^[A-Z]{1,4}$", process_property(process, "numberPrefix") or ""):
        yield (
            f"process {key!r}: add the process property numberPrefix (1–4 capital letters,"
            " e.g. A) that starts its complaint numbers"
        )


def _check_lanes(process: etree._Element) -> Iterator[str]:
    lanes = list(process.iterfind(".//bpmn:lane", NS))
    if not lanes:
        yield "the process has no lanes: draw one lane per role and put every task in one"
        return
    in_lane = {ref.text for lane in lanes for ref in lane.iterfind("bpmn:flowNodeRef", NS)}
    names: set[str] = set()
    for lane in lanes:
        if not _KEY.match(lane.get("id", "")):
            yield f"{_where(lane)}: the lane id is its role key; use lower-case snake_case"
        if not lane.get("name"):
            yield f"{_where(lane)}: give the lane the role's name"
        elif lane.get("name") in names:
            yield f"{_where(lane)}: another lane has the name {lane.get('name')!r}; rename one"
        names.add(lane.get("name", ""))
    for tag in (*_HUMAN_TAGS, "startEvent"):
        for element in process.iterfind(f".//bpmn:{tag}", NS):
            if element.get("id") not in in_lane:
                yield f"{_where(element)}: put this {tag} in the lane of the role that does it"


def _check_forms(process: etree._Element, forms: dict[str, Any]) -> Iterator[str]:
    for tag in _HUMAN_TAGS:
        for task in process.iterfind(f".//bpmn:{tag}", NS):
            if not _names_form(task):
                yield f"{_where(task)}: name its form with the property formJsonSchemaFilename"
    for path, element in form_paths(process).items():
        if path in forms:  # a missing file was reported when it was read
            for problem in _form_problems(forms[path]):
                yield f"{_where(element)}: form '{path}' {problem}"


def _names_form(task: etree._Element) -> bool:
    return any(
        prop.get("name") == "formJsonSchemaFilename" and (prop.get("value") or "").strip()
        for prop in task.iterfind(
            "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS
        )
    )


def _form_problems(schema: Any) -> Iterator[str]:
    if not isinstance(schema, dict):
        yield "must be a JSON object"
        return
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        yield f"is not a valid JSON Schema: {exc.message}"
        return
    if schema.get("type") != "object":
        yield 'must have "type": "object"'
    if schema.get("additionalProperties") is not False:
        yield 'must have "additionalProperties": false so that only its fields reach the data'
    for name in schema.get("properties", {}):
        if not _FIELD.match(name) or name in RESERVED_NAMES:
            yield (
                f"has the field {name!r}: field names are lower-case identifiers, not starting"
                f" with '_' and not one of {', '.join(sorted(RESERVED_NAMES))}"
            )


# What a field's value is; the rest of its definition (title, description, x-i18n, length,
# widget) is words and presentation, which may differ where two steps ask the same question.
_VALUE_KEYS = ("type", "enum", "const", "format", "items", "properties")


def _check_field_names(process: etree._Element, forms: dict[str, Any]) -> Iterator[str]:
    """All forms of a procedure write into one set of data (bpmn/README.md), so a field name
    means one thing in the whole procedure. The same question asked at two steps (the bar asks
    whether the guest is satisfied twice, staff first, then the manager) keeps its name: a
    name is refused only where two forms give it values of different kinds."""
    first: dict[str, tuple[str, dict[str, Any]]] = {}
    for path, element in form_paths(process).items():
        schema = forms.get(path)
        if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
            continue
        for name, spec in schema["properties"].items():
            if not isinstance(spec, dict):
                continue
            kind = {k: spec[k] for k in _VALUE_KEYS if k in spec}
            if name not in first:
                first[name] = (path, kind)
            elif first[name][1] != kind:
                yield (
                    f"{_where(element)}: form '{path}' has the field {name!r}, which form"
                    f" '{first[name][0]}' defines otherwise; the forms of a procedure share"
                    " one set of data: rename one of them, or give both the same type and"
                    " choices"
                )


def _known_names(process: etree._Element, forms: dict[str, Any]) -> frozenset[str]:
    """The names an expression of this diagram may read: the forms' fields, what scripts and
    service tasks put into the data, the deadlines, and the sandbox's own functions."""
    names = set(RESERVED_NAMES) | set(SANDBOX_BUILTINS)
    for schema in forms.values():
        if isinstance(schema, dict) and isinstance(schema.get("properties"), dict):
            names.update(schema["properties"])
    for operator in process.iterfind(".//spiffworkflow:serviceTaskOperator", NS):
        names.add(operator.get("resultVariable") or "")
    for script in process.iterfind(".//bpmn:script", NS):
        names.update(_assigned(script.text or ""))
    for tag in ("dataObject", "dataInput", "dataOutput", "inputDataItem", "outputDataItem"):
        for element in process.iterfind(f".//bpmn:{tag}", NS):
            names.update(n for n in (element.get("id"), element.get("name")) if n)
    return frozenset(names - {""})


def _assigned(source: str) -> set[str]:
    try:
        return _stored(ast.parse(source))
    except SyntaxError:  # reported by the script's own rule
        return set()


def _stored(tree: ast.AST) -> set[str]:
    return {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }


def _unknown_names(source: str, known: frozenset[str]) -> list[str]:
    """Names an expression reads that nothing defines (a comprehension's own names aside)."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError:  # reported as not compiling
        return []
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return sorted(read - known - _stored(tree))


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_service_tasks(
    process: etree._Element, handlers: HandlerRegistry, known: frozenset[str]
) -> Iterator[str]:
    for task in process.iterfind(".//bpmn:serviceTask", NS):
        operator = task.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NS)
        if operator is None:
            yield f"{_where(task)}: name a handler with spiffworkflow:serviceTaskOperator"
            continue
        handler = handlers.get(operator.get("id", ""))
        if handler is None:
            names = ", ".join(h.name for h in handlers.all())
            yield f"{_where(task)}: no handler is called {operator.get('id')!r}; known: {names}"
            continue
        params = {
            p.get("id", ""): p.get("value", "")
            for p in operator.iterfind("spiffworkflow:parameters/spiffworkflow:parameter", NS)
        }
        for problem in handler.check_params(params):
            yield f"{_where(task)}: {problem}"
        for name, source in params.items():
            try:
                compile_expression(source)
            except SandboxError as exc:
                yield f"{_where(task)}: parameter {name!r} = {source!r} does not compile: {exc}"
                continue
            yield from _parameter_names(task, name, source, known)


def _parameter_names(
    task: etree._Element, name: str, source: str, known: frozenset[str]
) -> Iterator[str]:
    """A parameter's value is an expression: value="technician" reads a field called
    technician, which is rarely what was meant."""
    unknown = _unknown_names(source, known)
    if unknown and unknown == [source.strip()]:
        yield (
            f"{_where(task)}: parameter {name!r} = {source!r} names no field of the forms"
            f"{_suggest(unknown[0], known)}; to pass the text itself, quote it:"
            f" value=\"'{source.strip()}'\""
        )
    elif unknown:
        yield (
            f"{_where(task)}: parameter {name!r} = {source!r} reads"
            f" {', '.join(map(repr, unknown))}, which no form of this diagram has"
            f"{_suggest(unknown[0], known)}; quote text, and name fields as their forms do"
        )


def _check_gateways(process: etree._Element) -> Iterator[str]:
    for gateway in process.iterfind(".//bpmn:exclusiveGateway", NS):
        outgoing = [
            flow
            for flow in process.iterfind("bpmn:sequenceFlow", NS)
            if flow.get("sourceRef") == gateway.get("id")
        ]
        if len(outgoing) > 1 and not gateway.get("default"):
            yield (
                f"{_where(gateway)}: mark one outgoing flow as the default, so the complaint never"
                " stops here when no condition holds"
            )


def _check_expressions(process: etree._Element, known: frozenset[str]) -> Iterator[str]:
    for condition in process.iterfind(".//bpmn:conditionExpression", NS):
        flow = condition.getparent()
        try:
            compile_expression(condition.text or "")
        except SandboxError as exc:
            hint = _foreign_expression_hint(condition.text or "")
            yield f"{_where(flow)}: the condition {condition.text!r} does not compile{hint}: {exc}"
            continue
        unknown = _unknown_names(condition.text or "", known)
        if unknown:
            yield (
                f"{_where(flow)}: the condition {condition.text!r} reads"
                f" {', '.join(map(repr, unknown))}, which no form of this diagram has"
                f"{_suggest(unknown[0], known)}: name a field of a form, or quote text"
            )
    for script in process.iterfind(".//bpmn:script", NS):
        try:
            compile_script(script.text or "")
        except SandboxError as exc:
            yield f"{_where(script.getparent())}: the script does not compile: {exc}"


def timer_name(expression: str) -> str | None:
    """The deadline a timer expression reads: `sla["name"]` gives `name`."""
    try:
        node = ast.parse(expression.strip(), mode="eval").body
    except SyntaxError:
        return None
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == "sla"
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, str)
    ):
        return node.slice.value
    return None


def deadlines_read(xml: str) -> set[str]:
    """The deadline names the timers of a stored diagram read (`sla["name"]`)."""
    names = set()
    for definition in parse_xml(xml.encode(), "stored diagram").iterfind(
        ".//bpmn:timerEventDefinition", NS
    ):
        for expr in definition:
            name = timer_name(expr.text or "") if isinstance(expr.tag, str) else None
            if name:
                names.add(name)
    return names


def _check_timers(process: etree._Element, key: str, sla: SlaTable) -> Iterator[str]:
    configured = sla.deadlines(key)
    for definition in process.iterfind(".//bpmn:timerEventDefinition", NS):
        event = definition.getparent()
        for expr in definition:
            if not isinstance(expr.tag, str):
                continue
            name = timer_name(expr.text or "")
            if name is None:
                yield (
                    f'{_where(event)}: write the timer as sla["<name>"] and give <name> a'
                    " duration in bpmn/sla.json, so deadlines stay configurable"
                )
            elif name not in configured:
                yield (
                    f"{_where(event)}: the timer reads sla[{name!r}], but procedure {key!r} has no"
                    f" such deadline in bpmn/sla.json (it has: {', '.join(configured) or 'none'})"
                )
