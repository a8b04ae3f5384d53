"""What changed between two versions of a procedure, element by element: added, removed, and
changed in what matters to the people who work it — the name, the lane (role), the form, the
condition of a flow, the deadline of a timer, the handler and its parameters, where a flow
leads."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from .diagrams import FORM_PROPERTY, NS, parse_xml

_SKIP = {
    "laneSet",
    "lane",
    "extensionElements",
    "documentation",
    "incoming",
    "outgoing",
    "conditionExpression",
    "timerEventDefinition",
    "timeDuration",
    "timeDate",
    "timeCycle",
}


@dataclass
class Change:
    element: str
    kind: str  # added, removed, changed
    type: str
    name: str
    details: list[str] = field(default_factory=list)


def _facts(xml: str, forms: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tree = parse_xml(xml.encode(), "version")
    process = next(tree.getroot().iterfind("bpmn:process", NS))
    lanes = {
        ref.text: lane.get("id")
        for lane in process.iterfind(".//bpmn:lane", NS)
        for ref in lane.iterfind("bpmn:flowNodeRef", NS)
    }
    facts: dict[str, dict[str, Any]] = {}
    for element in process.iter():
        if not isinstance(element.tag, str) or not element.get("id"):
            continue
        kind = etree.QName(element).localname
        if kind in _SKIP:
            continue
        fact: dict[str, Any] = {
            "type": kind,
            "name": element.get("name") or "",
            "lane": lanes.get(element.get("id")),
        }
        form = next(
            (
                p.get("value")
                for p in element.iterfind(
                    "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS
                )
                if p.get("name") == FORM_PROPERTY
            ),
            None,
        )
        if form:
            fact["form"] = form
            fact["form fields"] = json.dumps(
                forms.get(form, {}), sort_keys=True, ensure_ascii=False
            )
        operator = element.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NS)
        if operator is not None:
            fact["handler"] = operator.get("id")
            fact["parameters"] = {
                p.get("id"): p.get("value")
                for p in operator.iterfind("spiffworkflow:parameters/spiffworkflow:parameter", NS)
            }
        condition = element.find("bpmn:conditionExpression", NS)
        if condition is not None:
            fact["condition"] = (condition.text or "").strip()
        for timer in element.iterfind("bpmn:timerEventDefinition/*", NS):
            fact["timer"] = (timer.text or "").strip()
        for key in ("sourceRef", "targetRef", "attachedToRef", "default", "cancelActivity"):
            if element.get(key) is not None:
                fact[key] = element.get(key)
        script = element.find("bpmn:script", NS)
        if script is not None:
            fact["script"] = (script.text or "").strip()
        facts[element.get("id", "")] = fact
    return facts


_LABELS = {
    "sourceRef": "from",
    "targetRef": "to",
    "attachedToRef": "attached to",
    "default": "default flow",
    "cancelActivity": "interrupting",
}


def compare(
    old_xml: str, old_forms: dict[str, Any], new_xml: str, new_forms: dict[str, Any]
) -> list[Change]:
    """The changes from the old version to the new, in the new version's document order."""
    old, new = _facts(old_xml, old_forms), _facts(new_xml, new_forms)
    changes = []
    for element, fact in new.items():
        if element not in old:
            changes.append(Change(element, "added", fact["type"], fact["name"]))
            continue
        before = old[element]
        details = []
        for key in sorted(set(fact) | set(before)):
            if key == "form fields" and fact.get("form") != before.get("form"):
                continue  # the form itself changed; said below
            if fact.get(key) != before.get(key):
                label = _LABELS.get(key, key)
                if key == "form fields":
                    details.append("form fields changed")
                else:
                    details.append(f"{label}: {before.get(key)!r} → {fact.get(key)!r}")
        if details:
            changes.append(Change(element, "changed", fact["type"], fact["name"], details))
    changes += [
        Change(element, "removed", fact["type"], fact["name"])
        for element, fact in old.items()
        if element not in new
    ]
    return changes
