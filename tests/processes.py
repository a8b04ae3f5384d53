"""complaintflow's own processes started on this machine as a deployment runs them — `serve`,
gunicorn, Celery workers, the scheduler — on one home and database, each with a log of its own.
Any of them can be killed with SIGKILL (as a power cut would) and started again; all of them are
stopped together. The tests and the HTTP benchmark both start their servers here."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from complaintflow.config import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            if parent == pid:
                found.append(int(entry.name))
    return found


def tree(pid: int) -> list[int]:
    """The process and its descendants (gunicorn's workers, Celery's pool)."""
    return [pid, *(p for child in children(pid) for p in tree(child))]


def _die_with_caller() -> None:
    """In a started process: SIGTERM when its starter dies, even by SIGKILL (PR_SET_PDEATHSIG)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class Processes:
    """The processes of one deployment on this machine, by name; `base` is where its web server
    answers. `die_with_caller` ties them to this process's life, for a benchmark run by hand (not
    for a test whose threads run while it starts processes: the hook runs between fork and exec,
    where a lock another thread held stays held)."""

    def __init__(self, home: Path, env: Mapping[str, str], die_with_caller: bool = False) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.logs = home / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTFLOW_")},
            "COMPLAINTFLOW_HOME": str(home),
            **env,
        }
        self._hook = _die_with_caller if die_with_caller else None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str, *module_and_args: str) -> None:
        """Start `python -m <module_and_args>` under `name`."""
        with open(self.logs / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", *module_and_args],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,  # Ctrl-C reaches the caller, which stops them in order
                preexec_fn=self._hook,
            )

    def wait_for_web(self, seconds: float) -> None:
        until, web = time.monotonic() + seconds, self.processes["web"]
        while time.monotonic() < until:
            if web.poll() is not None:
                raise RuntimeError(f"the web server exited: {self.log_tail('web')}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(
            f"the web server did not answer in {seconds:g} s: {self.log_tail('web')}"
        )

    def kill(self, name: str) -> None:
        """SIGKILL: no clean-up, as when the machine loses power under the process."""
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def log_tail(self, name: str) -> str:
        return self.log(name)[-2000:]

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: {self.log_tail(name)}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
