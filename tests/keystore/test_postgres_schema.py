"""The PostgreSQL schema: migrated idempotently, a newer one refused, credentials kept out."""

from __future__ import annotations

import pytest

from keystore import KeystoreExists, KeystoreUnavailable, MasterKey
from keystore.errors import InvalidDatabaseUrl
from keystore.postgres import (
    SCHEMA_VERSION,
    PostgresDatabase,
    PostgresKeyRecords,
    create_postgres_keystore,
    open_postgres_keystore,
)

from .conftest import TOKEN, CountingArgon2


@pytest.fixture
def database(postgres_database) -> PostgresDatabase:
    opened = PostgresDatabase(
        postgres_database.url, postgres_database.password_file.read_text().strip()
    )
    yield opened
    opened.close()


def test_migrating_twice_changes_nothing(database, master_key, argon2) -> None:
    store = create_postgres_keystore(database, master_key, argon2)
    store.create_key("k", TOKEN)
    assert PostgresKeyRecords(database).migrate() == SCHEMA_VERSION
    assert [key.name for key in store.list_keys()] == ["k"]


def test_a_second_create_is_refused_and_keeps_the_keys(database, master_key, argon2) -> None:
    create_postgres_keystore(database, master_key, argon2).create_key("k", TOKEN)
    with pytest.raises(KeystoreExists):
        create_postgres_keystore(database, MasterKey.generate(), argon2)
    assert open_postgres_keystore(database, master_key, argon2).count_keys() == 1


def test_a_schema_from_a_newer_signserv_is_refused_clearly(database, master_key, argon2) -> None:
    create_postgres_keystore(database, master_key, argon2)
    with database.transaction() as statements:
        statements.execute(
            "UPDATE meta SET value = ? WHERE name = 'schema_version'",
            (str(SCHEMA_VERSION + 1).encode(),),
        )
    with pytest.raises(KeystoreUnavailable, match="newer signserv"):
        open_postgres_keystore(database, master_key, argon2)
    with pytest.raises(KeystoreUnavailable, match="newer signserv"):
        PostgresKeyRecords(database).migrate()


def test_an_empty_database_asks_for_init(database, master_key, argon2) -> None:
    with pytest.raises(KeystoreUnavailable, match="signserv init"):
        open_postgres_keystore(database, master_key, argon2)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://signserv:hunter2-secret@127.0.0.1/db",
        "postgresql://signserv@127.0.0.1/db?password=hunter2-secret",
        "host=127.0.0.1 password=hunter2-secret",
    ],
)
def test_a_password_in_the_url_is_refused_without_echo(url: str) -> None:
    with pytest.raises(InvalidDatabaseUrl, match="password file") as refused:
        PostgresDatabase(url)
    assert "hunter2" not in str(refused.value)


def test_an_unreachable_database_is_unavailable_without_credentials_in_the_message(
    postgres_database, master_key, argon2: CountingArgon2
) -> None:
    password = postgres_database.password_file.read_text().strip()
    unreachable = PostgresDatabase("postgresql://signserv@127.0.0.1:1/nowhere", password)
    with pytest.raises(KeystoreUnavailable, match="cannot be reached") as refused:
        open_postgres_keystore(unreachable, master_key, argon2)
    assert password not in str(refused.value)
    unreachable.close()


def test_a_pool_has_a_connection_for_every_request_thread_of_a_worker() -> None:
    """A warm request never queues for a connection while its worker has threads to spare."""
    from keystore.postgres.database import DEFAULT_POOL_SIZE
    from signserv.server.gunicorn_runner import WORKER_THREADS

    assert DEFAULT_POOL_SIZE >= WORKER_THREADS


def test_a_keystore_of_schema_version_1_is_refused_until_init_migrates_it_keys_intact(
    database, master_key, argon2
) -> None:
    """Upgrade: a database as the first PostgreSQL signserv left it (no key kind, no policy)."""
    create_postgres_keystore(database, master_key, argon2).create_key("old", TOKEN)
    with database.transaction() as statements:
        statements.execute("ALTER TABLE keys DROP COLUMN policy, DROP COLUMN kind")
        statements.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (b"1",))
    with pytest.raises(KeystoreUnavailable, match="schema version 1; run `signserv init`"):
        open_postgres_keystore(database, master_key, argon2)
    assert PostgresKeyRecords(database).migrate() == 1
    assert PostgresKeyRecords(database).migrate() == SCHEMA_VERSION, "a second run is a no-op"
    store = open_postgres_keystore(database, master_key, argon2)
    assert [(key.name, key.kind) for key in store.list_keys()] == [("old", "software")]
    assert store.unlock("old", TOKEN).policy is None
