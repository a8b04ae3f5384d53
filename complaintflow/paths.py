"""The path one complaint took through its diagram, read from its history: what was done, which
sequence flows were taken, what is waiting now, where deadlines passed; and, step by step, what
the data became."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from lxml import etree

from .diagrams import NS, parse_xml

_DONE = {
    "task.completed",
    "service.called",
    "gateway.passed",
    "element.completed",
    "end.reached",
    "instance.started",
    "timer.fired",
}
_ESCALATION = {"timer.fired", "escalated"}


@dataclass
class Path:
    done: set[str] = field(default_factory=set)
    taken: set[str] = field(default_factory=set)  # sequence flow ids
    current: set[str] = field(default_factory=set)
    escalated: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, list[str]]:
        return {
            name: sorted(getattr(self, name)) for name in ("done", "taken", "current", "escalated")
        }


@lru_cache(maxsize=64)
def flows(xml: str) -> list[tuple[str, str, str]]:
    """(flow id, source, target) of every sequence flow."""
    tree = parse_xml(xml.encode(), "stored version")
    return [
        (f.get("id", ""), f.get("sourceRef", ""), f.get("targetRef", ""))
        for f in tree.getroot().iterfind(".//bpmn:sequenceFlow", NS)
        if isinstance(f, etree._Element)
    ]


def path(xml: str, events: list[dict[str, Any]], ready: set[str]) -> Path:
    result = Path(current=set(ready))
    reached: list[str] = []
    chosen: dict[str, set[str]] = {}  # a decision's gateway -> where it sent the complaint
    for event in events:
        element = event["bpmn_id"]
        if not element:
            continue
        reached.append(element)
        if event["action"] in _DONE:
            result.done.add(element)
        if event["action"] in _ESCALATION:
            result.escalated.add(element)
        if event["action"] == "gateway.passed":
            chosen.setdefault(element, set()).update(event["data"].get("to", []))
    # A flow was taken when its source was done and its target reached after that; out of a
    # gateway, only towards where the gateway sent the complaint.
    first = {element: i for i, element in reversed(list(enumerate(reached)))}
    last = {element: i for i, element in enumerate(reached)}
    for flow_id, source, target in flows(xml):
        if source in chosen and target not in chosen[source]:
            continue
        if source in result.done and target in last and last[target] > first.get(source, -1):
            result.taken.add(flow_id)
    return result


def changes(events: list[dict[str, Any]]) -> dict[int, list[tuple[str, Any, Any]]]:
    """Per event (by seq), the fields it set that had another value before: (field, old, new)."""
    data: dict[str, Any] = {}
    result: dict[int, list[tuple[str, Any, Any]]] = {}
    for event in events:
        submitted = (
            event["data"] if event["action"] in ("instance.started", "task.completed") else {}
        )
        if event["action"] == "data.corrected":
            submitted = {k: v["to"] for k, v in event["data"].get("changes", {}).items()}
        changed = [
            (k, data[k], v)
            for k, v in submitted.items()
            if k not in ("attachments", "sla") and k in data and data[k] != v
        ]
        if changed:
            result[event["seq"]] = changed
        data.update({k: v for k, v in submitted.items() if k not in ("attachments", "sla")})
    return result
