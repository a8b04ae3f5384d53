"""The connection to the database: SQLite (WAL) embedded, PostgreSQL when configured.

`Store.write()` is the one way to change state. On SQLite it takes the write lock when the
transaction starts (BEGIN IMMEDIATE): a deferred transaction that reads and then writes fails
with SQLITE_BUSY instead of waiting when another writer got there first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import CursorResult, Engine, Executable, Row, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from .config import Settings
from .errors import StaleInstance
from .listening import Channel

_SQLITE_BEGIN = "complaintflow_sqlite_begin"
# PostgreSQL's deadlock and serialization failures: the transaction can simply run again.
_TRY_AGAIN = {"40P01", "40001"}
# The PostgreSQL cluster's system identifier and the database's oid: together, this database and
# no other, however its address is spelt (a copy restored elsewhere is another).
_IDENTITY = text(
    "SELECT system_identifier::text || '.' || d.oid::text FROM pg_control_system(), pg_database d"
    " WHERE d.datname = current_database()"
)


def make_engine(settings: Settings) -> Engine:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(settings)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url, pool_size=10, max_overflow=20)
    _ping_when_idle(engine)
    return engine


# A pooled connection given back less than this long ago is taken to be alive, as HikariCP's
# aliveBypassWindowMs does: pinging it would cost a round trip on every request (two on an API
# call), and a server that went away and came back meanwhile is impossible — a PostgreSQL
# restart takes seconds. One that did die in the window fails its statement, as one dying in
# the middle of a transaction does, and the pool then replaces every older connection.
ALIVE_WINDOW = 0.5
_RETURNED_AT = "complaintflow_returned_at"


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pre-ping, except for connections in use a moment ago."""

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(_RETURNED_AT, 0.0) <= ALIVE_WINDOW:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:  # the pool connects anew, up to 3 times
            raise DisconnectionError("the pooled connection is gone") from exc


def _sqlite_engine(settings: Settings) -> Engine:
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        settings.database_url, connect_args={"check_same_thread": False, "timeout": 30}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # Each commit is on disk before it is acknowledged, as PostgreSQL's are: a complaint whose
        # number was given out survives a power cut too. (NORMAL, in WAL mode, survives only the
        # process's crash; FULL costs a WAL fsync per commit, about 0.4 ms of a completion here.)
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Straight to the driver: a statement through SQLAlchemy costs more than SQLite takes.
        mode = conn.get_execution_options().get(_SQLITE_BEGIN, "DEFERRED")
        conn.connection.driver_connection.execute("BEGIN " + mode)

    return engine


_AFTER_COMMIT = "complaintflow_after_commit"


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Call `callback` once the session's transaction has committed; never if it does not."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def _run_after_commit(session: Session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, ()):
        callback()


class _FailedBatch(logging.Filter):
    """psycopg warns when it cannot end a batch because a statement in it failed: that failure
    is raised from the batch and handled (a conflict is refused, and nothing of the batch is
    written), so the warning only says it again, in an operator's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.msg == "error ignored terminating %r: %s"
            and isinstance(record.args, tuple)
            and str(record.args[-1]) == "pipeline aborted"
        )


logging.getLogger("psycopg").addFilter(_FailedBatch())


@contextmanager
def pipelined(session: Session) -> Iterator[None]:
    """Run the block's statements, whose results nothing reads, as one batch: on PostgreSQL
    they are sent together and answered in one round trip (psycopg's pipeline mode) instead of
    one each. A statement whose rows or row count is read must not run in the block."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        yield
        return
    driver, dbapi_error = conn.connection.driver_connection, conn.dialect.loaded_dbapi.Error
    assert driver is not None  # the session's connection, in its transaction
    try:
        with driver.pipeline():
            yield
    except dbapi_error as exc:  # reported when the batch ends, where SQLAlchemy does not see it
        raise DBAPIError.instance(None, None, exc, dbapi_error) from exc


def batch_rowcount(result: CursorResult[Any]) -> int:
    """The row count of a statement run in `pipelined`, read after the block. In a pipeline,
    SQLAlchemy read it (-1) as the statement was queued; the driver's cursor has it once the
    batch was answered."""
    return result.rowcount if result.rowcount >= 0 else int(result.context.cursor.rowcount)


class Store:
    """Owns the engine and hands out sessions: `read()` for queries, `write()` for changes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # One listener for every session: adding one per session costs more than the step's
        # statements do.
        event.listen(self._sessions, "after_commit", _run_after_commit)
        # SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
        # SQLite's busy handler (1, 2, 5, 10... ms) before it looks again: this process's own
        # writers queue here instead, and the next one starts as soon as the last commits.
        self._sqlite_writer = threading.RLock() if settings.is_sqlite else nullcontext()
        self._channels: list[Channel] = []
        self._identity: str | None = None
        # One statement needs no transaction around it: on PostgreSQL, without BEGIN and COMMIT
        # it is one round trip instead of three (SQLite's BEGIN never leaves the process).
        self._single = (
            self.engine
            if settings.is_sqlite
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session
            # Ended by COMMIT, not the ROLLBACK of closing: on a rollback psycopg forgets the
            # statements it prepared on the connection, and PostgreSQL plans them again.
            session.commit()

    def rows(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Row[Any]]:
        """The rows of one read-only Core statement, on a bare connection: a quarter of the cost
        of an ORM session, for what every request reads (who is calling)."""
        with self._single.connect() as conn:
            rows = conn.execute(statement, params).all()
            conn.commit()  # as in read() (on PostgreSQL, autocommitted already: nothing to send)
        return rows

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits when the block ends and rolls back when it raises."""
        try:
            with self._sqlite_writer, self._sessions() as session, session.begin():
                if self.settings.is_sqlite:
                    session.connection(execution_options={_SQLITE_BEGIN: "IMMEDIATE"})
                yield session
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) in _TRY_AGAIN:
                raise StaleInstance("two changes met in the database; try again") from exc
            raise

    def listen(self, name: str) -> Channel | None:
        """What other processes announce on channel `name` (PostgreSQL's NOTIFY), on a
        connection of its own; None on SQLite, which has no such thing."""
        if self.settings.is_sqlite:
            return None
        cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)

        def connect() -> psycopg.Connection[Any]:
            return psycopg.connect(
                *cargs,
                **{"connect_timeout": 5, **cparams},
                application_name=f"complaintflow listening on {name}",  # for pg_stat_activity
                autocommit=True,
            )

        channel = Channel(name, connect)
        self._channels.append(channel)
        return channel

    def identity(self) -> str:
        """What tells this database from every other: for PostgreSQL see `_IDENTITY`; for
        SQLite, its file. Read once: shared Redis keys are named after it."""
        if self._identity is None:
            self._identity = (
                str(Path(self.engine.url.database or "").resolve())
                if self.settings.is_sqlite
                else str(self.rows(_IDENTITY, {})[0][0])
            )
        return self._identity

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            conn.commit()

    def dispose(self) -> None:
        for channel in self._channels:
            channel.stop()
        self.engine.dispose()
