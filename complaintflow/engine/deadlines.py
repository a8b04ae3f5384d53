"""Deadlines: firing the timers that are due, and warning people before a step's deadline.

A timer is due when its instance's `next_timer_at` has passed, whether the server was running
then or not: the first round after start-up fires what fell due during the downtime. A warning
goes once per task (`warned_at`), to its assignee or else to its role, `lead` before it is due.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from SpiffWorkflow.bpmn import BpmnWorkflow
from sqlalchemy import select, update

from .. import notices
from ..errors import Conflict
from ..models import Instance, Task, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..db import Store
    from ..diagrams import CompiledDiagram
    from ..models import ProcedureVersion
    from .steps import Step

SYSTEM_ACTOR = "system"


class DeadlineActs:
    """Mixed into Engine, whose store, diagrams and steps these use."""

    store: Store
    subscribers: notices.Subscribers

    def _step(self, session: Session, instance: Instance, actor: str, now: datetime) -> Step:
        raise NotImplementedError

    def diagram(self, version: ProcedureVersion) -> CompiledDiagram:
        raise NotImplementedError

    # Each kind of work comes as a finder (what is due, read only) and a doer (one item, in
    # its own transaction, doing nothing when another got there first). `serve` runs both in a
    # thread; in the scaled mode the scheduler finds and Celery workers do (complaintflow.jobs).

    def due_timers(self, limit: int = 100) -> list[int]:
        """Running instances with a timer due now, the longest due first."""
        with self.store.read() as session:
            return list(
                session.scalars(
                    select(Instance.id)
                    .where(Instance.next_timer_at <= utcnow(), Instance.status == "running")
                    .order_by(Instance.next_timer_at)
                    .limit(limit)
                )
            )

    def fire_timers(self, instance_id: int) -> bool:
        """Run the due timers of one instance; False when there was nothing (left) to do."""
        try:
            with self.store.write() as session:
                instance = session.get(Instance, instance_id)
                if (
                    instance is None
                    or instance.status != "running"
                    or not (instance.next_timer_at and instance.next_timer_at <= utcnow())
                ):
                    return False
                step = self._step(session, instance, SYSTEM_ACTOR, utcnow())
                step.run(step.load(), BpmnWorkflow.refresh_timers)
                return True
        except Conflict:
            return False  # someone moved it meanwhile; its timers are looked at again next round

    def fire_due_timers(self, limit: int = 100) -> int:
        """Run the timers that are due; returns how many instances moved."""
        return sum(self.fire_timers(i) for i in self.due_timers(limit))

    def tasks_to_warn(self, lead: timedelta, limit: int = 100) -> list[str]:
        """Waiting tasks due within `lead` whose people were not warned yet."""
        now = utcnow()
        with self.store.read() as session:
            return list(
                session.scalars(
                    select(Task.id)
                    .join(Instance, Instance.id == Task.instance_id)
                    .where(
                        Task.state == "ready",
                        Task.warned_at.is_(None),
                        Task.due_at > now,
                        Task.due_at <= now + lead,
                        Instance.status == "running",
                    )
                    .order_by(Task.due_at)
                    .limit(limit)
                )
            )

    def warn(self, task_id: str) -> bool:
        """Warn the people of one task that its deadline is near, once."""
        now = utcnow()
        with self.store.write() as session:
            # Only the process that marks the task warns: no second warning from another.
            marked = session.execute(
                update(Task)
                .where(Task.id == task_id, Task.warned_at.is_(None), Task.state == "ready")
                .values(warned_at=now)
            )
            if marked.rowcount != 1:  # type: ignore[attr-defined]
                return False
            self._warn(session, session.get_one(Task, task_id), now)
            return True

    def warn_deadlines(self, lead: timedelta, limit: int = 100) -> int:
        """Warn about the waiting tasks due within `lead`; returns how many were warned."""
        return sum(self.warn(task_id) for task_id in self.tasks_to_warn(lead, limit))

    def _warn(self, session: Session, task: Task, now: datetime) -> None:
        instance = task.instance
        diagram = self.diagram(instance.version)
        occasion = notices.Occasion(session, self.store.settings, diagram, instance, now)
        due = task.due_at.isoformat() if task.due_at else None
        facts = {"task": task.name, "due": due, "task_id": task.id}
        event = "deadline.approaching"
        if task.assignee:
            notices.to_person(occasion, task.assignee, event, task.bpmn_id, **facts)
        else:
            notices.to_role(occasion, task.role, event, task.bpmn_id, **facts)
        notices.publish(
            occasion,
            self.subscribers.active(session),
            [(event, {"step": task.bpmn_id, "name": task.name, **facts})],
        )
