"""Each audit chain backend (file, PostgreSQL) detects the same edits, deletions and reorders.

Tampering rewrites the stored records directly, as someone with access to the file or the
database would; the chain's own API is never used to tamper.
"""

from __future__ import annotations

import json

import pytest

from keystore.errors import AuditChainBroken

from .conftest import StoredChain


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
