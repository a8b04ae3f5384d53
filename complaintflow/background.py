"""The background worker of the embedded mode: a thread in `serve` that fires due timers."""

from __future__ import annotations

import logging
import threading

from .engine import Engine

log = logging.getLogger(__name__)


class TimerLoop(threading.Thread):
    def __init__(self, engine: Engine, interval: float) -> None:
        super().__init__(name="complaintflow-timers", daemon=True)
        self._engine = engine
        self._interval = interval
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._engine.fire_due_timers()
            except Exception:  # keep firing later timers whatever one instance did
                log.exception("firing due timers failed; trying again shortly")
            self._stopping.wait(self._interval)

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=5)
