"""Rows of a cache directory read without ever waiting, for an event loop.

An async client's replay first asks the store for what it can answer at once; a worker
thread's round trip costs more than the whole replay (a new thread per call where each
call is its own task, as in most async test suites). A row of the SQLite database is an
answer that needs no waiting while no other connection holds a lock SQLite must wait
for: in its write-ahead-log mode, readers never wait on writers, only on rare moments
(recovery, a connection holding the database exclusively).

Each thread gets its own read-only connection whose busy timeout is zero: where SQLite
would wait, it says so at once, and the read goes to a worker thread, which may wait.
A value kept in a file of its own (large entries) is read there too.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from urllib.parse import quote

import diskcache

from ._base import NOT_IN_MEMORY, NotInMemory

__all__ = ["NoWaitReads"]

_ROW = (
    "SELECT mode, value FROM Cache WHERE key = ? AND raw = 1"
    " AND (expire_time IS NULL OR expire_time > ?)"
)


class NoWaitReads:
    """Reads of rows whose value is in the database itself, answered or refused at once."""

    def __init__(self, database: Path) -> None:
        self._uri = f"file:{quote(str(database.resolve()))}?mode=ro"
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def value(self, name: str) -> bytes | NotInMemory | None:
        """The bytes of row ``name``; None when there is no such row; :data:`NOT_IN_MEMORY`
        when reading it could wait (a lock, a value file) or failed (the worker thread's
        read then reports the failure as every read does)."""
        connection = self._connection()
        if connection is None:
            return NOT_IN_MEMORY
        try:
            # Every row fetched: the statement ends here, holding no snapshot of the log.
            rows = connection.execute(_ROW, (name, time.time())).fetchall()
        except sqlite3.Error:
            return NOT_IN_MEMORY
        if not rows:
            return None
        mode, value = rows[0]
        if mode == diskcache.core.MODE_RAW and isinstance(value, bytes):
            return value
        return NOT_IN_MEMORY

    def close(self) -> None:
        """Close every thread's connection; later reads are left to worker threads."""
        with self._lock:
            self._closed = True
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()

    def _connection(self) -> sqlite3.Connection | None:
        """This thread's connection, opened on first use; None when it cannot be."""
        local = self._local
        pid = os.getpid()
        if getattr(local, "pid", None) == pid:
            connection: sqlite3.Connection | None = local.connection
            return connection
        # First use in this thread, or in a child process: a connection must not cross a
        # fork, so the child opens its own.
        connection = None
        with self._lock:
            if not self._closed:
                try:
                    connection = sqlite3.connect(
                        self._uri,
                        uri=True,
                        timeout=0,
                        isolation_level=None,
                        check_same_thread=False,
                    )
                except sqlite3.Error:
                    connection = None
                else:
                    self._opened.append(connection)
        local.pid, local.connection = pid, connection
        return connection
