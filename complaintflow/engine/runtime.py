"""SpiffWorkflow glue: the sandboxed script engine and the codec for instance state.

An instance's state is stored without its spec (the spec is stored once per version and parsed
once per process), so loading a complaint is restoring its task tree against a spec in memory.
"""

from __future__ import annotations

import base64
import json
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.helpers.encoder import create_encoder
from SpiffWorkflow.bpmn.serializer.workflow import VERSION as SERIALIZER_VERSION
from SpiffWorkflow.spiff.serializer import DEFAULT_CONFIG

from ..diagrams import CompiledDiagram
from ..models import Instance
from ..sandbox import SandboxEnvironment

T = TypeVar("T")

# Call(task, handler name, evaluated parameters) -> JSON-able result
ServiceCall = Callable[[Any, str, dict[str, Any]], dict[str, Any]]

_SANDBOX = SandboxEnvironment()
# Marks a compressed state (JSON text never starts so): zlib in base64. Until 2026-12-06 in
# base85, 6 % smaller but pure Python: 40-160 µs to write, 110-290 µs to read, against 1-11 µs.
# States packed before then are read as they are.
_PACKED = "zlib64:"
_UNPACK: dict[str, Callable[[str], bytes]] = {
    _PACKED: base64.b64decode,
    "zlib85:": base64.b85decode,
}


class ScriptEngine(PythonScriptEngine):
    """Evaluates through the sandbox and sends service tasks to the handler registry.

    SpiffWorkflow's own `call_service` turns every handler error into a NameError about
    'script'; this one lets the real error surface.
    """

    def __init__(self, call: ServiceCall) -> None:
        super().__init__(environment=_SANDBOX)
        self._call = call

    def call_service(self, task: Any, **kwargs: Any) -> str:
        params = {name: p["value"] for name, p in kwargs["operation_params"].items()}
        return json.dumps(self._call(task, kwargs["operation_name"], params))


class _SpeclessConverter(BpmnWorkflowConverter):
    """The workflow converter without the spec: the spec comes from the version cache."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct: dict[str, Any] = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], diagram: CompiledDiagram) -> BpmnWorkflow:
        workflow = self.target_class(diagram.spec, diagram.subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _refuse(*_: Any) -> dict[str, Any]:
    raise RuntimeError("a workflow kept between steps must not call services")


# The script engine of a workflow kept between steps. The step's own engine refers to the step,
# and through it to its session and rows, which would live as long as the workflow is kept.
_IDLE = ScriptEngine(_refuse)


def discard(workflow: BpmnWorkflow) -> None:
    """Break the reference cycles of a workflow nothing will use again (each task refers to its
    workflow, which holds every task; its event manager and subprocesses refer back to it), so
    that it is freed at once. Left to Python's garbage collection, a workflow kept between steps
    outlives the young collections, and the full collection that finds it dead pauses every
    thread of the process while it walks all there is."""
    for each in (*workflow.subprocesses.values(), workflow):
        each.tasks.clear()
        each.task_tree = each.last_task = None
    workflow.subprocesses.clear()
    workflow.event_manager.tasks.clear()
    workflow.event_manager = None


class Waiting(NamedTuple):
    """A human task ready at a kept version: its role, and who had taken it (None: nobody)."""

    role: str
    assignee: str | None


@dataclass
class Kept:
    """A complaint as this process's last change of it committed: the row version written, the
    workflow, the instance row (detached, as written) and the human tasks ready at that version
    that the process knows of, with their roles and takers."""

    version: int
    workflow: BpmnWorkflow
    instance: Instance
    ready: dict[str, Waiting]


class WorkflowCache:
    """Restored workflows kept in memory between steps, by instance and row version: the next
    step of a complaint this process just moved (or whose task it just took or gave back) does
    not restore its state again, nor, when it completes a task known ready then, read the row
    again (`take_task`).

    A step takes its workflow out and changes it; only once the step has committed is the
    changed workflow put back under the new row version. A step that fails leaves nothing here,
    and a row moved on by another process no longer matches its version: restored then, and a
    step that took its row from here is refused by the version check when it saves. What leaves
    otherwise (outdated, or pushed out by newer ones) is no one's: `discard`ed.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._kept: OrderedDict[int, Kept] = OrderedDict()
        self._tasks: dict[str, int] = {}  # a kept ready task's id -> its instance id
        self._lock = threading.Lock()

    def take(self, instance_id: int, version: int) -> Kept | None:
        with self._lock:
            kept = self._pop(instance_id)
        if kept is None or kept.version == version:
            return kept
        discard(kept.workflow)
        return None

    def look(self, instance_id: int, version: int, find: Callable[[BpmnWorkflow], T]) -> T | None:
        """`find(workflow)` on the workflow kept at `version`, if one is, without taking it out:
        under the lock, as no step changes a workflow before taking it out."""
        with self._lock:
            kept = self._kept.get(instance_id)
            return find(kept.workflow) if kept is not None and kept.version == version else None

    def take_task(
        self, task_id: str, actor: str, may_work: Callable[[str], bool] | None
    ) -> Kept | None:
        """What this process's last change of the complaint left, if task `task_id` was ready
        then and `actor` may complete it: `may_work` allows its role and nobody else had taken
        it (else the caller reads the row, and refuses from there)."""
        with self._lock:
            instance_id = self._tasks.get(task_id)
            if instance_id is None:
                return None
            waiting = self._kept[instance_id].ready[task_id]
            if may_work is not None and not may_work(waiting.role):
                return None
            if waiting.assignee not in (None, actor):
                return None
            return self._pop(instance_id)

    def put(self, kept: Kept) -> None:
        instance_id = kept.instance.id
        kept.workflow.script_engine = _IDLE
        with self._lock:
            left = [self._pop(instance_id)]  # put by another thread since this step took it
            self._kept[instance_id] = kept
            self._tasks.update(dict.fromkeys(kept.ready, instance_id))
            while len(self._kept) > self._size:
                left.append(self._pop(next(iter(self._kept))))
        for old in left:
            if old is not None:
                discard(old.workflow)

    def _pop(self, instance_id: int) -> Kept | None:
        kept = self._kept.pop(instance_id, None)
        if kept is not None:
            for task_id in kept.ready:
                del self._tasks[task_id]
        return kept


class StateCodec:
    """Instance state <-> JSON text, in SpiffWorkflow's own format (without the spec)."""

    VERSION = SERIALIZER_VERSION

    def __init__(self) -> None:
        self.registry = BpmnWorkflowSerializer.configure(DEFAULT_CONFIG)
        self._converter = _SpeclessConverter(BpmnWorkflow, self.registry)
        self._encoder = create_encoder(self.registry)
        self._encoding = threading.Lock()

    def dumps(self, workflow: BpmnWorkflow, closed: bool = False) -> str:
        """The state as JSON text; a closed complaint's is compressed (it is written once and
        rarely read, and compresses to a fraction: most of a complaint's stored bytes)."""
        # Encoder mode hands datetimes in task data to the JSON encoder instead of walking the
        # whole structure first: what serialize_json does, without the spec. The mode is a flag
        # on the registry all threads share, hence the lock (the GIL serialises this work anyway).
        with self._encoding:
            self.registry._encoder_mode = True
            try:
                text = json.dumps(
                    self._converter.to_dict(workflow),
                    cls=self._encoder,
                    ensure_ascii=False,
                    separators=(",", ":"),
                )
            finally:
                self.registry._encoder_mode = False
        return (
            _PACKED + base64.b64encode(zlib.compress(text.encode(), 9)).decode() if closed else text
        )

    def loads(self, text: str, diagram: CompiledDiagram, call: ServiceCall) -> BpmnWorkflow:
        for mark, decode in _UNPACK.items():
            if text.startswith(mark):
                text = zlib.decompress(decode(text[len(mark) :])).decode()
                break
        workflow = self._converter.from_dict(json.loads(text), diagram)
        return self.bind(workflow, call)

    @staticmethod
    def bind(workflow: BpmnWorkflow, call: ServiceCall) -> BpmnWorkflow:
        # The script engine is not part of the state: without this, a restored workflow would
        # evaluate with SpiffWorkflow's unrestricted default. Its service calls go to this step.
        workflow.script_engine = ScriptEngine(call)
        return workflow

    def new(self, diagram: CompiledDiagram, call: ServiceCall) -> BpmnWorkflow:
        return BpmnWorkflow(
            diagram.spec, diagram.subprocess_specs, script_engine=ScriptEngine(call)
        )
