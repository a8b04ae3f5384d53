"""The engine's commands: deploy a diagram, start a complaint, claim and complete tasks, fire
due timers, cancel and retry. Each runs in one transaction of its own.

The web layer and the CLI call these; they never see a SpiffWorkflow object.
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from ..attachments import StoredFile
from ..db import Store, after_commit
from ..diagrams import CompiledDiagram, compile_diagram, parse_xml
from ..errors import (
    ComplaintflowError,
    Conflict,
    Forbidden,
    InvalidData,
    NotFound,
    StaleInstance,
)
from ..handlers import HandlerRegistry
from ..models import Instance, IntakeRequest, ProcedureVersion, Task, utcnow
from ..notices import Subscribers
from ..sla import SlaTable
from . import queries
from .admin import AdminActs, MigrationActs
from .deadlines import DeadlineActs
from .history import Draft
from .runtime import Kept, StateCodec, Waiting, WorkflowCache, discard
from .steps import Step, write_instance
from .versions import VersionActs


@dataclass(frozen=True)
class Delivery:
    """A complaint sent by another system (or API client): who sent it, its Idempotency-Key,
    its body's hash."""

    source: str
    key: str
    body_sha256: str

    @classmethod
    def of(cls, source: str, key: str, body: bytes) -> Delivery:
        if not _IDEMPOTENCY_KEY.match(key):
            raise ComplaintflowError(
                "the Idempotency-Key must be 1 to 200 printable ASCII characters"
            )
        return cls(source, key, hashlib.sha256(body).hexdigest())


_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable ASCII, as headers carry it


@dataclass(frozen=True)
class _Claim:
    instance_id: int
    changed: bool  # False: the task was already as asked (e.g. released by someone else)


_ATTEMPTS = 3

# Built once: a statement with loader options costs more to build than to run. The instance
# comes along, as every caller goes on to step it, with its state: with several web processes
# the workflow is often not kept in this one (`Step.load`), and reading the state later would
# cost a second round trip.
_READY_TASK = select(Task).where(Task.id == bindparam("task_id")).options(joinedload(Task.instance))

T = TypeVar("T")


def _retry_when_stale(attempt: Callable[[], T]) -> T:
    """Run again when the instance changed between reading and writing (a timer fired, a
    colleague claimed another task): the next attempt sees the change, and refuses if it was
    this very task that was taken."""
    for remaining in range(_ATTEMPTS - 1, -1, -1):
        try:
            return attempt()
        except StaleInstance:
            if not remaining:
                raise
    raise AssertionError("unreachable")


class Engine(AdminActs, DeadlineActs, MigrationActs, VersionActs):
    def __init__(
        self,
        store: Store,
        sla: SlaTable,
        handlers: HandlerRegistry,
        subscribers: Subscribers | None = None,
    ) -> None:
        self.store = store
        self.subscribers = subscribers or Subscribers()
        self.sla = sla
        self.handlers = handlers
        self.codec = StateCodec()
        self.workflows = WorkflowCache()
        self._diagrams: dict[int, CompiledDiagram] = {}
        self._diagrams_lock = threading.Lock()

    # -- versions -----------------------------------------------------------------------

    def diagram(self, version: ProcedureVersion) -> CompiledDiagram:
        """The runnable diagram of a stored version, parsed once per process."""
        diagram = self._diagrams.get(version.id)
        if diagram is None:
            with self._diagrams_lock:
                diagram = self._diagrams.get(version.id)
                if diagram is None:
                    source = f"{version.procedure_key} v{version.version}"
                    with self.store.read() as session:  # its own: the caller's may be closed
                        stored = session.get(ProcedureVersion, version.id)
                        assert stored is not None
                        xml, forms = stored.bpmn_xml, stored.forms
                    tree = parse_xml(xml.encode(), source)
                    diagram = compile_diagram(xml, tree, source, forms)
                    self._diagrams[version.id] = diagram
        return diagram

    def current_diagrams(self) -> dict[str, CompiledDiagram]:
        """The diagram in effect for each procedure that has one, by key, in the procedures'
        order."""
        with self.store.read() as session:
            current = self.current_versions(session)
        return {key: self.diagram(version) for key, version in current.items()}

    # -- instances ----------------------------------------------------------------------

    def _step(self, session: Session, instance: Instance, actor: str, now: datetime) -> Step:
        return Step(
            session,
            instance,
            self.diagram(instance.version),
            self.handlers,
            self.codec,
            actor,
            now,
            self.store.settings,
            self.subscribers,
            self.workflows,
        )

    def start(
        self,
        key: str,
        data: Any,
        actor: str,
        files: Sequence[StoredFile] = (),
        by_complainant: bool = False,
        language: str = "zh_Hant",
        delivery: Delivery | None = None,
    ) -> int:
        """Start a complaint with its intake data (and stored files); returns the instance id.
        `language` is the complainant's, for what is sent to them; `delivery` marks a call from
        another system, kept so that its retry finds this complaint (see `start_once`)."""
        with self.store.write() as session:
            version = self.current_version(session, key)
            diagram = self.diagram(version)
            intake = diagram.validator_for(diagram.start_spec).clean(data)
            now = utcnow()
            instance = Instance(
                version=version,
                status="running",
                state="{}",
                serializer_version=self.codec.VERSION,
                started_at=now,
                started_by=actor,
                updated_at=now,
                lock_version=0,
                language=language,
                # None yet, and known: the record handler and the next step do not read them back.
                record=None,
                completed_at=None,
            )
            session.add(instance)
            session.flush()
            if delivery is not None:  # flushed now: a racing twin fails here, before the work
                session.add(
                    IntakeRequest(
                        source=delivery.source,
                        key=delivery.key,
                        body_sha256=delivery.body_sha256,
                        instance_id=instance.id,
                        created_at=now,
                    )
                )
                session.flush()
            step = self._step(session, instance, actor, now)
            workflow = step.new_workflow()
            start_event = workflow.get_tasks(spec_name=diagram.start_spec.name)[0]
            sla = self.sla.durations(key)
            # The history keeps the deadlines the complaint was received under, for auditors.
            attached = step.attach(files, None, by_complainant)
            step.submitted(start_event.id, {**intake, "sla": sla}, attached)

            def begin(wf: BpmnWorkflow) -> None:
                wf.task_tree.data.update(intake, sla=sla)

            step.run(workflow, begin)
            return instance.id

    def start_once(
        self, key: str, data: Any, actor: str, delivery: Delivery, language: str = "zh_Hant"
    ) -> tuple[int, bool]:
        """Start a complaint for another system's call unless the same call (source and
        Idempotency-Key) started one already: (instance id, whether it is new)."""
        found = self._delivered(delivery)
        if found is not None:
            return found, False
        try:
            return self.start(key, data, actor, language=language, delivery=delivery), True
        except IntegrityError:  # the same call, retried while the first was being saved
            found = self._delivered(delivery)
            if found is None:
                raise
            return found, False

    def _delivered(self, delivery: Delivery) -> int | None:
        with self.store.read() as session:
            row = session.scalar(
                select(IntakeRequest).where(
                    IntakeRequest.source == delivery.source, IntakeRequest.key == delivery.key
                )
            )
        if row is None:
            return None
        if row.body_sha256 != delivery.body_sha256:
            raise Conflict(
                "this Idempotency-Key was used before with a different body; use a new key"
                " for a new complaint"
            )
        return row.instance_id

    def _ready_task(
        self,
        session: Session,
        task_id: str,
        actor: str,
        for_anyone: bool = False,
        may_work: Callable[[str], bool] | None = None,
    ) -> Task:
        row = session.scalar(_READY_TASK, {"task_id": task_id})
        if row is None:
            raise NotFound(f"there is no task '{task_id}'")
        if may_work is not None and not may_work(row.role):
            raise Forbidden(f"this task is for the role '{row.role}', which you do not hold")
        if row.state != "ready":
            by = f" by {row.completed_by}" if row.completed_by else ""
            raise Conflict(f"this task was already {row.state}{by}; nothing was changed")
        if row.assignee not in (None, actor) and not for_anyone:
            raise Conflict(f"this task is claimed by {row.assignee}")
        return row

    def complete(
        self,
        task_id: str,
        data: Any,
        actor: str,
        files: Sequence[StoredFile] = (),
        may_work: Callable[[str], bool] | None = None,
    ) -> dict[str, Any]:
        """Complete a ready user task with its form data (and stored files); returns the
        complaint as the step left it (`queries.outcome`), read in the step's own transaction.
        `may_work(role)` says whether the actor holds the task's role: checked there too,
        before whether the task is still ready."""
        kept = self.workflows.take_task(task_id, actor, may_work)
        if kept is not None:
            try:
                return self._complete(task_id, data, actor, files, may_work, kept)
            except StaleInstance:  # the complaint moved on elsewhere since: read it
                discard(kept.workflow)
        return _retry_when_stale(lambda: self._complete(task_id, data, actor, files, may_work))

    def _complete(
        self,
        task_id: str,
        data: Any,
        actor: str,
        files: Sequence[StoredFile],
        may_work: Callable[[str], bool] | None,
        kept: Kept | None = None,
    ) -> dict[str, Any]:
        with self.store.write() as session:
            if kept is None:
                instance = self._ready_task(session, task_id, actor, may_work=may_work).instance
            else:  # the row as this process's last change of it left it, with no read
                instance = session.merge(kept.instance, load=False)
            step = self._step(session, instance, actor, utcnow())
            workflow = step.load(kept)
            task = workflow.get_task_from_id(UUID(task_id))
            if task is None or task.state != TaskState.READY:
                raise Conflict("this task is no longer waiting for anyone; nothing was changed")
            try:
                submitted = step.diagram.validator_for(task.task_spec).clean(data)
            except InvalidData:
                if kept is not None:  # refused before anything changed: still as committed
                    self.workflows.put(kept)
                raise
            step.submitted(task.id, submitted, step.attach(files, task_id, False))

            def finish(_: BpmnWorkflow) -> None:
                task.data.update(submitted)
                task.run()

            step.run(workflow, finish)
            return queries.outcome(session, instance, step.waiting)

    def claim(
        self,
        task_id: str,
        actor: str,
        release: bool = False,
        for_anyone: bool = False,
        may_work: Callable[[str], bool] | None = None,
    ) -> int:
        """Take a ready task (or give it back), so colleagues see who is on it. With
        `for_anyone` (admins), give back a task someone else took; `may_work` as in `complete`."""
        return _retry_when_stale(
            lambda: self._claim(task_id, actor, release, for_anyone, may_work)
        ).instance_id

    def give_back(self, username: str, may_work: Callable[[str], bool], actor: str) -> int:
        """Release the tasks `username` had taken whose role they may no longer work in (a
        role taken away, or the account deactivated), so that colleagues holding it can take
        them; returns how many went back."""
        with self.store.read() as session:
            claimed = [t for t, role in queries.claimed_by(session, username) if not may_work(role)]
        released = 0
        for task_id in claimed:
            try:
                # Only while it is still theirs: released and taken by a colleague since the
                # read above, it stays with the colleague.
                claim = _retry_when_stale(
                    partial(self._claim, task_id, actor, True, True, None, username)
                )
            except Conflict:  # completed meanwhile: nothing to give back
                continue
            released += claim.changed
        return released

    def _claim(
        self,
        task_id: str,
        actor: str,
        release: bool,
        for_anyone: bool,
        may_work: Callable[[str], bool] | None,
        held_by: str | None = None,
    ) -> _Claim:
        """Take or release the task; with `held_by`, release it only from that person."""
        with self.store.write() as session:
            row = self._ready_task(session, task_id, actor, for_anyone, may_work)
            if release and (row.assignee is None or held_by not in (None, row.assignee)):
                return _Claim(row.instance_id, changed=False)
            now = utcnow()
            action = "task.released" if release else "task.claimed"
            instance = row.instance
            kept = self.workflows.take(instance.id, instance.lock_version)
            # The instance row first, as every step does: one lock order, no deadlock.
            write_instance(
                session,
                instance,
                instance.lock_version,
                [Draft(now, actor, action, row.bpmn_id, row.name)],
                {"updated_at": now},
            )
            row.assignee = None if release else actor
            if kept is not None:  # kept at the version just written: taking a task is no step
                ready = {**kept.ready, task_id: Waiting(row.role, row.assignee)}
                kept = Kept(instance.lock_version, kept.workflow, instance, ready)
                after_commit(session, partial(self.workflows.put, kept))
            return _Claim(row.instance_id, changed=True)

    def _read(self, instance: Instance, find: Callable[[BpmnWorkflow], T]) -> T:
        """What `find` reads off the instance's workflow as last saved: the one kept here if it
        is at the row's version, else one restored from the state. `find` returns a copy."""
        found = self.workflows.look(instance.id, instance.lock_version, find)
        if found is not None:
            return found

        def refuse(*_: Any) -> dict[str, Any]:
            raise RuntimeError("reading an instance must not call services")

        workflow = self.codec.loads(instance.state, self.diagram(instance.version), refuse)
        try:
            return find(workflow)
        finally:
            discard(workflow)

    def task_data(self, instance: Instance, task_id: str) -> dict[str, Any]:
        """The data a task sees: the complaint's facts so far."""

        def data(workflow: BpmnWorkflow) -> dict[str, Any]:
            task = workflow.get_task_from_id(UUID(task_id))
            return copy.deepcopy(task.data) if task is not None else {}

        return self._read(instance, data)

    def instance_data(self, instance: Instance) -> dict[str, Any]:
        """The data as the last step left it."""

        def data(workflow: BpmnWorkflow) -> dict[str, Any]:
            return copy.deepcopy((workflow.last_task or workflow.task_tree).data)

        return self._read(instance, data)
