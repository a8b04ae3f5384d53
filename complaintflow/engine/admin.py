"""What administrators do to one complaint, each with a reason that goes into its history:
cancel, retry a failed step, hand a task to someone else, correct data entered wrongly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.util.diff import SpecDiff, WorkflowDiff, migrate_workflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from ..errors import ComplaintflowError, Conflict, NotFound
from ..models import Instance, ProcedureVersion, Task, User, UserRole, utcnow
from ..sandbox import RESERVED_NAMES
from ..validation import deadlines_read
from .history import Draft
from .steps import write_instance

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.orm import Session

    from ..db import Store
    from ..diagrams import CompiledDiagram
    from .runtime import StateCodec
    from .steps import Step

_SCALARS = (str, int, float, bool, type(None))


class AdminActs:
    """Mixed into Engine, whose store and steps these use."""

    store: Store

    def _step(self, session: Session, instance: Instance, actor: str, now: datetime) -> Step:
        raise NotImplementedError

    def _admin_step(
        self,
        instance_id: int,
        actor: str,
        action: str,
        data: dict[str, Any],
        change: Callable[[BpmnWorkflow], None],
        statuses: tuple[str, ...],
    ) -> None:
        with self.store.write() as session:
            instance = session.get(Instance, instance_id)
            if instance is None:
                raise NotFound(f"there is no complaint instance {instance_id}")
            if instance.status not in statuses:
                raise Conflict(
                    f"instance {instance_id} is {instance.status}; {action} needs"
                    f" {' or '.join(statuses)}"
                )
            now = utcnow()
            step = self._step(session, instance, actor, now)
            step.cancelling = action == "instance.cancelled"
            step.preface.append(Draft(now, actor, action, data=data))
            step.run(step.load(), change)

    def cancel(self, instance_id: int, actor: str, reason: str) -> None:
        self._admin_step(
            instance_id,
            actor,
            "instance.cancelled",
            {"reason": reason},
            BpmnWorkflow.cancel,
            ("running", "error"),
        )

    def retry(self, instance_id: int, actor: str, reason: str) -> None:
        """Run the failed steps of an instance in status `error` again."""

        def rerun(workflow: BpmnWorkflow) -> None:
            for task in workflow.get_tasks(state=TaskState.ERROR):
                workflow.reset_from_task_id(task.id)

        self._admin_step(
            instance_id, actor, "instance.retried", {"reason": reason}, rerun, ("error",)
        )

    def correct(self, instance_id: int, changes: dict[str, Any], actor: str, reason: str) -> None:
        """Correct fields entered wrongly. Only fields the complaint already has, with plain
        values; the history keeps what each was before."""
        if not changes or any(not isinstance(v, _SCALARS) for v in changes.values()):
            raise ComplaintflowError("give the fields to correct with plain values (text, numbers)")
        recorded: dict[str, Any] = {}

        def amend(workflow: BpmnWorkflow) -> None:
            targets = workflow.get_tasks(state=TaskState.READY) or [workflow.last_task]
            current = targets[0].data
            unknown = sorted(k for k in changes if k not in current or k in RESERVED_NAMES)
            if unknown:
                raise ComplaintflowError(f"this complaint has no field {', '.join(unknown)}")
            recorded.update({k: {"from": current[k], "to": v} for k, v in changes.items()})
            for task in targets:
                task.data.update(changes)

        self._admin_step(
            instance_id,
            actor,
            "data.corrected",
            {"reason": reason, "changes": recorded},
            amend,
            ("running", "error"),
        )

    def reassign(self, task_id: str, to: str, actor: str, reason: str) -> None:
        """Hand a ready task to a person who holds its role."""
        with self.store.write() as session:
            task = session.get(Task, task_id)
            if task is None:
                raise NotFound(f"there is no task '{task_id}'")
            if task.state != "ready":
                raise Conflict(f"this task was already {task.state}; it cannot be handed on")
            holder = session.scalars(
                select(User.username)
                .join(UserRole)
                .where(
                    User.username == to,
                    User.active.is_(True),
                    UserRole.role_key.in_([task.role, "admin"]),
                )
            ).first()
            if holder is None:
                raise ComplaintflowError(f"{to} is not an active user holding the role {task.role}")
            now = utcnow()
            drafts = [
                Draft(
                    now,
                    actor,
                    "task.reassigned",
                    task.bpmn_id,
                    task.name,
                    {"from": task.assignee, "to": to, "reason": reason},
                )
            ]
            write_instance(
                session, task.instance, task.instance.lock_version, drafts, {"updated_at": now}
            )
            task.assignee = to


def _move(workflow: BpmnWorkflow, new: CompiledDiagram, registry: Any) -> None:
    diff = WorkflowDiff(workflow, SpecDiff(registry, workflow.spec, new.spec))
    migrate_workflow(diff, workflow, new.spec)


# Changes to a step that do not matter to a complaint already past it: how it is wired to the
# steps around it, and its description.
_WIRING = {"inputs", "outputs", "documentation", "lookahead", "description"}
_PAST = TaskState.COMPLETED | TaskState.STARTED | TaskState.ERROR


@dataclass(frozen=True)
class Target:
    """The version complaints move to, and the deadlines its timers read."""

    version: int
    deadlines: frozenset[str]


def _missing_deadlines(workflow: BpmnWorkflow, target: Target) -> list[str]:
    """A complaint keeps the deadline durations it started under (its data's `sla`); a timer of
    the new version reading a name it does not carry would stop it with an error."""
    carried = workflow.task_tree.data.get("sla") or {}
    missing = sorted(target.deadlines - set(carried))
    if not missing:
        return []
    return [
        f"version {target.version} has the deadline {', '.join(map(repr, missing))}, which this"
        " complaint did not start with (it carries: "
        f"{', '.join(sorted(carried)) or 'none'}); its timer would stop the complaint with an"
        " error"
    ]


@dataclass
class Move:
    """Whether one complaint can move to another version, and why not."""

    instance_id: int
    number: str | None
    from_version: int
    movable: bool
    reasons: list[str] = field(default_factory=list)


class MigrationActs:
    """Mixed into Engine: moving running complaints to a newer version of their procedure."""

    store: Store
    codec: StateCodec

    def _step(self, session: Session, instance: Instance, actor: str, now: datetime) -> Step:
        raise NotImplementedError

    def diagram(self, version: ProcedureVersion) -> CompiledDiagram:
        raise NotImplementedError

    def _obstacles(self, workflow: BpmnWorkflow, new: CompiledDiagram, target: Target) -> list[str]:
        if workflow.subprocesses:
            return ["it is inside a sub-process, which cannot move yet"]
        spec_diff = SpecDiff(self.codec.registry, workflow.spec, new.spec)
        changed = {spec for spec, keys in spec_diff.changed.items() if set(keys) - _WIRING}
        removed = set(spec_diff.removed)
        reasons = _missing_deadlines(workflow, target)
        for task in workflow.get_tasks():
            spec = task.task_spec
            if spec.bpmn_id is None:
                continue
            label = f"{spec.bpmn_id} ({spec.bpmn_name or ''})"
            if spec in removed and task.state & (_PAST | TaskState.READY | TaskState.WAITING):
                reasons.append(
                    f"{label} is {TaskState.get_name(task.state).lower()} here and"
                    " no longer in the new version"
                )
            elif spec in changed and task.state & _PAST:
                reasons.append(
                    f"{label} was already {TaskState.get_name(task.state).lower()}"
                    " and is changed in the new version"
                )
        return sorted(set(reasons))

    def migrate(
        self,
        key: str,
        to: int,
        actor: str,
        reason: str,
        instance_ids: list[int] | None = None,
        dry_run: bool = True,
    ) -> list[Move]:
        """Move running complaints of `key` (those given, else all on older versions) to
        version `to`. A dry run only says which can move and why others cannot; each real move
        is its own transaction with an `instance.migrated` event."""
        with self.store.read() as session:
            target = self.version(session, key, to)  # type: ignore[attr-defined]
            if target.status != "approved":
                raise Conflict(
                    f"version {to} is {target.status}; complaints move only to an approved version"
                )
            query = (
                select(Instance.id)
                .join(ProcedureVersion)
                .where(
                    ProcedureVersion.procedure_key == key,
                    ProcedureVersion.version < to,
                    Instance.status.in_(("running", "error")),
                )
            )
            if instance_ids is not None:
                query = query.where(Instance.id.in_(instance_ids))
            ids = list(session.scalars(query.order_by(Instance.id)))
        new = self.diagram(target)
        goal = Target(to, frozenset(deadlines_read(new.xml)))
        moves = []
        for instance_id in ids:
            with self.store.write() as session:
                instance = session.get(Instance, instance_id)
                assert instance is not None
                move = Move(
                    instance_id,
                    instance.record.number if instance.record else None,
                    instance.version.version,
                    True,
                )
                step = self._step(session, instance, actor, utcnow())
                workflow = step.load()
                move.reasons = self._obstacles(workflow, new, goal)
                move.movable = not move.reasons
                moves.append(move)
                if dry_run or not move.movable:
                    continue
                step.diagram, step.move_to = new, target.id
                step.preface.append(
                    Draft(
                        step.now,
                        actor,
                        "instance.migrated",
                        data={"from": move.from_version, "to": to, "reason": reason},
                    )
                )
                step.run(workflow, partial(_move, new=new, registry=self.codec.registry))
                step.refresh_ready_rows(workflow)
        return moves
