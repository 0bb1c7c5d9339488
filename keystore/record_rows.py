"""Rows of the ``keys`` table as every SQL backend lays them out, turned into records.

The column lists and their readers are shared so that SQLite and PostgreSQL cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from keystore import crypto
from keystore.records import KeyInfo, KeyStatus, MasterSeals, SealedRecord, StoredKey

SEALED_COLUMNS = "record_id, kdf, token_salt, token_share, master_share, private_key, policy"
_SEALED_COLUMN_COUNT = len(SEALED_COLUMNS.split(","))
INFO_COLUMNS = "name, public_point, enabled, created_at, last_used_at, generation, kind"
INFO_COLUMN_COUNT = len(INFO_COLUMNS.split(","))
SERVER_SECRET_PREFIX = "server_secret:"  # noqa: S105 (a row name, the value is sealed)


def info_from_row(row: Any) -> KeyInfo:
    """A :class:`KeyInfo` from the ``INFO_COLUMNS`` of one row."""
    name, point, enabled, created_at, last_used_at, generation, kind = row
    return KeyInfo(
        name=str(name),
        public_point=bytes(point),
        enabled=bool(enabled),
        created_at=str(created_at),
        last_used_at=None if last_used_at is None else str(last_used_at),
        generation=int(generation),
        kind=str(kind),
    )


def sealed_key_from_row(row: Any) -> crypto.SealedKey:
    """A :class:`crypto.SealedKey` from the ``SEALED_COLUMNS`` of one row."""
    record_id, kdf, salt, token_share, master_share, private_key, policy = row
    return crypto.SealedKey(
        record_id=bytes(record_id),
        kdf=crypto.parse_kdf_record(str(kdf)),
        token_salt=bytes(salt),
        token_share=bytes(token_share),
        master_share=bytes(master_share),
        private_key=bytes(private_key),
        policy=None if policy is None else bytes(policy),
    )


def sealed_record_from_row(row: Any) -> SealedRecord:
    """A :class:`SealedRecord` from ``SEALED_COLUMNS, enabled, generation, public_point, kind``."""
    sealed = sealed_key_from_row(row[:_SEALED_COLUMN_COUNT])
    enabled, generation, point, kind = row[_SEALED_COLUMN_COUNT:]
    status = KeyStatus(
        enabled=bool(enabled),
        generation=int(generation),
        record_id=sealed.record_id,
        token_salt=sealed.token_salt,
    )
    return SealedRecord(sealed=sealed, status=status, public_point=bytes(point), kind=str(kind))


STATUS_COLUMNS = (
    "enabled, generation, record_id, token_salt, "
    "(SELECT value FROM meta WHERE name = 'master_key_check')"
)


def status_from_row(row: Any) -> KeyStatus:
    """A :class:`KeyStatus` from ``STATUS_COLUMNS``."""
    enabled, generation, record_id, token_salt, master_key_check = row
    return KeyStatus(
        enabled=bool(enabled),
        generation=int(generation),
        record_id=bytes(record_id),
        token_salt=bytes(token_salt),
        master_key_check=bytes(master_key_check or b""),
    )


def master_seals_from_rows(check: bytes, keys: list[Any], secrets: list[Any]) -> MasterSeals:
    """:class:`MasterSeals` from the check, ``name, SEALED_COLUMNS`` rows and meta secret rows."""
    return MasterSeals(
        master_key_check=bytes(check),
        keys={str(name): sealed_key_from_row(columns) for name, *columns in keys},
        server_secrets={
            str(name).removeprefix(SERVER_SECRET_PREFIX): bytes(value) for name, value in secrets
        },
    )


def same_records(first: MasterSeals, second: MasterSeals) -> bool:
    """Same check, same keys (same record ids and policies) and same server secrets.

    A policy set since ``first`` was read re-sealed that master share under another binding:
    writing a re-seal of the old one would break the record.
    """
    return (
        first.master_key_check == second.master_key_check
        and {name: (sealed.record_id, sealed.policy) for name, sealed in first.keys.items()}
        == {name: (sealed.record_id, sealed.policy) for name, sealed in second.keys.items()}
        and first.server_secrets.keys() == second.server_secrets.keys()
    )


def key_row(stored: StoredKey) -> tuple[object, ...]:
    """The values of ``INFO_COLUMNS, SEALED_COLUMNS`` for ``stored``, in that order."""
    info, sealed = stored.info, stored.sealed
    return (
        info.name,
        info.public_point,
        info.enabled,
        info.created_at,
        info.last_used_at,
        info.generation,
        info.kind,
        sealed.record_id,
        sealed.kdf.as_record(),
        sealed.token_salt,
        sealed.token_share,
        sealed.master_share,
        sealed.private_key,
        sealed.policy,
    )
