"""The scaled mode's scheduler: the one process that finds due work — timers, outbox messages,
deadline warnings — and hands it to the Celery workers (complaintflow.worker).

It keeps no state that matters, and hands out no more than the workers are keeping up with:
when the broker's queue is long it waits, so a backlog does not snowball. A timer or warning is
handed out by id, and not again within the lease (the worker re-checks anyway); outbox messages
are not handed out one by one but as a nudge to deliver what is due, so that a message is leased
when a worker takes it, not while it waits in the queue. If the broker is down, nothing is handed
out and everything is found again later.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import Hashable

from celery import Task
from kombu import Connection

from . import outbox
from .dispatch import batch_size
from .outages import Outage
from .services import Services
from .sla import duration
from .worker import configure, deliver_due, fire_timers, queued, warn

log = logging.getLogger(__name__)

QUEUE_ROOM = 200  # tasks waiting in the broker beyond which nothing more is handed out
NUDGES = 8  # at most this many workers are asked at once to deliver the outbox


class Scheduler:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._broker: Connection | None = None
        self._handed: dict[Hashable, float] = {}
        self._lease = services.settings.lease_seconds  # before handing the same again
        self._lead = duration(services.settings.deadline_warning)
        self._warned_at = 0.0

    def queued(self) -> int:
        """Tasks waiting in the broker for a worker."""
        if self._broker is None:
            # Configured here, not at start: the queue is named after the database, which may
            # not be answering yet (the loop in `run` tries again).
            self._broker = configure(self.services.store).connection_for_write()
        try:
            return queued(self._broker)
        except Exception:
            self._broker.release()
            self._broker = None
            raise

    def _hand(self, task: Task, key: Hashable, *args: object) -> bool:
        now = time.monotonic()
        if key in self._handed and now - self._handed[key] < self._lease:
            return False  # handed recently: still being done
        task.apply_async(args=args)  # raises when the broker is down: found again next round
        self._handed[key] = now
        return True

    def round(self) -> int:
        """Hand out what is due now, as far as there is room; returns how many tasks."""
        room = QUEUE_ROOM - self.queued()
        if room <= 0:
            return 0
        engine, store = self.services.engine, self.services.store
        handed = 0
        for instance_id in engine.due_timers(limit=room):
            handed += self._hand(fire_timers, ("timer", instance_id), instance_id)
        due = outbox.due_count(store)
        for _ in range(min(NUDGES, math.ceil(due / batch_size(store)), room)):
            deliver_due.apply_async()
            handed += 1
        if time.monotonic() - self._warned_at > 5:
            for task_id in engine.tasks_to_warn(self._lead, limit=room):
                handed += self._hand(warn, ("warn", task_id), task_id)
            self._warned_at = time.monotonic()
        self._forget_old()
        return handed

    def _forget_old(self) -> None:
        cutoff = time.monotonic() - self._lease
        self._handed = {k: t for k, t in self._handed.items() if t > cutoff}

    def run(self) -> None:
        """Round after round until SIGTERM or SIGINT (a container stopping, Ctrl-C)."""
        stopping = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
        interval = self.services.settings.timer_poll_seconds
        outage = Outage("scheduling", log)
        while not stopping.is_set():
            try:
                self.round()
            except Exception:  # the database or the broker is away: try again shortly
                outage.failed()
            else:
                outage.succeeded()
            stopping.wait(interval)
