"""The store's transactions: how they begin and end on each database, which decides how fast
the engine's steps run and whether they wait for one another well."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import bindparam, event, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from complaintflow import db
from complaintflow.config import Settings
from complaintflow.db import Store, after_commit, batch_rowcount, pipelined
from complaintflow.models import Role, User
from complaintflow.services import Services

from .complaints import Complaint
from .conftest import BUNDLED


def test_sqlite_writers_in_one_process_queue_in_the_store_not_in_sqlite(tmp_path: Path) -> None:
    # Without SQLite's busy handler (timeout 0) a writer that met another in SQLite would fail
    # with "database is locked" at once; in the store they wait their turn and both commit.
    url = f"sqlite:///{tmp_path / 'cf.db'}"
    store = Store(Settings(home=tmp_path, database_url=url, secret_key="test"))

    @event.listens_for(store.engine, "connect")
    def _no_busy_wait(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA busy_timeout=0")

    with store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE counter (n INTEGER)")
        conn.exec_driver_sql("INSERT INTO counter VALUES (0)")
    first_in = threading.Event()
    failures: list[BaseException] = []

    def add(hold: float) -> None:
        try:
            with store.write() as session:
                first_in.set()
                session.execute(text("UPDATE counter SET n = n + 1"))
                time.sleep(hold)
        except BaseException as exc:  # the assertion below shows it
            failures.append(exc)

    slow = threading.Thread(target=add, args=(0.3,))
    slow.start()
    first_in.wait(5)
    add(0)
    slow.join()
    with store.read() as session:
        total = session.scalar(text("SELECT n FROM counter"))
    store.dispose()
    assert failures == []
    assert total == 2


def test_sqlite_commits_reach_the_disk_before_they_are_acknowledged(tmp_path: Path) -> None:
    # synchronous=FULL: in WAL mode NORMAL may lose the last commits to a power cut, and with
    # them complaints whose numbers were already given out.
    url = f"sqlite:///{tmp_path / 'cf.db'}"
    store = Store(Settings(home=tmp_path, database_url=url, secret_key="test"))
    with store.read() as session:
        journal = session.scalar(text("PRAGMA journal_mode"))
        synchronous = session.scalar(text("PRAGMA synchronous"))
    store.dispose()
    assert (journal, synchronous) == ("wal", 2)  # 2 is FULL


def test_postgresql_keeps_prepared_statements_across_reads_and_writes(
    pg_url: str, tmp_path: Path
) -> None:
    # psycopg prepares a statement run often on a connection and forgets all of them on a
    # ROLLBACK: the store's transactions must not end so, or every statement is planned again.
    store = Store(Settings(home=tmp_path, database_url=pg_url, secret_key="test"))
    try:
        for _ in range(8):
            with store.read() as session:
                session.scalar(select(Role.key).where(Role.key == bindparam("k")), {"k": "admin"})
            with store.write() as session:
                session.execute(update(Role).where(Role.key == "admin").values(name=Role.name))
            store.rows(select(User.id).where(User.id == bindparam("uid")), {"uid": 1})
        with store.read() as session:
            prepared = session.scalars(text("SELECT statement FROM pg_prepared_statements"))
            kept = " ".join(prepared)
    finally:
        store.dispose()
    assert "FROM roles" in kept
    assert "UPDATE roles" in kept
    assert "FROM users" in kept


def test_a_sqlite_writer_takes_the_write_lock_as_it_begins(tmp_path: Path) -> None:
    # A writer that began DEFERRED and read first could find another process holding the lock
    # when it came to write, and fail there; readers take no lock.
    url = f"sqlite:///{tmp_path / 'cf.db'}"
    store = Store(Settings(home=tmp_path, database_url=url, secret_key="test"))
    sent: list[str] = []

    @event.listens_for(store.engine, "connect")
    def _trace(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_trace_callback(sent.append)  # what reaches SQLite, BEGIN included

    try:
        with store.write() as session:
            session.execute(text("SELECT 1"))
        with store.read() as session:
            session.execute(text("SELECT 2"))
    finally:
        store.dispose()
    assert sent == ["BEGIN IMMEDIATE", "SELECT 1", "COMMIT", "BEGIN DEFERRED", "SELECT 2", "COMMIT"]


def test_postgresql_runs_a_lone_read_as_one_round_trip(pg_url: str, tmp_path: Path) -> None:
    # `rows` (who is calling, on every request) sends its statement alone: no BEGIN before it
    # and no COMMIT after it, two round trips fewer. The server's transaction status after the
    # statement says which: idle when it ran on its own, "in transaction" after a BEGIN.
    store = Store(Settings(home=tmp_path, database_url=pg_url, secret_key="test"))
    seen: list[str] = []

    @event.listens_for(store.engine, "after_cursor_execute")
    def _status(conn: Any, *_: Any) -> None:
        seen.append(conn.connection.driver_connection.info.transaction_status.name)

    try:
        for _ in range(8):
            store.rows(select(User.id).where(User.id == bindparam("uid")), {"uid": 1})
    finally:
        store.dispose()
    assert seen == ["IDLE"] * 8


def test_a_database_is_known_by_what_it_is_not_by_the_address_it_is_reached_at(
    pg_url: str, other_pg_url: str, tmp_path: Path
) -> None:
    # Deployments sharing one Redis keep their work and counts apart by this name.
    def identity(url: str) -> str:
        store = Store(Settings(home=tmp_path, database_url=url, secret_key="test"))
        try:
            return store.identity()
        finally:
            store.dispose()

    address = make_url(pg_url)
    elsewhere = address.set(host="localhost" if address.host != "localhost" else "127.0.0.1")
    first = identity(pg_url)
    assert identity(elsewhere.render_as_string(hide_password=False)) == first
    assert identity(other_pg_url) != first
    assert identity(f"sqlite:///{tmp_path / 'a.db'}") != identity(f"sqlite:///{tmp_path / 'b.db'}")


def _backend_pid(store: Store) -> int:
    rows = store.rows(text("SELECT pg_backend_pid()"), {})
    return int(rows[0][0])


def test_postgresql_pings_only_a_connection_that_sat_idle(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A ping is a round trip: one before every checkout would be one or two more per request.
    # A connection given back a moment ago goes out without one; one idle past the window is
    # pinged first.
    store = Store(Settings(home=tmp_path, database_url=pg_url, secret_key="test"))
    pings: list[Any] = []
    ping = store.engine.dialect.do_ping
    monkeypatch.setattr(store.engine.dialect, "do_ping", lambda conn: pings.append(ping(conn)))
    try:
        pids = {_backend_pid(store) for _ in range(8)}
        assert (pings, len(pids)) == ([], 1)
        monkeypatch.setattr(db, "ALIVE_WINDOW", 0.0)
        assert _backend_pid(store) in pids
        assert len(pings) == 1
    finally:
        store.dispose()


def test_postgresql_replaces_a_pooled_connection_that_died_while_idle(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server ended the connection while it sat in the pool (a restart, an administrator):
    # the ping before it goes out finds that, and the caller gets a new one, not an error.
    store = Store(Settings(home=tmp_path, database_url=pg_url, secret_key="test"))
    try:
        first = _backend_pid(store)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        monkeypatch.setattr(db, "ALIVE_WINDOW", 0.0)
        assert _backend_pid(store) != first
    finally:
        store.dispose()


def test_a_step_on_postgresql_sends_its_instance_history_and_inbox_rows_in_one_batch(
    pg_url: str, tmp_path: Path
) -> None:
    # Nothing reads what a step writes before the commit, and the instance's version check is
    # read off the answer: the UPDATE, events and task rows go in one pipeline, one round trip
    # instead of one each.
    svc = Services.build(
        Settings(home=tmp_path, database_url=pg_url, secret_key="test", bpmn_dir=BUNDLED)
    )
    sent: list[tuple[str, str]] = []

    @event.listens_for(svc.store.engine, "before_cursor_execute")
    def _mode(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        mode = conn.connection.driver_connection.info.pipeline_status.name
        sent.append((" ".join(statement.split()[:3]), mode))

    try:
        Complaint(svc, "facility").do("contact_complainant", assessment="solvable")
    finally:
        svc.store.dispose()
    writes = [s for s in sent if s[0].startswith(("INSERT INTO events", "INSERT INTO tasks"))]
    finished = [s for s in sent if s[0].startswith("UPDATE tasks SET")]
    assert writes and finished
    instance = [s for s in sent if s[0].startswith("UPDATE instances")]
    assert {mode for _, mode in writes + finished + instance} == {"ON"}


def test_a_row_count_reads_the_same_in_a_batch_and_outside_one(pg_url: str, tmp_path: Path) -> None:
    # In a pipeline SQLAlchemy reads -1 as the statement is queued, and outside one psycopg
    # forgets a closed cursor's count: `batch_rowcount` has the real count either way.
    store = Store(Settings(home=tmp_path, database_url=pg_url, secret_key="test"))
    rename = update(Role).where(Role.key == "admin").values(name=Role.name)
    try:
        with store.write() as session:
            alone = session.connection().execute(rename)
            with pipelined(session):
                batched = session.connection().execute(rename)
            counts = (batch_rowcount(alone), batch_rowcount(batched))
    finally:
        store.dispose()
    assert counts == (1, 1)


def test_a_batch_that_the_database_refuses_fails_as_any_statement_would(
    pg_url: str, tmp_path: Path
) -> None:
    # The refusal arrives when the batch ends, past SQLAlchemy: it still surfaces as SQLAlchemy's
    # error, which the engine and the store handle, and nothing of the transaction is kept.
    store = Store(Settings(home=tmp_path, database_url=pg_url, secret_key="test"))
    try:
        with pytest.raises(IntegrityError), store.write() as session, pipelined(session):
            session.execute(update(Role).where(Role.key == "admin").values(name="renamed"))
            session.execute(insert(Role).values(key="admin", name="again"))
        with store.read() as session:
            name = session.scalar(select(Role.name).where(Role.key == "admin"))
    finally:
        store.dispose()
    assert name != "renamed"


def test_what_waits_for_the_commit_runs_after_it_and_never_after_a_rollback(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'cf.db'}"
    store = Store(Settings(home=tmp_path, database_url=url, secret_key="test"))
    ran: list[str] = []
    with store.write() as session:
        after_commit(session, lambda: ran.append("committed"))
        assert ran == []
    with pytest.raises(RuntimeError), store.write() as session:
        after_commit(session, lambda: ran.append("rolled back"))
        raise RuntimeError("the step failed")
    with store.write():
        pass
    store.dispose()
    assert ran == ["committed"]
