"""Driving one complaint through a bundled procedure, as the staff of each role would, through
the engine's commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from complaintflow.app import services
from complaintflow.engine import queries
from complaintflow.models import ComplaintRecord, Notification, Task
from complaintflow.services import Services

from .factories import fill


class Complaint:
    def __init__(self, svc: Services, key: str, **intake: Any) -> None:
        self.svc = svc
        with svc.store.read() as session:
            self.diagram = svc.engine.diagram(svc.engine.current_version(session, key))
        self.received_by = self.diagram.role_of(self.diagram.start_spec) or "admin"
        self.id = svc.engine.start(key, fill(self.diagram.intake_form, **intake), self.received_by)

    @classmethod
    def existing(cls, svc: Services, instance_id: int) -> Complaint:
        """A complaint started some other way (another language, another caller)."""
        c = cls.__new__(cls)
        c.svc, c.id = svc, instance_id
        with svc.store.read() as session:
            c.diagram = svc.engine.diagram(queries.get_instance(session, instance_id).version)
        c.received_by = c.diagram.role_of(c.diagram.start_spec) or "admin"
        return c

    @classmethod
    def factory(
        cls, make_app: Callable[..., Flask], key: str, **settings: Any
    ) -> Callable[..., Complaint]:
        svc = services(make_app(**settings))
        return lambda **intake: cls(svc, key, **intake)

    def ready(self) -> dict[str, Task]:
        with self.svc.store.read() as session:
            return {t.bpmn_id: t for t in queries.ready_tasks_of(session, self.id)}

    def do(self, bpmn_id: str, **choices: Any) -> Complaint:
        """Complete the ready task `bpmn_id` as a holder of its role, filling its form."""
        ready = self.ready()
        assert bpmn_id in ready, f"{bpmn_id} is not ready; ready: {sorted(ready)}"
        task = ready[bpmn_id]
        with self.svc.store.read() as session:  # the version it runs on now (it may have moved)
            diagram = self.svc.engine.diagram(queries.get_instance(session, self.id).version)
        form = diagram.form_of(diagram.spec.task_specs[bpmn_id])
        self.svc.engine.complete(task.id, fill(form, **choices), task.role)
        return self

    def data_for(self, bpmn_id: str) -> dict[str, Any]:
        """What the person doing the ready task `bpmn_id` sees of the complaint."""
        with self.svc.store.read() as session:
            task = session.merge(self.ready()[bpmn_id])
            return self.svc.engine.task_data(task.instance, task.id)

    @property
    def status(self) -> str:
        with self.svc.store.read() as session:
            return queries.get_instance(session, self.id).status

    @property
    def record(self) -> ComplaintRecord:
        with self.svc.store.read() as session:
            record = queries.get_instance(session, self.id).record
            assert record is not None
            return record

    def history(self) -> list[dict[str, Any]]:
        with self.svc.store.read() as session:
            return queries.history(session, self.id)

    def path(self) -> list[str]:
        """The elements completed, in order: the path taken through the diagram."""
        done = (
            "task.completed",
            "service.called",
            "timer.fired",
            "gateway.passed",
            "element.completed",
            "end.reached",
            "instance.started",
        )
        return [e["bpmn_id"] for e in self.history() if e["action"] in done]

    def calls(self, operator: str) -> list[dict[str, Any]]:
        return [
            e["data"]["params"]
            for e in self.history()
            if e["action"] == "service.called" and e["data"]["operator"] == operator
        ]

    def escalations(self) -> list[tuple[str, str]]:
        return [
            (e["data"]["role"], e["data"]["timer"])
            for e in self.history()
            if e["action"] == "escalated"
        ]

    def notified_roles(self) -> list[tuple[str, str]]:
        with self.svc.store.read() as session:
            notes = session.query(Notification).filter_by(instance_id=self.id, audience="role")
            return [(n.role or "", n.event) for n in notes.order_by(Notification.id)]

    def tasks(self) -> list[Task]:
        with self.svc.store.read() as session:
            return list(
                session.query(Task).filter_by(instance_id=self.id).order_by(Task.created_at)
            )


def in_order(path: list[str], *expected: str) -> bool:
    """Whether `expected` appear in `path` in this order (other elements may come between)."""
    position = 0
    for element in path:
        if position < len(expected) and element == expected[position]:
            position += 1
    return position == len(expected)
