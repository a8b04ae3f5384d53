"""The web processes, once loaded, leave what they loaded out of the garbage collector's full
collections (complaintflow/heap.py): each such collection then walks the objects made since,
not the ~245,000 of the app, which took ~100 ms with every request in the process waiting."""

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


def test_a_gunicorn_process_sets_the_app_aside_once_it_is_loaded(env: dict[str, str]) -> None:
    frozen, left = collector_after(f"import complaintflow.wsgi; {_REPORT}", env)
    assert frozen > 100_000, "the app's objects are still walked by every full collection"
    assert left < 1_000


def test_serve_sets_the_app_aside_before_it_serves(env: dict[str, str]) -> None:
    # waitress answers at once instead of serving: what matters is the heap as serving begins.
    frozen, left = collector_after(
        "import waitress\n"
        f"waitress.serve = lambda app, **options: exec({_REPORT!r})\n"
        "from complaintflow.cli import main\n"
        "main(['serve', '--port', '0'])",
        env,
    )
    assert frozen > 100_000, "the app's objects are still walked by every full collection"
    assert left < 1_000
