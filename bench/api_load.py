"""Benchmark: task completions over HTTP, through the server a deployment runs, in one run.

For each backend it starts the real server as separate processes on a fresh database:

- sqlite: the embedded mode, `complaintflow serve` (waitress; background work in its threads);
- postgresql: the scaled mode, gunicorn `complaintflow.wsgi:app` with the image's settings
  (`complaintflow/gunicorn_conf.py`) + one `complaintflow worker` + `complaintflow scheduler`,
  with Redis as the broker (a database number of its own, flushed).

Instances of the standard workload (start → task → task → gateway → task → end) are started
in-process beforehand (not timed); clients then complete their tasks with
`POST /api/v1/tasks/{id}/complete`, following `next_tasks` to the instance's next task:

- latency: one client, keep-alive, nothing else running; median and p99 after a warm-up;
- closed loop: N client processes, each sending its next completion as soon as the last answered,
  for S seconds: completions per second, latency median and p99;
- open loop: the same processes sending on a fixed schedule (the target rate spread over them),
  latency measured from the moment each request was due, so that a server falling behind shows;
- timer lateness (postgresql): during the open loop, facility complaints started through the
  API with a 2 s contact deadline; afterwards, from their histories, `timer.fired` − `due_at`.

The clients run on the same cores as the servers: their CPU is part of what is measured.

    .venv/bin/python bench/api_load.py --backends sqlite,postgresql --clients 4 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import multiprocessing
import os
import shlex
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import redis
from sqlalchemy import select

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.run import (  # noqa: E402
    WORKLOADS,
    _form_data,
    _forms,
    _ms,
    bare,
    postgres_services,
    sqlite_services,
)
from complaintflow import gunicorn_conf  # noqa: E402
from complaintflow.bootstrap import demo_password, initialise  # noqa: E402
from complaintflow.engine import queries  # noqa: E402
from complaintflow.models import Task  # noqa: E402
from complaintflow.services import Services  # noqa: E402
from tests.processes import Processes, tree  # noqa: E402

STANDARD = next(w for w in WORKLOADS if w.name == "standard")
FACILITY = next(w for w in WORKLOADS if w.name == "facility")

STEPS = 3  # user tasks per standard instance: first, second, then left or right
SLA = {"facility": {"technician_contact": "PT2S"}}
LATENCY_SAMPLES, LATENCY_WARMUP, CLIENT_WARMUP = 300, 60, 10


@dataclass
class Job:
    """The ready task of an instance, and the form data of each of the instance's user tasks."""

    task_id: str
    bpmn_id: str
    data: dict[str, dict[str, Any]]


def prestart(svc: Services, count: int, numbering: Iterator[int]) -> list[Job]:
    """Start `count` standard instances in-process; their first ready tasks, with form data."""
    forms = _forms(STANDARD.path)
    with svc.store.read() as session:
        version = svc.engine.current_version(session, STANDARD.key)
        specs = [s for s in svc.engine.diagram(version).spec.task_specs.values() if s.manual]
    ids = [svc.engine.start(STANDARD.key, STANDARD.intake, "bench") for _ in range(count)]
    first: dict[int, Task] = {}
    with svc.store.read() as session:
        for at in range(0, len(ids), 500):
            query = select(Task).where(
                Task.instance_id.in_(ids[at : at + 500]), Task.state == "ready"
            )
            first.update((t.instance_id, t) for t in session.scalars(query))
    jobs = []
    for instance_id in ids:
        n, task = next(numbering), first[instance_id]
        data = {s.bpmn_id: _form_data(s, forms, n, STANDARD) for s in specs}  # `branch` alternates
        jobs.append(Job(task.id, task.bpmn_id, data))
    return jobs


def _client(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _request(job: Job) -> tuple[str, dict[str, Any]]:
    return f"/api/v1/tasks/{job.task_id}/complete", {"data": job.data[job.bpmn_id]}


def _following(job: Job, answer: dict[str, Any]) -> Job | None:
    """The instance's next task, from a completion's answer."""
    following = answer["next_tasks"]
    return Job(following[0]["id"], following[0]["bpmn_id"], job.data) if following else None


def complete(http: httpx.Client, job: Job) -> tuple[int, Job | None]:
    """One completion: the status (0 for no answer) and the instance's next task, if any."""
    url, body = _request(job)
    try:
        answer = http.post(url, json=body)
    except httpx.TransportError:
        return 0, None
    if answer.status_code != 200:
        return answer.status_code, None
    return 200, _following(job, answer.json())


async def complete_async(http: aiohttp.ClientSession, job: Job) -> tuple[int, Job | None]:
    """`complete`, for the open loop's event loop."""
    url, body = _request(job)
    try:
        async with http.post(url, json=body) as answer:
            if answer.status != 200:
                return answer.status, None
            return 200, _following(job, await answer.json())
    except (aiohttp.ClientError, TimeoutError):  # no answer, as httpx's TransportError
        return 0, None


class Driver:
    """Completes the tasks of its instances one after another, each instance to its end."""

    def __init__(self, jobs: list[Job]) -> None:
        self.fresh, self.current = deque(jobs), None

    def has_work(self) -> bool:
        return self.current is not None or bool(self.fresh)

    def step(self, http: httpx.Client) -> int:
        status, self.current = complete(http, self.current or self.fresh.popleft())
        return status


def _sleep_until(moment: float) -> None:
    if (delay := moment - time.monotonic()) > 0:
        time.sleep(delay)


# A sample: (when it was due or sent, when it was answered, HTTP status); time.monotonic() is
# one clock for every process on Linux, so the parent can put the clients' samples together.
Sample = tuple[float, float, int]


def latency(base: str, token: str, jobs: list[Job]) -> list[Sample]:
    warmup = min(LATENCY_WARMUP, len(jobs) * STEPS // 5)
    driver, samples = Driver(jobs), []
    with _client(base, token) as http:
        while driver.has_work():
            began = time.monotonic()
            status = driver.step(http)
            samples.append((began, time.monotonic(), status))
    return samples[warmup:]


def closed_client(base: str, token: str, jobs: list[Job], t0: float, seconds: float) -> Any:
    """Completion after completion, from t0 for `seconds`; when it runs out of instances too."""
    driver, samples, dry = Driver(jobs), [], None
    with _client(base, token) as http:
        for _ in range(CLIENT_WARMUP):  # each connection warms the server process it landed on
            if driver.has_work():
                driver.step(http)
        _sleep_until(t0)
        while (began := time.monotonic()) < t0 + seconds:
            if not driver.has_work():
                dry = began
                break
            status = driver.step(http)
            samples.append((began, time.monotonic(), status))
    return samples, dry


def open_client(
    base: str, token: str, jobs: list[Job], t0: float, seconds: float, rate: float, senders: int
) -> list[Sample]:
    """Send a completion every 1/rate s from t0, whether earlier ones were answered or not (up
    to `senders` at once); each sample counts from when its request was due. Status -1: no
    instance had a ready task left to send. The senders are coroutines on one event loop, not
    threads: threads contending for the GIL cost the client a millisecond or more of CPU per
    completion, taken from the cores the servers share."""
    return asyncio.run(_open_loop(base, token, jobs, t0, seconds, rate, senders))


async def _open_loop(
    base: str, token: str, jobs: list[Job], t0: float, seconds: float, rate: float, senders: int
) -> list[Sample]:
    ready, slots, samples = deque(jobs), itertools.count(), []
    connector = aiohttp.TCPConnector(limit=senders)
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        base, headers=headers, timeout=timeout, connector=connector
    ) as http:

        async def sender() -> None:
            while (due := t0 + next(slots) / rate) < t0 + seconds:
                if (delay := due - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
                try:
                    job = ready.pop()  # the next task of an instance under way, if there is one
                except IndexError:
                    samples.append((due, due, -1))
                    continue
                status, following = await complete_async(http, job)
                samples.append((due, time.monotonic(), status))
                if following:
                    ready.append(following)

        await asyncio.gather(*(sender() for _ in range(senders)))
    return samples


def _in_child(queue: Any, work: Callable[..., Any], args: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops its children itself
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    result = work(*args)
    queue.put((result, time.process_time()))  # and the CPU the client used, all threads


def in_processes(work: Callable[..., Any], args: list[tuple[Any, ...]]) -> list[Any]:
    """`work(*a)` for each a, each in a client process of its own: each one's result with the
    CPU seconds it used."""
    context = multiprocessing.get_context("fork")  # the jobs go to the children without pickling
    queue = context.Queue()
    children = [context.Process(target=_in_child, args=(queue, work, a)) for a in args]
    try:
        for child in children:
            child.start()
        return [queue.get(timeout=600) for _ in children]
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
            child.join()


def _split(jobs: list[Job], parts: int) -> list[list[Job]]:
    return [jobs[i::parts] for i in range(parts)]


@dataclass
class Row:
    backend: str
    run: str
    completions: int
    rate: float | None
    latencies: list[float]
    errors: int
    note: str = ""
    cpu: str = ""  # where the CPU went during the run
    completing: bool = True  # the latencies are task completions' (not timers')


def _cpu_note(used: dict[str, float], completions: int, seconds: float) -> str:
    """CPU ms per completion of each part, and how busy the machine was."""
    machine = used.pop("machine")
    parts = {**used, "rest of the machine": machine - sum(used.values())}
    each = ", ".join(
        f"{name} {cpu / max(1, completions) * 1000:.1f}" for name, cpu in parts.items()
    )
    cores = os.cpu_count() or 1
    return f"CPU ms per completion: {each}; {machine / seconds:.2f} of {cores} cores busy"


def _proc_seconds(path: str, first: int, last: int) -> float:
    """CPU seconds from a /proc file's fields [first, last] (clock ticks)."""
    try:
        fields = Path(path).read_text().split("\n")[0].rsplit(")", 1)[-1].split()
    except OSError:
        return 0.0  # the process is gone
    return sum(int(f) for f in fields[first : last + 1]) / os.sysconf("SC_CLK_TCK")


class CpuMeter(threading.Thread):
    """CPU seconds each part of the system used between t0 and t1: the servers' processes,
    PostgreSQL's backends for this database, and the machine as a whole (/proc/stat), whose
    remainder is other people's work on it."""

    def __init__(self, parts: Callable[[], dict[str, list[int]]], t0: float, t1: float) -> None:
        super().__init__(daemon=True)
        self.parts, self.t0, self.t1 = parts, t0, t1
        self.used: dict[str, float] = {}

    def snapshot(self) -> dict[str, dict[int, float]]:
        taken = {
            name: {pid: _proc_seconds(f"/proc/{pid}/stat", 11, 12) for pid in pids}
            for name, pids in self.parts().items()
        }
        # cpu user nice system idle iowait irq softirq steal: all but idle and iowait.
        busy = _proc_seconds("/proc/stat", 1, 8) - _proc_seconds("/proc/stat", 4, 5)
        return {**taken, "machine": {0: busy}}

    def run(self) -> None:
        _sleep_until(self.t0)
        before = self.snapshot()
        _sleep_until(self.t1)
        after = self.snapshot()
        self.used = {
            name: sum(v - before.get(name, {}).get(pid, 0.0) for pid, v in pids.items())
            for name, pids in after.items()
        }


def _ok(samples: list[Sample], until: float) -> list[Sample]:
    return [s for s in samples if s[2] == 200 and s[1] <= until]


def start_facility(
    base: str, token: str, rate: float, t0: float, seconds: float
) -> tuple[list[int], int]:
    """Facility complaints through the API at `rate`/s from t0: their ids, and failures."""
    started, failed = [], 0
    with _client(base, token) as http:
        for k in itertools.count():
            if (due := t0 + k / rate) >= t0 + seconds:
                break
            _sleep_until(due)
            answer = http.post(
                "/api/v1/procedures/facility/instances", json={"data": FACILITY.intake}
            )
            if answer.status_code == 201:
                started.append(answer.json()["id"])
            else:
                failed += 1
    return started, failed


def lateness(svc: Services, ids: list[int], wait: float) -> tuple[list[float], int]:
    """Seconds from each contact deadline to its `timer.fired` event, read from the histories
    once every timer fired (or `wait` s passed); and how many had not fired by then."""
    until = time.monotonic() + wait
    while True:
        with svc.store.read() as session:
            histories = queries.events_of(session, ids)
        late, missing = [], 0
        for events in histories.values():
            due = next(
                (e["data"].get("due_at") for e in events if e["action"] == "task.ready"), None
            )
            fired = next((e["at"] for e in events if e["action"] == "timer.fired"), None)
            if due is None or fired is None:
                missing += 1
            else:
                late.append((fired - datetime.fromisoformat(due)).total_seconds())
        if not missing or time.monotonic() > until:
            return late, missing
        time.sleep(0.5)


@contextmanager
def servers(
    backend: str, svc: Services, args: argparse.Namespace
) -> Iterator[tuple[Processes, str]]:
    env = {
        "COMPLAINTFLOW_DATABASE_URL": svc.settings.database_url,
        "COMPLAINTFLOW_BPMN_DIR": str(REPO / "bpmn"),
        "COMPLAINTFLOW_SECRET_KEY": "bench-http",
    }
    if backend == "sqlite":
        running = Processes(svc.settings.home, env, die_with_caller=True)
        threads = str(args.serve_threads)
        what = f"complaintflow serve (waitress, {threads} threads, background threads), SQLite WAL"
        running.spawn(
            "web", "complaintflow", "serve", "--port", str(running.port), "--threads", threads
        )
    else:
        broker = f"redis://127.0.0.1:6379/{args.redis_db}"
        redis.Redis.from_url(broker).flushdb()
        env |= {"COMPLAINTFLOW_BROKER_URL": broker, "COMPLAINTFLOW_SLA_OVERRIDES": json.dumps(SLA)}
        running = Processes(svc.settings.home, env, die_with_caller=True)
        threads = args.web_threads or gunicorn_conf.threads
        what = (
            f"gunicorn {args.web_workers} workers x {threads} threads + complaintflow"
            f" worker (1 process) + scheduler, PostgreSQL, Redis db {args.redis_db}"
        )
        running.spawn(
            "web",
            *("gunicorn", "--config", "python:complaintflow.gunicorn_conf"),
            *("--workers", str(args.web_workers), "--threads", str(threads)),
            *("--bind", f"127.0.0.1:{running.port}", "--graceful-timeout", "3"),
            "complaintflow.wsgi:app",
        )
        # One process does the timers, warnings and outbox of this load (a few per second):
        # the cores are left to the web processes and PostgreSQL.
        running.spawn("worker", "complaintflow", "worker", "--concurrency", "1")
        running.spawn("scheduler", "complaintflow", "scheduler")
    try:
        running.wait_for_web(90)
        yield running, what
    finally:
        running.stop()
        if backend == "postgresql":
            redis.Redis.from_url(env["COMPLAINTFLOW_BROKER_URL"]).flushdb()


def _say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


@dataclass
class Run:
    """One backend's servers under measurement, and what the runs share."""

    backend: str
    svc: Services
    servers: Processes
    token: str
    args: argparse.Namespace
    numbering: Iterator[int]

    @property
    def base(self) -> str:
        return self.servers.base

    def parts(self) -> dict[str, list[int]]:
        processes = self.servers.processes
        with self.svc.store.engine.connect() as conn:
            backends = (
                []
                if self.svc.settings.is_sqlite
                else list(
                    conn.exec_driver_sql(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    ).scalars()
                )
            )
        return {
            "web": tree(processes["web"].pid),
            "PostgreSQL": backends,
            "background": [
                p for n in ("worker", "scheduler") if n in processes for p in tree(processes[n].pid)
            ],
            "benchmark": [os.getpid()],
        }

    def meter(self, t0: float) -> CpuMeter:
        meter = CpuMeter(self.parts, t0, t0 + self.args.seconds)
        meter.start()
        return meter

    def jobs(self, default: int) -> list[Job]:
        wanted = self.args.instances or default
        _say(f"{self.backend}: starting {wanted} instances in-process")
        return prestart(self.svc, wanted, self.numbering)

    def latency(self) -> Row:
        jobs = self.jobs(math.ceil((LATENCY_SAMPLES + LATENCY_WARMUP) / STEPS))
        _say(f"{self.backend}: latency")
        samples = latency(self.base, self.token, jobs)
        took = [done - began for began, done, status in samples if status == 200]
        errors = sum(status != 200 for *_, status in samples)
        return Row(self.backend, "latency, 1 client, nothing else", len(took), None, took, errors)

    def closed(self, lone: float) -> Row:
        args = self.args
        # Enough that no client runs out, even were each as fast as the lone client was.
        per_client = math.ceil((args.seconds / lone + CLIENT_WARMUP) / STEPS) + 2
        jobs = self.jobs(args.clients * per_client)
        _say(f"{self.backend}: closed loop")
        t0 = time.monotonic() + 1.5  # after the clients' warm-up
        work = [(self.base, self.token, j, t0, args.seconds) for j in _split(jobs, args.clients)]
        meter = self.meter(t0)
        results = in_processes(closed_client, work)
        meter.join()
        dry = [d for (_, d), _ in results if d is not None]
        end = min([t0 + args.seconds, *dry])
        every = [s for (samples, _), _ in results for s in samples]
        ok = _ok(every, end)
        return Row(
            self.backend,
            f"closed loop, {args.clients} clients, {args.seconds:g} s",
            len(ok),
            len(ok) / (end - t0),
            [done - began for began, done, _ in ok],
            sum(s[2] != 200 for s in every),
            f"instances ran out after {end - t0:.1f} s: raise --instances" if dry else "",
            _cpu_note(
                {**meter.used, "clients": sum(cpu for _, cpu in results)},
                len(_ok(every, t0 + args.seconds)),
                args.seconds,
            ),
        )

    def open(self) -> list[Row]:
        """The open loop; on PostgreSQL with facility complaints started alongside, whose
        timers' lateness is the second row."""
        args = self.args
        jobs = self.jobs(math.ceil(args.rate * args.seconds * 1.2 / STEPS) + 8)
        _say(f"{self.backend}: open loop")
        t0, timers = time.monotonic() + 1, self.backend == "postgresql"
        with ThreadPoolExecutor(1) as starter:
            if timers:
                starting = starter.submit(
                    start_facility, self.base, self.token, args.timer_rate, t0, args.seconds
                )
            rate, senders = args.rate / args.clients, args.senders  # each client's share
            work = [
                (self.base, self.token, j, t0 + i / args.rate, args.seconds, rate, senders)
                for i, j in enumerate(_split(jobs, args.clients))
            ]
            meter = self.meter(t0)
            results = in_processes(open_client, work)
            meter.join()
        every = [s for samples, _ in results for s in samples]
        answered = [s for s in every if s[2] == 200]
        starved = sum(s[2] == -1 for s in every)
        rows = [
            Row(
                self.backend,
                f"open loop, target {args.rate:g}/s, {args.seconds:g} s",
                len(answered),
                len(_ok(every, t0 + args.seconds)) / args.seconds,
                [done - due for due, done, _ in answered],
                sum(s[2] not in (200, -1) for s in every),
                f"{starved} sends found no ready task: raise --instances" if starved else "",
                _cpu_note(
                    {**meter.used, "clients": sum(cpu for _, cpu in results)},
                    len(_ok(every, t0 + args.seconds)),
                    args.seconds,
                ),
            )
        ]
        if timers:
            started, failed = starting.result()
            _say(f"{self.backend}: waiting for the timers of {len(started)} complaints")
            late, missing = lateness(self.svc, started, wait=60)
            rows.append(
                Row(
                    self.backend,
                    f"timer lateness, {args.timer_rate:g} facility/s, PT2S",
                    len(late),
                    None,
                    late,
                    failed,
                    f"{missing} of {len(started)} had not fired after 60 s" if missing else "",
                    completing=False,
                )
            )
        return rows


def measure(backend: str, svc: Services, args: argparse.Namespace) -> tuple[str, list[Row]]:
    for _ in initialise(svc, demo_users=True):  # the demo users; the rest is there already
        pass
    _say(f"{backend}: database ready, starting the servers")
    with servers(backend, svc, args) as (running, what):
        _say(f"{backend}: servers answer")
        answer = httpx.post(
            running.base + "/api/v1/auth/token",
            json={"username": "admin", "password": demo_password("admin")},
            timeout=30,
        )
        answer.raise_for_status()
        run = Run(backend, svc, running, answer.json()["token"], args, itertools.count())
        rows = [run.latency()]
        rows.append(run.closed(statistics.median(rows[0].latencies)))
        rows += run.open()
        running.check_alive()
    _say(f"{backend}: servers stopped")
    return what, rows


def _table(rows: list[Row], floor: float) -> None:
    print(
        f"{'backend':<11} {'run':<38} {'done':>6} {'per s':>7} {'median':>8} {'p99':>8}"
        f" {'max':>8} {'floor x':>8} {'errors':>6}"
    )
    for row in rows:
        rate = f"{row.rate:7.1f}" if row.rate is not None else f"{'':7}"
        times = (
            f"{statistics.median(row.latencies) * 1000:8.1f} {_ms(row.latencies, 0.99):8.1f}"
            f" {max(row.latencies) * 1000:8.1f}"
            if row.latencies
            else f"{'-':>8} {'-':>8} {'-':>8}"
        )
        # The floor is a task completion's, not a timer's: no ratio for timer lateness.
        ratio = (
            f"{statistics.median(row.latencies) / floor:8.0f}"
            if row.latencies and row.completing
            else f"{'-':>8}"
        )
        print(
            f"{row.backend:<11} {row.run:<38} {row.completions:>6} {rate} {times}"
            f" {ratio} {row.errors:>6}"
        )
        for line in (row.note, row.cpu):
            if line:
                print(f"{'':<11}   ({line})")


def _interrupted(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM: leave through the same clean-up as Ctrl-C


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--clients", type=int, default=4, help="client processes (b)")
    parser.add_argument("--seconds", type=float, default=15, help="length of each loop run")
    parser.add_argument("--rate", type=float, default=300, help="open-loop target, per second")
    parser.add_argument(
        "--instances", type=int, default=0, help="instances pre-started per run (0: enough)"
    )
    parser.add_argument(
        "--senders", type=int, default=16, help="requests in flight per open-loop client, at most"
    )
    parser.add_argument("--timer-rate", type=float, default=5, help="facility complaints per s")
    parser.add_argument("--serve-threads", type=int, default=8, help="waitress threads")
    # Two gunicorn processes, one per core: Python runs a completion (SpiffWorkflow, SQLAlchemy)
    # under its GIL, so a third process would only queue for the same two cores, which
    # PostgreSQL and the clients need too. The rest of gunicorn's settings are the image's.
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn processes")
    parser.add_argument(
        "--web-threads", type=int, help="threads per gunicorn process (default: the image's)"
    )
    parser.add_argument("--redis-db", type=int, default=14, help="the broker's Redis database")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    makers = {"sqlite": sqlite_services, "postgresql": postgres_services}
    if unknown := set(backends) - set(makers):
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    signal.signal(signal.SIGTERM, _interrupted)
    bare(STANDARD, 20)  # warm up
    floor = statistics.median(bare(STANDARD, 200))
    loads = [" ".join(f"{x:.2f}" for x in os.getloadavg())]
    described, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            _say(f"{backend}: creating the database")
            with makers[backend](Path(tmp) / backend) as svc:
                what, measured = measure(backend, svc, args)
            described.append(f"{backend}: {what}")
            rows += measured
            loads.append(" ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"\ntask completions over HTTP: {shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])}")
    print("standard workload (start → task → task → gateway → task → end), one POST per task")
    print(
        f"the clients run on the same {os.cpu_count()} cores as the servers: their CPU counts too"
    )
    print(f"load average (1, 5, 15 min) before and after each backend: {' | '.join(loads)}")
    print("\n".join(described))
    print(
        f"floor: bare SpiffWorkflow's in-memory step on the same workload, measured now:"
        f" median {floor * 1000:.3f} ms; floor x = median / floor"
    )
    print("ms; open loop from when each request was due; timer lateness = timer.fired - due_at\n")
    _table(rows, floor)


if __name__ == "__main__":
    main()
