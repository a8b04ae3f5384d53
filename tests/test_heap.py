"""The long-running processes, once loaded, leave what they loaded out of the garbage collector's
full collections (complaintflow/heap.py): each such collection then walks the objects made
since, not the ~245,000 of the app, which took ~100 ms with every request (or timer) in the
process waiting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# What the process's collector has set aside, and what a full collection would still walk.
_REPORT = "import gc; print(gc.get_freeze_count(), len(gc.get_objects()))"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    env = {
        **os.environ,
        "COMPLAINTFLOW_HOME": str(home),
        "COMPLAINTFLOW_DATABASE_URL": f"sqlite:///{home / 'complaintflow.db'}",
    }
    subprocess.run(
        [sys.executable, "-m", "complaintflow", "init"], env=env, check=True, capture_output=True
    )
    return env


def collector_after(code: str, env: dict[str, str]) -> tuple[int, int]:
    """(objects set aside, objects left) as `code` ends, run in a process of its own."""
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    frozen, left = result.stdout.splitlines()[-1].split()
    return int(frozen), int(left)


def collector_as_it_begins(command: list[str], patch: str, env: dict[str, str]) -> tuple[int, int]:
    """`collector_after` for `complaintflow command`, where `patch` makes what would serve or
    go round report instead: what matters is the heap as that begins."""
    return collector_after(f"{patch}\nfrom complaintflow.cli import main\nmain({command!r})", env)


def test_a_gunicorn_process_sets_the_app_aside_once_it_is_loaded(env: dict[str, str]) -> None:
    frozen, left = collector_after(f"import complaintflow.wsgi; {_REPORT}", env)
    assert frozen > 100_000, "the app's objects are still walked by every full collection"
    assert left < 1_000


def test_serve_sets_the_app_aside_before_it_serves(env: dict[str, str]) -> None:
    frozen, left = collector_as_it_begins(
        ["serve", "--port", "0"],
        f"import waitress; waitress.serve = lambda app, **options: exec({_REPORT!r})",
        env,
    )
    assert frozen > 100_000, "the app's objects are still walked by every full collection"
    assert left < 1_000


def test_a_worker_sets_what_it_loaded_aside_before_its_pool_forks(
    scaled_env: dict[str, str],
) -> None:
    # Reported once the worker is ready, its pool's processes forked (they inherit what was set
    # aside, and share its pages instead of each copying those a collection would touch).
    frozen, left = collector_after(
        "import os\n"
        "from celery.signals import worker_ready\n"
        "def report(**_):\n"
        "    import gc\n"
        "    os.write(1, f'{gc.get_freeze_count()} {len(gc.get_objects())}\\n'.encode())\n"
        "    from billiard.process import active_children\n"
        "    for child in active_children():  # they hold stdout open: the test reads to its end\n"
        "        os.kill(child.pid, 9)\n"
        "    os._exit(0)\n"
        "worker_ready.connect(report)\n"
        "from complaintflow.cli import main\n"
        "main(['worker', '--concurrency', '2'])",
        scaled_env,
    )
    assert frozen > 100_000, "the worker's objects are still walked by every full collection"
    assert left < 10_000  # the pool and the consumer, made after the signal


def test_the_scheduler_sets_what_it_loaded_aside_before_its_rounds(
    scaled_env: dict[str, str],
) -> None:
    frozen, left = collector_as_it_begins(
        ["scheduler"],
        "from complaintflow.scheduler import Scheduler\n"
        f"Scheduler.run = lambda self: exec({_REPORT!r})",
        scaled_env,
    )
    assert frozen > 100_000, "the scheduler's objects are still walked by every full collection"
    assert left < 1_000
