"""The scaled mode's scheduler: the one process that finds due work — timers, outbox messages,
deadline warnings — and hands it to the Celery workers (complaintflow.worker).

It keeps no state that matters, and hands out no more than the workers are keeping up with:
when the broker's queue is long it waits, so a backlog does not snowball. A timer or warning is
handed out by id, and not again within the lease (the worker re-checks anyway); outbox messages
are not handed out one by one but as a nudge to deliver what is due, so that a message is leased
when a worker takes it, not while it waits in the queue. If the broker is down, nothing is handed
out and everything is found again later.

Run one; a second one started beside it (a rolling deploy, a standby on another host) waits
while the first renews its lead in the database every round, and takes over once that lapses.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Hashable

from celery import Task
from kombu import Connection
from sqlalchemy import text

from . import outbox
from .dispatch import batch_size
from .errors import SchemaMismatch
from .migrations import require_current
from .models import SCHEDULER_JOB
from .outages import Outage
from .services import Services
from .sla import duration
from .worker import configure, deliver_due, fire_timers, queued, warn

log = logging.getLogger(__name__)

QUEUE_ROOM = 200  # tasks waiting in the broker beyond which nothing more is handed out
NUDGES = 8  # at most this many workers are asked at once to deliver the outbox
LEAD_ROUNDS = 10  # a lead not renewed for this many rounds has lapsed

# On the database's clock, which every host shares. Two schedulers leading for a moment (one
# paused past its lead) would do no harm: workers re-check in the database what they are handed.
_LEAD = text(
    "INSERT INTO leaders AS l (job, holder, until)"
    " VALUES (:job, :me, timezone('UTC', now()) + make_interval(secs => :seconds))"
    " ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, until = excluded.until"
    " WHERE l.holder = excluded.holder OR l.until < timezone('UTC', now())"
    " RETURNING l.holder"
)
_LEADER = text("SELECT holder FROM leaders WHERE job = :job")
_STEP_DOWN = text("DELETE FROM leaders WHERE job = :job AND holder = :me")


class Scheduler:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._broker: Connection | None = None
        self._handed: dict[Hashable, float] = {}
        self._lease = services.settings.lease_seconds  # before handing the same again
        self._warn_ahead = duration(services.settings.deadline_warning)
        self._warned_at = 0.0
        # Mostly the same after a restart in place (a container keeps its host name, and its
        # processes start in the same order): then it takes its own lead back at once.
        self.me = f"{socket.gethostname()} pid {os.getpid()}"

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

    def lead(self) -> str | None:
        """Take or renew the lead; None when this scheduler has it, else who has."""
        seconds = LEAD_ROUNDS * self.services.settings.timer_poll_seconds
        with self.services.store.write() as session:
            lead = {"job": SCHEDULER_JOB, "me": self.me, "seconds": seconds}
            if session.execute(_LEAD, lead).first():
                return None
            return str(session.scalar(_LEADER, {"job": SCHEDULER_JOB}))

    def step_down(self) -> None:
        """Give the lead up, so that a scheduler standing by takes over at once."""
        with self.services.store.write() as session:
            session.execute(_STEP_DOWN, {"job": SCHEDULER_JOB, "me": self.me})

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
            for task_id in engine.tasks_to_warn(self._warn_ahead, limit=room):
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
        leader: str | None = ""  # who leads, as last seen ("": not yet known)
        checked = False  # whether the database's schema is this code's
        while not stopping.is_set():
            try:
                if not checked:  # once it answers: a schema of another version is no outage
                    require_current(self.services.store)
                    checked = True
                now_leads = self.lead()
                if now_leads != leader:
                    if now_leads is None:
                        log.info("%s leads: handing out due work", self.me)
                    else:
                        log.info("%s stands by (%s leads)", self.me, now_leads)
                    leader = now_leads
                if now_leads is None:
                    self.round()
            except SchemaMismatch:
                raise  # no round can work with it: refused in one line, as `serve` does
            except Exception:  # the database or the broker is away: try again shortly
                outage.failed()
            else:
                outage.succeeded()
            stopping.wait(interval)
        try:
            self.step_down()
        except Exception:  # the database is away: the lead lapses by itself
            log.warning("could not give up the lead; it lapses in %s s", LEAD_ROUNDS * interval)
