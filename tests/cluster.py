"""complaintflow scaled out on this machine, as the compose file runs it: gunicorn with two web
processes, two Celery workers, the scheduler, over one PostgreSQL database and Redis; each part
can be killed with SIGKILL and started again."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import redis

from .processes import Processes, children


class Cluster(Processes):
    def __init__(self, database_url: str, home: Path, broker_db: int, **env: str) -> None:
        self.broker_url = f"redis://127.0.0.1:6379/{broker_db}"
        redis.Redis.from_url(self.broker_url).flushdb()  # nothing left from an earlier run
        super().__init__(
            home,
            {
                "COMPLAINTFLOW_DATABASE_URL": database_url,
                "COMPLAINTFLOW_BROKER_URL": self.broker_url,
                "COMPLAINTFLOW_SECRET_KEY": "cluster-test-secret",
                **env,
            },
        )

    def start(self, name: str) -> None:
        if name == "web":
            self.spawn(
                "web",
                *("gunicorn", "--config", "python:complaintflow.gunicorn_conf"),
                *("--workers", "2", "--bind", f"127.0.0.1:{self.port}"),
                *("--graceful-timeout", "3", "complaintflow.wsgi:app"),
            )
            self.wait_for_web(30)
        elif name.startswith("worker"):
            self.spawn(name, "complaintflow", "worker", "--concurrency", "1")
        else:
            assert name.startswith("scheduler"), name
            self.spawn(name, "complaintflow", "scheduler")

    def wait_for_log(self, name: str, says: str, seconds: float, after: int = 0) -> float:
        """Until the log of `name` holds `says` (past its first `after` characters); how long
        that took."""
        start = time.monotonic()
        while says not in self.log(name)[after:]:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {self.log_tail(name)}")
            if time.monotonic() - start > seconds:
                raise RuntimeError(
                    f"{name} did not say {says!r} in {seconds:g} s: {self.log_tail(name)}"
                )
            time.sleep(0.05)
        return time.monotonic() - start

    def wait_for_worker(self, name: str, seconds: float) -> None:
        """Until Celery says the worker `name` takes tasks (its log's "celery@host ready.")."""
        self.wait_for_log(name, " ready.", seconds)

    def start_all(self) -> None:
        for name in ("web", "worker-1", "worker-2", "scheduler"):
            self.start(name)

    def kill_web_process(self) -> None:
        """SIGKILL one of gunicorn's web processes; its master starts another."""
        os.kill(children(self.processes["web"].pid)[0], signal.SIGKILL)
