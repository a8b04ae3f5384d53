"""What a workflow step did, read off the task tree, and the hash chain that keeps it honest.

Before a step the engine takes a snapshot of every task's state; afterwards the difference says
which tasks became ready, which completed (user tasks with the data submitted, service tasks
with their call, timers that fired, gateways with the way taken), which were cancelled and which
failed. Each becomes an event, in the order the engine changed the tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.exclusive_gateway import ExclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.service_task import ServiceTask
from SpiffWorkflow.task import Task as SpiffTask
from SpiffWorkflow.util.task import TaskState

_PREDICTED = TaskState.MAYBE | TaskState.LIKELY | TaskState.CANCELLED


@dataclass
class Draft:
    """An event not yet in the chain."""

    at: datetime
    actor: str
    action: str
    bpmn_id: str | None = None
    name: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepTrace:
    """What the engine knows of a step that the task tree does not keep."""

    actor: str
    submitted: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    calls: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    # Events a handler added (e.g. "escalated"), after its own call event.
    handler_events: dict[UUID, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    error: str | None = None


@dataclass
class StepChanges:
    events: list[Draft]
    ready: list[SpiffTask]  # human tasks that became ready
    finished: dict[str, str]  # human task id -> "completed" | "cancelled"
    waiting: int  # human tasks ready after the step, those that were ready before included


def snapshot(workflow: BpmnWorkflow) -> dict[UUID, int]:
    return {task.id: task.state for task in workflow.get_tasks()}


def _stamp(task: SpiffTask) -> datetime:
    return datetime.fromtimestamp(task.last_state_change, UTC)


def due_at(task: SpiffTask) -> datetime | None:
    """The earliest deadline of the timers on the task's boundary, if it has any."""
    if task.parent is None or not isinstance(task.parent.task_spec, BoundaryEventSplit):
        return None
    # A timer that already fired (a zero deadline) still says when the task was due.
    due = [
        datetime.fromisoformat(value)
        for sibling in task.parent.children
        if sibling.state in (TaskState.WAITING, TaskState.COMPLETED)
        and isinstance(value := sibling.internal_data.get("event_value"), str)
    ]
    return min(due) if due else None


def next_timer_at(workflow: BpmnWorkflow) -> datetime | None:
    due = []
    for event in workflow.waiting_events():
        value = event.value.get("next") if isinstance(event.value, dict) else event.value
        if "Timer" in event.event_type and isinstance(value, str):
            due.append(datetime.fromisoformat(value))
    return min(due) if due else None


def _completed_event(task: SpiffTask, trace: StepTrace) -> tuple[str, dict[str, Any]]:
    spec = task.task_spec
    if spec.manual:
        return "task.completed", trace.submitted.get(task.id, {})
    if isinstance(spec, ServiceTask):
        return "service.called", trace.calls.get(task.id, {})
    if isinstance(getattr(spec, "event_definition", None), TimerEventDefinition):
        return "timer.fired", {"expression": spec.event_definition.expression}
    if isinstance(spec, StartEvent):
        return "instance.started", trace.submitted.get(task.id, {})
    if isinstance(spec, EndEvent):
        return "end.reached", {}
    if isinstance(spec, ExclusiveGateway):
        taken = [c.task_spec.bpmn_id for c in task.children if not c.state & _PREDICTED]
        return "gateway.passed", {"to": taken}
    return "element.completed", {}


def diff(
    before: dict[UUID, int],
    workflow: BpmnWorkflow,
    trace: StepTrace,
    role_of: Callable[[Any], str | None],
) -> StepChanges:
    timeline: list[tuple[float, int, Draft]] = []
    ready: list[SpiffTask] = []
    finished: dict[str, str] = {}

    def add(task: SpiffTask, action: str, data: dict[str, Any]) -> None:
        spec = task.task_spec
        # A deadline passes by itself, whoever's step happened to notice it.
        actor = "system" if action == "timer.fired" else trace.actor
        draft = Draft(_stamp(task), actor, action, spec.bpmn_id, spec.bpmn_name, data)
        timeline.append((task.last_state_change, len(timeline), draft))

    present = set()
    waiting = 0
    for task in workflow.get_tasks():
        present.add(task.id)
        spec = task.task_spec
        was, now = before.get(task.id), task.state
        waiting += now == TaskState.READY and spec.manual
        if spec.bpmn_id is None or was == now:
            continue
        if now == TaskState.COMPLETED:
            action, data = _completed_event(task, trace)
            add(task, action, data)
            for extra_action, extra in trace.handler_events.get(task.id, []):
                add(task, extra_action, extra)
            if spec.manual:
                finished[str(task.id)] = "completed"
        elif now == TaskState.READY and spec.manual:
            ready.append(task)
            due = due_at(task)
            add(
                task,
                "task.ready",
                {"role": role_of(spec), "due_at": due.isoformat() if due else None},
            )
        elif now == TaskState.ERROR:
            failure = trace.calls.get(task.id) or {"error": trace.error}
            add(task, "service.failed" if isinstance(spec, ServiceTask) else "task.failed", failure)
        elif now == TaskState.CANCELLED and was == TaskState.READY and spec.manual:
            finished[str(task.id)] = "cancelled"
            add(task, "task.cancelled", {})
    for task_id, state in before.items():
        if state == TaskState.READY and task_id not in present:  # pruned from the tree
            finished[str(task_id)] = "cancelled"
    timeline.sort(key=lambda item: item[:2])
    return StepChanges([draft for _, _, draft in timeline], ready, finished, waiting)
