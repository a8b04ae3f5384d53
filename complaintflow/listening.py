"""Changes other processes committed, as PostgreSQL announces them (LISTEN/NOTIFY), so that a
process may keep a copy of rare-changing rows and drop it the moment they change.

A `Channel` counts what it heard: its `generation` moves on with every notification, and also
whenever the listening connection is lost or made again (notifications may have been missed
then). A copy taken under one generation is good while the generation stays the same and the
channel is `live`; while it is not (not yet connected, or reconnecting), there is no copy to
trust and callers read afresh.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg


class Channel:
    # How long the listener waits for a notification before it checks that its connection is
    # still there (a server that vanished without closing it says nothing otherwise).
    PING_SECONDS = 1.0
    RETRY_SECONDS = 1.0
    HEARD_BACK_SECONDS = 5.0

    def __init__(self, name: str, connect: Callable[[], psycopg.Connection[Any]]) -> None:
        self.name = name
        self._connect = connect
        self._generation = 0
        self._live = False
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._started_in: int | None = None  # the process whose thread listens

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def live(self) -> bool:
        """Whether notifications are being heard; starts listening, in this process, on the
        first question (a forked child does not inherit its parent's thread)."""
        if self._started_in != os.getpid():
            self._start()
        return self._live

    def stop(self) -> None:
        """Stop listening; the thread ends within PING_SECONDS, closing its connection."""
        self._stopping.set()
        self._heard(live=False)

    def _start(self) -> None:
        with self._lock:
            if self._started_in == os.getpid() or self._stopping.is_set():
                return
            self._started_in = os.getpid()
            self._live = False
            name = f"listen-{self.name}"
            threading.Thread(target=self._listen, name=name, daemon=True).start()

    def _heard(self, live: bool) -> None:
        with self._lock:
            self._generation += 1
            self._live = live and not self._stopping.is_set()

    def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f'LISTEN "{self.name}"')
                    self._hear_own_word(conn)
                    self._heard(live=True)  # from now on nothing is missed
                    while not self._stopping.is_set():
                        for _ in conn.notifies(timeout=self.PING_SECONDS):
                            self._heard(live=True)
                        conn.execute("SELECT 1")
            except psycopg.Error:
                pass  # the server went away (restarted, or the connection was killed)
            self._heard(live=False)
            self._stopping.wait(self.RETRY_SECONDS)

    def _hear_own_word(self, conn: psycopg.Connection[Any]) -> None:
        """Announce on the channel and wait to hear it back: proof that announcements reach
        this connection (behind a pooler that hands each statement to another server
        connection, such as PgBouncer in transaction mode, they do not: then it never goes
        live, and every lookup reads)."""
        word = uuid.uuid4().hex
        conn.execute("SELECT pg_notify(%s, %s)", (self.name, word))
        for notify in conn.notifies(timeout=self.HEARD_BACK_SECONDS):
            if notify.payload == word:
                return
        raise psycopg.OperationalError(f"LISTEN {self.name} does not hear what is announced")
