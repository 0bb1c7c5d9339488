"""One SQLite file shared by threads and processes: a connection per thread, one transaction per change.

DESIGN §3. WAL mode lets several gunicorn workers read while the CLI writes. SQLite's failures
are translated here into the keystore's errors, so nothing above this package sees ``sqlite3``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from keystore.errors import KeystoreCorrupt, KeystoreError, KeystoreUnavailable, StorageFull


def now_text() -> str:
    """The current UTC time as the keystore stores it (ISO 8601, seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def translate(exc: sqlite3.Error, path: Path) -> KeystoreError:
    """Map SQLite's failure to the condition a caller can act on."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "full" in text:
        return StorageFull(f"the keystore {path} is full (disk or size limit); nothing was changed")
    if isinstance(exc, sqlite3.DatabaseError) and (
        "malformed" in text or "not a database" in text or "no such table" in text
    ):
        return KeystoreCorrupt(f"the keystore {path} is damaged or truncated: {text}")
    return KeystoreUnavailable(f"the keystore {path} cannot be used: {text}")


class SqliteDatabase:
    """The keystore's SQLite file, with one connection per thread (and per process after fork)."""

    # BEGIN IMMEDIATE locks the whole file for writing: rows need no lock of their own.
    shared_row_lock = ""
    exclusive_row_lock = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        self._local = threading.local()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None or getattr(self._local, "pid", None) != os.getpid():
            connection = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            self._local.connection = connection
            self._local.pid = os.getpid()
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it lands, or none of it."""
        connection = self.connection()
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield connection
            connection.execute("COMMIT")
        except BaseException as exc:
            # SQLite has already rolled back after some errors (SQLITE_FULL among them).
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise translate(exc, self.path) from None
            raise

    def query(self, sql: str, parameters: tuple[object, ...] = ()) -> list[Any]:
        """Rows of one read outside a transaction."""
        try:
            return self.connection().execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from None

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def decide_interrupted_commit(path: Path) -> None:
    """Commit one small write to the keystore at ``path`` so that a commit cut short is decided.

    A writer killed after appending its commit to the write-ahead log, but before publishing
    it in the shared WAL index, leaves a transaction that connections still open do not see,
    while a later recovery (the next first connection) would bring it back. The next write
    settles it for good, one way or the other; decisions that depend on which transaction
    won must be taken after it.
    """
    try:
        with closing(
            sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None, timeout=10.0
            )
        ) as connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES ('last_settled_at', ?)",
                (now_text(),),
            )
            connection.execute("COMMIT")
    except sqlite3.Error as exc:
        raise translate(exc, path) from None
