"""Each audit chain backend (file, PostgreSQL) detects the same edits, deletions and reorders.

Tampering rewrites the stored records directly, as someone with access to the file or the
database would; the chain's own API is never used to tamper.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from keystore.errors import AuditChainBroken
from keystore.file_audit_chain import FileAuditChain
from keystore.postgres import PostgresAuditChain, PostgresDatabase, PostgresKeyRecords
from keystore.records import AuditChainStore

MAC_KEY = b"m" * 32


@dataclass
class StoredChain:
    """A chain and a way to overwrite its stored records behind its back."""

    chain: AuditChainStore
    overwrite: Callable[[list[bytes]], None]


def _file_chain(tmp_path: Path) -> StoredChain:
    path = tmp_path / "audit.log"
    return StoredChain(
        FileAuditChain(path, MAC_KEY, fsync=False),
        lambda records: path.write_bytes(b"".join(record + b"\n" for record in records)),
    )


def _postgres_chain(request: pytest.FixtureRequest) -> StoredChain:
    url = request.getfixturevalue("postgres_database")
    database = PostgresDatabase(url.url, url.password_file.read_text().strip())
    request.addfinalizer(database.close)
    PostgresKeyRecords.create(database, b"check")

    def overwrite(records: list[bytes]) -> None:
        with database.transaction() as statements:
            statements.execute("DELETE FROM audit_records")
            statements.executemany(
                "INSERT INTO audit_records (seq, record) VALUES (?, ?)",
                [(position, record) for position, record in enumerate(records, start=1)],
            )

    return StoredChain(PostgresAuditChain(database, MAC_KEY), overwrite)


@pytest.fixture(params=["file", "postgres"])
def stored(request: pytest.FixtureRequest, tmp_path: Path) -> StoredChain:
    """Five records in each chain backend in turn."""
    chain = _file_chain(tmp_path) if request.param == "file" else _postgres_chain(request)
    for number in range(5):
        chain.chain.append({"what": f"event {number}"})
    return chain


def test_appended_records_chain_and_verify(stored: StoredChain) -> None:
    records = [json.loads(record) for record in stored.chain.records()]
    assert [record["seq"] for record in records] == [1, 2, 3, 4, 5]
    assert stored.chain.verify().records == 5


def test_a_deleted_record_is_named(stored: StoredChain) -> None:
    records = list(stored.chain.records())
    stored.overwrite(records[:2] + records[3:])
    with pytest.raises(AuditChainBroken, match="line 3: holds record 4 where record 3 belongs"):
        stored.chain.verify()


def test_reordered_records_are_named(stored: StoredChain) -> None:
    records = list(stored.chain.records())
    stored.overwrite([records[0], records[2], records[1], *records[3:]])
    with pytest.raises(AuditChainBroken, match="line 2"):
        stored.chain.verify()


def test_an_edited_record_is_named(stored: StoredChain) -> None:
    records = list(stored.chain.records())
    records[3] = records[3].replace(b"event 3", b"event X")
    stored.overwrite(records)
    with pytest.raises(AuditChainBroken, match="line 4: record 4 was altered or forged"):
        stored.chain.verify()


def test_an_entry_that_sets_a_chain_field_is_refused(stored: StoredChain) -> None:
    with pytest.raises(ValueError, match="seq"):
        stored.chain.append({"seq": 99})
    assert stored.chain.verify().records == 5
