"""The scaled mode's scheduler: the one process that finds due work — timers, outbox messages,
deadline warnings — and hands each item to the Celery workers (complaintflow.worker).

It keeps no state that matters: outbox messages are leased in the database when handed over, and
a timer or warning handed over is not handed over again within the lease (the worker re-checks
anyway). If the broker is down, nothing is handed over and everything is found again later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable

from celery import Task

from . import outbox
from .dispatch import batch_size
from .services import Services
from .sla import duration
from .worker import configure, deliver, fire_timers, warn

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, services: Services) -> None:
        self.services = services
        configure(services.settings)
        self._handed: dict[Hashable, float] = {}
        self._lease = services.settings.lease_seconds  # before handing the same again
        self._lead = duration(services.settings.deadline_warning)
        self._warned_at = 0.0

    def _hand(self, task: Task, key: Hashable, *args: object) -> bool:
        now = time.monotonic()
        if key in self._handed and now - self._handed[key] < self._lease:
            return False  # handed recently: still being done
        task.apply_async(args=args)  # raises when the broker is down: found again next round
        self._handed[key] = now
        return True

    def round(self) -> int:
        """Hand over what is due now; returns how many items."""
        engine, store = self.services.engine, self.services.store
        handed = 0
        for instance_id in engine.due_timers():
            handed += self._hand(fire_timers, ("timer", instance_id), instance_id)
        for message in outbox.claim(store, batch_size(store) * 10):
            deliver.apply_async(args=(message.id, message.leased_until.isoformat()))
            handed += 1
        if time.monotonic() - self._warned_at > 5:
            for task_id in engine.tasks_to_warn(self._lead):
                handed += self._hand(warn, ("warn", task_id), task_id)
            self._warned_at = time.monotonic()
        self._forget_old()
        return handed

    def _forget_old(self) -> None:
        cutoff = time.monotonic() - self._lease
        self._handed = {k: t for k, t in self._handed.items() if t > cutoff}

    def run(self, stopping: Callable[[], bool] = lambda: False) -> None:
        interval = self.services.settings.timer_poll_seconds
        while not stopping():
            try:
                busy = self.round() > 0
            except Exception:  # the database or the broker is away: try again shortly
                log.exception("scheduling failed; trying again shortly")
                busy = False
            if not busy:
                time.sleep(interval)
