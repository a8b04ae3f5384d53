"""Who is asking, looked up on every API call and page: on PostgreSQL from a copy in memory that
each process drops when the database announces a change (migration 0010's triggers); on SQLite
read every time. Either way a role taken away, a deactivation or a new password counts for the
very next request — in this process at once, in another one a notification later."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import event

from complaintflow.accounts import PEOPLE_CHANNEL, Accounts, Person
from complaintflow.bootstrap import demo_password, initialise
from complaintflow.config import Settings
from complaintflow.listening import Channel
from complaintflow.services import Services

from .conftest import BUNDLED
from .processes import Processes

# Another process hears of a change when PostgreSQL's notification reaches it: milliseconds on
# this machine; a bound a slow CI run stays well inside, and a missing announcement does not.
HEARD_WITHIN = 2.0


class Counted:
    """Services on the database, counting the statements they send."""

    def __init__(self, url: str, home: Path) -> None:
        self.svc = Services.build(
            Settings(home=home, database_url=url, secret_key="test", bpmn_dir=BUNDLED)
        )
        self.statements = 0

        @event.listens_for(self.svc.store.engine, "before_cursor_execute")
        def _count(*_: Any) -> None:
            self.statements += 1

    @property
    def accounts(self) -> Accounts:
        return self.svc.accounts

    def lookup(self, user_id: int) -> tuple[Person | None, int]:
        """The person, and how many statements finding them took."""
        before = self.statements
        return self.accounts.person_by_id(user_id), self.statements - before


@pytest.fixture
def processes(pg_url: str, tmp_path: Path) -> Iterator[Callable[[], Counted]]:
    """Stand-ins for separate processes: each has its own services, pool and listener."""
    made: list[Counted] = []

    def make() -> Counted:
        made.append(Counted(pg_url, tmp_path / f"p{len(made)}"))
        return made[-1]

    yield make
    for each in made:
        each.svc.store.dispose()


def _until(condition: Callable[[], bool], seconds: float = HEARD_WITHIN) -> None:
    """Wait for `condition`; fail the test if it does not hold within `seconds`."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > seconds:
            pytest.fail(f"not within {seconds} s")
        time.sleep(0.005)


def _listening(accounts: Accounts) -> bool:
    channel = accounts.people._channel
    return channel is not None and channel.live


def _staff_id(counted: Counted, username: str = "technician") -> int:
    return counted.accounts.authenticate(username, demo_password(username)).id


def test_postgresql_reads_who_is_asking_once_while_nothing_changes(
    processes: Callable[[], Counted],
) -> None:
    web = processes()
    uid = _staff_id(web)
    _until(lambda: _listening(web.accounts))
    first, read = web.lookup(uid)
    again, read_again = web.lookup(uid)
    assert first is not None and first == again
    assert (read, read_again) == (1, 0)


@pytest.mark.parametrize("change", ["roles", "deactivate", "password", "operator_sql"])
def test_a_change_counts_in_this_process_at_once_and_in_another_when_announced(
    processes: Callable[[], Counted], pg_url: str, change: str
) -> None:
    admin_side, other = processes(), processes()
    uid = _staff_id(other)
    for side in (admin_side, other):
        _until(lambda side=side: _listening(side.accounts))
        before, _ = side.lookup(uid)
        assert before is not None and side.lookup(uid)[1] == 0  # kept
    username, kept_role = before.username, sorted(before.roles)[0]
    expect = _change(change, admin_side.accounts, pg_url, uid, username, kept_role, before)
    if change != "operator_sql":  # the process that made the change knows without a word
        assert expect(admin_side.accounts.person_by_id(uid))
    _until(lambda: expect(other.accounts.person_by_id(uid)))


def _change(
    change: str,
    accounts: Accounts,
    pg_url: str,
    uid: int,
    username: str,
    kept_role: str,
    before: Person,
) -> Callable[[Person | None], bool]:
    """Make the change; what the person looks like once it counts."""
    if change == "roles":
        accounts.change_roles(username, ["auditor"], [], "admin")
        return lambda p: p is not None and "auditor" in p.roles
    if change == "deactivate":
        accounts.set_active(username, False, "admin", "left the company")
        return lambda p: p is None
    if change == "password":
        accounts.set_password(username, "a whole new password", "admin")
        return lambda p: p is not None and p.credentials != before.credentials
    # By hand, past the product: the database's trigger still announces it.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM user_roles WHERE user_id = %s AND role_key = %s", (uid, kept_role)
        )
    return lambda p: p is not None and kept_role not in p.roles


def test_a_lost_listener_means_reading_every_time_until_it_listens_again(
    processes: Callable[[], Counted], pg_url: str
) -> None:
    web = processes()
    uid = _staff_id(web)
    _until(lambda: _listening(web.accounts))
    web.lookup(uid)
    channel = web.accounts.people._channel
    assert channel is not None
    with psycopg.connect(pg_url, autocommit=True) as conn:
        ended = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"complaintflow listening on {PEOPLE_CHANNEL}",),
        ).fetchall()
    assert ended == [(True,)]
    _until(lambda: not channel.live)
    # Notifications may have been missed meanwhile: nothing kept is trusted, each lookup reads.
    assert web.lookup(uid)[1] == 1
    assert web.lookup(uid)[1] == 1
    _until(lambda: channel.live, seconds=channel.RETRY_SECONDS + HEARD_WITHIN)
    assert web.lookup(uid)[1] == 1
    assert web.lookup(uid)[1] == 0


def test_a_connection_that_does_not_hear_announcements_never_goes_live(pg_url: str) -> None:
    # Behind a pooler that hands each statement to another server connection LISTEN is taken
    # and nothing arrives. Here announcements wait in a transaction that never ends: the
    # channel announces on itself first, hears nothing back, and keeps reading.
    channel = Channel(PEOPLE_CHANNEL, lambda: psycopg.connect(pg_url, autocommit=False))
    channel.HEARD_BACK_SECONDS = 0.2
    try:
        assert not channel.live
        time.sleep(1.0)  # several attempts
        assert not channel.live and channel.generation >= 1
    finally:
        channel.stop()
    listening = Channel(PEOPLE_CHANNEL, lambda: psycopg.connect(pg_url, autocommit=True))
    try:
        _until(lambda: listening.live)
    finally:
        listening.stop()


def test_every_gunicorn_process_refuses_someone_deactivated_from_the_command_line(
    pg_url: str, tmp_path: Path
) -> None:
    # As deployed: two web processes that have each kept the technician, and the change made by
    # a third process, the command. No process is told by the others; the database tells all.
    web = Processes(tmp_path / "home", {"COMPLAINTFLOW_DATABASE_URL": pg_url})
    web.spawn(
        "web",
        *("gunicorn", "--config", "python:complaintflow.gunicorn_conf", "--workers", "2"),
        *("--bind", f"127.0.0.1:{web.port}", "complaintflow.wsgi:app"),
    )
    try:
        web.wait_for_web(30)
        answer = httpx.post(
            f"{web.base}/api/v1/auth/token",
            json={"username": "technician", "password": demo_password("technician")},
        )
        # A connection of its own each time: the kernel spreads them over both processes.
        asking = {"Authorization": f"Bearer {answer.json()['token']}", "Connection": "close"}

        def statuses(times: int) -> set[int]:
            return {
                httpx.get(f"{web.base}/api/v1/procedures", headers=asking).status_code
                for _ in range(times)
            }

        def listeners() -> int:
            with psycopg.connect(pg_url) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND application_name = %s",
                    (f"complaintflow listening on {PEOPLE_CHANNEL}",),
                ).fetchone()
            return int(row[0]) if row else 0

        assert statuses(20) == {200}
        _until(lambda: statuses(4) == {200} and listeners() == 2, seconds=10)  # both keep copies
        deactivate = ("users", "deactivate", "technician", "--reason", "left the company")
        done = subprocess.run(
            [sys.executable, "-m", "complaintflow", *deactivate],
            env={**web.env, "COMPLAINTFLOW_HOME": str(tmp_path / "cli")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert statuses(20) == {401}
    finally:
        web.stop()


def test_sqlite_reads_who_is_asking_every_time(tmp_path: Path) -> None:
    # Another process (the CLI beside `complaintflow serve`) may change the file, and SQLite
    # cannot say so: each lookup is a read, which in SQLite stays inside the process.
    url = f"sqlite:///{tmp_path / 'cf.db'}"
    web = Counted(url, tmp_path)
    try:
        for _ in initialise(web.svc, demo_users=True):
            pass
        uid = _staff_id(web)
        assert [web.lookup(uid)[1] for _ in range(3)] == [1, 1, 1]
    finally:
        web.svc.store.dispose()
