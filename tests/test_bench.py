"""The benchmark scripts still run against the product as it is (a few instances, both
backends): a README figure that no script can reproduce any more is a defect."""

from __future__ import annotations

import subprocess
import sys

from complaintflow.config import REPO_ROOT


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_engine_benchmark_runs() -> None:
    out = _run("bench/run.py", "--instances", "3")
    for workload in ("standard", "facility", "bar", "hotel"):
        assert any(line.startswith(workload) and line.count("x") >= 2 for line in out.splitlines())


def test_the_search_benchmark_runs() -> None:
    out = _run("bench/search.py", "--complaints", "300", "--repeat", "2")
    assert "ms" in out
