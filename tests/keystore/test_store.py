"""The keystore: lifecycle, refusals, and damage that must never lose or leak a key.

Tests taking ``any_store`` or ``backend`` run on SQLite and on PostgreSQL; the rest test the file.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from contextlib import closing
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from keystore import (
    Argon2Parameters,
    Argon2Runner,
    InvalidKeyName,
    InvalidToken,
    KeyDisabled,
    KeyExists,
    KeyNotFound,
    KeyStore,
    KeystoreCorrupt,
    KeystoreExists,
    KeystoreUnavailable,
    MasterKey,
    MasterKeyMismatch,
    StorageFull,
    TokenRejected,
)
from keystore.sqlite import create_sqlite_keystore, open_sqlite_keystore

from .conftest import OTHER_TOKEN, TOKEN, Backend, CountingArgon2


def test_new_keystore_file_is_0600_in_a_0700_directory(store: KeyStore, store_path: Path) -> None:
    store.create_key("k", TOKEN)
    assert stat.S_IMODE(store_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store_path.parent.stat().st_mode) == 0o700
    for sidecar in store_path.parent.glob("keystore.db-*"):
        assert stat.S_IMODE(sidecar.stat().st_mode) & 0o077 == 0


def test_create_refuses_to_replace_an_existing_keystore(store, store_path, master_key, argon2):
    with pytest.raises(KeystoreExists):
        create_sqlite_keystore(store_path, master_key, argon2)


def test_created_key_unlocks_and_is_listed(any_store: KeyStore) -> None:
    info = any_store.create_key("admin-1", TOKEN)
    assert info.enabled and info.generation == 1 and len(info.public_point) == 133
    unlocked = any_store.unlock("admin-1", TOKEN)
    numbers = unlocked.signing_key.private_key.public_key().public_numbers()
    assert info.public_point[1:67] == numbers.x.to_bytes(66, "big")
    assert [key.name for key in any_store.list_keys()] == ["admin-1"]


def test_keystore_file_holds_no_private_key_token_or_pem_in_clear(store, store_path) -> None:
    store.create_key("k", TOKEN)
    private_key = store.unlock("k", TOKEN).signing_key.private_key
    scalar = private_key.private_numbers().private_value.to_bytes(66, "big")
    pem_body = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).splitlines()[1]
    store.close()
    files = b"".join(path.read_bytes() for path in store_path.parent.iterdir() if path.is_file())
    assert scalar not in files
    assert pem_body not in files
    assert TOKEN.encode() not in files
    assert b"PRIVATE KEY" not in files


def test_unknown_key_costs_an_argon2_run_like_a_wrong_token(any_store, argon2: CountingArgon2):
    """No key enumeration by timing: both refusals run argon2id exactly once."""
    any_store.create_key("k", TOKEN)
    before = argon2.runs
    with pytest.raises(TokenRejected):
        any_store.unlock("k", OTHER_TOKEN)
    wrong_token_runs = argon2.runs - before
    before = argon2.runs
    with pytest.raises(KeyNotFound):
        any_store.unlock("no-such-key", OTHER_TOKEN)
    assert argon2.runs - before == wrong_token_runs == 1


def test_disabled_key_is_reported_only_after_a_correct_token(any_store: KeyStore) -> None:
    any_store.create_key("k", TOKEN)
    any_store.set_enabled("k", False)
    with pytest.raises(TokenRejected):
        any_store.unlock("k", OTHER_TOKEN)
    with pytest.raises(KeyDisabled):
        any_store.unlock("k", TOKEN)
    any_store.set_enabled("k", True)
    assert any_store.unlock("k", TOKEN).generation == 3


def test_existing_name_is_never_replaced(any_store: KeyStore) -> None:
    original = any_store.create_key("k", TOKEN)
    with pytest.raises(KeyExists):
        any_store.create_key("k", OTHER_TOKEN)
    assert any_store.info("k").public_point == original.public_point
    any_store.unlock("k", TOKEN)


def test_rotate_token_keeps_the_key_and_retires_the_old_token(any_store: KeyStore) -> None:
    original = any_store.create_key("k", TOKEN)
    with pytest.raises(TokenRejected):
        any_store.rotate_token("k", "wrong-current-token-000", OTHER_TOKEN)
    any_store.rotate_token("k", TOKEN, OTHER_TOKEN)
    with pytest.raises(TokenRejected):
        any_store.unlock("k", TOKEN)
    unlocked = any_store.unlock("k", OTHER_TOKEN)
    assert any_store.info("k").public_point == original.public_point
    assert unlocked.generation == original.generation + 1


def test_delete_removes_the_key(any_store: KeyStore) -> None:
    any_store.create_key("k", TOKEN)
    any_store.delete_key("k")
    with pytest.raises(KeyNotFound):
        any_store.info("k")
    with pytest.raises(KeyNotFound):
        any_store.delete_key("k")


@pytest.mark.parametrize(
    "name", ["", "a b", "a/b", "../etc", "x" * 129, "é", "a%2Fb", "k;DROP", ".", ".."]
)
def test_reserved_or_overlong_names_are_refused(any_store: KeyStore, name: str) -> None:
    with pytest.raises(InvalidKeyName):
        any_store.create_key(name, TOKEN)
    assert any_store.list_keys() == []


@pytest.mark.parametrize(
    "token", ["short", "has space in it 0123456", "tab\there-0123456789xx", "é" * 30]
)
def test_weak_or_unsendable_tokens_are_refused_without_echo(
    any_store: KeyStore, token: str
) -> None:
    with pytest.raises(InvalidToken) as refused:
        any_store.create_key("k", token)
    assert token not in str(refused.value)


def test_wrong_master_key_is_refused_on_open(backend: Backend, master_key, argon2) -> None:
    backend.create(master_key, argon2).close()
    with pytest.raises(MasterKeyMismatch):
        backend.open(MasterKey.generate(), argon2)


def test_missing_keystore_is_unavailable(tmp_path, master_key, argon2) -> None:
    with pytest.raises(KeystoreUnavailable, match="signserv init"):
        open_sqlite_keystore(tmp_path / "absent.db", master_key, argon2)


def test_truncated_database_is_refused_cleanly(store, store_path, master_key, argon2) -> None:
    """A keystore cut short by a bad copy or disk fault is reported, not half-read."""
    for number in range(20):
        store.create_key(f"k{number}", TOKEN)
    store.close()
    checkpoint = sqlite3.connect(store_path)
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpoint.close()
    content = store_path.read_bytes()
    store_path.write_bytes(content[: len(content) // 2])
    for sidecar in store_path.parent.glob("keystore.db-*"):
        sidecar.unlink()
    with pytest.raises(KeystoreCorrupt):
        open_sqlite_keystore(store_path, master_key, argon2).list_keys()


def test_a_keystore_whose_name_index_lost_its_last_byte_is_refused_on_open(
    store, store_path, master_key, argon2
) -> None:
    """What a one-byte truncation does when the file's last page is this index: SQLite's
    ``quick_check`` passes it, only the full ``integrity_check`` finds the missing row."""
    for number in range(3):
        store.create_key(f"k{number}", TOKEN)
    store.close()
    with closing(sqlite3.connect(store_path)) as database:
        database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (page_size,) = database.execute("PRAGMA page_size").fetchone()
        (index_page,) = database.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_keys_1'"
        ).fetchone()
    with store_path.open("r+b") as handle:
        handle.seek(index_page * page_size - 1)
        handle.write(b"\0")  # the page's last byte, as a short read pads it
    with closing(sqlite3.connect(store_path)) as database:
        assert database.execute("PRAGMA quick_check").fetchone() == ("ok",)
    with pytest.raises(KeystoreCorrupt, match="fails its integrity check"):
        open_sqlite_keystore(store_path, master_key, argon2)


@pytest.mark.parametrize("content", [b"", b"hello, not a database", os.urandom(4096)])
def test_foreign_file_is_refused_cleanly(tmp_path, master_key, argon2, content: bytes) -> None:
    path = tmp_path / "foreign.db"
    path.write_bytes(content)
    with pytest.raises(KeystoreCorrupt):
        open_sqlite_keystore(path, master_key, argon2)


def test_disk_full_rolls_back_and_keeps_existing_keys(store, store_path) -> None:
    """SQLITE_FULL (here from a page limit) fails the write and loses nothing already stored."""
    store.create_key("kept", TOKEN)
    connection = store.records._database.connection()
    (pages,) = connection.execute("PRAGMA page_count").fetchone()
    connection.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StorageFull):
        for number in range(200):
            store.create_key(f"filler-{number}", TOKEN)
    store.unlock("kept", TOKEN)
    assert "kept" in {key.name for key in store.list_keys()}


def test_concurrent_writers_do_not_lose_keys(backend: Backend, master_key, argon2) -> None:
    """Several threads (each its own connection) create keys at once; all of them land."""
    store = backend.create(master_key, argon2)
    errors: list[BaseException] = []

    def create(prefix: str) -> None:
        own = backend.open(master_key, argon2)
        try:
            for number in range(5):
                own.create_key(f"{prefix}-{number}", TOKEN)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(f"t{index}",)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.list_keys()) == 20


def test_record_use_stamps_last_used(any_store: KeyStore) -> None:
    any_store.create_key("k", TOKEN)
    assert any_store.info("k").last_used_at is None
    any_store.record_use("k", not_since="1970-01-01T00:00:00+00:00")
    stamped = any_store.info("k").last_used_at
    assert stamped is not None
    any_store.record_use("k", not_since="1970-01-01T00:00:00+00:00")
    assert any_store.info("k").last_used_at == stamped
    assert any_store.info("k").generation == 1


def test_bit_flips_anywhere_never_yield_a_wrong_key_or_a_crash(
    store, store_path, master_key, argon2
) -> None:
    """Flip one bit at many offsets: each open/read/unlock either works unchanged or refuses
    with a KeystoreError; it never returns another key and never raises anything else."""
    store.create_key("k", TOKEN)
    original = store.unlock("k", TOKEN).signing_key.private_key.private_numbers().private_value
    store.close()
    checkpoint = sqlite3.connect(store_path)
    checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpoint.close()
    pristine = store_path.read_bytes()
    refused = 0
    for offset in range(0, len(pristine), 97):
        damaged = bytearray(pristine)
        damaged[offset] ^= 1 << (offset % 8)
        store_path.write_bytes(bytes(damaged))
        for sidecar in store_path.parent.glob("keystore.db-*"):
            sidecar.unlink()
        try:
            reopened = open_sqlite_keystore(store_path, master_key, argon2)
            reopened.list_keys()
            value = (
                reopened.unlock("k", TOKEN).signing_key.private_key.private_numbers().private_value
            )
            assert value == original, f"a flip at offset {offset} changed the key"
            reopened.close()
        except (
            KeystoreCorrupt,
            KeystoreUnavailable,
            MasterKeyMismatch,
            TokenRejected,
            KeyNotFound,
        ):
            refused += 1
    assert refused > 0, "some flips must land in live data and be refused"


class RecordingArgon2(Argon2Runner):
    """A real argon2id runner that records the cost of every run."""

    def __init__(self, parameters: Argon2Parameters) -> None:
        super().__init__(parameters, max_concurrent=1)
        self.used: list[Argon2Parameters] = []

    def derive(self, token: str, salt: bytes, parameters: Argon2Parameters) -> bytes:
        self.used.append(parameters)
        return super().derive(token, salt, parameters)


def reopened_at_a_higher_cost(
    backend: Backend, master_key: MasterKey, argon2: Argon2Runner, first_key: str
) -> tuple[KeyStore, RecordingArgon2]:
    """A store with ``first_key`` sealed at ``argon2``'s cost, reopened with a costlier one."""
    store = backend.create(master_key, argon2)
    store.create_key(first_key, TOKEN)
    store.close()
    costlier = RecordingArgon2(Argon2Parameters(2, 16384, 1))
    return backend.open(master_key, costlier), costlier


def test_unknown_key_costs_the_stored_records_argon2_cost_after_a_config_change(
    backend: Backend, master_key, argon2
) -> None:
    """Raising the configured cost must not make unknown names slower than real keys."""
    sealed_with = argon2.parameters
    reopened, costlier = reopened_at_a_higher_cost(backend, master_key, argon2, "k")
    used = costlier.used
    with pytest.raises(TokenRejected):
        reopened.unlock("k", OTHER_TOKEN)
    with pytest.raises(KeyNotFound):
        reopened.unlock("no-such-key", OTHER_TOKEN)
    assert used == [sealed_with, sealed_with]


def test_keys_sealed_at_two_costs_and_unknown_names_all_cost_both(
    backend: Backend, master_key, argon2
) -> None:
    """Hostile (issue 17): a key sealed at a minority cost is not told apart by timing."""
    reopened, costlier = reopened_at_a_higher_cost(backend, master_key, argon2, "old-cost")
    used = costlier.used
    reopened.create_key("new-cost-1", TOKEN)
    reopened.create_key("new-cost-2", TOKEN)
    spent = {}
    for name in ("old-cost", "new-cost-1", "no-such-key"):
        used.clear()
        with pytest.raises((TokenRejected, KeyNotFound)):
            reopened.unlock(name, OTHER_TOKEN)
        spent[name] = sorted(used, key=lambda parameters: parameters.time_cost)
    assert spent["old-cost"] == spent["new-cost-1"] == spent["no-such-key"]
    assert spent["no-such-key"] == [argon2.parameters, costlier.parameters]
