"""Where the audit log file ended when last written, kept in the keystore's SQLite file.

The file chain cannot tell from the file alone that it was deleted or cut short before a
restart: a new chain would start at record 1 and verify. So every writer records the last
record it made durable (count, hash and byte offset of its end) in the keystore, one row of
``meta``, only ever moving forward; a writer starting later refuses a log that does not hold
that record where it was (:mod:`keystore.file_audit_chain`).
"""

from __future__ import annotations

import json
from typing import Any

from keystore.errors import KeystoreCorrupt
from keystore.file_audit_chain import LogEnd
from keystore.sqlite.database import SqliteDatabase

_ROW = "audit_log_end"
_SELECT = "SELECT value FROM meta WHERE name = ?"


def _decode(value: Any, location: str) -> LogEnd:
    try:
        fields = json.loads(bytes(value))
        return LogEnd(
            records=int(fields["records"]), head=str(fields["head"]), end=int(fields["end"])
        )
    except (ValueError, KeyError, TypeError):
        raise KeystoreCorrupt(
            f"the keystore {location} holds an unreadable audit log end"
        ) from None


def _encode(end: LogEnd) -> bytes:
    return json.dumps({"records": end.records, "head": end.head, "end": end.end}).encode("ascii")


class SqliteAuditLogEnd:
    """:class:`keystore.file_audit_chain.LogEndRecord` in the keystore's ``meta`` table."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database

    def recorded(self) -> LogEnd | None:
        """The end last recorded; None when none was (a log never written, or forgotten)."""
        rows = self._database.query(_SELECT, (_ROW,))
        return _decode(rows[0][0], self._database.location) if rows else None

    def advance(self, end: LogEnd) -> None:
        """Record ``end`` unless one at least as far on is recorded (workers race to record):
        one conditional upsert, no read first."""
        with self._database.transaction() as connection:
            connection.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value "
                "WHERE json_extract(CAST(meta.value AS TEXT), '$.records') < ?",
                (_ROW, _encode(end), end.records),
            )

    def replace(self, end: LogEnd | None) -> None:
        """Record ``end`` whatever is recorded, or forget the record when ``end`` is None."""
        with self._database.transaction() as connection:
            if end is None:
                connection.execute("DELETE FROM meta WHERE name = ?", (_ROW,))
            else:
                self._write(connection, end)

    @staticmethod
    def _write(connection: Any, end: LogEnd) -> None:
        connection.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (_ROW, _encode(end)),
        )
