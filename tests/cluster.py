"""complaintflow scaled out on this machine, as the compose file runs it: gunicorn with two web
processes, two Celery workers, the scheduler, over one PostgreSQL database and Redis; each part
can be killed with SIGKILL and started again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import redis


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


class Cluster:
    def __init__(self, database_url: str, home: Path, broker_db: int, **env: str) -> None:
        self.broker_url = f"redis://127.0.0.1:6379/{broker_db}"
        redis.Redis.from_url(self.broker_url).flushdb()  # nothing left from an earlier run
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.logs = home / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTFLOW_")},
            "COMPLAINTFLOW_HOME": str(home),
            "COMPLAINTFLOW_DATABASE_URL": database_url,
            "COMPLAINTFLOW_BROKER_URL": self.broker_url,
            "COMPLAINTFLOW_SECRET_KEY": "cluster-test-secret",
            **env,
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115  (kept by the process)
        self.processes[name] = subprocess.Popen(args, env=self.env, stdout=log, stderr=log)

    def start(self, name: str) -> None:
        if name == "web":
            self._spawn(
                "web",
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--workers",
                    "2",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--graceful-timeout",
                    "3",
                    "complaintflow.app:create_app()",
                ],
            )
            self._wait_for_web()
        elif name.startswith("worker"):
            self._spawn(
                name, [sys.executable, "-m", "complaintflow", "worker", "--concurrency", "1"]
            )
        else:
            self._spawn(name, [sys.executable, "-m", "complaintflow", name])

    def start_all(self) -> None:
        for name in ("web", "worker-1", "worker-2", "scheduler"):
            self.start(name)

    def _wait_for_web(self) -> None:
        for _ in range(300):
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("gunicorn did not answer within 30 s")

    def kill(self, name: str) -> None:
        """SIGKILL: no clean-up, as when the machine loses power under the process."""
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def kill_web_process(self) -> None:
        """SIGKILL one of gunicorn's web processes; its master starts another."""
        os.kill(children_of(self.processes["web"].pid)[0], signal.SIGKILL)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
