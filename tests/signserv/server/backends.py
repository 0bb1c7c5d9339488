"""The app's in-process tests on each storage backend: SQLite (file audit chain) and PostgreSQL.

A test module imports :func:`settings_on_each_backend` (it overrides ``settings``) and runs once
per backend; a test about the SQLite file itself pins ``backend_config`` to ``"sqlite"``.
"""

from __future__ import annotations

import dataclasses
import gc
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from keystore.postgres import PostgresDatabase
from keystore.postgres.audit_chain import stored_records
from signserv.host.config import Settings
from signserv.host.home import audit_records, initialize_home, postgres_database

SQLITE_ONLY = pytest.mark.parametrize("backend_config", ["sqlite"], indirect=True)


def _close_every_pool() -> None:
    """Close the pools the test's apps opened: an app has no close, and a pool's threads would
    keep it (and its connections) alive for the rest of the session. Collecting first lets the
    pools of databases no longer referenced close here, not from one of their own threads."""
    gc.collect()
    for found in gc.get_objects():
        if isinstance(found, PostgresDatabase):
            found.close()


@pytest.fixture(name="settings")
def settings_on_each_backend(settings: Settings, backend_config: str) -> Iterator[Settings]:
    """The package's initialized home, its keystore on each backend in turn."""
    if not backend_config:
        yield settings
        return
    chosen = yaml.safe_load(backend_config)["keystore"]
    keystore = dataclasses.replace(
        settings.keystore, url=chosen["url"], password_file=Path(chosen["password_file"])
    )
    on_postgres = dataclasses.replace(settings, keystore=keystore)
    initialize_home(on_postgres)
    yield on_postgres
    _close_every_pool()


@pytest.fixture(name="refuse_audit_writes")
def refuse_audit_writes_on_each_backend(
    settings: Settings, request: pytest.FixtureRequest
) -> Callable[[], None]:
    """Make every audit append fail from now on: a directory where the log file belongs, or a
    database role that may no longer insert into the chain's table."""
    if settings.keystore.url is None:

        def occupy_the_log_path() -> None:
            settings.audit.path.unlink(missing_ok=True)
            settings.audit.path.mkdir()

        return occupy_the_log_path
    cluster = request.getfixturevalue("postgres_cluster")
    database = settings.keystore.url.rsplit("/", 1)[1]

    def take_the_table_away() -> None:
        with psycopg.connect(
            host=str(cluster.directory), port=cluster.port, user="postgres", dbname=database,
            autocommit=True,
        ) as connection:  # fmt: skip
            connection.execute("ALTER TABLE audit_records OWNER TO postgres")

    return take_the_table_away


def stored_audit_records(settings: Settings) -> list[dict[str, Any]]:
    """The audit records as stored, whichever backend holds them, oldest first."""
    database = postgres_database(settings)
    if database is None:
        return [json.loads(record) for record in audit_records(settings)]
    try:
        return [json.loads(record) for record in stored_records(database)]
    finally:
        database.close()
