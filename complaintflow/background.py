"""The background work of the embedded mode: threads in `serve` that fire due timers, warn of
deadlines and deliver the outbox. Each round that found work is followed at once by another, so
a backlog (after downtime) drains without waiting out the interval each time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .dispatch import deliver_due
from .outages import Outage
from .services import Services
from .sla import duration

log = logging.getLogger(__name__)


class Loop(threading.Thread):
    def __init__(self, name: str, work: Callable[[], int], interval: float) -> None:
        super().__init__(name=f"complaintflow-{name}", daemon=True)
        self._work = work
        self._interval = interval
        self._stopping = threading.Event()
        self._outage = Outage(self.name, log)

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self._work() > 0
            except Exception:  # keep going whatever one round met; the next one tries again
                self._outage.failed()
                busy = False
            else:
                self._outage.succeeded()
            if not busy:
                self._stopping.wait(self._interval)

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=15)


def loops(services: Services) -> list[Loop]:
    engine, settings = services.engine, services.settings
    lead = duration(settings.deadline_warning)
    interval = settings.timer_poll_seconds
    return [
        Loop("timers", engine.fire_due_timers, interval),
        Loop("deadline-warnings", lambda: engine.warn_deadlines(lead), interval * 10),
        Loop("outbox", lambda: deliver_due(services.store), interval),
    ]
