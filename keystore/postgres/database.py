"""One PostgreSQL database shared by replicas: a connection pool per process, one transaction per change.

DESIGN §3. psycopg 3 and psycopg-pool. Each process (each gunicorn worker) opens its own pool on
first use, so a pool is never shared across ``fork``. A pooled connection is checked before it
is handed out, so a database that restarted costs the requests in flight, not the next ones.
PostgreSQL's failures are translated here into the keystore's errors, so nothing above this
package sees ``psycopg``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from keystore.errors import InvalidDatabaseUrl, KeystoreError, KeystoreUnavailable, StorageFull

# How long a request waits for a pooled connection (or a new one) before it answers 503.
POOL_WAIT_SECONDS = 5.0
_CONNECT_TIMEOUT_SECONDS = 5
# Connections per pool and process: a gunicorn worker runs 16 request threads
# (signserv.server.gunicorn_runner.WORKER_THREADS), and a thread holds at most one connection of
# a pool at a time, so 16 never makes a warm request queue for a connection. Pools start with one
# connection and grow only while threads wait; PostgreSQL's max_connections must allow the
# product (README, "Several replicas").
DEFAULT_POOL_SIZE = 16


def _dialect(sql: str) -> str:
    """``sql`` written with ``?`` placeholders, as psycopg takes it (``%s``, a literal ``%%``)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresStatements:
    """A connection inside a transaction, taking the ``?`` placeholders the shared SQL uses."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection

    def execute(self, sql: str, parameters: Sequence[object] = (), /) -> psycopg.Cursor[Any]:
        return self.connection.execute(_dialect(sql), parameters)

    def executemany(self, sql: str, rows: Sequence[Sequence[object]], /) -> None:
        if rows:
            self.connection.cursor().executemany(_dialect(sql), rows)


class PostgresDatabase:
    """The database at ``url``; the password comes from ``password`` or libpq (never the URL).

    ``location`` names it for messages: host, port and database, never a credential.
    """

    shared_row_lock = " FOR SHARE"
    exclusive_row_lock = " FOR UPDATE"

    def __init__(
        self, url: str, password: str | None = None, pool_size: int = DEFAULT_POOL_SIZE
    ) -> None:
        try:
            parts = conninfo_to_dict(url)
        except psycopg.Error:
            raise InvalidDatabaseUrl("the database URL cannot be parsed") from None
        if "password" in parts:
            raise InvalidDatabaseUrl(
                "the database URL holds a password; give it in a password file, PGPASSWORD or "
                "libpq's .pgpass instead"
            )
        self._url = url
        self._password = password
        self._pool_size = pool_size
        self.location = "postgresql://{}:{}/{}".format(
            parts.get("host", "localhost"), parts.get("port", 5432), parts.get("dbname", "")
        )
        self._lock = threading.Lock()
        self._pool: ConnectionPool | None = None
        self._pool_pid = -1

    def _connection_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "connect_timeout": _CONNECT_TIMEOUT_SECONDS,
            "application_name": "signserv",
        }
        if self._password is not None:
            options["password"] = self._password
        return options

    def _current_pool(self) -> ConnectionPool:
        """This process's pool, opened on first use (and again after a fork or :meth:`close`)."""
        with self._lock:
            if self._pool is None or self._pool_pid != os.getpid():
                # A pool inherited across fork belongs to the parent: leave it alone, open our own.
                pool = ConnectionPool(
                    self._url,
                    kwargs=self._connection_options(),
                    min_size=1,
                    max_size=self._pool_size,
                    open=False,
                    check=ConnectionPool.check_connection,
                    timeout=POOL_WAIT_SECONDS,
                    reconnect_timeout=0,  # keep trying for as long as the database is away
                    name="signserv",
                )
                pool.open(wait=False)
                self._pool, self._pool_pid = pool, os.getpid()
            return self._pool

    @contextmanager
    def transaction(self) -> Iterator[PostgresStatements]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        try:
            with self._current_pool().connection() as connection:
                yield PostgresStatements(connection)
        except PoolTimeout:
            # Before psycopg.Error, of which it is a subclass: no connection came in time.
            raise KeystoreUnavailable(
                f"the keystore database {self.location} cannot be reached (no connection within "
                f"{POOL_WAIT_SECONDS:g} s)"
            ) from None
        except psycopg.Error as exc:
            raise self.translate(exc) from None

    def query(self, sql: str, parameters: tuple[object, ...] = ()) -> list[Any]:
        """Rows of one read."""
        with self.transaction() as connection:
            return connection.execute(sql, parameters).fetchall()

    def translate(self, exc: psycopg.Error) -> KeystoreError:
        """Map PostgreSQL's failure to the condition a caller can act on; never quotes values."""
        if isinstance(exc, (pg_errors.DiskFull, pg_errors.OutOfMemory)):
            return StorageFull(
                f"the keystore database {self.location} is full; nothing was changed"
            )
        if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
            return KeystoreUnavailable(f"the keystore database {self.location} is read-only")
        # The class and SQLSTATE say what went wrong; the message may quote a row's values.
        state = exc.sqlstate or "no SQLSTATE"
        return KeystoreUnavailable(
            f"the keystore database {self.location} cannot be used: {type(exc).__name__} ({state})"
        )

    def close(self) -> None:
        """Close this process's pool; the next use opens a new one."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pool_pid == os.getpid():
            pool.close()
