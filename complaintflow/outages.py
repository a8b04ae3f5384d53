"""How a loop that runs every half second reports that its rounds fail: an outage of the
database or the broker reads as a few lines an operator can follow, not a traceback a round that
buries everything else in the log."""

from __future__ import annotations

import logging
import sys
import time

REMIND_EVERY = 60.0  # seconds between the one-line reminders while the same failure goes on


class Outage:
    """Call `failed()` in the handler of a round's failure and `succeeded()` after a round
    that worked. The first failure is logged in full; while rounds keep failing the same way,
    one line every `remind_every` seconds; a different failure in full again; and the end once,
    with how long it lasted."""

    def __init__(self, what: str, log: logging.Logger, remind_every: float = REMIND_EVERY) -> None:
        self._what = what
        self._log = log
        self._remind_every = remind_every
        self._since: float | None = None
        self._reminded = 0.0
        self._kind: type[BaseException] | None = None

    def failed(self) -> None:
        now, kind = time.monotonic(), sys.exc_info()[0]
        if self._since is None:
            self._since = now
        if kind is not self._kind:  # a new outage, or another failure within it: news
            self._kind, self._reminded = kind, now
            self._log.exception("%s failed; trying again shortly", self._what)
        elif now - self._reminded >= self._remind_every:
            self._reminded = now
            self._log.error(
                "%s still failing after %.0f s: %s",
                self._what,
                now - self._since,
                first_line(sys.exc_info()[1]),
            )

    def succeeded(self) -> None:
        if self._since is not None:
            self._log.warning(
                "%s works again after %.0f s", self._what, time.monotonic() - self._since
            )
            self._since = self._kind = None


def first_line(exc: BaseException | None) -> str:
    """An error in one line: its kind and the first line of what it says."""
    text = f"{type(exc).__name__}: {exc}" if exc is not None else "?"
    return text.strip().splitlines()[0]
