"""The SQLite record store's compare-and-write guards: a concurrent change is never overwritten."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from keystore import KeyStore, MasterKey, RecordsChanged, crypto
from keystore.records import SOFTWARE_KIND, NewKeyRecord

from .conftest import OTHER_TOKEN, TOKEN


def test_insert_refuses_a_record_sealed_before_a_rotation(store: KeyStore, argon2) -> None:
    stale_check = store.records.master_key_check()
    store.reseal_master_shares(MasterKey.generate())
    record = NewKeyRecord(
        name="late",
        public_point=b"\x04" + bytes(132),
        created_at="2024-01-01T00:00:00+00:00",
        sealed=crypto.seal_private_key(
            "late",
            ec.generate_private_key(ec.SECP521R1()),
            TOKEN,
            MasterKey.generate(),
            argon2,
        ),
        kind=SOFTWARE_KIND,
    )
    with pytest.raises(RecordsChanged):
        store.records.insert_key(record, expected_master_key_check=stale_check)
    assert store.records.info("late") is None


def test_master_reseal_refuses_when_a_key_appeared_since_the_read(
    store: KeyStore, master_key: MasterKey
) -> None:
    store.create_key("first", TOKEN)
    read = store.records.master_seals()
    store.create_key("second", OTHER_TOKEN)
    new_master = MasterKey.generate()
    resealed = dataclasses.replace(read, master_key_check=crypto.master_key_check(new_master))
    with pytest.raises(RecordsChanged):
        store.records.replace_master_seals(read, resealed)
    assert crypto.matches_master_key_check(master_key, store.records.master_key_check())


def test_master_reseal_refuses_when_a_name_was_re_created(store: KeyStore) -> None:
    store.create_key("k", TOKEN)
    read = store.records.master_seals()
    store.delete_key("k")
    store.create_key("k", TOKEN)
    with pytest.raises(RecordsChanged):
        store.records.replace_master_seals(read, read)
