"""Master-key rotation and backup/restore at the keystore level: every intermediate state recovers.

The rotation states are built by hand here, one per step of the protocol in
``keystore/rotation.py``; tests/signserv/test_master_key_rotation.py kills real rotations.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from keystore import (
    KeyStore,
    KeystoreCorrupt,
    MasterKey,
    MasterKeyExists,
    MasterKeyMismatch,
    read_master_key,
    write_master_key,
)
from keystore.rotation import (
    MasterKeyRotationFailed,
    RotationFiles,
    rotate_master_key,
    settle_interrupted_rotation,
    settled_master_key,
)
from keystore.sqlite import SqliteLocation, open_sqlite_keystore
from keystore.sqlite.backup import (
    BackupExists,
    BackupUnusable,
    RestoreWouldOverwrite,
    restore_backup,
    write_backup,
)

from .conftest import TOKEN, CountingArgon2

TOKENS = {
    "admin-1": TOKEN,
    "admin-2": "second-token-0123456789",
    "admin-3": "third-token-012345678",
}


def fill(store: KeyStore) -> dict[str, int]:
    """Create the keys of TOKENS; return each one's private scalar."""
    for name, token in TOKENS.items():
        store.create_key(name, token)
    return {name: scalar_of(store, name) for name in TOKENS}


def scalar_of(store: KeyStore, name: str) -> int:
    return store.unlock(name, TOKENS[name]).signing_key.private_key.private_numbers().private_value


def assert_every_key_unlocks(store: KeyStore, scalars: dict[str, int]) -> None:
    assert {name: scalar_of(store, name) for name in TOKENS} == scalars


@pytest.fixture
def key_file(store_path: Path, master_key: MasterKey) -> Path:
    path = store_path.parent / "master.key"
    write_master_key(path, master_key)
    return path


@pytest.fixture
def files(key_file: Path) -> RotationFiles:
    return RotationFiles(key_file)


# --- re-sealing master shares ------------------------------------------------------------------


def test_reseal_moves_every_record_to_the_new_master_key(
    store: KeyStore, store_path: Path, master_key: MasterKey, argon2: CountingArgon2
) -> None:
    scalars = fill(store)
    generations = {info.name: info.generation for info in store.list_keys()}
    new_key = MasterKey.generate()
    assert store.reseal_master_shares(new_key) == len(TOKENS)
    with pytest.raises(MasterKeyMismatch):
        open_sqlite_keystore(store_path, master_key, argon2)
    reopened = open_sqlite_keystore(store_path, new_key, argon2)
    assert_every_key_unlocks(reopened, scalars)
    assert {info.name: info.generation for info in reopened.list_keys()} == generations


def test_reseal_stops_at_a_damaged_record_and_changes_nothing(
    store: KeyStore, store_path: Path, master_key: MasterKey, argon2: CountingArgon2
) -> None:
    scalars = fill(store)
    with sqlite3.connect(store_path) as raw:
        raw.execute("UPDATE keys SET master_share = zeroblob(60) WHERE name = 'admin-3'")
    with pytest.raises(KeystoreCorrupt, match="admin-3"):
        store.reseal_master_shares(MasterKey.generate())
    reopened = open_sqlite_keystore(store_path, master_key, argon2)
    assert scalar_of(reopened, "admin-1") == scalars["admin-1"]


# --- the rotation file protocol ----------------------------------------------------------------


def test_rotation_promotes_the_new_key_and_keeps_the_old_one(
    store: KeyStore,
    store_path: Path,
    key_file: Path,
    files: RotationFiles,
    argon2: CountingArgon2,
) -> None:
    scalars = fill(store)
    old_text = key_file.read_text()
    result = rotate_master_key(key_file, SqliteLocation(store_path), argon2)
    assert result.resealed_keys == len(TOKENS)
    assert result.retired_master_key_file == files.previous
    assert files.previous.read_text() == old_text != key_file.read_text()
    assert not files.next.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert_every_key_unlocks(
        open_sqlite_keystore(store_path, read_master_key(key_file), argon2), scalars
    )


def test_rotation_refuses_while_an_earlier_old_key_is_there(
    store: KeyStore, store_path: Path, key_file: Path, files: RotationFiles, argon2: CountingArgon2
) -> None:
    fill(store)
    rotate_master_key(key_file, SqliteLocation(store_path), argon2)
    current = key_file.read_text()
    with pytest.raises(MasterKeyExists, match="left from an earlier rotation"):
        rotate_master_key(key_file, SqliteLocation(store_path), argon2)
    assert key_file.read_text() == current
    open_sqlite_keystore(store_path, read_master_key(key_file), argon2)


def test_settle_deletes_a_next_key_that_never_committed(
    store: KeyStore,
    store_path: Path,
    key_file: Path,
    files: RotationFiles,
    master_key: MasterKey,
    argon2: CountingArgon2,
) -> None:
    """Killed after writing master.key.next (or half-way through it), before the transaction."""
    scalars = fill(store)
    write_master_key(files.next, MasterKey.generate())
    half_written = files.next.with_name(f".{files.next.name}.4242.tmp")
    half_written.write_text("partial")
    settle_interrupted_rotation(key_file, SqliteLocation(store_path), argon2)
    assert not files.next.exists() and not half_written.exists() and not files.previous.exists()
    assert read_master_key(key_file).to_text() == master_key.to_text()
    assert_every_key_unlocks(open_sqlite_keystore(store_path, master_key, argon2), scalars)


@pytest.mark.parametrize("old_key_already_linked", [False, True])
def test_settle_finishes_a_committed_rotation(
    store: KeyStore,
    store_path: Path,
    key_file: Path,
    files: RotationFiles,
    master_key: MasterKey,
    argon2: CountingArgon2,
    old_key_already_linked: bool,
) -> None:
    """Killed after the transaction committed, before or between the two promotion steps."""
    scalars = fill(store)
    new_key = MasterKey.generate()
    write_master_key(files.next, new_key)
    store.reseal_master_shares(new_key)
    if old_key_already_linked:
        os.link(key_file, files.previous)
    settle_interrupted_rotation(key_file, SqliteLocation(store_path), argon2)
    assert read_master_key(key_file).to_text() == new_key.to_text()
    assert read_master_key(files.previous).to_text() == master_key.to_text()
    assert not files.next.exists()
    assert_every_key_unlocks(open_sqlite_keystore(store_path, new_key, argon2), scalars)


def test_settle_leaves_everything_when_neither_key_opens_the_keystore(
    store: KeyStore, store_path: Path, key_file: Path, files: RotationFiles, argon2: CountingArgon2
) -> None:
    write_master_key(files.next, MasterKey.generate())
    store.reseal_master_shares(MasterKey.generate())
    before = {path: path.read_bytes() for path in (key_file, files.next)}
    settle_interrupted_rotation(key_file, SqliteLocation(store_path), argon2)
    assert {path: path.read_bytes() for path in before} == before


def test_settle_will_not_overwrite_a_different_old_key(
    store: KeyStore, store_path: Path, key_file: Path, files: RotationFiles, argon2: CountingArgon2
) -> None:
    new_key = MasterKey.generate()
    write_master_key(files.next, new_key)
    store.reseal_master_shares(new_key)
    write_master_key(files.previous, MasterKey.generate())
    with pytest.raises(MasterKeyRotationFailed, match="holds another key"):
        settle_interrupted_rotation(key_file, SqliteLocation(store_path), argon2)
    assert files.next.exists()


def test_settle_waits_for_a_rotation_that_is_still_running(
    store: KeyStore,
    store_path: Path,
    key_file: Path,
    files: RotationFiles,
    argon2: CountingArgon2,
) -> None:
    """An opener must not delete master.key.next under a live rotation's feet."""
    new_key = MasterKey.generate()
    write_master_key(files.next, new_key)
    lock = os.open(files.lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)  # the "running rotation"
    settler = threading.Thread(
        target=settle_interrupted_rotation, args=(key_file, SqliteLocation(store_path), argon2)
    )
    settler.start()
    settler.join(timeout=0.3)
    assert settler.is_alive() and files.next.exists()
    store.reseal_master_shares(new_key)  # the rotation commits, then releases its lock
    os.close(lock)
    settler.join(timeout=10)
    assert not settler.is_alive()
    assert read_master_key(key_file).to_text() == new_key.to_text()


# --- backup and restore ------------------------------------------------------------------------


@pytest.fixture
def backup(store: KeyStore, tmp_path: Path) -> Path:
    fill(store)
    path = tmp_path / "backups" / "keystore.backup"
    path.parent.mkdir()
    assert write_backup(store.records, path) == len(TOKENS)
    return path


def test_backup_is_a_private_self_contained_file(backup: Path) -> None:
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert sorted(item.name for item in backup.parent.iterdir()) == [backup.name]
    assert backup.read_bytes()[18:20] == b"\x01\x01", "rollback journal, not WAL"


def test_backup_never_replaces_a_file(store: KeyStore, backup: Path) -> None:
    before = backup.read_bytes()
    with pytest.raises(BackupExists):
        write_backup(store.records, backup)
    assert backup.read_bytes() == before


def test_backup_is_a_consistent_snapshot_while_another_writer_is_mid_transaction(
    store: KeyStore,
    store_path: Path,
    master_key: MasterKey,
    argon2: CountingArgon2,
    tmp_path: Path,
) -> None:
    scalars = fill(store)
    writer = sqlite3.connect(store_path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM keys")
    write_backup(store.records, tmp_path / "snapshot")
    writer.execute("ROLLBACK")
    restored = tmp_path / "restored" / "keystore.db"
    restore_backup(tmp_path / "snapshot", restored, master_key, master_key, argon2, overwrite=False)
    assert_every_key_unlocks(open_sqlite_keystore(restored, master_key, argon2), scalars)


def test_restore_into_an_empty_place_yields_the_same_keys(
    store: KeyStore, backup: Path, master_key: MasterKey, argon2: CountingArgon2, tmp_path: Path
) -> None:
    scalars = {name: scalar_of(store, name) for name in TOKENS}
    target = tmp_path / "new-home" / "keystore.db"
    target.parent.mkdir(mode=0o700)
    Path(f"{target}-wal").write_bytes(b"left by a deleted keystore")
    count = restore_backup(backup, target, master_key, master_key, argon2, overwrite=False)
    assert count == len(TOKENS)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert_every_key_unlocks(open_sqlite_keystore(target, master_key, argon2), scalars)
    assert [item.name for item in target.parent.iterdir() if item.name.startswith(".")] == []


def test_restore_refuses_to_overwrite_unless_asked(
    store: KeyStore, store_path: Path, backup: Path, master_key: MasterKey, argon2: CountingArgon2
) -> None:
    store.create_key("made-after-the-backup", TOKEN)
    with pytest.raises(RestoreWouldOverwrite, match="--force"):
        restore_backup(backup, store_path, master_key, master_key, argon2, overwrite=False)
    assert "made-after-the-backup" in [info.name for info in store.list_keys()]
    restore_backup(backup, store_path, master_key, master_key, argon2, overwrite=True)
    assert sorted(info.name for info in store.list_keys()) == sorted(TOKENS), "live reader sees it"


def test_restore_reseals_a_backup_made_under_an_earlier_master_key(
    store: KeyStore,
    store_path: Path,
    backup: Path,
    key_file: Path,
    master_key: MasterKey,
    argon2: CountingArgon2,
) -> None:
    scalars = {name: scalar_of(store, name) for name in TOKENS}
    rotate_master_key(key_file, SqliteLocation(store_path), argon2)
    current = read_master_key(key_file)
    with pytest.raises(BackupUnusable, match="made under another master key"):
        restore_backup(backup, store_path, current, current, argon2, overwrite=True)
    restore_backup(backup, store_path, master_key, current, argon2, overwrite=True)
    assert_every_key_unlocks(open_sqlite_keystore(store_path, current, argon2), scalars)


def damage_backup(backup: Path, damage: str) -> None:
    content = bytearray(backup.read_bytes())
    if damage == "truncated":
        backup.write_bytes(content[: len(content) // 2])
    elif damage == "broken-page-header":
        content[4096] = 0xFF  # page 2's b-tree page type
        backup.write_bytes(bytes(content))
    elif damage == "not-a-database":
        backup.write_bytes(b"these are not the bytes you are looking for")
    else:
        with sqlite3.connect(backup) as raw:
            raw.execute("UPDATE keys SET master_share = zeroblob(60) WHERE name = 'admin-2'")


@pytest.mark.parametrize(
    "damage", ["truncated", "broken-page-header", "not-a-database", "damaged-master-share"]
)
def test_damaged_backup_is_refused_and_the_keystore_is_untouched(
    store: KeyStore,
    store_path: Path,
    backup: Path,
    master_key: MasterKey,
    argon2: CountingArgon2,
    damage: str,
) -> None:
    """SQLite's checks catch structural damage; re-sealing proves every master share opens."""
    damage_backup(backup, damage)
    scalars = {name: scalar_of(store, name) for name in TOKENS}
    with pytest.raises(BackupUnusable):
        restore_backup(backup, store_path, master_key, master_key, argon2, overwrite=True)
    assert_every_key_unlocks(open_sqlite_keystore(store_path, master_key, argon2), scalars)


def test_opening_the_keystore_again_keeps_this_processs_sqlite_locks(
    store: KeyStore, store_path: Path, master_key: MasterKey, argon2: CountingArgon2
) -> None:
    """A stray open and close of the file would drop our POSIX locks (sqlite howtocorrupt §2.2).

    Another process closing its connection would then believe it was the last one and delete
    the WAL under our live connection, which is how settling a rotation once went wrong.
    """
    store.list_keys()
    open_sqlite_keystore(store_path, master_key, argon2).close()
    with pytest.raises(MasterKeyMismatch):
        open_sqlite_keystore(store_path, MasterKey.generate(), argon2)
    writer = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
        "c.execute(\"INSERT INTO meta VALUES ('written-by', 'another process')\"); c.close()"
    )
    subprocess.run([sys.executable, "-c", writer, str(store_path)], check=True)
    assert Path(f"{store_path}-wal").exists(), "the other process thought it was alone"


def test_without_a_lock_file_rotation_refuses_and_backup_still_runs(
    store: KeyStore,
    store_path: Path,
    key_file: Path,
    files: RotationFiles,
    argon2: CountingArgon2,
    tmp_path: Path,
) -> None:
    """A read-only master-key directory (a mounted secret) allows no rotation, so no lock."""
    files.lock.mkdir()  # stands in for a lock file that cannot be created
    with pytest.raises(MasterKeyRotationFailed, match="must be writable"):
        rotate_master_key(key_file, SqliteLocation(store_path), argon2)
    assert not files.next.exists()
    with settled_master_key(key_file, SqliteLocation(store_path), argon2):
        assert write_backup(store.records, tmp_path / "backup") == 0


def test_restore_into_a_deleted_keystore_with_a_rotation_left_over(
    store: KeyStore,
    store_path: Path,
    backup: Path,
    key_file: Path,
    files: RotationFiles,
    master_key: MasterKey,
    argon2: CountingArgon2,
) -> None:
    """The keystore is gone and master.key.next is left: nothing to settle until it is back."""
    scalars = {name: scalar_of(store, name) for name in TOKENS}
    store.close()
    write_master_key(files.next, MasterKey.generate())
    for database_file in store_path.parent.glob(f"{store_path.name}*"):
        database_file.unlink()
    with settled_master_key(key_file, SqliteLocation(store_path), argon2):
        restore_backup(backup, store_path, master_key, master_key, argon2, overwrite=False)
    settle_interrupted_rotation(key_file, SqliteLocation(store_path), argon2)
    assert not files.next.exists()
    assert_every_key_unlocks(open_sqlite_keystore(store_path, master_key, argon2), scalars)


def test_a_key_created_after_another_process_rotated_is_sealed_under_the_new_key(
    store: KeyStore, store_path: Path, master_key: MasterKey, argon2: CountingArgon2, tmp_path: Path
) -> None:
    """A store opened before a rotation must not seal a new key under the retired master key."""
    key_file = tmp_path / "current.key"
    write_master_key(key_file, master_key)
    early = open_sqlite_keystore(
        store_path, master_key, argon2, reload_master_key=lambda: read_master_key(key_file)
    )
    new_master = MasterKey.generate()
    open_sqlite_keystore(store_path, master_key, argon2).reseal_master_shares(new_master)
    key_file.unlink()
    write_master_key(key_file, new_master)
    early.create_key("late", TOKEN)
    assert open_sqlite_keystore(store_path, new_master, argon2).unlock("late", TOKEN).name == "late"


def test_a_rotation_adopted_at_unlock_costs_one_argon2id_run(
    store: KeyStore, store_path: Path, key_file: Path, master_key: MasterKey, argon2: CountingArgon2
) -> None:
    """A worker meeting a master key rotated by another process adopts it without a second argon2id run."""
    worker = open_sqlite_keystore(
        store_path, master_key, argon2, reload_master_key=lambda: read_master_key(key_file)
    )
    worker.create_key("adopted", TOKEN)
    rotate_master_key(key_file, SqliteLocation(store_path), argon2)
    argon2.runs = 0
    worker.unlock("adopted", TOKEN)
    assert argon2.runs == 1
