"""Every record names its kind; files written before kinds existed open as software keys."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from keystore import (
    SOFTWARE_KIND,
    KeyBackendUnavailable,
    KeyStore,
    KeystoreCorrupt,
    MasterKey,
    TokenRejected,
)
from keystore.sqlite import SCHEMA_VERSION, open_sqlite_keystore

from .conftest import OTHER_TOKEN, TOKEN, CountingArgon2


def _downgrade_to_schema_1(path: Path) -> None:
    """Rewrite a keystore file as signserv wrote it before records had a kind."""
    with closing(sqlite3.connect(path)) as database:
        database.execute("ALTER TABLE keys DROP COLUMN kind")
        database.execute("ALTER TABLE keys DROP COLUMN policy")
        database.execute("UPDATE meta SET value = '1' WHERE name = 'schema_version'")
        database.commit()


def _schema_version(path: Path) -> str:
    with closing(sqlite3.connect(path)) as database:
        (version,) = database.execute(
            "SELECT value FROM meta WHERE name = 'schema_version'"
        ).fetchone()
    return str(version)


def test_new_keys_are_software_keys(store: KeyStore) -> None:
    assert store.create_key("k", TOKEN).kind == SOFTWARE_KIND
    assert [info.kind for info in store.list_keys()] == [SOFTWARE_KIND]


def test_a_schema_1_keystore_opens_its_keys_are_software_and_still_unlock(
    store: KeyStore, store_path: Path, master_key: MasterKey, argon2: CountingArgon2
) -> None:
    created = store.create_key("old", TOKEN)
    store.close()
    _downgrade_to_schema_1(store_path)

    reopened = open_sqlite_keystore(store_path, master_key, argon2)

    assert _schema_version(store_path) == str(SCHEMA_VERSION)
    assert reopened.info("old").kind == SOFTWARE_KIND
    unlocked = reopened.unlock("old", TOKEN)
    assert unlocked.signing_key.public_point == created.public_point
    reopened.create_key("new", OTHER_TOKEN)
    assert [info.kind for info in reopened.list_keys()] == [SOFTWARE_KIND, SOFTWARE_KIND]


def test_a_schema_from_a_newer_signserv_is_refused_by_name(
    store: KeyStore, store_path: Path, master_key: MasterKey, argon2: CountingArgon2
) -> None:
    store.close()
    with closing(sqlite3.connect(store_path)) as database:
        database.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
        database.commit()
    with pytest.raises(KeystoreCorrupt, match="schema version 99"):
        open_sqlite_keystore(store_path, master_key, argon2)


def test_a_record_of_a_kind_this_process_cannot_use_fails_closed_after_its_token(
    store: KeyStore, store_path: Path
) -> None:
    """Never signs with something else; a wrong token is still just a wrong token."""
    store.create_key("elsewhere", TOKEN)
    with closing(sqlite3.connect(store_path)) as database:
        database.execute("UPDATE keys SET kind = 'unheard-of' WHERE name = 'elsewhere'")
        database.commit()
    with pytest.raises(TokenRejected):
        store.unlock("elsewhere", OTHER_TOKEN)
    with pytest.raises(KeyBackendUnavailable, match="unheard-of"):
        store.unlock("elsewhere", TOKEN)
