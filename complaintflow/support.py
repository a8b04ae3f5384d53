"""What a diagram drawn elsewhere (Camunda Modeler, bpmn.io, another suite) may hold that the
engine here does not run, and parts of a diagram nothing leads to.

Each finding names the element and says what to do instead, so a diagram from elsewhere gets a
list of precise changes rather than a failure at run time.
"""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from .diagrams import NS

BPMN = NS["bpmn"]
_OWN = {
    BPMN,
    NS["spiffworkflow"],
    NS["bpmndi"],
    "http://www.omg.org/spec/DD/20100524/DC",
    "http://www.omg.org/spec/DD/20100524/DI",
    "http://www.w3.org/2001/XMLSchema-instance",
}
_FOREIGN = {
    "http://camunda.org/schema/1.0/bpmn": "Camunda 7",
    "http://camunda.org/schema/zeebe/1.0": "Camunda 8 (Zeebe)",
    "http://activiti.org/bpmn": "Activiti",
    "http://flowable.org/bpmn": "Flowable",
}
_HINTS = {
    "formKey": "name a JSON Schema form with the property formJsonSchemaFilename",
    "formRef": "name a JSON Schema form with the property formJsonSchemaFilename",
    "formDefinition": "name a JSON Schema form with the property formJsonSchemaFilename",
    "formId": "name a JSON Schema form with the property formJsonSchemaFilename",
    "assignmentDefinition": "put the task in the lane of the role that does it",
    "assignee": "put the task in the lane of the role that does it",
    "candidateGroups": "put the task in the lane of the role that does it",
    "candidateUsers": "put the task in the lane of the role that does it",
    "class": "name a handler with spiffworkflow:serviceTaskOperator",
    "expression": "name a handler with spiffworkflow:serviceTaskOperator",
    "delegateExpression": "name a handler with spiffworkflow:serviceTaskOperator",
    "taskDefinition": "name a handler with spiffworkflow:serviceTaskOperator",
    "type": "name a handler with spiffworkflow:serviceTaskOperator",
}
# Settings of other engines that change nothing about what happens: passed over in silence.
_HARMLESS = {
    "historyTimeToLive",
    "versionTag",
    "isStartableInTasklist",
    "jobPriority",
    "taskPriority",
    "asyncBefore",
    "asyncAfter",
    "exclusive",
}
# Elements the engine does not run here, with what to draw instead.
_UNSUPPORTED = {
    "callActivity": "a call activity calls another process, and a diagram here holds one"
    " process: draw the steps here, or as an embedded sub-process",
    "businessRuleTask": "business rule tasks need DMN decision tables, which are not deployed"
    " here: decide with an exclusive gateway and conditions",
    "complexGateway": "complex gateways are not run: use exclusive, parallel or inclusive ones",
    "adHocSubProcess": "ad-hoc sub-processes are not run: draw the order of the steps",
    "dataStoreReference": "data stores are not available: keep data in the forms",
    "sendTask": "nothing here receives what a send task sends: use a service task with a"
    " handler (notify.role, notify.complainant)",
    "receiveTask": "nothing here sends the message a receive task waits for: use a user task",
}
# A task drawn without a type (the first shape bpmn.io and Camunda Modeler draw): SpiffWorkflow
# runs it as a manual task, waiting until someone completes it. Here it would wait in no role's
# inbox (or in a lane's, with no form) and record nothing; passing through it instead would
# silently skip a step someone drew for a reason. So the drawer says which it is.
_PLAIN_TASK = (
    "a task without a type does nothing here: make it a user task (in the lane of the role that"
    " does it, with its form in the property formJsonSchemaFilename) or a service task (with a"
    " handler)"
)
_WAITS_FOREVER = {
    "messageEventDefinition": "no message reaches a diagram here",
    "signalEventDefinition": "no signal reaches a diagram here",
    "conditionalEventDefinition": "conditional events are not re-evaluated here",
}


def _where(element: etree._Element) -> str:
    name = element.get("name")
    label = f"{element.get('id')} ({name})" if name else str(element.get("id"))
    return f"{label}, line {element.sourceline}"


def _local(tag: str) -> tuple[str, str]:
    namespace, _, name = tag[1:].partition("}")
    return namespace, name


def check_support(process: etree._Element) -> Iterator[str]:
    for element in process.iter():
        if not isinstance(element.tag, str):
            continue
        namespace, name = _local(element.tag)
        if namespace == BPMN and name in _UNSUPPORTED:
            yield f"{_where(element)}: {name} is not supported: {_UNSUPPORTED[name]}"
        if namespace == BPMN and name == "task":
            yield f"{_where(element)}: {_PLAIN_TASK}"
        if namespace == BPMN and name in _WAITS_FOREVER:
            event = element.getparent()
            kind = _local(event.tag)[1]
            if kind in ("startEvent", "intermediateCatchEvent", "boundaryEvent"):
                yield (
                    f"{_where(event)}: a {name.removesuffix('EventDefinition')} {kind} would"
                    f" wait forever ({_WAITS_FOREVER[name]}): use a timer or a user task"
                )
        parent = element.getparent()
        if (
            namespace in _FOREIGN
            and parent is not None
            and parent.tag == f"{{{BPMN}}}extensionElements"
            and name not in _HARMLESS
        ):
            yield _foreign(parent.getparent(), namespace, name)
        for attribute in element.attrib:
            owner, local = _local(attribute) if attribute.startswith("{") else ("", attribute)
            if owner in _FOREIGN and local not in _HARMLESS:
                yield _foreign(element, owner, local)


def _foreign(element: etree._Element, namespace: str, name: str) -> str:
    hint = _HINTS.get(name, "it is ignored here; remove it")
    return f"{_where(element)}: {_FOREIGN[namespace]}'s {name} is not used here: {hint}"


def check_reachable(process: etree._Element) -> Iterator[str]:
    """Flow nodes no path from a start event leads to (per process and sub-process)."""
    containers = [
        process,
        *process.iterfind(".//bpmn:subProcess", NS),
        *process.iterfind(".//bpmn:transaction", NS),
    ]
    for container in containers:
        if container.get("triggeredByEvent") == "true":
            continue  # an event sub-process starts by its event, not by a flow
        nodes = {
            e.get("id"): e
            for e in container
            if isinstance(e.tag, str)
            and e.get("id")  # not the container's own incoming/outgoing references
            and _local(e.tag)[1]
            not in (
                "sequenceFlow",
                "laneSet",
                "extensionElements",
                "documentation",
                "textAnnotation",
                "association",
                "dataObject",
                "dataObjectReference",
                "dataStoreReference",
                "ioSpecification",
                "property",
                "multiInstanceLoopCharacteristics",
                "standardLoopCharacteristics",
            )
            and e.get("triggeredByEvent") != "true"
        }
        after: dict[str, list[str]] = {}
        for flow in container.iterfind("bpmn:sequenceFlow", NS):
            after.setdefault(flow.get("sourceRef", ""), []).append(flow.get("targetRef", ""))
        for node_id, node in nodes.items():
            attached = node.get("attachedToRef")
            if attached:  # a boundary event goes with its activity
                after.setdefault(attached, []).append(node_id)
        starts = [i for i, n in nodes.items() if _local(n.tag)[1] == "startEvent"]
        reached, todo = set(starts), list(starts)
        while todo:
            for nxt in after.get(todo.pop(), []):
                if nxt not in reached:
                    reached.add(nxt)
                    todo.append(nxt)
        for node_id, node in nodes.items():
            if node_id not in reached:
                yield (
                    f"{_where(node)}: nothing leads here from a start event;"
                    " connect it or remove it"
                )
