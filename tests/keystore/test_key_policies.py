"""A key's policy is bound into its master-share seal: set with the master key, altered without it
detected (edited, added, removed, swapped between keys), carried by master-key rotation."""

from __future__ import annotations

import pytest

from keystore import KeyStore, MasterKey, MasterShareMismatch, RecordsChanged, TokenRejected
from keystore.crypto import reseal_for_new_master_key

from .conftest import OTHER_TOKEN, TOKEN, Backend, CountingArgon2

QUERIES_ONLY = b'{"allow":["queries"],"version":1}'
ANYTHING = b'{"allow":["opaque","queries","zeroize"],"version":1}'


def _write_raw(store: KeyStore, sql: str, parameters: tuple[object, ...]) -> None:
    """Change the database behind the keystore's back, as someone with write access could."""
    with store.records._database.transaction() as connection:  # type: ignore[attr-defined]
        connection.execute(sql, parameters)


def test_a_policy_set_with_the_master_key_comes_back_with_the_unlocked_key(
    any_store: KeyStore,
) -> None:
    any_store.create_key("admin", TOKEN)
    before = any_store.unlock("admin", TOKEN)
    assert before.policy is None

    any_store.set_policy("admin", QUERIES_ONLY)

    after = any_store.unlock("admin", TOKEN)
    assert after.policy == QUERIES_ONLY
    assert any_store.policy("admin") == QUERIES_ONLY
    assert after.generation == before.generation + 1  # every worker's cached unlock drops
    assert after.version != before.version
    assert after.signing_key.public_point == before.signing_key.public_point


def test_clearing_a_policy_with_the_master_key_leaves_a_working_key_without_one(
    any_store: KeyStore,
) -> None:
    any_store.create_key("admin", TOKEN)
    any_store.set_policy("admin", QUERIES_ONLY)
    any_store.set_policy("admin", None)
    assert any_store.unlock("admin", TOKEN).policy is None
    assert any_store.policy("admin") is None


@pytest.mark.parametrize(
    ("sql", "parameters"),
    [
        pytest.param("UPDATE keys SET policy = ? WHERE name = 'admin'", (ANYTHING,), id="edited"),
        pytest.param("UPDATE keys SET policy = NULL WHERE name = 'admin'", (), id="removed"),
    ],
)
def test_a_policy_altered_in_the_database_is_refused_as_a_damaged_record(
    any_store: KeyStore, sql: str, parameters: tuple[object, ...]
) -> None:
    any_store.create_key("admin", TOKEN)
    any_store.set_policy("admin", QUERIES_ONLY)
    _write_raw(any_store, sql, parameters)

    with pytest.raises(MasterShareMismatch, match="'admin'"):
        any_store.unlock("admin", TOKEN)
    with pytest.raises(MasterShareMismatch):
        any_store.policy("admin")
    with pytest.raises(MasterShareMismatch):  # nor can it be "repaired" by setting another
        any_store.set_policy("admin", ANYTHING)


def test_a_policy_added_in_the_database_to_a_key_without_one_is_refused(
    any_store: KeyStore,
) -> None:
    any_store.create_key("admin", TOKEN)
    _write_raw(any_store, "UPDATE keys SET policy = ? WHERE name = 'admin'", (QUERIES_ONLY,))
    with pytest.raises(MasterShareMismatch):
        any_store.unlock("admin", TOKEN)


def test_a_policy_swapped_in_from_another_key_is_refused(any_store: KeyStore) -> None:
    """The lax key's policy and master share, copied onto the strict key, open for neither."""
    any_store.create_key("strict", TOKEN)
    any_store.create_key("lax", OTHER_TOKEN)
    any_store.set_policy("strict", QUERIES_ONLY)
    any_store.set_policy("lax", ANYTHING)
    _write_raw(
        any_store,
        "UPDATE keys SET policy = (SELECT policy FROM keys WHERE name = 'lax'), "
        "master_share = (SELECT master_share FROM keys WHERE name = 'lax') WHERE name = 'strict'",
        (),
    )
    with pytest.raises(MasterShareMismatch):
        any_store.unlock("strict", TOKEN)
    assert any_store.unlock("lax", OTHER_TOKEN).policy == ANYTHING


def test_an_altered_policy_is_not_revealed_to_a_wrong_token(any_store: KeyStore) -> None:
    any_store.create_key("admin", TOKEN)
    any_store.set_policy("admin", QUERIES_ONLY)
    _write_raw(any_store, "UPDATE keys SET policy = NULL WHERE name = 'admin'", ())
    with pytest.raises(TokenRejected):
        any_store.unlock("admin", OTHER_TOKEN)


def test_master_key_rotation_carries_the_policy(
    backend: Backend, any_store: KeyStore, argon2: CountingArgon2
) -> None:
    any_store.create_key("admin", TOKEN)
    any_store.set_policy("admin", QUERIES_ONLY)
    new_master_key = MasterKey.generate()
    assert any_store.reseal_master_shares(new_master_key) == 1

    reopened = backend.open(new_master_key, argon2)
    assert reopened.unlock("admin", TOKEN).policy == QUERIES_ONLY
    assert reopened.policy("admin") == QUERIES_ONLY


def test_a_rotation_read_before_a_policy_change_does_not_overwrite_it(
    any_store: KeyStore, master_key: MasterKey
) -> None:
    """Writing a re-seal of the old binding would break the record: the rotation starts over."""
    any_store.create_key("admin", TOKEN)
    read = any_store.records.master_seals()
    any_store.set_policy("admin", QUERIES_ONLY)
    new_master_key = MasterKey.generate()
    resealed = type(read)(
        master_key_check=read.master_key_check,
        keys={
            name: reseal_for_new_master_key(name, sealed, master_key, new_master_key)
            for name, sealed in read.keys.items()
        },
        server_secrets=read.server_secrets,
    )
    with pytest.raises(RecordsChanged):
        any_store.records.replace_master_seals(read, resealed)
    assert any_store.unlock("admin", TOKEN).policy == QUERIES_ONLY
