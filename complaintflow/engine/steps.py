"""One workflow step, from loaded state to saved state, in the caller's transaction.

Every change to an instance — start, completion, timer, retry, cancel — goes through `Step`:
it gives the workflow a script engine bound to this transaction, runs the change and the engine
steps that follow, reads off what happened, and saves state, task rows and history together with
an optimistic version check (the loser of a race gets `Conflict`, nothing half-written).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import CursorResult, Table, Update, bindparam, insert, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from .. import notices
from ..attachments import StoredFile
from ..chain import event_hash
from ..config import Settings
from ..db import after_commit, batch_rowcount, pipelined
from ..diagrams import CompiledDiagram
from ..errors import ComplaintflowError, StaleInstance
from ..handlers import HandlerContext, HandlerRegistry
from ..models import Attachment, Event, Instance, Task
from ..notices import WEBHOOK_EVENTS, Occasion, Subscribers
from .history import Draft, StepTrace, diff, due_at, next_timer_at, snapshot
from .runtime import Kept, StateCodec, Waiting, WorkflowCache, discard

INSTANCES, TASKS, EVENTS = (cast(Table, m.__table__) for m in (Instance, Task, Event))
# Built once: constructing a statement costs more than running it on the hot path. The INSERTs
# are inline: a one-row INSERT would otherwise ask for the new key back (RETURNING), a result
# to read, which a pipelined batch cannot give.
_ADD_TASKS = insert(TASKS).inline()
_ADD_EVENTS = insert(EVENTS).inline()
_FINISH_TASK = (
    update(TASKS)
    .where(TASKS.c.id == bindparam("task_id"), TASKS.c.state == "ready")
    .values(
        state=bindparam("state"),
        completed_at=bindparam("completed_at"),
        completed_by=bindparam("completed_by"),
    )
)


@dataclass
class Step:
    session: Session
    instance: Instance
    diagram: CompiledDiagram
    handlers: HandlerRegistry
    codec: StateCodec
    actor: str
    now: datetime

    settings: Settings
    subscribers: Subscribers
    workflows: WorkflowCache
    cancelling: bool = False
    move_to: int | None = None  # the version a migration moves the instance to

    def __post_init__(self) -> None:
        self.preface: list[Draft] = []  # events that come before what the engine did
        # The human tasks the saved step left waiting, when it made every one of them (None
        # when some were waiting before it): what they are is known without reading them back.
        self.waiting: list[Task] | None = None
        self.trace = StepTrace(actor=self.actor)
        self.expected_version = self.instance.lock_version
        # The human tasks ready before the step, as far as this process knows (`Kept.ready`).
        self.known_ready: dict[str, Waiting] = {}

    # -- the service call SpiffWorkflow makes for a service task --------------------------

    def call(self, task: Any, name: str, params: dict[str, Any]) -> dict[str, Any]:
        context = HandlerContext(
            session=self.session,
            settings=self.settings,
            instance=self.instance,
            diagram=self.diagram,
            actor=self.actor,
            now=self.now,
            bpmn_id=task.task_spec.bpmn_id,
            data=dict(task.data),
        )
        entry: dict[str, Any] = {"operator": name, "params": params}
        self.trace.calls[task.id] = entry
        try:
            # A savepoint, so a failing handler leaves none of its writes behind.
            with self.session.begin_nested():
                result = self.handlers.call(name, context, params)
        except Exception as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
            raise
        entry["result"] = result
        self.trace.handler_events[task.id] = context.events
        return result

    # -- what a person submits ----------------------------------------------------------

    def attach(
        self, files: Sequence[StoredFile], task_id: str | None, by_complainant: bool
    ) -> list[dict[str, Any]]:
        """Record stored files on the instance, in this step's transaction."""
        summaries = []
        for stored in files:
            attachment = Attachment(
                id=uuid.uuid4().hex,
                instance_id=self.instance.id,
                task_id=task_id,
                sha256=stored.sha256,
                filename=stored.filename,
                media_type=stored.media_type,
                size=stored.size,
                uploaded_by=self.actor,
                by_complainant=by_complainant,
                uploaded_at=self.now,
            )
            self.session.add(attachment)
            summaries.append(
                {
                    "id": attachment.id,
                    "filename": stored.filename,
                    "media_type": stored.media_type,
                    "size": stored.size,
                    "sha256": stored.sha256,
                }
            )
        return summaries

    def submitted(
        self, task_id: Any, data: dict[str, Any], attachments: list[dict[str, Any]]
    ) -> None:
        """What the history shows as submitted at a step: the form data and the files."""
        self.trace.submitted[task_id] = (
            {**data, "attachments": attachments} if attachments else data
        )

    # -- running ------------------------------------------------------------------------

    def load(self, kept: Kept | None = None) -> BpmnWorkflow:
        """The instance's workflow: `kept` (from the cache, taken by the caller), or kept here
        at the row's version, or else restored from the state."""
        if kept is None:
            kept = self.workflows.take(self.instance.id, self.instance.lock_version)
        if kept is not None:
            self.known_ready = kept.ready
            return self.codec.bind(kept.workflow, self.call)
        return self.codec.loads(self.instance.state, self.diagram, self.call)

    def new_workflow(self) -> BpmnWorkflow:
        return self.codec.new(self.diagram, self.call)

    def run(self, workflow: BpmnWorkflow, change: Callable[[BpmnWorkflow], None]) -> None:
        """Apply `change`, let the engine run on, and save everything that happened."""
        before = snapshot(workflow)
        try:
            change(workflow)
            workflow.do_engine_steps()
        except (DBAPIError, ComplaintflowError):
            raise  # the database refused, or the person asked for something wrong: save nothing
        except Exception as exc:  # diagram code or a handler failed: keep it, mark the error
            self.trace.error = f"{type(exc).__name__}: {exc}"
        self.save(workflow, before)

    def save(self, workflow: BpmnWorkflow, before: dict[Any, int]) -> None:
        changes = diff(before, workflow, self.trace, self.diagram.role_of)
        changes.events[:0] = self.preface
        instance = self.instance
        status = self._status(workflow)
        if status != instance.status and status in ("completed", "error"):
            data = {"error": self.trace.error} if status == "error" else {}
            action = "instance.completed" if status == "completed" else "instance.errored"
            changes.events.append(Draft(self.now, self.actor, action, data=data))
        fired = sum(1 for event in changes.events if event.action == "timer.fired")
        values: dict[str, Any] = {
            "state": self.codec.dumps(workflow, closed=status in ("completed", "cancelled")),
            "serializer_version": self.codec.VERSION,
            "status": status,
            "error": self.trace.error if status == "error" else None,
            "next_timer_at": next_timer_at(workflow) if status == "running" else None,
            "updated_at": self.now,
            "missed_deadlines": instance.missed_deadlines + fired,
        }
        if self.move_to is not None:
            values["version_id"] = self.move_to
        if status in ("completed", "cancelled") and instance.completed_at is None:
            values["completed_at"] = self.now
        ready = [self._ready_row(task) for task in changes.ready]
        with writing_instance(
            self.session, instance, self.expected_version, changes.events, values
        ):  # nothing reads what these write: in the instance's batch
            self._sync_tasks(ready, changes.finished)
        if changes.waiting == len(ready):
            self.waiting = [Task(**row) for row in ready]
        self._publish(changes.events)
        if status == "running" and self.move_to is None:
            still = {
                task_id: waiting
                for task_id, waiting in self.known_ready.items()
                if _is_ready(workflow, task_id)
            }
            made = {row["id"]: Waiting(row["role"], None) for row in ready}
            kept = Kept(instance.lock_version, workflow, instance, still | made)
            after_commit(self.session, lambda: self.workflows.put(kept))
        else:  # not kept: once the caller's block is over, nothing uses it
            after_commit(self.session, lambda: discard(workflow))

    def _publish(self, events: list[Draft]) -> None:
        """Other systems' subscriptions hear of what this step did, with the step."""
        published = [
            (WEBHOOK_EVENTS[e.action], {"step": e.bpmn_id, "name": e.name, **e.data})
            for e in events
            if e.action in WEBHOOK_EVENTS
        ]
        subscribers = self.subscribers.active(self.session) if published else ()
        if subscribers:
            occasion = Occasion(self.session, self.settings, self.diagram, self.instance, self.now)
            notices.publish(occasion, subscribers, published)

    def _status(self, workflow: BpmnWorkflow) -> str:
        if self.cancelling:
            return "cancelled"
        if self.trace.error or workflow.get_tasks(state=TaskState.ERROR):
            return "error"
        return "completed" if workflow.is_completed() else "running"

    def refresh_ready_rows(self, workflow: BpmnWorkflow) -> None:
        """After a migration the waiting tasks keep their ids but may have a new name, lane
        or deadline: bring their inbox rows up to date."""
        for task in workflow.get_tasks(state=TaskState.READY, manual=True):
            self.session.execute(
                update(TASKS)
                .where(TASKS.c.id == str(task.id))
                .values(
                    bpmn_id=task.task_spec.bpmn_id,
                    name=task.task_spec.bpmn_name or task.task_spec.bpmn_id,
                    role=self.diagram.role_of(task.task_spec) or "",
                    due_at=due_at(task),
                )
            )

    def _ready_row(self, task: Any) -> dict[str, Any]:
        """The inbox row of a human task that became ready."""
        return {
            "id": str(task.id),
            "instance_id": self.instance.id,
            "bpmn_id": task.task_spec.bpmn_id,
            "name": task.task_spec.bpmn_name or task.task_spec.bpmn_id,
            "role": self.diagram.role_of(task.task_spec) or "",
            "state": "ready",
            "due_at": due_at(task),
            "created_at": self.now,
        }

    def _sync_tasks(self, ready: list[dict[str, Any]], finished: dict[str, str]) -> None:
        # Core statements on the session's connection, past the ORM (no flush to wait for):
        # the inbox rows need no ORM identity, and this is the hot path.
        if ready:
            self.session.connection().execute(_ADD_TASKS, ready)
        if finished:
            self.session.connection().execute(
                _FINISH_TASK,
                [
                    {
                        "task_id": task_id,
                        "state": state,
                        "completed_at": self.now,
                        "completed_by": self.actor if state == "completed" else None,
                    }
                    for task_id, state in finished.items()
                ],
            )


@lru_cache(maxsize=64)
def _update_instance(columns: tuple[str, ...]) -> Update:
    """The version-checked UPDATE of an instance row setting `columns`, built once per set."""
    return (
        update(INSTANCES)
        .where(INSTANCES.c.id == bindparam("row_id"))
        .where(INSTANCES.c.lock_version == bindparam("expected"))
        .values({name: bindparam(f"new_{name}") for name in columns})
    )


def _prefixed(values: dict[str, Any]) -> dict[str, Any]:
    return {f"new_{name}": value for name, value in values.items()}


def _is_ready(workflow: BpmnWorkflow, task_id: str) -> bool:
    task = workflow.get_task_from_id(uuid.UUID(task_id))
    return task is not None and task.state == TaskState.READY


def write_instance(
    session: Session,
    instance: Instance,
    expected_version: int,
    drafts: list[Draft],
    values: dict[str, Any],
) -> None:
    """Update the instance row if nobody else did since `expected_version` was read, and chain
    the events onto its history."""
    with writing_instance(session, instance, expected_version, drafts, values):
        pass


@contextmanager
def writing_instance(
    session: Session,
    instance: Instance,
    expected_version: int,
    drafts: list[Draft],
    values: dict[str, Any],
) -> Iterator[None]:
    """`write_instance`, with the block's own writes in the same batch: on PostgreSQL the
    UPDATE, the events and the block's statements are sent together, one round trip, and the
    UPDATE's row count — the version check that serialises writers — is read off the answer.
    Nothing is committed before that check."""
    seq, head = instance.head_seq, instance.head_hash
    rows = []
    for draft in drafts:
        seq += 1
        digest = event_hash(
            head,
            instance.id,
            seq,
            draft.at,
            draft.actor,
            draft.action,
            draft.bpmn_id,
            draft.name,
            draft.data,
        )
        rows.append(
            {
                "instance_id": instance.id,
                "seq": seq,
                "at": draft.at,
                "actor": draft.actor,
                "action": draft.action,
                "bpmn_id": draft.bpmn_id,
                "name": draft.name,
                "data": draft.data,
                "prev_hash": head,
                "hash": digest,
            }
        )
        head = digest
    values = {**values, "head_seq": seq, "head_hash": head, "lock_version": expected_version + 1}
    updated: CursorResult[Any] | None = None
    try:
        with pipelined(session):
            updated = session.connection().execute(
                _update_instance(tuple(values)),
                {"row_id": instance.id, "expected": expected_version, **_prefixed(values)},
            )
            if rows:
                session.connection().execute(_ADD_EVENTS, rows)
            yield
    except IntegrityError as exc:
        # A writer that read before the last save numbers its events as the winner did.
        if updated is not None and batch_rowcount(updated) != 1:
            raise _stale(instance) from exc
        raise
    assert updated is not None  # the block ran
    if batch_rowcount(updated) != 1:
        raise _stale(instance)
    for name, value in values.items():
        set_committed_value(instance, name, value)  # already written: not dirty again


def _stale(instance: Instance) -> StaleInstance:
    return StaleInstance(
        f"complaint {instance.id} was changed by someone else meanwhile; reload and try again"
    )
