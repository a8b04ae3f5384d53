"""What administrators do to one complaint, each with a reason that goes into its history:
cancel, retry a failed step, hand a task to someone else, correct data entered wrongly."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from ..errors import ComplaintflowError, Conflict, NotFound
from ..models import Instance, Task, User, UserRole, utcnow
from ..sandbox import RESERVED_NAMES
from .history import Draft
from .steps import write_instance

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.orm import Session

    from ..db import Store
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
