"""`signserv migrate`: copy a keystore and its audit chain to another backend, verified.

Copies everything still sealed — no token is needed and no key is opened — from the home's
configured backend to the one another configuration names (SQLite to PostgreSQL, or back). The
source is only read. The copy is then checked: it opens with the master key, holds exactly the
source's records, and its audit chain verifies to the source's head.
"""

from __future__ import annotations

from dataclasses import dataclass

from foundation import write_private_file
from keystore import KeystoreExists, MasterKeyMismatch, crypto, read_master_key, write_master_key
from keystore.errors import AuditError
from keystore.file_audit_chain import verify_records
from keystore.postgres import PostgresAuditChain
from keystore.records import KeystoreSnapshot, VerifiedChain
from signserv.errors import SignservError
from signserv.host.audit_log import AUDIT_MAC_PURPOSE
from signserv.host.config import Settings
from signserv.host.home import (
    audit_chain_location,
    audit_records,
    initialize_home,
    open_audit_chain,
    open_keystore,
    postgres_database,
)


class MigrationFailed(SignservError):
    """The copy could not be made or did not verify; the source is unchanged."""


@dataclass(frozen=True)
class MigrationResult:
    """What was copied, for the CLI to report."""

    keys: int
    audit: VerifiedChain
    target: str


def _audit_mac_key(snapshot: KeystoreSnapshot, master_key: crypto.MasterKey) -> bytes | None:
    """The audit chain's MAC key, opened from the snapshot (never created: the source stays as is)."""
    sealed = snapshot.server_secrets.get(AUDIT_MAC_PURPOSE)
    return (
        None if sealed is None else crypto.open_server_secret(master_key, AUDIT_MAC_PURPOSE, sealed)
    )


def _give_target_the_master_key(
    source: Settings, target: Settings, master_key: crypto.MasterKey, check: bytes
) -> None:
    target_file = target.keystore.master_key_file
    if not target_file.exists():
        target.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_master_key(target_file, master_key)
    elif not crypto.matches_master_key_check(read_master_key(target_file), check):
        raise MasterKeyMismatch(
            f"{target_file} holds another master key than {source.keystore.master_key_file}; the "
            "copy is sealed under the source's, so the target must use the same master key"
        )


def _copy_audit_chain(target: Settings, records: list[bytes], mac_key: bytes) -> VerifiedChain:
    database = postgres_database(target)
    if database is not None:
        PostgresAuditChain(database, mac_key).load(records)
    else:
        try:
            write_private_file(
                target.audit.path, b"".join(record + b"\n" for record in records), replace=False
            )
        except FileExistsError:
            raise MigrationFailed(
                f"{target.audit.path} exists; the target's audit chain must start empty"
            ) from None
    return open_audit_chain(target, mac_key).verify()


def _source_audit_records(source: Settings) -> list[bytes]:
    """The source's audit records; none for a file chain never started (a home that never
    served: the first request creates the log). A log that exists must be readable."""
    if postgres_database(source) is None and not source.audit.path.exists():
        return []
    return list(audit_records(source))


def migrate_keystore(source: Settings, target: Settings) -> MigrationResult:
    """Copy the keystore and audit chain of ``source`` into the empty backend of ``target``."""
    if (source.keystore.url, source.keystore.path) == (target.keystore.url, target.keystore.path):
        raise MigrationFailed("the source and the target are the same keystore")
    store = open_keystore(source)
    try:
        snapshot = store.records.snapshot()
        master_key = read_master_key(source.keystore.master_key_file)
    finally:
        store.close()
    mac_key = _audit_mac_key(snapshot, master_key)
    records = _source_audit_records(source) if mac_key is not None else []
    if mac_key is not None and records:
        try:
            source_chain = verify_records(records, mac_key)
        except AuditError as exc:
            raise MigrationFailed(f"the source's audit chain does not verify: {exc}") from None
    else:
        source_chain = VerifiedChain(records=0, head="")
    _give_target_the_master_key(source, target, master_key, snapshot.master_key_check)
    initialize_home(target)
    copy = open_keystore(target)
    try:
        try:
            copy.records.load_snapshot(snapshot, replace=False)
        except KeystoreExists:
            raise MigrationFailed(
                f"the target keystore {copy.records.location} already holds keys"
            ) from None
        if copy.records.snapshot() != snapshot:
            raise MigrationFailed(f"the copy in {copy.records.location} differs from the source")
        copy.check_ready()
        location = copy.records.location
    finally:
        copy.close()
    if not records or mac_key is None:
        return MigrationResult(len(snapshot.keys), source_chain, location)
    copied_chain = _copy_audit_chain(target, records, mac_key)
    if copied_chain != source_chain:
        raise MigrationFailed(
            f"the audit chain copied to {audit_chain_location(target)} ends at another head"
        )
    return MigrationResult(len(snapshot.keys), copied_chain, location)
