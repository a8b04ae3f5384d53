"""The benchmark scripts still run against the product as it is (a few instances, both
backends): a README figure that no script can reproduce any more is a defect."""

from __future__ import annotations

import gc
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.run import WORKLOADS, Collections, another_process, layered, sqlite_services
from complaintflow.config import REPO_ROOT
from complaintflow.engine.runtime import StateCodec

STANDARD = next(w for w in WORKLOADS if w.name == "standard")


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_engine_benchmark_runs() -> None:
    out = _run("bench/run.py", "--instances", "3")
    # the database floor's rows (the replay itself checks it left the database the run left)
    floor_table = out.partition("the database floor:")[2].splitlines()
    restored_table = out.partition("another process")[2].partition("the database floor:")[0]
    # full collections, longest pause, per completion: for each of the four passes
    collections = out.partition("garbage collection in those passes")[2].partition("bytes")[0]
    for workload in ("standard", "facility", "bar", "hotel"):
        assert any(line.startswith(workload) and line.count("x") >= 2 for line in out.splitlines())
        assert any(
            line.startswith(workload) and line.count("x") == 2
            for line in restored_table.splitlines()
        )
        assert any(line.startswith(workload) and line.count("x") == 4 for line in floor_table)
        assert any(
            line.startswith(workload) and len(line.split()) == 1 + 4 * 3
            for line in collections.splitlines()
        )


def test_the_benchmark_counts_the_collections_in_a_pass_and_none_after() -> None:
    counted = Collections()
    with counted.counting():
        gc.collect()
    gc.collect()
    assert [generation for generation, _ in counted.pauses] == [2]
    assert counted.cell(completions=1).split()[0] == "1"


def test_the_search_benchmark_runs() -> None:
    out = _run("bench/search.py", "--complaints", "300", "--repeat", "2")
    assert "ms" in out


def test_the_http_benchmark_runs() -> None:
    """Both servers as a deployment runs them, a few seconds of each kind of run: every
    completion answered 200, and the timers of the scaled run fired."""
    out = _run(
        "bench/api_load.py",
        *("--seconds", "2", "--rate", "20", "--instances", "30", "--clients", "2"),
    )
    rows = [
        # backend, run, done, [per s], median, p99, max, floor x, errors
        re.split(r"\s{2,}", line.strip())
        for line in out.splitlines()
        if line.startswith(("sqlite ", "postgresql "))
    ]
    runs = {(row[0], row[1].split(",")[0]) for row in rows}
    for backend in ("sqlite", "postgresql"):
        assert {(backend, "latency"), (backend, "closed loop"), (backend, "open loop")} <= runs
    assert ("postgresql", "timer lateness") in runs, out
    assert "floor: bare SpiffWorkflow" in out
    assert all(int(row[2]) > 0 and row[-1] == "0" for row in rows), out


def test_the_benchmarks_other_process_restores_every_completion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The restored table measures what it says: no completion there finds its workflow kept."""
    restored = []
    loads = StateCodec.loads

    def counted(codec: StateCodec, *args: Any) -> Any:
        restored.append(args)
        return loads(codec, *args)

    monkeypatch.setattr(StateCodec, "loads", counted)
    with sqlite_services(tmp_path) as svc:
        assert len(layered(svc, STANDARD, 2)) == 6 and not restored  # kept, as the other tables
        with another_process(svc) as other:
            assert len(layered(svc, STANDARD, 2, elsewhere=other)) == len(restored) == 6
