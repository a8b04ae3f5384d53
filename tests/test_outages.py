"""A background loop whose rounds fail (the database away, a bug met every round) says so in a
few lines: the failure in full once, another kind of failure in full again, a reminder now and
then while it lasts, and its end — not a traceback every half second."""

from __future__ import annotations

import logging
import time

import pytest

from complaintflow.background import Loop
from complaintflow.outages import Outage


def test_a_failing_loop_logs_each_kind_of_failure_once_and_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = [ConnectionError("the database is away")] * 30 + [KeyError("a bug")] * 5
    done = []

    def work() -> int:
        if failures:
            raise failures.pop(0)
        done.append(1)
        return 0

    loop = Loop("timers", work, 0.001)
    with caplog.at_level(logging.INFO, logger="complaintflow.background"):
        loop.start()
        until = time.monotonic() + 10
        while len(done) < 3 and time.monotonic() < until:
            time.sleep(0.01)
        loop.stop()
    assert len(done) >= 3
    records = [r for r in caplog.records if r.name == "complaintflow.background"]
    assert [(r.levelname, r.exc_info[0] if r.exc_info else None) for r in records] == [
        ("ERROR", ConnectionError),
        ("ERROR", KeyError),
        ("WARNING", None),
    ]
    assert records[0].getMessage() == "complaintflow-timers failed; trying again shortly"
    assert records[2].getMessage().startswith("complaintflow-timers works again after ")


def test_while_a_failure_goes_on_it_is_recalled_in_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage("scheduling", logging.getLogger("test.outage"), remind_every=0.05)
    with caplog.at_level(logging.INFO, logger="test.outage"):
        for _ in range(3):
            try:
                raise ConnectionRefusedError("connection refused\nis the server running?")
            except ConnectionRefusedError:
                outage.failed()
            time.sleep(0.06)
        outage.succeeded()
        outage.succeeded()  # nothing more to say
    lines = [(r.levelname, bool(r.exc_info), r.getMessage()) for r in caplog.records]
    assert lines[0] == ("ERROR", True, "scheduling failed; trying again shortly")
    assert [line[:2] for line in lines[1:3]] == [("ERROR", False)] * 2
    assert lines[1][2].startswith("scheduling still failing after 0 s: ConnectionRefusedError")
    assert lines[1][2].endswith("connection refused")  # one line: the first of the message
    assert lines[3][:2] == ("WARNING", False) and len(lines) == 4
