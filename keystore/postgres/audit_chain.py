"""One audit chain for every replica, in PostgreSQL (DESIGN §5).

The records are the file chain's, byte for byte (:func:`keystore.file_audit_chain.chained_record`),
so the MAC, the hash links and :func:`keystore.file_audit_chain.verify_records` are the same.
Appends are serialised in the database by a transaction-scoped advisory lock: each append reads
the last record, chains onto it and commits before the lock is released, so replicas never fork
the chain. A record is committed before its request is answered; one that cannot be raises
:class:`keystore.errors.AuditWriteError`, and the caller fails closed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from keystore.errors import AuditError, AuditWriteError, KeystoreError
from keystore.file_audit_chain import (
    GENESIS,
    chained_record,
    head_of_last_record,
    line_hash,
    refuse_chain_fields,
    verify_records,
)
from keystore.postgres.database import PostgresDatabase
from keystore.postgres.schema import AUDIT_APPEND_LOCK
from keystore.records import ChainHead, VerifiedChain


class PostgresAuditChain:
    """:class:`keystore.records.AuditChainStore` in the ``audit_records`` table."""

    def __init__(self, database: PostgresDatabase, mac_key: bytes) -> None:
        self._database = database
        self._mac_key = mac_key
        self.location = database.location

    def append(self, entry: Mapping[str, object]) -> None:
        refuse_chain_fields(entry)
        try:
            with self._database.transaction() as statements:
                statements.execute("SELECT pg_advisory_xact_lock(?)", (AUDIT_APPEND_LOCK,))
                last = statements.execute(
                    "SELECT seq, record FROM audit_records ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                seq, prev = (int(last[0]), line_hash(bytes(last[1]))) if last else (0, GENESIS)
                statements.execute(
                    "INSERT INTO audit_records (seq, record) VALUES (?, ?)",
                    (seq + 1, chained_record(entry, seq + 1, prev, self._mac_key)),
                )
        except KeystoreError as exc:
            raise AuditWriteError(
                f"cannot write the audit chain in {self.location}: {exc}"
            ) from None

    def check_writable(self) -> None:
        """Raise :class:`AuditWriteError` unless the database takes writes now; writes nothing."""
        try:
            rows = self._database.query(
                "SELECT current_setting('transaction_read_only'), "
                "has_table_privilege('audit_records', 'INSERT')"
            )
        except KeystoreError as exc:
            raise AuditWriteError(
                f"cannot write the audit chain in {self.location}: {exc}"
            ) from None
        read_only, may_insert = rows[0]
        if read_only != "off" or not may_insert:
            raise AuditWriteError(f"the audit chain in {self.location} is read-only")

    def records(self) -> Iterator[bytes]:
        return stored_records(self._database)

    def head(self) -> ChainHead:
        try:
            rows = self._database.query(
                "SELECT record FROM audit_records ORDER BY seq DESC LIMIT 1"
            )
        except KeystoreError as exc:
            raise AuditError(f"cannot read the audit chain in {self.location}: {exc}") from None
        if not rows:
            return ChainHead(records=0, head=GENESIS)
        return head_of_last_record(bytes(rows[0][0]), self._mac_key)

    def verify(self) -> VerifiedChain:
        return verify_records(self.records(), self._mac_key)

    def load(self, records: list[bytes]) -> None:
        """Store ``records`` (a verified chain, oldest first) as the whole chain; refuses when
        the chain is not empty. For `signserv migrate`."""
        with self._database.transaction() as statements:
            statements.execute("SELECT pg_advisory_xact_lock(?)", (AUDIT_APPEND_LOCK,))
            if statements.execute("SELECT 1 FROM audit_records LIMIT 1").fetchone():
                raise AuditWriteError(f"the audit chain in {self.location} is not empty")
            statements.executemany(
                "INSERT INTO audit_records (seq, record) VALUES (?, ?)",
                [(seq, record) for seq, record in enumerate(records, start=1)],
            )


def stored_records(database: PostgresDatabase) -> Iterator[bytes]:
    """The chain's records in ``database``, oldest first (reading needs no MAC key)."""
    rows = database.query("SELECT record FROM audit_records ORDER BY seq")
    return (bytes(row[0]) for row in rows)
